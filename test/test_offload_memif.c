/*
 * The liburing echo server of test_compat, built unmodified through the compatibility header,
 * served offloaded over a memif link. Its process names the memif server end in XRING_PORTS
 * and binds the port's address with plain calls (in a private network namespace where
 * ip_nonlocal_bind lets it); its listener is offloaded at its first accept. A memif link has no
 * kernel netdev, so the clients are xring clients in this process on the link's other end,
 * with plain and with direct descriptors (in the private namespace the kernel has no route to
 * the server, so a client that was not offloaded could not connect at all).
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <xring.h>

#define SRV_IP "198.18.0.1"
#define CLI_IP "198.18.0.2"
#define CHUNK  4096
#define ROUNDS 25

static struct xring ring;
static struct xring_sqe *cur; /* the SQE being prepared */

static struct xring_sqe *get(void)
{
	cur = xring_get_sqe(&ring);
	cr_assert_not_null(cur);
	return cur;
}

/* Submits, waits (bounded) for one CQE and returns its res. */
static int32_t wait1(void)
{
	struct __kernel_timespec ts = {.tv_sec = 10};
	struct xring_cqe *cqe;
	int32_t res;

	xring_submit(&ring);
	cr_assert_eq(xring_wait_cqe_timeout(&ring, &cqe, &ts), 0, "no CQE within 10 s");
	res = cqe->res;
	xring_cqe_seen(&ring, cqe);
	return res;
}

static void set_fixed(bool direct)
{
	if (direct)
		cur->flags |= XRING_SQE_FIXED_FILE;
}

/* A new socket: plain, or direct in slot 0. */
static int new_socket(bool direct)
{
	if (!direct)
		return socket(AF_INET, SOCK_STREAM, 0);
	xring_prep_socket_direct(get(), AF_INET, SOCK_STREAM, 0, 0, 0);
	cr_assert_eq(wait1(), 0);
	return 0;
}

static void close_socket(int fd, bool direct)
{
	if (direct)
		xring_prep_close_direct(get(), (unsigned) fd);
	else
		xring_prep_close(get(), fd);
	cr_assert_eq(wait1(), 0);
}

/* Connects to the echo server, again while it refuses (its listener goes onto xring's stack
 * at its first accept, a moment after it printed its port). */
static int connect_echo(unsigned port, bool direct)
{
	struct sockaddr_in srv = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
	int32_t res = -ECONNREFUSED;
	int fd = -1;

	inet_pton(AF_INET, SRV_IP, &srv.sin_addr);
	for (int tries = 0; tries < 200 && res == -ECONNREFUSED; tries++) {
		if (fd >= 0) {
			close_socket(fd, direct);
			usleep(10000);
		}
		fd = new_socket(direct);
		xring_prep_connect(get(), fd, (struct sockaddr *) &srv, sizeof(srv));
		set_fixed(direct);
		res = wait1();
	}
	cr_assert_eq(res, 0, "connect: %d", res);
	return fd;
}

static void echo_client(unsigned port, int c, bool direct)
{
	static uint8_t out[CHUNK], back[CHUNK];
	int fd = connect_echo(port, direct);

	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < CHUNK; i++)
			out[i] = (uint8_t) (i * 7 + r * 13 + c);
		memset(back, 0, sizeof(back));
		xring_prep_send(get(), fd, out, CHUNK, 0);
		set_fixed(direct);
		cr_assert_eq(wait1(), CHUNK, "client %d round %d: send", c, r);
		xring_prep_recv(get(), fd, back, CHUNK, MSG_WAITALL);
		set_fixed(direct);
		cr_assert_eq(wait1(), CHUNK, "client %d round %d: recv", c, r);
		cr_assert_eq(memcmp(out, back, CHUNK), 0, "client %d round %d: echo differs", c, r);
	}
	close_socket(fd, direct);
}

Test(offload_memif, the_liburing_echo_server_runs_offloaded_over_memif_for_xring_clients,
     .timeout = 120)
{
	char spec[128], line[256], logpath[] = "/tmp/xring-echo-log-XXXXXX";
	int in[2], out[2], status, logfd;
	bool offloaded = false;
	unsigned port = 0;
	FILE *o, *log;
	pid_t pid;

	if (geteuid() != 0)
		cr_skip_test(
			"needs root: a private network namespace where the echo server may bind "
			"the memif address with plain calls");
	cr_assert_eq(unshare(CLONE_NEWNET), 0);
	cr_assert_eq(system("ip link set lo up && sysctl -qw net.ipv4.ip_nonlocal_bind=1"), 0);
	signal(SIGPIPE, SIG_IGN);
	logfd = mkstemp(logpath);
	cr_assert_geq(logfd, 0);
	cr_assert(pipe(in) == 0 && pipe(out) == 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(in[0], STDIN_FILENO);
		dup2(out[1], STDOUT_FILENO);
		dup2(logfd, STDERR_FILENO);
		close(in[1]);
		close(out[0]);
		snprintf(spec, sizeof(spec),
			 "memif:path=@xring-echo-%d,role=server,ip=" SRV_IP "/24", (int) getppid());
		setenv("XRING_PORTS", spec, 1);
		setenv("XRING_LOG_LEVEL", "debug", 1);
		execl(ECHO_SERVER_PATH, "echo_server", "0", SRV_IP, (char *) NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	o = fdopen(out[0], "r");
	cr_assert(o && fgets(line, sizeof(line), o) && sscanf(line, "port %u", &port) == 1,
		  "the echo server printed no port");

	snprintf(spec, sizeof(spec), "memif:path=@xring-echo-%d,role=client,ip=" CLI_IP "/24",
		 (int) getpid());
	cr_assert_eq(xring_port_add(spec), 0);
	cr_assert_eq(xring_queue_init(64, &ring, 0), 0);
	cr_assert_eq(xring_register_files_sparse(&ring, 4), 0);
	for (int c = 0; c < 3; c++)
		echo_client(port, c, c == 2);
	xring_queue_exit(&ring);

	close(in[1]); /* asks the server to stop */
	cr_assert(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the echo server exited with status %#x", status);
	fclose(o);
	/* Its log says the listener went onto xring's stack. */
	log = fopen(logpath, "r");
	while (log && fgets(line, sizeof(line), log))
		offloaded |= strstr(line, "TCP offloaded") != NULL;
	if (log)
		fclose(log);
	close(logfd);
	unlink(logpath);
	cr_expect(offloaded, "the echo server's listener was not offloaded");
}
