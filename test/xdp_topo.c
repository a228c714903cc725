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

#include "xdp_topo.h"

bool topo_peer_offloads;
static int fail_fd = -1;

void topo_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	char msg[512];
	int n;
	va_list ap;

	n = snprintf(msg, sizeof(msg), "%s:%d: check failed: %s", file, line, cond);
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t) n, fmt, ap);
	va_end(ap);
	if (fail_fd < 0 || write(fail_fd, msg, strlen(msg)) < 0)
		fprintf(stderr, "%s\n", msg);
	_exit(1); /* not exit(): the harness's atexit cleanup belongs to the parent */
}

void topo_enter(const char *ns)
{
	int old = netns_enter(ns);

	CHECK(old >= 0, "(entering %s: %s)", ns, strerror(-old));
	close(old);
}

/* libxdp keeps its multi-program dispatcher state in bpffs. Mount one in a private mount
 * namespace, so the test exercises that path without touching the host's mounts. */
static void private_bpffs(void)
{
	CHECK(unshare(CLONE_NEWNS) == 0, "(unshare: %s)", strerror(errno));
	CHECK(mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0, "(%s)", strerror(errno));
	CHECK(mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") == 0, "(mount bpffs: %s)",
	      strerror(errno));
}

static int topo_create(struct topo *t)
{
	struct netns_pair pair = {{0}};
	unsigned n = t->nqueues;
	int err;

	t->if_a = t->if_b = NETNS_PAIR_IF;
	if (n == 1) {
		err = netns_pair(&pair, "xdp", TOPO_IP_A "/24", TOPO_IP_B "/24");
		memcpy(t->ns_a, pair.a, sizeof(t->ns_a));
		memcpy(t->ns_b, pair.b, sizeof(t->ns_b));
		return err;
	}
	/* netns_pair makes single-queue veths; more queues need the link made by hand. */
	err = netns_add("xdpa", t->ns_a);
	if (!err)
		err = netns_add("xdpb", t->ns_b);
	if (!err)
		err = netns_ip(t->ns_a,
			       "link add %s numtxqueues %u numrxqueues %u type veth peer name %s "
			       "numtxqueues %u numrxqueues %u netns %s",
			       t->if_a, n, n, t->if_b, n, n, t->ns_b);
	if (!err)
		err = netns_ip(t->ns_a, "link set %s up", t->if_a);
	if (!err)
		err = netns_ip(t->ns_b, "link set %s up", t->if_b);
	if (!err)
		err = netns_addr(t->ns_a, t->if_a, TOPO_IP_A "/24");
	if (!err)
		err = netns_addr(t->ns_b, t->if_b, TOPO_IP_B "/24");
	return err;
}

static void topo_destroy(const struct topo *t)
{
	if (t->ns_a[0])
		netns_del(t->ns_a);
	if (t->ns_b[0])
		netns_del(t->ns_b);
}

void topo_run(unsigned nqueues, unsigned timeout_s, void (*body)(const struct topo *t))
{
	struct topo t = {.nqueues = nqueues ? nqueues : 1};
	char msg[600] = "";
	struct timespec start, now;
	int pfd[2], status = 0, err;
	ssize_t got = 0, r;
	bool done = false;
	pid_t pid;

	NETNS_REQUIRE();
	err = topo_create(&t);
	if (!err && !topo_peer_offloads)
		err = netns_sh(t.ns_b, NULL, 0, "ethtool -K %s tx off tso off gso off >/dev/null",
			       t.if_b);
	if (err) {
		topo_destroy(&t);
		cr_assert_fail("cannot build the test topology %s / %s: %d", t.ns_a, t.ns_b, err);
	}
	cr_assert(pipe2(pfd, O_CLOEXEC) == 0);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		fail_fd = pfd[1];
		alarm(timeout_s);
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
			if (r == 0 || (r < 0 && errno != EINTR)) /* the child is ending */
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
