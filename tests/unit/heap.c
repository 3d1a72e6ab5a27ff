/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the boundary-tag heap: layout after create, sizes and
 * alignment, each policy's choice on a hand-built free list, coalescing
 * with each neighbour, the split threshold, realloc in place and moved,
 * statistics computed by hand, aligned allocation, walk, names.
 */
#include <errno.h>
#include <math.h>

#include "bits.h"
#include "strata/heap.h"
#include "test.h"

#define REGION (64 * 1024)
#define OVH STRATA_HEAP_OVERHEAD
#define MINB STRATA_HEAP_MIN_BLOCK

static _Alignas(4096) unsigned char region[REGION];

static const strata_heap_policy all_policies[] = {
    STRATA_HEAP_FIRST_FIT, STRATA_HEAP_NEXT_FIT, STRATA_HEAP_BEST_FIT,
    STRATA_HEAP_WORST_FIT, STRATA_HEAP_SEGREGATED,
};

/* The blocks a walk reports. */
struct blocks {
    int n;
    unsigned char *ptr[512];
    size_t size[512], req[512];
    bool used[512];
};

static void collect(void *ptr, size_t size, bool used, size_t requested, void *user)
{
    struct blocks *b = user;
    if (b->n < 512) {
        b->ptr[b->n] = ptr;
        b->size[b->n] = size;
        b->used[b->n] = used;
        b->req[b->n] = requested;
    }
    b->n++;
}

static struct blocks walk_of(const strata_heap *h)
{
    struct blocks b;
    memset(&b, 0, sizeof(b));
    strata_heap_walk(h, collect, &b);
    return b;
}

/* Index of the walked block whose payload is p, or -1. */
static int find_block(const struct blocks *b, const void *p)
{
    for (int i = 0; i < b->n && i < 512; i++)
        if (b->ptr[i] == p)
            return i;
    return -1;
}

/* Block size for a request, as the header documents it. */
static size_t block_of(size_t n)
{
    size_t s = (n + OVH + 15) & ~(size_t)15;
    return s < MINB ? MINB : s;
}

static strata_heap *fresh(strata_heap_policy policy, size_t size)
{
    memset(region, 0, sizeof(region));
    return strata_heap_create(region, size, policy);
}

/* Allocate so that the payload's block is exactly `bytes` long. */
static void *alloc_block(strata_heap *h, size_t bytes) { return strata_heap_alloc(h, bytes - OVH); }

TEST(create_layout)
{
    strata_heap *h = fresh(STRATA_HEAP_FIRST_FIT, 4096);
    REQUIRE(h != NULL);
    CHECK((void *)h == (void *)region);
    size_t ctl = strata_heap_control_size(4096, STRATA_HEAP_FIRST_FIT);
    CHECK(ctl > 0 && ctl % 16 == 0);
    strata_heap_info info;
    strata_heap_get_info(h, &info);
    CHECK_EQ(info.policy, STRATA_HEAP_FIRST_FIT);
    CHECK_EQ(info.region_bytes, 4096);
    CHECK_EQ(info.control_bytes, ctl);
    CHECK_EQ(info.total_bytes, 4096 - ctl);
    CHECK_EQ(info.free_bytes, info.total_bytes);
    CHECK_EQ(info.largest_free, info.total_bytes);
    CHECK_EQ(info.largest_alloc, info.total_bytes - OVH);
    CHECK_EQ(info.free_blocks, 1);
    CHECK_EQ(info.used_blocks, 0);
    CHECK_EQ(info.held_bytes, 0);
    CHECK(info.external_fragmentation == 0.0);
    struct blocks b = walk_of(h);
    CHECK_EQ(b.n, 1);
    CHECK(b.ptr[0] == region + ctl + 16);
    CHECK_EQ(b.size[0], 4096 - ctl);
    CHECK(!b.used[0]);
    CHECK_EQ(strata_heap_check(h), 0);
}

