#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xring.h>

#include "conf/params.h"
#include "conf/proc.h"
#include "nic/pool_mem.h"
#include "util/log.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct xring_alloc_hooks hooks;
static bool frozen; /* a pool exists: the hooks can no longer change */
static size_t in_use;

XRING_API int xring_set_alloc_hooks(const struct xring_alloc_hooks *h)
{
	int ret = 0;

	if (h && !h->alloc != !h->free)
		return -EINVAL;
	pthread_mutex_lock(&lock);
	if (frozen)
		ret = -EBUSY;
	else if (h)
		hooks = *h;
	else
		memset(&hooks, 0, sizeof(hooks));
	pthread_mutex_unlock(&lock);
	return ret;
}

void pmem_freeze(void)
{
	pthread_mutex_lock(&lock);
	frozen = true;
	pthread_mutex_unlock(&lock);
}

static const struct xring_conf *conf(void)
{
	const struct xring_conf *c;

	return proc_conf(&c) ? NULL : c;
}

static size_t huge_size(void)
{
	char line[128];
	size_t kb = 0;
	FILE *f = fopen("/proc/meminfo", "re");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Hugepagesize: %zu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb ? kb * 1024 : 2u << 20;
}

bool pmem_want_huge(bool *required, size_t *page)
{
	const struct xring_conf *c = conf();
	unsigned h = c ? c->hugepages : CONF_HUGE_TRY;

	*required = h == CONF_HUGE_ON;
	*page = huge_size();
	return h != CONF_HUGE_OFF;
}

/* Takes len against XRING_MEM_LIMIT; called with the lock held. */
static int account(size_t len, const char *who)
{
	const struct xring_conf *c = conf();

	frozen = true;
	if (c && c->mem_limit && in_use + len > c->mem_limit) {
		log_error("%s: %zu bytes of buffers would pass XRING_MEM_LIMIT=%" PRIu64
			  " (%zu in use): refused",
			  who, len, c->mem_limit, in_use);
		return -ENOMEM;
	}
	in_use += len;
	return 0;
}

int pmem_account(size_t len, const char *who)
{
	int ret;

	pthread_mutex_lock(&lock);
	ret = account(len, who);
	pthread_mutex_unlock(&lock);
	return ret;
}

void pmem_unaccount(size_t len)
{
	pthread_mutex_lock(&lock);
	in_use -= len < in_use ? len : in_use;
	pthread_mutex_unlock(&lock);
}

void pmem_report(void *addr, size_t len, size_t page)
{
	void (*fn)(void *, size_t, size_t, void *);
	void *arg;

	pthread_mutex_lock(&lock);
	fn = hooks.region;
	arg = hooks.arg;
	pthread_mutex_unlock(&lock);
	if (fn)
		fn(addr, len, page, arg);
}

size_t pmem_in_use(void)
{
	size_t n;

	pthread_mutex_lock(&lock);
	n = in_use;
	pthread_mutex_unlock(&lock);
	return n;
}

static int map(struct pmem *m, size_t len, unsigned flags, const char *who)
{
	size_t small = (size_t) sysconf(_SC_PAGESIZE), hp;
	int pop = (flags & PMEM_F_POPULATE) ? MAP_POPULATE : 0;
	bool required;
	void *a = MAP_FAILED;

	if (pmem_want_huge(&required, &hp)) {
		size_t hl = (len + hp - 1) / hp * hp;

		a = mmap(NULL, hl, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | pop, -1, 0);
		if (a != MAP_FAILED) {
			m->size = hl;
			m->page = hp;
		} else if (required) {
			log_error("%s: XRING_HUGEPAGES=on but no huge pages for %zu bytes (%s): "
				  "refused",
				  who, hl, strerror(errno));
			return -ENOMEM;
		} else {
			log_info("%s: no huge pages (%s), using normal pages", who,
				 strerror(errno));
		}
	}
	if (a == MAP_FAILED) {
		m->size = (len + small - 1) / small * small;
		m->page = small;
		a = mmap(NULL, m->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | pop,
			 -1, 0);
		if (a == MAP_FAILED)
			return -ENOMEM;
	}
	m->addr = a;
	m->kind = PMEM_MMAP;
	return 0;
}

int pmem_alloc(struct pmem *m, size_t len, unsigned flags, const char *who)
{
	size_t small = (size_t) sysconf(_SC_PAGESIZE);
	struct xring_alloc_hooks h;
	int ret;

	memset(m, 0, sizeof(*m));
	if (!len)
		return -EINVAL;
	pthread_mutex_lock(&lock);
	ret = account(len, who);
	h = hooks;
	pthread_mutex_unlock(&lock);
	if (ret)
		return ret;
	if (h.alloc) {
		m->size = (len + small - 1) / small * small;
		m->page = small;
		m->addr = h.alloc(m->size, small, h.arg);
		if (!m->addr || ((uintptr_t) m->addr & (small - 1))) {
			log_error("%s: the alloc hook gave %p for %zu bytes aligned to %zu", who,
				  m->addr, m->size, small);
			if (m->addr)
				h.free(m->addr, m->size, h.arg);
			m->addr = NULL;
			ret = -ENOMEM;
		} else {
			m->kind = PMEM_HOOK;
		}
	} else {
		ret = map(m, len, flags, who);
	}
	if (ret) {
		pmem_unaccount(len);
		memset(m, 0, sizeof(*m));
		return ret;
	}
	m->len = len;
	if (h.region)
		h.region(m->addr, m->size, m->page, h.arg);
	return 0;
}

void pmem_free(struct pmem *m)
{
	struct xring_alloc_hooks h;

	if (!m || m->kind == PMEM_NONE)
		return;
	pthread_mutex_lock(&lock);
	h = hooks;
	pthread_mutex_unlock(&lock);
	if (m->kind == PMEM_HOOK)
		h.free(m->addr, m->size, h.arg);
	else
		munmap(m->addr, m->size);
	pmem_unaccount(m->len);
	memset(m, 0, sizeof(*m));
}
