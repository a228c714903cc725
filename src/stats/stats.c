/*
 * The writer side of the statistics file: created at the first ring, one per process, removed
 * at exit. Slots are taken and given back under a lock (ring init, socket open and close);
 * counting happens in place, without it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "conf/proc.h"
#include "ops/netport.h"
#include "ops/xsock.h"
#include "ring/ring.h"
#include "stats/shm_read.h"
#include "stats/stats.h"
#include "util/log.h"

/* The TCB counts into the socket's block directly (tcp_set_stats). */
#define TCS(f) (offsetof(struct xstats_sock, tcp_##f) - offsetof(struct xstats_sock, tcp_segs_in))
static_assert(TCS(segs_out) == offsetof(struct tcp_conn_stats, segs_out) &&
		      TCS(rexmt_segs) == offsetof(struct tcp_conn_stats, rexmt_segs) &&
		      TCS(rexmt_bytes) == offsetof(struct tcp_conn_stats, rexmt_bytes),
	      "tcp_conn_stats layout");
static_assert(sizeof(struct tcp_conn_stats) == 32, "tcp_conn_stats layout");
/* xstats_sock.state is an enum tcp_state; the reader names them by number. */
static_assert(TCPS_ESTABLISHED == 4 && TCPS_TIME_WAIT == 10, "tcp_state numbering");

enum {
	OFF = -1,
	UNTRIED = 0,
	ON = 1,
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	int state;
	pid_t pid; /* the process that made the file: a forked child is not it */
	uint8_t *base;
	size_t size;
	struct xstats_hdr *hdr;
	char path[CONF_PATH_LEN + 32];
	unsigned ring_ids;
	unsigned rings;      /* rings open while the file exists */
	uint64_t epoch;      /* files made so far, by this process */
	uint32_t *sock_free; /* free socket slots, a stack */
	unsigned nsock_free;
	int file_fd; /* XRING_STATS_FILE, -1 until opened */
	bool file_tried;
	bool hooks;
} g = {.file_fd = -1};

