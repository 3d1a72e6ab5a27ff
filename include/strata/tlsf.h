/* SPDX-License-Identifier: MIT */
/*
 * strata/tlsf.h — a two-level segregated fit allocator (after Masmano,
 * Ripoll, Crespo and Real, "TLSF: a new dynamic memory allocator for
 * real-time systems", 2004) over one or more pools of caller memory.
 *
 * Cost: malloc, free, memalign and realloc-in-place are O(1) in the worst
 * case — no loop depends on the number of blocks; a search is two bit scans
 * and one list head. Free blocks are indexed by size class: a first level
 * per power of two and STRATA_TLSF_SL_INDEX_COUNT (32) linear subdivisions
 * of each, so a request never wastes more than 1/32 of a class to rounding.
 * Physical neighbours are found through boundary tags (a size in each
 * header, a back pointer at the end of each free block) so coalescing is
 * O(1).
 *
 * Every block payload is aligned to STRATA_TLSF_ALIGN (16) and holds at
 * least STRATA_TLSF_BLOCK_MIN bytes; each block costs a 16-byte header (a
 * check word derived from the header's address and size, then the size and
 * two flags). A pool costs STRATA_TLSF_POOL_OVERHEAD bytes more.
 *
 * Bad input is caught in O(1): free of a pointer outside every pool
 * (STRATA_ERR_FOREIGN), of an address whose header check word does not
 * match (STRATA_ERR_NOT_BLOCK) and of a free block (STRATA_ERR_DOUBLE_FREE).
 * At most STRATA_TLSF_MAX_POOLS pools per allocator.
 *
 * Not thread-safe: one allocator, one lock, held by the caller.
 */
#ifndef STRATA_TLSF_H
#define STRATA_TLSF_H

#include "strata/defs.h"

