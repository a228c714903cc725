/*
 * memif control channel: the listener and connections on an AF_UNIX SOCK_SEQPACKET socket,
 * the HELLO / INIT / ADD_REGION / ADD_RING / CONNECT / CONNECTED / DISCONNECT exchange, the
 * shared regions, and reconnecting. Everything from the peer is checked before use; a message
 * that breaks the protocol gets a DISCONNECT and the connection is closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "conf/port_spec.h"
#include "nic/memif/memif_priv.h"
#include "nic/pool_mem.h"
#include "util/log.h"

#define MP(port) ((struct mport *) (port))

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

static void copy_str(uint8_t *dst, size_t dsz, const char *src)
{
	size_t n = src ? strnlen(src, dsz) : 0;

	memset(dst, 0, dsz);
	memcpy(dst, src ? src : "", n);
}

/* Client: next connection attempt in retry_ms; the timer wakes whoever sleeps on a queue. */
static void retry_later(struct mport *p)
{
	struct itimerspec its = {0};

	p->next_retry_ns = now_ns() + (uint64_t) p->retry_ms * 1000000ull;
	if (p->retry_fd >= 0) {
		its.it_value.tv_sec = p->retry_ms / 1000;
		its.it_value.tv_nsec = (long) (p->retry_ms % 1000) * 1000000;
		timerfd_settime(p->retry_fd, 0, &its, NULL);
	}
}

static void ctl_watch(struct mport *p, int fd, bool add)
{
	struct epoll_event ev = {.events = EPOLLIN};

	if (fd < 0)
		return;
	ev.data.fd = fd;
	epoll_ctl(p->ctl_epfd, add ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, fd, &ev);
}

/* Send one message; fd < 0 means none. Connections without a socket (fuzzing) drop it. */
static int conn_send(struct mconn *c, const struct memif_msg *m, int fd)
{
	char ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = (void *) m, .iov_len = sizeof(*m)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	if (c->fd < 0)
		return 0;
	if (fd >= 0) {
		struct cmsghdr *cm;

		memset(ctl, 0, sizeof(ctl));
		mh.msg_control = ctl;
		mh.msg_controllen = sizeof(ctl);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	n = sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n != (ssize_t) sizeof(*m))
		return n < 0 ? -errno : -EIO;
	return 0;
}

static int send_simple(struct mconn *c, uint16_t type)
{
	struct memif_msg m;

	memset(&m, 0, sizeof(m));
	m.type = type;
	return conn_send(c, &m, -1);
}

static void send_disconnect(struct mconn *c, const char *why)
{
	struct memif_msg m;

	memset(&m, 0, sizeof(m));
	m.type = MEMIF_MSG_DISCONNECT;
	copy_str(m.disconnect.string, sizeof(m.disconnect.string), why);
	conn_send(c, &m, -1);
}

