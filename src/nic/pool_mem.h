/*
 * Memory for the ports' packet-buffer pools, in one place so that every backend obeys the same
 * policy: the application's allocation hooks (xring_set_alloc_hooks), huge pages
 * (XRING_HUGEPAGES), the process's limit (XRING_MEM_LIMIT), and the region callback that tells
 * the application about every region of packet buffers. Not a fast-path module: pools are taken
 * when a port (or a memif connection) comes up and given back when it goes.
 */
#ifndef XRING_NIC_POOL_MEM_H
#define XRING_NIC_POOL_MEM_H

#include <stdbool.h>
#include <stddef.h>

enum pmem_kind {
	PMEM_NONE,
	PMEM_MMAP, /* anonymous mapping, normal or huge pages */
	PMEM_HOOK, /* the application's alloc hook */
};

struct pmem {
	void *addr;
	size_t len;  /* what was asked for */
	size_t size; /* what was mapped or hooked (len rounded to the page) */
	size_t page; /* page size backing it */
	enum pmem_kind kind;
};

/* pmem_alloc() flags */
enum {
	PMEM_F_POPULATE = 1u << 0, /* fault every page in now (AF_XDP UMEM) */
};

/*
 * len bytes, page aligned, zeroed unless hooked. who names the pool in log lines. -ENOMEM when
 * the limit would be passed (logged, naming XRING_MEM_LIMIT), when XRING_HUGEPAGES=on and no
 * huge page is free, or when the hook or mmap fails.
 */
int pmem_alloc(struct pmem *m, size_t len, unsigned flags, const char *who);
void pmem_free(struct pmem *m);

/*
 * Memory the caller maps itself (memif's shared memfd regions): counts len against the limit
 * (-ENOMEM as above) and reports the region once mapped with pmem_report(). pmem_unaccount()
 * gives it back.
 */
int pmem_account(size_t len, const char *who);
void pmem_unaccount(size_t len);
void pmem_report(void *addr, size_t len, size_t page);

/* A port is opening: from now on the hooks stay as they are (xring_set_alloc_hooks: -EBUSY). */
void pmem_freeze(void);

/* Huge pages for memfd-backed pools: whether to ask (XRING_HUGEPAGES is try or on), whether
 * failing to get them is an error (on), and their size. */
bool pmem_want_huge(bool *required, size_t *page);

/* Bytes of pool memory the process holds now (tests, statistics). */
size_t pmem_in_use(void);

#endif
