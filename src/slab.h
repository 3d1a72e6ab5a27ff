/* SPDX-License-Identifier: MIT */
/*
 * slab.h — one slab: a block of memory carved into `capacity` equal
 * objects, with all of its free state in a descriptor outside the objects.
 *
 * The descriptor is a 64-byte header, an allocated-bit bitmap (one bit per
 * object, set = live) and a stack of free object indices (uint16_t, hence
 * at most 65535 objects). It may sit at the start of the block (the slab
 * caches do that) or anywhere else (a malloc that returns the pages of an
 * idle slab to the OS keeps it outside). Objects are never written by this
 * layer, so a constructed object keeps its state while free, a double free
 * is one bit test, and pages without a live object can be dropped.
 *
 * A second mode, "bitmap only", is the malloc's: no index stack, but a
 * second bitmap of remote frees (set atomically by other threads) and a
 * third of objects its owner keeps for reuse (theap.h), which this layer
 * only makes room for. Objects are taken lowest first by scanning the live
 * bitmap from a cursor word, so a slab fills from its start and its
 * untouched tail stays out of RSS; every word below the cursor is full.
 * Three bits an object in all.
 *
 * Cost: pop and push are O(1); push validates the pointer (inside the
 * object area, at an object boundary, live) with a reciprocal multiply
 * instead of a division. check is O(capacity). Not thread-safe.
 */
#ifndef ST_SLAB_H
#define ST_SLAB_H

#include "bits.h"
#include "strata/slab.h"

#define ST_SLAB_MAGIC 0x51ab51abu
#define ST_SLAB_MAGIC_BITMAP 0x51abb175u /* bitmap-only mode */
#define ST_SLAB_MIN_SIZE ((size_t)8) /* smallest object stride */
#define ST_SLAB_MAX_CAPACITY 65535u  /* free indices are uint16_t */
#define ST_SLAB_MAX_BLOCK ((size_t)1 << 31)

/* Links for the owner's lists (full, partial, empty ...). */
typedef struct st_slab_link {
    struct st_slab_link *prev, *next;
} st_slab_link;

/* Where things go in a block: computed once per cache (or size class). */
typedef struct st_slab_layout {
    size_t block_bytes; /* the whole block */
    size_t size;        /* object stride: a multiple of the alignment */
    size_t first;       /* offset of object 0 from the block start */
    size_t desc_bytes;  /* bytes of the descriptor for `capacity` objects */
    unsigned capacity;  /* objects in the block, 1..65535 */
    bool desc_inside;   /* the descriptor occupies the block's first bytes */
} st_slab_layout;

typedef struct st_slab {
    uint32_t magic;       /* ST_SLAB_MAGIC */
    uint32_t capacity;    /* objects, 1..65535 */
    uint32_t free_count;  /* entries on the free stack */
    uint32_t size;        /* object stride */
    uint32_t first;       /* offset of object 0 from the descriptor when it is inside
                             the block, else from the block (st_slab_base) */
    uint32_t block_bytes; /* size of the block */
    uint64_t recip;       /* ceil(2^64 / size): index = high 64 bits of offset * recip */
    uintptr_t block;      /* start of the block */
    st_slab_link link;    /* the owner's list */
    uint32_t owner_tag;   /* the owner's use (which list the slab is on) */
    uint32_t cursor;      /* bitmap mode: words below it are full */
    uint64_t bits[];      /* stack mode: ceil(capacity/64) bitmap words, then capacity
                             uint16_t; bitmap mode: triples (live, remote, kept words) */
} st_slab;

/* Bytes of a descriptor for `capacity` objects (header, bitmap, stack). */
ST_HIDDEN size_t st_slab_desc_size(unsigned capacity);

/* Layout of a block of block_bytes for objects of obj_size aligned to
 * align (a power of two; the stride is obj_size rounded up to it, at least
 * 8). The block start must be aligned to align. With desc_inside the
 * descriptor takes the first bytes and object 0 follows, aligned; the
 * capacity is the largest that fits (at most 65535). false if no object
 * fits or an argument is out of range. */
ST_HIDDEN bool st_slab_layout_compute(size_t block_bytes, size_t obj_size, size_t align,
                                      bool desc_inside, st_slab_layout *out);

/* Build a descriptor at `desc` (st_slab_desc_size(l->capacity) bytes) for
 * the block; every object free; pop hands out index 0, 1, 2 ... first.
 * Writes only the descriptor. */
ST_HIDDEN void st_slab_init(st_slab *desc, void *block, const st_slab_layout *l);

/* The same with the descriptor at the block start (l->desc_inside). */
ST_HIDDEN st_slab *st_slab_carve(void *block, const st_slab_layout *l);

/* A free object (marked live), or NULL when the slab is full. Aborts
 * (st_fatal) if the free stack names a live or out-of-range object. */
ST_HIDDEN void *st_slab_pop(st_slab *s);

/* Take an object back: 0, STRATA_ERR_NOT_BLOCK (outside the object area or
 * not on an object boundary), STRATA_ERR_DOUBLE_FREE (already free) or
 * STRATA_ERR_CORRUPT (the stack is full although the bit said live). */
ST_HIDDEN int st_slab_push(st_slab *s, void *obj);