static void region_close(struct mport *p, struct mregion *r)
{
	if (r->base) {
		/*
		 * Frames of this connection may still be in the caller's hands: put private zero
		 * pages where the shared memory was so late accesses touch nothing of the peer and
		 * cannot fault, and free them when the next connection ends.
		 */
		void *a = mmap(r->base, r->size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
		if (a == MAP_FAILED || p->ntombs == MEMIF_MAX_REGIONS)
			munmap(r->base, r->size);
		else
			p->tombs[p->ntombs++] = (struct mtomb){r->base, r->size};
	}
	if (r->fd >= 0)
		close(r->fd);
	r->base = NULL;
	r->size = 0;
	r->fd = -1;
}

static void tombs_free(struct mport *p)
{
	for (unsigned i = 0; i < p->ntombs; i++)
		munmap(p->tombs[i].addr, p->tombs[i].len);
	p->ntombs = 0;
}

/* Forget everything about the running (or half-built) connection's memory and rings. */
static void session_clear(struct mport *p)
{
	for (unsigned i = 0; i < MEMIF_MAX_QUEUES; i++)
		mq_down(&p->q[i]);
	tombs_free(p);
	for (unsigned i = 0; i < p->nregions; i++)
		region_close(p, &p->regions[i]);
	p->nregions = 0;
	pmem_unaccount(p->pool_len);
	p->pool_len = 0;
	for (unsigned d = 0; d < 2; d++) {
		for (unsigned i = 0; i < MEMIF_MAX_QUEUES; i++) {
			struct mring_info *ri = &p->rings[d][i];

			if (ri->evfd >= 0)
				close(ri->evfd);
			memset(ri, 0, sizeof(*ri));
			ri->evfd = -1;
		}
	}
	p->up = false;
	p->nq = 0;
}

static void conn_close(struct mport *p, int idx)
{
	struct mconn *c = &p->conns[idx];

	if (c->fd >= 0) {
		ctl_watch(p, c->fd, false);
		close(c->fd);
	}
	c->fd = -1;
	c->state = MC_FREE;
	if (p->active == idx) {
		p->active = -1;
		session_clear(p);
		if (p->role == MEMIF_ROLE_CLIENT)
			retry_later(p);
	}
}

static void conn_drop(struct mport *p, int idx, const char *why)
{
	if (why)
		send_disconnect(&p->conns[idx], why);
	conn_close(p, idx);
}

void mport_fault(struct mport *p, const char *why)
{
	log_warn("memif %s: peer fault: %s; dropping the connection", p->base.name, why);
	if (p->active >= 0)
		conn_drop(p, p->active, why);
	else
		session_clear(p);
}

static int link_up(struct mport *p)
{
	int err;

	p->gen++;
	for (unsigned i = 0; i < p->nq; i++) {
		err = mq_up(&p->q[i]);
		if (err < 0)
			return err;
	}
	p->up = true;
	p->connects++;
	log_info("memif %s: connected, %u queue pair(s), %u slots", p->base.name, p->nq,
		 1u << p->log2);
	return 0;
}

/* ---- server ---- */

static int srv_hello(struct mport *p, struct mconn *c)
{
	struct memif_msg m;

	memset(&m, 0, sizeof(m));
	m.type = MEMIF_MSG_HELLO;
	copy_str(m.hello.name, sizeof(m.hello.name), "xring");
	m.hello.min_version = MEMIF_VERSION;
	m.hello.max_version = MEMIF_VERSION;
	m.hello.max_region = MEMIF_MAX_REGIONS - 1;
	m.hello.max_c2s_ring = (uint16_t) (p->cfg_nq - 1);
	m.hello.max_s2c_ring = (uint16_t) (p->cfg_nq - 1);
	m.hello.max_log2_ring_size = MEMIF_MAX_LOG2;
	return conn_send(c, &m, -1);
}

/*
 * INIT names the interface: this port or another server port sharing its socket. The
 * connection moves to that port, which runs the rest of the handshake.
 */
static const char *srv_init(struct mport *p, int idx, const struct memif_msg_init *in,
			    struct mport **tp, int *tidx)
{
	uint8_t want[MEMIF_SECRET_SZ];
	struct mport *t = p;
	int slot = idx;

	if (in->version != MEMIF_VERSION)
		return "Incompatible memif version";
	while (t && t->id != in->id)
		t = t == p ? p->shared : t->next_shared;
	if (!t)
		return "ID not found";
	if (t->active >= 0)
		return "Already connected";
	if (in->mode != MEMIF_MODE_ETHERNET)
		return "Only ethernet mode supported";
	/* As DPDK and libmemif do: a secret is checked only when the interface has one. */
	copy_str(want, sizeof(want), t->secret);
	if (t->secret[0] && memcmp(want, in->secret, sizeof(want)) != 0)
		return "Incorrect secret";
	if (t != p) {
		for (slot = 0; slot <= MEMIF_MAX_PENDING && t->conns[slot].state != MC_FREE; slot++)
			;
		if (slot > MEMIF_MAX_PENDING)
			return "Interface busy";
		t->conns[slot] = p->conns[idx];
		ctl_watch(p, p->conns[idx].fd, false);
		ctl_watch(t, t->conns[slot].fd, true);
		p->conns[idx].fd = -1;
		p->conns[idx].state = MC_FREE;
	}
	session_clear(t);
	t->active = slot;
	t->conns[slot].state = MC_S_SETUP;
	*tp = t;
	*tidx = slot;
	return NULL;
}

static const char *srv_add_region(struct mport *p, const struct memif_msg_add_region *ar, int fd)
{
	struct mregion *r;
	struct stat st;
	int seals;
	void *base;

	if (fd < 0)
		return "Missing region fd";
	if (ar->index != p->nregions || ar->index >= MEMIF_MAX_REGIONS)
		return "Invalid region index";
	if (ar->size == 0 || ar->size > MEMIF_MAX_REGION_SZ)
		return "Invalid region size";
	/*
	 * The peer could shrink a file under our mapping and turn our reads into SIGBUS: take only
	 * memory that is big enough and sealed against shrinking.
	 */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t) st.st_size < ar->size)
		return "Region fd too small";
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK))
		return "Region not sealed against shrinking";
	base = mmap(NULL, ar->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED)
		return "Region mmap failed";
	r = &p->regions[p->nregions++];
	r->base = base;
	r->size = ar->size;
	r->fd = fd;
	return NULL;
}

/*
 * We write to a ring's fd to interrupt the peer: it must be an eventfd. A pipe without a
 * reader would raise SIGPIPE in our process, a blocking one could hang it.
 */
