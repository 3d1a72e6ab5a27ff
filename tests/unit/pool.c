/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the fixed-size pool: geometry and alignment, growth and
 * the maximum, reset in O(1) (proved by making every other chunk
 * unreadable while resetting), fixed pools over a caller region, page
 * sources that fail, destroy giving everything back, walk, and check()
 * catching damaged metadata.
 */
#include <errno.h>
#include <sys/mman.h>

#include "strata/pool.h"
#include "test.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

/* A page source over the OS that counts blocks and can be told to fail. */
typedef struct counting_source {
    strata_page_source os;
    long allocs, frees, live_bytes;
    long fail_after; /* allocations allowed before failing; -1: never fail */
    void *blocks[256];
    size_t sizes[256];
    int nblocks;
} counting_source;

static void *cs_alloc(void *ctx, size_t size, size_t align)
{
    counting_source *cs = ctx;
    if (cs->fail_after == 0)
        return NULL;
    if (cs->fail_after > 0)
        cs->fail_after--;
    void *p = cs->os.alloc(cs->os.ctx, size, align);
    if (p != NULL) {
        cs->allocs++;
        cs->live_bytes += (long)size;
        if (cs->nblocks < 256) {
            cs->blocks[cs->nblocks] = p;
            cs->sizes[cs->nblocks++] = size;
        }
    }
    return p;
}

static void cs_free(void *ctx, void *block, size_t size)
{
    counting_source *cs = ctx;
    cs->frees++;
    cs->live_bytes -= (long)size;
    cs->os.free(cs->os.ctx, block, size);
}

static strata_page_source cs_source(counting_source *cs)
{
    memset(cs, 0, sizeof(*cs));
    cs->os = strata_page_source_os();
    cs->fail_after = -1;
    return (strata_page_source){.alloc = cs_alloc, .free = cs_free, .ctx = cs};
}

static strata_pool *make_pool(size_t size, size_t align, size_t per_chunk, size_t max,
                              strata_page_source src)
{
    strata_pool_config cfg = {.object_size = size,
                              .align = align,
                              .objects_per_chunk = per_chunk,
                              .max_objects = max,
                              .source = src};
    return strata_pool_create(&cfg);
}

TEST(create_defaults)
{
    strata_pool *p = make_pool(40, 0, 0, 0, (strata_page_source){0});
    REQUIRE(p != NULL);
    strata_pool_info info;
    strata_pool_get_info(p, &info);
    CHECK_EQ(info.object_size, 40);
    CHECK_EQ(info.align, 16);
    CHECK_EQ(info.stride, 48);
    CHECK_EQ(info.objects_live, 0);
    CHECK_EQ(info.chunks, 1);
    CHECK_EQ(info.chunk_bytes, STRATA_POOL_DEFAULT_CHUNK);
    CHECK(info.capacity >= 8 && info.capacity * 48 < STRATA_POOL_DEFAULT_CHUNK);
    CHECK_EQ(info.max_objects, 0);
    CHECK(info.bytes_held >= STRATA_POOL_DEFAULT_CHUNK);
    CHECK_EQ(info.overhead_bytes, info.bytes_held - info.capacity * info.stride);
    CHECK_EQ(strata_pool_check(p), 0);
    CHECK(strata_pool_overhead() > 0);
    strata_pool_destroy(p);
}

TEST(alignment_of_every_object)
{
    static const size_t aligns[] = {1, 8, 16, 32, 64, 256, 4096};
    static const size_t sizes[] = {1, 7, 24, 100, 4097};
    for (size_t a = 0; a < LEN(aligns); a++) {
        for (size_t s = 0; s < LEN(sizes); s++) {
            strata_pool *p = make_pool(sizes[s], aligns[a], 0, 0, (strata_page_source){0});
            REQUIRE(p != NULL);
            size_t want = aligns[a] < 8 ? 8 : aligns[a];
            for (int i = 0; i < 50; i++) {
                char *o = strata_pool_alloc(p);
                REQUIRE(o != NULL);
                CHECK_EQ((uintptr_t)o % want, 0);
                memset(o, 0xab, sizes[s]);
            }
            CHECK_EQ(strata_pool_check(p), 0);
            strata_pool_destroy(p);
        }
    }
}

