/* SPDX-License-Identifier: MIT */
/*
 * pool.c — fixed-size object pools (include/strata/pool.h).
 *
 * What this layer does: it carves chunks (from a page source, or one caller
 * region) into equal objects and hands them out in O(1): first from a free
 * list threaded through the freed objects, else from a bump cursor over the
 * chunks, else from a new chunk. Each chunk keeps one allocated bit per
 * object, so a double free is caught; each chunk also carries the pool's
 * epoch at the time its bitmap was last valid, so reset is O(1): bump the
 * pool's epoch, forget the free list and restart the cursor; a chunk whose
 * epoch is old counts as entirely free, and its bitmap is cleared when the
 * cursor reaches it.
 *
 * Chunk layout (growing pools: the chunk is aligned to its power-of-two
 * size, so the chunk of a pointer is `p & ~(chunk_bytes - 1)`):
 *
 *   [pool_chunk header][bitmap words][pool descriptor, first chunk only][pad][objects...]
 *
 * A fixed pool is the same single chunk at the start of the caller region.
 * Object indexes use an exact division by the stride through a precomputed
 * 64-bit reciprocal (offsets are below 2^32 by construction), so a free is
 * a hash probe, two multiplies and a bit flip.
 *
 * What it does not do: it never calls malloc, never touches memory it does
 * not own while validating a pointer, never returns chunks before destroy,
 * and does no locking.
 */
#include "strata/pool.h"

#include <errno.h>
#include <string.h>

#include "addrset.h"
#include "bits.h"
#include "debug.h"

#define POOL_MAGIC 0x6c6f6f7061727473ull /* "stratapool" in spirit */
#define POOL_MIN_ALIGN ((size_t)8)       /* a free object holds a pointer */
#define POOL_MAX_ALIGN ((size_t)1 << 30)
#define POOL_MAX_OBJECT ((size_t)1 << 30)
#define POOL_MAX_SPAN ((size_t)UINT32_MAX) /* object offsets within a chunk fit 32 bits */

typedef struct pool_chunk {
    const struct strata_pool *owner;
    struct pool_chunk *next; /* chunk list, in the order the chunks were added */
    uintptr_t first;         /* address of object 0 */
    uint32_t count;          /* objects in this chunk, >= 1 */
    uint32_t words;          /* bitmap words, >= count / 64 */
    uint64_t epoch;          /* pool epoch the bitmap belongs to; older means all free */
    uint64_t bits[];         /* bit i set: object i allocated */
} pool_chunk;

struct strata_pool {
    uint64_t magic;
    /* the fast path: alloc and free touch only these */
    void *free_list;
    size_t live;
    size_t limit; /* max_objects, or SIZE_MAX */
    uint64_t epoch;
    uintptr_t chunk_mask; /* ~(chunk_bytes - 1); unused for a fixed pool */
    uint64_t recip;   /* ceil(2^64 / stride): exact division of 32-bit offsets */
    size_t stride;
    bool fixed;
    pool_chunk *home; /* the chunk holding this descriptor (first in the list) */
    uintptr_t hot;    /* last chunk found in the index: skips the lookup next time */
    uintptr_t bump;   /* next object to carve in bump_chunk */
    uintptr_t bump_end;
    pool_chunk *bump_chunk; /* chunk being carved; NULL right after create_in/reset */
    /* the slow path */
    pool_chunk *chunks, *tail;
    size_t nchunks;
    size_t capacity;
    size_t object_size, align, chunk_bytes, max_objects;
    uintptr_t region_lo, region_hi; /* a fixed pool's caller region */
    st_addrset index;               /* addresses of a growing pool's chunks other than home */
    strata_page_source source;
};

/* Sizes derived from (object_size, align). */
typedef struct pool_geometry {
    size_t object_size, align, stride;
} pool_geometry;

