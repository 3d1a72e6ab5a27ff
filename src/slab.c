/* SPDX-License-Identifier: MIT */
/*
 * slab.c — object caches (include/strata/slab.h) in two levels.
 *
 * Level 1, one slab (src/slab.h, st_slab_*): the arithmetic of carving a
 * block into equal objects and the free state of those objects, kept in a
 * descriptor outside them: an allocated-bit bitmap and a stack of free
 * uint16_t indices. It knows nothing of lists, locks or page sources, so
 * the malloc can use it for its size-class slabs.
 *
 * Level 2, the cache (strata_slab_*): slabs of one power-of-two size taken
 * from a page source aligned to that size, so an object's slab is its
 * address with the low bits cleared; the descriptor sits at the slab
 * start. Slabs are on a full, a partial or an empty list (allocation takes
 * partial, then empty, then a new slab); an address set of slab starts
 * lets free reject a foreign pointer before reading anything at it.
 * Constructors run when a slab is made, destructors when it is released.
 *
 * What it does not do: per-CPU or per-thread caches, slab colouring,
 * red zones, giving empty slabs back on its own (only shrink and destroy
 * do). Invariants: docs/INVARIANTS.md (SLAB-1..SLAB-12).
 */
#include "slab.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "addrset.h"
#include "debug.h"
#include "os.h"
#include "strata/slab.h"

_Static_assert(sizeof(st_slab) == 64, "the slab descriptor header is documented as 64 bytes");
_Static_assert(STRATA_SLAB_MAX_OBJECTS == ST_SLAB_MAX_CAPACITY, "one cap on objects per slab");

/* ======================================================================
 * Level 1: one slab
 * ====================================================================== */

static inline size_t bitmap_words(unsigned capacity) { return ((size_t)capacity + 63) / 64; }

static inline uint16_t *free_stack(const st_slab *s)
{
    return (uint16_t *)(uintptr_t)(s->bits + bitmap_words(s->capacity));
}

size_t st_slab_desc_size(unsigned capacity)
{
    return sizeof(st_slab) + bitmap_words(capacity) * sizeof(uint64_t) +
           (size_t)capacity * sizeof(uint16_t);
}

/* Offset of object 0 when the descriptor for `capacity` leads the block. */
static size_t inside_first(unsigned capacity, size_t align)
{
    return st_align_up(st_slab_desc_size(capacity), align);
}

static bool inside_fits(size_t block_bytes, size_t size, size_t align, unsigned capacity)
{
    return inside_first(capacity, align) + (size_t)capacity * size <= block_bytes;
}

/* The largest capacity whose descriptor and objects fit. Each object costs
 * size + 2 1/8 bytes, so the estimate below is within one of the answer
 * (the alignment padding is under one stride); the loops settle it. */
static unsigned inside_capacity(size_t block_bytes, size_t size, size_t align)
{
    size_t fixed = sizeof(st_slab) + sizeof(uint64_t);
    size_t est = block_bytes > fixed ? (block_bytes - fixed) * 8 / (8 * size + 17) : 0;
    unsigned cap = (unsigned)ST_MIN(est, (size_t)ST_SLAB_MAX_CAPACITY);
    while (cap > 0 && !inside_fits(block_bytes, size, align, cap))
        cap--;
    while (cap < ST_SLAB_MAX_CAPACITY && inside_fits(block_bytes, size, align, cap + 1))
        cap++;
    return cap;
}

bool st_slab_layout_compute(size_t block_bytes, size_t obj_size, size_t align, bool desc_inside,
                            st_slab_layout *out)
{
    if (!st_is_pow2(align) || obj_size == 0 || block_bytes == 0 ||
        block_bytes > ST_SLAB_MAX_BLOCK || obj_size > block_bytes)
        return false;
    size_t size = st_align_up(ST_MAX(obj_size, ST_SLAB_MIN_SIZE), align);
    unsigned cap = desc_inside ? inside_capacity(block_bytes, size, align)
                               : (unsigned)ST_MIN(block_bytes / size, (size_t)ST_SLAB_MAX_CAPACITY);
    if (cap == 0)
        return false;
    out->block_bytes = block_bytes;
    out->size = size;
    out->capacity = cap;
    out->desc_bytes = st_slab_desc_size(cap);
    out->first = desc_inside ? inside_first(cap, align) : 0;
    out->desc_inside = desc_inside;
    return true;
}

