/*
 * The XLIO-style extras: dummy sends (XRING_MSG_DUMMY), allocation hooks with the region
 * callback (xring_set_alloc_hooks), and a thread's own offload decision (xring_thread_offload).
 * Offloaded sockets run over an in-memory link to a remote host (support/offload_link.c) whose
 * every received frame is counted, so "nothing reached the wire" is checked, not assumed.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <xring.h>

#include "nic/pool_mem.h"
#include "nic/ports.h"
#include "ops/xsock.h"
#include "offload_link.h"
#include "stack/tcp/tcp_int.h"

static void link_up(void)
{
	struct memlink_config mc = {.name = "x"};

	ol_setup(&mc);
}

static int32_t send_flags(int fd, const void *buf, size_t len, int flags, uint64_t ud)
{
	struct xring_sqe *sqe = xring_get_sqe(&ol.ring);

	xring_prep_send(sqe, fd, buf, len, flags);
	sqe->user_data = ud;
	return ol_run(ud);
}

/* Drives both ends for a while, so anything sent would have arrived. */
static void settle(void)
{
	struct xring_cqe *cqe;

	for (int i = 0; i < 200; i++) {
		xring_submit(&ol.ring);
		xring_peek_cqe(&ol.ring, &cqe);
		ol_pump();
	}
}

TestSuite(extras);

/* --- dummy sends ----------------------------------------------------------------------------- */

Test(extras, a_dummy_udp_send_answers_its_length_and_puts_nothing_on_the_wire)
{
	int32_t res;
	int fd;
	struct xsock *xs;
	char msg[300];

	link_up();
	fd = ol_connect(SOCK_DGRAM, 7000, &res);
	cr_assert_eq(res, 0);
	xs = xsock_by_fd(ol.ring.ctx, fd);
	cr_assert_not_null(xs, "not offloaded");
	memset(msg, 'd', sizeof(msg));
	for (int i = 0; i < 3; i++)
		cr_expect_eq(send_flags(fd, msg, sizeof(msg), XRING_MSG_DUMMY, 10 + i), 300);
	settle();
	cr_expect_eq(ol.nframes, 0, "%u frame(s) reached the remote host (not even ARP may)",
		     ol.nframes);
	cr_expect_eq(xs->st->dummy_sends, 3);
	cr_expect_eq(xs->st->dummy_bytes, 900);
	/* The path still works for real, with the same buffers. */
	cr_expect_eq(send_flags(fd, msg, 20, 0, 20), 20);
	for (int i = 0; i < 1000 && !ol.udp_in; i++)
		settle();
	cr_expect_eq(ol.udp_in, 1);
	close(fd);
	ol_teardown();
}

Test(extras, a_dummy_udp_send_is_refused_as_a_real_one_would_be)
{
	char big[4000] = {0};
	int32_t res;
	int fd;

	link_up();
	fd = ol_connect(SOCK_DGRAM, 7000, &res);
	cr_assert_eq(res, 0);
	cr_expect_eq(send_flags(fd, big, sizeof(big), XRING_MSG_DUMMY, 1), -EMSGSIZE);
	cr_expect_eq(xsock_by_fd(ol.ring.ctx, fd)->st->dummy_sends, 0);
	close(fd);
	ol_teardown();
}

