#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "netns_util.h"

static int fail_fd = -1;
bool topo_bpffs = true;
bool topo_peer_offloads;

/* libxdp keeps its multi-program dispatcher state in bpffs. Mount one in a private mount
 * namespace, so the test exercises the dispatcher without touching the host's mounts. */
static void private_bpffs(void)
{
	CHECK(unshare(CLONE_NEWNS) == 0, "(unshare: %s)", strerror(errno));
	CHECK(mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0, "(%s)", strerror(errno));
	CHECK(mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") == 0, "(mount bpffs: %s)",
	      strerror(errno));
}

static int vsh(const char *fmt, va_list ap)
{
	char cmd[512];
	int r;

	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	r = system(cmd);
	return r == -1 ? -1 : WIFEXITED(r) ? WEXITSTATUS(r) : 128;
}

int topo_sh(const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsh(fmt, ap);
	va_end(ap);
	return r;
}

void topo_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	char msg[512];
	int n;
	va_list ap;

	n = snprintf(msg, sizeof(msg), "%s:%d: check failed: %s", file, line, cond);
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t) n, fmt, ap);
	va_end(ap);
	if (fail_fd >= 0 && write(fail_fd, msg, strlen(msg)) < 0)
		fprintf(stderr, "%s\n", msg);
	_exit(1);
}

void topo_enter(const char *ns)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "/var/run/netns/%s", ns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0, "(open %s: %s)", path, strerror(errno));
	CHECK(setns(fd, CLONE_NEWNET) == 0, "(setns %s: %s)", ns, strerror(errno));
	close(fd);
}

static void topo_destroy(const struct topo *t)
{
	topo_sh("ip netns del %s 2>/dev/null", t->ns_a);
	topo_sh("ip netns del %s 2>/dev/null", t->ns_b);
}

static int topo_create(struct topo *t)
{
	int err = 0;

	topo_destroy(t);
	err |= topo_sh("ip netns add %s", t->ns_a);
	err |= topo_sh("ip netns add %s", t->ns_b);
	if (err)
		return -1;
	err |= topo_sh(
	        "ip link add %s numtxqueues %u numrxqueues %u netns %s type veth peer name %s "
	        "numtxqueues %u numrxqueues %u netns %s",
	        t->if_a, t->nqueues, t->nqueues, t->ns_a, t->if_b, t->nqueues, t->nqueues, t->ns_b);
	err |= topo_sh("ip -n %s addr add " TOPO_IP_A "/24 dev %s", t->ns_a, t->if_a);
	err |= topo_sh("ip -n %s addr add " TOPO_IP_B "/24 dev %s", t->ns_b, t->if_b);
	err |= topo_sh("ip -n %s link set lo up && ip -n %s link set %s up", t->ns_a, t->ns_a,
	               t->if_a);
	err |= topo_sh("ip -n %s link set lo up && ip -n %s link set %s up", t->ns_b, t->ns_b,
	               t->if_b);
	/* The kernel in B must put whole, fully checksummed frames on the wire (see xdp_port.h). */
	if (!topo_peer_offloads)
		err |= topo_sh(
		        "ip netns exec %s ethtool -K %s tx off tso off gso off >/dev/null 2>&1",
		        t->ns_b, t->if_b);
	return err ? -1 : 0;
}

void topo_run(unsigned nqueues, unsigned timeout_s, void (*body)(const struct topo *t))
{
	static unsigned serial;
	struct topo t = {.nqueues = nqueues ? nqueues : 1};
	char msg[600] = "";
	struct timespec start, now;
	int pfd[2], status = 0, created;
	ssize_t got = 0, r;
	bool done = false;
	pid_t pid;

	if (geteuid() != 0)
		cr_skip_test("needs root: creates network namespaces and veth pairs");
	serial++;
	snprintf(t.ns_a, sizeof(t.ns_a), "xrt-a-%d-%u", getpid(), serial);
	snprintf(t.ns_b, sizeof(t.ns_b), "xrt-b-%d-%u", getpid(), serial);
	snprintf(t.if_a, sizeof(t.if_a), "xa%d_%u", getpid() % 1000000, serial % 100);
	snprintf(t.if_b, sizeof(t.if_b), "xb%d_%u", getpid() % 1000000, serial % 100);
	created = topo_create(&t);
	if (created) {
		topo_destroy(&t);
		cr_assert_fail("cannot create the test namespaces %s / %s", t.ns_a, t.ns_b);
	}
	cr_assert(pipe2(pfd, O_CLOEXEC) == 0);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		fail_fd = pfd[1];
		alarm(timeout_s);
		if (topo_bpffs)
			private_bpffs();
		body(&t);
		_exit(0);
	}
	close(pfd[1]);
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (pid > 0 && !done) {
		struct pollfd p = {.fd = pfd[0], .events = POLLIN};

		if (poll(&p, 1, 200) > 0) {
			r = read(pfd[0], msg + got, sizeof(msg) - 1 - (size_t) got);
			if (r > 0)
				got += r;
			if (r == 0) /* the child closed its end: it is ending */
				done = true;
			if (r < 0 && errno != EINTR)
				done = true;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec > (time_t) timeout_s + 5) {
			kill(pid, SIGKILL);
			done = true;
		}
	}
	close(pfd[0]);
	if (pid > 0)
		waitpid(pid, &status, 0);
	topo_destroy(&t);
	cr_assert(pid > 0, "fork failed");
	msg[got] = 0;
	cr_assert(!WIFSIGNALED(status), "test body killed by signal %d (%s) %s", WTERMSIG(status),
	          WTERMSIG(status) == SIGALRM ? "timed out" : "crashed", msg);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s",
	          msg[0] ? msg : "body failed");
}
