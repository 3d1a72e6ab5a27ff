/* SPDX-License-Identifier: MIT */
/*
 * strata/slab.h — object caches in the style of the kernel's kmem_cache.
 *
 * A cache hands out objects of one size. It takes slabs (blocks of
 * 2^k pages aligned to their own size) from a page source and carves each
 * into equal objects. A slab's descriptor sits at the start of the slab;
 * the free state of its objects lives there too (an allocated bit per
 * object and a stack of free indices), never inside the objects. So an
 * object can be built once by a constructor when its slab is created and
 * handed out again and again in that constructed state ("object caching"):
 * the constructor does NOT run on each allocation, and a freed object is
 * never overwritten by the cache. The destructor runs on every object when
 * its slab goes back to the page source (strata_slab_shrink, destroy).
 *
 * Slabs are on three lists: full, partial and empty. Allocation takes from
 * a partial slab first, then an empty one, then a new slab; freeing moves
 * a slab between the lists. Empty slabs stay in the cache until
 * strata_slab_shrink() gives back all but `keep_empty` of them.
 *
 * Cost: alloc and free are O(1) (a new slab costs one page-source call,
 * an address-set insert and one constructor call per object). Free
 * validates the pointer in O(1) before reading memory at it. Memory per
 * slab: a 64-byte descriptor header plus 2 1/8 bytes per object, plus the
 * padding that aligns the first object. Not thread-safe unless the cache
 * is created with STRATA_SLAB_THREADSAFE. See docs/slab.md.
 */
#ifndef STRATA_SLAB_H
#define STRATA_SLAB_H

#include "strata/defs.h"
#include "strata/page_source.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Objects aligned to a 64-byte cache line (and their size a multiple of 64). */
#define STRATA_SLAB_HWCACHE_ALIGN 0x1u
/* Fill freed objects with STRATA_SLAB_POISON_BYTE and verify the fill on
 * the next allocation (abort on a mismatch) and in strata_slab_cache_check.
 * Only for caches without ctor and dtor: create rejects it with EINVAL. */
#define STRATA_SLAB_POISON 0x2u
/* A mutex around every operation; without it the caller locks. */
#define STRATA_SLAB_THREADSAFE 0x4u

#define STRATA_SLAB_POISON_BYTE 0x6b
#define STRATA_SLAB_NAME_MAX 31                  /* characters in a cache name */
#define STRATA_SLAB_MIN_ALIGN 8                  /* objects are at least 8-byte aligned */
#define STRATA_SLAB_MAX_ALIGN 4096               /* largest alignment accepted */
#define STRATA_SLAB_MAX_OBJECT_SIZE (1u << 20)   /* largest object: 1 MiB */
#define STRATA_SLAB_MAX_SLAB_SIZE (1u << 22)     /* largest slab: 4 MiB (1024 pages) */
#define STRATA_SLAB_MAX_OBJECTS 65535u           /* most objects in one slab */
#define STRATA_SLAB_KEEP_EMPTY_DEFAULT 1u        /* empty slabs that shrink keeps */

typedef struct strata_slab_cache strata_slab_cache;

typedef struct strata_slab_config {
    const char *name;          /* 1..31 characters, no spaces (copied) */
    size_t object_size;        /* 1..STRATA_SLAB_MAX_OBJECT_SIZE */
    size_t align;              /* power of two up to 4096, or 0: 8 */
    void (*ctor)(void *obj);   /* run once per object when its slab is made, or NULL */
    void (*dtor)(void *obj);   /* run once per object when its slab is released, or NULL */
    unsigned flags;            /* STRATA_SLAB_* */
    strata_page_source source; /* where slabs come from; alloc == NULL: the OS */
    size_t slab_size;          /* bytes per slab: power of two, 4 KiB..4 MiB; 0: the default rule */
    unsigned keep_empty;       /* empty slabs strata_slab_shrink keeps */
} strata_slab_config;

