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

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
enum log_level log_get_level(void);
void log_set_level(enum log_level level);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (log_get_level() >= LOG_DEBUG)                                                  \
			log_msg(LOG_DEBUG, __VA_ARGS__);                                           \
	} while (0)

#endif