#ifdef __cplusplus
extern "C" {
#endif

#define STRATA_TLSF_ALIGN 16                    /* alignment of every payload */
#define STRATA_TLSF_SL_INDEX_COUNT 32           /* second-level classes per power of two */
#define STRATA_TLSF_BLOCK_MIN 32                /* smallest payload */
#define STRATA_TLSF_BLOCK_MAX ((size_t)1 << 40) /* payloads (and pools) stay below this */
#define STRATA_TLSF_MAX_POOLS 16                /* pools per allocator */
#define STRATA_TLSF_POOL_OVERHEAD 32            /* first block header + end sentinel */

typedef struct strata_tlsf strata_tlsf;

typedef struct strata_tlsf_info {
    size_t pools;          /* pools added and not removed */
    size_t pool_bytes;     /* bytes under management (pools after alignment) */
    size_t free_bytes;     /* payload bytes of free blocks */
    size_t used_bytes;     /* payload bytes of allocated blocks */
    size_t free_blocks;
    size_t used_blocks;
    size_t largest_free;   /* payload bytes of the largest free block, 0 if none */
    size_t overhead_bytes; /* headers and sentinels: pool_bytes - free_bytes - used_bytes */
} strata_tlsf_info;

/* Bytes of the control structure (what strata_tlsf_create_with_pool needs,
 * whatever the alignment of its memory). */
STRATA_API size_t strata_tlsf_size(void);

/* Bytes a pool spends on metadata besides one 16-byte header per block. */
STRATA_API size_t strata_tlsf_pool_overhead(void);

/* Bytes per allocated block beyond its payload (the block header). */
STRATA_API size_t strata_tlsf_overhead(void);

/* The control structure at the start of mem, the rest as the first pool.
 * NULL with errno EINVAL (NULL mem, an end that wraps, a pool of
 * STRATA_TLSF_BLOCK_MAX bytes or more) or ERANGE (no room for the control
 * and a pool of one minimal block). */
STRATA_API strata_tlsf *strata_tlsf_create(void *mem, size_t bytes);

/* The control structure in [mem, mem+bytes) (at least strata_tlsf_size()
 * bytes) and a first pool elsewhere; pool may be NULL for none. NULL with
 * errno as strata_tlsf_create, or as strata_tlsf_add_pool. */
STRATA_API strata_tlsf *strata_tlsf_create_with_pool(void *mem, size_t bytes, void *pool,
                                                     size_t pool_bytes);

/* Add [mem, mem+bytes) as a pool; returns the pool's handle (mem rounded
 * up to 16), or NULL with errno EINVAL (NULL, too large, overlaps a pool
 * or the control structure), ERANGE (too small for one minimal block) or
 * ENOMEM (STRATA_TLSF_MAX_POOLS reached). */
STRATA_API void *strata_tlsf_add_pool(strata_tlsf *t, void *mem, size_t bytes);

/* Remove a pool that holds no allocated block. 0, STRATA_ERR_FOREIGN (not
 * a pool handle of t), STRATA_ERR_BUSY (blocks still allocated) or
 * STRATA_ERR_INVALID (t is NULL). */
STRATA_API int strata_tlsf_remove_pool(strata_tlsf *t, void *pool);

/* The handle of the index-th pool (in the order they were added, removed
 * ones left out), or NULL. */
STRATA_API void *strata_tlsf_get_pool(const strata_tlsf *t, unsigned index);

/* At least `size` bytes aligned to 16. size 0 gives NULL with errno
 * EINVAL (no minimal block); so does a size of STRATA_TLSF_BLOCK_MAX or
 * more; NULL with errno ENOMEM when no free block is large enough. */
STRATA_API void *strata_tlsf_malloc(strata_tlsf *t, size_t size);

/* At least `size` bytes aligned to `align` (a power of two). NULL with
 * errno EINVAL for a bad alignment or size, ENOMEM when nothing fits. */
STRATA_API void *strata_tlsf_memalign(strata_tlsf *t, size_t align, size_t size);

/* Resize: in place when shrinking or when the next physical block is free
 * and large enough, else malloc + copy + free (16-byte alignment only).
 * ptr NULL is malloc; size 0 frees ptr and returns NULL. On failure NULL
 * with errno ENOMEM (ptr untouched) or EINVAL (ptr is not an allocated
 * block of t, or a bad size). */
STRATA_API void *strata_tlsf_realloc(strata_tlsf *t, void *ptr, size_t size);

/* Give back a block. 0 (also for NULL), or STRATA_ERR_FOREIGN,
 * STRATA_ERR_NOT_BLOCK, STRATA_ERR_DOUBLE_FREE, STRATA_ERR_CORRUPT (a
 * neighbour's header is damaged; nothing is changed), STRATA_ERR_INVALID. */
STRATA_API int strata_tlsf_free(strata_tlsf *t, void *ptr);

/* Payload bytes of the allocated block at ptr (>= the size asked), or 0 if
 * ptr is not one. */
STRATA_API size_t strata_tlsf_usable_size(const strata_tlsf *t, const void *ptr);

/* Visit the blocks of one pool (or of every pool, in address order, with
 * strata_tlsf_walk) in address order: payload, payload bytes, allocated. */
typedef void (*strata_tlsf_walker)(void *ptr, size_t size, bool used, void *user);
STRATA_API void strata_tlsf_walk_pool(const strata_tlsf *t, const void *pool,
                                      strata_tlsf_walker fn, void *user);
STRATA_API void strata_tlsf_walk(const strata_tlsf *t, strata_tlsf_walker fn, void *user);

/* Index side (TLSF-1..5, docs/INVARIANTS.md): bitmaps against free
 * lists, every free block in the list of its class; then the pool table,
 * the physical side of every pool and the totals (TLSF-6..12). 0 if all
 * hold, else the number of violations found. O(blocks x longest list). */
STRATA_API int strata_tlsf_check(const strata_tlsf *t);

/* Physical side of one pool (TLSF-6..10): the block chain, prev-free
 * flags and back pointers, no two adjacent free blocks, sizes summing to
 * the pool, every free block on its list. 0 or the number of violations. */
STRATA_API int strata_tlsf_check_pool(const strata_tlsf *t, const void *pool);

/* Statistics: O(pools + length of the largest class's free list). */
STRATA_API void strata_tlsf_get_info(const strata_tlsf *t, strata_tlsf_info *info);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_TLSF_H */
