/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the TLSF allocator: the size classes, splitting and
 * coalescing with both neighbours, realloc in place and by moving,
 * memalign, several pools, walking, statistics, the worst-case bound (a
 * search reads at most four index words however fragmented the pool, a
 * free merges at most two neighbours), and check() catching damage on both
 * the index side and the physical side.
 */
#include <errno.h>

#include "strata/tlsf.h"
#include "test.h"
#include "tlsf.h"

static _Alignas(16) unsigned char arena[1 << 20];
static _Alignas(16) unsigned char arena2[256 << 10];
static _Alignas(16) unsigned char arena3[64 << 10];

static strata_tlsf *fresh(size_t bytes)
{
    memset(arena, 0, bytes);
    return strata_tlsf_create(arena, bytes);
}

static strata_tlsf_info info_of(const strata_tlsf *t)
{
    strata_tlsf_info i;
    strata_tlsf_get_info(t, &i);
    return i;
}

static int same_info(const strata_tlsf_info *a, const strata_tlsf_info *b)
{
    return memcmp(a, b, sizeof(*a)) == 0;
}

TEST(sizes_and_overheads)
{
    CHECK(strata_tlsf_size() >= 1024 && strata_tlsf_size() < 16384);
    CHECK_EQ(strata_tlsf_overhead(), 16);
    CHECK_EQ(strata_tlsf_pool_overhead(), STRATA_TLSF_POOL_OVERHEAD);
    CHECK_EQ(STRATA_TLSF_SL_INDEX_COUNT, 32);
}

TEST(create_gives_one_free_block)
{
    strata_tlsf *t = fresh(64 << 10);
    REQUIRE(t != NULL);
    CHECK((unsigned char *)t >= arena && (unsigned char *)t < arena + 16);
    strata_tlsf_info i = info_of(t);
    CHECK_EQ(i.pools, 1);
    CHECK_EQ(i.free_blocks, 1);
    CHECK_EQ(i.used_blocks, 0);
    CHECK_EQ(i.used_bytes, 0);
    CHECK_EQ(i.free_bytes, i.pool_bytes - STRATA_TLSF_POOL_OVERHEAD);
    CHECK_EQ(i.largest_free, i.free_bytes);
    CHECK_EQ(i.overhead_bytes, STRATA_TLSF_POOL_OVERHEAD);
    CHECK(i.pool_bytes + strata_tlsf_size() >= (64 << 10) - 32);
    CHECK_EQ(strata_tlsf_check(t), 0);
    CHECK(strata_tlsf_get_pool(t, 0) != NULL);
    CHECK(strata_tlsf_get_pool(t, 1) == NULL);
    CHECK_EQ(strata_tlsf_check_pool(t, strata_tlsf_get_pool(t, 0)), 0);
}

/* The classes are ordered like the sizes, linear in 16-byte steps below
 * 512, and 32 per power of two above. */
TEST(size_classes)
{
    unsigned fl, sl, pfl = 0, psl = 0;
    for (size_t s = 32; s < ((size_t)1 << 22); s += 16) {
        st_tlsf_mapping(s, &fl, &sl);
        CHECK(fl > pfl || (fl == pfl && sl >= psl));
        CHECK(sl < STRATA_TLSF_SL_INDEX_COUNT);
        pfl = fl, psl = sl;
    }
    st_tlsf_mapping(32, &fl, &sl);
    CHECK(fl == 0 && sl == 2);
    st_tlsf_mapping(496, &fl, &sl);
    CHECK(fl == 0 && sl == 31);
    st_tlsf_mapping(512, &fl, &sl);
    CHECK(fl == 1 && sl == 0);
    st_tlsf_mapping(1023, &fl, &sl);
    CHECK(fl == 1 && sl == 31);
    st_tlsf_mapping(1024, &fl, &sl);
    CHECK(fl == 2 && sl == 0);
    st_tlsf_mapping(1024 + 32, &fl, &sl);
    CHECK(fl == 2 && sl == 1);
    st_tlsf_mapping(STRATA_TLSF_BLOCK_MAX - 16, &fl, &sl);
    CHECK(fl == 31 && sl == 31);
}

