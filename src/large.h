/* SPDX-License-Identifier: MIT */
/*
 * large.h — blocks with a mapping of their own (above the largest medium
 * block, or aligned beyond what a segment gives). The mapping starts at a
 * 4 MiB boundary (so no other mapping of ours shares its chunks) and
 * every chunk it covers is marked in the chunk map; a 64-byte header sits
 * just below the block. realloc moves pages with mremap, never copies;
 * a block that shrinks keeps its pages for the decay time. Freed
 * mappings are cached for the decay time and reused. Thread-safe: a block
 * belongs to whoever holds it; the cache and the pages kept past blocks
 * are under one lock (large.c), never taken by a lookup.
 */
#ifndef ST_LARGE_H
#define ST_LARGE_H

#include "bits.h"

#define ST_LARGE_HEADER ((size_t)64)

/* A block of `size` bytes aligned to `align` (a power of two), or NULL
 * with errno ENOMEM. *fresh (if not NULL): true when the pages are new
 * from the OS, hence zero; false for a reused mapping. */
ST_HIDDEN void *st_large_alloc(size_t size, size_t align, uint64_t now_ms, bool *fresh);

/* What a pointer in a large-block chunk is. */
typedef enum { ST_LARGE_OK, ST_LARGE_NOT_OURS, ST_LARGE_INSIDE, ST_LARGE_FREED } st_large_status;
ST_HIDDEN st_large_status st_large_lookup(const void *p);

/* Free the block at p (st_large_lookup said OK): its mapping is cached
 * for reuse or unmapped; ST_LARGE_FREED if another free got there first. */
ST_HIDDEN st_large_status st_large_free(void *p, uint64_t now_ms);
/* Unmap the cached mappings freed decay_ms ago or more, and give back the
 * pages past live blocks that shrank that long ago (all of them with
 * `all`); returns how many mappings were unmapped or cut down. */
ST_HIDDEN size_t st_large_decay(uint64_t now_ms, uint64_t decay_ms, bool all);
/* pthread_atfork phases: 0 prepare, 1 parent, 2 child. */
ST_HIDDEN void st_large_at_fork(int phase);
ST_HIDDEN size_t st_large_usable_size(const void *p);
/* Resize within the mapping, in place or by moving the pages; NULL (block
 * untouched, errno ENOMEM) if the address space is exhausted. now_ms
 * starts the decay of pages a shrink leaves past the block. */
ST_HIDDEN void *st_large_realloc(void *p, size_t size, uint64_t now_ms);

/* Verify LARGE-1, LARGE-2 of docs/INVARIANTS.md; 0 or the number of
 * violations. */
ST_HIDDEN int st_large_check(void);
/* Bytes of freed mappings kept for reuse. */
ST_HIDDEN size_t st_large_cached_bytes(void);
/* Live large blocks, their mapped bytes and their usable bytes. */
ST_HIDDEN void st_large_totals(size_t *blocks, size_t *mapped, size_t *usable);

#endif /* ST_LARGE_H */
