/* SPDX-License-Identifier: MIT */
/* The malloc's layers on their own: the slab layer's bitmap-only mode
 * (lowest-first allocation, the cursor, the tail bits, the check catching
 * damage), segments (4 MiB aligned, header as the buddy's first block, the
 * chunk map, dirty pages and purging) and large blocks (lookup, realloc
 * keeping contents, the chunk map cleared on free). */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>

#include "large.h"
#include "segment.h"
#include "slab.h"
#include "test.h"

#define BLOCK ((size_t)65536)

/* A 64 KiB block aligned to its size (from the C library's malloc). */
static void *aligned_block(void)
{
    void *b = NULL;
    if (posix_memalign(&b, BLOCK, BLOCK) != 0)
        abort();
    return b;
}

TEST(bitmap_layout_fits_the_most_objects)
{
    st_slab_layout l;
    REQUIRE(st_slab_layout_bitmap(BLOCK, 48, 16, &l));
    CHECK_EQ(l.size, 48);
    CHECK_EQ(l.capacity, BLOCK / 48); /* the descriptor is elsewhere */
    CHECK_EQ(l.first, 0);
    CHECK_EQ(l.desc_bytes, 64 + 24 * ((l.capacity + 63) / 64)); /* live, remote, kept words */
    REQUIRE(st_slab_layout_bitmap(BLOCK, 16, 16, &l));
    CHECK(l.desc_bytes <= ST_SEGMENT_SLOT_BYTES); /* the largest fits a segment's slot */
    REQUIRE(st_slab_layout_bitmap(BLOCK, 4096, 4096, &l));
    CHECK_EQ(l.capacity, BLOCK / 4096);
    CHECK(!st_slab_layout_bitmap(BLOCK, BLOCK + 1, 16, &l));
    CHECK(!st_slab_layout_bitmap(BLOCK, 64, 24, &l)); /* alignment not a power of two */
}

/* A descriptor for layout l, outside the block. */
static st_slab *new_desc(const st_slab_layout *l)
{
    st_slab *s = malloc(l->desc_bytes);
    if (s == NULL)
        abort();
    return s;
}

TEST(bitmap_slab_hands_out_lowest_first_and_fills)
{
    void *block = aligned_block();
    st_slab_layout l;
    REQUIRE(st_slab_layout_bitmap(BLOCK, 80, 16, &l));
    st_slab *s = new_desc(&l);
    st_slab_init_bitmap(s, block, &l);
    CHECK(st_slab_object(s, 0) == block);
    CHECK((uintptr_t)st_slab_object(s, l.capacity - 1) + l.size <= (uintptr_t)block + BLOCK);
    CHECK_EQ(st_slab_check(s), 0);
    for (unsigned i = 0; i < l.capacity; i++) {
        void *p = st_slab_take(s);
        REQUIRE(p == st_slab_object(s, i));
    }
    CHECK(st_slab_take(s) == NULL);
    CHECK(st_slab_is_full(s));
    CHECK_EQ(st_slab_check(s), 0);
    /* give back 70 and 3: the next takes are 3, then 70 (the cursor went back) */
    st_slab_give(s, 70);
    st_slab_give(s, 3);
    CHECK_EQ(s->cursor, 0);
    CHECK(st_slab_take(s) == st_slab_object(s, 3));
    CHECK(st_slab_take(s) == st_slab_object(s, 70));
    CHECK(*st_slab_remote_word(s, 1) == 0); /* take and give never touch it */
    CHECK_EQ(st_slab_check(s), 0);
    CHECK_EQ(st_slab_object_index(s, (char *)st_slab_object(s, 5) + 8), STRATA_ERR_NOT_BLOCK);
    free(s);
    free(block);
}