Test(extras, a_dummy_tcp_send_changes_no_sequence_number_and_sends_no_segment)
{
	const struct tcb *t;
	uint32_t nxt, una, max;
	uint64_t peer_segs;
	unsigned frames;
	struct xsock *xs;
	char msg[5000];
	int32_t res;
	int fd;

	link_up();
	fd = ol_connect(SOCK_STREAM, 7001, &res);
	cr_assert_eq(res, 0);
	xs = xsock_by_fd(ol.ring.ctx, fd);
	cr_assert_not_null(xs);
	settle();
	t = xs->tcb;
	nxt = t->snd_nxt;
	una = t->snd_una;
	max = t->snd_max;
	frames = ol.nframes;
	peer_segs = tcp_get_stats(&ol.peer_tcp)->segs_in;
	memset(msg, 't', sizeof(msg));
	cr_expect_eq(send_flags(fd, msg, sizeof(msg), XRING_MSG_DUMMY, 5), 5000);
	settle();
	cr_expect_eq(t->snd_nxt, nxt);
	cr_expect_eq(t->snd_una, una);
	cr_expect_eq(t->snd_max, max);
	cr_expect_eq(tcp_sndspace(t), 262144, "nothing was queued for sending");
	cr_expect_eq(ol.nframes, frames, "a frame reached the remote host");
	cr_expect_eq(tcp_get_stats(&ol.peer_tcp)->segs_in, peer_segs);
	cr_expect_eq(xs->st->dummy_sends, 1);
	cr_expect_eq(xs->st->dummy_bytes, 5000);
	close(fd);
	ol_teardown();
}

Test(extras, a_dummy_send_on_a_kernel_socket_is_not_supported)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0), peer = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in lo = ol_sin("127.0.0.1", 0);
	socklen_t len = sizeof(lo);
	struct xring_sqe *sqe;
	struct msghdr mh = {0};
	struct iovec iov = {"x", 1};
	char buf[8];

	link_up();
	cr_assert_eq(bind(peer, (struct sockaddr *) &lo, sizeof(lo)), 0);
	getsockname(peer, (struct sockaddr *) &lo, &len);
	cr_assert_eq(connect(fd, (struct sockaddr *) &lo, sizeof(lo)), 0);
	cr_expect_eq(send_flags(fd, "kernel", 6, XRING_MSG_DUMMY, 1), -EOPNOTSUPP);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	sqe = xring_get_sqe(&ol.ring);
	xring_prep_sendmsg(sqe, fd, &mh, XRING_MSG_DUMMY);
	sqe->user_data = 2;
	cr_expect_eq(ol_run(2), -EOPNOTSUPP);
	cr_expect_eq(recv(peer, buf, sizeof(buf), MSG_DONTWAIT), -1, "the kernel sent it");
	close(fd);
	close(peer);
	ol_teardown();
}

/* --- allocation hooks ------------------------------------------------------------------------ */

#define MAXR 16

static struct {
	int allocs, frees, regions;
	void *ptr[MAXR];
	size_t len[MAXR];
	void *region[MAXR];
	size_t region_len[MAXR], region_page[MAXR];
	size_t bad_align;
	void *arg;
} hk;

static void *my_alloc(size_t len, size_t align, void *arg)
{
	void *p = aligned_alloc(align, len);

	if (align < 4096 || (align & (align - 1)) || len % align)
		hk.bad_align = align;
	if (hk.allocs < MAXR) {
		hk.ptr[hk.allocs] = p;
		hk.len[hk.allocs] = len;
	}
	hk.allocs++;
	hk.arg = arg;
	return p;
}

static void my_free(void *p, size_t len, void *arg)
{
	bool known = false;

	for (int i = 0; i < hk.allocs && i < MAXR; i++)
		known |= hk.ptr[i] == p && hk.len[i] == len;
	cr_expect(known, "free(%p, %zu) of memory the hook did not give", p, len);
	hk.frees++;
	free(p);
}

static void my_region(void *addr, size_t len, size_t page, void *arg)
{
	if (hk.regions < MAXR) {
		hk.region[hk.regions] = addr;
		hk.region_len[hk.regions] = len;
		hk.region_page[hk.regions] = page;
	}
	hk.regions++;
}

static int token;

