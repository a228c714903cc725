/*
 * Offloaded TCP over a memif link whose MTU is far beyond the 9 KB jumbo frames: a forked
 * server process receives a patterned stream of 64 KiB sends and checks every byte, as the
 * demo's stream does. Once with each frame in one buffer (64 KiB segments), once with buffers
 * smaller than the MTU, where each end sends what fits one of its buffers however large the
 * MSS its peer announced.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <xring.h>

#define SRV_IP "198.18.0.2"
#define CLI_IP "198.18.0.1"
#define CHUNK  65536
#define CHUNKS 64

static uint8_t pattern(uint64_t i)
{
	return (uint8_t) ((i * 2654435761u) >> 13);
}

/* Submits, waits at most 10 s for one CQE and returns its res (-ETIME when none came). */
static int32_t wait1(struct xring *r)
{
	struct __kernel_timespec ts = {.tv_sec = 10};
	struct xring_cqe *cqe;
	int32_t res;

	xring_submit(r);
	if (xring_wait_cqe_timeout(r, &cqe, &ts))
		return -ETIME;
	res = cqe->res;
	xring_cqe_seen(r, cqe);
	return res;
}

static struct sockaddr_in sin_of(const char *ip, uint16_t port)
{
	struct sockaddr_in s = {.sin_family = AF_INET, .sin_port = htons(port)};

	inet_pton(AF_INET, ip, &s.sin_addr);
	return s;
}

/* The server: 0 when every byte of the stream arrived once and in order, then it answered. */
static int server(const char *spec, uint16_t port)
{
	static uint8_t buf[CHUNK];
	struct sockaddr_in me = sin_of(SRV_IP, port);
	uint64_t got = 0;
	struct xring r;
	int lfd, fd;
	int32_t n;

	if (xring_port_add(spec) || xring_queue_init(8, &r, 0))
		return 1;
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	xring_prep_bind(xring_get_sqe(&r), lfd, (struct sockaddr *) &me, sizeof(me));
	if (wait1(&r))
		return 2;
	xring_prep_listen(xring_get_sqe(&r), lfd, 4);
	if (wait1(&r))
		return 3;
	xring_prep_accept(xring_get_sqe(&r), lfd, NULL, NULL, 0);
	fd = wait1(&r);
	if (fd < 0)
		return 4;
	for (;;) {
		xring_prep_recv(xring_get_sqe(&r), fd, buf, sizeof(buf), 0);
		n = wait1(&r);
		if (n == 0)
			break;
		if (n < 0)
			return 5;
		for (int32_t i = 0; i < n; i++)
			if (buf[i] != pattern(got + (uint64_t) i))
				return 6;
		got += (uint64_t) n;
	}
	xring_prep_send(xring_get_sqe(&r), fd, &got, sizeof(got), 0);
	if (wait1(&r) != (int32_t) sizeof(got))
		return 7;
	xring_prep_close(xring_get_sqe(&r), fd);
	wait1(&r);
	xring_queue_exit(&r);
	return 0;
}

static void stream_over(const char *link)
{
	static uint8_t buf[CHUNK];
	uint16_t port = (uint16_t) (20000 + getpid() % 20000);
	struct sockaddr_in srv = sin_of(SRV_IP, port);
	char spec_s[256], spec_c[256];
	uint64_t echoed = 0;
	struct xring r;
	int fd = -1, status;
	int32_t res = -ECONNREFUSED;
	pid_t pid;

	snprintf(spec_s, sizeof(spec_s),
		 "memif:path=@xring-jumbo-%d,role=server,ip=" SRV_IP "/24,%s", (int) getpid(),
		 link);
	snprintf(spec_c, sizeof(spec_c),
		 "memif:path=@xring-jumbo-%d,role=client,ip=" CLI_IP "/24,%s", (int) getpid(),
		 link);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(server(spec_s, port));
	cr_assert_eq(xring_port_add(spec_c), 0);
	cr_assert_eq(xring_queue_init(8, &r, 0), 0);
	/* The server may not listen yet: a fresh socket, and again (bounded). */
	for (int tries = 0; tries < 300 && res == -ECONNREFUSED; tries++) {
		if (fd >= 0) {
			xring_prep_close(xring_get_sqe(&r), fd);
			wait1(&r);
			usleep(10000);
		}
		fd = socket(AF_INET, SOCK_STREAM, 0);
		xring_prep_connect(xring_get_sqe(&r), fd, (struct sockaddr *) &srv, sizeof(srv));
		res = wait1(&r);
	}
	cr_assert_eq(res, 0, "connect: %d", res);
	for (uint64_t c = 0; c < CHUNKS; c++) {
		for (size_t i = 0; i < CHUNK; i++)
			buf[i] = pattern(c * CHUNK + i);
		xring_prep_send(xring_get_sqe(&r), fd, buf, CHUNK, MSG_WAITALL);
		cr_assert_eq(wait1(&r), CHUNK);
	}
	xring_prep_shutdown(xring_get_sqe(&r), fd, SHUT_WR);
	cr_assert_eq(wait1(&r), 0);
	xring_prep_recv(xring_get_sqe(&r), fd, &echoed, sizeof(echoed), MSG_WAITALL);
	cr_assert_eq(wait1(&r), (int32_t) sizeof(echoed));
	cr_assert_eq(echoed, (uint64_t) CHUNK * CHUNKS, "the server counted %llu bytes",
		     (unsigned long long) echoed);
	xring_prep_close(xring_get_sqe(&r), fd);
	wait1(&r);
	xring_queue_exit(&r);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the server found the stream damaged (exit %d)", WEXITSTATUS(status));
}

Test(memif_jumbo, carries_a_stream_in_64_KiB_frames_every_byte_once_and_in_order, .timeout = 120)
{
	stream_over("mtu=65000,bufsize=65472,ring=32,csum=none");
}

Test(memif_jumbo, carries_a_stream_when_the_mtu_is_larger_than_one_buffer, .timeout = 120)
{
	stream_over("mtu=65000,bufsize=9216,ring=64");
}