TEST(bitmap_check_catches_damage)
{
    void *block = aligned_block();
    st_slab_layout l;
    REQUIRE(st_slab_layout_bitmap(BLOCK, 48, 16, &l));
    REQUIRE(l.capacity % 64 != 0); /* the last word has tail bits */
    st_slab *s = new_desc(&l);
    st_slab_init_bitmap(s, block, &l);
    for (int i = 0; i < 200; i++)
        REQUIRE(st_slab_take(s) != NULL);
    REQUIRE(st_slab_check(s) == 0);
    s->free_count++; /* SLAB-13 */
    CHECK(st_slab_check(s) > 0);
    s->free_count--;
    unsigned last = (l.capacity - 1) / 64;
    st_slab_set_live(s, last, st_slab_live(s, last) & ~(UINT64_MAX << (l.capacity % 64)));
    CHECK(st_slab_check(s) > 0); /* SLAB-13: a tail bit clear */
    st_slab_set_live(s, last, st_slab_live(s, last) | (UINT64_MAX << (l.capacity % 64)));
    REQUIRE(st_slab_check(s) == 0);
    st_slab_give(s, 10);
    s->cursor = 2; /* SLAB-14: a word below the cursor is not full */
    CHECK(st_slab_check(s) > 0);
    s->cursor = 10000;
    CHECK(st_slab_check(s) > 0);
    free(s);
    free(block);
}

TEST(bitmap_slab_against_a_model)
{
    test_seed("bitmap slab");
    void *block = aligned_block();
    st_slab_layout l;
    REQUIRE(st_slab_layout_bitmap(BLOCK, 16, 16, &l));
    st_slab *s = new_desc(&l);
    st_slab_init_bitmap(s, block, &l);
    bool *live = calloc(l.capacity, 1);
    REQUIRE(live != NULL);
    for (long step = 0; step < test_steps(20000); step++) {
        unsigned i = (unsigned)test_rand_range(0, l.capacity - 1);
        if (live[i]) {
            st_slab_give(s, i);
            live[i] = false;
        } else {
            unsigned lowest = 0;
            while (live[lowest])
                lowest++;
            void *p = st_slab_take(s);
            REQUIRE(p == st_slab_object(s, lowest));
            live[lowest] = true;
        }
        REQUIRE(st_slab_check(s) == 0);
    }
    free(live);
    free(s);
    free(block);
}

/* A batch of ranges: adjacent ones merge, a full batch goes out before
 * the next range, and a flush gives back every range (the pages read as
 * zero) and nothing else, leaving errno alone. */
static void purge_batch(void)
{
    enum { PAGES = 3 * ST_OS_BATCH + 8 };
    unsigned char *m = st_os_map_aligned(PAGES * ST_PAGE_SIZE, ST_PAGE_SIZE);
    REQUIRE(m != NULL);
    memset(m, 0x5a, PAGES * ST_PAGE_SIZE);
    st_os_batch b = {0};
    st_os_batch_add(&b, m, ST_PAGE_SIZE);
    st_os_batch_add(&b, m + ST_PAGE_SIZE, ST_PAGE_SIZE); /* adjacent: one range */
    CHECK_EQ(b.count, 1);
    CHECK_EQ(b.bytes, 2 * ST_PAGE_SIZE);
    /* every third page from page 3 on: more ranges than a batch holds */
    size_t added = 0;
    for (size_t page = 3; page < PAGES; page += 3, added++)
        st_os_batch_add(&b, m + page * ST_PAGE_SIZE, ST_PAGE_SIZE);
    CHECK(added + 1 > ST_OS_BATCH);
    CHECK_EQ(b.count, (added + 1) % ST_OS_BATCH == 0 ? ST_OS_BATCH : (added + 1) % ST_OS_BATCH);
    CHECK_EQ(m[0], 0); /* the first batch went out when it was full */
    errno = 1234;
    st_os_batch_flush(&b);
    CHECK_EQ(errno, 1234);
    CHECK_EQ(b.count, 0);
    CHECK_EQ(b.bytes, 0);
    for (size_t page = 0; page < PAGES; page++) {
        bool purged = page < 2 || (page >= 3 && page % 3 == 0);
        unsigned char want = purged ? 0 : 0x5a;
        if (m[page * ST_PAGE_SIZE] != want || m[page * ST_PAGE_SIZE + ST_PAGE_SIZE - 1] != want) {
            fprintf(stderr, "  page %zu: %#x, want %#x\n", page, m[page * ST_PAGE_SIZE], want);
            CHECK(false);
        }
    }
    st_os_batch_flush(&b); /* empty: nothing happens */
    st_os_unmap(m, PAGES * ST_PAGE_SIZE);
}

