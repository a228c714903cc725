/*
 * Statistics: the counters a process publishes, read from outside by xring-stats, equal what
 * the process counted itself; the file comes and goes with the process; a corrupt or stale file
 * is refused or cleaned; XRING_STATS_FILE gets a line per closed socket; xring_dump_stats()
 * logs the same lines the tool prints.
 *
 * The traffic is real: two forked processes, each with its own ring and memif port, talk TCP
 * and UDP on offloaded sockets, as the demo does. The client holds its sockets open while the
 * test runs the tool against it.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <xring.h>

#include "nic/memlink.h"
#include "nic/ports.h"
#include "stats/shm.h"
#include "stats/shm_read.h"

#define SRV_IP "198.18.0.2"
#define CLI_IP "198.18.0.1"
/* Ports of this run: the host's kernel reserves each offloaded socket's address and port, and
 * other programs on the machine (another test, the demo) may hold the usual ones. */
static uint16_t tcp_port, srv_udp, cli_udp;
#define TCP_PORT tcp_port
#define SRV_UDP  srv_udp
#define CLI_UDP  cli_udp
#define TCP_MSGS 200
#define UDP_MSGS 100

static char dir[64];
static const char *role = "test";

static void make_dir(void)
{
	strcpy(dir, "/tmp/xring-stats-test-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	(void) !system(cmd);
}

static struct sockaddr_in sin_of(const char *ip, uint16_t port)
{
	struct sockaddr_in s = {.sin_family = AF_INET, .sin_port = htons(port)};

	inet_pton(AF_INET, ip, &s.sin_addr);
	return s;
}

static void child_fail(const char *what, int err)
{
	fprintf(stderr, "test_stats %s %d: %s: %d\n", role, (int) getpid(), what, err);
	_exit(1);
}

/* One request at a time, bounded by a timeout so a lost frame fails rather than hangs. */
static int32_t run1(struct xring *r)
{
	struct __kernel_timespec ts = {10, 0};
	struct xring_cqe *cqe;
	int32_t res;
	int op = r->sq.sqes[(r->sq.tail - 1) & r->sq.mask].opcode, err;

	xring_submit(r);
	err = xring_wait_cqe_timeout(r, &cqe, &ts);
	if (err) {
		fprintf(stderr, "test_stats child %d: opcode %d\n", (int) getpid(), op);
		child_fail("wait", err);
	}
	res = cqe->res;
	xring_cqe_seen(r, cqe);
	return res;
}

static void port_ring(struct xring *r, const char *mrole, const char *ip)
{
	char spec[160];
	int err;

	snprintf(spec, sizeof(spec), "memif:path=@xring-stats-test-%d,role=%s,ip=%s/24",
		 (int) getppid(), mrole, ip);
	err = xring_port_add(spec);
	if (err)
		child_fail("xring_port_add", err);
	err = xring_queue_init(64, r, 0);
	if (err)
		child_fail("xring_queue_init", err);
}

static void bind_fd(struct xring *r, int fd, const char *ip, uint16_t port)
{
	struct sockaddr_in a = sin_of(ip, port);
	int32_t res;

	xring_prep_bind(xring_get_sqe(r), fd, (struct sockaddr *) &a, sizeof(a));
	res = run1(r);
	if (res)
		child_fail("bind", res);
}

static void connect_fd(struct xring *r, int fd, const char *ip, uint16_t port)
{
	struct sockaddr_in a = sin_of(ip, port);
	int32_t res;

	xring_prep_connect(xring_get_sqe(r), fd, (struct sockaddr *) &a, sizeof(a));
	res = run1(r);
	if (res)
		child_fail("connect", res);
}

static int32_t send1(struct xring *r, int fd, const void *buf, size_t len)
{
	xring_prep_send(xring_get_sqe(r), fd, buf, len, 0);
	return run1(r);
}

static int32_t recv1(struct xring *r, int fd, void *buf, size_t len, int flags)
{
	xring_prep_recv(xring_get_sqe(r), fd, buf, len, flags);
	return run1(r);
}

/* The server: echoes one TCP connection to its end, then UDP_MSGS datagrams. */
static void server(int ready)
{
	static char buf[4096];
	struct xring r;
	int lfd, ufd, fd;
	int32_t n;

	alarm(120);
	role = "server";
	port_ring(&r, "server", SRV_IP);
	ufd = socket(AF_INET, SOCK_DGRAM, 0);
	bind_fd(&r, ufd, SRV_IP, SRV_UDP);
	connect_fd(&r, ufd, CLI_IP, CLI_UDP);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	bind_fd(&r, lfd, SRV_IP, TCP_PORT);
	xring_prep_listen(xring_get_sqe(&r), lfd, 8);
	if ((n = run1(&r)))
		child_fail("listen", n);
	(void) !write(ready, "r", 1);
	xring_prep_accept(xring_get_sqe(&r), lfd, NULL, NULL, 0);
	fd = run1(&r);
	if (fd < 0)
		child_fail("accept", fd);
	while ((n = recv1(&r, fd, buf, sizeof(buf), 0)) > 0)
		if (send1(&r, fd, buf, (size_t) n) != n)
			child_fail("tcp echo", n);
	xring_prep_close(xring_get_sqe(&r), fd);
	run1(&r);
	for (int i = 0; i < UDP_MSGS; i++) {
		n = recv1(&r, ufd, buf, sizeof(buf), 0);
		if (n <= 0 || send1(&r, ufd, buf, (size_t) n) != n)
			child_fail("udp echo", n);
	}
	xring_queue_exit(&r);
	_exit(0);
}

/* What the client counted on each socket, from its CQEs. */
struct counted {
	int fd;
	unsigned long long tx_bytes, tx_packets, rx_bytes, rx_packets;
};

static void count(struct counted *c, int32_t res, bool tx)
{
	if (res <= 0)
		return;
	if (tx) {
		c->tx_bytes += (unsigned long long) res;
		c->tx_packets++;
	} else {
		c->rx_bytes += (unsigned long long) res;
		c->rx_packets++;
	}
}

/* The client: a TCP exchange, then a UDP one; reports its counts on out, waits for a byte on
 * go, closes its sockets and exits. */
static void client(int ready, int out, int go)
{
	static char buf[4096], in[4096];
	struct counted tcp = {0}, udp = {0};
	struct xring r;
	char c, line[256];
	int32_t n;
	int closed = 0, logfd;

	alarm(120);
	role = "client";
	port_ring(&r, "client", CLI_IP);
	if (read(ready, &c, 1) != 1)
		child_fail("server not ready", 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char) i;
	tcp.fd = socket(AF_INET, SOCK_STREAM, 0);
	for (int tries = 0;; tries++) {
		struct sockaddr_in a = sin_of(SRV_IP, TCP_PORT);

		xring_prep_connect(xring_get_sqe(&r), tcp.fd, (struct sockaddr *) &a, sizeof(a));
		n = run1(&r);
		if (n == 0)
			break;
		if (n != -ECONNREFUSED || tries == 100)
			child_fail("tcp connect", n);
		xring_prep_close(xring_get_sqe(&r), tcp.fd);
		run1(&r);
		closed++;
		tcp.fd = socket(AF_INET, SOCK_STREAM, 0);
		usleep(10000);
	}
	for (int i = 0; i < TCP_MSGS; i++) {
		size_t len = 100 + (size_t) i * 17;

		count(&tcp, n = send1(&r, tcp.fd, buf, len), true);
		if (n != (int32_t) len)
			child_fail("tcp send", n);
		count(&tcp, n = recv1(&r, tcp.fd, in, len, MSG_WAITALL), false);
		if (n != (int32_t) len || memcmp(in, buf, len))
			child_fail("tcp recv", n);
	}
	xring_prep_shutdown(xring_get_sqe(&r), tcp.fd, SHUT_WR);
	run1(&r);
	if ((n = recv1(&r, tcp.fd, in, sizeof(in), 0)) != 0)
		child_fail("tcp end of stream", n);

	udp.fd = socket(AF_INET, SOCK_DGRAM, 0);
	bind_fd(&r, udp.fd, CLI_IP, CLI_UDP);
	connect_fd(&r, udp.fd, SRV_IP, SRV_UDP);
	for (int i = 0; i < UDP_MSGS; i++) {
		size_t len = 50 + (size_t) i * 9;

		count(&udp, n = send1(&r, udp.fd, buf, len), true);
		if (n != (int32_t) len)
			child_fail("udp send", n);
		count(&udp, n = recv1(&r, udp.fd, in, sizeof(in), 0), false);
		if (n != (int32_t) len)
			child_fail("udp recv", n);
	}

	/* xring_dump_stats() of both sockets, to a file the test compares with the tool. */
	snprintf(line, sizeof(line), "%s/dump.txt", dir);
	logfd = open(line, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	fflush(stderr);
	if (logfd < 0 || dup2(logfd, STDERR_FILENO) < 0)
		child_fail("dump file", errno);
	if (xring_dump_stats(&r, tcp.fd, 2) != 1 || xring_dump_stats(&r, udp.fd, 2) != 1)
		child_fail("xring_dump_stats", 0);

	n = snprintf(line, sizeof(line), "%d %llu %llu %llu %llu %d %llu %llu %llu %llu %d\n",
		     tcp.fd, tcp.tx_bytes, tcp.tx_packets, tcp.rx_bytes, tcp.rx_packets, udp.fd,
		     udp.tx_bytes, udp.tx_packets, udp.rx_bytes, udp.rx_packets, closed + 2);
	(void) !write(out, line, (size_t) n);
	if (read(go, &c, 1) != 1)
		child_fail("go", 0);
	xring_prep_close(xring_get_sqe(&r), tcp.fd);
	run1(&r);
	xring_prep_close(xring_get_sqe(&r), udp.fd);
	run1(&r);
	xring_queue_exit(&r);
	exit(0);
}

/* Runs cmd through the shell; its output in out. Returns its exit status, or -1. */
static int run_cmd(const char *cmd, char *out, size_t len)
{
	FILE *f = popen(cmd, "r");
	size_t n = 0;
	int st;

	cr_assert_not_null(f, "popen %s", cmd);
	while (n + 1 < len) {
		size_t k = fread(out + n, 1, len - 1 - n, f);

		if (!k)
			break;
		n += k;
	}
	out[n] = '\0';
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The line of text about fd, or NULL. */
static const char *line_of(const char *text, int fd, char *buf, size_t len)
{
	char key[32];
	const char *p = text;

	snprintf(key, sizeof(key), "fd %d ", fd);
	while (p && *p) {
		const char *e = strchr(p, '\n');
		size_t n = e ? (size_t) (e - p) : strlen(p);

		if (!strncmp(p, key, strlen(key)) && n < len) {
			memcpy(buf, p, n);
			buf[n] = '\0';
			return buf;
		}
		p = e ? e + 1 : NULL;
	}
	return NULL;
}

static unsigned long long field(const char *line, const char *name)
{
	char key[48];
	const char *p;

	snprintf(key, sizeof(key), " %s ", name);
	p = strstr(line, key);
	cr_assert_not_null(p, "no %s in: %s", name, line);
	return strtoull(p + strlen(key), NULL, 10);
}

static void check_counts(const char *text, const struct counted *c, const char *what)
{
	char buf[1024];
	const char *l = line_of(text, c->fd, buf, sizeof(buf));

	cr_assert_not_null(l, "no line for the %s socket fd %d in:\n%s", what, c->fd, text);
	cr_expect_eq(field(l, "tx_bytes"), c->tx_bytes, "%s tx_bytes: %s", what, l);
	cr_expect_eq(field(l, "tx_packets"), c->tx_packets, "%s tx_packets: %s", what, l);
	cr_expect_eq(field(l, "rx_bytes"), c->rx_bytes, "%s rx_bytes: %s", what, l);
	cr_expect_eq(field(l, "rx_packets"), c->rx_packets, "%s rx_packets: %s", what, l);
	cr_expect_eq(field(l, "drops"), 0, "%s drops: %s", what, l);
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static void shm_path(pid_t pid, char *buf, size_t len)
{
	snprintf(buf, len, "%s/xring.%d.shm", dir, (int) pid);
}

Test(stats, xring_stats_shows_the_counts_the_process_itself_counted, .timeout = 240)
{
	int ready[2], out[2], go[2], st, nclosed;
	struct counted tcp = {0}, udp = {0};
	char cmd[512], text[16384], line[1024], path[256];
	pid_t srv, cli;
	FILE *f;

	tcp_port = (uint16_t) (20000 + getpid() % 10000 * 3);
	srv_udp = (uint16_t) (tcp_port + 1);
	cli_udp = (uint16_t) (tcp_port + 2);
	make_dir();
	setenv("XRING_STATS_DIR", dir, 1);
	snprintf(path, sizeof(path), "%s/closed.%%d.txt", dir);
	setenv("XRING_STATS_FILE", path, 1);
	setenv("XRING_TCP_NODELAY", "1", 1);
	cr_assert_eq(pipe(ready), 0);
	cr_assert_eq(pipe(out), 0);
	cr_assert_eq(pipe(go), 0);
	srv = fork();
	if (srv == 0)
		server(ready[1]);
	cli = fork();
	if (cli == 0)
		client(ready[0], out[1], go[0]);
	close(out[1]);

	f = fdopen(out[0], "r");
	cr_assert_eq(fscanf(f, "%d %llu %llu %llu %llu %d %llu %llu %llu %llu %d", &tcp.fd,
			    &tcp.tx_bytes, &tcp.tx_packets, &tcp.rx_bytes, &tcp.rx_packets, &udp.fd,
			    &udp.tx_bytes, &udp.tx_packets, &udp.rx_bytes, &udp.rx_packets,
			    &nclosed),
		     11, "the client failed before reporting its counts");
	cr_assert_eq(tcp.tx_packets, TCP_MSGS);
	cr_assert_eq(udp.rx_packets, UDP_MSGS);

	/* The client is alive, its sockets open: the tool reads its live counters. */
	shm_path(cli, path, sizeof(path));
	cr_assert(exists(path), "no %s", path);
	snprintf(cmd, sizeof(cmd), "%s -d %s -p %d -v socket -n 1", XRING_STATS_TOOL, dir,
		 (int) cli);
	cr_assert_eq(run_cmd(cmd, text, sizeof(text)), 0, "%s:\n%s", cmd, text);
	check_counts(text, &tcp, "tcp");
	check_counts(text, &udp, "udp");
	snprintf(line, sizeof(line), "udp " CLI_IP ":%u " SRV_IP ":%u CONNECTED", cli_udp, srv_udp);
	cr_expect(strstr(text, line), "%s", text);
	snprintf(line, sizeof(line), SRV_IP ":%u ", tcp_port);
	cr_expect(strstr(text, line), "%s", text);
	cr_expect_geq(field(line_of(text, tcp.fd, line, sizeof(line)), "segs_out"), tcp.tx_packets);

	/* xring_dump_stats() logged the very same lines. */
	{
		char dump[4096], want[1024], got[1024];
		int fd;
		ssize_t n;

		snprintf(path, sizeof(path), "%s/dump.txt", dir);
		fd = open(path, O_RDONLY);
		cr_assert_geq(fd, 0);
		n = read(fd, dump, sizeof(dump) - 1);
		close(fd);
		cr_assert_gt(n, 0);
		dump[n] = '\0';
		for (int k = 0; k < 2; k++) {
			int fdk = k ? udp.fd : tcp.fd;
			char key[32];
			const char *s;

			snprintf(key, sizeof(key), " warn: fd %d ", fdk);
			s = strstr(dump, key);
			cr_assert_not_null(s, "no line for fd %d in the dump:\n%s", fdk, dump);
			s += strlen(" warn: ");
			snprintf(got, sizeof(got), "%.*s", (int) strcspn(s, "\n"), s);
			cr_assert_not_null(line_of(text, fdk, want, sizeof(want)));
			cr_expect_str_eq(got, want);
		}
	}

	/* The ring and port views. */
	snprintf(cmd, sizeof(cmd), "%s -d %s -p %d -v all -n 1", XRING_STATS_TOOL, dir, (int) cli);
	cr_assert_eq(run_cmd(cmd, text, sizeof(text)), 0, "%s", text);
	cr_expect(strstr(text, "ring 1 "), "%s", text);
	cr_expect(strstr(text, " sockets 2"), "%s", text);
	cr_expect(strstr(text, "port memif"), "%s", text);
	cr_expect(strstr(text, " ip " CLI_IP " rx_frames "), "%s", text);

	/* The process list shows it. */
	snprintf(cmd, sizeof(cmd), "%s -d %s", XRING_STATS_TOOL, dir);
	cr_assert_eq(run_cmd(cmd, text, sizeof(text)), 0);
	snprintf(line, sizeof(line), "pid %d prog ", (int) cli);
	cr_expect(strstr(text, line), "%s", text);
	cr_expect(strstr(text, " rings 1 ports 1 sockets 2 "), "%s", text);

	(void) !write(go[1], "g", 1);
	cr_assert_eq(waitpid(cli, &st, 0), cli);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "client status %d", st);
	cr_assert_eq(waitpid(srv, &st, 0), srv);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "server status %d", st);

	/* Both processes are gone, and so are their files. */
	shm_path(cli, path, sizeof(path));
	cr_expect(!exists(path), "%s is still there", path);
	shm_path(srv, path, sizeof(path));
	cr_expect(!exists(path), "%s is still there (the server ends in _exit)", path);
	snprintf(cmd, sizeof(cmd), "%s -d %s -p %d -n 1 2>&1", XRING_STATS_TOOL, dir, (int) cli);
	cr_expect_neq(run_cmd(cmd, text, sizeof(text)), 0);
	cr_expect(strstr(text, "no process"), "%s", text);

	/* XRING_STATS_FILE: a line per closed socket, with its final counters. */
	snprintf(path, sizeof(path), "%s/closed.%d.txt", dir, (int) cli);
	{
		int fd = open(path, O_RDONLY), lines = 0;
		ssize_t n;

		cr_assert_geq(fd, 0, "no %s", path);
		n = read(fd, text, sizeof(text) - 1);
		close(fd);
		cr_assert_gt(n, 0);
		text[n] = '\0';
		for (char *p = text; (p = strchr(p, '\n')); p++)
			lines++;
		cr_expect_eq(lines, nclosed, "%s", text);
		check_counts(text, &tcp, "closed tcp");
		check_counts(text, &udp, "closed udp");
	}
	remove_dir();
}

static void wait_byte(int fd)
{
	char c;

	if (read(fd, &c, 1) != 1)
		_exit(1);
}

/* A process with one ring that ends with exit() or, after closing the ring, _exit(). */
static pid_t ringed(int ready, int go, bool close_ring)
{
	pid_t pid = fork();
	struct xring r;

	if (pid)
		return pid;
	alarm(60);
	if (xring_queue_init(8, &r, 0))
		_exit(1);
	(void) !write(ready, "r", 1);
	wait_byte(go);
	if (close_ring) {
		xring_queue_exit(&r);
		_exit(0);
	}
	exit(0);
}

static void file_comes_and_goes(bool close_ring)
{
	int ready[2], go[2], st;
	char path[256], c;
	pid_t pid;

	make_dir();
	setenv("XRING_STATS_DIR", dir, 1);
	cr_assert_eq(pipe(ready), 0);
	cr_assert_eq(pipe(go), 0);
	pid = ringed(ready[1], go[0], close_ring);
	cr_assert_eq(read(ready[0], &c, 1), 1);
	shm_path(pid, path, sizeof(path));
	cr_assert(exists(path), "no %s while the process runs", path);
	(void) !write(go[1], "g", 1);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	cr_expect(!exists(path), "%s outlived its process", path);
	remove_dir();
}

Test(stats, the_file_disappears_when_the_process_exits)
{
	file_comes_and_goes(false);
}

Test(stats, the_file_disappears_with_the_last_ring_even_when_the_process_ends_in_exit)
{
	file_comes_and_goes(true);
}

Test(stats, a_stale_file_of_a_dead_process_is_ignored_and_removed)
{
	char path[256], cmd[512], text[4096];
	pid_t dead = fork();
	int fd;

	if (dead == 0)
		_exit(0);
	cr_assert_eq(waitpid(dead, NULL, 0), dead);
	make_dir();
	shm_path(dead, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "XRSTgarbage", 11), 11);
	close(fd);

	snprintf(cmd, sizeof(cmd), "%s -d %s -p %d -n 1 2>&1", XRING_STATS_TOOL, dir, (int) dead);
	cr_expect_neq(run_cmd(cmd, text, sizeof(text)), 0);
	cr_expect(strstr(text, "no process"), "%s", text);
	snprintf(cmd, sizeof(cmd), "%s -d %s 2>&1", XRING_STATS_TOOL, dir);
	cr_expect_eq(run_cmd(cmd, text, sizeof(text)), 0, "%s", text);
	cr_expect(strstr(text, "no xring process"), "%s", text);
	cr_expect(!exists(path), "the stale file is still there");

	/* A process making its file sweeps away those of processes that are gone. */
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	cr_assert_geq(fd, 0);
	close(fd);
	{
		struct xring r;

		setenv("XRING_STATS_DIR", dir, 1);
		cr_assert_eq(xring_queue_init(8, &r, 0), 0);
		cr_expect(!exists(path), "a new ring left the stale file there");
		xring_queue_exit(&r);
	}
	remove_dir();
}

Test(stats, dump_stats_logs_the_rings_counters_and_refuses_what_it_cannot_show)
{
	char path[256], text[4096];
	struct xring r;
	int fd, saved;
	ssize_t n;

	make_dir();
	setenv("XRING_STATS_DIR", dir, 1);
	cr_assert_eq(xring_queue_init(8, &r, 0), 0);
	for (int i = 0; i < 3; i++)
		xring_prep_nop(xring_get_sqe(&r));
	cr_assert_eq(xring_submit_and_wait(&r, 3), 3);
	xring_cq_advance(&r, 3);

	snprintf(path, sizeof(path), "%s/log.txt", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	cr_expect_eq(xring_dump_stats(&r, -1, 2), 0); /* no offloaded socket */
	cr_expect_eq(xring_dump_stats(&r, -1, 4), 0); /* below the log level: nothing written */
	cr_expect_eq(xring_dump_stats(&r, STDIN_FILENO, 2), -EBADF);
	cr_expect_eq(xring_dump_stats(&r, -7, 2), -EBADF);
	cr_expect_eq(xring_dump_stats(&r, -1, 0), -EINVAL);
	cr_expect_eq(xring_dump_stats(&r, -1, 5), -EINVAL);
	dup2(saved, STDERR_FILENO);
	n = pread(fd, text, sizeof(text) - 1, 0);
	close(fd);
	cr_assert_gt(n, 0);
	text[n] = '\0';
	cr_expect(strstr(text, " warn: ring 1 "), "%s", text);
	cr_expect(strstr(text, " sqes 3 cqes 3 "), "%s", text);
	cr_expect_eq(strchr(text, '\n') + 1, text + n, "one line only: %s", text);
	xring_queue_exit(&r);
	remove_dir();
}

Test(stats, statistics_are_off_without_failing_the_ring_when_the_directory_cannot_be_made)
{
	struct xring r;

	setenv("XRING_STATS_DIR", "/proc/xring-cannot-be-here", 1);
	cr_assert_eq(xring_queue_init(8, &r, 0), 0);
	xring_prep_nop(xring_get_sqe(&r));
	cr_assert_eq(xring_submit_and_wait(&r, 1), 1);
	xring_queue_exit(&r);
}

/* Maps this process's own statistics file and reads it. */
static void read_own(struct xstats_view *v)
{
	char path[256];
	struct stat sb;
	void *base;
	int fd;

	shm_path(getpid(), path, sizeof(path));
	fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0, "no %s", path);
	cr_assert_eq(fstat(fd, &sb), 0);
	base = mmap(NULL, (size_t) sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	cr_assert_neq(base, MAP_FAILED);
	cr_assert_eq(xstats_read(base, (size_t) sb.st_size, v), 0);
	munmap(base, (size_t) sb.st_size);
}

static int udp_bound(struct xring *r, uint16_t port)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	bind_fd(r, fd, CLI_IP, port);
	return fd;
}

Test(stats, sockets_beyond_the_files_room_are_counted_and_a_freed_place_is_reused)
{
	struct memlink_config mc = {.name = "st"};
	struct port *ends[2];
	struct xstats_view v;
	struct xring r;
	int fd[3];

	make_dir();
	setenv("XRING_STATS_DIR", dir, 1);
	setenv("XRING_STATS_SOCKETS", "2", 1);
	cr_assert_eq(memlink_create(&mc, ends), 0);
	inet_pton(AF_INET, CLI_IP, &ends[0]->ip);
	ends[0]->prefix_len = 24;
	cr_assert_eq(ports_add(ends[0], 0, NULL), 0);
	cr_assert_eq(xring_queue_init(16, &r, 0), 0);
	for (int i = 0; i < 3; i++)
		fd[i] = udp_bound(&r, (uint16_t) (7101 + i));

	read_own(&v);
	cr_expect_eq(v.hdr.nsocks, 2);
	cr_expect_eq(v.nsocks, 2);
	cr_expect_eq(v.hdr.socks_lost, 1);
	for (unsigned i = 0; i < v.nsocks; i++) {
		cr_expect_eq(v.socks[i].type, XSTATS_UDP);
		cr_expect_eq(v.socks[i].b.gen, 1);
		cr_expect_eq(v.socks[i].lip, inet_addr(CLI_IP));
	}
	xstats_view_free(&v);

	/* The unpublished socket has no counters of its own: the dump says so. */
	{
		char path[256], text[1024], want[128];
		int lf, saved = dup(STDERR_FILENO);
		ssize_t n;

		snprintf(path, sizeof(path), "%s/log.txt", dir);
		lf = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
		dup2(lf, STDERR_FILENO);
		cr_expect_eq(xring_dump_stats(&r, fd[2], 2), 1);
		dup2(saved, STDERR_FILENO);
		n = pread(lf, text, sizeof(text) - 1, 0);
		close(lf);
		cr_assert_gt(n, 0);
		text[n] = '\0';
		snprintf(want, sizeof(want),
			 " fd %d udp " CLI_IP
			 ":7103 0.0.0.0:0 UNCONNECTED ring 1 unpublished slot -1\n",
			 fd[2]);
		cr_expect(strstr(text, want), "%s", text);
	}

	/* A closed socket's place goes to the next one, one generation on. */
	xring_prep_close(xring_get_sqe(&r), fd[0]);
	cr_assert_eq(run1(&r), 0);
	fd[0] = udp_bound(&r, 7104);
	read_own(&v);
	cr_expect_eq(v.nsocks, 2);
	cr_expect_eq(v.hdr.socks_lost, 1);
	cr_expect(v.socks[0].b.gen + v.socks[1].b.gen == 3, "generations %u and %u",
		  v.socks[0].b.gen, v.socks[1].b.gen);
	cr_expect(v.socks[0].lport == 7104 || v.socks[1].lport == 7104);
	xstats_view_free(&v);

	xring_queue_exit(&r);
	ports_reset();
	ends[1]->ops->destroy(ends[1]);
	remove_dir();
}

Test(stats, a_forked_child_neither_writes_nor_removes_its_parents_file)
{
	struct xstats_view v;
	char path[256];
	struct xring r;
	pid_t pid;
	int st;

	make_dir();
	setenv("XRING_STATS_DIR", dir, 1);
	cr_assert_eq(xring_queue_init(8, &r, 0), 0);
	for (int i = 0; i < 3; i++)
		xring_prep_nop(xring_get_sqe(&r));
	cr_assert_eq(xring_submit_and_wait(&r, 3), 3);
	xring_cq_advance(&r, 3);
	pid = fork();
	if (pid == 0) {
		/* The inherited ring counts into a private copy now. */
		for (int i = 0; i < 5; i++)
			xring_prep_nop(xring_get_sqe(&r));
		xring_submit_and_wait(&r, 5);
		xring_queue_exit(&r);
		exit(0);
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	shm_path(getpid(), path, sizeof(path));
	cr_assert(exists(path), "the child's exit removed its parent's file");
	read_own(&v);
	cr_assert_eq(v.nrings, 1);
	cr_expect_eq(v.rings[0].sqes, 3, "the child's submissions reached the parent's file");
	xstats_view_free(&v);
	xring_queue_exit(&r);
	cr_expect(!exists(path));
	remove_dir();
}

/* ---- the reader, on files made by hand ---- */

struct file1 {
	struct xstats_hdr h;
	uint8_t pad[64 - sizeof(struct xstats_hdr) % 64];
	struct xstats_ring ring[1];
	struct xstats_port port[1];
	struct xstats_sock sock[2];
} __attribute__((aligned(8)));

static void make_file(struct file1 *f)
{
	memset(f, 0, sizeof(*f));
	f->h.magic = XSTATS_MAGIC;
	f->h.version = XSTATS_VERSION;
	f->h.hdr_size = sizeof(f->h);
	f->h.pid = 42;
	f->h.ready = 1;
	f->h.file_size = sizeof(*f);
	memset(f->h.prog, 'x', sizeof(f->h.prog)); /* no NUL: the reader must cut it */
	f->h.ring_size = sizeof(struct xstats_ring);
	f->h.nrings = 1;
	f->h.ring_off = (uint32_t) offsetof(struct file1, ring);
	f->h.port_size = sizeof(struct xstats_port);
	f->h.nports = 1;
	f->h.port_off = (uint32_t) offsetof(struct file1, port);
	f->h.sock_size = sizeof(struct xstats_sock);
	f->h.nsocks = 2;
	f->h.sock_off = (uint32_t) offsetof(struct file1, sock);
	f->ring[0].b.state = XSTATS_LIVE;
	f->port[0].b.state = XSTATS_LIVE;
	f->port[0].ncounters = 100000; /* more than there can be */
	f->sock[0].b.state = XSTATS_LIVE;
	f->sock[0].fd = 9;
	f->sock[0].rx_bytes = 123;
	f->sock[1].b.state = XSTATS_LIVE;
	f->sock[1].b.seq = 3; /* being changed, forever: skipped */
}

Test(stats, the_reader_copies_live_blocks_and_skips_one_that_never_holds_still)
{
	static struct file1 f;
	struct xstats_view v;

	make_file(&f);
	cr_assert_eq(xstats_read(&f, sizeof(f), &v), 0);
	cr_expect_eq(v.nrings, 1);
	cr_expect_eq(v.nports, 1);
	cr_expect_eq(v.ports[0].ncounters, XSTATS_PORT_COUNTERS);
	cr_assert_eq(v.nsocks, 1);
	cr_expect_eq(v.socks[0].fd, 9);
	cr_expect_eq(v.socks[0].rx_bytes, 123);
	cr_expect_eq(strlen(v.hdr.prog), sizeof(v.hdr.prog) - 1);
	xstats_view_free(&v);
}

Test(stats, the_reader_refuses_a_file_that_lies_about_its_shape)
{
	static struct file1 f;
	struct xstats_view v;

	make_file(&f);
	cr_expect_eq(xstats_read(&f, sizeof(f) - 8, &v), -EINVAL, "shorter than it says");
	cr_expect_eq(xstats_read(&f, 10, &v), -EINVAL, "shorter than a header");
	f.h.nsocks = 3;
	cr_expect_eq(xstats_read(&f, sizeof(f), &v), -EINVAL, "blocks beyond the end");
	make_file(&f);
	f.h.sock_off = 0xfffffff8u;
	cr_expect_eq(xstats_read(&f, sizeof(f), &v), -EINVAL, "an offset beyond the end");
	make_file(&f);
	f.h.port_size = 8;
	cr_expect_eq(xstats_read(&f, sizeof(f), &v), -EINVAL, "blocks too small");
	make_file(&f);
	f.h.ring_off += 4;
	cr_expect_eq(xstats_read(&f, sizeof(f), &v), -EINVAL, "misaligned blocks");
	make_file(&f);
	f.h.magic = 0;
	cr_expect_eq(xstats_read(&f, sizeof(f), &v), -EINVAL, "not a statistics file");
	make_file(&f);
	f.h.version = XSTATS_VERSION + 1;
	cr_expect_eq(xstats_read(&f, sizeof(f), &v), -EPROTO, "another version");
	make_file(&f);
	f.h.ready = 0;
	cr_expect_eq(xstats_read(&f, sizeof(f), &v), -EAGAIN, "not finished yet");
}

/* ---- the demo, the bar ---- */
/* Built only with the demo (XRING_BENCH); the sanitizer build has no demo to hold. */
#ifdef XRING_DEMO

Test(stats, xring_stats_on_the_held_demo_shows_the_demos_own_totals, .timeout = 300)
{
	int in[2], out[2], st, found = 0;
	char buf[8192], cmd[512], text[16384];
	size_t len = 0;
	pid_t pid;
	FILE *f;

	make_dir();
	cr_assert_eq(pipe(in), 0);
	cr_assert_eq(pipe(out), 0);
	pid = fork();
	if (pid == 0) {
		setenv("XRING_STATS_DIR", dir, 1);
		dup2(in[0], STDIN_FILENO);
		dup2(out[1], STDOUT_FILENO);
		close(in[1]);
		close(out[0]);
		execl(XRING_DEMO, XRING_DEMO, "--quick", "--hold", (char *) NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	f = fdopen(out[0], "r");
	while (fgets(buf + len, (int) (sizeof(buf) - len), f)) {
		bool held = strstr(buf + len, "holding the connections open");

		len += strlen(buf + len);
		if (held || len + 256 > sizeof(buf))
			break;
	}
	cr_assert(strstr(buf, "holding the connections open"), "the demo did not hold:\n%s", buf);

	snprintf(cmd, sizeof(cmd), "%s -d %s -p %d -v socket -n 1", XRING_STATS_TOOL, dir,
		 (int) pid);
	cr_assert_eq(run_cmd(cmd, text, sizeof(text)), 0, "%s", text);
	for (const char *p = buf; (p = strstr(p, "  connection ")); p++) {
		struct counted c = {0};
		int i;

		cr_assert_eq(
			sscanf(p,
			       "  connection %d fd %d: sent %llu bytes in %llu packets, received "
			       "%llu bytes in %llu packets",
			       &i, &c.fd, &c.tx_bytes, &c.tx_packets, &c.rx_bytes, &c.rx_packets),
			6, "%s", p);
		cr_expect_gt(c.tx_packets, 0);
		check_counts(text, &c, "demo");
		found++;
	}
	cr_expect_eq(found, 3, "demo output:\n%s", buf);

	(void) !write(in[1], "\n", 1);
	close(in[1]);
	while (fgets(buf, sizeof(buf), f))
		;
	fclose(f);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "demo status %d", st);
	snprintf(cmd, sizeof(cmd), "ls %s | grep -c shm", dir);
	run_cmd(cmd, text, sizeof(text));
	cr_expect_eq(atoi(text), 0, "files left behind in %s", dir);
	remove_dir();
}
#endif /* XRING_DEMO */
