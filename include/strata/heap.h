/* SPDX-License-Identifier: MIT */
/*
 * strata/heap.h — a general-purpose boundary-tag heap over one region the
 * caller owns, with the placement policy chosen at creation.
 *
 * Every block carries a header AND a footer (Knuth's boundary tags), so a
 * freed block finds both physical neighbours in O(1) and merges with any
 * that is free: two free blocks are never adjacent. A free block is split
 * when the remainder can hold a minimum block (STRATA_HEAP_MIN_BLOCK).
 *
 * Block layout (all blocks start 16-byte aligned, sizes are multiples of 16):
 *   [header 16 B: size|flags 8 B, slack 4 B, check 4 B][payload ...][footer 8 B]
 * The pointer handed out is the payload, 16 bytes after the block start.
 * The footer repeats size|used. The check word is a hash of the header's
 * address, size and state, so a pointer that is not a block start is
 * rejected in O(1) with probability 1 - 2^-32. The requested size is kept
 * as "slack" = usable - requested in 32 bits beside the check word (the
 * slack is always below a few minimum blocks). Per-block overhead is
 * therefore STRATA_HEAP_OVERHEAD = 24 bytes; a request of n bytes takes a
 * block of max(48, round_up(n + 24, 16)) bytes. Free blocks hold their
 * free-list links in the payload.
 *
 * Policies (which free block serves a request):
 *   FIRST_FIT  lowest-addressed block that fits (address-ordered list);
 *   NEXT_FIT   the same list, searched from where the last search stopped;
 *   BEST_FIT   the smallest block that fits (stops at an exact fit);
 *   WORST_FIT  the largest block;
 *   SEGREGATED one LIFO list per size class (exact classes below 256 B,
 *              then four per power of two), first fit in the request's
 *              class, else the first block of the next non-empty class
 *              found through a bitmap.
 * Cost: the four list policies search in O(free blocks), and free keeps
 * the list in address order, also O(free blocks) when the block has no
 * free neighbour; segregated alloc and free are O(1) plus the scan of one
 * class (blocks within 25% of each other). check and walk are O(blocks).
 *
 * Not thread-safe: the caller locks. Invariants: docs/INVARIANTS.md.
 */
#ifndef STRATA_HEAP_H
#define STRATA_HEAP_H

#include "strata/defs.h"

#ifdef __cplusplus
extern "C" {
#endif

#define STRATA_HEAP_ALIGN 16     /* alignment of every returned pointer */
#define STRATA_HEAP_OVERHEAD 24  /* header + footer bytes per block */
#define STRATA_HEAP_MIN_BLOCK 48 /* smallest block (24 usable bytes) */

typedef enum strata_heap_policy {
    STRATA_HEAP_FIRST_FIT = 0,
    STRATA_HEAP_NEXT_FIT = 1,
    STRATA_HEAP_BEST_FIT = 2,
    STRATA_HEAP_WORST_FIT = 3,
    STRATA_HEAP_SEGREGATED = 4,
} strata_heap_policy;

typedef struct strata_heap strata_heap;

/* Statistics. Block sizes include the 24 bytes of tags. */
typedef struct strata_heap_info {
    strata_heap_policy policy;
    size_t region_bytes;           /* size given to create */
    size_t control_bytes;          /* control structure (and start alignment) */
    size_t total_bytes;            /* bytes covered by blocks: sum of all block sizes */
    size_t requested_bytes;        /* sum of the sizes asked for by live allocations */
    size_t held_bytes;             /* sum of the sizes of allocated blocks */
    size_t overhead_bytes;         /* tag bytes of allocated blocks (24 each) */
    size_t internal_fragmentation; /* held - requested: tags, rounding, unsplit tails */
    size_t free_bytes;             /* sum of the sizes of free blocks */
    size_t largest_free;           /* size of the largest free block, 0 if none */
    size_t largest_alloc;          /* largest request that succeeds now (16-aligned) */
    double external_fragmentation; /* 1 - largest_free / free_bytes; 0 when nothing is free */
    size_t used_blocks;
    size_t free_blocks;
} strata_heap_info;

/* Bytes of control structure that create() puts at the start of a region
 * of `region_size` bytes (more for SEGREGATED, which keeps a list per
 * class); 0 for an unknown policy. */
STRATA_API size_t strata_heap_control_size(size_t region_size, strata_heap_policy policy);

/* A heap over [mem, mem+size), its control structure at the start of mem.
 * NULL with errno EINVAL (NULL mem, unknown policy, wrapping range) or
 * ERANGE (no room for the control structure and one minimum block). */
STRATA_API strata_heap *strata_heap_create(void *mem, size_t size, strata_heap_policy policy);

/* At least `size` bytes, 16-byte aligned. NULL with errno EINVAL for size
 * 0 or a size that overflows when tags are added, ENOMEM when no free
 * block is large enough. */
STRATA_API void *strata_heap_alloc(strata_heap *h, size_t size);

/* The same, aligned to `align` (a power of two; below 16 means 16). NULL
 * with EINVAL for a bad alignment or size, ENOMEM when nothing fits. */
STRATA_API void *strata_heap_alloc_aligned(strata_heap *h, size_t align, size_t size);

/* count * size bytes, zeroed; EINVAL when the product overflows or is 0. */
STRATA_API void *strata_heap_calloc(strata_heap *h, size_t count, size_t size);

/* Resize: in place when shrinking or when the next block is free and large
 * enough, else allocate, copy the kept bytes and free. NULL ptr: alloc.
 * A moved block is 16-byte aligned only. NULL with EINVAL (size 0, bad
 * ptr) or ENOMEM, and then ptr is left as it was. */
STRATA_API void *strata_heap_realloc(strata_heap *h, void *ptr, size_t size);

/* Give a block back, merging it with free neighbours. 0 (also for NULL),
 * or STRATA_ERR_INVALID (bad handle), STRATA_ERR_FOREIGN (outside the
 * region), STRATA_ERR_NOT_BLOCK, STRATA_ERR_DOUBLE_FREE, or
 * STRATA_ERR_CORRUPT (its tags or its neighbours' are damaged); the heap
 * is unchanged on every error. */
STRATA_API int strata_heap_free(strata_heap *h, void *ptr);

/* Usable bytes of the live block at ptr (at least what was asked), 0 if ptr
 * is not a live block. */
STRATA_API size_t strata_heap_usable_size(const strata_heap *h, const void *ptr);

/* Does ptr lie inside the region given to create (control included)? */
STRATA_API bool strata_heap_owns(const strata_heap *h, const void *ptr);

/* Visit every block in address order: ptr is the payload address (what
 * alloc returned for a used block), size the whole block including tags,
 * requested the bytes asked for (0 for a free block). Stops at damage;
 * fn must not allocate or free in this heap. */
typedef void (*strata_heap_walker)(void *ptr, size_t size, bool used, size_t requested,
                                   void *user);
STRATA_API void strata_heap_walk(const strata_heap *h, strata_heap_walker fn, void *user);

/* Verify every invariant (HEAP-1..13): the physical chain of blocks and
 * the free lists, cross-checked. 0 if all hold, else the number of
 * violations found (a NULL or damaged handle counts as one). */
STRATA_API int strata_heap_check(const strata_heap *h);

/* Fill *info (all zero for a NULL or damaged handle). O(free blocks). */
STRATA_API void strata_heap_get_info(const strata_heap *h, strata_heap_info *info);

/* "first-fit", "next-fit", "best-fit", "worst-fit", "segregated", or
 * "unknown". */
STRATA_API const char *strata_heap_policy_name(strata_heap_policy policy);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_HEAP_H */