TEST(purge_batch_gives_back_its_ranges_and_nothing_else)
{
    purge_batch(); /* with one call a batch where the kernel can */
    bool was = st_os_batch_vectors(false);
    purge_batch(); /* with one madvise a range */
    st_os_batch_vectors(was);
}

TEST(segment_is_aligned_and_found_from_any_address)
{
    st_segment *seg = st_segment_new(NULL);
    REQUIRE(seg != NULL);
    CHECK(st_is_aligned((uintptr_t)seg, ST_SEGMENT_SIZE));
    CHECK_EQ(st_segment_check(seg), 0);
    CHECK(st_segment_of((char *)seg + 12345) == seg);
    CHECK(st_segment_of((char *)seg + ST_SEGMENT_SIZE - 1) == seg);
    CHECK(st_segment_of((char *)seg + ST_SEGMENT_SIZE) == NULL);
    int local;
    CHECK(st_segment_of(&local) == NULL);
    for (unsigned i = 0; i < seg->header_pages; i++)
        CHECK_EQ(seg->pages[i], ST_PAGE_HEADER);
    CHECK_EQ(seg->pages[seg->header_pages], ST_PAGE_FREE);
    CHECK_EQ(seg->used_pages, 0);
    /* descriptor slots: per 64 KiB granule one of each tier, inside the
     * header, each tier an array, all apart and 128-byte aligned (page
     * entries keep the class in the low bits) */
    char *end = (char *)seg + (size_t)seg->header_pages * ST_PAGE_SIZE, *prev_end = NULL;
    for (size_t t = 0; t < ST_SEGMENT_SLOT_TIERS; t++) {
        size_t bytes = st_segment_slot_bytes[t];
        CHECK(bytes % 128 == 0 && (t == 0 || bytes > st_segment_slot_bytes[t - 1]));
        char *first = st_segment_slab_slot(seg, seg, bytes);
        CHECK(first >= (char *)&seg->buddy_meta && (prev_end == NULL || first >= prev_end));
        for (size_t g = 0; g < ST_SEGMENT_GRANULES; g++) {
            char *granule = (char *)seg + (g << ST_GRANULE_SHIFT);
            char *slot = st_segment_slab_slot(seg, granule + 12345, bytes);
            CHECK(slot == first + g * bytes && st_is_aligned((uintptr_t)slot, 128));
            CHECK(slot + bytes <= end);
            if (t > 0) /* a descriptor one byte larger than the tier below gets this tier */
                CHECK(st_segment_slab_slot(seg, granule, st_segment_slot_bytes[t - 1] + 1) == slot);
        }
        prev_end = first + ST_SEGMENT_GRANULES * bytes;
    }
    CHECK_EQ(st_segment_slot_bytes[ST_SEGMENT_SLOT_TIERS - 1], ST_SEGMENT_SLOT_BYTES);
    st_segment_release(seg);
    CHECK(st_segment_of((char *)seg + 12345) == NULL);
    st_segment_cache_flush();
    CHECK_EQ(st_segment_cached(), 0);
}

