/*
 * Network-namespace hosts through iproute2's `ip`, run with fork/exec. See netns.h. No test
 * framework here: the tests and the benchmarks both link it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "netns.h"

#define MAX_NS         32
#define MAX_SPAWNED    32
#define CMD_MAX        1024
#define RUN_TIMEOUT_MS 20000

static char created[MAX_NS][NETNS_NAME_MAX];
static unsigned ncreated;
static pid_t spawned[MAX_SPAWNED];
static unsigned nspawned;
static pid_t owner; /* the process whose namespaces these are; forked children are not */
static bool swept;

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Wait for pid at most timeout_ms, then SIGKILL it. Exit status, 128 + signal, or -errno. */
static int reap(pid_t pid, long timeout_ms, bool *killed)
{
	long deadline = now_ms() + timeout_ms;
	int st;

	if (killed)
		*killed = false;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			break;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (now_ms() > deadline) {
			kill(pid, SIGKILL);
			if (killed)
				*killed = true;
			if (waitpid(pid, &st, 0) < 0)
				return -errno;
			break;
		}
		usleep(2000);
	}
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + WTERMSIG(st);
}

/* fork/exec argv; stdout into out (may be NULL), bounded in time. */
static int run_argv(char *const argv[], char *out, size_t outlen)
{
	int pfd[2] = {-1, -1};
	size_t used = 0;
	long deadline = now_ms() + RUN_TIMEOUT_MS;
	bool killed;
	pid_t pid;
	int st;

	if (out && outlen)
		out[0] = '\0';
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		st = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return st;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		if (null >= 0)
			dup2(null, STDIN_FILENO);
		dup2(pfd[1], STDOUT_FILENO);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		struct pollfd p = {.fd = pfd[0], .events = POLLIN};
		long left = deadline - now_ms();
		char sink[512];
		ssize_t n;

		if (left <= 0)
			break;
		if (poll(&p, 1, (int) left) <= 0)
			continue;
		bool keep = out && used + 1 < outlen;

		if (keep)
			n = read(pfd[0], out + used, outlen - 1 - used);
		else
			n = read(pfd[0], sink, sizeof(sink)); /* drain what does not fit */
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (keep)
			used += (size_t) n;
	}
	if (out && outlen)
		out[used] = '\0';
	close(pfd[0]);
	st = reap(pid, deadline - now_ms() > 0 ? deadline - now_ms() : 0, &killed);
	if (killed)
		return -ETIMEDOUT;
	return st;
}

/* Is every IPv4 literal in s inside 198.18.0.0/15, 127.0.0.0/8, or 0.0.0.0? */
static bool addrs_allowed(const char *s)
{
	const char *p = s;

	while (*p) {
		const char *q = p;
		unsigned dots = 0;

		if (!isdigit((unsigned char) *p)) {
			p++;
			continue;
		}
		while (isdigit((unsigned char) *q) || *q == '.')
			dots += *q++ == '.';
		if (dots == 3 && (p == s || !isalnum((unsigned char) p[-1]))) {
			char lit[16];
			struct in_addr a;
			size_t len = (size_t) (q - p);
			uint32_t h;
			long plen = 32;

			if (len < sizeof(lit)) {
				memcpy(lit, p, len);
				lit[len] = '\0';
				if (inet_pton(AF_INET, lit, &a) == 1) {
					h = ntohl(a.s_addr);
					if (*q == '/' && isdigit((unsigned char) q[1]))
						plen = strtol(q + 1, NULL, 10);
					if (h == 0)
						;
					else if ((h >> 24) == 127 && plen >= 8)
						;
					else if ((h & 0xfffe0000u) == 0xc6120000u && plen >= 15)
						;
					else {
						fprintf(stderr,
							"netns: refusing %s: tests may only use "
							"198.18.0.0/15\n",
							lit);
						return false;
					}
				}
			}
		}
		p = q;
	}
	return true;
}

static bool name_ok(const char *ns)
{
	return ns && *ns && strlen(ns) < NETNS_NAME_MAX && !strchr(ns, '/') && !strchr(ns, ' ');
}

const char *netns_unusable(void)
{
	static const char *const argv[] = {"ip", "-V", NULL};

	if (geteuid() != 0)
		return "not root: creating network namespaces needs root (CAP_SYS_ADMIN); "
		       "run this test as root";
	if (run_argv((char *const *) argv, NULL, 0) != 0)
		return "iproute2's ip command is not available";
	return NULL;
}

static void cleanup_at_exit(void)
{
	if (getpid() == owner)
		netns_cleanup();
}

int netns_del(const char *name)
{
	char *const argv[] = {"ip", "netns", "del", (char *) name, NULL};

	if (!name_ok(name))
		return -EINVAL;
	for (unsigned i = 0; i < ncreated; i++) {
		if (!strcmp(created[i], name)) {
			memmove(created[i], created[i + 1],
				(ncreated - i - 1) * sizeof(created[0]));
			ncreated--;
			break;
		}
	}
	return run_argv(argv, NULL, 0) == 0 ? 0 : -EIO;
}

