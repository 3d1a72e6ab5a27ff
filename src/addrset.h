/* SPDX-License-Identifier: MIT */
/*
 * addrset.h — a set of aligned addresses (slab or chunk starts) with O(1)
 * expected insert, remove and lookup, so that an allocator can tell in
 * O(1) whether it manages a pointer without reading memory it may not
 * own. Open addressing with linear probing and backward-shift deletion
 * (no tombstones); the table's memory comes from a page source.
 */
#ifndef ST_ADDRSET_H
#define ST_ADDRSET_H

#include "bits.h"
#include "strata/page_source.h"

typedef struct st_addrset {
    uintptr_t *slots;  /* 0 = empty; capacity a power of two */
    size_t capacity;
    size_t count;      /* load kept at or below 1/2 */
    unsigned shift;    /* address bits below the set's alignment, dropped before hashing */
    strata_page_source source;
} st_addrset;

/* An empty set of addresses aligned to 1 << shift; no memory until the first insert. */
ST_HIDDEN void st_addrset_init(st_addrset *s, unsigned shift, strata_page_source source);
/* false (and errno ENOMEM) if the table could not grow. */
ST_HIDDEN bool st_addrset_insert(st_addrset *s, uintptr_t addr);
ST_HIDDEN bool st_addrset_contains(const st_addrset *s, uintptr_t addr);
ST_HIDDEN void st_addrset_remove(st_addrset *s, uintptr_t addr);
/* Give the table back to its page source. */
ST_HIDDEN void st_addrset_destroy(st_addrset *s);

#endif /* ST_ADDRSET_H */