TEST(segment_pages_dirty_purge_and_reuse)
{
    st_segment *seg = st_segment_new(NULL);
    REQUIRE(seg != NULL);
    size_t dirty = 99;
    char *exact = st_segment_alloc_pages(seg, 5, false, &dirty);
    REQUIRE(exact != NULL);
    CHECK_EQ(dirty, 0);
    CHECK_EQ(st_segment_run_pages(seg, exact), 5);
    char *aligned = st_segment_alloc_pages(seg, 16, true, &dirty);
    REQUIRE(aligned != NULL);
    CHECK(st_is_aligned((uintptr_t)aligned, 16 * ST_PAGE_SIZE));
    CHECK_EQ(seg->used_pages, 21);
    CHECK_EQ(st_segment_check(seg), 0);
    memset(aligned, 7, 16 * ST_PAGE_SIZE);
    CHECK_EQ(st_segment_free_pages(seg, aligned, 0), 16);
    CHECK(st_segment_has_dirty(seg));
    uint64_t ranges = 0;
    st_os_batch batch = {0};
    CHECK_EQ(st_segment_purge(seg, &batch, &ranges), 16 * ST_PAGE_SIZE);
    CHECK_EQ(ranges, 1);
    CHECK_EQ(batch.count, 1);
    CHECK_EQ(batch.bytes, 16 * ST_PAGE_SIZE);
    CHECK(aligned[100] == 7); /* queued, not given back yet */
    st_os_batch_flush(&batch);
    CHECK_EQ(batch.count, 0);
    CHECK(!st_segment_has_dirty(seg));
    CHECK(aligned[100] == 0); /* purged pages come back as zeros */
    st_segment_free_pages(seg, exact, 0);
    char *again = st_segment_alloc_pages(seg, 5, false, &dirty);
    CHECK(again != NULL);
    CHECK_EQ(dirty, 5); /* freed, not purged: still resident */
    st_segment_free_pages(seg, again, 0);
    CHECK_EQ(seg->used_pages, 0);
    CHECK_EQ(st_segment_check(seg), 0);
    st_segment_release(seg);
}

/* Is the page at p resident? */
static bool resident(const void *p)
{
    unsigned char v = 0;
    void *page = (void *)st_align_down((uintptr_t)p, ST_PAGE_SIZE);
    return mincore(page, ST_PAGE_SIZE, &v) == 0 && (v & 1);
}

TEST(slot_pages_go_back_when_their_slabs_do)
{
    st_segment *seg = st_segment_new(NULL);
    REQUIRE(seg != NULL);
    const size_t big = ST_SEGMENT_SLOT_BYTES; /* 1,664: pages hold 2 or 3 such slots */
    char *g = (char *)seg + ((size_t)8 << ST_GRANULE_SHIFT);
    char *a = st_segment_slot_take(seg, g, big);
    char *b = st_segment_slot_take(seg, g + ((size_t)1 << ST_GRANULE_SHIFT), big);
    REQUIRE(a + big == b);
    memset(a, 0x5a, big);
    memset(b, 0xa5, big);
    /* giving one back keeps the pages the other still touches, contents
     * included */
    st_segment_slot_put(seg, g, big);
    CHECK(resident(b) && resident(b + big - 1));
    CHECK((unsigned char)b[0] == 0xa5 && (unsigned char)b[big - 1] == 0xa5);
    /* the last one of a page gone: the page goes to the OS */
    st_segment_slot_put(seg, g + ((size_t)1 << ST_GRANULE_SHIFT), big);
    CHECK(!resident(b) && !resident(b + big - 1));
    CHECK(b[0] == 0);
    for (size_t i = 0; i < ST_SEGMENT_SLOT_PAGES; i++)
        CHECK_EQ(seg->slot_users[i], 0);
    st_segment_release(seg);
}

TEST(large_blocks_lookup_realloc_and_free)
{
    static const size_t aligns[] = {16, 4096, (size_t)1 << 22, (size_t)1 << 24};
    for (size_t a = 0; a < sizeof(aligns) / sizeof(aligns[0]); a++) {
        bool fresh = false;
        char *p = st_large_alloc(3 << 20, aligns[a], 0, &fresh);
        REQUIRE(p != NULL);
        CHECK(st_is_aligned((uintptr_t)p, aligns[a]));
        CHECK(st_large_lookup(p) == ST_LARGE_OK);
        CHECK(st_large_lookup(p + 64) == ST_LARGE_INSIDE);
        CHECK(st_large_usable_size(p) >= (3 << 20));
        if (fresh)
            CHECK(p[(3 << 20) - 1] == 0);
        for (size_t i = 0; i < (3 << 20); i += 4096)
            p[i] = (char)(i >> 12);
        if (aligns[a] == 16) {
            char *q = st_large_realloc(p, 40 << 20, 0);
            REQUIRE(q != NULL);
            for (size_t i = 0; i < (3 << 20); i += 4096)
                REQUIRE(q[i] == (char)(i >> 12));
            q = st_large_realloc(q, 2 << 20, 0);
            REQUIRE(q != NULL);
            CHECK(q[4096] == 1);
            p = q;
        }
        CHECK(st_large_free(p, 0) == ST_LARGE_OK);
        CHECK(st_large_lookup(p) != ST_LARGE_OK); /* cached (FREED) or unmapped */
    }
    st_large_decay(0, 0, true);
    int local;
    CHECK(st_large_lookup(&local) == ST_LARGE_NOT_OURS);
}