Test(extras, pools_take_their_memory_from_the_hooks_and_report_each_region)
{
	struct xring_alloc_hooks h = {my_alloc, my_free, my_region, &token};
	struct memlink_config mc = {.name = "x", .nbufs = 64, .buf_size = 2048};
	char msg[64] = "on user memory";
	int32_t res;
	int fd;

	memset(&hk, 0, sizeof(hk));
	cr_assert_eq(xring_set_alloc_hooks(&h), 0);
	ol_setup(&mc);
	/* One pool per direction of the link's one queue pair. */
	cr_expect_eq(hk.allocs, 2);
	cr_expect_eq(hk.len[0], 64 * 2048);
	cr_expect_eq(hk.bad_align, 0, "alignment %zu", hk.bad_align);
	cr_expect_eq(hk.arg, &token);
	cr_expect_eq(hk.regions, 2);
	for (int i = 0; i < 2; i++) {
		cr_expect_eq(hk.region[i], hk.ptr[i]);
		cr_expect_eq(hk.region_len[i], hk.len[i]);
		cr_expect_eq(hk.region_page[i], (size_t) sysconf(_SC_PAGESIZE));
	}
	cr_expect_eq(xring_set_alloc_hooks(NULL), -EBUSY, "a pool exists already");
	/* Traffic crosses the link in the application's memory. */
	fd = ol_connect(SOCK_DGRAM, 7000, &res);
	cr_assert_eq(res, 0);
	cr_expect_eq(send_flags(fd, msg, sizeof(msg), 0, 3), (int32_t) sizeof(msg));
	for (int i = 0; i < 1000 && !ol.udp_in; i++)
		settle();
	cr_expect_eq(ol.udp_in, 1, "the datagram did not cross");
	close(fd);
	ol_teardown();
	cr_expect_eq(hk.frees, 2, "every hooked pool goes back through the free hook");
	cr_expect_eq(pmem_in_use(), 0);
}

Test(extras, the_region_callback_alone_sees_xring_s_own_pools)
{
	struct xring_alloc_hooks h = {.region = my_region};
	struct memlink_config mc = {.nbufs = 64, .buf_size = 1024};
	struct port *e[2];

	memset(&hk, 0, sizeof(hk));
	cr_assert_eq(xring_set_alloc_hooks(&h), 0);
	cr_assert_eq(memlink_create(&mc, e), 0);
	cr_expect_eq(hk.regions, 2);
	cr_expect_geq(hk.region_len[0], 64 * 1024);
	cr_expect_neq(hk.region[0], hk.region[1]);
	e[0]->ops->destroy(e[0]);
	e[1]->ops->destroy(e[1]);
}

Test(extras, alloc_hooks_need_both_alloc_and_free)
{
	struct xring_alloc_hooks h = {.alloc = my_alloc};

	cr_expect_eq(xring_set_alloc_hooks(&h), -EINVAL);
	h = (struct xring_alloc_hooks){.free = my_free};
	cr_expect_eq(xring_set_alloc_hooks(&h), -EINVAL);
	cr_expect_eq(xring_set_alloc_hooks(NULL), 0);
}

static void *null_alloc(size_t len, size_t align, void *arg)
{
	return NULL;
}

Test(extras, a_hook_that_fails_fails_the_pool_with_enomem)
{
	struct xring_alloc_hooks h = {null_alloc, my_free, NULL, NULL};
	struct memlink_config mc = {0};
	struct port *e[2];

	cr_assert_eq(xring_set_alloc_hooks(&h), 0);
	cr_expect_eq(memlink_create(&mc, e), -ENOMEM);
	cr_expect_eq(pmem_in_use(), 0, "a refused pool is not counted");
}

/* --- a thread's offload decision ------------------------------------------------------------- */

