/* SPDX-License-Identifier: MIT */
/*
 * Randomized model test of the boundary-tag heap, run for every policy:
 * thousands of alloc / aligned alloc / free / realloc steps against a model
 * of the live blocks. After every step: check() returns 0, the statistics
 * agree with the model, and the step's block is aligned, inside the heap,
 * overlaps no other live block and holds its pattern. Every block's
 * contents are verified when it is freed or resized and in periodic
 * sweeps. A failed unaligned request must mean that no free block could
 * hold it (every policy finds a fit when one exists). Freeing everything
 * returns the heap to its initial single free block.
 */
#include <errno.h>

#include "bits.h"
#include "strata/heap.h"
#include "test.h"

#define REGION (192 * 1024)
#define MAX_LIVE 400

struct live {
    unsigned char *p;
    size_t size;
    size_t align;
    unsigned id;
};

static _Alignas(4096) unsigned char region[REGION];
static struct live live[MAX_LIVE];
static int nlive;
static unsigned next_id;
static long failures, peak_live, peak_free_blocks; /* how hard the run pushed */

static unsigned char pattern(unsigned id, size_t i) { return (unsigned char)(id * 167u + i * 13u + (i >> 9)); }

static void fill(const struct live *l, size_t from)
{
    for (size_t i = from; i < l->size; i++)
        l->p[i] = pattern(l->id, i);
}

static bool intact(const struct live *l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (l->p[i] != pattern(l->id, i))
            return false;
    return true;
}

/* Sizes skewed to small, with some medium and a few large. */
static size_t random_size(void)
{
    uint64_t r = test_rand_range(0, 99);
    if (r < 60)
        return test_rand_range(1, 64);
    if (r < 92)
        return test_rand_range(65, 1024);
    return test_rand_range(1025, 12000);
}

static bool overlaps_any(const unsigned char *p, size_t size, int skip)
{
    for (int i = 0; i < nlive; i++)
        if (i != skip && p < live[i].p + live[i].size && live[i].p < p + size)
            return true;
    return false;
}

/* Is the new block sound: aligned, inside the region, apart from the rest? */
static bool placed_well(const strata_heap *h, const struct live *l, int self)
{
    size_t a = l->align < 16 ? 16 : l->align;
    return (uintptr_t)l->p % a == 0 && l->p >= region && l->p + l->size <= region + REGION &&
           strata_heap_usable_size(h, l->p) >= l->size && !overlaps_any(l->p, l->size, self);
}

static bool step_alloc(strata_heap *h)
{
    if (nlive == MAX_LIVE)
        return true;
    struct live l = {NULL, random_size(), 0, next_id++};
    bool aligned = test_rand_range(0, 3) == 0;
    l.align = aligned ? (size_t)1 << test_rand_range(0, 12) : 16;
    errno = 0;
    l.p = aligned ? strata_heap_alloc_aligned(h, l.align, l.size) : strata_heap_alloc(h, l.size);
    if (l.p == NULL) {
        failures++;
        strata_heap_info info;
        strata_heap_get_info(h, &info);
        /* A plain request may only fail when no free block can hold it. */
        return errno == ENOMEM && (aligned || info.largest_alloc < l.size);
    }
    if (!placed_well(h, &l, -1))
        return false;
    fill(&l, 0);
    live[nlive++] = l;
    return true;
}

static bool step_free(strata_heap *h)
{
    if (nlive == 0)
        return true;
    int i = (int)test_rand_range(0, (uint64_t)nlive - 1);
    if (!intact(&live[i], live[i].size) || strata_heap_free(h, live[i].p) != 0)
        return false;
    live[i] = live[--nlive];
    return true;
}

static bool step_realloc(strata_heap *h)
{
    if (nlive == 0)
        return true;
    int i = (int)test_rand_range(0, (uint64_t)nlive - 1);
    struct live *l = &live[i];
    size_t old = l->size, size = test_rand_range(0, 1) ? random_size() : old / 2 + 1;
    if (!intact(l, old))
        return false;
    errno = 0;
    unsigned char *q = strata_heap_realloc(h, l->p, size);
    if (q == NULL) /* may only fail for lack of memory, and then changes nothing */
        return errno == ENOMEM && size > old && intact(l, old);
    if (q != l->p)
        l->align = 16; /* a moved block is only 16-byte aligned */
    l->p = q;
    l->size = size;
    if (!intact(l, ST_MIN(old, size)) || !placed_well(h, l, i))
        return false;
    fill(l, ST_MIN(old, size));
    return true;
}

static bool sweep(void)
{
    for (int i = 0; i < nlive; i++)
        if (!intact(&live[i], live[i].size))
            return false;
    return true;
}

/* The statistics agree with the model. */
static bool stats_agree(const strata_heap *h)
{
    strata_heap_info info;
    strata_heap_get_info(h, &info);
    size_t requested = 0;
    for (int i = 0; i < nlive; i++)
        requested += live[i].size;
    return info.requested_bytes == requested && info.used_blocks == (size_t)nlive &&
           info.held_bytes + info.free_bytes == info.total_bytes &&
           info.internal_fragmentation == info.held_bytes - requested &&
           info.largest_free <= info.free_bytes;
}