TEST(free_then_alloc_reuses_lifo)
{
    strata_pool *p = make_pool(64, 0, 0, 0, (strata_page_source){0});
    REQUIRE(p != NULL);
    void *a = strata_pool_alloc(p), *b = strata_pool_alloc(p);
    REQUIRE(a != NULL && b != NULL && a != b);
    CHECK_EQ(strata_pool_free(p, a), 0);
    CHECK_EQ(strata_pool_free(p, b), 0);
    CHECK(strata_pool_alloc(p) == b);
    CHECK(strata_pool_alloc(p) == a);
    CHECK_EQ(strata_pool_free(p, NULL), 0);
    CHECK_EQ(strata_pool_check(p), 0);
    strata_pool_destroy(p);
}

TEST(grows_by_chunks_and_objects_per_chunk)
{
    counting_source cs;
    strata_pool *p = make_pool(100, 16, 10, 0, cs_source(&cs));
    REQUIRE(p != NULL);
    strata_pool_info info;
    strata_pool_get_info(p, &info);
    CHECK(info.capacity >= 10);
    CHECK_EQ(info.chunk_bytes, 4096); /* 10 x 112 bytes fit the smallest chunk */
    size_t first_cap = info.capacity;
    void *objs[200];
    for (int i = 0; i < 200; i++) {
        objs[i] = strata_pool_alloc(p);
        REQUIRE(objs[i] != NULL);
        CHECK_EQ((uintptr_t)objs[i] % 16, 0);
    }
    strata_pool_get_info(p, &info);
    CHECK(info.chunks > 1);
    CHECK_EQ(info.objects_live, 200);
    CHECK(info.capacity >= 200 && info.capacity > first_cap);
    CHECK(strata_pool_owns(p, objs[199]) && strata_pool_owns(p, objs[0]));
    CHECK_EQ(strata_pool_check(p), 0);
    for (int i = 0; i < 200; i++)
        CHECK_EQ(strata_pool_free(p, objs[i]), 0);
    strata_pool_get_info(p, &info);
    CHECK_EQ(info.objects_live, 0);
    CHECK_EQ(strata_pool_check(p), 0);
    strata_pool_destroy(p);
    CHECK_EQ(cs.allocs, cs.frees);
    CHECK_EQ(cs.live_bytes, 0);
}

TEST(max_objects_is_enforced)
{
    strata_pool *p = make_pool(32, 0, 0, 5, (strata_page_source){0});
    REQUIRE(p != NULL);
    strata_pool_info info;
    strata_pool_get_info(p, &info);
    CHECK_EQ(info.chunk_bytes, 4096); /* a small maximum keeps the chunk small */
    void *o[5];
    for (int i = 0; i < 5; i++)
        REQUIRE((o[i] = strata_pool_alloc(p)) != NULL);
    errno = 0;
    CHECK(strata_pool_alloc(p) == NULL);
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(strata_pool_free(p, o[2]), 0);
    CHECK(strata_pool_alloc(p) == o[2]);
    CHECK(strata_pool_alloc(p) == NULL);
    CHECK_EQ(strata_pool_check(p), 0);
    strata_pool_destroy(p);
}

/* Reset must not read or write any chunk: with every chunk but the first
 * (which holds the descriptor) made inaccessible, it still succeeds. */
TEST(reset_is_constant_time_and_touches_no_chunk)
{
    counting_source cs;
    strata_pool *p = make_pool(256, 0, 16, 0, cs_source(&cs));
    REQUIRE(p != NULL);
    for (int i = 0; i < 200; i++)
        REQUIRE(strata_pool_alloc(p) != NULL);
    strata_pool_info before;
    strata_pool_get_info(p, &before);
    REQUIRE(before.chunks >= 4);
    /* blocks[0] is the first chunk; the others are chunks and the index */
    for (int i = 1; i < cs.nblocks; i++)
        REQUIRE(mprotect(cs.blocks[i], cs.sizes[i], PROT_NONE) == 0);
    strata_pool_reset(p);
    strata_pool_reset(p);
    for (int i = 1; i < cs.nblocks; i++)
        REQUIRE(mprotect(cs.blocks[i], cs.sizes[i], PROT_READ | PROT_WRITE) == 0);
    strata_pool_info after;
    strata_pool_get_info(p, &after);
    CHECK_EQ(after.objects_live, 0);
    CHECK_EQ(after.chunks, before.chunks);
    CHECK_EQ(after.capacity, before.capacity);
    CHECK_EQ(strata_pool_check(p), 0);
    strata_pool_destroy(p);
}