static bool is_eventfd(int fd)
{
	char link[64], target[32];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = 0;
	return strcmp(target, "anon_inode:[eventfd]") == 0;
}

static const char *srv_add_ring(struct mport *p, const struct memif_msg_add_ring *ar, int fd)
{
	unsigned dir = (ar->flags & MEMIF_ADD_RING_C2S) ? 0 : 1;
	struct mring_info *ri;
	int fl;

	if (fd < 0)
		return "Missing interrupt fd";
	if (ar->flags & ~MEMIF_ADD_RING_C2S)
		return "Invalid ring flags";
	if (ar->index >= p->cfg_nq)
		return "Invalid ring index";
	ri = &p->rings[dir][ar->index];
	if (ri->have)
		return "Duplicate ring";
	if (ar->region >= p->nregions)
		return "Invalid ring region";
	if (ar->log2_ring_size < 1 || ar->log2_ring_size > MEMIF_MAX_LOG2)
		return "Invalid ring size";
	if (ar->private_hdr_size != 0)
		return "Private headers not supported";
	if (ar->offset % 8 || (uint64_t) ar->offset + memif_ring_bytes(ar->log2_ring_size) >
				      p->regions[ar->region].size)
		return "Ring outside its region";
	if (!is_eventfd(fd))
		return "Interrupt fd is not an eventfd";
	/* The peer may have made it blocking; a kick must never wait. */
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return "Bad interrupt fd";
	ri->have = true;
	ri->region = ar->region;
	ri->offset = ar->offset;
	ri->log2 = ar->log2_ring_size;
	ri->evfd = fd;
	return NULL;
}

static struct memif_ring *ring_at(struct mport *p, const struct mring_info *ri)
{
	return (struct memif_ring *) (p->regions[ri->region].base + ri->offset);
}

static const char *srv_connect(struct mport *p, struct mconn *c)
{
	unsigned n = 0;

	while (n < p->cfg_nq && p->rings[0][n].have && p->rings[1][n].have)
		n++;
	if (n == 0)
		return "No ring pairs";
	for (unsigned i = n; i < MEMIF_MAX_QUEUES; i++)
		if (p->rings[0][i].have || p->rings[1][i].have)
			return "Rings do not pair up";
	for (unsigned d = 0; d < 2; d++) {
		for (unsigned i = 0; i < n; i++) {
			struct memif_ring *r = ring_at(p, &p->rings[d][i]);

			if (__atomic_load_n(&r->cookie, __ATOMIC_RELAXED) != MEMIF_COOKIE)
				return "Wrong ring cookie";
		}
	}
	p->nq = n;
	p->log2 = p->rings[0][0].log2;
	if (link_up(p) < 0)
		return "Out of memory";
	c->state = MC_UP;
	return NULL;
}

static int srv_msg(struct mport *p, int idx, const struct memif_msg *m, int *fd)
{
	struct mconn *c = &p->conns[idx];
	const char *err = NULL;
	int rfd = *fd;

	if (m->type == MEMIF_MSG_DISCONNECT) {
		conn_close(p, idx);
		return -ECONNRESET;
	}
	switch (c->state) {
	case MC_S_WAIT_INIT: {
		if (m->type != MEMIF_MSG_INIT) {
			err = "Unexpected message";
			break;
		}
		struct mport *t;
		int tidx;

		err = srv_init(p, idx, &m->init, &t, &tidx);
		if (!err && send_simple(&t->conns[tidx], MEMIF_MSG_ACK) < 0) {
			conn_drop(t, tidx, NULL);
			return -EIO;
		}
		break;
	}
	case MC_S_SETUP:
		if (m->type == MEMIF_MSG_ADD_REGION) {
			err = srv_add_region(p, &m->add_region, rfd);
			if (!err)
				*fd = -1; /* the region owns it now */
		} else if (m->type == MEMIF_MSG_ADD_RING) {
			err = srv_add_ring(p, &m->add_ring, rfd);
			if (!err)
				*fd = -1;
		} else if (m->type == MEMIF_MSG_CONNECT) {
			struct memif_msg r;

			err = srv_connect(p, c);
			if (err)
				break;
			memset(&r, 0, sizeof(r));
			r.type = MEMIF_MSG_CONNECTED;
			copy_str(r.connected.if_name, sizeof(r.connected.if_name), p->ifname);
			if (conn_send(c, &r, -1) < 0)
				err = "Send failed";
			break;
		} else {
			err = "Unexpected message";
			break;
		}
		if (!err && send_simple(c, MEMIF_MSG_ACK) < 0)
			err = "Send failed";
		break;
	default:
		err = "Unexpected message";
		break;
	}
	if (err) {
		log_info("memif %s: dropping connection: %s", p->base.name, err);
		conn_drop(p, idx, err);
		return -EPROTO;
	}
	return 0;
}