static void init_header(st_slab *s, void *block, const st_slab_layout *l, uint32_t magic)
{
    s->magic = magic;
    s->capacity = l->capacity;
    s->free_count = l->capacity;
    s->size = (uint32_t)l->size;
    s->first = (uint32_t)l->first;
    s->block_bytes = (uint32_t)l->block_bytes;
    s->recip = st_recip_of(l->size);
    s->block = (uintptr_t)block;
    s->link.prev = s->link.next = NULL;
    s->owner_tag = 0;
    s->cursor = 0;
}

void st_slab_init(st_slab *s, void *block, const st_slab_layout *l)
{
    init_header(s, block, l, ST_SLAB_MAGIC);
    memset(s->bits, 0, bitmap_words(l->capacity) * sizeof(uint64_t));
    /* the top of the stack is the last entry: index 0 is popped first */
    uint16_t *stack = free_stack(s);
    for (unsigned i = 0; i < l->capacity; i++)
        stack[i] = (uint16_t)(l->capacity - 1 - i);
}

st_slab *st_slab_carve(void *block, const st_slab_layout *l)
{
    ST_ASSERT(1, l->desc_inside && l->first >= l->desc_bytes);
    st_slab *s = block;
    st_slab_init(s, block, l);
    return s;
}

void *st_slab_pop(st_slab *s)
{
    if (s->free_count == 0)
        return NULL;
    unsigned idx = free_stack(s)[--s->free_count];
    if (ST_UNLIKELY(idx >= s->capacity || st_slab_is_live(s, idx)))
        st_fatal("slab", "free index stack corrupt", s);
    s->bits[idx >> 6] |= (uint64_t)1 << (idx & 63);
    return st_slab_object(s, idx);
}

/* offset / size without a division (bits.h: st_recip_*); offsets are
 * below 2^32 because blocks are at most ST_SLAB_MAX_BLOCK. */
long st_slab_object_index(const st_slab *s, const void *obj)
{
    uintptr_t off = (uintptr_t)obj - st_slab_base(s);
    if (off >= (uintptr_t)s->capacity * s->size || !st_recip_divides(s->recip, (uint32_t)off))
        return STRATA_ERR_NOT_BLOCK;
    return (long)st_recip_quot(s->recip, (uint32_t)off);
}

int st_slab_push(st_slab *s, void *obj)
{
    long idx = st_slab_object_index(s, obj);
    if (idx < 0)
        return (int)idx;
    if (!st_slab_is_live(s, (unsigned)idx))
        return STRATA_ERR_DOUBLE_FREE;
    if (ST_UNLIKELY(s->free_count >= s->capacity))
        return STRATA_ERR_CORRUPT;
    s->bits[idx >> 6] &= ~((uint64_t)1 << (idx & 63));
    free_stack(s)[s->free_count++] = (uint16_t)idx;
    return 0;
}

/* SLAB-1, SLAB-2 and the bound of SLAB-3: the header describes a possible slab. */
static int check_header(const st_slab *s)
{
    int bad = 0;
    if (s->free_count > s->capacity)
        bad++;
    if (s->size < ST_SLAB_MIN_SIZE || s->recip != st_recip_of(s->size))
        bad++;
    if ((uint64_t)(st_slab_base(s) - s->block) + (uint64_t)s->capacity * s->size > s->block_bytes)
        bad++;
    size_t desc = s->magic == ST_SLAB_MAGIC_BITMAP ? st_slab_bitmap_desc_size(s->capacity)
                                                    : st_slab_desc_size(s->capacity);
    if ((uintptr_t)s - s->block < s->block_bytes && s->first < desc)
        bad++;
    return bad;
}

/* SLAB-3: live bits == capacity - free_count, none beyond capacity. */
static int check_bitmap(const st_slab *s)
{
    size_t words = bitmap_words(s->capacity);
    size_t live = 0;
    for (size_t w = 0; w < words; w++)
        live += (size_t)__builtin_popcountll(s->bits[w]);
    unsigned tail = s->capacity & 63;
    int bad = live != (size_t)s->capacity - s->free_count;
    if (tail != 0 && (s->bits[words - 1] >> tail) != 0)
        bad++;
    return bad;
}

