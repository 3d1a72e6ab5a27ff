/* SPDX-License-Identifier: MIT */
/*
 * Bad-input tests of the boundary-tag heap: one test per kind of bad
 * argument (create, free, alloc, aligned alloc, calloc, realloc,
 * usable_size), each asserting the documented error AND that the heap is
 * unchanged afterwards (check() is 0 and the statistics are the same);
 * then corruption injection: damaged headers, footers, flags, slack and
 * free-list links, each of which check() must report (and stop reporting
 * once repaired), and free must refuse to merge across.
 *
 * The tests rely on the layout documented in strata/heap.h: the header
 * is the 16 bytes below the pointer (size|flags as a size_t, then the
 * 32-bit slack and check word), the footer the 8 bytes after the usable
 * bytes, and a free block's first two payload words its list links.
 */
#include <errno.h>

#include "bits.h"
#include "strata/heap.h"
#include "test.h"

#define REGION 16384
#define OVH STRATA_HEAP_OVERHEAD

static _Alignas(4096) unsigned char region[REGION];

static const strata_heap_policy all_policies[] = {
    STRATA_HEAP_FIRST_FIT, STRATA_HEAP_NEXT_FIT, STRATA_HEAP_BEST_FIT,
    STRATA_HEAP_WORST_FIT, STRATA_HEAP_SEGREGATED,
};

struct scene {
    strata_heap *h;
    unsigned char *p[6]; /* 100-byte blocks (128-byte blocks); p[1], p[3] freed */
    strata_heap_info info;
};

/* Six blocks, the second and fourth freed: free blocks between used ones. */
static struct scene setup(strata_heap_policy policy)
{
    struct scene s;
    memset(region, 0, sizeof(region));
    s.h = strata_heap_create(region, REGION, policy);
    for (int i = 0; i < 6; i++) {
        s.p[i] = strata_heap_alloc(s.h, 100);
        memset(s.p[i], 0x11 * (i + 1), 100);
    }
    CHECK_EQ(strata_heap_free(s.h, s.p[1]), 0);
    CHECK_EQ(strata_heap_free(s.h, s.p[3]), 0);
    strata_heap_get_info(s.h, &s.info);
    CHECK_EQ(strata_heap_check(s.h), 0);
    return s;
}

/* The heap is as it was: check() clean, the same statistics, the live
 * blocks' contents untouched. */
static bool unchanged(const struct scene *s)
{
    strata_heap_info now;
    strata_heap_get_info(s->h, &now);
    bool ok = strata_heap_check(s->h) == 0 && now.free_blocks == s->info.free_blocks &&
              now.free_bytes == s->info.free_bytes && now.used_blocks == s->info.used_blocks &&
              now.requested_bytes == s->info.requested_bytes &&
              now.largest_free == s->info.largest_free;
    for (int i = 0; i < 6; i += 2)
        for (int j = 0; j < 100; j++)
            ok &= s->p[i][j] == (unsigned char)(0x11 * (i + 1));
    return ok;
}

static size_t *header_sf(unsigned char *p) { return (size_t *)(p - 16); }
static uint32_t *header_slack(unsigned char *p) { return (uint32_t *)(p - 8); }
static uint32_t *header_check(unsigned char *p) { return (uint32_t *)(p - 4); }
static size_t *footer(unsigned char *p, size_t usable) { return (size_t *)(p + usable); }
static void **link_next(unsigned char *p) { return (void **)p; }
static void **link_prev(unsigned char *p) { return (void **)p + 1; }

/* ---- create ------------------------------------------------------------- */