typedef struct strata_slab_info {
    char name[STRATA_SLAB_NAME_MAX + 1];
    size_t object_size;      /* as asked at create */
    size_t object_stride;    /* bytes between objects: size rounded up to align ("objsize") */
    size_t align;            /* alignment every object has */
    unsigned objects_per_slab;
    unsigned pages_per_slab; /* 4 KiB pages */
    size_t slab_bytes;
    size_t first_offset;     /* bytes before the first object: descriptor + padding */
    size_t active_objects;   /* objects handed out and not freed */
    size_t total_objects;    /* objects in all slabs */
    size_t active_slabs;     /* slabs with at least one live object (full + partial) */
    size_t total_slabs;
    size_t full_slabs, partial_slabs, empty_slabs;
    size_t bytes_held;       /* slabs + cache descriptor + address-set table */
    unsigned flags;
    unsigned keep_empty;
} strata_slab_info;

/* A configuration with the defaults: align 0, no ctor/dtor, no flags, the
 * OS page source, the default slab size, keep_empty 1. */
STRATA_API void strata_slab_config_init(strata_slab_config *cfg, const char *name,
                                        size_t object_size);

/* A cache whose slabs come from the OS. NULL with errno EINVAL (bad name,
 * size, alignment or flags) or ENOMEM (no page for the descriptor). */
STRATA_API strata_slab_cache *strata_slab_cache_create(const char *name, size_t object_size,
                                                       size_t align, void (*ctor)(void *obj),
                                                       void (*dtor)(void *obj), unsigned flags);

/* A cache from a full configuration (page source, slab size, keep_empty). */
STRATA_API strata_slab_cache *strata_slab_cache_create_ex(const strata_slab_config *cfg);

/* An object in its constructed state (or, without ctor, with undefined
 * contents); NULL with errno ENOMEM when the page source fails, EINVAL
 * for a bad cache handle. */
STRATA_API void *strata_slab_alloc(strata_slab_cache *cache);

/* Give an object back, in its constructed state. 0 (also for NULL), or
 * STRATA_ERR_FOREIGN (not in a slab of this cache), STRATA_ERR_NOT_BLOCK
 * (not an object start), STRATA_ERR_DOUBLE_FREE, STRATA_ERR_INVALID. */
STRATA_API int strata_slab_free(strata_slab_cache *cache, void *obj);

/* Release empty slabs beyond keep_empty (dtor on each of their objects);
 * returns how many slabs went back to the page source. */
STRATA_API size_t strata_slab_shrink(strata_slab_cache *cache);

/* Release everything (dtor on every object) and the cache itself: 0, or
 * STRATA_ERR_BUSY (and nothing freed) while objects are live. NULL: 0. */
STRATA_API int strata_slab_cache_destroy(strata_slab_cache *cache);

/* Statistics (the columns of /proc/slabinfo and more). */
STRATA_API void strata_slab_cache_get_info(const strata_slab_cache *cache, strata_slab_info *info);

/* The two header lines of /proc/slabinfo version 2.1. snprintf semantics. */
STRATA_API int strata_slab_format_header(char *buf, size_t len);

/* One /proc/slabinfo 2.1 line for the cache, newline included ("objsize"
 * is the stride, tunables 0 0 0, sharedavail 0). snprintf semantics. */
STRATA_API int strata_slab_cache_format(const strata_slab_cache *cache, char *buf, size_t len);

/* Verify every invariant (docs/INVARIANTS.md, SLAB-1..SLAB-12): 0 if
 * all hold, else the number of violations. O(objects + poisoned bytes). */
STRATA_API int strata_slab_cache_check(strata_slab_cache *cache);

/* Visit every live object, slab by slab (fn must not call into the cache). */
typedef void (*strata_slab_walker)(void *obj, size_t size, void *user);
STRATA_API void strata_slab_cache_walk(const strata_slab_cache *cache, strata_slab_walker fn,
                                       void *user);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_SLAB_H */