/* Where things go in one chunk. */
typedef struct pool_layout {
    size_t words;
    uintptr_t desc; /* descriptor address (home chunk only) */
    uintptr_t first;
    size_t count;
} pool_layout;

/* ---- arithmetic ------------------------------------------------------- */

static inline void *link_get(const void *obj)
{
    void *n;
    memcpy(&n, obj, sizeof(n));
    return n;
}

static inline void link_set(void *obj, void *n) { memcpy(obj, &n, sizeof(n)); }

static bool geometry(size_t object_size, size_t align, pool_geometry *g)
{
    if (align == 0)
        align = STRATA_POOL_DEFAULT_ALIGN;
    if (object_size == 0 || object_size > POOL_MAX_OBJECT || !st_is_pow2(align) ||
        align > POOL_MAX_ALIGN)
        return false;
    g->object_size = object_size;
    g->align = ST_MAX(align, POOL_MIN_ALIGN);
    g->stride = st_align_up(ST_MAX(object_size, POOL_MIN_ALIGN), g->align);
    return true;
}

/* Lay out a chunk of `bytes` at `base` (16-aligned). The bitmap is sized
 * for every object that could fit before the bitmap is counted; at most
 * POOL_MAX_SPAN bytes of objects so that offsets fit 32 bits. */
static bool plan(uintptr_t base, size_t bytes, const pool_geometry *g, bool home, pool_layout *l)
{
    size_t fixed = sizeof(pool_chunk) + (home ? sizeof(struct strata_pool) + 15 : 0);
    if (bytes <= fixed)
        return false;
    size_t nmax = ST_MIN((bytes - fixed) / g->stride, POOL_MAX_SPAN / g->stride);
    l->words = (nmax + 63) / 64;
    uintptr_t end = base + bytes;
    uintptr_t at = base + sizeof(pool_chunk) + l->words * sizeof(uint64_t);
    if (home) {
        l->desc = st_align_up(at, 16);
        at = l->desc + sizeof(struct strata_pool);
    }
    at = st_align_up(at, g->align);
    if (at < base || at >= end)
        return false;
    l->first = at;
    l->count = ST_MIN((end - at) / g->stride, nmax);
    return l->count > 0;
}

/* The smallest power-of-two chunk whose home layout holds `want` objects. */
static size_t smallest_chunk(const pool_geometry *g, size_t want)
{
    pool_layout l;
    for (size_t bytes = STRATA_POOL_CHUNK_MIN; bytes <= STRATA_POOL_CHUNK_MAX; bytes *= 2)
        if (plan(0, bytes, g, true, &l) && l.count >= want)
            return bytes;
    return 0;
}

/* Chunk size for a configuration: enough for objects_per_chunk, or by
 * default 64 KiB (more if 8 objects do not fit, less if max_objects fit in
 * a smaller chunk). 0 if nothing fits. */
static size_t chunk_bytes_for(const pool_geometry *g, size_t per_chunk, size_t max_objects)
{
    if (per_chunk != 0)
        return smallest_chunk(g, per_chunk);
    size_t bytes = smallest_chunk(g, max_objects ? ST_MIN(max_objects, 8) : 8);
    if (bytes == 0)
        return 0;
    size_t cap = max_objects ? smallest_chunk(g, max_objects) : 0;
    size_t want = (cap != 0 && cap < STRATA_POOL_DEFAULT_CHUNK) ? cap : STRATA_POOL_DEFAULT_CHUNK;
    return ST_MAX(bytes, want);
}

/* ---- chunks ----------------------------------------------------------- */

/* A chunk on the list, not yet carved: it counts as all free until the
 * bump cursor reaches it. */
static pool_chunk *chunk_init(strata_pool *p, uintptr_t base, const pool_layout *l)
{
    pool_chunk *c = (pool_chunk *)base;
    c->owner = p;
    c->next = NULL;
    c->first = l->first;
    c->count = (uint32_t)l->count;
    c->words = (uint32_t)l->words;
    c->epoch = 0; /* stale (pool epochs start at 1): advance() clears the bitmap */
    if (p->tail != NULL)
        p->tail->next = c;
    else
        p->chunks = c;
    p->tail = c;
    p->nchunks++;
    p->capacity += l->count;
    return c;
}

