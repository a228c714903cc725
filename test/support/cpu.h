/* CPU time this process used, for tests that check an idle wait sleeps. */
#ifndef XRING_TEST_CPU_H
#define XRING_TEST_CPU_H

#include <sys/resource.h>

static inline long cpu_used_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000L + ru.ru_utime.tv_usec +
	       ru.ru_stime.tv_usec;
}

#endif