TEST(malloc_alignment_and_usable_size)
{
    strata_tlsf *t = fresh(256 << 10);
    REQUIRE(t != NULL);
    for (size_t s = 1; s < 3000; s += 37) {
        unsigned char *p = strata_tlsf_malloc(t, s);
        REQUIRE(p != NULL);
        CHECK_EQ((uintptr_t)p % 16, 0);
        size_t u = strata_tlsf_usable_size(t, p);
        CHECK(u >= s && u >= STRATA_TLSF_BLOCK_MIN && u % 16 == 0);
        CHECK(u < s + 16 + STRATA_TLSF_BLOCK_MIN + 16);
        memset(p, 0xcd, u);
        CHECK_EQ(strata_tlsf_check(t), 0);
    }
    errno = 0;
    CHECK(strata_tlsf_malloc(t, 0) == NULL);
    CHECK_EQ(errno, EINVAL);
}

TEST(split_and_coalesce_both_sides)
{
    strata_tlsf *t = fresh(64 << 10);
    REQUIRE(t != NULL);
    strata_tlsf_info initial = info_of(t);
    void *a = strata_tlsf_malloc(t, 100), *b = strata_tlsf_malloc(t, 200);
    void *c = strata_tlsf_malloc(t, 300);
    REQUIRE(a && b && c);
    CHECK((unsigned char *)a < (unsigned char *)b && (unsigned char *)b < (unsigned char *)c);
    strata_tlsf_info i = info_of(t);
    CHECK_EQ(i.used_blocks, 3);
    CHECK_EQ(i.free_blocks, 1);
    CHECK_EQ(strata_tlsf_free(t, b), 0);
    CHECK_EQ(st_tlsf_last_merges(t), 0);
    CHECK_EQ(info_of(t).free_blocks, 2);
    CHECK_EQ(strata_tlsf_free(t, a), 0); /* merges with b after it */
    CHECK_EQ(st_tlsf_last_merges(t), 1);
    CHECK_EQ(info_of(t).free_blocks, 2);
    CHECK_EQ(strata_tlsf_check(t), 0);
    CHECK_EQ(strata_tlsf_free(t, c), 0); /* merges with a+b and the tail */
    CHECK_EQ(st_tlsf_last_merges(t), 2);
    i = info_of(t);
    CHECK(same_info(&i, &initial));
    CHECK_EQ(strata_tlsf_check(t), 0);
}

TEST(freed_block_is_reused_first_fit_of_class)
{
    strata_tlsf *t = fresh(64 << 10);
    REQUIRE(t != NULL);
    void *a = strata_tlsf_malloc(t, 64), *guard = strata_tlsf_malloc(t, 64);
    REQUIRE(a && guard);
    CHECK_EQ(strata_tlsf_free(t, a), 0);
    CHECK(strata_tlsf_malloc(t, 64) == a);
    CHECK_EQ(strata_tlsf_check(t), 0);
}

TEST(realloc_in_place_and_moving)
{
    strata_tlsf *t = fresh(64 << 10);
    REQUIRE(t != NULL);
    strata_tlsf_info initial = info_of(t);
    unsigned char *p = strata_tlsf_realloc(t, NULL, 100);
    REQUIRE(p != NULL);
    for (int i = 0; i < 100; i++)
        p[i] = (unsigned char)i;
    /* grow into the free tail */
    unsigned char *q = strata_tlsf_realloc(t, p, 5000);
    CHECK(q == p);
    CHECK(strata_tlsf_usable_size(t, q) >= 5000);
    CHECK_EQ(strata_tlsf_check(t), 0);
    /* shrink in place, the tail goes back */
    q = strata_tlsf_realloc(t, p, 50);
    CHECK(q == p);
    CHECK(strata_tlsf_usable_size(t, q) < 100);
    CHECK_EQ(strata_tlsf_check(t), 0);
    /* block the next neighbour: growing must move and keep the bytes */
    unsigned char *wall = strata_tlsf_malloc(t, 32);
    REQUIRE(wall != NULL);
    CHECK(wall > p);
    q = strata_tlsf_realloc(t, p, 2000);
    REQUIRE(q != NULL);
    CHECK(q != p);
    for (int i = 0; i < 50; i++)
        CHECK_EQ(q[i], i);
    CHECK_EQ(strata_tlsf_check(t), 0);
    /* size 0 frees */
    CHECK(strata_tlsf_realloc(t, q, 0) == NULL);
    CHECK_EQ(strata_tlsf_free(t, wall), 0);
    strata_tlsf_info i = info_of(t);
    CHECK(same_info(&i, &initial));
    /* growing in place across a freed neighbour */
    p = strata_tlsf_malloc(t, 64);
    unsigned char *n = strata_tlsf_malloc(t, 256), *w2 = strata_tlsf_malloc(t, 64);
    REQUIRE(p && n && w2);
    CHECK_EQ(strata_tlsf_free(t, n), 0);
    CHECK(strata_tlsf_realloc(t, p, 300) == p);
    CHECK_EQ(strata_tlsf_check(t), 0);
    /* a move that cannot be satisfied leaves the block alone */
    errno = 0;
    CHECK(strata_tlsf_realloc(t, p, 1 << 20) == NULL);
    CHECK_EQ(errno, ENOMEM);
    CHECK(strata_tlsf_usable_size(t, p) >= 300);
    CHECK_EQ(strata_tlsf_check(t), 0);
}