/* The chunk holding address a, or NULL; reads no memory outside the pool. */
static inline pool_chunk *chunk_of(const strata_pool *p, uintptr_t a)
{
    if (ST_UNLIKELY(p->fixed))
        return a - p->region_lo < p->region_hi - p->region_lo ? p->home : NULL;
    uintptr_t c = a & p->chunk_mask;
    if (c == (uintptr_t)p->home || st_addrset_contains(&p->index, c))
        return (pool_chunk *)c;
    return NULL;
}

/* chunk_of for free: remembers the last chunk found. Chunks leave the
 * index only at destroy, so a chunk once found stays valid. */
static inline pool_chunk *chunk_of_hot(strata_pool *p, uintptr_t a)
{
    uintptr_t c = a & p->chunk_mask;
    if (ST_LIKELY(c == p->hot && !p->fixed))
        return (pool_chunk *)c;
    pool_chunk *found = chunk_of(p, a);
    if (found != NULL && !p->fixed)
        p->hot = c;
    return found;
}

/* Index of the object starting at a in chunk c; false if a is not one. */
static inline bool index_of(const strata_pool *p, const pool_chunk *c, uintptr_t a, uint32_t *i)
{
    uintptr_t off = a - c->first;
    if (off >= (uintptr_t)c->count * p->stride || !st_recip_divides(p->recip, (uint32_t)off))
        return false;
    *i = st_recip_quot(p->recip, (uint32_t)off);
    return true;
}

static inline bool chunk_used(const strata_pool *p, const pool_chunk *c, uint32_t i)
{
    return c->epoch == p->epoch && (c->bits[i >> 6] >> (i & 63) & 1);
}