static void srv_accept(struct mport *p)
{
	for (int k = 0; k < 4; k++) {
		int fd = accept4(p->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int slot = -1;

		if (fd < 0)
			return;
		for (int i = 0; i <= MEMIF_MAX_PENDING; i++) {
			if (p->conns[i].state == MC_FREE) {
				slot = i;
				break;
			}
		}
		if (slot < 0) {
			close(fd); /* too many half-open connections: refuse */
			continue;
		}
		p->conns[slot].fd = fd;
		p->conns[slot].state = MC_S_WAIT_INIT;
		p->conns[slot].deadline_ns = now_ns() + MEMIF_HANDSHAKE_MS * 1000000ull;
		ctl_watch(p, fd, true);
		if (srv_hello(p, &p->conns[slot]) < 0)
			conn_close(p, slot);
	}
}

/* ---- client ---- */

/*
 * The sealed memfd behind our region, on huge pages when XRING_HUGEPAGES asks (size is then
 * rounded up to whole huge pages and *page set to their size).
 */
static int memif_pool_fd(struct mport *p, size_t *size, size_t *page)
{
	unsigned seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	size_t hp, hsize;
	bool required;
	int fd, err;

	if (pmem_want_huge(&required, &hp)) {
		hsize = (*size + hp - 1) / hp * hp;
		fd = memfd_create("xring-memif", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB);
		if (fd >= 0 && ftruncate(fd, (off_t) hsize) == 0 &&
		    fcntl(fd, F_ADD_SEALS, seals) == 0) {
			/* hugetlbfs reserves pages only when mapped: try now, so a shortage shows
			 * here and not as SIGBUS later. */
			void *a = mmap(NULL, hsize, PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_POPULATE, fd, 0);

			if (a != MAP_FAILED) {
				munmap(a, hsize);
				*size = hsize;
				*page = hp;
				return fd;
			}
		}
		err = errno;
		if (fd >= 0)
			close(fd);
		if (required) {
			log_error("memif %s: XRING_HUGEPAGES=on but no huge pages for %zu bytes "
				  "(%s): refused",
				  p->base.name, hsize, strerror(err));
			return -ENOMEM;
		}
		log_info("memif %s: no huge pages (%s), using normal pages", p->base.name,
			 strerror(err));
	}
	fd = memfd_create("xring-memif", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t) *size) < 0 || fcntl(fd, F_ADD_SEALS, seals) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* Lay out and create our region: all rings first, then each queue's buffers. */
static int cli_region(struct mport *p)
{
	size_t stride = (memif_ring_bytes(p->log2) + 63) & ~(size_t) 63;
	size_t nbufs = (size_t) p->nq * 2 << p->log2;
	size_t bufs_off = (stride * 2 * p->nq + 4095) & ~(size_t) 4095;
	size_t size = bufs_off + nbufs * p->buf_size;
	struct mregion *r = &p->regions[0];
	size_t page = (size_t) sysconf(_SC_PAGESIZE);
	void *base;
	int fd, err;

	if (size > UINT32_MAX)
		return -E2BIG;
	fd = memif_pool_fd(p, &size, &page);
	if (fd < 0)
		return fd;
	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		err = -errno;
		close(fd);
		return err;
	}
	/* The region is shared with the peer through its fd: it cannot live in the alloc
	 * hook's memory, but it counts against the limit and is reported like every pool. */
	err = pmem_account(size, p->base.name);
	if (err) {
		munmap(base, size);
		close(fd);
		return err;
	}
	p->pool_len = size;
	pmem_report(base, size, page);
	r->base = base;
	r->size = size;
	r->fd = fd;
	p->nregions = 1;
	for (unsigned d = 0; d < 2; d++) {
		for (unsigned i = 0; i < p->nq; i++) {
			struct mring_info *ri = &p->rings[d][i];
			struct memif_ring *ring;

			ri->have = true;
			ri->region = 0;
			ri->offset = (uint32_t) (stride * (d * p->nq + i));
			ri->log2 = (uint8_t) p->log2;
			ri->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
			if (ri->evfd < 0)
				return -errno;
			ring = ring_at(p, ri);
			ring->cookie = MEMIF_COOKIE;
			ring->flags = 0;
			ring->head = 0;
			ring->tail = 0;
		}
	}
	for (unsigned i = 0; i < p->nq; i++) {
		size_t off = bufs_off + ((size_t) i * 2 << p->log2) * p->buf_size;

		p->q[i].bufs = (uint8_t *) base + off;
		p->q[i].bufs_off = (uint32_t) off;
	}
	return 0;
}

