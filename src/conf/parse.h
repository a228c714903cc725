/*
 * Strict scalar parsers shared by the parameters, the rules file and the port specs. Each takes a
 * whole NUL-terminated token: anything left over (a sign, a space, a unit we do not know) makes
 * the token malformed rather than silently ignored.
 */
#ifndef XRING_CONF_PARSE_H
#define XRING_CONF_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decimal digits only. -EINVAL when malformed, -ERANGE when above UINT64_MAX. */
int conf_parse_u64(const char *s, uint64_t *out);
/* Decimal digits with an optional K, M or G suffix (either case, powers of 1024). */
int conf_parse_size(const char *s, uint64_t *out);
/* 0/1, no/yes, off/on, false/true (either case). */
int conf_parse_bool(const char *s, bool *out);
/* Dotted-quad IPv4 address with an optional "/len" (0..32); *plen is 32 without one. The address
 * is returned in network byte order, host bits kept. */
int conf_parse_ipv4(const char *s, uint32_t *addr, uint8_t *plen, bool allow_len);
/* Index of s in a NULL-terminated list of names, or -EINVAL. */
int conf_parse_choice(const char *s, const char *const *names);

/* Writes v as the shortest exact size text ("2048" → "2K"). */
void conf_format_size(uint64_t v, char *buf, size_t len);
/* snprintf that never fails loudly: a NULL or empty buffer is ignored. */
void conf_errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