TEST(memalign_various)
{
    strata_tlsf *t = fresh(512 << 10);
    REQUIRE(t != NULL);
    strata_tlsf_info initial = info_of(t);
    void *ptrs[64];
    int n = 0;
    for (size_t align = 1; align <= 8192; align *= 2) {
        for (size_t size = 1; size < 2000; size += 999) {
            unsigned char *p = strata_tlsf_memalign(t, align, size);
            REQUIRE(p != NULL);
            CHECK_EQ((uintptr_t)p % (align < 16 ? 16 : align), 0);
            CHECK(strata_tlsf_usable_size(t, p) >= size);
            memset(p, 0x77, size);
            ptrs[n++] = p;
            CHECK_EQ(strata_tlsf_check(t), 0);
        }
    }
    for (int i = 0; i < n; i += 2)
        CHECK_EQ(strata_tlsf_free(t, ptrs[i]), 0);
    CHECK_EQ(strata_tlsf_check(t), 0);
    for (int i = 1; i < n; i += 2)
        CHECK_EQ(strata_tlsf_free(t, ptrs[i]), 0);
    strata_tlsf_info i = info_of(t);
    CHECK(same_info(&i, &initial));
}

TEST(several_pools)
{
    strata_tlsf *t = fresh(16 << 10);
    REQUIRE(t != NULL);
    strata_tlsf_info initial = info_of(t);
    errno = 0;
    CHECK(strata_tlsf_malloc(t, 20000) == NULL);
    CHECK_EQ(errno, ENOMEM);
    void *pool2 = strata_tlsf_add_pool(t, arena2 + 5, sizeof(arena2) - 5);
    REQUIRE(pool2 != NULL);
    CHECK((unsigned char *)pool2 == arena2 + 16);
    CHECK(strata_tlsf_get_pool(t, 1) == pool2);
    CHECK_EQ(info_of(t).pools, 2);
    unsigned char *big = strata_tlsf_malloc(t, 20000);
    REQUIRE(big != NULL);
    CHECK(big >= arena2 && big < arena2 + sizeof(arena2));
    CHECK_EQ(strata_tlsf_check(t), 0);
    CHECK_EQ(strata_tlsf_check_pool(t, pool2), 0);
    CHECK_EQ(strata_tlsf_remove_pool(t, pool2), STRATA_ERR_BUSY);
    void *pool3 = strata_tlsf_add_pool(t, arena3, sizeof(arena3));
    REQUIRE(pool3 != NULL);
    CHECK_EQ(strata_tlsf_remove_pool(t, pool3), 0); /* empty: removed at once */
    CHECK_EQ(strata_tlsf_free(t, big), 0);
    CHECK_EQ(strata_tlsf_remove_pool(t, pool2), 0);
    CHECK_EQ(strata_tlsf_free(t, big), STRATA_ERR_FOREIGN);
    strata_tlsf_info i = info_of(t);
    CHECK(same_info(&i, &initial));
    CHECK_EQ(strata_tlsf_check(t), 0);
    /* the first pool can go too; then nothing can be allocated */
    CHECK_EQ(strata_tlsf_remove_pool(t, strata_tlsf_get_pool(t, 0)), 0);
    CHECK(strata_tlsf_malloc(t, 16) == NULL);
    CHECK_EQ(info_of(t).pools, 0);
    CHECK_EQ(strata_tlsf_check(t), 0);
}

