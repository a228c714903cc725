/*
 * xring-stats: shows the statistics a running xring process publishes under XRING_STATS_DIR.
 * Without -p, lists the processes that publish (and removes the files of those that died);
 * with -p, prints the chosen view of that process, every -i seconds, -n times.
 *
 * One line per ring, port or socket, "key value" pairs after the first words, so the output
 * can be grepped and parsed; the format is the library's (xring_dump_stats prints the same).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "stats/shm_read.h"

enum {
	V_SOCKET = 1,
	V_PORT = 2,
	V_RING = 4,
	V_ALL = 7,
};

static void usage(FILE *f)
{
	fprintf(f, "usage: xring-stats [-p PID] [-v socket|port|ring|all] [-i SECONDS] [-n COUNT] "
		   "[-d DIR]\n");
}

/* A file cut short while mapped raises SIGBUS on access: the read fails instead of the tool. */
static sigjmp_buf bus_jmp;
static volatile sig_atomic_t bus_armed;

static void on_bus(int sig)
{
	if (!bus_armed) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	siglongjmp(bus_jmp, 1);
}

static int read_guarded(const void *base, size_t len, struct xstats_view *v)
{
	int err;

	memset(v, 0, sizeof(*v));
	if (sigsetjmp(bus_jmp, 1)) {
		bus_armed = 0;
		xstats_view_free(v);
		return -EINVAL;
	}
	bus_armed = 1;
	err = xstats_read(base, len, v);
	bus_armed = 0;
	return err;
}

static bool alive(pid_t pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

/* Maps a file read-only. 0, or -errno. */
static int map_file(const char *path, void **base, size_t *len)
{
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), err;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode) || sb.st_size <= 0) {
		close(fd);
		return -EINVAL;
	}
	*len = (size_t) sb.st_size;
	*base = mmap(NULL, *len, PROT_READ, MAP_SHARED, fd, 0);
	err = errno;
	close(fd);
	return *base == MAP_FAILED ? -err : 0;
}

/* The pid a file name names, or -1. */
static pid_t name_pid(const char *name)
{
	char *end;
	long pid;

	if (strncmp(name, "xring.", 6))
		return -1;
	pid = strtol(name + 6, &end, 10);
	if (end == name + 6 || strcmp(end, ".shm") || pid <= 0 || pid > 0x7fffffffL)
		return -1;
	return (pid_t) pid;
}

