/* SPDX-License-Identifier: MIT */
/*
 * Randomized model test of TLSF: thousands of random malloc, memalign,
 * realloc and free steps, with pools added and removed along the way,
 * against a reference array of live blocks. After every step check() is 0
 * and the counts agree; every new block is aligned as asked, lies inside
 * one pool, holds its size and overlaps no live block; every block's bytes
 * (a pattern from its id) survive until it is freed, and a realloc keeps
 * the common prefix. Freeing everything and removing the added pools gives
 * back exactly the initial statistics.
 */
#include <errno.h>

#include "strata/tlsf.h"
#include "test.h"

#define MAX_LIVE 1200
#define EXTRA_POOLS 4

typedef struct model_block {
    unsigned char *ptr;
    size_t size;
    size_t align;
    uint64_t id;
} model_block;

typedef struct model {
    strata_tlsf *t;
    model_block live[MAX_LIVE];
    size_t n;
    uint64_t next_id;
    void *extra[EXTRA_POOLS]; /* handles of added pools, NULL if not added */
    size_t max_size;
} model;

static model M;
static _Alignas(16) unsigned char main_arena[768 << 10];
static _Alignas(16) unsigned char extra_arena[EXTRA_POOLS][128 << 10];

static unsigned char pattern(uint64_t id, size_t i)
{
    return (unsigned char)(id * 151 + i * 13 + 7);
}

static void fill(const model_block *b, size_t from)
{
    for (size_t i = from; i < b->size; i++)
        b->ptr[i] = pattern(b->id, i);
}

static int intact(const model_block *b, size_t upto)
{
    for (size_t i = 0; i < upto; i++)
        if (b->ptr[i] != pattern(b->id, i))
            return 0;
    return 1;
}

static int inside_a_pool(const unsigned char *p, size_t size)
{
    if (p >= main_arena && p + size <= main_arena + sizeof(main_arena))
        return 1;
    for (int i = 0; i < EXTRA_POOLS; i++)
        if (M.extra[i] && p >= extra_arena[i] &&
            p + size <= extra_arena[i] + sizeof(extra_arena[i]))
            return 1;
    return 0;
}

/* A new or moved block is sound and overlaps no other live block. */
static int block_ok(const unsigned char *p, size_t size, size_t align, size_t skip)
{
    size_t usable = strata_tlsf_usable_size(M.t, p);
    int ok =
        (uintptr_t)p % (align < 16 ? 16 : align) == 0 && usable >= size && inside_a_pool(p, usable);
    for (size_t i = 0; i < M.n && ok; i++) {
        const model_block *b = &M.live[i];
        if (i != skip && p < b->ptr + b->size && b->ptr < p + size)
            ok = 0;
    }
    CHECK(ok);
    return ok;
}

static size_t random_size(void)
{
    unsigned r = (unsigned)test_rand_range(0, 99);
    if (r < 60)
        return test_rand_range(1, 128);
    if (r < 90)
        return test_rand_range(129, 2048);
    if (r < 98)
        return test_rand_range(2049, 32768);
    return test_rand_range(32769, M.max_size);
}

static int add(unsigned char *p, size_t size, size_t align)
{
    if (p == NULL) {
        CHECK_EQ(errno, ENOMEM);
        return errno == ENOMEM;
    }
    if (!block_ok(p, size, align, SIZE_MAX))
        return 0;
    if (M.n == MAX_LIVE)
        return strata_tlsf_free(M.t, p) == 0;
    model_block *b = &M.live[M.n++];
    *b = (model_block){p, size, align, M.next_id++};
    fill(b, 0);
    return 1;
}

static int step_malloc(void)
{
    size_t size = random_size();
    return add(strata_tlsf_malloc(M.t, size), size, 16);
}

static int step_memalign(void)
{
    size_t align = (size_t)1 << test_rand_range(3, 12);
    size_t size = random_size();
    return add(strata_tlsf_memalign(M.t, align, size), size, align);
}

static int step_free(void)
{
    if (M.n == 0)
        return 1;
    size_t i = test_rand_range(0, M.n - 1);
    model_block *b = &M.live[i];
    int ok = intact(b, b->size);
    CHECK(ok);
    int rc = strata_tlsf_free(M.t, b->ptr);
    CHECK_EQ(rc, 0);
    *b = M.live[--M.n];
    return ok && rc == 0;
}