/* A block's identity is about to change: readers skip it until blk_end(). */
static void blk_begin(struct xstats_blk *b)
{
	__atomic_store_n(&b->seq, b->seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static void blk_end(struct xstats_blk *b)
{
	__atomic_store_n(&b->seq, b->seq + 1, __ATOMIC_RELEASE);
}

static void at_exit(void)
{
	/* Only unlinked: another thread may still be counting into the mapping. */
	if (g.state == ON && g.pid == getpid())
		unlink(g.path);
}

/* A forked child keeps the parent's rings' pointers but must not write into the parent's
 * file: the mapping becomes a private copy at the same address, and the child makes its own
 * file if it makes rings. */
static void at_fork_child(void)
{
	pthread_mutex_init(&lock, NULL);
	if (g.state == ON) {
		void *copy = mmap(NULL, g.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				  -1, 0);

		if (copy != MAP_FAILED) {
			memcpy(copy, g.base, g.size);
			if (mremap(copy, g.size, g.size, MREMAP_MAYMOVE | MREMAP_FIXED, g.base) ==
			    MAP_FAILED)
				munmap(copy, g.size);
		}
	}
	g.state = UNTRIED;
	g.base = NULL;
	g.hdr = NULL;
	g.ring_ids = 0;
	g.rings = 0;
	free(g.sock_free); /* the parent's free slots; the child's own file gets its own */
	g.sock_free = NULL;
	g.nsock_free = 0;
	if (g.file_fd >= 0)
		close(g.file_fd);
	g.file_fd = -1;
	g.file_tried = false;
}

static int mkdirs(const char *dir)
{
	char p[CONF_PATH_LEN];
	size_t n = strlen(dir);

	if (n >= sizeof(p))
		return -ENAMETOOLONG;
	memcpy(p, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		p[i] = '\0';
		if (mkdir(p, 0755) && errno != EEXIST)
			return -errno;
		p[i] = dir[i];
	}
	return 0;
}

/* Removes the files of processes that are gone (killed, or ended in _exit() with rings open),
 * as xring-stats does when it lists them: once, when this process makes its own. */
static void sweep(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char *end;
		long pid;

		if (strncmp(de->d_name, "xring.", 6))
			continue;
		pid = strtol(de->d_name + 6, &end, 10);
		if (end == de->d_name + 6 || strcmp(end, ".shm") || pid <= 0 || pid > INT32_MAX ||
		    pid == g.pid)
			continue;
		if (kill((pid_t) pid, 0) && errno == ESRCH)
			unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
}

/* Makes the file; called with the lock held, once per process. */
static int create(const struct xring_conf *c)
{
	const size_t hs = (sizeof(struct xstats_hdr) + 63) & ~(size_t) 63;
	const size_t rs = STATS_MAX_RINGS * sizeof(struct xstats_ring);
	const size_t ps = STATS_MAX_PORTS * sizeof(struct xstats_port);
	const size_t ss = c->stats_sockets * sizeof(struct xstats_sock);
	struct timespec ts;
	struct xstats_hdr *h;
	char tmp[sizeof(g.path) + 8];
	int fd, err;

	if (!c->stats_dir[0])
		return -ENOENT;
	err = mkdirs(c->stats_dir);
	if (err)
		return err;
	free(g.sock_free);
	g.sock_free = malloc(sizeof(*g.sock_free) * (c->stats_sockets ? c->stats_sockets : 1));
	if (!g.sock_free)
		return -ENOMEM;
	/* Lowest slot first: a reader's list starts with the oldest sockets. */
	for (g.nsock_free = 0; g.nsock_free < c->stats_sockets; g.nsock_free++)
		g.sock_free[g.nsock_free] = c->stats_sockets - 1 - g.nsock_free;
	g.pid = getpid();
	g.size = hs + rs + ps + ss;
	if (snprintf(g.path, sizeof(g.path), "%s/xring.%d.shm", c->stats_dir, (int) g.pid) >=
	    (int) sizeof(g.path))
		return -ENAMETOOLONG;
	/* Made under a temporary name and renamed when complete, so a reader never finds a
	 * file shorter than its header says. */
	snprintf(tmp, sizeof(tmp), "%s.tmp", g.path);
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t) g.size)) {
		err = -errno;
		close(fd);
		unlink(tmp);
		return err;
	}
	g.base = mmap(NULL, g.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	err = -errno;
	close(fd);
	if (g.base == MAP_FAILED) {
		g.base = NULL;
		unlink(tmp);
		return err;
	}
	h = g.hdr = (struct xstats_hdr *) g.base;
	h->magic = XSTATS_MAGIC;
	h->version = XSTATS_VERSION;
	h->hdr_size = sizeof(*h);
	h->pid = (uint32_t) g.pid;
	h->file_size = g.size;
	clock_gettime(CLOCK_REALTIME, &ts);
	h->start_ns = (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
	snprintf(h->prog, sizeof(h->prog), "%s", program_invocation_short_name);
	h->ring_size = sizeof(struct xstats_ring);
	h->nrings = STATS_MAX_RINGS;
	h->ring_off = (uint32_t) hs;
	h->port_size = sizeof(struct xstats_port);
	h->nports = STATS_MAX_PORTS;
	h->port_off = (uint32_t) (hs + rs);
	h->sock_size = sizeof(struct xstats_sock);
	h->nsocks = c->stats_sockets;
	h->sock_off = (uint32_t) (hs + rs + ps);
	__atomic_store_n(&h->ready, 1, __ATOMIC_RELEASE);
	if (rename(tmp, g.path)) {
		err = -errno;
		munmap(g.base, g.size);
		g.base = NULL;
		unlink(tmp);
		return err;
	}
	sweep(c->stats_dir);
	if (!g.hooks) {
		g.hooks = true;
		atexit(at_exit);
		pthread_atfork(NULL, NULL, at_fork_child);
	}
	return 0;
}

/* With the lock held: whether the file is there, making it on first use. */
static bool on(void)
{
	const struct xring_conf *c;
	int err;

	if (g.state != UNTRIED)
		return g.state == ON;
	g.state = OFF;
	if (proc_conf(&c))
		return false;
	err = create(c);
	if (err) {
		if (err != -ENOENT)
			log_warn("statistics off: cannot publish them under %s: %s", c->stats_dir,
				 strerror(-err));
		return false;
	}
	g.state = ON;
	g.epoch++;
	return true;
}

/* Takes a free block among n of them; NULL when all are taken. */
static struct xstats_blk *take(uint8_t *first, size_t size, unsigned n, unsigned hint, unsigned *at)
{
	for (unsigned k = 0; k < n; k++) {
		unsigned i = (hint + k) % n;
		struct xstats_blk *b = (struct xstats_blk *) (first + (size_t) i * size);

		if (b->state == XSTATS_FREE) {
			*at = i;
			return b;
		}
	}
	return NULL;
}

/* Starts a taken block over: zero counters, a new generation, live. The caller fills the
 * identity and calls blk_end(). */
static void blk_start(struct xstats_blk *b, size_t size, uint32_t ring)
{
	uint32_t gen = b->gen;

	blk_begin(b);
	memset((uint8_t *) b + sizeof(*b), 0, size - sizeof(*b));
	b->gen = gen + 1;
	b->ring = ring;
	b->state = XSTATS_LIVE;
}

static void blk_free(struct xstats_blk *b)
{
	pthread_mutex_lock(&lock);
	blk_begin(b);
	b->state = XSTATS_FREE;
	blk_end(b);
	pthread_mutex_unlock(&lock);
}

/* ---- rings ---- */

void stats_ring_open(struct xring_ctx *ctx)
{
	struct xstats_ring *r = NULL;
	unsigned at;

	ctx->st = &ctx->st_own;
	pthread_mutex_lock(&lock);
	ctx->st_own.id = ++g.ring_ids;
	ctx->st_own.tid = (uint32_t) syscall(SYS_gettid);
	ctx->st_own.sq_entries = ctx->ring->sq.entries;
	ctx->st_own.cq_entries = ctx->ring->cq.entries;
	if (on()) {
		g.rings++;
		/* Which file the ring counts towards (st_own is never published, so one of its
		 * reserved words can say). A ring inherited through fork() counts towards none. */
		ctx->st_own.rsvd[0] = g.epoch;
		r = (struct xstats_ring *) take(g.base + g.hdr->ring_off, sizeof(*r),
						STATS_MAX_RINGS, 0, &at);
		if (!r)
			g.hdr->rings_lost++;
	}
	if (r) {
		blk_start(&r->b, sizeof(*r), ctx->st_own.id);
		r->id = ctx->st_own.id;
		r->tid = ctx->st_own.tid;
		r->sq_entries = ctx->st_own.sq_entries;
		r->cq_entries = ctx->st_own.cq_entries;
		blk_end(&r->b);
		ctx->st = r;
	}
	pthread_mutex_unlock(&lock);
}

/* The last ring takes the file away (a process may end in _exit(), which skips atexit); a
 * later ring makes it again. Its sockets and ports are gone by now: nothing points into it. */
void stats_ring_close(struct xring_ctx *ctx)
{
	if (!ctx->st)
		return;
	if (ctx->st != &ctx->st_own)
		blk_free(&ctx->st->b);
	ctx->st = &ctx->st_own;
	pthread_mutex_lock(&lock);
	if (ctx->st_own.rsvd[0] && ctx->st_own.rsvd[0] == g.epoch && g.state == ON &&
	    g.pid == getpid() && --g.rings == 0) {
		unlink(g.path);
		munmap(g.base, g.size);
		g.base = NULL;
		g.hdr = NULL;
		g.state = UNTRIED;
	}
	pthread_mutex_unlock(&lock);
}

/* ---- ports ---- */

/* The counters a port block shows, by name: the queue's, the interface's drops and events,
 * TCP's. */
/* clang-format off */
#define QC(f) {#f, 0, offsetof(struct port_counters, f)}
#define IC(f) {#f, 1, offsetof(struct iface_stats, f)}
#define TC(f) {"tcp_" #f, 2, offsetof(struct tcp_stats, f)}
#define NC(f) {#f, 3, offsetof(struct netport, f)}
static const struct {
	const char *name;
	int from; /* the queue's, the interface's, TCP's or the attachment's own */
	size_t off;
} port_counters[] = {
	QC(rx_frames), QC(rx_bytes), QC(rx_drops), QC(rx_bad), QC(tx_frames), QC(tx_bytes),
	QC(tx_drops), QC(tx_full), QC(polls), QC(poll_hits), QC(kicks), NC(rx_chained_drops),
	IC(eth_truncated), IC(eth_vlan), IC(eth_other_type), IC(eth_not_for_us), IC(eth_bad_src),
	IC(arp_malformed), IC(arp_unsupported), IC(arp_bad_sha), IC(arp_conflict),
	IC(arp_not_for_us), IC(arp_req_in), IC(arp_reply_in), IC(arp_req_out), IC(arp_reply_out),
	IC(ip_malformed), IC(ip_version), IC(ip_bad_csum), IC(ip_fragment), IC(ip_bad_src),
	IC(ip_not_for_us), IC(ip_l2_bcast), IC(ip_unknown_proto), IC(ip_delivered),
	IC(icmp_malformed), IC(icmp_bad_csum), IC(icmp_echo_in), IC(icmp_echo_out),
	IC(icmp_err_in), IC(icmp_err_out), IC(icmp_ratelimited), IC(udp_malformed),
	IC(udp_bad_csum), IC(udp_no_port), IC(udp_delivered), IC(tcp_malformed), IC(tcp_bad_csum),
	IC(tcp_bcast), IC(tcp_no_handler), IC(tcp_delivered), IC(tx_nobuf), IC(tx_too_big),
	IC(neigh_miss), IC(neigh_queue_drop), IC(neigh_failed), IC(neigh_failed_frames),
	TC(segs_in), TC(segs_out), TC(bytes_out), TC(rexmt_bytes), TC(bad_opts), TC(no_port_rst),
	TC(rst_in), TC(rst_out), TC(paws_drops), TC(out_of_window), TC(ooo_segs), TC(ooo_full),
	TC(dup_segs), TC(bad_ack), TC(syn_queue_full), TC(accept_queue_full), TC(no_tcb),
	TC(rto_fired), TC(fast_rexmt), TC(sack_recoveries), TC(tx_fail), TC(rcv_trimmed),
};
/* clang-format on */
#define NPORTC (sizeof(port_counters) / sizeof(port_counters[0]))
static_assert(NPORTC <= XSTATS_PORT_COUNTERS, "port block too small");

static void port_names(struct netport *np, struct xstats_port *p)
{
	snprintf(p->name, sizeof(p->name), "%s", np->xp->port->name);
	p->queue = np->q->index;
	p->ip = np->xp->ip;
	p->ncounters = NPORTC;
	for (unsigned i = 0; i < NPORTC; i++)
		snprintf(p->c[i].name, sizeof(p->c[i].name), "%s", port_counters[i].name);
}

static void port_values(struct netport *np, struct xstats_port *p)
{
	const uint8_t *src[4] = {(const uint8_t *) &np->q->stats, (const uint8_t *) &np->ifc.stats,
				 (const uint8_t *) tcp_get_stats(&np->tcp), (const uint8_t *) np};

	for (unsigned i = 0; i < NPORTC; i++)
		p->c[i].value =
			*(const uint64_t *) (src[port_counters[i].from] + port_counters[i].off);
}

void stats_port_snapshot(struct netport *np, struct xstats_port *p)
{
	memset(p, 0, sizeof(*p));
	p->b.ring = np->ctx->st->id;
	port_names(np, p);
	port_values(np, p);
}

void stats_port_open(struct netport *np)
{
	struct xstats_port *p = NULL;
	unsigned at;

	np->st = NULL;
	pthread_mutex_lock(&lock);
	if (on()) {
		p = (struct xstats_port *) take(g.base + g.hdr->port_off, sizeof(*p),
						STATS_MAX_PORTS, 0, &at);
		if (!p)
			g.hdr->ports_lost++;
	}
	if (p) {
		blk_start(&p->b, sizeof(*p), np->ctx->st->id);
		port_names(np, p);
		blk_end(&p->b);
		np->st = p;
	}
	pthread_mutex_unlock(&lock);
}

/* A snapshot of counters other structures own: refreshed under seq, as a whole. */
void stats_port_publish(struct netport *np, uint64_t now)
{
	struct xstats_port *p = np->st;

	np->st_next_ns = now + STATS_PORT_NS;
	np->st_dirty = false;
	if (!p)
		return;
	blk_begin(&p->b);
	port_values(np, p);
	p->updated_ns = now;
	blk_end(&p->b);
}

void stats_ports_idle(struct xring_ctx *ctx)
{
	for (struct netport *np = ctx->netports; np; np = np->next)
		if (np->st_dirty)
			stats_port_publish(np, clock_mono_ns());
}

void stats_port_close(struct netport *np)
{
	if (np->st)
		blk_free(&np->st->b);
	np->st = NULL;
}

/* ---- sockets ---- */

static void sock_fill(struct xsock *xs, struct xstats_sock *s)
{
	s->fd = xs->fd;
	s->slot = xs->slot;
	s->type = xs->type == SOCK_STREAM ? XSTATS_TCP : XSTATS_UDP;
	s->listening = xs->listening;
	s->state = xs->type == SOCK_STREAM ? (xs->tcb ? (uint8_t) tcp_state(xs->tcb) : 0)
					   : (uint8_t) xs->connected;
	s->lip = xs->lip;
	s->lport = xs->lport;
	s->rip = xs->rip;
	s->rport = xs->rport;
	s->port_id = xs->np->xp->id;
}

bool stats_sock_published(const struct xsock *xs)
{
	return xs->st != &xs->ctx->sock_sink;
}

void stats_sock_open(struct xsock *xs)
{
	struct xstats_sock *s = NULL;

	xs->st = &xs->ctx->sock_sink;
	pthread_mutex_lock(&lock);
	if (on()) {
		if (g.nsock_free)
			s = (struct xstats_sock *) (g.base + g.hdr->sock_off) +
			    g.sock_free[--g.nsock_free];
		else
			g.hdr->socks_lost++;
	}
	if (s) {
		blk_start(&s->b, sizeof(*s), xs->ctx->st->id);
		sock_fill(xs, s);
		blk_end(&s->b);
		xs->st = s;
	}
	pthread_mutex_unlock(&lock);
	xs->ctx->st->socks++;
}

void stats_sock_ident(struct xsock *xs)
{
	struct xstats_sock *s = xs->st;

	if (!stats_sock_published(xs))
		return;
	if (xs->tcb)
		tcp_set_stats(xs->tcb, (struct tcp_conn_stats *) &s->tcp_segs_in);
	blk_begin(&s->b);
	sock_fill(xs, s);
	blk_end(&s->b);
}

int stats_sock_line(const struct xsock *xs, char *buf, size_t len)
{
	struct xstats_sock id = {.b.ring = xs->ctx->st->id};

	if (stats_sock_published(xs))
		return xstats_fmt_sock(xs->st, buf, len);
	sock_fill((struct xsock *) xs, &id);
	return xstats_fmt_sock_unpublished(&id, buf, len);
}

/* XRING_STATS_FILE, opened at the first socket that closes. */
static int stats_file(void)
{
	const struct xring_conf *c;
	char path[CONF_PATH_LEN + 32];

	if (g.file_tried)
		return g.file_fd;
	g.file_tried = true;
	if (proc_conf(&c) || !c->stats_file[0])
		return -1;
	if (conf_expand_pid(c->stats_file, (int) getpid(), path, sizeof(path)) < 0) {
		log_warn("XRING_STATS_FILE: the path is too long");
		return -1;
	}
	g.file_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (g.file_fd < 0)
		log_warn("XRING_STATS_FILE: cannot open %s: %s", path, strerror(errno));
	return g.file_fd;
}

void stats_sock_close(struct xsock *xs)
{
	struct xstats_sock *s = xs->st;
	int fd;

	if (xs->tcb)
		tcp_set_stats(xs->tcb, NULL); /* the connection may live on without the socket */
	if (xs->tcb && xs->type == SOCK_STREAM && !xs->listening)
		s->state = (uint8_t) tcp_state(xs->tcb);
	pthread_mutex_lock(&lock);
	fd = stats_file();
	pthread_mutex_unlock(&lock);
	if (fd >= 0) {
		char line[600];
		int n = stats_sock_line(xs, line, sizeof(line) - 1);

		if (n > (int) sizeof(line) - 2)
			n = (int) sizeof(line) - 2;
		line[n++] = '\n';
		(void) !write(fd, line, (size_t) n);
	}
	xs->ctx->st->socks--;
	if (stats_sock_published(xs)) {
		pthread_mutex_lock(&lock);
		blk_begin(&s->b);
		s->b.state = XSTATS_FREE;
		blk_end(&s->b);
		/* Only a slot of the file that exists now goes back to its free list. */
		if (g.state == ON && (uint8_t *) s >= g.base && (uint8_t *) s < g.base + g.size)
			g.sock_free[g.nsock_free++] =
				(uint32_t) (s - (struct xstats_sock *) (g.base + g.hdr->sock_off));
		pthread_mutex_unlock(&lock);
	}
	xs->st = &xs->ctx->sock_sink;
}