static const char *cli_hello(struct mport *p, struct mconn *c, const struct memif_msg_hello *h)
{
	struct memif_msg m;

	if (h->min_version > MEMIF_VERSION || h->max_version < MEMIF_VERSION)
		return "Incompatible memif version";
	p->nq = p->cfg_nq;
	if (p->nq > (unsigned) h->max_c2s_ring + 1)
		p->nq = (unsigned) h->max_c2s_ring + 1;
	if (p->nq > (unsigned) h->max_s2c_ring + 1)
		p->nq = (unsigned) h->max_s2c_ring + 1;
	p->log2 = p->cfg_log2;
	if (p->log2 > h->max_log2_ring_size)
		p->log2 = h->max_log2_ring_size;
	if (p->log2 < 1)
		return "Ring size too small";
	if (cli_region(p) < 0)
		return "Cannot create region";

	memset(&m, 0, sizeof(m));
	m.type = MEMIF_MSG_INIT;
	m.init.version = MEMIF_VERSION;
	m.init.id = p->id;
	m.init.mode = MEMIF_MODE_ETHERNET;
	copy_str(m.init.secret, sizeof(m.init.secret), p->secret);
	copy_str(m.init.name, sizeof(m.init.name), "xring");
	if (conn_send(c, &m, -1) < 0)
		return "Send failed";

	memset(&m, 0, sizeof(m));
	m.type = MEMIF_MSG_ADD_REGION;
	m.add_region.index = 0;
	m.add_region.size = p->regions[0].size;
	if (conn_send(c, &m, p->regions[0].fd) < 0)
		return "Send failed";

	for (unsigned d = 0; d < 2; d++) {
		for (unsigned i = 0; i < p->nq; i++) {
			const struct mring_info *ri = &p->rings[d][i];

			memset(&m, 0, sizeof(m));
			m.type = MEMIF_MSG_ADD_RING;
			m.add_ring.flags = d == 0 ? MEMIF_ADD_RING_C2S : 0;
			m.add_ring.index = (uint16_t) i;
			m.add_ring.region = ri->region;
			m.add_ring.offset = ri->offset;
			m.add_ring.log2_ring_size = ri->log2;
			if (conn_send(c, &m, ri->evfd) < 0)
				return "Send failed";
		}
	}

	memset(&m, 0, sizeof(m));
	m.type = MEMIF_MSG_CONNECT;
	copy_str(m.connect.if_name, sizeof(m.connect.if_name), p->ifname);
	if (conn_send(c, &m, -1) < 0)
		return "Send failed";
	c->state = MC_C_WAIT_CONN;
	return NULL;
}

static int cli_msg(struct mport *p, int idx, const struct memif_msg *m, int *fd)
{
	struct mconn *c = &p->conns[idx];
	const char *err = NULL;

	if (m->type == MEMIF_MSG_DISCONNECT) {
		log_info("memif %s: peer disconnected: %.96s", p->base.name,
			 (const char *) m->disconnect.string);
		conn_close(p, idx);
		return -ECONNRESET;
	}
	if (c->state == MC_C_WAIT_HELLO && m->type == MEMIF_MSG_HELLO)
		err = cli_hello(p, c, &m->hello);
	else if (c->state == MC_C_WAIT_CONN && m->type == MEMIF_MSG_ACK)
		err = NULL;
	else if (c->state == MC_C_WAIT_CONN && m->type == MEMIF_MSG_CONNECTED) {
		if (link_up(p) < 0)
			err = "Out of memory";
		else
			c->state = MC_UP;
	} else
		err = "Unexpected message";
	if (err) {
		log_info("memif %s: dropping connection: %s", p->base.name, err);
		conn_drop(p, idx, err);
		return -EPROTO;
	}
	return 0;
}

static void cli_try_connect(struct mport *p)
{
	struct mconn *c = &p->conns[0];
	int fd;

	uint64_t t;

	/* consume the timer's expiry so it stops waking waiters (EAGAIN: none pending) */
	if (p->retry_fd >= 0 && read(p->retry_fd, &t, sizeof(t)) < 0)
		t = 0;
	if (c->state != MC_FREE || now_ns() < p->next_retry_ns)
		return;
	retry_later(p);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (connect(fd, (struct sockaddr *) &p->addr, p->addrlen) < 0) {
		close(fd);
		return;
	}
	session_clear(p);
	c->fd = fd;
	c->state = MC_C_WAIT_HELLO;
	c->deadline_ns = now_ns() + MEMIF_HANDSHAKE_MS * 1000000ull;
	p->active = 0;
	ctl_watch(p, fd, true);
}

/* ---- both ---- */

