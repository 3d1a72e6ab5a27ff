/* SPDX-License-Identifier: MIT */
/*
 * Randomized model test of the fixed-size pool: thousands of random
 * alloc/free/reset steps against a reference array of live objects. After
 * every step: check() is 0 and the live count agrees; every new object is
 * aligned, inside the pool and overlaps no live one; every object's bytes
 * (a pattern from its id) survive until it is freed. At the end, freeing
 * everything leaves no live object and every slot reusable without growth.
 */
#include <errno.h>

#include "strata/pool.h"
#include "test.h"

#define MAX_LIVE 1500

typedef struct model_obj {
    unsigned char *ptr;
    uint64_t id;
} model_obj;

typedef struct model {
    strata_pool *pool;
    size_t size, align, stride, max;
    bool fixed;
    model_obj live[MAX_LIVE];
    size_t n;
    uint64_t next_id;
    long source_fail_pct; /* the page source fails this often */
    long source_failures;
} model;

static model M;

static void *flaky_alloc(void *ctx, size_t size, size_t align)
{
    strata_page_source *os = ctx;
    if ((long)test_rand_range(0, 99) < M.source_fail_pct) {
        M.source_failures++;
        return NULL;
    }
    return os->alloc(os->ctx, size, align);
}

static void flaky_free(void *ctx, void *block, size_t size)
{
    strata_page_source *os = ctx;
    os->free(os->ctx, block, size);
}

static unsigned char pattern(uint64_t id, size_t i)
{
    return (unsigned char)(id * 131 + i * 7 + 1);
}

static void fill(const model_obj *o, size_t size)
{
    for (size_t i = 0; i < size; i++)
        o->ptr[i] = pattern(o->id, i);
}

static int intact(const model_obj *o, size_t size)
{
    for (size_t i = 0; i < size; i++)
        if (o->ptr[i] != pattern(o->id, i))
            return 0;
    return 1;
}

static int overlaps_live(const unsigned char *p)
{
    for (size_t i = 0; i < M.n; i++) {
        const unsigned char *q = M.live[i].ptr;
        if (p < q + M.stride && q < p + M.stride)
            return 1;
    }
    return 0;
}

/* One allocation; NULL is allowed only for a known reason. */
static int step_alloc(void)
{
    long failures = M.source_failures;
    unsigned char *p = strata_pool_alloc(M.pool);
    if (p == NULL) {
        strata_pool_info info;
        strata_pool_get_info(M.pool, &info);
        int reason = (M.max && M.n == M.max) || M.source_failures > failures ||
                     (M.fixed && M.n == info.capacity);
        CHECK(reason);
        CHECK_EQ(errno, ENOMEM);
        return reason;
    }
    CHECK_EQ((uintptr_t)p % M.align, 0);
    CHECK(strata_pool_owns(M.pool, p));
    CHECK(!overlaps_live(p));
    if (M.n == MAX_LIVE) {
        CHECK_EQ(strata_pool_free(M.pool, p), 0);
        return 1;
    }
    model_obj *o = &M.live[M.n++];
    o->ptr = p;
    o->id = M.next_id++;
    fill(o, M.size);
    return 1;
}

static int step_free(void)
{
    if (M.n == 0)
        return 1;
    size_t i = test_rand_range(0, M.n - 1);
    int ok = intact(&M.live[i], M.size);
    CHECK(ok);
    int rc = strata_pool_free(M.pool, M.live[i].ptr);
    CHECK_EQ(rc, 0);
    M.live[i] = M.live[--M.n];
    return ok && rc == 0;
}

static void step_reset(void)
{
    strata_pool_reset(M.pool);
    M.n = 0;
}

static int all_intact(void)
{
    for (size_t i = 0; i < M.n; i++)
        if (!intact(&M.live[i], M.size))
            return 0;
    return 1;
}

/* Phases: grow toward a target population, shrink, and once in a while
 * a reset, so free lists and fresh chunks interleave. */