TEST(reset_reuses_chunks_and_invalidates_old_pointers)
{
    counting_source cs;
    strata_pool *p = make_pool(48, 0, 20, 0, cs_source(&cs));
    REQUIRE(p != NULL);
    void *old[100];
    for (int i = 0; i < 100; i++)
        REQUIRE((old[i] = strata_pool_alloc(p)) != NULL);
    strata_pool_info info;
    strata_pool_get_info(p, &info);
    size_t cap = info.capacity, chunks = info.chunks;
    long allocs = cs.allocs;
    strata_pool_reset(p);
    CHECK_EQ(strata_pool_check(p), 0);
    for (int i = 0; i < 10; i++)
        CHECK_EQ(strata_pool_free(p, old[i]), STRATA_ERR_DOUBLE_FREE);
    /* every slot can be handed out again without a new chunk */
    for (size_t i = 0; i < cap; i++) {
        void *o = strata_pool_alloc(p);
        REQUIRE(o != NULL);
        memset(o, 0x5a, 48);
    }
    CHECK_EQ(cs.allocs, allocs);
    strata_pool_get_info(p, &info);
    CHECK_EQ(info.chunks, chunks);
    CHECK_EQ(info.objects_live, cap);
    CHECK_EQ(strata_pool_check(p), 0);
    /* the old pointers are live objects again (same slots), freeable once */
    for (int i = 0; i < 100; i++)
        CHECK_EQ(strata_pool_free(p, old[i]), 0);
    CHECK_EQ(strata_pool_free(p, old[0]), STRATA_ERR_DOUBLE_FREE);
    CHECK_EQ(strata_pool_check(p), 0);
    strata_pool_destroy(p);
}

TEST(create_in_fixed_region)
{
    static _Alignas(64) unsigned char region[8192];
    strata_pool *p = strata_pool_create_in(region + 3, sizeof(region) - 3, 24, 8);
    REQUIRE(p != NULL);
    CHECK((unsigned char *)p >= region && (unsigned char *)p < region + sizeof(region));
    strata_pool_info info;
    strata_pool_get_info(p, &info);
    CHECK_EQ(info.chunks, 1);
    CHECK_EQ(info.stride, 24);
    CHECK(info.capacity > 8192 / 24 - 20 && info.capacity <= 8192 / 24);
    size_t n = 0;
    void *o;
    while ((o = strata_pool_alloc(p)) != NULL) {
        CHECK((unsigned char *)o >= region + 3 &&
              (unsigned char *)o + 24 <= region + sizeof(region));
        CHECK_EQ((uintptr_t)o % 8, 0);
        n++;
    }
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(n, info.capacity);
    CHECK_EQ(strata_pool_check(p), 0);
    strata_pool_reset(p);
    CHECK_EQ(strata_pool_check(p), 0);
    CHECK(strata_pool_alloc(p) != NULL);
    strata_pool_destroy(p);
}

TEST(size_for_is_enough_at_any_alignment)
{
    static const size_t sizes[] = {1, 8, 24, 40, 100, 1000};
    static const size_t aligns[] = {0, 8, 64, 512};
    static const size_t counts[] = {1, 7, 64, 65, 300};
    static _Alignas(4096) unsigned char buf[1 << 20];
    for (size_t s = 0; s < LEN(sizes); s++)
        for (size_t a = 0; a < LEN(aligns); a++)
            for (size_t c = 0; c < LEN(counts); c++)
                for (size_t off = 0; off < 64; off += 13) {
                    size_t need = strata_pool_size_for(sizes[s], aligns[a], counts[c]);
                    REQUIRE(need > 0 && need + off <= sizeof(buf));
                    strata_pool *p = strata_pool_create_in(buf + off, need, sizes[s], aligns[a]);
                    REQUIRE(p != NULL);
                    strata_pool_info info;
                    strata_pool_get_info(p, &info);
                    CHECK(info.capacity >= counts[c]);
                }
    CHECK_EQ(strata_pool_size_for(0, 0, 1), 0);
    CHECK_EQ(strata_pool_size_for(8, 3, 1), 0);
    CHECK_EQ(strata_pool_size_for(8, 0, SIZE_MAX / 4), 0);
}

/* Every address inside a chunk that is not an object start is refused,
 * for strides that are and are not powers of two (the exact division). */
