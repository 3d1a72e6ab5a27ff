/* SPDX-License-Identifier: MIT */
/*
 * Randomized model test of the slab caches: thousands of random alloc and
 * free steps (and now and then a shrink) against a reference list of live
 * objects, over several object sizes and flags and two page sources (the
 * OS and a buddy allocator over a caller buffer), each wrapped in a source
 * that counts the bytes it has out and can be told to fail. After every
 * step: strata_slab_cache_check() is 0, the statistics agree with the
 * model; a new object overlaps no live one and has the promised alignment;
 * every object keeps the pattern written into it until it is freed. At the
 * end everything is freed (all slabs empty, the same statistics as an idle
 * cache), shrunk, destroyed, and the source has every byte back.
 */
#include <errno.h>

#include "strata/buddy.h"
#include "strata/slab.h"
#include "test.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))

/* ---- a wrapping page source: counts bytes, fails on request ---------------- */

typedef struct wrap_source {
    strata_page_source inner;
    size_t bytes_out, blocks_out, calls;
    size_t fail_after;   /* calls that succeed before all fail (SIZE_MAX: never) */
    unsigned fail_one_in; /* also fail one call in this many at random (0: never) */
    size_t failures;
} wrap_source;

static void *wrap_alloc(void *ctx, size_t size, size_t align)
{
    wrap_source *w = ctx;
    if (w->calls++ >= w->fail_after || (w->fail_one_in && test_rand() % w->fail_one_in == 0)) {
        w->failures++;
        return NULL;
    }
    void *p = w->inner.alloc(w->inner.ctx, size, align);
    if (p != NULL) {
        w->bytes_out += size;
        w->blocks_out++;
    }
    return p;
}

static void wrap_free(void *ctx, void *block, size_t size)
{
    wrap_source *w = ctx;
    w->bytes_out -= size;
    w->blocks_out--;
    w->inner.free(w->inner.ctx, block, size);
}

static strata_page_source wrap(wrap_source *w, strata_page_source inner)
{
    memset(w, 0, sizeof(*w));
    w->inner = inner;
    w->fail_after = SIZE_MAX;
    return (strata_page_source){.alloc = wrap_alloc, .free = wrap_free, .ctx = w};
}

/* A buddy allocator over a 16 MiB (or smaller) buffer of our own. */
typedef struct buddy_arena {
    void *mem;
    size_t size;
    strata_buddy *buddy;
} buddy_arena;

static bool arena_open(buddy_arena *a, size_t size)
{
    a->size = size;
    a->mem = aligned_alloc(size < ((size_t)1 << 22) ? size : (size_t)1 << 22, size);
    a->buddy = a->mem ? strata_buddy_create(a->mem, size, 4096) : NULL;
    return a->buddy != NULL;
}

static void arena_close(buddy_arena *a) { free(a->mem); }

static size_t arena_free_bytes(const buddy_arena *a)
{
    strata_buddy_info i;
    strata_buddy_get_info(a->buddy, &i);
    return i.free_bytes;
}

/* ---- the reference model --------------------------------------------------------- */

typedef struct live_obj {
    unsigned char *ptr;
    uint32_t id;
} live_obj;

typedef struct model {
    strata_slab_cache *cache;
    size_t size, align;
    live_obj *live;
    size_t n, max;
    uint32_t next_id;
    long failures;
} model;

static unsigned char pattern(uint32_t id, size_t k)
{
    return (unsigned char)(id * 131u + k * 7u + 1u);
}

static void fill(const live_obj *o, size_t size)
{
    for (size_t k = 0; k < size; k++)
        o->ptr[k] = pattern(o->id, k);
}

static bool intact(const live_obj *o, size_t size)
{
    for (size_t k = 0; k < size; k++)
        if (o->ptr[k] != pattern(o->id, k))
            return false;
    return true;
}

static bool overlaps_live(const model *m, const unsigned char *p)
{
    for (size_t i = 0; i < m->n; i++)
        if (p < m->live[i].ptr + m->size && m->live[i].ptr < p + m->size)
            return true;
    return false;
}

/* One allocation; false on a model violation. NULL is fine only with errno ENOMEM. */
static bool step_alloc(model *m)
{
    if (m->n == m->max)
        return true;
    errno = 0;
    unsigned char *p = strata_slab_alloc(m->cache);
    if (p == NULL) {
        m->failures++;
        return errno == ENOMEM;
    }
    if (((uintptr_t)p & (m->align - 1)) != 0 || overlaps_live(m, p))
        return false;
    live_obj o = {.ptr = p, .id = m->next_id++};
    fill(&o, m->size);
    m->live[m->n++] = o;
    return true;
}

static bool step_free(model *m, size_t k)
{
    live_obj o = m->live[k];
    if (!intact(&o, m->size))
        return false;
    m->live[k] = m->live[--m->n];
    return strata_slab_free(m->cache, o.ptr) == 0;
}

static bool stats_agree(const model *m)
{
    strata_slab_info i;
    strata_slab_cache_get_info(m->cache, &i);
    return i.active_objects == m->n && i.total_objects >= m->n &&
           i.total_slabs == i.full_slabs + i.partial_slabs + i.empty_slabs &&
           i.total_objects == i.total_slabs * i.objects_per_slab;
}