TEST(create_unaligned_region)
{
    memset(region, 0, sizeof(region));
    strata_heap *h = strata_heap_create(region + 3, 4000, STRATA_HEAP_BEST_FIT);
    REQUIRE(h != NULL);
    CHECK((uintptr_t)h % 16 == 0);
    CHECK((unsigned char *)h >= region + 3);
    void *p = strata_heap_alloc(h, 100);
    CHECK(p != NULL && (uintptr_t)p % 16 == 0);
    CHECK((unsigned char *)p + 100 <= region + 4003);
    CHECK_EQ(strata_heap_check(h), 0);
}

TEST(segregated_control_is_larger)
{
    size_t list = strata_heap_control_size(1 << 20, STRATA_HEAP_FIRST_FIT);
    size_t seg = strata_heap_control_size(1 << 20, STRATA_HEAP_SEGREGATED);
    CHECK(seg > list);
    /* One head per class: more classes for a larger region. */
    CHECK(strata_heap_control_size(1 << 30, STRATA_HEAP_SEGREGATED) > seg);
    CHECK_EQ(strata_heap_control_size(1 << 20, (strata_heap_policy)9), 0);
}

TEST(sizes_and_alignment)
{
    for (size_t p = 0; p < ST_ARRAY_LEN(all_policies); p++) {
        strata_heap *h = fresh(all_policies[p], REGION);
        REQUIRE(h != NULL);
        for (size_t n = 1; n <= 200; n++) {
            unsigned char *q = strata_heap_alloc(h, n);
            REQUIRE(q != NULL);
            CHECK((uintptr_t)q % 16 == 0);
            /* The heap is large: every block is split to the exact size. */
            CHECK_EQ(strata_heap_usable_size(h, q), block_of(n) - OVH);
            memset(q, 0x5a, n);
        }
        CHECK_EQ(strata_heap_check(h), 0);
    }
}

/*
 * Free list F1(256) F2(1024) F3(192) F4(2048) in address order, used
 * separators between them and nothing free after F4. Then two requests:
 * 744 bytes (block 768), then 168 bytes (block 192). Every policy picks a
 * different block for the second one:
 *   first fit  768 -> F2,  192 -> F1 (lowest address that fits)
 *   next fit   768 -> F2,  192 -> rest of F2 (the search resumes there)
 *   best fit   768 -> F2,  192 -> F3 (exact fit)
 *   worst fit  768 -> F4,  192 -> rest of F4 (largest: 1280)
 *   segregated 768 -> F2 (next non-empty class), 192 -> F3 (its class)
 */
struct layout {
    unsigned char *f[4];
};

static struct layout build_layout(strata_heap *h)
{
    static const size_t sizes[4] = {256, 1024, 192, 2048};
    struct layout l;
    for (int i = 0; i < 4; i++) {
        l.f[i] = alloc_block(h, sizes[i]);
        CHECK(alloc_block(h, MINB) != NULL);
    }
    strata_heap_info info;
    strata_heap_get_info(h, &info);
    CHECK(strata_heap_alloc(h, info.largest_alloc) != NULL); /* the rest, exactly */
    strata_heap_get_info(h, &info);
    CHECK_EQ(info.free_blocks, 0);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(strata_heap_free(h, l.f[i]), 0);
    strata_heap_get_info(h, &info);
    CHECK_EQ(info.free_blocks, 4);
    CHECK_EQ(strata_heap_check(h), 0);
    return l;
}

TEST(policy_choice)
{
    struct {
        strata_heap_policy policy;
        int first_block;  /* F index the 768-byte request comes from */
        int second_block; /* F index of the 192-byte request */
        size_t second_off; /* offset inside it */
    } want[] = {
        {STRATA_HEAP_FIRST_FIT, 1, 0, 0},   {STRATA_HEAP_NEXT_FIT, 1, 1, 768},
        {STRATA_HEAP_BEST_FIT, 1, 2, 0},    {STRATA_HEAP_WORST_FIT, 3, 3, 768},
        {STRATA_HEAP_SEGREGATED, 1, 2, 0},
    };
    for (size_t i = 0; i < ST_ARRAY_LEN(want); i++) {
        strata_heap *h = fresh(want[i].policy, 16384);
        REQUIRE(h != NULL);
        struct layout l = build_layout(h);
        unsigned char *p1 = strata_heap_alloc(h, 744);
        unsigned char *p2 = strata_heap_alloc(h, 168);
        if (p1 != l.f[want[i].first_block] ||
            p2 != l.f[want[i].second_block] + want[i].second_off)
            printf("  policy %s chose wrongly\n", strata_heap_policy_name(want[i].policy));
        CHECK(p1 == l.f[want[i].first_block]);
        CHECK(p2 == l.f[want[i].second_block] + want[i].second_off);
        CHECK_EQ(strata_heap_check(h), 0);
    }
}