TEST(create_rejects_bad_arguments)
{
    errno = 0;
    CHECK(strata_heap_create(NULL, REGION, STRATA_HEAP_FIRST_FIT) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(strata_heap_create(region, REGION, (strata_heap_policy)5) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(strata_heap_create(region, REGION, (strata_heap_policy)-1) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(strata_heap_create(region, SIZE_MAX, STRATA_HEAP_FIRST_FIT) == NULL); /* wraps */
    CHECK_EQ(errno, EINVAL);
}

TEST(create_rejects_small_regions)
{
    for (size_t k = 0; k < ST_ARRAY_LEN(all_policies); k++) {
        strata_heap_policy p = all_policies[k];
        static const size_t sizes[] = {0, 1, 16, 64};
        for (size_t i = 0; i < ST_ARRAY_LEN(sizes); i++) {
            errno = 0;
            CHECK(strata_heap_create(region, sizes[i], p) == NULL);
            CHECK_EQ(errno, ERANGE);
        }
        /* The smallest region: a control structure (which for SEGREGATED
         * grows with the region) and one minimum block. */
        size_t exact = STRATA_HEAP_MIN_BLOCK, next;
        while ((next = strata_heap_control_size(exact, p) + STRATA_HEAP_MIN_BLOCK) != exact)
            exact = next;
        errno = 0;
        CHECK(strata_heap_create(region, exact - 1, p) == NULL);
        CHECK_EQ(errno, ERANGE);
        strata_heap *h = strata_heap_create(region, exact, p);
        CHECK(h != NULL);
        CHECK_EQ(strata_heap_check(h), 0);
        CHECK(strata_heap_alloc(h, STRATA_HEAP_MIN_BLOCK - OVH) != NULL);
        CHECK(strata_heap_alloc(h, 1) == NULL);
        CHECK_EQ(strata_heap_check(h), 0);
    }
}

/* ---- free --------------------------------------------------------------- */

TEST(free_null_is_a_no_op)
{
    struct scene s = setup(STRATA_HEAP_FIRST_FIT);
    CHECK_EQ(strata_heap_free(s.h, NULL), 0);
    CHECK(unchanged(&s));
}

TEST(free_with_bad_handle)
{
    struct scene s = setup(STRATA_HEAP_FIRST_FIT);
    static _Alignas(16) unsigned char junk[512];
    CHECK_EQ(strata_heap_free(NULL, s.p[0]), STRATA_ERR_INVALID);
    CHECK_EQ(strata_heap_free((strata_heap *)junk, s.p[0]), STRATA_ERR_INVALID);
    CHECK_EQ(strata_heap_check(NULL), 1);
    CHECK_EQ(strata_heap_check((strata_heap *)junk), 1);
    errno = 0;
    CHECK(strata_heap_alloc((strata_heap *)junk, 10) == NULL);
    CHECK_EQ(errno, EINVAL);
    strata_heap_info info;
    strata_heap_get_info(NULL, &info);
    CHECK_EQ(info.total_bytes, 0);
    CHECK(unchanged(&s));
}

TEST(free_foreign_pointer)
{
    for (size_t k = 0; k < ST_ARRAY_LEN(all_policies); k++) {
        struct scene s = setup(all_policies[k]);
        int on_stack = 0;
        static unsigned char elsewhere[64];
        CHECK_EQ(strata_heap_free(s.h, &on_stack), STRATA_ERR_FOREIGN);
        CHECK_EQ(strata_heap_free(s.h, elsewhere), STRATA_ERR_FOREIGN);
        CHECK_EQ(strata_heap_free(s.h, region + REGION), STRATA_ERR_FOREIGN);
        CHECK_EQ(strata_heap_free(s.h, (void *)((uintptr_t)region - 16)), STRATA_ERR_FOREIGN);
        CHECK(unchanged(&s));
    }
}

TEST(free_interior_pointer)
{
    for (size_t k = 0; k < ST_ARRAY_LEN(all_policies); k++) {
        struct scene s = setup(all_policies[k]);
        static const int offsets[] = {1, 8, 15, 16, 32, 48, 64, 96, -8, -1};
        for (size_t i = 0; i < ST_ARRAY_LEN(offsets); i++)
            CHECK_EQ(strata_heap_free(s.h, s.p[2] + offsets[i]), STRATA_ERR_NOT_BLOCK);
        /* Inside a free block, and at the very end of the blocks. */
        CHECK_EQ(strata_heap_free(s.h, s.p[1] + 32), STRATA_ERR_NOT_BLOCK);
        CHECK_EQ(strata_heap_free(s.h, region + REGION - 16), STRATA_ERR_NOT_BLOCK);
        CHECK(unchanged(&s));
    }
}

TEST(free_inside_control_structure)
{
    struct scene s = setup(STRATA_HEAP_SEGREGATED);
    CHECK_EQ(strata_heap_free(s.h, region), STRATA_ERR_NOT_BLOCK);
    CHECK_EQ(strata_heap_free(s.h, region + 16), STRATA_ERR_NOT_BLOCK);
    CHECK_EQ(strata_heap_free(s.h, region + 64), STRATA_ERR_NOT_BLOCK);
    CHECK(unchanged(&s));
}

TEST(free_forged_header)
{
    /* A plausible header written by the caller inside its own block: size,
     * used bit, even a footer, but no valid check word. */
    for (size_t k = 0; k < ST_ARRAY_LEN(all_policies); k++) {
        struct scene s = setup(all_policies[k]);
        unsigned char *fake = s.p[4] + 32;
        *header_sf(fake) = 64 | 1;
        *header_slack(fake) = 0;
        *header_check(fake) = 0;
        *footer(fake, 64 - OVH) = 64 | 1;
        CHECK_EQ(strata_heap_free(s.h, fake), STRATA_ERR_NOT_BLOCK);
        CHECK_EQ(strata_heap_check(s.h), 0);
        memset(s.p[4], 0x55, 100);
        CHECK_EQ(strata_heap_free(s.h, s.p[4]), 0);
        CHECK_EQ(strata_heap_check(s.h), 0);
    }
}

TEST(double_free)
{
    for (size_t k = 0; k < ST_ARRAY_LEN(all_policies); k++) {
        struct scene s = setup(all_policies[k]);
        CHECK_EQ(strata_heap_free(s.h, s.p[1]), STRATA_ERR_DOUBLE_FREE);
        CHECK_EQ(strata_heap_free(s.h, s.p[3]), STRATA_ERR_DOUBLE_FREE);
        CHECK(unchanged(&s));
    }
}

TEST(double_free_after_merge)
{
    /* Freeing p2 merges p1, p2 and p3 into one block: the stale pointers
     * p2 and p3 no longer start blocks, yet read as double frees. */
    for (size_t k = 0; k < ST_ARRAY_LEN(all_policies); k++) {
        struct scene s = setup(all_policies[k]);
        CHECK_EQ(strata_heap_free(s.h, s.p[2]), 0);
        strata_heap_get_info(s.h, &s.info);
        CHECK_EQ(strata_heap_free(s.h, s.p[1]), STRATA_ERR_DOUBLE_FREE);
        CHECK_EQ(strata_heap_free(s.h, s.p[2]), STRATA_ERR_DOUBLE_FREE);
        CHECK_EQ(strata_heap_free(s.h, s.p[3]), STRATA_ERR_DOUBLE_FREE);
        CHECK_EQ(strata_heap_check(s.h), 0);
        strata_heap_info now;
        strata_heap_get_info(s.h, &now);
        CHECK_EQ(now.free_blocks, s.info.free_blocks);
        CHECK_EQ(now.free_bytes, s.info.free_bytes);
    }
}

/* ---- alloc, aligned alloc, calloc ------------------------------------------ */

static void expect_null(void *p, int err)
{
    CHECK(p == NULL);
    CHECK_EQ(errno, err);
}

TEST(alloc_bad_sizes)
{
    for (size_t k = 0; k < ST_ARRAY_LEN(all_policies); k++) {
        struct scene s = setup(all_policies[k]);
        errno = 0;
        expect_null(strata_heap_alloc(s.h, 0), EINVAL);
        errno = 0;
        expect_null(strata_heap_alloc(s.h, SIZE_MAX), EINVAL);
        errno = 0;
        expect_null(strata_heap_alloc(s.h, SIZE_MAX - OVH), EINVAL);
        errno = 0;
        expect_null(strata_heap_alloc(s.h, SIZE_MAX / 2), ENOMEM);
        errno = 0;
        expect_null(strata_heap_alloc(s.h, s.info.largest_alloc + 1), ENOMEM);
        CHECK(unchanged(&s));
    }
}

TEST(aligned_bad_alignment)
{
    for (size_t k = 0; k < ST_ARRAY_LEN(all_policies); k++) {
        struct scene s = setup(all_policies[k]);
        static const size_t bad[] = {0, 3, 24, 48, 100, 4097, SIZE_MAX};
        for (size_t i = 0; i < ST_ARRAY_LEN(bad); i++) {
            errno = 0;
            expect_null(strata_heap_alloc_aligned(s.h, bad[i], 64), EINVAL);
        }
        errno = 0;
        expect_null(strata_heap_alloc_aligned(s.h, 64, 0), EINVAL);
        errno = 0;
        expect_null(strata_heap_alloc_aligned(s.h, 64, SIZE_MAX), EINVAL);
        /* Larger than the heap: a power of two, but nothing can satisfy it. */
        errno = 0;
        expect_null(strata_heap_alloc_aligned(s.h, (size_t)1 << 40, 64), ENOMEM);
        errno = 0;
        expect_null(strata_heap_alloc_aligned(s.h, (size_t)1 << 63, 64), ENOMEM);
        CHECK(unchanged(&s));
    }
}

TEST(calloc_overflow)
{
    struct scene s = setup(STRATA_HEAP_BEST_FIT);
    errno = 0;
    expect_null(strata_heap_calloc(s.h, SIZE_MAX / 2, 3), EINVAL);
    errno = 0;
    expect_null(strata_heap_calloc(s.h, (size_t)1 << 33, (size_t)1 << 33), EINVAL);
    errno = 0;
    expect_null(strata_heap_calloc(s.h, 0, 8), EINVAL);
    CHECK(unchanged(&s));
}

/* ---- realloc and usable_size --------------------------------------------- */

TEST(realloc_bad_pointer)
{
    for (size_t k = 0; k < ST_ARRAY_LEN(all_policies); k++) {
        struct scene s = setup(all_policies[k]);
        int on_stack = 0;
        errno = 0;
        expect_null(strata_heap_realloc(s.h, s.p[2] + 16, 50), EINVAL);
        errno = 0;
        expect_null(strata_heap_realloc(s.h, &on_stack, 50), EINVAL);
        errno = 0;
        expect_null(strata_heap_realloc(s.h, s.p[1], 50), EINVAL); /* freed */
        errno = 0;
        expect_null(strata_heap_realloc(NULL, s.p[2], 50), EINVAL);
        CHECK(unchanged(&s));
    }
}

TEST(realloc_bad_size_keeps_block)
{
    for (size_t k = 0; k < ST_ARRAY_LEN(all_policies); k++) {
        struct scene s = setup(all_policies[k]);
        errno = 0;
        expect_null(strata_heap_realloc(s.h, s.p[2], 0), EINVAL);
        errno = 0;
        expect_null(strata_heap_realloc(s.h, s.p[2], SIZE_MAX), EINVAL);
        errno = 0;
        expect_null(strata_heap_realloc(s.h, s.p[2], s.info.largest_alloc + 1000), ENOMEM);
        CHECK_EQ(strata_heap_usable_size(s.h, s.p[2]), 104);
        CHECK(unchanged(&s));
    }
}

TEST(usable_size_of_bad_pointers)
{
    struct scene s = setup(STRATA_HEAP_NEXT_FIT);
    int on_stack = 0;
    CHECK_EQ(strata_heap_usable_size(s.h, NULL), 0);
    CHECK_EQ(strata_heap_usable_size(s.h, &on_stack), 0);
    CHECK_EQ(strata_heap_usable_size(s.h, s.p[0] + 16), 0);
    CHECK_EQ(strata_heap_usable_size(s.h, s.p[1]), 0); /* freed */
    CHECK_EQ(strata_heap_usable_size(NULL, s.p[0]), 0);
    CHECK_EQ(strata_heap_usable_size(s.h, s.p[0]), 104);
    CHECK(unchanged(&s));
}

/* ---- overruns and corruption -------------------------------------------- */

TEST(overrun_into_footer_is_refused)
{
    for (size_t k = 0; k < ST_ARRAY_LEN(all_policies); k++) {
        struct scene s = setup(all_policies[k]);
        size_t saved = *footer(s.p[2], 104);
        memset(s.p[2], 0x77, 104 + 3); /* three bytes too many */
        CHECK_EQ(strata_heap_free(s.h, s.p[2]), STRATA_ERR_CORRUPT);
        errno = 0;
        expect_null(strata_heap_realloc(s.h, s.p[2], 10), EINVAL);
        CHECK(strata_heap_check(s.h) > 0);
        *footer(s.p[2], 104) = saved;
        CHECK_EQ(strata_heap_check(s.h), 0);
        CHECK_EQ(strata_heap_free(s.h, s.p[2]), 0);
        CHECK_EQ(strata_heap_check(s.h), 0);
    }
}

TEST(free_refuses_to_merge_into_damage)
{
    /* p[1] is free; damage its check word, then free its neighbours. */
    for (size_t k = 0; k < ST_ARRAY_LEN(all_policies); k++) {
        struct scene s = setup(all_policies[k]);
        uint32_t saved = *header_check(s.p[1]);
        *header_check(s.p[1]) ^= 0x40;
        CHECK_EQ(strata_heap_free(s.h, s.p[0]), STRATA_ERR_CORRUPT); /* right neighbour */
        CHECK_EQ(strata_heap_free(s.h, s.p[2]), STRATA_ERR_CORRUPT); /* left neighbour */
        *header_check(s.p[1]) = saved;
        CHECK(unchanged(&s));
        /* A lying PREV_FREE flag: p[2] claims its left is used. */
        *header_sf(s.p[2]) &= ~(size_t)2;
        CHECK_EQ(strata_heap_free(s.h, s.p[2]), STRATA_ERR_CORRUPT);
        *header_sf(s.p[2]) |= 2;
        CHECK(unchanged(&s));
        CHECK_EQ(strata_heap_free(s.h, s.p[2]), 0);
        CHECK_EQ(strata_heap_check(s.h), 0);
    }
}

/* Damage one word, expect check() to see it, repair, expect silence. */
static void expect_detected(const strata_heap *h, void *word, size_t bytes, uint64_t xor_mask,
                            const char *what)
{
    uint64_t saved = 0, v;
    memcpy(&saved, word, bytes);
    v = saved ^ xor_mask;
    memcpy(word, &v, bytes);
    int bad = strata_heap_check(h);
    if (bad == 0)
        printf("  not detected: %s\n", what);
    CHECK(bad > 0);
    memcpy(word, &saved, bytes);
    CHECK_EQ(strata_heap_check(h), 0);
}

TEST(check_detects_corruption)
{
    for (size_t k = 0; k < ST_ARRAY_LEN(all_policies); k++) {
        struct scene s = setup(all_policies[k]);
        unsigned char *used = s.p[2], *freed = s.p[3];
        expect_detected(s.h, header_sf(used), 8, 16, "used header size");
        expect_detected(s.h, header_sf(used), 8, 1, "used bit cleared");
        expect_detected(s.h, header_sf(used), 8, 2, "PREV_FREE flipped");
        expect_detected(s.h, header_sf(used), 8, 4, "DEAD set");
        expect_detected(s.h, header_sf(used), 8, (uint64_t)1 << 40, "huge size");
        expect_detected(s.h, header_check(used), 4, 1, "check word");
        expect_detected(s.h, header_slack(used), 4, 1, "slack (requested total)");
        expect_detected(s.h, header_slack(used), 4, 0xffff0000u, "slack beyond usable");
        expect_detected(s.h, footer(used, 104), 8, 16, "used footer");
        expect_detected(s.h, header_sf(freed), 8, 1, "free block marked used");
        expect_detected(s.h, header_sf(s.p[4]), 8, 2, "PREV_FREE flipped after a free block");
        expect_detected(s.h, footer(freed, 104), 8, 1, "free footer");
        expect_detected(s.h, link_next(freed), 8, 0x80, "free-list next link");
        expect_detected(s.h, link_prev(freed), 8, 0x80, "free-list prev link");
        expect_detected(s.h, link_next(freed), 8, (uint64_t)(uintptr_t)*link_next(freed),
                        "next link cut to NULL");
        expect_detected(s.h, s.h, 8, 1, "control magic");
    }
}

TEST(check_detects_cycle_and_lost_block)
{
    for (size_t k = 0; k < ST_ARRAY_LEN(all_policies); k++) {
        struct scene s = setup(all_policies[k]);
        unsigned char *a = s.p[1], *b = s.p[3];
        /* Where a's list continues, and where b's list continues. */
        void *an = *link_next(a), *bp = *link_prev(b);
        /* A block pointing to itself: a cycle the walk must survive. */
        *link_next(a) = a - 16;
        CHECK(strata_heap_check(s.h) > 0);
        *link_next(a) = an;
        /* Unlink b by hand: a free block on no list. */
        void *bn = *link_next(b);
        if (bp != NULL)
            *link_next((unsigned char *)bp + 16) = bn;
        if (bn != NULL)
            *link_prev((unsigned char *)bn + 16) = bp;
        CHECK(strata_heap_check(s.h) > 0);
        if (bp != NULL)
            *link_next((unsigned char *)bp + 16) = b - 16;
        if (bn != NULL)
            *link_prev((unsigned char *)bn + 16) = b - 16;
        CHECK_EQ(strata_heap_check(s.h), 0);
    }
}