static int list(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int found = 0;

	if (!d) {
		fprintf(stderr, "xring-stats: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	while ((de = readdir(d))) {
		pid_t pid = name_pid(de->d_name);
		struct xstats_view v;
		char path[4096];
		size_t len;
		void *base;

		if (pid < 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (!alive(pid)) {
			/* Left behind by a process that died without exiting: clean it up. */
			if (unlink(path) == 0)
				fprintf(stderr, "xring-stats: removed %s (process %d is gone)\n",
					path, (int) pid);
			continue;
		}
		if (map_file(path, &base, &len))
			continue;
		if (read_guarded(base, len, &v) == 0 && v.hdr.pid == (uint32_t) pid) {
			printf("pid %d prog %s rings %u ports %u sockets %u sockets_unpublished "
			       "%llu\n",
			       (int) pid, v.hdr.prog, v.nrings, v.nports, v.nsocks,
			       (unsigned long long) v.hdr.socks_lost);
			found++;
		}
		xstats_view_free(&v);
		munmap(base, len);
	}
	closedir(d);
	if (!found)
		printf("no xring process publishes statistics in %s\n", dir);
	return 0;
}

static void print_view(const struct xstats_view *v, unsigned views)
{
	char line[4096];

	if (views & V_RING)
		for (unsigned i = 0; i < v->nrings; i++) {
			xstats_fmt_ring(&v->rings[i], line, sizeof(line));
			printf("%s\n", line);
		}
	if (views & V_PORT)
		for (unsigned i = 0; i < v->nports; i++) {
			xstats_fmt_port(&v->ports[i], 0, XSTATS_PORT_COUNTERS, line, sizeof(line));
			printf("%s\n", line);
		}
	if (views & V_SOCKET) {
		for (unsigned i = 0; i < v->nsocks; i++) {
			xstats_fmt_sock(&v->socks[i], line, sizeof(line));
			printf("%s\n", line);
		}
		if (v->hdr.socks_lost)
			printf("sockets_unpublished %llu\n",
			       (unsigned long long) v->hdr.socks_lost);
	}
}

static int watch(const char *dir, pid_t pid, unsigned views, double interval, long count)
{
	char path[4096];
	struct timespec ts = {(time_t) interval,
			      (long) ((interval - (double) (time_t) interval) * 1e9)};
	size_t len;
	void *base;
	int err;

	snprintf(path, sizeof(path), "%s/xring.%d.shm", dir, (int) pid);
	if (!alive(pid)) {
		fprintf(stderr, "xring-stats: no process %d\n", (int) pid);
		return 1;
	}
	err = map_file(path, &base, &len);
	if (err) {
		fprintf(stderr, "xring-stats: process %d publishes no statistics (%s: %s)\n",
			(int) pid, path, strerror(-err));
		return 1;
	}
	for (long i = 0; count <= 0 || i < count; i++) {
		struct xstats_view v;

		if (i)
			nanosleep(&ts, NULL);
		if (!alive(pid) || access(path, F_OK)) {
			printf("process %d has exited\n", (int) pid);
			munmap(base, len);
			return 0;
		}
		err = read_guarded(base, len, &v);
		if (!err && v.hdr.pid != (uint32_t) pid)
			err = -EINVAL;
		if (err) {
			fprintf(stderr, "xring-stats: %s: %s\n", path,
				err == -EPROTO ? "written by another version of xring"
					       : "not a valid statistics file");
			xstats_view_free(&v);
			munmap(base, len);
			return 1;
		}
		if (interval > 0)
			printf("time %lld pid %d prog %s\n", (long long) time(NULL), (int) pid,
			       v.hdr.prog);
		print_view(&v, views);
		fflush(stdout);
		xstats_view_free(&v);
	}
	munmap(base, len);
	return 0;
}

int main(int argc, char **argv)
{
	const char *dir = getenv("XRING_STATS_DIR");
	unsigned views = V_SOCKET;
	double interval = 0;
	long count = 0;
	pid_t pid = 0;
	int c;

	if (!dir || !*dir)
		dir = "/tmp/xring";
	signal(SIGBUS, on_bus);
	while ((c = getopt(argc, argv, "p:v:i:n:d:h")) != -1) {
		char *end;

		switch (c) {
		case 'p':
			pid = (pid_t) strtol(optarg, &end, 10);
			if (*end || pid <= 0) {
				fprintf(stderr, "xring-stats: bad pid '%s'\n", optarg);
				return 2;
			}
			break;
		case 'v':
			if (!strcmp(optarg, "socket"))
				views = V_SOCKET;
			else if (!strcmp(optarg, "port"))
				views = V_PORT;
			else if (!strcmp(optarg, "ring"))
				views = V_RING;
			else if (!strcmp(optarg, "all"))
				views = V_ALL;
			else {
				fprintf(stderr, "xring-stats: unknown view '%s'\n", optarg);
				return 2;
			}
			break;
		case 'i':
			interval = strtod(optarg, &end);
			if (*end || !(interval > 0 && interval <= 86400)) {
				fprintf(stderr, "xring-stats: bad interval '%s'\n", optarg);
				return 2;
			}
			break;
		case 'n':
			count = strtol(optarg, &end, 10);
			if (*end || count <= 0) {
				fprintf(stderr, "xring-stats: bad count '%s'\n", optarg);
				return 2;
			}
			break;
		case 'd':
			dir = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (!pid)
		return list(dir);
	/* Once, unless an interval asks for more. */
	if (!count && interval <= 0)
		count = 1;
	if (count > 1 && interval <= 0)
		interval = 1;
	return watch(dir, pid, views, interval, count);
}