TEST(next_fit_wraps_and_resumes)
{
    strata_heap *h = fresh(STRATA_HEAP_NEXT_FIT, 16384);
    REQUIRE(h != NULL);
    struct layout l = build_layout(h);
    /* 1536 only fits F4: the rover is left on F4's 512-byte rest. */
    CHECK(alloc_block(h, 1536) == l.f[3]);
    /* 1024 does not fit the rest of F4: wrap to the head, F1 too small, F2. */
    CHECK(alloc_block(h, 1024) == l.f[1]);
    /* F2 was an exact fit: the search resumes at F3, although F1 fits. */
    CHECK(alloc_block(h, 192) == l.f[2]);
    CHECK_EQ(strata_heap_check(h), 0);
}

TEST(next_fit_rover_survives_coalescing)
{
    strata_heap *h = fresh(STRATA_HEAP_NEXT_FIT, 16384);
    REQUIRE(h != NULL);
    struct layout l = build_layout(h);
    unsigned char *p1 = alloc_block(h, 768); /* from F2; rover on its 256-byte rest */
    CHECK(p1 == l.f[1]);
    /* Freeing p1 swallows the rover's block: the rover must follow. */
    CHECK_EQ(strata_heap_free(h, p1), 0);
    CHECK_EQ(strata_heap_check(h), 0);
    /* The search resumes at the merged block (F2), not at F1. */
    CHECK(alloc_block(h, 192) == l.f[1]);
    CHECK_EQ(strata_heap_check(h), 0);
}

TEST(segregated_good_fit_in_class)
{
    /* 304 and 256 share the class [256, 320). A 288-byte block must come
     * from the 304 block of that class, not from the larger 1024 one. */
    strata_heap *h = fresh(STRATA_HEAP_SEGREGATED, 16384);
    REQUIRE(h != NULL);
    unsigned char *a = alloc_block(h, 304), *b, *c;
    CHECK(alloc_block(h, MINB) != NULL);
    b = alloc_block(h, 256);
    CHECK(alloc_block(h, MINB) != NULL);
    c = alloc_block(h, 1024);
    CHECK(alloc_block(h, MINB) != NULL);
    strata_heap_info info;
    strata_heap_get_info(h, &info);
    CHECK(strata_heap_alloc(h, info.largest_alloc) != NULL);
    CHECK_EQ(strata_heap_free(h, a), 0);
    CHECK_EQ(strata_heap_free(h, c), 0);
    CHECK_EQ(strata_heap_free(h, b), 0); /* LIFO: b is first in the class list */
    CHECK(alloc_block(h, 288) == a);
    CHECK(alloc_block(h, 256) == b);
    CHECK_EQ(strata_heap_check(h), 0);
}

/* Five 128-byte blocks A..E, then the free tail. */
static void five(strata_heap *h, unsigned char *p[5])
{
    for (int i = 0; i < 5; i++)
        p[i] = alloc_block(h, 128);
}

static void expect_merged(strata_heap *h, unsigned char *at, size_t size)
{
    struct blocks w = walk_of(h);
    int i = find_block(&w, at);
    CHECK(i >= 0);
    if (i >= 0) {
        CHECK(!w.used[i]);
        CHECK_EQ(w.size[i], size);
    }
    strata_heap_info info;
    strata_heap_get_info(h, &info);
    CHECK_EQ(info.free_blocks, 2); /* the merged block and the tail */
    CHECK_EQ(strata_heap_check(h), 0);
}