/* The random walk: waves that lean to allocation, then to freeing, so that
 * slabs go through full, partial and empty; a shrink now and then. */
static void run_steps(model *m, long steps)
{
    for (long s = 0; s < steps; s++) {
        bool grow_phase = (s / 500) % 2 == 0;
        uint64_t r = test_rand() % 100;
        bool ok;
        if (r == 0) {
            strata_slab_shrink(m->cache);
            ok = true;
        } else if (m->n == 0 || r < (grow_phase ? 70u : 35u)) {
            ok = step_alloc(m);
        } else {
            ok = step_free(m, test_rand() % m->n);
        }
        REQUIRE(ok);
        REQUIRE(strata_slab_cache_check(m->cache) == 0);
        REQUIRE(stats_agree(m));
    }
}

typedef struct config {
    size_t size, align;
    unsigned flags, keep_empty;
} config;

static const config configs[] = {
    {8, 0, 0, 0},
    {13, 0, STRATA_SLAB_POISON, 1},
    {24, 32, 0, 2},
    {100, 0, STRATA_SLAB_HWCACHE_ALIGN, 0},
    {256, 0, STRATA_SLAB_POISON, 0},
    {1000, 0, 0, 1},
    {3000, 0, STRATA_SLAB_THREADSAFE, 0},
};

static size_t promised_align(const config *c)
{
    size_t a = c->align > 8 ? c->align : 8;
    return (c->flags & STRATA_SLAB_HWCACHE_ALIGN) && a < 64 ? 64 : a;
}

/* Free every object, compare with an idle cache, shrink, destroy: the
 * source has every byte back. */
static void drain(model *m, wrap_source *w, const config *c, const strata_slab_info *idle)
{
    while (m->n > 0)
        REQUIRE(step_free(m, m->n - 1));
    REQUIRE(strata_slab_cache_check(m->cache) == 0);
    strata_slab_info i;
    strata_slab_cache_get_info(m->cache, &i);
    CHECK_EQ(i.active_objects, 0);
    CHECK_EQ(i.active_slabs, 0);
    CHECK_EQ(i.full_slabs + i.partial_slabs, 0);
    CHECK_EQ(i.empty_slabs, i.total_slabs);
    CHECK_EQ(i.bytes_held, w->bytes_out);
    size_t before = i.empty_slabs;
    CHECK_EQ(strata_slab_shrink(m->cache), before - MIN(before, (size_t)c->keep_empty));
    strata_slab_cache_get_info(m->cache, &i);
    CHECK_EQ(i.total_slabs, MIN(before, (size_t)c->keep_empty));
    CHECK_EQ(i.bytes_held, w->bytes_out);
    if (c->keep_empty == 0) { /* as idle as after create; the address table stays */
        CHECK_EQ(i.total_slabs, idle->total_slabs);
        CHECK_EQ(i.total_objects, idle->total_objects);
        CHECK_EQ(i.active_slabs, idle->active_slabs);
        CHECK_EQ(i.empty_slabs, idle->empty_slabs);
        CHECK_EQ(i.objects_per_slab, idle->objects_per_slab);
        CHECK_EQ(i.slab_bytes, idle->slab_bytes);
        CHECK_EQ(w->blocks_out, 2);
    }
    CHECK_EQ(strata_slab_cache_destroy(m->cache), 0);
    CHECK_EQ(w->bytes_out, 0);
    CHECK_EQ(w->blocks_out, 0);
}

static void run_config(const config *c, strata_page_source inner, long steps)
{
    wrap_source w;
    strata_slab_config cfg;
    strata_slab_config_init(&cfg, "model", c->size);
    cfg.align = c->align;
    cfg.flags = c->flags;
    cfg.keep_empty = c->keep_empty;
    cfg.source = wrap(&w, inner);
    model m = {.size = c->size, .align = promised_align(c), .max = 600};
    m.live = calloc(m.max, sizeof(live_obj));
    m.cache = strata_slab_cache_create_ex(&cfg);
    REQUIRE(m.live != NULL && m.cache != NULL);
    strata_slab_info idle;
    strata_slab_cache_get_info(m.cache, &idle);
    CHECK_EQ(idle.total_slabs, 0);
    CHECK_EQ(idle.bytes_held, w.bytes_out);
    run_steps(&m, steps);
    CHECK_EQ(m.failures, 0);
    drain(&m, &w, c, &idle);
    free(m.live);
}

TEST(model_os_source)
{
    test_seed("slab model, OS pages");
    for (size_t k = 0; k < ARRAY_LEN(configs); k++)
        run_config(&configs[k], strata_page_source_os(), test_steps(3000));
}

