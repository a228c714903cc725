#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static enum log_level level = LOG_WARN;
static unsigned details;
static int log_fd = -1; /* -1: stderr */

/* Set from XRING_LOG_LEVEL, XRING_LOG_DETAILS and XRING_LOG_FILE when the process's parameters
 * are read (conf/proc.c), which parses and validates them with every other parameter. */
void log_set_level(enum log_level l)
{
	level = l;
}

enum log_level log_get_level(void)
{
	return level;
}

void log_set_details(unsigned d)
{
	details = d;
}

void log_set_fd(int fd)
{
	int old = log_fd;

	log_fd = fd;
	if (old >= 0 && old != fd)
		close(old);
}

int log_open_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

	if (fd < 0)
		return -errno;
	log_set_fd(fd);
	return 0;
}

/* Appends to line[*n..len), never past it. */
static void add(char *line, size_t len, int *n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void add(char *line, size_t len, int *n, const char *fmt, ...)
{
	va_list ap;
	int k;

	if ((size_t) *n >= len)
		return;
	va_start(ap, fmt);
	k = vsnprintf(line + *n, len - (size_t) *n, fmt, ap);
	va_end(ap);
	if (k > 0)
		*n = (size_t) (*n + k) < len ? *n + k : (int) len - 1;
}

static int prefix(char *line, size_t len, enum log_level lvl, const char *file, int lno)
{
	static const char *const tags[] = {"", "error", "warn", "info", "debug"};
	int n = 0;

	add(line, len, &n, "xring[%d", (int) getpid());
	if (details >= LOG_DETAIL_THREAD)
		add(line, len, &n, ":%ld", (long) syscall(SYS_gettid));
	add(line, len, &n, "]");
	if (details >= LOG_DETAIL_TIME) {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		add(line, len, &n, " %s.%06ldZ", when, ts.tv_nsec / 1000);
	}
	if (details >= LOG_DETAIL_SOURCE) {
		const char *s = strstr(file, "src/");

		add(line, len, &n, " %s:%d", s ? s + 4 : file, lno);
	}
	add(line, len, &n, " %s: ", tags[lvl]);
	return n;
}

void log_msg_at(enum log_level lvl, const char *file, int lno, const char *fmt, ...)
{
	char line[640];
	va_list ap;
	int n;

	if (lvl > level || lvl == LOG_NONE)
		return;
	n = prefix(line, sizeof(line) - 128, lvl, file, lno);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t) n, fmt, ap);
	va_end(ap);
	if (n >= (int) sizeof(line) - 1)
		n = (int) sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line keeps lines from several threads whole. */
	(void) !write(log_fd >= 0 ? log_fd : STDERR_FILENO, line, (size_t) n);
}