static int run_steps(long steps)
{
    size_t target = 50;
    for (long s = 0; s < steps; s++) {
        if (s % 1000 == 0)
            target = test_rand_range(1, MAX_LIVE - 1);
        unsigned r = (unsigned)test_rand_range(0, 999);
        int ok;
        if (r == 0)
            step_reset(), ok = 1;
        else if (M.n < target ? r < 700 : r < 300)
            ok = step_alloc();
        else
            ok = step_free();
        strata_pool_info info;
        strata_pool_get_info(M.pool, &info);
        int bad = strata_pool_check(M.pool);
        CHECK_EQ(bad, 0);
        CHECK_EQ(info.objects_live, M.n);
        if (!ok || bad != 0 || info.objects_live != M.n) {
            fprintf(stderr, "  failed at step %ld\n", s);
            return 0;
        }
        if (s % 997 == 0 && !all_intact()) {
            CHECK(0);
            return 0;
        }
    }
    return 1;
}

/* Free everything; then the pool is empty and every slot can be handed out
 * again without a new chunk. */
static void drain_and_refill(void)
{
    while (M.n > 0)
        REQUIRE(step_free());
    strata_pool_info info;
    strata_pool_get_info(M.pool, &info);
    CHECK_EQ(info.objects_live, 0);
    CHECK_EQ(strata_pool_check(M.pool), 0);
    size_t chunks = info.chunks;
    M.source_fail_pct = 100; /* a new chunk now would fail */
    size_t limit = M.max ? M.max : info.capacity;
    for (size_t i = 0; i < limit; i++)
        REQUIRE(strata_pool_alloc(M.pool) != NULL);
    strata_pool_get_info(M.pool, &info);
    CHECK_EQ(info.chunks, chunks);
    CHECK_EQ(info.objects_live, limit);
    CHECK_EQ(strata_pool_check(M.pool), 0);
    strata_pool_reset(M.pool);
    strata_pool_get_info(M.pool, &info);
    CHECK_EQ(info.objects_live, 0);
    CHECK_EQ(strata_pool_check(M.pool), 0);
}

static strata_page_source os_source;

static void run_growing(size_t size, size_t align, size_t per_chunk, size_t max, long fail_pct)
{
    memset(&M, 0, sizeof(M));
    os_source = strata_page_source_os();
    strata_pool_config cfg = {
        .object_size = size,
        .align = align,
        .objects_per_chunk = per_chunk,
        .max_objects = max,
        .source = {.alloc = flaky_alloc, .free = flaky_free, .ctx = &os_source},
    };
    M.pool = strata_pool_create(&cfg);
    REQUIRE(M.pool != NULL);
    strata_pool_info info;
    strata_pool_get_info(M.pool, &info);
    M.size = size;
    M.align = info.align;
    M.stride = info.stride;
    M.max = max;
    CHECK(M.align >= (align ? align : 16));
    M.source_fail_pct = fail_pct;
    if (run_steps(test_steps(50000)))
        drain_and_refill();
    strata_pool_destroy(M.pool);
}

TEST(model_growing_small_objects)
{
    test_seed("pool small");
    run_growing(24, 8, 32, 0, 0);
}

TEST(model_growing_odd_size_flaky_source)
{
    test_seed("pool flaky");
    run_growing(100, 32, 16, 0, 20);
}

TEST(model_growing_with_maximum)
{
    test_seed("pool max");
    run_growing(64, 0, 0, 700, 0);
}

TEST(model_growing_large_objects)
{
    test_seed("pool large");
    run_growing(3000, 64, 0, 0, 0);
}

TEST(model_fixed_region)
{
    static _Alignas(16) unsigned char region[48 * 1024];
    test_seed("pool fixed");
    memset(&M, 0, sizeof(M));
    size_t off = test_rand_range(0, 15);
    M.pool = strata_pool_create_in(region + off, sizeof(region) - off, 40, 16);
    REQUIRE(M.pool != NULL);
    strata_pool_info info;
    strata_pool_get_info(M.pool, &info);
    M.size = 40;
    M.align = 16;
    M.stride = info.stride;
    M.fixed = true;
    if (run_steps(test_steps(50000)))
        drain_and_refill();
    strata_pool_destroy(M.pool);
}