TEST(create_with_pool_separate_control)
{
    static _Alignas(16) unsigned char control[16 << 10];
    strata_tlsf *t = strata_tlsf_create_with_pool(control, strata_tlsf_size(), NULL, 0);
    REQUIRE(t != NULL);
    CHECK_EQ(info_of(t).pools, 0);
    CHECK(strata_tlsf_malloc(t, 16) == NULL);
    CHECK_EQ(strata_tlsf_check(t), 0);
    t = strata_tlsf_create_with_pool(control + 1, strata_tlsf_size(), arena2, sizeof(arena2));
    REQUIRE(t != NULL);
    CHECK_EQ(info_of(t).pool_bytes, sizeof(arena2));
    void *p = strata_tlsf_malloc(t, 1000);
    CHECK((unsigned char *)p >= arena2 && (unsigned char *)p < arena2 + sizeof(arena2));
    CHECK_EQ(strata_tlsf_check(t), 0);
}

typedef struct walk_state {
    size_t blocks, used, bytes;
    uintptr_t last;
    int disorder;
} walk_state;

static void walker(void *ptr, size_t size, bool used, void *user)
{
    walk_state *w = user;
    w->disorder += (uintptr_t)ptr <= w->last;
    w->last = (uintptr_t)ptr;
    w->blocks++;
    w->used += used;
    w->bytes += size + 16;
}

TEST(walk_covers_every_pool_byte)
{
    strata_tlsf *t = fresh(64 << 10);
    REQUIRE(t != NULL);
    void *pool2 = strata_tlsf_add_pool(t, arena3, sizeof(arena3));
    REQUIRE(pool2 != NULL);
    void *p[40];
    for (int i = 0; i < 40; i++)
        REQUIRE((p[i] = strata_tlsf_malloc(t, 100 + (size_t)i * 40)) != NULL);
    for (int i = 0; i < 40; i += 3)
        CHECK_EQ(strata_tlsf_free(t, p[i]), 0);
    walk_state w = {0};
    strata_tlsf_walk(t, walker, &w);
    strata_tlsf_info i = info_of(t);
    CHECK_EQ(w.blocks, i.free_blocks + i.used_blocks);
    CHECK_EQ(w.used, i.used_blocks);
    CHECK_EQ(w.bytes + 16 * i.pools, i.pool_bytes);
    CHECK_EQ(w.disorder, 0);
    walk_state w2 = {0};
    strata_tlsf_walk_pool(t, pool2, walker, &w2);
    CHECK_EQ(w2.bytes + 16, sizeof(arena3));
}

TEST(info_largest_free)
{
    strata_tlsf *t = fresh(64 << 10);
    REQUIRE(t != NULL);
    void *a = strata_tlsf_malloc(t, 4000), *b = strata_tlsf_malloc(t, 64);
    void *rest = strata_tlsf_malloc(t, info_of(t).largest_free);
    REQUIRE(a && b && rest);
    CHECK_EQ(info_of(t).largest_free, 0);
    CHECK_EQ(info_of(t).free_blocks, 0);
    CHECK_EQ(strata_tlsf_free(t, a), 0);
    CHECK_EQ(info_of(t).largest_free, 4000);
    CHECK_EQ(strata_tlsf_check(t), 0);
}

/* The worst case: a pool cut into thousands of free blocks of every class
 * below the request. Each search still reads at most four index words (two
 * second-level bitmaps, the first-level bitmap, one list head) and each free
 * merges at most two neighbours. */