/* A new chunk from the page source, in the index and on the list. */
static pool_chunk *grow(strata_pool *p)
{
    if (p->fixed) {
        errno = ENOMEM;
        return NULL;
    }
    void *mem = p->source.alloc(p->source.ctx, p->chunk_bytes, p->chunk_bytes);
    if (mem == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    pool_layout l;
    if (!st_is_aligned((uintptr_t)mem, p->chunk_bytes) ||
        !plan((uintptr_t)mem, p->chunk_bytes, &(pool_geometry){p->object_size, p->align, p->stride},
              false, &l) ||
        !st_addrset_insert(&p->index, (uintptr_t)mem)) {
        p->source.free(p->source.ctx, mem, p->chunk_bytes);
        errno = ENOMEM;
        return NULL;
    }
    return chunk_init(p, (uintptr_t)mem, &l);
}

/* Move the bump cursor to the next chunk: the next on the list (stale
 * since a reset: its bitmap is cleared now) or a new one. */
static bool advance(strata_pool *p)
{
    pool_chunk *c = p->bump_chunk != NULL ? p->bump_chunk->next : p->chunks;
    if (c == NULL && (c = grow(p)) == NULL)
        return false;
    if (c->epoch != p->epoch) {
        memset(c->bits, 0, c->words * sizeof(uint64_t));
        c->epoch = p->epoch;
    }
    p->bump_chunk = c;
    p->bump = c->first;
    p->bump_end = c->first + (uintptr_t)c->count * p->stride;
    return true;
}

static ST_NOINLINE void *carve(strata_pool *p)
{
    if (p->bump == p->bump_end && !advance(p))
        return NULL;
    void *obj = (void *)p->bump;
    p->bump += p->stride;
    return obj;
}

/* ---- creation --------------------------------------------------------- */

static void init_descriptor(strata_pool *p, const pool_geometry *g)
{
    memset(p, 0, sizeof(*p));
    p->magic = POOL_MAGIC;
    p->limit = SIZE_MAX;
    p->epoch = 1;
    p->stride = g->stride;
    p->recip = st_recip_of(g->stride);
    p->object_size = g->object_size;
    p->align = g->align;
}

static strata_page_source source_or_os(const strata_page_source *s)
{
    return s->alloc != NULL ? *s : strata_page_source_os();
}

strata_pool *strata_pool_create(const strata_pool_config *cfg)
{
    pool_geometry g;
    if (cfg == NULL || !geometry(cfg->object_size, cfg->align, &g) ||
        (cfg->source.alloc != NULL && cfg->source.free == NULL)) {
        errno = EINVAL;
        return NULL;
    }
    size_t bytes = chunk_bytes_for(&g, cfg->objects_per_chunk, cfg->max_objects);
    if (bytes == 0) {
        errno = EINVAL;
        return NULL;
    }
    strata_page_source src = source_or_os(&cfg->source);
    void *mem = src.alloc(src.ctx, bytes, bytes);
    pool_layout l;
    if (mem == NULL || !st_is_aligned((uintptr_t)mem, bytes) ||
        !plan((uintptr_t)mem, bytes, &g, true, &l)) {
        if (mem != NULL)
            src.free(src.ctx, mem, bytes);
        errno = ENOMEM;
        return NULL;
    }
    strata_pool *p = (strata_pool *)l.desc;
    init_descriptor(p, &g);
    p->chunk_bytes = bytes;
    p->chunk_mask = ~(uintptr_t)(bytes - 1);
    p->max_objects = cfg->max_objects;
    p->limit = cfg->max_objects ? cfg->max_objects : SIZE_MAX;
    p->source = src;
    st_addrset_init(&p->index, st_log2_floor(bytes), src);
    p->home = chunk_init(p, (uintptr_t)mem, &l);
    p->hot = (uintptr_t)mem;
    return p;
}

strata_pool *strata_pool_create_in(void *mem, size_t size, size_t object_size, size_t align)
{
    pool_geometry g;
    uintptr_t lo = (uintptr_t)mem, hi;
    if (mem == NULL || !geometry(object_size, align, &g) || !st_add_ok(lo, size, &hi)) {
        errno = EINVAL;
        return NULL;
    }
    uintptr_t base = st_align_up(lo, 16);
    pool_layout l;
    if (base < lo || base >= hi || !plan(base, hi - base, &g, true, &l)) {
        errno = ERANGE;
        return NULL;
    }
    strata_pool *p = (strata_pool *)l.desc;
    init_descriptor(p, &g);
    p->fixed = true;
    p->chunk_bytes = size;
    p->region_lo = lo;
    p->region_hi = hi;
    st_addrset_init(&p->index, 0, (strata_page_source){0});
    p->home = chunk_init(p, base, &l);
    return p;
}

size_t strata_pool_size_for(size_t object_size, size_t align, size_t count)
{
    pool_geometry g;
    size_t span;
    if (!geometry(object_size, align, &g) || !st_mul_ok(count, g.stride, &span) ||
        span > POOL_MAX_SPAN)
        return 0;
    /* worst-case padding: region start to 16, descriptor to 16, first object to align */
    size_t fixed = 15 + sizeof(pool_chunk) + 15 + sizeof(struct strata_pool) + g.align - 1;
    size_t bytes = fixed + span;
    for (;;) {
        size_t words = (bytes / g.stride + 63) / 64;
        size_t need = fixed + words * sizeof(uint64_t) + span;
        if (need <= bytes)
            return bytes;
        bytes = need;
    }
}

size_t strata_pool_overhead(void) { return sizeof(struct strata_pool) + sizeof(pool_chunk); }

void strata_pool_destroy(strata_pool *p)
{
    if (p == NULL || p->magic != POOL_MAGIC)
        return;
    p->magic = 0;
    if (p->fixed)
        return;
    strata_page_source src = p->source;
    size_t bytes = p->chunk_bytes;
    pool_chunk *home = p->home;
    for (pool_chunk *c = p->chunks, *next; c != NULL; c = next) {
        next = c->next;
        if (c != home)
            src.free(src.ctx, c, bytes);
    }
    st_addrset_destroy(&p->index);
    src.free(src.ctx, home, bytes);
}

/* ---- the fast path ---------------------------------------------------- */

/* Set the allocated bit of an object just taken off the free list or
 * carved. A bit already set means the free list was overwritten (a write
 * after free): stop rather than hand out a live object twice. */
static inline void mark_used(strata_pool *p, void *obj)
{
    uintptr_t a = (uintptr_t)obj;
    pool_chunk *c = p->fixed ? p->home : (pool_chunk *)(a & p->chunk_mask);
    ST_ASSERT(2, chunk_of(p, a) == c);
    ST_ASSERT(2, st_recip_divides(p->recip, (uint32_t)(a - c->first)));
    uint32_t i = st_recip_quot(p->recip, (uint32_t)(a - c->first));
    uint64_t m = 1ull << (i & 63);
    if (ST_UNLIKELY(c->bits[i >> 6] & m))
        st_fatal("pool", "free list corrupted (write after free?)", obj);
    c->bits[i >> 6] |= m;
}

void *strata_pool_alloc(strata_pool *p)
{
    if (ST_UNLIKELY(p == NULL || p->magic != POOL_MAGIC)) {
        errno = EINVAL;
        return NULL;
    }
    if (ST_UNLIKELY(p->live >= p->limit)) {
        errno = ENOMEM;
        return NULL;
    }
    void *obj = p->free_list;
    if (ST_LIKELY(obj != NULL))
        p->free_list = link_get(obj);
    else if ((obj = carve(p)) == NULL)
        return NULL;
    mark_used(p, obj);
    p->live++;
    return obj;
}

int strata_pool_free(strata_pool *p, void *obj)
{
    if (ST_UNLIKELY(p == NULL || p->magic != POOL_MAGIC))
        return STRATA_ERR_INVALID;
    if (obj == NULL)
        return STRATA_OK;
    pool_chunk *c = chunk_of_hot(p, (uintptr_t)obj);
    if (ST_UNLIKELY(c == NULL))
        return STRATA_ERR_FOREIGN;
    uint32_t i;
    if (ST_UNLIKELY(!index_of(p, c, (uintptr_t)obj, &i)))
        return STRATA_ERR_NOT_BLOCK;
    uint64_t m = 1ull << (i & 63);
    if (ST_UNLIKELY(c->epoch != p->epoch || !(c->bits[i >> 6] & m)))
        return STRATA_ERR_DOUBLE_FREE;
    c->bits[i >> 6] &= ~m;
    link_set(obj, p->free_list);
    p->free_list = obj;
    p->live--;
    return STRATA_OK;
}

/* O(1): every chunk's bitmap becomes stale through the epoch, and the bump
 * cursor restarts at the first chunk. */
void strata_pool_reset(strata_pool *p)
{
    if (p == NULL || p->magic != POOL_MAGIC)
        return;
    p->epoch++;
    p->free_list = NULL;
    p->live = 0;
    p->bump_chunk = NULL;
    p->bump = p->bump_end = 0;
}

/* ---- queries ---------------------------------------------------------- */

bool strata_pool_owns(const strata_pool *p, const void *addr)
{
    return p != NULL && p->magic == POOL_MAGIC && chunk_of(p, (uintptr_t)addr) != NULL;
}

void strata_pool_get_info(const strata_pool *p, strata_pool_info *info)
{
    memset(info, 0, sizeof(*info));
    if (p == NULL || p->magic != POOL_MAGIC)
        return;
    info->object_size = p->object_size;
    info->stride = p->stride;
    info->align = p->align;
    info->objects_live = p->live;
    info->capacity = p->capacity;
    info->max_objects = p->max_objects;
    info->chunks = p->nchunks;
    info->chunk_bytes = p->chunk_bytes;
    info->bytes_held = p->fixed
                           ? p->chunk_bytes
                           : p->nchunks * p->chunk_bytes + p->index.capacity * sizeof(uintptr_t);
    info->overhead_bytes = info->bytes_held - p->capacity * p->stride;
}

static void walk_chunk(const strata_pool *p, const pool_chunk *c, strata_pool_walker fn, void *user)
{
    for (uint32_t i = 0; i < c->count; i++)
        fn((void *)(c->first + (uintptr_t)i * p->stride), chunk_used(p, c, i), user);
}

/* Chunks in address order by repeated selection of the next higher one:
 * O(chunks^2), which is fine for a diagnostic and needs no memory. */
void strata_pool_walk(const strata_pool *p, strata_pool_walker fn, void *user)
{
    if (p == NULL || p->magic != POOL_MAGIC || fn == NULL)
        return;
    const pool_chunk *prev = NULL;
    for (size_t k = 0; k < p->nchunks; k++) {
        const pool_chunk *best = NULL;
        for (const pool_chunk *c = p->chunks; c != NULL; c = c->next)
            if ((prev == NULL || c > prev) && (best == NULL || c < best))
                best = c;
        if (best == NULL)
            return;
        walk_chunk(p, best, fn, user);
        prev = best;
    }
}

/* ---- check ------------------------------------------------------------ */

/* POOL-1: the descriptor's geometry is self-consistent. */
static int check_descriptor(const strata_pool *p)
{
    int bad = 0;
    bad += !st_is_pow2(p->align) || p->align < POOL_MIN_ALIGN;
    bad += p->stride != st_align_up(ST_MAX(p->object_size, POOL_MIN_ALIGN), p->align);
    bad += p->recip != st_recip_of(p->stride);
    bad += p->limit != (p->max_objects ? p->max_objects : SIZE_MAX);
    if (!p->fixed)
        bad += !st_is_pow2(p->chunk_bytes) || p->chunk_mask != ~(uintptr_t)(p->chunk_bytes - 1);
    return bad;
}

/* POOL-3: one chunk's header describes objects inside the chunk. */
static int check_chunk_geometry(const strata_pool *p, const pool_chunk *c)
{
    uintptr_t base = (uintptr_t)c;
    uintptr_t end = p->fixed ? p->region_hi : base + p->chunk_bytes;
    uintptr_t bits_end = (uintptr_t)(c->bits + c->words);
    int bad = 0;
    bad += c->owner != p;
    bad += c->count == 0 || (size_t)c->words * 64 < c->count;
    bad += !st_is_aligned(c->first, p->align) || c->first < bits_end;
    bad += (uint64_t)c->count * p->stride > POOL_MAX_SPAN;
    bad += c->first + (uintptr_t)c->count * p->stride > end;
    if (c == p->home)
        bad += (uintptr_t)p < bits_end || (uintptr_t)(p + 1) > c->first;
    if (p->fixed)
        bad += base < p->region_lo;
    else
        bad += !st_is_aligned(base, p->chunk_bytes) ||
               (c != p->home && !st_addrset_contains(&p->index, base));
    return bad;
}

/* Objects of chunk c that are carved (may be live or on the free list). */
static size_t carved(const strata_pool *p, const pool_chunk *c)
{
    if (c->epoch != p->epoch)
        return 0;
    if (c == p->bump_chunk)
        return (p->bump - c->first) / p->stride;
    return c->count;
}

/* POOL-6: bits only for carved objects; returns the set bits in *live. */
static int check_bitmap(const strata_pool *p, const pool_chunk *c, size_t *live)
{
    if (c->epoch != p->epoch)
        return 0;
    size_t n = carved(p, c);
    int bad = 0;
    for (uint32_t w = 0; w < c->words; w++) {
        uint64_t word = c->bits[w];
        *live += (size_t)__builtin_popcountll(word);
        for (; word != 0; word &= word - 1)
            bad += (size_t)w * 64 + st_ctz(word) >= n;
    }
    return bad;
}

/* POOL-2, 3, 4, 6: the chunk list, each chunk, the epochs and bitmaps.
 * Sums carved objects and set bits of current chunks into the outputs. */
static int check_chunks(const strata_pool *p, size_t *carved_total, size_t *live)
{
    int bad = 0;
    size_t n = 0, cap = 0;
    bool before_bump = p->bump_chunk != NULL;
    const pool_chunk *last = NULL;
    for (const pool_chunk *c = p->chunks; c != NULL; c = c->next) {
        if (n++ >= p->nchunks || (p->fixed ? c != p->home : chunk_of(p, (uintptr_t)c) != c))
            return bad + 1;                /* a cycle or a pointer out of the pool: stop here */
        bad += check_chunk_geometry(p, c); /* POOL-3 */
        cap += c->count;
        /* POOL-4: current up to the bump chunk, stale after it */
        bad += c->epoch > p->epoch || (before_bump ? c->epoch != p->epoch : c->epoch == p->epoch);
        if (c == p->bump_chunk)
            before_bump = false;
        bad += check_bitmap(p, c, live); /* POOL-6 */
        *carved_total += carved(p, c);
        last = c;
    }
    /* POOL-2 (list, index, home first) and POOL-3 (capacity) */
    bad += n != p->nchunks || last != p->tail || p->chunks != p->home || cap != p->capacity;
    bad += before_bump; /* the bump chunk must be on the list */
    if (!p->fixed)
        bad += p->index.count != p->nchunks - 1 || chunk_of(p, p->hot) != (pool_chunk *)p->hot;
    return bad;
}

/* POOL-5: the bump cursor sits on an object boundary of its chunk. */
static int check_bump(const strata_pool *p)
{
    const pool_chunk *c = p->bump_chunk;
    if (c == NULL)
        return p->bump != p->bump_end;
    uintptr_t end = c->first + (uintptr_t)c->count * p->stride;
    return p->bump < c->first || p->bump > end || p->bump_end != end ||
           (p->bump - c->first) % p->stride != 0;
}

/* POOL-8: every free-list entry is a carved, unallocated object of a
 * current chunk; the walk stops after more entries than there are objects
 * (a cycle). Returns the violations and the length in *len. */
static int check_free_list(const strata_pool *p, size_t *len)
{
    int bad = 0;
    for (void *obj = p->free_list; obj != NULL; obj = link_get(obj)) {
        const pool_chunk *c = chunk_of(p, (uintptr_t)obj);
        uint32_t i;
        if (++*len > p->capacity || c == NULL || !index_of(p, c, (uintptr_t)obj, &i))
            return bad + 1; /* cannot follow this link safely */
        bad += c->epoch != p->epoch || i >= carved(p, c) || chunk_used(p, c, i);
    }
    return bad;
}

/* Walks everything: the descriptor (POOL-1), chunk list and index
 * (POOL-2), chunk geometry (POOL-3), epochs (POOL-4), bump cursor
 * (POOL-5), bitmaps (POOL-6), the live count (POOL-7), the free list
 * (POOL-8) and the accounting that ties them (POOL-9). */
int strata_pool_check(const strata_pool *p)
{
    if (p == NULL || p->magic != POOL_MAGIC)
        return 1;
    size_t carved_total = 0, live = 0, free_len = 0;
    int bad = check_descriptor(p);                /* POOL-1 */
    bad += check_chunks(p, &carved_total, &live); /* POOL-2, 3, 4, 6 */
    bad += check_bump(p);                         /* POOL-5 */
    bad += live != p->live || p->live > p->limit; /* POOL-7 */
    bad += check_free_list(p, &free_len);         /* POOL-8 */
    bad += free_len + p->live != carved_total;    /* POOL-9 */
    return bad;
}