Test(extras, a_thread_with_offload_off_gets_kernel_sockets_until_it_forgets)
{
	int32_t res;
	int fd;

	link_up();
	cr_assert_eq(xring_thread_offload(0, pthread_self()), 0);
	fd = ol_connect(SOCK_DGRAM, 7000, &res);
	cr_expect(res == 0 || res == -ENETUNREACH, "kernel connect gave %d", res);
	cr_expect_not(ol_offloaded(fd), "offloaded on a thread that said no");
	close(fd);
	cr_assert_eq(xring_thread_offload(-1, pthread_self()), 0);
	fd = ol_connect(SOCK_DGRAM, 7000, &res);
	cr_expect_eq(res, 0);
	cr_expect(ol_offloaded(fd), "XRING_OFFLOAD=1 applies again");
	close(fd);
	ol_teardown();
}

Test(extras, a_rule_still_decides_before_the_thread)
{
	int32_t res;
	int fd;

	link_up();
	cr_assert_eq(xring_thread_offload(0, pthread_self()), 0);
	cr_assert_eq(xring_add_conf_rule("use xring udp_connect 198.18.0.2/32:7000"), 0);
	fd = ol_connect(SOCK_DGRAM, 7000, &res);
	cr_expect_eq(res, 0);
	cr_expect(ol_offloaded(fd), "the rule said xring");
	close(fd);
	ol_teardown();
}

static void *idle(void *arg)
{
	return arg;
}

Test(extras, another_thread_s_choice_does_not_touch_this_one)
{
	pthread_t other;
	int32_t res;
	int fd;

	link_up();
	cr_assert_eq(pthread_create(&other, NULL, idle, NULL), 0);
	cr_assert_eq(xring_thread_offload(0, other), 0);
	fd = ol_connect(SOCK_DGRAM, 7000, &res);
	cr_expect_eq(res, 0);
	cr_expect(ol_offloaded(fd));
	close(fd);
	pthread_join(other, NULL);
	ol_teardown();
}

struct thr_arg {
	int fd, offloaded;
	int32_t res;
};

/* The ring driven from a thread that turned offload on while XRING_OFFLOAD is 0. */
static void *connect_on(void *p)
{
	struct thr_arg *a = p;

	xring_thread_offload(1, pthread_self());
	a->fd = ol_connect(SOCK_DGRAM, 7000, &a->res);
	a->offloaded = ol_offloaded(a->fd);
	return NULL;
}

Test(extras, a_thread_with_offload_on_offloads_where_the_default_is_off)
{
	struct thr_arg a = {0};
	pthread_t t;
	int32_t res;
	int fd;

	setenv("XRING_OFFLOAD", "0", 1);
	link_up();
	fd = ol_connect(SOCK_DGRAM, 7000, &res);
	cr_expect_not(ol_offloaded(fd), "the default is off");
	close(fd);
	cr_assert_eq(pthread_create(&t, NULL, connect_on, &a), 0);
	pthread_join(t, NULL);
	cr_expect_eq(a.res, 0);
	cr_expect(a.offloaded, "the thread said yes");
	close(a.fd);
	ol_teardown();
}

Test(extras, thread_offload_refuses_values_other_than_minus_one_zero_and_one)
{
	cr_expect_eq(xring_thread_offload(2, pthread_self()), -EINVAL);
	cr_expect_eq(xring_thread_offload(-2, pthread_self()), -EINVAL);
}

Test(extras, alloc_hooks_are_refused_once_a_port_has_opened_even_without_a_pool)
{
	struct xring_alloc_hooks h = {.region = my_region};
	struct xring ring;
	char spec[160];

	/* A memif server holds no pool of its own until a client brings one. */
	snprintf(spec, sizeof(spec),
		 "memif:path=/tmp/xring-extras-%d.sock,role=server,ip=198.18.0.1/24", getpid());
	setenv("XRING_PORTS", spec, 1);
	cr_assert_eq(xring_queue_init(8, &ring, 0), 0);
	cr_expect_eq(xring_set_alloc_hooks(&h), -EBUSY);
	xring_queue_exit(&ring);
	ports_reset();
	snprintf(spec, sizeof(spec), "/tmp/xring-extras-%d.sock", getpid());
	unlink(spec);
}