int netns_sweep(void)
{
	DIR *d = opendir("/run/netns");
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		const char *p = e->d_name;
		char *end;
		long pid;

		if (strncmp(p, NETNS_PREFIX, strlen(NETNS_PREFIX)))
			continue;
		p += strlen(NETNS_PREFIX);
		if (!isdigit((unsigned char) *p))
			continue;
		pid = strtol(p, &end, 10);
		if (*end != '-' || pid <= 0)
			continue;
		if (kill((pid_t) pid, 0) == 0 || errno != ESRCH)
			continue; /* owner alive (or not ours to judge) */
		char *const argv[] = {"ip", "netns", "del", e->d_name, NULL};

		if (run_argv(argv, NULL, 0) == 0)
			n++;
	}
	closedir(d);
	return n;
}

void netns_cleanup(void)
{
	while (nspawned)
		netns_stop(spawned[nspawned - 1]);
	while (ncreated) {
		char name[NETNS_NAME_MAX];

		memcpy(name, created[ncreated - 1], sizeof(name));
		if (netns_del(name) < 0)
			fprintf(stderr, "netns: could not delete %s\n", name);
	}
}

int netns_add(const char *tag, char name[NETNS_NAME_MAX])
{
	char *const add[] = {"ip", "netns", "add", name, NULL};
	int n;

	if (!tag || !*tag || ncreated == MAX_NS)
		return -EINVAL;
	if (!swept) {
		swept = true;
		netns_sweep();
	}
	if (owner != getpid()) {
		/* A forked child (Criterion's test worker) keeps nothing of its parent's. */
		owner = getpid();
		ncreated = nspawned = 0;
		atexit(cleanup_at_exit);
	}
	n = snprintf(name, NETNS_NAME_MAX, NETNS_PREFIX "%d-%s", (int) getpid(), tag);
	if (n < 0 || n >= NETNS_NAME_MAX || !name_ok(name))
		return -ENAMETOOLONG;
	if (run_argv(add, NULL, 0) != 0)
		return -EIO;
	memcpy(created[ncreated++], name, NETNS_NAME_MAX);
	return netns_ip(name, "link set lo up");
}

static int vformat(char *buf, size_t len, const char *fmt, va_list ap)
{
	int n = vsnprintf(buf, len, fmt, ap);

	if (n < 0 || (size_t) n >= len)
		return -E2BIG;
	return addrs_allowed(buf) ? 0 : -EINVAL;
}