static bool one_step(strata_heap *h, long s)
{
    uint64_t r = test_rand_range(0, 99);
    bool ok = r < 48 ? step_alloc(h) : r < 76 ? step_free(h) : step_realloc(h);
    if (s % 128 == 0)
        ok = ok && sweep();
    return ok;
}

static void run_policy(strata_heap_policy policy, long steps)
{
    printf("  policy %s\n", strata_heap_policy_name(policy));
    memset(region, 0, sizeof(region));
    nlive = 0;
    failures = peak_live = peak_free_blocks = 0;
    /* An odd start and length: the heap aligns them itself. */
    strata_heap *h = strata_heap_create(region + 8, REGION - 24, policy);
    REQUIRE(h != NULL);
    strata_heap_info initial, final;
    strata_heap_get_info(h, &initial);
    for (long s = 0; s < steps; s++) {
        bool ok = one_step(h, s);
        int bad = strata_heap_check(h);
        if (!ok || bad != 0 || !stats_agree(h))
            printf("  step %ld: ok %d, check %d, %d live\n", s, ok, bad, nlive);
        REQUIRE(ok && bad == 0 && stats_agree(h));
        strata_heap_get_info(h, &final);
        peak_live = ST_MAX(peak_live, nlive);
        peak_free_blocks = ST_MAX(peak_free_blocks, (long)final.free_blocks);
    }
    printf("  %ld steps: peak %ld live, peak %ld free blocks, %ld failed allocations\n", steps,
           peak_live, peak_free_blocks, failures);
    while (nlive > 0) {
        REQUIRE(step_free(h));
        REQUIRE(strata_heap_check(h) == 0);
    }
    strata_heap_get_info(h, &final);
    CHECK_EQ(final.free_blocks, 1);
    CHECK_EQ(final.used_blocks, 0);
    CHECK_EQ(final.free_bytes, initial.free_bytes);
    CHECK_EQ(final.largest_free, initial.largest_free);
    CHECK_EQ(final.total_bytes, initial.total_bytes);
    CHECK_EQ(final.requested_bytes, 0);
    CHECK_EQ(final.held_bytes, 0);
    CHECK_EQ(final.internal_fragmentation, 0);
    CHECK_EQ(final.largest_alloc, initial.largest_alloc);
    CHECK(final.external_fragmentation == 0.0);
}

TEST(model_first_fit)
{
    test_seed("first fit");
    run_policy(STRATA_HEAP_FIRST_FIT, test_steps(20000));
}

TEST(model_next_fit)
{
    test_seed("next fit");
    run_policy(STRATA_HEAP_NEXT_FIT, test_steps(20000));
}

TEST(model_best_fit)
{
    test_seed("best fit");
    run_policy(STRATA_HEAP_BEST_FIT, test_steps(20000));
}

TEST(model_worst_fit)
{
    test_seed("worst fit");
    run_policy(STRATA_HEAP_WORST_FIT, test_steps(20000));
}

TEST(model_segregated)
{
    test_seed("segregated");
    run_policy(STRATA_HEAP_SEGREGATED, test_steps(20000));
}

/* Small blocks only, in a small heap that is full most of the time: the
 * merge, split and no-split paths run thousands of times. */
TEST(model_small_and_full)
{
    test_seed("small and full");
    static const strata_heap_policy all[] = {
        STRATA_HEAP_FIRST_FIT, STRATA_HEAP_NEXT_FIT, STRATA_HEAP_BEST_FIT,
        STRATA_HEAP_WORST_FIT, STRATA_HEAP_SEGREGATED,
    };
    for (size_t k = 0; k < ST_ARRAY_LEN(all); k++) {
        memset(region, 0, 8192);
        nlive = 0;
        strata_heap *h = strata_heap_create(region, 8192, all[k]);
        REQUIRE(h != NULL);
        for (long s = 0; s < test_steps(4000); s++) {
            struct live l = {NULL, test_rand_range(1, 120), 16, next_id++};
            bool ok = true;
            if (test_rand_range(0, 1) && nlive < MAX_LIVE) {
                errno = 0;
                l.p = strata_heap_alloc(h, l.size);
                ok = l.p != NULL ? placed_well(h, &l, -1) : errno == ENOMEM;
                if (l.p != NULL) {
                    fill(&l, 0);
                    live[nlive++] = l;
                }
            } else {
                ok = test_rand_range(0, 2) ? step_free(h) : step_realloc(h);
            }
            REQUIRE(ok && strata_heap_check(h) == 0 && stats_agree(h));
        }
        while (nlive > 0)
            REQUIRE(step_free(h));
        strata_heap_info info;
        strata_heap_get_info(h, &info);
        CHECK_EQ(info.free_blocks, 1);
        CHECK_EQ(info.free_bytes, info.total_bytes);
    }
}