TEST(worst_case_is_bounded)
{
    strata_tlsf *t = fresh(1 << 20);
    REQUIRE(t != NULL);
    enum { N = 6000 };
    static void *blocks[N];
    unsigned max_steps = 0, max_merges = 0;
    int n = 0;
    for (; n < N; n++) {
        blocks[n] = strata_tlsf_malloc(t, 16 + (size_t)(n % 97) * 3);
        if (blocks[n] == NULL)
            break;
        max_steps = ST_MAX(max_steps, st_tlsf_last_search_steps(t));
    }
    REQUIRE(n > 4000);
    for (int i = 0; i < n; i += 2) { /* every other one: no two can merge */
        CHECK_EQ(strata_tlsf_free(t, blocks[i]), 0);
        max_merges = ST_MAX(max_merges, st_tlsf_last_merges(t));
    }
    strata_tlsf_info i = info_of(t);
    CHECK(i.free_blocks >= (size_t)n / 2);
    CHECK_EQ(max_merges, 0);
    CHECK_EQ(strata_tlsf_check(t), 0);
    /* the largest block is the tail: a request for most of it succeeds */
    size_t want = i.largest_free - 64;
    void *big = strata_tlsf_malloc(t, want);
    CHECK(big != NULL);
    CHECK(st_tlsf_last_search_steps(t) <= 4);
    max_steps = ST_MAX(max_steps, st_tlsf_last_search_steps(t));
    CHECK_EQ(strata_tlsf_free(t, big), 0);
    /* a request larger than anything: refused after the same bounded search */
    errno = 0;
    CHECK(strata_tlsf_malloc(t, i.largest_free + 4096) == NULL);
    CHECK_EQ(errno, ENOMEM);
    CHECK(st_tlsf_last_search_steps(t) <= 4);
    /* small requests keep finding a fragment at once */
    for (int k = 0; k < 1000; k++) {
        void *p = strata_tlsf_malloc(t, 32 + (size_t)(k % 200));
        REQUIRE(p != NULL);
        max_steps = ST_MAX(max_steps, st_tlsf_last_search_steps(t));
    }
    CHECK(max_steps <= 4);
    /* freeing the others merges at most two neighbours each */
    for (int k = 1; k < n; k += 2) {
        CHECK_EQ(strata_tlsf_free(t, blocks[k]), 0);
        max_merges = ST_MAX(max_merges, st_tlsf_last_merges(t));
    }
    CHECK(max_merges <= 2 && max_merges >= 1);
    CHECK_EQ(strata_tlsf_check(t), 0);
}

/* ---- check() must catch damage ---------------------------------------- */

TEST(check_catches_smashed_header)
{
    strata_tlsf *t = fresh(64 << 10);
    REQUIRE(t != NULL);
    unsigned char *a = strata_tlsf_malloc(t, 64), *b = strata_tlsf_malloc(t, 64);
    REQUIRE(a && b);
    size_t saved;
    memcpy(&saved, b - 8, sizeof(saved));
    size_t evil = saved + 4096; /* what an overflow out of a would write */
    memcpy(b - 8, &evil, sizeof(evil));
    CHECK(strata_tlsf_check(t) > 0);
    CHECK(strata_tlsf_check_pool(t, strata_tlsf_get_pool(t, 0)) > 0);
    CHECK_EQ(strata_tlsf_free(t, b), STRATA_ERR_NOT_BLOCK);
    memcpy(b - 8, &saved, sizeof(saved));
    CHECK_EQ(strata_tlsf_check(t), 0);
    CHECK_EQ(strata_tlsf_free(t, b), 0);
}

TEST(check_catches_broken_free_list_link)
{
    strata_tlsf *t = fresh(64 << 10);
    REQUIRE(t != NULL);
    unsigned char *a = strata_tlsf_malloc(t, 64), *b = strata_tlsf_malloc(t, 64);
    unsigned char *c = strata_tlsf_malloc(t, 64), *d = strata_tlsf_malloc(t, 64);
    REQUIRE(a && b && c && d);
    CHECK_EQ(strata_tlsf_free(t, a), 0);
    CHECK_EQ(strata_tlsf_free(t, c), 0); /* same class as a: c -> a on one list */
    CHECK_EQ(strata_tlsf_check(t), 0);
    void *saved;
    memcpy(&saved, c, sizeof(saved)); /* c's next_free */
    void *null = NULL;
    memcpy(c, &null, sizeof(null)); /* a write after free drops a from its list */
    CHECK(strata_tlsf_check(t) > 0);
    memcpy(c, &saved, sizeof(saved));
    CHECK_EQ(strata_tlsf_check(t), 0);
}

TEST(check_catches_bad_back_pointer)
{
    strata_tlsf *t = fresh(64 << 10);
    REQUIRE(t != NULL);
    unsigned char *a = strata_tlsf_malloc(t, 64), *b = strata_tlsf_malloc(t, 64);
    unsigned char *c = strata_tlsf_malloc(t, 64);
    REQUIRE(a && b && c);
    CHECK_EQ(strata_tlsf_free(t, b), 0);
    unsigned char *footer = c - 16 - 8; /* last payload word of b */
    void *saved;
    memcpy(&saved, footer, sizeof(saved));
    CHECK(saved == (void *)(b - 16));
    void *evil = a - 16;
    memcpy(footer, &evil, sizeof(evil));
    CHECK(strata_tlsf_check(t) > 0);
    memcpy(footer, &saved, sizeof(saved));
    CHECK_EQ(strata_tlsf_check(t), 0);
}