TEST(every_interior_offset_is_not_a_block)
{
    static const size_t sizes[] = {8, 24, 40, 48, 72, 100, 1000, 4000};
    for (size_t s = 0; s < LEN(sizes); s++) {
        strata_pool *p = make_pool(sizes[s], 8, 0, 0, (strata_page_source){0});
        REQUIRE(p != NULL);
        strata_pool_info info;
        strata_pool_get_info(p, &info);
        unsigned char *objs[3];
        for (int i = 0; i < 3; i++)
            REQUIRE((objs[i] = strata_pool_alloc(p)) != NULL);
        for (int i = 0; i < 3; i++)
            for (size_t off = 1; off < info.stride; off++)
                CHECK_EQ(strata_pool_free(p, objs[i] + off), STRATA_ERR_NOT_BLOCK);
        CHECK_EQ(strata_pool_free(p, objs[0] - 8), STRATA_ERR_NOT_BLOCK);
        for (int i = 0; i < 3; i++)
            CHECK_EQ(strata_pool_free(p, objs[i]), 0);
        CHECK_EQ(strata_pool_check(p), 0);
        strata_pool_destroy(p);
    }
}

TEST(source_failure_is_enomem_and_recoverable)
{
    counting_source cs;
    strata_pool *p = make_pool(512, 0, 4, 0, cs_source(&cs));
    REQUIRE(p != NULL);
    strata_pool_info info;
    strata_pool_get_info(p, &info);
    size_t cap = info.capacity;
    for (size_t i = 0; i < cap; i++)
        REQUIRE(strata_pool_alloc(p) != NULL);
    cs.fail_after = 0;
    errno = 0;
    CHECK(strata_pool_alloc(p) == NULL);
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(strata_pool_check(p), 0);
    cs.fail_after = -1;
    CHECK(strata_pool_alloc(p) != NULL);
    CHECK_EQ(strata_pool_check(p), 0);
    strata_pool_destroy(p);
    CHECK_EQ(cs.live_bytes, 0);
    /* creation itself failing */
    (void)cs_source(&cs);
    cs.fail_after = 0;
    strata_pool_config cfg = {.object_size = 64,
                              .source = {.alloc = cs_alloc, .free = cs_free, .ctx = &cs}};
    errno = 0;
    CHECK(strata_pool_create(&cfg) == NULL);
    CHECK_EQ(errno, ENOMEM);
}

/* Growing needs a chunk and, the first time, the index table: when the
 * table cannot be had the chunk goes back and alloc fails cleanly. */
TEST(index_failure_gives_the_chunk_back)
{
    counting_source cs;
    strata_pool *p = make_pool(512, 0, 4, 0, cs_source(&cs));
    REQUIRE(p != NULL);
    strata_pool_info info;
    strata_pool_get_info(p, &info);
    CHECK_EQ(info.bytes_held, info.chunk_bytes); /* one chunk: no index table yet */
    for (size_t i = 0; i < info.capacity; i++)
        REQUIRE(strata_pool_alloc(p) != NULL);
    long held = cs.live_bytes;
    cs.fail_after = 1; /* the chunk, not the table */
    errno = 0;
    CHECK(strata_pool_alloc(p) == NULL);
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(cs.live_bytes, held);
    CHECK_EQ(strata_pool_check(p), 0);
    cs.fail_after = -1;
    CHECK(strata_pool_alloc(p) != NULL);
    strata_pool_get_info(p, &info);
    CHECK_EQ(info.chunks, 2);
    CHECK(info.bytes_held > 2 * info.chunk_bytes);
    CHECK_EQ(strata_pool_check(p), 0);
    strata_pool_destroy(p);
    CHECK_EQ(cs.live_bytes, 0);
    CHECK_EQ(cs.allocs, cs.frees);
}

typedef struct walk_state {
    size_t used, free;
    uintptr_t last;
    int out_of_order;
} walk_state;

static void count_walk(void *obj, bool used, void *user)
{
    walk_state *w = user;
    if ((uintptr_t)obj <= w->last)
        w->out_of_order++;
    w->last = (uintptr_t)obj;
    if (used)
        w->used++;
    else
        w->free++;
}