/* Index of the object starting at obj, or STRATA_ERR_NOT_BLOCK. O(1). */
ST_HIDDEN long st_slab_object_index(const st_slab *s, const void *obj);

/* Verify the descriptor (SLAB-1..SLAB-5 of docs/INVARIANTS.md); 0 or
 * the number of violations. Flips bitmap bits while it runs and restores
 * them, so it needs the same lock as pop and push. */
ST_HIDDEN int st_slab_check(st_slab *s);

/* One /proc/slabinfo 2.1 line (with its newline) for the figures in i. */
ST_HIDDEN int st_slabinfo_line(char *buf, size_t len, const strata_slab_info *i);

/* ---- bitmap-only mode ---- */

/* Bytes of a bitmap-mode descriptor: header, live, remote and kept bitmaps. */
ST_HIDDEN size_t st_slab_bitmap_desc_size(unsigned capacity);

/* Layout of a bitmap-mode slab: object 0 at the block start (which must
 * be aligned to `align`, a power of two; the stride is obj_size rounded
 * up to 16 and to align), as many objects as fit, the descriptor
 * (desc_bytes) elsewhere. false if no object fits. */
ST_HIDDEN bool st_slab_layout_bitmap(size_t block_bytes, size_t obj_size, size_t align,
                                     st_slab_layout *out);

/* Build a bitmap-mode descriptor at s (desc_bytes of the layout) for the
 * block: every object free, the bits past capacity set so that a scan
 * never hands them out. Writes only the descriptor. */
ST_HIDDEN void st_slab_init_bitmap(st_slab *s, void *block, const st_slab_layout *l);

/* The lowest free object at or after the cursor word (marked live), or
 * NULL when the slab is full. The inline st_slab_take() calls it when the
 * cursor word is full. */
ST_HIDDEN void *st_slab_take_scan(st_slab *s);

/* Bitmap mode keeps word w of the live bitmap beside word w of the remote
 * and kept bitmaps, so the free path finds all three in one cache line
 * (two for the quarter of the triples that straddle a line). Live words are
 * written by the owner only but read by freeing threads (to catch a
 * double free at once), hence relaxed atomics: plain moves on x86. */
#define ST_SLAB_BITMAP_STRIDE 3 /* words per 64 objects: live, remote, kept */
static inline uint64_t st_slab_live(const st_slab *s, unsigned w)
{
    return __atomic_load_n(&s->bits[ST_SLAB_BITMAP_STRIDE * w], __ATOMIC_RELAXED);
}
static inline void st_slab_set_live(st_slab *s, unsigned w, uint64_t v)
{
    __atomic_store_n(&s->bits[ST_SLAB_BITMAP_STRIDE * w], v, __ATOMIC_RELAXED);
}
static inline uint64_t *st_slab_remote_word(st_slab *s, unsigned w)
{
    return &s->bits[ST_SLAB_BITMAP_STRIDE * w + 1];
}
/* The three words of objects 64 w .. 64 w + 63: live, remote, kept. */
static inline uint64_t *st_slab_bitmap(st_slab *s, uintptr_t w)
{
    return &s->bits[ST_SLAB_BITMAP_STRIDE * w];
}
static inline uint64_t *st_slab_kept_word(st_slab *s, unsigned w)
{
    return &s->bits[ST_SLAB_BITMAP_STRIDE * w + 2];
}

/* Take a free object: the lowest clear bit of the cursor word. w | (w + 1)
 * sets exactly that bit. */
static inline void *st_slab_take(st_slab *s)
{
    uint64_t w = st_slab_live(s, s->cursor);
    if (ST_UNLIKELY(w == UINT64_MAX))
        return st_slab_take_scan(s);
    st_slab_set_live(s, s->cursor, w | (w + 1));
    s->free_count--;
    unsigned idx = s->cursor * 64 + st_ctz(~w);
    return (void *)(s->block + (uintptr_t)idx * s->size); /* bitmap mode: object 0 at the block */
}

/* Give back object idx (already validated, live). */
static inline void st_slab_give(st_slab *s, unsigned idx)
{
    unsigned w = idx >> 6;
    st_slab_set_live(s, w, st_slab_live(s, w) & ~((uint64_t)1 << (idx & 63)));
    s->free_count++;
    if (w < s->cursor)
        s->cursor = w;
}

/* Address of object 0. */
static inline uintptr_t st_slab_base(const st_slab *s)
{
    uintptr_t d = (uintptr_t)s;
    return (d - s->block < s->block_bytes ? d : s->block) + s->first;
}

static inline void *st_slab_object(const st_slab *s, unsigned idx)
{
    return (void *)(st_slab_base(s) + (uintptr_t)idx * s->size);
}
static inline bool st_slab_is_live(const st_slab *s, unsigned idx)
{
    return (s->bits[idx >> 6] >> (idx & 63)) & 1;
}
static inline bool st_slab_is_full(const st_slab *s) { return s->free_count == 0; }
static inline bool st_slab_is_empty(const st_slab *s) { return s->free_count == s->capacity; }
static inline unsigned st_slab_used(const st_slab *s) { return s->capacity - s->free_count; }

#endif /* ST_SLAB_H */