TEST(coalesce_with_left)
{
    for (size_t k = 0; k < ST_ARRAY_LEN(all_policies); k++) {
        strata_heap *h = fresh(all_policies[k], 8192);
        unsigned char *p[5];
        five(h, p);
        CHECK_EQ(strata_heap_free(h, p[1]), 0);
        CHECK_EQ(strata_heap_free(h, p[2]), 0);
        expect_merged(h, p[1], 256);
    }
}

TEST(coalesce_with_right)
{
    for (size_t k = 0; k < ST_ARRAY_LEN(all_policies); k++) {
        strata_heap *h = fresh(all_policies[k], 8192);
        unsigned char *p[5];
        five(h, p);
        CHECK_EQ(strata_heap_free(h, p[2]), 0);
        CHECK_EQ(strata_heap_free(h, p[1]), 0);
        expect_merged(h, p[1], 256);
    }
}

TEST(coalesce_with_both)
{
    for (size_t k = 0; k < ST_ARRAY_LEN(all_policies); k++) {
        strata_heap *h = fresh(all_policies[k], 8192);
        unsigned char *p[5];
        five(h, p);
        CHECK_EQ(strata_heap_free(h, p[1]), 0);
        CHECK_EQ(strata_heap_free(h, p[3]), 0);
        CHECK_EQ(strata_heap_free(h, p[2]), 0);
        expect_merged(h, p[1], 384);
    }
}

TEST(coalesce_with_tail_and_to_one_block)
{
    strata_heap *h = fresh(STRATA_HEAP_BEST_FIT, 8192);
    strata_heap_info before, after;
    strata_heap_get_info(h, &before);
    unsigned char *p[5];
    five(h, p);
    CHECK_EQ(strata_heap_free(h, p[4]), 0); /* merges right, with the tail */
    strata_heap_get_info(h, &after);
    CHECK_EQ(after.free_blocks, 1);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(strata_heap_free(h, p[i]), 0);
    strata_heap_get_info(h, &after);
    CHECK_EQ(after.free_blocks, 1);
    CHECK_EQ(after.free_bytes, before.free_bytes);
    CHECK_EQ(strata_heap_check(h), 0);
}

/* A free block of 256 bytes between used blocks, and nothing else free. */
static unsigned char *hole_256(strata_heap *h)
{
    unsigned char *hole = alloc_block(h, 256);
    CHECK(alloc_block(h, MINB) != NULL);
    strata_heap_info info;
    strata_heap_get_info(h, &info);
    CHECK(strata_heap_alloc(h, info.largest_alloc) != NULL);
    CHECK_EQ(strata_heap_free(h, hole), 0);
    return hole;
}

TEST(split_threshold)
{
    strata_heap_info info;
    /* Remainder 48 = a minimum block: split. */
    strata_heap *h = fresh(STRATA_HEAP_FIRST_FIT, 4096);
    unsigned char *hole = hole_256(h);
    unsigned char *p = alloc_block(h, 208);
    CHECK(p == hole);
    CHECK_EQ(strata_heap_usable_size(h, p), 208 - OVH);
    strata_heap_get_info(h, &info);
    CHECK_EQ(info.free_blocks, 1);
    CHECK_EQ(info.free_bytes, MINB);
    CHECK(strata_heap_alloc(h, 1) == hole + 208); /* the 48-byte rest serves */
    CHECK_EQ(strata_heap_check(h), 0);

    /* Remainder 32: too small to be a block, the whole 256 is handed out. */
    h = fresh(STRATA_HEAP_FIRST_FIT, 4096);
    hole = hole_256(h);
    p = alloc_block(h, 224);
    CHECK(p == hole);
    CHECK_EQ(strata_heap_usable_size(h, p), 256 - OVH);
    strata_heap_get_info(h, &info);
    CHECK_EQ(info.free_blocks, 0);
    /* Internal fragmentation: 56 unasked bytes in the hole, plus the
     * tags of the separator and of the block that fills the rest. */
    CHECK_EQ(info.internal_fragmentation, (256 - 200) + OVH + OVH);
    CHECK_EQ(strata_heap_check(h), 0);
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed * 31 + i * 7);
}