static int step_realloc(void)
{
    if (M.n == 0)
        return 1;
    model_block *b = &M.live[test_rand_range(0, M.n - 1)];
    size_t size = test_rand_range(0, 3) == 0 ? b->size / 2 + 1 : random_size();
    unsigned char *q = strata_tlsf_realloc(M.t, b->ptr, size);
    if (q == NULL) { /* the old block must be untouched */
        CHECK_EQ(errno, ENOMEM);
        return errno == ENOMEM && intact(b, b->size);
    }
    size_t keep = size < b->size ? size : b->size;
    b->ptr = q;
    int ok = intact(b, keep) && block_ok(q, size, 16, (size_t)(b - M.live));
    CHECK(ok);
    b->align = 16;
    b->size = size;
    fill(b, keep);
    return ok;
}

/* Add a free pool slot's arena, or remove an added pool (BUSY is fine). */
static int step_pools(void)
{
    int i = (int)test_rand_range(0, EXTRA_POOLS - 1);
    if (M.extra[i] == NULL) {
        size_t off = test_rand_range(0, 40);
        M.extra[i] = strata_tlsf_add_pool(M.t, extra_arena[i] + off, sizeof(extra_arena[i]) - off);
        CHECK(M.extra[i] != NULL);
        return M.extra[i] != NULL;
    }
    int rc = strata_tlsf_remove_pool(M.t, M.extra[i]);
    if (rc == 0)
        M.extra[i] = NULL;
    CHECK(rc == 0 || rc == STRATA_ERR_BUSY);
    return rc == 0 || rc == STRATA_ERR_BUSY;
}

static int one_step(size_t target)
{
    unsigned r = (unsigned)test_rand_range(0, 999);
    if (r < 10)
        return step_pools();
    if (r < 150)
        return step_realloc();
    bool grow = M.n < target ? r < 700 : r < 350;
    if (!grow)
        return step_free();
    return r < 280 ? step_memalign() : step_malloc();
}

static size_t live_bytes_check(void)
{
    size_t used = 0;
    for (size_t i = 0; i < M.n; i++)
        used += strata_tlsf_usable_size(M.t, M.live[i].ptr);
    return used;
}

static void run(long steps)
{
    size_t target = 100;
    for (long s = 0; s < steps; s++) {
        if (s % 500 == 0)
            target = test_rand_range(0, MAX_LIVE);
        int ok = one_step(target);
        int bad = strata_tlsf_check(M.t);
        strata_tlsf_info info;
        strata_tlsf_get_info(M.t, &info);
        CHECK_EQ(bad, 0);
        CHECK_EQ(info.used_blocks, M.n);
        if (!ok || bad != 0 || info.used_blocks != M.n) {
            fprintf(stderr, "  failed at step %ld\n", s);
            return;
        }
        if (s % 499 == 0) {
            CHECK_EQ(live_bytes_check(), info.used_bytes);
            for (size_t i = 0; i < M.n; i++)
                REQUIRE(intact(&M.live[i], M.live[i].size));
        }
    }
}

static void drain(const strata_tlsf_info *initial)
{
    while (M.n > 0)
        REQUIRE(step_free());
    for (int i = 0; i < EXTRA_POOLS; i++)
        if (M.extra[i] != NULL) {
            CHECK_EQ(strata_tlsf_remove_pool(M.t, M.extra[i]), 0);
            M.extra[i] = NULL;
        }
    strata_tlsf_info final;
    strata_tlsf_get_info(M.t, &final);
    CHECK(memcmp(&final, initial, sizeof(final)) == 0);
    CHECK_EQ(final.free_blocks, 1);
    CHECK_EQ(strata_tlsf_check(M.t), 0);
}

static void run_model(size_t arena_bytes, size_t max_size, long steps)
{
    memset(&M, 0, sizeof(M));
    size_t off = test_rand_range(0, 15);
    M.t = strata_tlsf_create(main_arena + off, arena_bytes - off);
    REQUIRE(M.t != NULL);
    M.max_size = max_size;
    strata_tlsf_info initial;
    strata_tlsf_get_info(M.t, &initial);
    run(steps);
    drain(&initial);
}

TEST(model_mixed_sizes_several_pools)
{
    test_seed("tlsf mixed");
    run_model(sizeof(main_arena), 100000, test_steps(20000));
}

/* A small main pool: allocation failures, pool additions and moves by
 * realloc are frequent. */
TEST(model_tight_memory)
{
    test_seed("tlsf tight");
    run_model(96 << 10, 40000, test_steps(20000));
}