/* Bytes of live large mappings, and their usable bytes. */
static size_t large_mapped(size_t *usable)
{
    size_t blocks, mapped;
    st_large_totals(&blocks, &mapped, usable);
    return mapped;
}

TEST(large_block_shrink_keeps_its_pages_until_the_decay)
{
    const size_t M = (size_t)1 << 20;
    st_large_decay(0, 0, true);
    size_t usable0, mapped0 = large_mapped(&usable0), usable;
    char *p = st_large_alloc(40 * M, 16, 1000, NULL);
    REQUIRE(p != NULL);
    for (size_t i = 0; i < 40 * M; i += 4096)
        p[i] = (char)(i >> 12);
    size_t mapped = large_mapped(&usable);
    CHECK(mapped >= mapped0 + 40 * M);
    /* Shrink: same block, smaller size, the mapping kept whole. */
    CHECK(st_large_realloc(p, 10 * M, 1000) == p);
    CHECK(st_large_usable_size(p) >= 10 * M && st_large_usable_size(p) < 10 * M + 4096);
    CHECK_EQ(large_mapped(&usable), mapped);
    CHECK_EQ(usable - usable0, st_large_usable_size(p));
    CHECK(st_large_lookup(p + 20 * M) == ST_LARGE_INSIDE); /* slack: still ours */
    /* Grow again within the mapping: in place, the kept pages as they were. */
    CHECK(st_large_realloc(p, 30 * M, 1100) == p);
    CHECK(p[25 * M] == (char)((25 * M) >> 12));
    CHECK(st_large_realloc(p, 5 * M, 1200) == p);
    /* The slack is older than the decay only from 2000 (listed at 1000). */
    st_large_decay(1999, 1000, false);
    CHECK_EQ(large_mapped(&usable), mapped);
    st_large_decay(2000, 1000, false);
    size_t trimmed = large_mapped(&usable);
    CHECK(trimmed < mapped0 + 6 * M);
    CHECK(trimmed >= mapped0 + 5 * M);
    for (size_t i = 0; i < 5 * M; i += 4096)
        REQUIRE(p[i] == (char)(i >> 12));
    CHECK(st_large_lookup(p) == ST_LARGE_OK);
    CHECK(st_large_lookup(p + 20 * M) == ST_LARGE_NOT_OURS); /* its chunk unmarked */
    /* Growing past the trimmed mapping remaps; the contents move along. */
    char *q = st_large_realloc(p, 20 * M, 3000);
    REQUIRE(q != NULL);
    for (size_t i = 0; i < 5 * M; i += 4096)
        REQUIRE(q[i] == (char)(i >> 12));
    CHECK(st_large_free(q, 3000) == ST_LARGE_OK);
    /* A cached mapping reused for a smaller block: its rest is slack. */
    char *r = st_large_alloc(8 * M, 16, 4000, NULL);
    REQUIRE(r != NULL);
    CHECK(r == q);
    CHECK(st_large_usable_size(r) < 9 * M);
    CHECK(large_mapped(&usable) >= mapped0 + 20 * M);
    st_large_decay(4000, 1000, true);
    CHECK(large_mapped(&usable) < mapped0 + 9 * M);
    CHECK(st_large_free(r, 5000) == ST_LARGE_OK);
    st_large_decay(0, 0, true);
    CHECK_EQ(large_mapped(&usable), mapped0);
    CHECK_EQ(usable, usable0);
}