static int conn_msg(struct mport *p, int idx, const struct memif_msg *m, int *fd)
{
	return p->role == MEMIF_ROLE_SERVER ? srv_msg(p, idx, m, fd) : cli_msg(p, idx, m, fd);
}

/* Read what one connection has (bounded), hand it to the state machine. */
static void conn_read(struct mport *p, int idx)
{
	for (int k = 0; k < 64 && p->conns[idx].state != MC_FREE; k++) {
		char ctl[CMSG_SPACE(sizeof(int) * 4)];
		struct memif_msg m;
		struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = ctl,
				    .msg_controllen = sizeof(ctl)};
		int fd = -1, extra = 0;
		ssize_t n;

		n = recvmsg(p->conns[idx].fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		/* Take every fd the peer sent so none leaks, keep at most one. */
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); n >= 0 && cm;
		     cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
				continue;
			size_t cnt = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < cnt; i++) {
				int f;

				memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
				if (fd < 0)
					fd = f;
				else {
					close(f);
					extra++;
				}
			}
		}
		if (n <= 0) {
			if (fd >= 0)
				close(fd);
			log_info("memif %s: control connection closed", p->base.name);
			conn_close(p, idx);
			return;
		}
		if (n != (ssize_t) sizeof(m) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
		    extra) {
			if (fd >= 0)
				close(fd);
			conn_drop(p, idx, "Invalid message size");
			return;
		}
		conn_msg(p, idx, &m, &fd);
		if (fd >= 0)
			close(fd);
	}
}

int memif_poll(struct port *port)
{
	struct mport *p = MP(port);
	uint64_t now = 0;

	if (p->owner && p->owner != p)
		memif_poll(&p->owner->base); /* connections for us arrive on its socket */
	if (p->role == MEMIF_ROLE_SERVER && p->listen_fd >= 0)
		srv_accept(p);
	else
		cli_try_connect(p);
	for (int i = 0; i <= MEMIF_MAX_PENDING; i++)
		if (p->conns[i].state != MC_FREE && p->conns[i].fd >= 0)
			conn_read(p, i);
	/* A peer that connects and then stalls must not hold a slot (or our link) forever. */
	for (int i = 0; i <= MEMIF_MAX_PENDING; i++) {
		struct mconn *c = &p->conns[i];

		if (c->state == MC_FREE || c->state == MC_UP || c->fd < 0)
			continue;
		if (!now)
			now = now_ns();
		if (now > c->deadline_ns)
			conn_drop(p, i, "Handshake timeout");
	}
	return 0;
}

void memif_reset(struct port *port)
{
	struct mport *p = MP(port);

	if (p->active >= 0)
		conn_drop(p, p->active, "Reset");
}

bool memif_connected(const struct port *port)
{
	return MP(port)->up;
}

uint64_t memif_connects(const struct port *port)
{
	return MP(port)->connects;
}

unsigned memif_ring_size(const struct port *port)
{
	return MP(port)->up ? 1u << MP(port)->log2 : 0;
}

unsigned memif_buf_size(const struct port *port)
{
	return MP(port)->buf_size;
}

int memif_fuzz_server_msg(struct port *port, const void *msg, size_t len, int fd)
{
	struct mport *p = MP(port);
	struct memif_msg m;
	int ret;

	if (p->role != MEMIF_ROLE_SERVER || len != sizeof(m)) {
		if (fd >= 0)
			close(fd);
		return -EINVAL;
	}
	if (p->conns[0].state == MC_FREE) {
		p->conns[0].fd = -1;
		p->conns[0].state = MC_S_WAIT_INIT;
	}
	memcpy(&m, msg, sizeof(m));
	ret = srv_msg(p, 0, &m, &fd);
	if (fd >= 0)
		close(fd);
	return ret;
}

static void memif_destroy(struct port *port)
{
	struct mport *p = MP(port);

	for (int i = 0; i <= MEMIF_MAX_PENDING; i++)
		if (p->conns[i].state != MC_FREE)
			conn_drop(p, i, "Interface deleted");
	session_clear(p);
	tombs_free(p);
	if (p->owner && p->owner != p) {
		struct mport **pp = &p->owner->shared;

		while (*pp && *pp != p)
			pp = &(*pp)->next_shared;
		if (*pp)
			*pp = p->next_shared;
	}
	for (struct mport *s = p->shared; s; s = s->next_shared)
		s->owner = NULL; /* their socket is gone with us */
	for (unsigned i = 0; i < MEMIF_MAX_QUEUES; i++) {
		if (p->q[i].epfd >= 0)
			close(p->q[i].epfd);
	}
	if (p->listen_fd >= 0) {
		close(p->listen_fd);
		if (!p->abstract)
			unlink(p->addr.sun_path);
	}
	if (p->retry_fd >= 0)
		close(p->retry_fd);
	if (p->ctl_epfd >= 0)
		close(p->ctl_epfd);
	free(p);
}

