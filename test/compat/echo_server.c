/*
 * A TCP echo server written against liburing's API only, the way a liburing program would be:
 * one multishot accept, one multishot recv per connection that picks buffers from a provided
 * buffer ring, sends that echo each buffer before it goes back to the ring, close on EOF.
 * Nothing here names xring: the build compiles it with -include xring/liburing.h, which turns
 * the <liburing.h> below into an empty include and every io_uring_* name into xring's.
 *
 * Usage: echo_server [PORT]. Listens on 127.0.0.1 (port 0: any), prints "port N" on stdout,
 * and serves until its standard input reaches end of file; then it tears everything down and
 * exits with 0, or with 1 on any unexpected error.
 */
#include <liburing.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NR_BUFS  64
#define BUF_SIZE 4096
#define BGID     7
#define MAX_FD   1024

enum {
	EV_ACCEPT,
	EV_RECV,
	EV_SEND,
	EV_CLOSE,
	EV_STDIN
};

/* user_data: kind in the low byte, fd above it, buffer id above that. */
static unsigned long long ud(int kind, int fd, unsigned bid)
{
	return (unsigned long long) kind | ((unsigned long long) fd << 8) |
	       ((unsigned long long) bid << 40);
}

/* Received buffers wait here, in order, until the one send in flight for the connection is
 * done: two sends racing on one socket could interleave a short write. */
struct conn {
	int open;
	int eof;
	int recv_armed;
	int sending;
	unsigned q[NR_BUFS]; /* buffer ids */
	unsigned qlen[NR_BUFS];
	unsigned qhead, qcount;
	unsigned sent; /* bytes of q[qhead] already sent */
};

static struct io_uring ring;
static struct io_uring_buf_ring *br;
static unsigned char *bufs;
static struct conn conns[MAX_FD];
static int nr_open;

static struct io_uring_sqe *sqe_get(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

	if (!sqe) {
		io_uring_submit(&ring);
		sqe = io_uring_get_sqe(&ring);
	}
	if (!sqe) {
		fprintf(stderr, "echo_server: no SQE\n");
		exit(1);
	}
	return sqe;
}

static void arm_recv(int fd)
{
	struct io_uring_sqe *sqe = sqe_get();

	io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, ud(EV_RECV, fd, 0));
	conns[fd].recv_armed = 1;
}

static void recycle(unsigned bid)
{
	io_uring_buf_ring_add(br, bufs + (size_t) bid * BUF_SIZE, BUF_SIZE, (unsigned short) bid,
			      io_uring_buf_ring_mask(NR_BUFS), 0);
	io_uring_buf_ring_advance(br, 1);
	/* A receive that stopped for want of buffers can go on now. */
	for (int fd = 0; fd < MAX_FD; fd++)
		if (conns[fd].open && !conns[fd].eof && !conns[fd].recv_armed)
			arm_recv(fd);
}

static void close_conn(int fd)
{
	struct io_uring_sqe *sqe = sqe_get();

	io_uring_prep_close(sqe, fd);
	io_uring_sqe_set_data64(sqe, ud(EV_CLOSE, fd, 0));
	conns[fd].open = 0;
}

static void send_next(int fd)
{
	struct conn *c = &conns[fd];
	struct io_uring_sqe *sqe;
	unsigned bid;

	if (c->sending)
		return;
	if (!c->qcount) {
		if (c->eof && c->open && !c->recv_armed)
			close_conn(fd);
		return;
	}
	bid = c->q[c->qhead];
	sqe = sqe_get();
	io_uring_prep_send(sqe, fd, bufs + (size_t) bid * BUF_SIZE + c->sent,
			   c->qlen[c->qhead] - c->sent, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, ud(EV_SEND, fd, bid));
	c->sending = 1;
}

