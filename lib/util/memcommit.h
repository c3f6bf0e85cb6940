/* memcommit.h — commit a fixed-size table's memory when it is made.
 *
 * The verification cache, the rate limiter and the scope-usage table are
 * fixed-size arrays (their size is the memory bound of a server).  calloc
 * of a large array maps zero pages that the kernel backs only when first
 * written, and keys hash to slots at random, so without this the resident
 * size of a server creeps up with every new key it sees (~4 KiB per new
 * cache page) until the tables are fully touched — tens of MB later, hours
 * into production.  Writing one byte per page at start-up makes the bound
 * visible at once and keeps RSS flat afterwards (what the soak test checks).  The
 * writes go through a volatile pointer so the compiler cannot fold them
 * into the calloc. */
#ifndef KW_MEMCOMMIT_H
#define KW_MEMCOMMIT_H

#include <stddef.h>

static inline void kw_mem_commit(void *p, size_t n)
{
    volatile unsigned char *b = p;
    for (size_t i = 0; i < n; i += 4096) b[i] = 0;
}

#endif