static int mport_listen(struct mport *p)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (!p->abstract)
		unlink(p->addr.sun_path); /* a stale socket from a previous run */
	if (bind(fd, (struct sockaddr *) &p->addr, p->addrlen) < 0 ||
	    listen(fd, MEMIF_MAX_PENDING) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	p->listen_fd = fd;
	ctl_watch(p, fd, true);
	return 0;
}

void memif_config_from_spec(const struct pspec_memif *s, struct memif_config *cfg, char *path_buf,
			    size_t len)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(path_buf, len, "%s%s", s->abstract ? "@" : "", s->path);
	cfg->path = path_buf;
	cfg->role = s->role == PSPEC_ROLE_SERVER ? MEMIF_ROLE_SERVER : MEMIF_ROLE_CLIENT;
	cfg->id = s->id;
	cfg->secret = s->secret[0] ? s->secret : NULL;
	cfg->nqueues = s->queues;
	cfg->buf_size = s->bufsize;
	for (unsigned l = 0; l < 32; l++) {
		if (s->ring == 1u << l) {
			cfg->log2_ring = l;
			break;
		}
	}
	if (s->has_mac) {
		memcpy(cfg->mac, s->mac, 6);
	} else {
		/* locally administered, and different at the two ends of one link */
		uint8_t mac[6] = {0x02,
				  0xfe,
				  cfg->role == MEMIF_ROLE_SERVER ? 1 : 2,
				  (uint8_t) (s->id >> 16),
				  (uint8_t) (s->id >> 8),
				  (uint8_t) s->id};

		memcpy(cfg->mac, mac, 6);
	}
	cfg->ip = s->ip;
	cfg->prefix_len = s->prefix_len;
	cfg->mtu = s->mtu;
	cfg->csum_none = s->csum_none;
}

int memif_port_create(const struct memif_config *cfg, struct port **out)
{
	struct mport *p;
	size_t plen;
	int err;

	if (!cfg || !out || (!cfg->path && !cfg->share))
		return -EINVAL;
	plen = cfg->path ? strlen(cfg->path) : 0;
	if (cfg->path && plen < 2 && cfg->path[0] == '@')
		return -EINVAL;
	if (!cfg->share && (plen == 0 || plen >= sizeof(p->addr.sun_path)))
		return -ENAMETOOLONG;
	if (cfg->secret && strlen(cfg->secret) > MEMIF_SECRET_SZ)
		return -EINVAL;
	if (cfg->nqueues > MEMIF_MAX_QUEUES || cfg->log2_ring > MEMIF_MAX_LOG2 ||
	    (cfg->log2_ring && cfg->log2_ring < 1) || cfg->buf_size > MEMIF_MAX_BUF ||
	    (cfg->buf_size && cfg->buf_size < 64))
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->role = cfg->role;
	p->id = cfg->id;
	if (cfg->secret)
		memcpy(p->secret, cfg->secret, strlen(cfg->secret));
	if (cfg->name)
		snprintf(p->ifname, sizeof(p->ifname), "%s", cfg->name);
	else
		snprintf(p->ifname, sizeof(p->ifname), "memif%u", cfg->id);
	p->cfg_nq = cfg->nqueues ? cfg->nqueues : 1;
	p->cfg_log2 = cfg->log2_ring ? cfg->log2_ring : 10;
	p->buf_size = cfg->buf_size ? cfg->buf_size : 2048;
	p->retry_ms = cfg->retry_ms ? cfg->retry_ms : 200;
	p->listen_fd = -1;
	p->retry_fd = -1;
	p->active = -1;
	p->addr.sun_family = AF_UNIX;
	if (cfg->share) {
		p->addrlen = 0; /* we never bind nor connect */
	} else if (cfg->path[0] == '@') {
		p->abstract = true;
		memcpy(p->addr.sun_path + 1, cfg->path + 1, plen - 1);
		p->addrlen = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + plen);
	} else {
		memcpy(p->addr.sun_path, cfg->path, plen);
		p->addrlen = (socklen_t) sizeof(p->addr);
	}
	for (int i = 0; i <= MEMIF_MAX_PENDING; i++)
		p->conns[i].fd = -1;
	for (unsigned i = 0; i < MEMIF_MAX_REGIONS; i++)
		p->regions[i].fd = -1;
	for (unsigned d = 0; d < 2; d++)
		for (unsigned i = 0; i < MEMIF_MAX_QUEUES; i++)
			p->rings[d][i].evfd = -1;

	snprintf(p->base.name, sizeof(p->base.name), "%s", p->ifname);
	p->base.ops = cfg->role == MEMIF_ROLE_SERVER ? &memif_server_ops : &memif_client_ops;
	memcpy(p->base.mac, cfg->mac, 6);
	p->base.mtu = cfg->mtu ? cfg->mtu : 1500;
	p->base.ip = cfg->ip;
	p->base.prefix_len = cfg->prefix_len;
	p->base.caps = PORT_CAP_CHAIN | PORT_CAP_TX_STREAM;
	if (cfg->csum_none) {
		p->rx_flags = PORT_F_RX_IP_CSUM_OK | PORT_F_RX_L4_CSUM_OK;
		p->base.caps |= PORT_CAP_RX_CSUM | PORT_CAP_L4_CSUM_NONE;
	}
	p->base.nqueues = p->cfg_nq;
	p->base.queues = p->qptr;

	p->ctl_epfd = epoll_create1(EPOLL_CLOEXEC);
	for (unsigned i = 0; i < MEMIF_MAX_QUEUES; i++) {
		struct mq *q = &p->q[i];

		q->p = p;
		q->pq.ops = p->base.ops;
		q->pq.port = &p->base;
		q->pq.index = (uint16_t) i;
		q->rx_evfd = q->tx_evfd = -1;
		q->epfd = -1;
		p->qptr[i] = &q->pq;
		if (i < p->cfg_nq) {
			struct epoll_event ev = {.events = EPOLLIN, .data.fd = p->ctl_epfd};

			q->epfd = epoll_create1(EPOLL_CLOEXEC);
			if (q->epfd < 0 || p->ctl_epfd < 0 ||
			    epoll_ctl(q->epfd, EPOLL_CTL_ADD, p->ctl_epfd, &ev) < 0) {
				err = -errno;
				goto fail;
			}
		}
	}
	if (cfg->role == MEMIF_ROLE_SERVER && cfg->share) {
		struct mport *o = MP(cfg->share);
		struct epoll_event ev = {.events = EPOLLIN, .data.fd = o->ctl_epfd};

		if (o->role != MEMIF_ROLE_SERVER || o->owner != o) {
			err = -EINVAL;
			goto fail;
		}
		for (struct mport *s = o; s; s = s == o ? o->shared : s->next_shared) {
			if (s->id == p->id) {
				err = -EEXIST;
				goto fail;
			}
		}
		p->owner = o;
		p->next_shared = o->shared;
		o->shared = p;
		epoll_ctl(p->ctl_epfd, EPOLL_CTL_ADD, o->ctl_epfd, &ev);
	} else if (cfg->role == MEMIF_ROLE_SERVER) {
		p->owner = p;
		err = mport_listen(p);
		if (err < 0)
			goto fail;
	} else {
		p->retry_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		ctl_watch(p, p->retry_fd, true);
	}
	*out = &p->base;
	memif_poll(&p->base);
	return 0;