TEST(walk_visits_every_slot_in_address_order)
{
    strata_pool *p = make_pool(200, 0, 8, 0, (strata_page_source){0});
    REQUIRE(p != NULL);
    void *o[100];
    for (int i = 0; i < 100; i++)
        REQUIRE((o[i] = strata_pool_alloc(p)) != NULL);
    for (int i = 0; i < 100; i += 3)
        CHECK_EQ(strata_pool_free(p, o[i]), 0);
    walk_state w = {0};
    strata_pool_walk(p, count_walk, &w);
    strata_pool_info info;
    strata_pool_get_info(p, &info);
    CHECK_EQ(w.used, info.objects_live);
    CHECK_EQ(w.used, 100 - 34);
    CHECK_EQ(w.used + w.free, info.capacity);
    CHECK_EQ(w.out_of_order, 0);
    strata_pool_reset(p);
    memset(&w, 0, sizeof(w));
    strata_pool_walk(p, count_walk, &w);
    CHECK_EQ(w.used, 0);
    CHECK_EQ(w.free, info.capacity);
    strata_pool_destroy(p);
}

/* ---- check() must catch damage ---------------------------------------- */

TEST(check_catches_free_list_pointing_at_live_object)
{
    strata_pool *p = make_pool(64, 0, 0, 0, (strata_page_source){0});
    REQUIRE(p != NULL);
    void *a = strata_pool_alloc(p), *b = strata_pool_alloc(p);
    REQUIRE(a && b);
    CHECK_EQ(strata_pool_free(p, a), 0);
    CHECK_EQ(strata_pool_check(p), 0);
    memcpy(a, &b, sizeof(b)); /* a write after free: the link now names a live object */
    CHECK(strata_pool_check(p) > 0);
    void *null = NULL;
    memcpy(a, &null, sizeof(null));
    CHECK_EQ(strata_pool_check(p), 0);
    strata_pool_destroy(p);
}

TEST(check_catches_free_list_cycle_and_interior_link)
{
    strata_pool *p = make_pool(64, 0, 0, 0, (strata_page_source){0});
    REQUIRE(p != NULL);
    char *a = strata_pool_alloc(p);
    REQUIRE(a != NULL);
    CHECK_EQ(strata_pool_free(p, a), 0);
    memcpy(a, &a, sizeof(a)); /* a -> a */
    CHECK(strata_pool_check(p) > 0);
    char *mid = a + 8;
    memcpy(a, &mid, sizeof(mid));
    CHECK(strata_pool_check(p) > 0);
    char *outside = (char *)&mid;
    memcpy(a, &outside, sizeof(outside));
    CHECK(strata_pool_check(p) > 0);
    strata_pool_destroy(p);
}

/* The bitmap is the chunk metadata before the first object: fill a chunk,
 * find its first all-ones word and clear one bit of it. */
TEST(check_catches_cleared_allocated_bit)
{
    strata_pool *p = make_pool(16, 16, 256, 0, (strata_page_source){0});
    REQUIRE(p != NULL);
    strata_pool_info info;
    strata_pool_get_info(p, &info);
    unsigned char *first = NULL;
    for (size_t i = 0; i < info.capacity; i++) {
        unsigned char *o = strata_pool_alloc(p);
        REQUIRE(o != NULL);
        if (first == NULL || o < first)
            first = o;
    }
    CHECK_EQ(strata_pool_check(p), 0);
    uintptr_t base = (uintptr_t)first & ~(uintptr_t)(info.chunk_bytes - 1);
    uint64_t *word = NULL;
    for (uint64_t *w = (uint64_t *)base; (unsigned char *)w < first; w++)
        if (*w == UINT64_MAX) {
            word = w;
            break;
        }
    REQUIRE(word != NULL);
    *word &= ~(uint64_t)4;
    CHECK(strata_pool_check(p) > 0);
    *word |= 4;
    CHECK_EQ(strata_pool_check(p), 0);
    strata_pool_destroy(p);
}

TEST(check_catches_smashed_chunk_header)
{
    strata_pool *p = make_pool(64, 0, 16, 0, (strata_page_source){0});
    REQUIRE(p != NULL);
    strata_pool_info info;
    strata_pool_get_info(p, &info);
    void *o = NULL;
    for (size_t i = 0; i <= info.capacity; i++)
        REQUIRE((o = strata_pool_alloc(p)) != NULL); /* the last one is in chunk 2 */
    uintptr_t *hdr = (uintptr_t *)((uintptr_t)o & ~(uintptr_t)(info.chunk_bytes - 1));
    uintptr_t saved = hdr[0];
    hdr[0] ^= 0x40; /* the owner word */
    CHECK(strata_pool_check(p) > 0);
    hdr[0] = saved;
    CHECK_EQ(strata_pool_check(p), 0);
    strata_pool_destroy(p);
}