int netns_ip(const char *ns, const char *fmt, ...)
{
	char cmd[CMD_MAX], *argv[64], *save = NULL, *tok;
	unsigned argc = 0;
	va_list ap;
	int err;

	if (!name_ok(ns))
		return -EINVAL;
	va_start(ap, fmt);
	err = vformat(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (err)
		return err;
	argv[argc++] = "ip";
	argv[argc++] = "-n";
	argv[argc++] = (char *) ns;
	for (tok = strtok_r(cmd, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
		if (argc == 63)
			return -E2BIG;
		argv[argc++] = tok;
	}
	argv[argc] = NULL;
	err = run_argv(argv, NULL, 0);
	return err == 0 ? 0 : err < 0 ? err : -EIO;
}

int netns_sh(const char *ns, char *out, size_t outlen, const char *fmt, ...)
{
	char cmd[CMD_MAX];
	char *const argv[] = {"ip", "netns", "exec", (char *) ns, "sh", "-c", cmd, NULL};
	va_list ap;
	int err;

	if (!name_ok(ns))
		return -EINVAL;
	va_start(ap, fmt);
	err = vformat(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (err)
		return err;
	return run_argv(argv, out, outlen);
}

pid_t netns_spawn(const char *ns, const char *fmt, ...)
{
	char cmd[CMD_MAX];
	char *const argv[] = {"ip", "netns", "exec", (char *) ns, "sh", "-c", cmd, NULL};
	va_list ap;
	pid_t pid;
	int err;

	if (!name_ok(ns) || nspawned == MAX_SPAWNED)
		return -EINVAL;
	va_start(ap, fmt);
	err = vformat(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (err)
		return err;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		/* Own process group, so that stopping it reaches whatever sh started. */
		setpgid(0, 0);
		execvp(argv[0], argv);
		_exit(127);
	}
	setpgid(pid, pid);
	if (owner != getpid()) {
		owner = getpid();
		ncreated = nspawned = 0;
		atexit(cleanup_at_exit);
	}
	spawned[nspawned++] = pid;
	return pid;
}

/* Take pid off the spawned list; false when it was never on it. */
static bool forget(pid_t pid)
{
	for (unsigned i = 0; i < nspawned; i++) {
		if (spawned[i] == pid) {
			spawned[i] = spawned[--nspawned];
			return true;
		}
	}
	return false;
}

int netns_wait(pid_t pid, int timeout_ms)
{
	bool killed;
	int st;

	if (pid <= 0 || !forget(pid))
		return -ESRCH; /* never signal a process group we did not start */
	st = reap(pid, timeout_ms > 0 ? timeout_ms : 0, &killed);
	if (killed) {
		/* reap() had to SIGKILL the leader; take the rest of its group with it. */
		kill(-pid, SIGKILL);
		return 128 + SIGKILL;
	}
	kill(-pid, SIGKILL); /* stragglers in its group */
	return st;
}

int netns_stop(pid_t pid)
{
	bool killed;
	int st;

	if (pid <= 0 || !forget(pid))
		return -ESRCH;
	kill(-pid, SIGTERM);
	st = reap(pid, 5000, &killed);
	kill(-pid, SIGKILL);
	return st;
}

int netns_enter(const char *ns)
{
	char path[64 + NETNS_NAME_MAX];
	int old, fd;

	if (!name_ok(ns))
		return -EINVAL;
	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	old = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (old < 0)
		return -errno;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
		int err = -errno;

		if (fd >= 0)
			close(fd);
		close(old);
		return err;
	}
	close(fd);
	return old;
}

int netns_leave(int old_fd)
{
	int err = setns(old_fd, CLONE_NEWNET) < 0 ? -errno : 0;

	close(old_fd);
	return err;
}

int netns_fork_run(const char *ns, int (*fn)(void *), void *arg)
{
	bool killed;
	pid_t pid;
	int st;

	if (!name_ok(ns))
		return -EINVAL;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int old = netns_enter(ns);

		if (old < 0)
			_exit(126);
		_exit(fn(arg) & 0xff);
	}
	st = reap(pid, 60000, &killed);
	if (killed)
		return -ETIMEDOUT;
	return st >= 128 ? -ECANCELED : st;
}

struct thread_job {
	const char *ns;
	int (*fn)(void *);
	void *arg;
	int result;
};

static void *thread_main(void *p)
{
	struct thread_job *j = p;
	int old = netns_enter(j->ns);

	if (old < 0) {
		j->result = old;
		return NULL;
	}
	close(old); /* the thread ends inside ns */
	j->result = j->fn(j->arg);
	return NULL;
}

int netns_thread_run(const char *ns, int (*fn)(void *), void *arg)
{
	struct thread_job j = {.ns = ns, .fn = fn, .arg = arg};
	pthread_t t;
	int err;

	if (!name_ok(ns))
		return -EINVAL;
	err = pthread_create(&t, NULL, thread_main, &j);
	if (err)
		return -err;
	pthread_join(t, NULL);
	return j.result;
}

int netns_veth(const char *ns_a, const char *if_a, const char *ns_b, const char *if_b)
{
	int err;

	if (!name_ok(ns_b))
		return -EINVAL;
	/* Created inside ns_a with its peer straight into ns_b, so no name ever exists in the
	 * root namespace, where concurrently running tests could collide. */
	err = netns_ip(ns_a, "link add %s type veth peer name %s netns %s", if_a, if_b, ns_b);
	if (!err)
		err = netns_ip(ns_a, "link set %s up", if_a);
	if (!err)
		err = netns_ip(ns_b, "link set %s up", if_b);
	return err;
}

int netns_addr(const char *ns, const char *ifname, const char *cidr)
{
	return netns_ip(ns, "addr add %s dev %s", cidr, ifname);
}

int netns_pair(struct netns_pair *p, const char *tag, const char *cidr_a, const char *cidr_b)
{
	char t[NETNS_NAME_MAX];
	int err;

	snprintf(t, sizeof(t), "%sa", tag);
	err = netns_add(t, p->a);
	if (err)
		return err;
	snprintf(t, sizeof(t), "%sb", tag);
	err = netns_add(t, p->b);
	if (!err)
		err = netns_veth(p->a, NETNS_PAIR_IF, p->b, NETNS_PAIR_IF);
	if (!err && cidr_a)
		err = netns_addr(p->a, NETNS_PAIR_IF, cidr_a);
	if (!err && cidr_b)
		err = netns_addr(p->b, NETNS_PAIR_IF, cidr_b);
	return err;
}

int netns_json_get(const char *s, const char *key, char *out, size_t outlen)
{
	char pat[64];
	const char *p, *end;
	size_t len;

	if (!s || outlen == 0 || snprintf(pat, sizeof(pat), "\"%s\":", key) >= (int) sizeof(pat))
		return -EINVAL;
	p = strstr(s, pat);
	if (!p)
		return -ENOENT;
	p += strlen(pat);
	while (*p == ' ' || *p == '[')
		p++;
	if (*p == '"') {
		end = strchr(++p, '"');
		if (!end)
			return -ENOENT;
	} else {
		for (end = p; *end && !strchr(",}] \n", *end); end++)
			;
	}
	len = (size_t) (end - p);
	if (len >= outlen)
		len = outlen - 1;
	memcpy(out, p, len);
	out[len] = '\0';
	return 0;
}