static bool same(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed * 31 + i * 7))
            return false;
    return true;
}

TEST(realloc_grows_in_place)
{
    for (size_t k = 0; k < ST_ARRAY_LEN(all_policies); k++) {
        strata_heap *h = fresh(all_policies[k], 16384);
        unsigned char *p = strata_heap_alloc(h, 100), *q = strata_heap_alloc(h, 100);
        unsigned char *g = strata_heap_alloc(h, 100);
        fill(p, 100, 1);
        CHECK_EQ(strata_heap_free(h, q), 0);
        /* Into the freed neighbour: 128 + 128, need 224, rest 32 is kept. */
        CHECK(strata_heap_realloc(h, p, 200) == p);
        CHECK(same(p, 100, 1));
        CHECK_EQ(strata_heap_usable_size(h, p), 256 - OVH);
        strata_heap_info info;
        strata_heap_get_info(h, &info);
        CHECK_EQ(info.free_blocks, 1);
        CHECK_EQ(info.requested_bytes, 300);
        /* Into the tail, split. */
        CHECK(strata_heap_realloc(h, g, 3000) == g);
        CHECK_EQ(strata_heap_usable_size(h, g), block_of(3000) - OVH);
        CHECK_EQ(strata_heap_check(h), 0);
    }
}

TEST(realloc_shrinks_in_place)
{
    for (size_t k = 0; k < ST_ARRAY_LEN(all_policies); k++) {
        strata_heap *h = fresh(all_policies[k], 16384);
        unsigned char *p = alloc_block(h, 1024), *g = alloc_block(h, 128);
        CHECK(alloc_block(h, MINB) != NULL);
        fill(p, 1000, 2);
        CHECK(strata_heap_realloc(h, p, 100) == p);
        CHECK(same(p, 100, 2));
        CHECK_EQ(strata_heap_usable_size(h, p), 104);
        struct blocks w = walk_of(h);
        int i = find_block(&w, p + 128);
        CHECK(i >= 0 && !w.used[i] && w.size[i] == 1024 - 128);
        /* Shrink by 32, right neighbour used: the block keeps its size. */
        CHECK(strata_heap_realloc(h, g, 60) == g);
        CHECK_EQ(strata_heap_usable_size(h, g), 104);
        /* Shrink next to a free block: the tail joins it, even if small. */
        unsigned char *q = strata_heap_realloc(h, p, 60);
        CHECK(q == p);
        w = walk_of(h);
        i = find_block(&w, p + 96);
        CHECK(i >= 0 && !w.used[i] && w.size[i] == 1024 - 96);
        strata_heap_info info;
        strata_heap_get_info(h, &info);
        CHECK_EQ(info.requested_bytes, 60 + 60 + MINB - OVH);
        CHECK_EQ(strata_heap_check(h), 0);
    }
}

TEST(realloc_moves)
{
    for (size_t k = 0; k < ST_ARRAY_LEN(all_policies); k++) {
        strata_heap *h = fresh(all_policies[k], 16384);
        unsigned char *p = strata_heap_alloc(h, 100), *g = strata_heap_alloc(h, 100);
        CHECK(g != NULL);
        fill(p, 100, 3);
        unsigned char *q = strata_heap_realloc(h, p, 1000);
        CHECK(q != NULL && q != p);
        CHECK(same(q, 100, 3));
        struct blocks w = walk_of(h);
        int i = find_block(&w, p);
        CHECK(i >= 0 && !w.used[i]);
        strata_heap_info info;
        strata_heap_get_info(h, &info);
        CHECK_EQ(info.requested_bytes, 1100);
        /* realloc(NULL) allocates. */
        unsigned char *r = strata_heap_realloc(h, NULL, 10);
        CHECK(r != NULL && strata_heap_usable_size(h, r) == MINB - OVH);
        CHECK_EQ(strata_heap_check(h), 0);
    }
}