/* SLAB-13, SLAB-14 (bitmap mode): live bits == capacity - free_count, the
 * bits past capacity set, every word below the cursor full. */
static int check_bitmap_mode(const st_slab *s)
{
    size_t words = bitmap_words(s->capacity), live = 0;
    for (size_t w = 0; w < words; w++)
        live += (size_t)__builtin_popcountll(st_slab_live(s, (unsigned)w));
    unsigned tail = s->capacity & 63;
    if (tail != 0)
        live -= 64 - tail;
    int bad = live != (size_t)s->capacity - s->free_count;
    if (tail != 0 && (st_slab_live(s, (unsigned)words - 1) >> tail) != (UINT64_MAX >> tail))
        bad++;
    if (s->cursor >= words)
        return bad + 1;
    for (size_t w = 0; w < s->cursor; w++)
        bad += st_slab_live(s, (unsigned)w) != UINT64_MAX;
    return bad;
}

static void toggle_stack(st_slab *s, unsigned n)
{
    const uint16_t *stack = free_stack(s);
    for (unsigned i = 0; i < n; i++)
        if (stack[i] < s->capacity)
            s->bits[stack[i] >> 6] ^= (uint64_t)1 << (stack[i] & 63);
}

/* SLAB-4, SLAB-5: the free stack is exactly the set of clear bits. Flip the
 * bit of every stack entry: given SLAB-3 (as many clear bits as entries),
 * all bits end up set iff every clear index is on the stack once and no
 * live index is on it. Each bit left clear is one violation. Flipping again
 * restores the bitmap whatever it found. */
static int check_stack(st_slab *s)
{
    unsigned n = s->free_count;
    const uint16_t *stack = free_stack(s);
    int bad = 0;
    for (unsigned i = 0; i < n; i++)
        bad += stack[i] >= s->capacity;
    toggle_stack(s, n);
    for (unsigned i = 0; i < s->capacity; i++)
        bad += !st_slab_is_live(s, i);
    toggle_stack(s, n);
    return bad;
}

int st_slab_check(st_slab *s)
{
    bool bitmap = s->magic == ST_SLAB_MAGIC_BITMAP;
    if ((s->magic != ST_SLAB_MAGIC && !bitmap) || s->capacity == 0 ||
        s->capacity > ST_SLAB_MAX_CAPACITY)
        return 1;
    int bad = check_header(s);
    if (bad != 0)
        return bad; /* sizes cannot be trusted: do not walk */
    return bitmap ? check_bitmap_mode(s) : check_bitmap(s) + check_stack(s);
}

/* ---- bitmap-only mode -------------------------------------------------- */

size_t st_slab_bitmap_desc_size(unsigned capacity)
{
    return sizeof(st_slab) + ST_SLAB_BITMAP_STRIDE * bitmap_words(capacity) * sizeof(uint64_t);
}

bool st_slab_layout_bitmap(size_t block_bytes, size_t obj_size, size_t align,
                           st_slab_layout *out)
{
    if (!st_is_pow2(align) || obj_size == 0 || block_bytes > ST_SLAB_MAX_BLOCK ||
        obj_size > block_bytes)
        return false;
    size_t size = st_align_up(st_align_up(obj_size, 16), align);
    out->block_bytes = block_bytes;
    out->size = size;
    out->capacity = (unsigned)ST_MIN(block_bytes / size, (size_t)ST_SLAB_MAX_CAPACITY);
    out->desc_bytes = st_slab_bitmap_desc_size(out->capacity);
    out->first = 0;
    out->desc_inside = false;
    return out->capacity > 0;
}

void st_slab_init_bitmap(st_slab *s, void *block, const st_slab_layout *l)
{
    init_header(s, block, l, ST_SLAB_MAGIC_BITMAP);
    size_t words = bitmap_words(l->capacity);
    memset(s->bits, 0, ST_SLAB_BITMAP_STRIDE * words * sizeof(uint64_t));
    if (l->capacity & 63)
        st_slab_set_live(s, (unsigned)words - 1, ~(uint64_t)0 << (l->capacity & 63));
}

void *st_slab_take_scan(st_slab *s)
{
    size_t words = bitmap_words(s->capacity);
    while (s->cursor + 1 < words && st_slab_live(s, s->cursor) == UINT64_MAX)
        s->cursor++;
    if (st_slab_live(s, s->cursor) == UINT64_MAX)
        return NULL;
    return st_slab_take(s);
}

