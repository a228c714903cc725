/* Internal diagnostics: one line per event on stderr (or the log file), filtered by level. */
#ifndef XRING_UTIL_LOG_H
#define XRING_UTIL_LOG_H

enum log_level {
	LOG_NONE,
	LOG_ERROR,
	LOG_WARN,
	LOG_INFO,
	LOG_DEBUG
};

/* What each line carries besides the level (XRING_LOG_DETAILS): each level adds to the one
 * before it. */
enum log_details {
	LOG_DETAIL_LEVEL,  /* "xring[pid] warn: ..." */
	LOG_DETAIL_THREAD, /* + the thread id */
	LOG_DETAIL_TIME,   /* + the wall-clock time, microseconds */
	LOG_DETAIL_SOURCE, /* + the source file and line */
};

void log_msg_at(enum log_level level, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
enum log_level log_get_level(void);
void log_set_level(enum log_level level);
void log_set_details(unsigned details);
/* Sends every later line to fd (which the log then owns; -1: back to stderr). */
void log_set_fd(int fd);
/* Opens path for appending and logs there. 0 or a negated errno (the log is unchanged then). */
int log_open_file(const char *path);

#define log_msg(lvl, ...) log_msg_at(lvl, __FILE__, __LINE__, __VA_ARGS__)
#define log_error(...)    log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)     log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)     log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (log_get_level() >= LOG_DEBUG)                                                  \
			log_msg(LOG_DEBUG, __VA_ARGS__);                                           \
	} while (0)

#endif