TEST(model_buddy_source)
{
    test_seed("slab model, buddy pages");
    buddy_arena a;
    REQUIRE(arena_open(&a, (size_t)16 << 20));
    size_t free_at_start = arena_free_bytes(&a);
    for (size_t k = 0; k < ARRAY_LEN(configs); k++) {
        run_config(&configs[k], strata_page_source_buddy(a.buddy), test_steps(3000));
        CHECK_EQ(arena_free_bytes(&a), free_at_start);
        CHECK_EQ(strata_buddy_check(a.buddy), 0);
    }
    arena_close(&a);
}

/* A buddy too small for the demand: allocation fails with ENOMEM now and
 * then and the cache stays consistent. */
TEST(model_small_buddy_runs_out)
{
    test_seed("slab model, small buddy");
    buddy_arena a;
    REQUIRE(arena_open(&a, (size_t)128 << 10));
    size_t free_at_start = arena_free_bytes(&a);
    wrap_source w;
    strata_slab_config cfg;
    strata_slab_config_init(&cfg, "tight", 1000);
    cfg.keep_empty = 0;
    cfg.source = wrap(&w, strata_page_source_buddy(a.buddy));
    model m = {.size = 1000, .align = 8, .max = 600};
    m.live = calloc(m.max, sizeof(live_obj));
    m.cache = strata_slab_cache_create_ex(&cfg);
    REQUIRE(m.live != NULL && m.cache != NULL);
    strata_slab_info idle;
    strata_slab_cache_get_info(m.cache, &idle);
    run_steps(&m, test_steps(3000));
    CHECK(m.failures > 0);
    config c = {1000, 0, 0, 0};
    drain(&m, &w, &c, &idle);
    free(m.live);
    CHECK_EQ(arena_free_bytes(&a), free_at_start);
    arena_close(&a);
}

/* A source that fails at random: every failure is a NULL with ENOMEM, the
 * cache stays consistent, live objects survive. */
TEST(model_random_source_failures)
{
    test_seed("slab model, failing source");
    static const config c = {200, 0, STRATA_SLAB_POISON, 0};
    wrap_source w;
    strata_slab_config cfg;
    strata_slab_config_init(&cfg, "flaky", c.size);
    cfg.flags = c.flags;
    cfg.keep_empty = 0;
    cfg.source = wrap(&w, strata_page_source_os());
    model m = {.size = c.size, .align = 8, .max = 600};
    m.live = calloc(m.max, sizeof(live_obj));
    m.cache = strata_slab_cache_create_ex(&cfg);
    REQUIRE(m.live != NULL && m.cache != NULL);
    strata_slab_info idle;
    strata_slab_cache_get_info(m.cache, &idle);
    w.fail_one_in = 3;
    /* not scaled down: at a quarter of the steps the cache may ask its
     * source for pages only a dozen times, and for one seed none of them
     * failed; at 4000 steps it asks 40-60 times ((2/3)^40 < 10^-7) */
    run_steps(&m, 4000);
    CHECK(w.failures > 0 && m.failures > 0);
    w.fail_one_in = 0;
    drain(&m, &w, &c, &idle);
    free(m.live);
}

/* The source fails after N calls, for every N up to the point where the
 * address table must grow: each failure leaves the cache consistent and
 * the bytes out equal to what the cache says it holds. */
TEST(source_fails_after_n_calls)
{
    for (size_t n = 0; n < 6; n++) {
        wrap_source w;
        strata_slab_config cfg;
        strata_slab_config_init(&cfg, "fail_after", 64);
        cfg.keep_empty = 0;
        cfg.source = wrap(&w, strata_page_source_os());
        w.fail_after = n;
        errno = 0;
        strata_slab_cache *c = strata_slab_cache_create_ex(&cfg);
        if (n == 0) {
            CHECK(c == NULL && errno == ENOMEM);
            CHECK_EQ(w.bytes_out, 0);
            continue;
        }
        REQUIRE(c != NULL);
        void *objs[4096];
        size_t got = 0;
        while (got < ARRAY_LEN(objs) && (objs[got] = strata_slab_alloc(c)) != NULL)
            got++;
        CHECK(got < ARRAY_LEN(objs));
        CHECK_EQ(errno, ENOMEM);
        CHECK_EQ(strata_slab_cache_check(c), 0);
        strata_slab_info i;
        strata_slab_cache_get_info(c, &i);
        CHECK_EQ(i.active_objects, got);
        CHECK_EQ(i.bytes_held, w.bytes_out);
        /* calls: 1 descriptor, 2 first slab, 3 address table, 4.. more slabs */
        size_t slabs = n <= 2 ? 0 : n - 2;
        CHECK_EQ(i.total_slabs, slabs);
        CHECK_EQ(got, slabs * i.objects_per_slab);
        for (size_t k = 0; k < got; k++)
            CHECK_EQ(strata_slab_free(c, objs[k]), 0);
        w.fail_after = SIZE_MAX; /* the source recovers: so does the cache */
        void *p = strata_slab_alloc(c);
        CHECK(p != NULL);
        CHECK_EQ(strata_slab_free(c, p), 0);
        CHECK_EQ(strata_slab_cache_check(c), 0);
        strata_slab_shrink(c);
        CHECK_EQ(strata_slab_cache_destroy(c), 0);
        CHECK_EQ(w.bytes_out, 0);
    }
}