/* ======================================================================
 * Level 2: the cache
 * ====================================================================== */

#define CACHE_MAGIC 0x5ca4e0b1u
#define ALL_FLAGS (STRATA_SLAB_HWCACHE_ALIGN | STRATA_SLAB_POISON | STRATA_SLAB_THREADSAFE)
#define HWCACHE_LINE ((size_t)64)
#define POISON_WORD (0x0101010101010101ull * STRATA_SLAB_POISON_BYTE)

enum { LIST_FULL, LIST_PARTIAL, LIST_EMPTY, LIST_COUNT };

typedef struct slab_list {
    st_slab_link head; /* sentinel of a circular list */
    size_t count;
} slab_list;

struct strata_slab_cache {
    uint32_t magic;
    unsigned flags;
    char name[STRATA_SLAB_NAME_MAX + 1];
    size_t object_size;
    size_t align;
    st_slab_layout layout;
    unsigned keep_empty;
    void (*ctor)(void *obj);
    void (*dtor)(void *obj);
    strata_page_source source;
    slab_list lists[LIST_COUNT];
    size_t total_slabs;
    size_t active_objects;
    st_addrset slabs; /* the start of every slab of this cache */
    pthread_mutex_t lock;
};

_Static_assert(sizeof(strata_slab_cache) <= ST_PAGE_SIZE, "the descriptor takes one page");

static bool cache_ok(const strata_slab_cache *c) { return c != NULL && c->magic == CACHE_MAGIC; }

static void cache_lock(const strata_slab_cache *c)
{
    if (c->flags & STRATA_SLAB_THREADSAFE)
        pthread_mutex_lock((pthread_mutex_t *)&c->lock);
}

static void cache_unlock(const strata_slab_cache *c)
{
    if (c->flags & STRATA_SLAB_THREADSAFE)
        pthread_mutex_unlock((pthread_mutex_t *)&c->lock);
}

static inline st_slab *slab_of_link(const st_slab_link *l)
{
    return (st_slab *)(uintptr_t)((const char *)l - offsetof(st_slab, link));
}

/* ---- lists --------------------------------------------------------------- */

static void list_init(slab_list *l)
{
    l->head.prev = l->head.next = &l->head;
    l->count = 0;
}

static void list_add(strata_slab_cache *c, st_slab *s, unsigned tag)
{
    slab_list *l = &c->lists[tag];
    s->link.prev = &l->head;
    s->link.next = l->head.next;
    l->head.next->prev = &s->link;
    l->head.next = &s->link;
    l->count++;
    s->owner_tag = tag;
}

static void list_del(strata_slab_cache *c, st_slab *s)
{
    s->link.prev->next = s->link.next;
    s->link.next->prev = s->link.prev;
    c->lists[s->owner_tag].count--;
}

static unsigned tag_for(const st_slab *s)
{
    return st_slab_is_full(s) ? LIST_FULL : st_slab_is_empty(s) ? LIST_EMPTY : LIST_PARTIAL;
}

/* Move a slab to the list its fill says (SLAB-7), O(1). */
static void relist(strata_slab_cache *c, st_slab *s)
{
    unsigned tag = tag_for(s);
    if (tag != s->owner_tag) {
        list_del(c, s);
        list_add(c, s, tag);
    }
}

static st_slab *list_first(const strata_slab_cache *c, unsigned tag)
{
    const slab_list *l = &c->lists[tag];
    return l->count == 0 ? NULL : slab_of_link(l->head.next);
}

/* ---- poison --------------------------------------------------------------- */

/* Objects are 8-byte aligned and their stride a multiple of 8. */
static void poison_fill(void *obj, size_t stride) { memset(obj, STRATA_SLAB_POISON_BYTE, stride); }

static bool poison_intact(const void *obj, size_t stride)
{
    const uint64_t *w = obj;
    for (size_t i = 0; i < stride / sizeof(uint64_t); i++)
        if (w[i] != POISON_WORD)
            return false;
    return true;
}

/* ---- slabs in and out ------------------------------------------------------ */

/* Run the constructor (or lay the poison) on every object of a new slab. */
static void prepare_objects(const strata_slab_cache *c, st_slab *s)
{
    for (unsigned i = 0; i < s->capacity; i++) {
        void *obj = st_slab_object(s, i);
        if (c->ctor != NULL)
            c->ctor(obj);
        else if (c->flags & STRATA_SLAB_POISON)
            poison_fill(obj, s->size);
    }
}

