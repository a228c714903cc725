#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static enum log_level level = LOG_WARN;

/* XRING_LOG_LEVEL is read once, before main, so no log call races with its parsing. */
__attribute__((constructor)) static void log_init(void)
{
	static const char *const names[] = {"none", "error", "warn", "info", "debug"};
	const char *v = getenv("XRING_LOG_LEVEL");

	if (!v)
		return;
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(v, names[i]))
			level = (enum log_level) i;
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