fail:
	memif_destroy(&p->base);
	return err;
}

/* Port-wide ops shared by both roles. */
static int memif_steer(struct port *port, const struct port_rule *rule, uint32_t *handle)
{
	/* Point-to-point: everything the peer sends is ours; there is nothing to program. */
	*handle = 1;
	return 0;
}

static int memif_unsteer(struct port *port, uint32_t handle)
{
	return 0;
}

static int memif_mem_register(struct port *port, void *addr, size_t len, uint32_t *key)
{
	return -EOPNOTSUPP;
}

static int memif_mem_deregister(struct port *port, uint32_t key)
{
	return -EOPNOTSUPP;
}

const struct port_ops memif_client_ops = {
	.rx_poll = mq_cli_rx_poll,
	.rx_release = mq_cli_rx_release,
	.tx_alloc = mq_cli_tx_alloc,
	.tx_post = mq_cli_tx_post,
	.tx_flush = mq_tx_flush,
	.tx_reap = mq_cli_tx_reap,
	.wait_fd = mq_wait_fd,
	.arm = mq_arm,
	.steer = memif_steer,
	.unsteer = memif_unsteer,
	.mem_register = memif_mem_register,
	.mem_deregister = memif_mem_deregister,
	.destroy = memif_destroy,
};

const struct port_ops memif_server_ops = {
	.rx_poll = mq_srv_rx_poll,
	.rx_release = mq_srv_rx_release,
	.tx_alloc = mq_srv_tx_alloc,
	.tx_post = mq_srv_tx_post,
	.tx_flush = mq_tx_flush,
	.tx_reap = mq_srv_tx_reap,
	.wait_fd = mq_wait_fd,
	.arm = mq_arm,
	.steer = memif_steer,
	.unsteer = memif_unsteer,
	.mem_register = memif_mem_register,
	.mem_deregister = memif_mem_deregister,
	.destroy = memif_destroy,
};