TEST(statistics_by_hand)
{
    strata_heap *h = fresh(STRATA_HEAP_FIRST_FIT, 8192);
    strata_heap_info info;
    strata_heap_get_info(h, &info);
    size_t total = info.total_bytes;
    /* Requests 10, 100, 1000 take blocks of 48, 128, 1024. */
    unsigned char *p1 = strata_heap_alloc(h, 10), *p2 = strata_heap_alloc(h, 100);
    unsigned char *p3 = strata_heap_alloc(h, 1000);
    REQUIRE(p1 && p2 && p3);
    strata_heap_get_info(h, &info);
    CHECK_EQ(info.requested_bytes, 1110);
    CHECK_EQ(info.held_bytes, 1200);
    CHECK_EQ(info.overhead_bytes, 72);
    CHECK_EQ(info.internal_fragmentation, 90);
    CHECK_EQ(info.used_blocks, 3);
    CHECK_EQ(info.free_blocks, 1);
    CHECK_EQ(info.free_bytes, total - 1200);
    CHECK_EQ(info.largest_free, total - 1200);
    CHECK_EQ(info.largest_alloc, total - 1200 - OVH);
    CHECK(info.external_fragmentation == 0.0);

    /* Free the middle one: a 128-byte hole beside the tail T. */
    CHECK_EQ(strata_heap_free(h, p2), 0);
    size_t t = total - 1200;
    strata_heap_get_info(h, &info);
    CHECK_EQ(info.requested_bytes, 1010);
    CHECK_EQ(info.held_bytes, 1072);
    CHECK_EQ(info.internal_fragmentation, 62);
    CHECK_EQ(info.used_blocks, 2);
    CHECK_EQ(info.free_blocks, 2);
    CHECK_EQ(info.free_bytes, t + 128);
    CHECK_EQ(info.largest_free, t);
    CHECK(fabs(info.external_fragmentation - 128.0 / (double)(t + 128)) < 1e-12);

    /* Everything taken: nothing free, fragmentation 0 by definition. */
    CHECK(strata_heap_alloc(h, t - OVH) != NULL);
    CHECK(strata_heap_alloc(h, 104) != NULL);
    strata_heap_get_info(h, &info);
    CHECK_EQ(info.free_bytes, 0);
    CHECK_EQ(info.largest_free, 0);
    CHECK_EQ(info.largest_alloc, 0);
    CHECK(info.external_fragmentation == 0.0);
    CHECK_EQ(info.held_bytes, total);
    CHECK_EQ(strata_heap_check(h), 0);
}

TEST(aligned_allocation)
{
    for (size_t k = 0; k < ST_ARRAY_LEN(all_policies); k++) {
        strata_heap *h = fresh(all_policies[k], REGION);
        strata_heap_info before, after;
        strata_heap_get_info(h, &before);
        for (size_t align = 1; align <= 4096; align <<= 1) {
            unsigned char *p = strata_heap_alloc_aligned(h, align, 100);
            REQUIRE(p != NULL);
            CHECK((uintptr_t)p % (align < 16 ? 16 : align) == 0);
            CHECK(strata_heap_usable_size(h, p) >= 100);
            memset(p, 0xee, 100);
            CHECK_EQ(strata_heap_check(h), 0);
            /* The gap below an aligned block is a free block, not lost. */
            struct blocks w = walk_of(h);
            int i = find_block(&w, p);
            CHECK(i >= 0 && w.used[i]);
        }
        struct blocks w = walk_of(h);
        for (int i = 0; i < w.n; i++)
            if (w.used[i])
                CHECK_EQ(strata_heap_free(h, w.ptr[i]), 0);
        strata_heap_get_info(h, &after);
        CHECK_EQ(after.free_blocks, 1);
        CHECK_EQ(after.free_bytes, before.free_bytes);
        CHECK_EQ(strata_heap_check(h), 0);
    }
}