static int handle(struct io_uring_cqe *cqe, int lfd, int *stop)
{
	unsigned long long data = io_uring_cqe_get_data64(cqe);
	int kind = (int) (data & 0xff), fd = (int) ((data >> 8) & 0xffffffff);
	struct conn *c = &conns[fd];

	switch (kind) {
	case EV_ACCEPT:
		if (cqe->res >= 0) {
			if (cqe->res >= MAX_FD) {
				close(cqe->res);
			} else {
				memset(&conns[cqe->res], 0, sizeof(struct conn));
				conns[cqe->res].open = 1;
				nr_open++;
				arm_recv(cqe->res);
			}
		} else if (!*stop) {
			fprintf(stderr, "echo_server: accept: %s\n", strerror(-cqe->res));
			return -1;
		}
		if (!(cqe->flags & IORING_CQE_F_MORE) && !*stop) {
			struct io_uring_sqe *sqe = sqe_get();

			io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, 0);
			io_uring_sqe_set_data64(sqe, ud(EV_ACCEPT, lfd, 0));
		}
		break;
	case EV_RECV:
		if (!(cqe->flags & IORING_CQE_F_MORE))
			c->recv_armed = 0;
		if (cqe->res > 0) {
			unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
			unsigned slot = (c->qhead + c->qcount) % NR_BUFS;

			if (!(cqe->flags & IORING_CQE_F_BUFFER)) {
				fprintf(stderr, "echo_server: recv without a buffer\n");
				return -1;
			}
			c->q[slot] = bid;
			c->qlen[slot] = (unsigned) cqe->res;
			c->qcount++;
			send_next(fd);
		} else if (cqe->res == 0 || cqe->res == -ECONNRESET) {
			c->eof = 1;
			send_next(fd);
		} else if (cqe->res == -ENOBUFS) {
			/* re-armed by recycle() */
		} else {
			fprintf(stderr, "echo_server: recv: %s\n", strerror(-cqe->res));
			return -1;
		}
		if (!c->recv_armed && !c->eof && c->open && cqe->res != -ENOBUFS)
			arm_recv(fd);
		break;
	case EV_SEND:
		c->sending = 0;
		if (cqe->res < 0) {
			fprintf(stderr, "echo_server: send: %s\n", strerror(-cqe->res));
			return -1;
		}
		c->sent += (unsigned) cqe->res;
		if (c->sent == c->qlen[c->qhead]) {
			unsigned bid = c->q[c->qhead];

			c->sent = 0;
			c->qhead = (c->qhead + 1) % NR_BUFS;
			c->qcount--;
			recycle(bid);
		}
		send_next(fd);
		break;
	case EV_CLOSE:
		nr_open--;
		break;
	case EV_STDIN:
		*stop = 1;
		break;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	socklen_t alen = sizeof(addr);
	struct io_uring_params params;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	int lfd, one = 1, ret, stop = 0, failed = 0;

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	addr.sin_port = htons((unsigned short) (argc > 1 ? atoi(argv[1]) : 0));
	/* An address to serve on other than loopback (the offload tests use a port's address). */
	if (argc > 2 && inet_pton(AF_INET, argv[2], &addr.sin_addr) != 1) {
		fprintf(stderr, "echo_server: bad address %s\n", argv[2]);
		return 1;
	}
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *) &addr, sizeof(addr)) || listen(lfd, 64) ||
	    getsockname(lfd, (struct sockaddr *) &addr, &alen)) {
		perror("echo_server: listening socket");
		return 1;
	}

	memset(&params, 0, sizeof(params));
	params.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
		       IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_CQSIZE;
	params.cq_entries = 1024;
	ret = io_uring_queue_init_params(256, &ring, &params);
	if (ret < 0) {
		fprintf(stderr, "echo_server: queue_init: %s\n", strerror(-ret));
		return 1;
	}
	if (!(params.features & IORING_FEAT_FAST_POLL))
		fprintf(stderr, "echo_server: no FEAT_FAST_POLL\n");

	br = io_uring_setup_buf_ring(&ring, NR_BUFS, BGID, 0, &ret);
	bufs = malloc((size_t) NR_BUFS * BUF_SIZE);
	if (!br || !bufs) {
		fprintf(stderr, "echo_server: buffer ring: %s\n", strerror(-ret));
		return 1;
	}
	for (unsigned i = 0; i < NR_BUFS; i++)
		io_uring_buf_ring_add(br, bufs + (size_t) i * BUF_SIZE, BUF_SIZE,
				      (unsigned short) i, io_uring_buf_ring_mask(NR_BUFS), (int) i);
	io_uring_buf_ring_advance(br, NR_BUFS);

	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, 0);
	io_uring_sqe_set_data64(sqe, ud(EV_ACCEPT, lfd, 0));
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_poll_add(sqe, STDIN_FILENO, POLLIN);
	io_uring_sqe_set_data64(sqe, ud(EV_STDIN, 0, 0));

	printf("port %u\n", ntohs(addr.sin_port));
	fflush(stdout);

	while (!stop) {
		unsigned head, n = 0;

		ret = io_uring_submit_and_wait(&ring, 1);
		if (ret < 0 && ret != -EINTR) {
			fprintf(stderr, "echo_server: submit_and_wait: %s\n", strerror(-ret));
			failed = 1;
			break;
		}
		io_uring_for_each_cqe(&ring, head, cqe)
		{
			if (handle(cqe, lfd, &stop))
				failed = 1;
			n++;
		}
		io_uring_cq_advance(&ring, n);
		if (failed)
			break;
	}

	/* Teardown: stop accepting, close what is left, and wait for those closes. */
	sqe = sqe_get();
	io_uring_prep_cancel_fd(sqe, lfd, IORING_ASYNC_CANCEL_ALL);
	io_uring_sqe_set_data64(sqe, ud(EV_STDIN, 0, 0));
	for (int fd = 0; fd < MAX_FD; fd++)
		if (conns[fd].open) {
			sqe = sqe_get();
			io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
			io_uring_sqe_set_data64(sqe, ud(EV_STDIN, 0, 0));
			close_conn(fd);
		}
	io_uring_submit(&ring);
	for (int i = 0; i < 1000 && nr_open > 0; i++) {
		struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 10000000};

		if (io_uring_wait_cqe_timeout(&ring, &cqe, &ts) == 0) {
			if ((cqe->user_data & 0xff) == EV_CLOSE)
				nr_open--;
			io_uring_cqe_seen(&ring, cqe);
		}
	}
	if (io_uring_free_buf_ring(&ring, br, NR_BUFS, BGID))
		failed = 1;
	io_uring_queue_exit(&ring);
	close(lfd);
	free(bufs);
	return failed || nr_open ? 1 : 0;
}
