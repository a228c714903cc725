#include "conf/parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int conf_parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		unsigned d = (unsigned char) *s - '0';

		if (d > 9)
			return -EINVAL;
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int conf_parse_size(const char *s, uint64_t *out)
{
	char num[32];
	size_t n = strlen(s);
	unsigned shift = 0;
	uint64_t v;
	int ret;

	if (n && !(s[n - 1] >= '0' && s[n - 1] <= '9')) {
		switch (s[n - 1]) {
		case 'k':
		case 'K':
			shift = 10;
			break;
		case 'm':
		case 'M':
			shift = 20;
			break;
		case 'g':
		case 'G':
			shift = 30;
			break;
		default:
			return -EINVAL;
		}
		n--;
	}
	/* Longer than any 64-bit number: either junk or an overflow; the digit scan tells which. */
	if (n >= sizeof(num)) {
		for (size_t i = 0; i < n; i++)
			if (s[i] < '0' || s[i] > '9')
				return -EINVAL;
		return -ERANGE;
	}
	memcpy(num, s, n);
	num[n] = '\0';
	ret = conf_parse_u64(num, &v);
	if (ret)
		return ret;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = v << shift;
	return 0;
}

int conf_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"1", "yes", "on", "true"};
	static const char *const no[] = {"0", "no", "off", "false"};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcasecmp(s, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(s, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

int conf_parse_ipv4(const char *s, uint32_t *addr, uint8_t *plen, bool allow_len)
{
	const char *slash = strchr(s, '/');
	char buf[INET_ADDRSTRLEN];
	size_t n = slash ? (size_t) (slash - s) : strlen(s);
	struct in_addr a;
	uint64_t len = 32;

	if (slash && !allow_len)
		return -EINVAL;
	if (n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	/* inet_pton, unlike inet_aton, takes only four decimal parts: no "10.1" or octal surprises.
	 */
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -EINVAL;
	if (slash && (conf_parse_u64(slash + 1, &len) || len > 32 || strlen(slash + 1) > 2))
		return -EINVAL;
	*addr = a.s_addr;
	*plen = (uint8_t) len;
	return 0;
}

int conf_parse_choice(const char *s, const char *const *names)
{
	for (int i = 0; names[i]; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -EINVAL;
}

void conf_format_size(uint64_t v, char *buf, size_t len)
{
	static const char units[] = "KMG";
	int u = -1;

	while (u < 2 && v && !(v & 1023)) {
		v >>= 10;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%llu", (unsigned long long) v);
	else
		snprintf(buf, len, "%llu%c", (unsigned long long) v, units[u]);
}

void conf_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}