TEST(aligned_gap_becomes_free_block)
{
    strata_heap *h = fresh(STRATA_HEAP_FIRST_FIT, REGION);
    unsigned char *p = strata_heap_alloc_aligned(h, 4096, 64);
    REQUIRE(p != NULL);
    CHECK((uintptr_t)p % 4096 == 0);
    struct blocks w = walk_of(h);
    int i = find_block(&w, p);
    REQUIRE(i >= 0);
    /* The region is page aligned, so the first payload is not: a gap. */
    CHECK_EQ(i, 1);
    CHECK(!w.used[0] && w.size[0] >= MINB);
    CHECK(w.ptr[0] + w.size[0] == p);
    /* A small request now takes the gap (first fit, lowest address). */
    CHECK(strata_heap_alloc(h, 8) == w.ptr[0]);
    CHECK_EQ(strata_heap_check(h), 0);
}

TEST(calloc_zeroes)
{
    strata_heap *h = fresh(STRATA_HEAP_SEGREGATED, 8192);
    unsigned char *p = strata_heap_alloc(h, 500);
    memset(p, 0xab, 500);
    CHECK_EQ(strata_heap_free(h, p), 0);
    unsigned char *q = strata_heap_calloc(h, 25, 20);
    REQUIRE(q != NULL);
    CHECK(q == p);
    bool zero = true;
    for (int i = 0; i < 500; i++)
        zero &= q[i] == 0;
    CHECK(zero);
    CHECK_EQ(strata_heap_check(h), 0);
}

TEST(walk_address_order)
{
    strata_heap *h = fresh(STRATA_HEAP_WORST_FIT, REGION);
    strata_heap_info info;
    strata_heap_get_info(h, &info);
    unsigned char *p[40];
    for (int i = 0; i < 40; i++)
        p[i] = strata_heap_alloc(h, (size_t)(i * 37 % 300) + 1);
    for (int i = 0; i < 40; i += 3)
        CHECK_EQ(strata_heap_free(h, p[i]), 0);
    struct blocks w = walk_of(h);
    size_t sum = 0, used = 0;
    for (int i = 0; i < w.n; i++) {
        sum += w.size[i];
        used += w.used[i];
        if (i > 0)
            CHECK(w.ptr[i] == w.ptr[i - 1] + w.size[i - 1]);
        if (!w.used[i])
            CHECK_EQ(w.req[i], 0);
    }
    CHECK_EQ(sum, info.total_bytes);
    CHECK_EQ(used, 40 - 14);
    for (int i = 1; i < 40; i += 3) {
        int j = find_block(&w, p[i]);
        CHECK(j >= 0 && w.used[j] && w.req[j] == (size_t)(i * 37 % 300) + 1);
    }
    CHECK_EQ(strata_heap_check(h), 0);
}

TEST(owns_and_usable_size)
{
    strata_heap *h = fresh(STRATA_HEAP_FIRST_FIT, 4096);
    unsigned char *p = strata_heap_alloc(h, 40);
    CHECK(strata_heap_owns(h, p));
    CHECK(strata_heap_owns(h, region));
    CHECK(strata_heap_owns(h, region + 4095));
    CHECK(!strata_heap_owns(h, region + 4096));
    CHECK_EQ(strata_heap_usable_size(h, p), 40);
    CHECK_EQ(strata_heap_usable_size(h, p + 16), 0);
    CHECK_EQ(strata_heap_usable_size(h, NULL), 0);
}

TEST(policy_names)
{
    CHECK(strcmp(strata_heap_policy_name(STRATA_HEAP_FIRST_FIT), "first-fit") == 0);
    CHECK(strcmp(strata_heap_policy_name(STRATA_HEAP_NEXT_FIT), "next-fit") == 0);
    CHECK(strcmp(strata_heap_policy_name(STRATA_HEAP_BEST_FIT), "best-fit") == 0);
    CHECK(strcmp(strata_heap_policy_name(STRATA_HEAP_WORST_FIT), "worst-fit") == 0);
    CHECK(strcmp(strata_heap_policy_name(STRATA_HEAP_SEGREGATED), "segregated") == 0);
    CHECK(strcmp(strata_heap_policy_name((strata_heap_policy)5), "unknown") == 0);
    CHECK(strcmp(strata_heap_policy_name((strata_heap_policy)-1), "unknown") == 0);
}
