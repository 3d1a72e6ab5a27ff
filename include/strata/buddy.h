/* SPDX-License-Identifier: MIT */
/*
 * strata/buddy.h — a binary buddy allocator over a region the caller owns.
 *
 * The region is managed in blocks of min_block << order bytes. Every block
 * is aligned to its own size in the address space (a block of order k
 * starts at a multiple of min_block << k), so a block's buddy is found by
 * flipping one address bit: buddy = addr ^ (min_block << k). A region of
 * any size and start is carved into maximal aligned blocks.
 *
 * Metadata: with strata_buddy_create() it is reserved at the start of the
 * region and the free lists are threaded through the free blocks (one byte
 * of state per min_block). With strata_buddy_create_ex() and a caller
 * buffer, every byte of bookkeeping lives in that buffer and the region is
 * never read or written: the region may be device memory, or pages that
 * the caller returns to the OS while they are free.
 *
 * Cost: alloc and free are O(log n) (at most max_order splits or merges).
 * Not thread-safe: one allocator, one lock, held by the caller.
 */
#ifndef STRATA_BUDDY_H
#define STRATA_BUDDY_H

#include "strata/defs.h"

#ifdef __cplusplus
extern "C" {
#endif

#define STRATA_BUDDY_MAX_ORDER 31 /* orders 0..31: up to 2^31 min_blocks per block */

typedef struct strata_buddy strata_buddy;

typedef struct strata_buddy_config {
    size_t min_block;   /* a power of two >= 16 */
    unsigned max_order; /* largest order handed out; 0 means "as large as fits" */
    void *meta;         /* caller buffer for all metadata, or NULL: inside the region */
    size_t meta_size;   /* its size; strata_buddy_meta_size() says how much is needed */
} strata_buddy_config;

typedef struct strata_buddy_info {
    unsigned min_block_shift;                    /* log2(min_block) */
    unsigned max_order;                          /* largest order managed */
    size_t free_blocks[STRATA_BUDDY_MAX_ORDER + 1]; /* free blocks of each order */
    size_t managed_bytes;                        /* bytes under management (without metadata) */
    size_t free_bytes;
    size_t used_bytes;                           /* managed - free */
    size_t largest_free;                         /* bytes of the largest free block, 0 if none */
    size_t meta_bytes;                           /* bytes of metadata (inside or outside) */
} strata_buddy_info;

/* Bytes of metadata needed for an external buffer for `region_size` bytes. */
STRATA_API size_t strata_buddy_meta_size(size_t region_size, size_t min_block);

/* An allocator over [region, region+size), metadata at its start.
 * NULL with errno EINVAL (NULL region, min_block not a power of two >= 16,
 * max_order above STRATA_BUDDY_MAX_ORDER, more than 2^32 - 2 min_blocks) or
 * ERANGE (no room for the metadata and one block, or meta_size too small). */
STRATA_API strata_buddy *strata_buddy_create(void *region, size_t size, size_t min_block);

/* The same with a configuration: an external metadata buffer, a max order. */
STRATA_API strata_buddy *strata_buddy_create_ex(void *region, size_t size,
                                                const strata_buddy_config *config);

/* A block of at least `bytes` (rounded up to min_block << order); NULL with
 * errno ENOMEM when no free block is large enough, EINVAL for 0 bytes. */
STRATA_API void *strata_buddy_alloc(strata_buddy *b, size_t bytes);

/* A block of exactly min_block << order bytes, aligned to its size; NULL with
 * errno EINVAL for an order above max_order, ENOMEM when none is free. */
STRATA_API void *strata_buddy_alloc_order(strata_buddy *b, unsigned order);

/* At least `bytes` rounded up to min_block only: the unused tail of the
 * power-of-two block goes straight back to the free lists (a 33-block
 * request holds 33 blocks, not 64). Aligned to the largest power of two
 * not above the rounded size. Freed with strata_buddy_free() like any. */
STRATA_API void *strata_buddy_alloc_exact(strata_buddy *b, size_t bytes);

/* Give back a block by its address. 0, or STRATA_ERR_FOREIGN (outside the
 * region), STRATA_ERR_NOT_BLOCK (not a block start), STRATA_ERR_DOUBLE_FREE. */
STRATA_API int strata_buddy_free(strata_buddy *b, void *block);

/* Bytes held by the allocation at `block` (0 if it is not one). */
STRATA_API size_t strata_buddy_usable_size(const strata_buddy *b, const void *block);

/* Does the allocator manage this address (metadata excluded)? */
STRATA_API bool strata_buddy_owns(const strata_buddy *b, const void *addr);

/* Free blocks per order and totals. */
STRATA_API void strata_buddy_get_info(const strata_buddy *b, strata_buddy_info *info);

/* Format as a /proc/buddyinfo line ("Node 0, zone   <name> n0 n1 …"),
 * one column per order up to max_order. snprintf semantics. */
STRATA_API int strata_buddy_format(const strata_buddy *b, const char *zone, char *buf,
                                   size_t len);

/* Verify every invariant (docs/INVARIANTS.md, BUDDY-1..7); 0 if all hold,
 * else the number of violations found. */
STRATA_API int strata_buddy_check(const strata_buddy *b);

/* Walk the blocks in address order. */
typedef void (*strata_buddy_walker)(void *block, size_t size, bool used, void *user);
STRATA_API void strata_buddy_walk(const strata_buddy *b, strata_buddy_walker fn, void *user);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_BUDDY_H */