/* A new slab on the empty list, or NULL. A source that hands back a
 * block of the wrong alignment counts as a failing one. */
static st_slab *grow(strata_slab_cache *c)
{
    size_t bytes = c->layout.block_bytes;
    void *block = c->source.alloc(c->source.ctx, bytes, bytes);
    if (block == NULL)
        return NULL;
    if (!st_is_aligned((uintptr_t)block, bytes) ||
        !st_addrset_insert(&c->slabs, (uintptr_t)block)) {
        c->source.free(c->source.ctx, block, bytes);
        return NULL;
    }
    st_slab *s = st_slab_carve(block, &c->layout);
    prepare_objects(c, s);
    list_add(c, s, LIST_EMPTY);
    c->total_slabs++;
    return s;
}

/* Destructor on every object, then the block goes back to the source. */
static void release(strata_slab_cache *c, st_slab *s)
{
    list_del(c, s);
    if (c->dtor != NULL)
        for (unsigned i = 0; i < s->capacity; i++)
            c->dtor(st_slab_object(s, i));
    uintptr_t block = s->block;
    st_addrset_remove(&c->slabs, block);
    c->total_slabs--;
    c->source.free(c->source.ctx, (void *)block, c->layout.block_bytes);
}

/* ---- configuration ---------------------------------------------------------- */

void strata_slab_config_init(strata_slab_config *cfg, const char *name, size_t object_size)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->name = name;
    cfg->object_size = object_size;
    cfg->keep_empty = STRATA_SLAB_KEEP_EMPTY_DEFAULT;
}

static bool name_ok(const char *name)
{
    if (name == NULL)
        return false;
    size_t len = strnlen(name, STRATA_SLAB_NAME_MAX + 1);
    if (len == 0 || len > STRATA_SLAB_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] <= ' ' || name[i] == 0x7f)
            return false; /* a slabinfo line is split at spaces */
    return true;
}

static bool config_ok(const strata_slab_config *cfg)
{
    if (cfg == NULL || !name_ok(cfg->name))
        return false;
    if (cfg->object_size == 0 || cfg->object_size > STRATA_SLAB_MAX_OBJECT_SIZE)
        return false;
    if (cfg->align != 0 && (!st_is_pow2(cfg->align) || cfg->align > STRATA_SLAB_MAX_ALIGN))
        return false;
    if ((cfg->flags & ~ALL_FLAGS) != 0)
        return false;
    if ((cfg->flags & STRATA_SLAB_POISON) && (cfg->ctor != NULL || cfg->dtor != NULL))
        return false;
    if (cfg->slab_size != 0 && (!st_is_pow2(cfg->slab_size) || cfg->slab_size < ST_PAGE_SIZE ||
                                cfg->slab_size > STRATA_SLAB_MAX_SLAB_SIZE))
        return false;
    return cfg->source.alloc == NULL || cfg->source.free != NULL;
}

static size_t effective_align(const strata_slab_config *cfg)
{
    size_t align = ST_MAX(cfg->align, (size_t)STRATA_SLAB_MIN_ALIGN);
    if (cfg->flags & STRATA_SLAB_HWCACHE_ALIGN)
        align = ST_MAX(align, HWCACHE_LINE);
    return align;
}

/* The first slab size from 4 KiB up to 4 MiB whose layout holds at least
 * min_objects and leaves under 1/8 of the slab unused (bytes that are
 * neither descriptor nor object); 0 if none. */
static size_t first_good_size(size_t obj_size, size_t align, unsigned min_objects)
{
    for (size_t bytes = ST_PAGE_SIZE; bytes <= STRATA_SLAB_MAX_SLAB_SIZE; bytes *= 2) {
        st_slab_layout l;
        if (!st_slab_layout_compute(bytes, obj_size, align, true, &l) || l.capacity < min_objects)
            continue;
        size_t waste = bytes - l.desc_bytes - (size_t)l.capacity * l.size;
        if (waste * 8 < bytes)
            return bytes;
    }
    return 0;
}

/* The default slab size (docs/slab.md): at least 8 objects and under 1/8
 * waste; failing that (objects over about 450 KiB) at least one object and
 * under 1/8 waste; failing that the smallest slab that holds one object. */
