/* SPDX-License-Identifier: MIT */
/*
 * strata/pool.h — a fixed-size object pool: every object has the same size
 * and alignment, so alloc and free are O(1) and take a handful of
 * instructions (pop or push on a free list threaded through the free
 * objects, and one bit of a per-chunk bitmap).
 *
 * Growing pools (strata_pool_create) take chunks from a page source. A
 * chunk is a power of two of bytes, at least 4 KiB and at most
 * STRATA_POOL_CHUNK_MAX, aligned to its size; it holds a small header, one
 * allocated bit per object, and the objects. The pool's own descriptor
 * lives in its first chunk: the library never calls malloc. Fixed pools
 * (strata_pool_create_in) live in one caller region and never grow.
 *
 * Reset frees every object in O(1): the pool's epoch is bumped, which makes
 * every chunk's bitmap stale, and objects are handed out again from a bump
 * cursor that walks the chunks lazily (a chunk's bitmap is cleared when the
 * cursor reaches it, which costs at most one word per 64 objects carved).
 *
 * Bad input is detected in O(1) without reading memory the pool does not
 * own: the chunk of a pointer is found by masking and looked up in a hash
 * set of chunk addresses (a range check for fixed pools).
 *
 * Not thread-safe: one pool, one lock, held by the caller.
 */
#ifndef STRATA_POOL_H
#define STRATA_POOL_H

#include "strata/defs.h"
#include "strata/page_source.h"

#ifdef __cplusplus
extern "C" {
#endif

#define STRATA_POOL_DEFAULT_ALIGN 16
#define STRATA_POOL_CHUNK_MIN ((size_t)4096)
#define STRATA_POOL_CHUNK_MAX ((size_t)1 << 31)
#define STRATA_POOL_DEFAULT_CHUNK ((size_t)64 * 1024)

typedef struct strata_pool strata_pool;

typedef struct strata_pool_config {
    size_t object_size;        /* bytes per object, > 0 */
    size_t align;              /* power of two; 0 means 16; raised to at least 8 */
    size_t objects_per_chunk;  /* at least this many per chunk; 0: 64 KiB chunks (>= 8 objects) */
    size_t max_objects;        /* most objects live at once; 0 means unbounded */
    strata_page_source source; /* where chunks come from; .alloc == NULL means the OS */
} strata_pool_config;

typedef struct strata_pool_info {
    size_t object_size;    /* as configured */
    size_t stride;         /* bytes between two objects (size rounded up to the alignment) */
    size_t align;          /* alignment every object has */
    size_t objects_live;   /* allocated and not yet freed */
    size_t capacity;       /* object slots in the chunks held */
    size_t max_objects;    /* configured maximum, 0 if unbounded */
    size_t chunks;         /* chunks held (1 for a fixed pool) */
    size_t chunk_bytes;    /* bytes per chunk (the region's size for a fixed pool) */
    size_t bytes_held;     /* chunks plus the chunk index table */
    size_t overhead_bytes; /* bytes_held - capacity * stride: headers, bitmaps, index, padding */
} strata_pool_info;

/* A growing pool. NULL with errno EINVAL (NULL cfg, object_size 0 or too
 * large, align not a power of two, source without free) or ENOMEM. */
STRATA_API strata_pool *strata_pool_create(const strata_pool_config *cfg);

/* A pool over [mem, mem+size) that never grows; the descriptor lives at
 * the start of the region. NULL with errno EINVAL (NULL mem, bad size or
 * align) or ERANGE (no room for the descriptor and one object). At most
 * 4 GiB of the region is used for objects. */
STRATA_API strata_pool *strata_pool_create_in(void *mem, size_t size, size_t object_size,
                                              size_t align);

/* Bytes a region needs so that strata_pool_create_in holds at least
 * `count` objects whatever the region's alignment; 0 on bad arguments. */
STRATA_API size_t strata_pool_size_for(size_t object_size, size_t align, size_t count);

/* Fixed bytes of metadata of a pool (descriptor and one chunk header),
 * not counting bitmaps and alignment padding. */
STRATA_API size_t strata_pool_overhead(void);

/* Give every chunk back to the page source (nothing for a fixed pool).
 * Objects still live are lost. NULL is ignored. */
STRATA_API void strata_pool_destroy(strata_pool *pool);

/* One object, aligned to the pool's alignment; NULL with errno ENOMEM when
 * max_objects are live, a fixed pool is full or the source fails. */
STRATA_API void *strata_pool_alloc(strata_pool *pool);

/* Give back an object. 0 (also for NULL), or STRATA_ERR_FOREIGN (not in
 * the pool's memory), STRATA_ERR_NOT_BLOCK (not an object start),
 * STRATA_ERR_DOUBLE_FREE (already free), STRATA_ERR_INVALID (bad pool). */
STRATA_API int strata_pool_free(strata_pool *pool, void *obj);

/* Every object free again in O(1); chunks are kept for reuse. */
STRATA_API void strata_pool_reset(strata_pool *pool);

/* Does the pool's memory contain this address (objects or metadata)? */
STRATA_API bool strata_pool_owns(const strata_pool *pool, const void *addr);

/* Statistics, O(1). */
STRATA_API void strata_pool_get_info(const strata_pool *pool, strata_pool_info *info);

/* Visit every object slot of every chunk, chunks in address order and
 * objects in address order within a chunk, with its allocated state. */
typedef void (*strata_pool_walker)(void *obj, bool used, void *user);
STRATA_API void strata_pool_walk(const strata_pool *pool, strata_pool_walker fn, void *user);

/* Verify the invariants POOL-1..9 (docs/INVARIANTS.md); 0 if all
 * hold, else the number of violations found. O(objects + chunks^2). */
STRATA_API int strata_pool_check(const strata_pool *pool);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_POOL_H */
