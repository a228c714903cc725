#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static enum log_level level = LOG_WARN;

/* Set from XRING_LOG_LEVEL when the process's parameters are read (conf/proc.c), which
 * parses and validates it with every other parameter. */
void log_set_level(enum log_level l)
{
	level = l;
}

enum log_level log_get_level(void)
{
	return level;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	static const char *const tags[] = {"", "error", "warn", "info", "debug"};
	char line[512];
	va_list ap;
	int n;

	if (lvl > level || lvl == LOG_NONE)
		return;
	n = snprintf(line, sizeof(line), "xring[%d] %s: ", (int) getpid(), tags[lvl]);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t) n, fmt, ap);
	va_end(ap);
	if (n >= (int) sizeof(line) - 1)
		n = (int) sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line keeps lines from several threads whole. */
	(void) !write(STDERR_FILENO, line, (size_t) n);
}