static size_t default_slab_size(size_t obj_size, size_t align)
{
    size_t bytes = first_good_size(obj_size, align, 8);
    if (bytes == 0)
        bytes = first_good_size(obj_size, align, 1);
    for (size_t b = ST_PAGE_SIZE; bytes == 0 && b <= STRATA_SLAB_MAX_SLAB_SIZE; b *= 2) {
        st_slab_layout l;
        if (st_slab_layout_compute(b, obj_size, align, true, &l))
            bytes = b;
    }
    return bytes;
}

/* ---- create and destroy ------------------------------------------------------ */

static void cache_fill(strata_slab_cache *c, const strata_slab_config *cfg, size_t align,
                       const st_slab_layout *layout, strata_page_source source)
{
    memset(c, 0, sizeof(*c));
    c->magic = CACHE_MAGIC;
    c->flags = cfg->flags;
    memcpy(c->name, cfg->name, strlen(cfg->name) + 1);
    c->object_size = cfg->object_size;
    c->align = align;
    c->layout = *layout;
    c->keep_empty = cfg->keep_empty;
    c->ctor = cfg->ctor;
    c->dtor = cfg->dtor;
    c->source = source;
    for (unsigned t = 0; t < LIST_COUNT; t++)
        list_init(&c->lists[t]);
    st_addrset_init(&c->slabs, st_log2_floor(layout->block_bytes), source);
}

strata_slab_cache *strata_slab_cache_create_ex(const strata_slab_config *cfg)
{
    st_slab_layout layout;
    if (!config_ok(cfg)) {
        errno = EINVAL;
        return NULL;
    }
    size_t align = effective_align(cfg);
    size_t bytes = cfg->slab_size;
    if (bytes == 0)
        bytes = default_slab_size(cfg->object_size, align);
    if (bytes == 0 || !st_slab_layout_compute(bytes, cfg->object_size, align, true, &layout)) {
        errno = EINVAL; /* an explicit slab size too small for one object */
        return NULL;
    }
    strata_page_source source = cfg->source.alloc != NULL ? cfg->source : strata_page_source_os();
    strata_slab_cache *c = source.alloc(source.ctx, ST_PAGE_SIZE, ST_PAGE_SIZE);
    if (c == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    cache_fill(c, cfg, align, &layout, source);
    if ((c->flags & STRATA_SLAB_THREADSAFE) && pthread_mutex_init(&c->lock, NULL) != 0) {
        source.free(source.ctx, c, ST_PAGE_SIZE);
        errno = ENOMEM;
        return NULL;
    }
    return c;
}

strata_slab_cache *strata_slab_cache_create(const char *name, size_t object_size, size_t align,
                                            void (*ctor)(void *obj), void (*dtor)(void *obj),
                                            unsigned flags)
{
    strata_slab_config cfg;
    strata_slab_config_init(&cfg, name, object_size);
    cfg.align = align;
    cfg.ctor = ctor;
    cfg.dtor = dtor;
    cfg.flags = flags;
    return strata_slab_cache_create_ex(&cfg);
}

int strata_slab_cache_destroy(strata_slab_cache *c)
{
    if (c == NULL)
        return 0;
    if (!cache_ok(c))
        return STRATA_ERR_INVALID;
    cache_lock(c);
    if (c->active_objects != 0 || c->lists[LIST_FULL].count + c->lists[LIST_PARTIAL].count != 0) {
        cache_unlock(c);
        return STRATA_ERR_BUSY;
    }
    while (c->lists[LIST_EMPTY].count != 0)
        release(c, list_first(c, LIST_EMPTY));
    cache_unlock(c);
    st_addrset_destroy(&c->slabs);
    if (c->flags & STRATA_SLAB_THREADSAFE)
        pthread_mutex_destroy(&c->lock);
    strata_page_source source = c->source;
    c->magic = 0;
    source.free(source.ctx, c, ST_PAGE_SIZE);
    return 0;
}

/* ---- alloc, free, shrink ------------------------------------------------------- */

static st_slab *slab_for_alloc(strata_slab_cache *c)
{
    st_slab *s = list_first(c, LIST_PARTIAL);
    if (s == NULL)
        s = list_first(c, LIST_EMPTY);
    return s != NULL ? s : grow(c);
}

void *strata_slab_alloc(strata_slab_cache *c)
{
    if (!cache_ok(c)) {
        errno = EINVAL;
        return NULL;
    }
    cache_lock(c);
    st_slab *s = slab_for_alloc(c);
    void *obj = s != NULL ? st_slab_pop(s) : NULL;
    if (obj != NULL) {
        relist(c, s);
        c->active_objects++;
        if ((c->flags & STRATA_SLAB_POISON) && !poison_intact(obj, s->size))
            st_fatal("slab", "write after free (poison damaged)", obj);
    }
    cache_unlock(c);
    if (obj == NULL)
        errno = ENOMEM;
    return obj;
}

/* The slab is found by masking and proven ours by the address set before
 * anything at the pointer or its slab is read. */
int strata_slab_free(strata_slab_cache *c, void *obj)
{
    if (obj == NULL)
        return 0;
    if (!cache_ok(c))
        return STRATA_ERR_INVALID;
    uintptr_t base = st_align_down((uintptr_t)obj, c->layout.block_bytes);
    cache_lock(c);
    int rc = STRATA_ERR_FOREIGN;
    if (st_addrset_contains(&c->slabs, base)) {
        st_slab *s = (st_slab *)base;
        rc = st_slab_push(s, obj);
        if (rc == 0) {
            if (c->flags & STRATA_SLAB_POISON)
                poison_fill(obj, s->size);
            relist(c, s);
            c->active_objects--;
        }
    }
    cache_unlock(c);
    return rc;
}

/* Releases from the tail of the empty list: the slabs emptied longest ago. */
size_t strata_slab_shrink(strata_slab_cache *c)
{
    if (!cache_ok(c))
        return 0;
    size_t released = 0;
    cache_lock(c);
    while (c->lists[LIST_EMPTY].count > c->keep_empty) {
        release(c, slab_of_link(c->lists[LIST_EMPTY].head.prev));
        released++;
    }
    cache_unlock(c);
    return released;
}

/* ---- statistics ------------------------------------------------------------------ */

static void fill_info(const strata_slab_cache *c, strata_slab_info *info)
{
    memset(info, 0, sizeof(*info));
    memcpy(info->name, c->name, sizeof(info->name));
    info->object_size = c->object_size;
    info->object_stride = c->layout.size;
    info->align = c->align;
    info->objects_per_slab = c->layout.capacity;
    info->pages_per_slab = (unsigned)(c->layout.block_bytes / ST_PAGE_SIZE);
    info->slab_bytes = c->layout.block_bytes;
    info->first_offset = c->layout.first;
    info->active_objects = c->active_objects;
    info->total_objects = c->total_slabs * c->layout.capacity;
    info->full_slabs = c->lists[LIST_FULL].count;
    info->partial_slabs = c->lists[LIST_PARTIAL].count;
    info->empty_slabs = c->lists[LIST_EMPTY].count;
    info->active_slabs = info->full_slabs + info->partial_slabs;
    info->total_slabs = c->total_slabs;
    info->bytes_held = c->total_slabs * c->layout.block_bytes + ST_PAGE_SIZE +
                       c->slabs.capacity * sizeof(uintptr_t);
    info->flags = c->flags;
    info->keep_empty = c->keep_empty;
}

void strata_slab_cache_get_info(const strata_slab_cache *c, strata_slab_info *info)
{
    if (!cache_ok(c)) {
        memset(info, 0, sizeof(*info));
        return;
    }
    cache_lock(c);
    fill_info(c, info);
    cache_unlock(c);
}

int strata_slab_format_header(char *buf, size_t len)
{
    return snprintf(buf, len,
                    "slabinfo - version: 2.1\n"
                    "# name            <active_objs> <num_objs> <objsize> <objperslab> "
                    "<pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata "
                    "<active_slabs> <num_slabs> <sharedavail>\n");
}

/* The column widths of the kernel's slabinfo (mm/slab_common.c). */
int st_slabinfo_line(char *buf, size_t len, const strata_slab_info *i)
{
    return snprintf(buf, len,
                    "%-17s %6zu %6zu %6zu %4u %4u : tunables %4u %4u %4u"
                    " : slabdata %6zu %6zu %6u\n",
                    i->name, i->active_objects, i->total_objects, i->object_stride,
                    i->objects_per_slab, i->pages_per_slab, 0u, 0u, 0u, i->active_slabs,
                    i->total_slabs, 0u);
}

int strata_slab_cache_format(const strata_slab_cache *c, char *buf, size_t len)
{
    if (!cache_ok(c))
        return STRATA_ERR_INVALID;
    strata_slab_info i;
    strata_slab_cache_get_info(c, &i);
    return st_slabinfo_line(buf, len, &i);
}

/* ---- check and walk ---------------------------------------------------------------- */

/* SLAB-6: the slab was carved with the cache's layout, at an aligned start. */
static bool slab_matches_layout(const strata_slab_cache *c, const st_slab *s)
{
    const st_slab_layout *l = &c->layout;
    return s->block == (uintptr_t)s && st_is_aligned(s->block, l->block_bytes) &&
           s->capacity == l->capacity && s->size == l->size &&
           s->first == l->first && s->block_bytes == l->block_bytes;
}

/* SLAB-12: every free object of a POISON cache still holds the poison. */
static int check_poison(const strata_slab_cache *c, const st_slab *s)
{
    int bad = 0;
    if (!(c->flags & STRATA_SLAB_POISON))
        return 0;
    for (unsigned i = 0; i < s->capacity; i++)
        if (!st_slab_is_live(s, i) && !poison_intact(st_slab_object(s, i), s->size))
            bad++;
    return bad;
}

/* One slab met on list `tag` (SLAB-1..7, SLAB-12). */
static int check_slab(const strata_slab_cache *c, st_slab *s, unsigned tag, size_t *used)
{
    int bad = st_slab_check(s);
    if (bad != 0)
        return bad;
    if (!slab_matches_layout(c, s))
        return 1;
    bad += s->owner_tag != tag;
    bad += tag_for(s) != tag;
    *used += st_slab_used(s);
    return bad + check_poison(c, s);
}

/* Walk one circular list; stop at a link that does not lead back or to a
 * slab outside the address set (SLAB-11), since that memory is not ours. */
static int check_list(const strata_slab_cache *c, unsigned tag, size_t *slabs, size_t *used)
{
    const st_slab_link *head = &c->lists[tag].head;
    const st_slab_link *prev = head;
    size_t n = 0;
    int bad = 0;
    for (const st_slab_link *l = head->next; l != head; prev = l, l = l->next, n++) {
        st_slab *s = slab_of_link(l);
        if (n >= c->total_slabs || !st_addrset_contains(&c->slabs, (uintptr_t)s) || l->prev != prev)
            return bad + 1; /* a cycle, a stranger (not read) or a broken back link */
        bad += check_slab(c, s, tag, used);
    }
    bad += head->prev != prev;
    bad += n != c->lists[tag].count; /* SLAB-8 */
    *slabs += n;
    return bad;
}

int strata_slab_cache_check(strata_slab_cache *c)
{
    if (!cache_ok(c))
        return 1;
    cache_lock(c);
    size_t slabs = 0, used = 0;
    int bad = 0;
    for (unsigned t = 0; t < LIST_COUNT; t++)
        bad += check_list(c, t, &slabs, &used);
    bad += slabs != c->total_slabs;           /* SLAB-9 */
    bad += used != c->active_objects;         /* SLAB-10 */
    bad += c->slabs.count != c->total_slabs;  /* SLAB-11 */
    cache_unlock(c);
    return bad;
}

static void walk_slab(const strata_slab_cache *c, const st_slab *s, strata_slab_walker fn,
                      void *user)
{
    for (size_t w = 0; w < bitmap_words(s->capacity); w++)
        for (uint64_t bits = s->bits[w]; bits != 0; bits &= bits - 1)
            fn(st_slab_object(s, (unsigned)(w * 64 + st_ctz(bits))), c->object_size, user);
}

void strata_slab_cache_walk(const strata_slab_cache *c, strata_slab_walker fn, void *user)
{
    if (!cache_ok(c) || fn == NULL)
        return;
    cache_lock(c);
    for (unsigned t = LIST_FULL; t <= LIST_PARTIAL; t++) {
        const st_slab_link *head = &c->lists[t].head;
        for (const st_slab_link *l = head->next; l != head; l = l->next)
            walk_slab(c, slab_of_link(l), fn, user);
    }
    cache_unlock(c);
}
