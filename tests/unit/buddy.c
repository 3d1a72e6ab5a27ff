/* SPDX-License-Identifier: MIT */
/* Unit tests of the buddy allocator: carving, split, merge, exact-size
 * allocation, metadata placement, info and the /proc/buddyinfo line. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "strata/buddy.h"
#include "test.h"

#define PAGE 4096

/* An arena aligned to 64 pages, so tests can place regions at known
 * absolute alignments. */
static char *arena(size_t pages)
{
    size_t bytes = (pages + 63) / 64 * 64 * PAGE; /* aligned_alloc wants a multiple */
    char *p = aligned_alloc(64 * PAGE, bytes);
    memset(p, 0, bytes);
    return p;
}

static strata_buddy *external(void *region, size_t size, size_t min_block, unsigned max_order,
                              void **meta)
{
    size_t need = strata_buddy_meta_size(size, min_block);
    *meta = malloc(need);
    strata_buddy_config c = {.min_block = min_block, .max_order = max_order, .meta = *meta,
                             .meta_size = need};
    return strata_buddy_create_ex(region, size, &c);
}

TEST(inside_metadata_is_reserved_at_the_start)
{
    char *mem = arena(64);
    strata_buddy *b = strata_buddy_create(mem, 64 * PAGE, PAGE);
    REQUIRE(b != NULL);
    CHECK((char *)b >= mem && (char *)b < mem + PAGE);
    strata_buddy_info info;
    strata_buddy_get_info(b, &info);
    /* one page of metadata, 63 pages managed: 1+2+4+8+16+32 */
    CHECK_EQ(info.meta_bytes, PAGE);
    CHECK_EQ(info.managed_bytes, 63 * PAGE);
    CHECK_EQ(info.free_bytes, 63 * PAGE);
    for (unsigned k = 0; k <= 5; k++)
        CHECK_EQ(info.free_blocks[k], 1);
    CHECK_EQ(info.largest_free, 32 * PAGE);
    CHECK_EQ(strata_buddy_check(b), 0);
    free(mem);
}

TEST(unaligned_region_is_carved_into_maximal_aligned_blocks)
{
    char *mem = arena(64);
    void *meta;
    /* pages 3..15 of an arena aligned to 64 pages: blocks 3 (order 0),
     * 4..7 (order 2), 8..15 (order 3) */
    strata_buddy *b = external(mem + 3 * PAGE, 13 * PAGE, PAGE, 0, &meta);
    REQUIRE(b != NULL);
    strata_buddy_info info;
    strata_buddy_get_info(b, &info);
    CHECK_EQ(info.free_blocks[0], 1);
    CHECK_EQ(info.free_blocks[1], 0);
    CHECK_EQ(info.free_blocks[2], 1);
    CHECK_EQ(info.free_blocks[3], 1);
    CHECK_EQ(info.managed_bytes, 13 * PAGE);
    CHECK(strata_buddy_alloc_order(b, 3) == mem + 8 * PAGE);
    CHECK(strata_buddy_alloc_order(b, 2) == mem + 4 * PAGE);
    CHECK(strata_buddy_alloc_order(b, 0) == mem + 3 * PAGE);
    CHECK(strata_buddy_alloc_order(b, 0) == NULL && errno == ENOMEM);
    CHECK_EQ(strata_buddy_check(b), 0);
    free(meta);
    free(mem);
}

TEST(split_on_alloc_and_merge_on_free)
{
    char *mem = arena(16);
    void *meta;
    strata_buddy *b = external(mem, 16 * PAGE, PAGE, 0, &meta);
    REQUIRE(b != NULL);
    void *p = strata_buddy_alloc_order(b, 0);
    CHECK(p == mem);
    strata_buddy_info info;
    strata_buddy_get_info(b, &info);
    /* the order-4 block split into 1+1+2+4+8 pages, the first page used */
    for (unsigned k = 0; k <= 3; k++)
        CHECK_EQ(info.free_blocks[k], 1);
    CHECK_EQ(info.free_blocks[4], 0);
    void *q = strata_buddy_alloc_order(b, 0);
    CHECK(q == mem + PAGE); /* the buddy of p: p ^ 4096 */
    CHECK_EQ(strata_buddy_free(b, p), 0);
    CHECK_EQ(strata_buddy_check(b), 0);
    strata_buddy_get_info(b, &info);
    CHECK_EQ(info.free_blocks[0], 1); /* p cannot merge: q is used */
    CHECK_EQ(strata_buddy_free(b, q), 0);
    strata_buddy_get_info(b, &info);
    CHECK_EQ(info.free_blocks[4], 1); /* merged all the way up */
    CHECK_EQ(info.free_blocks[0] + info.free_blocks[1] + info.free_blocks[2], 0);
    CHECK_EQ(strata_buddy_check(b), 0);
    free(meta);
    free(mem);
}

TEST(alloc_by_bytes_rounds_up_to_a_power_of_two_block)
{
    char *mem = arena(64);
    void *meta;
    strata_buddy *b = external(mem, 64 * PAGE, PAGE, 0, &meta);
    REQUIRE(b != NULL);
    void *p = strata_buddy_alloc(b, PAGE + 1);
    REQUIRE(p != NULL);
    CHECK_EQ(strata_buddy_usable_size(b, p), 2 * PAGE);
    CHECK(((uintptr_t)p & (2 * PAGE - 1)) == 0);
    void *r = strata_buddy_alloc(b, 17 * PAGE);
    REQUIRE(r != NULL);
    CHECK_EQ(strata_buddy_usable_size(b, r), 32 * PAGE);
    CHECK(((uintptr_t)r & (32 * PAGE - 1)) == 0);
    /* 64 pages cannot be had any more: 2 + 32 are used */
    CHECK(strata_buddy_alloc(b, 33 * PAGE) == NULL && errno == ENOMEM);
    CHECK_EQ(strata_buddy_check(b), 0);
    free(meta);
    free(mem);
}

TEST(exact_allocation_gives_the_tail_back)
{
    char *mem = arena(64);
    void *meta;
    strata_buddy *b = external(mem, 64 * PAGE, PAGE, 0, &meta);
    REQUIRE(b != NULL);
    void *p = strata_buddy_alloc_exact(b, 33 * PAGE - 100);
    REQUIRE(p == mem);
    strata_buddy_info info;
    strata_buddy_get_info(b, &info);
    CHECK_EQ(info.used_bytes, 33 * PAGE);
    CHECK_EQ(strata_buddy_usable_size(b, p), 33 * PAGE);
    /* tail of 31 pages at page 33: 1 + 2 + 4 + 8 + 16 */
    for (unsigned k = 0; k <= 4; k++)
        CHECK_EQ(info.free_blocks[k], 1);
    CHECK_EQ(strata_buddy_check(b), 0);
    /* the tail really is usable: 16 pages at page 48, 8 at page 40 */
    CHECK(strata_buddy_alloc_order(b, 4) == mem + 48 * PAGE);
    CHECK(strata_buddy_alloc_order(b, 3) == mem + 40 * PAGE);
    CHECK_EQ(strata_buddy_free(b, mem + 48 * PAGE), 0);
    CHECK_EQ(strata_buddy_free(b, mem + 40 * PAGE), 0);
    /* the second block of the run (page 32) is not an allocation start */
    CHECK_EQ(strata_buddy_free(b, mem + 32 * PAGE), STRATA_ERR_NOT_BLOCK);
    CHECK_EQ(strata_buddy_free(b, p), 0);
    strata_buddy_get_info(b, &info);
    CHECK_EQ(info.free_blocks[6], 1);
    CHECK_EQ(info.used_bytes, 0);
    CHECK_EQ(strata_buddy_check(b), 0);
    free(meta);
    free(mem);
}

TEST(max_order_caps_block_size)
{
    char *mem = arena(16);
    void *meta;
    strata_buddy *b = external(mem, 16 * PAGE, PAGE, 2, &meta);
    REQUIRE(b != NULL);
    strata_buddy_info info;
    strata_buddy_get_info(b, &info);
    CHECK_EQ(info.max_order, 2);
    CHECK_EQ(info.free_blocks[2], 4);
    CHECK(strata_buddy_alloc_order(b, 3) == NULL && errno == EINVAL);
    CHECK(strata_buddy_alloc(b, 5 * PAGE) == NULL && errno == ENOMEM);
    void *p = strata_buddy_alloc_order(b, 0);
    CHECK_EQ(strata_buddy_free(b, p), 0);
    strata_buddy_get_info(b, &info);
    CHECK_EQ(info.free_blocks[2], 4); /* merging stops at max_order */
    CHECK_EQ(strata_buddy_check(b), 0);
    free(meta);
    free(mem);
}

TEST(external_metadata_never_touches_the_region)
{
    char *mem = arena(64);
    memset(mem, 0xab, 64 * PAGE);
    void *meta;
    strata_buddy *b = external(mem, 64 * PAGE, 256, 0, &meta);
    REQUIRE(b != NULL);
    void *held[40];
    for (int i = 0; i < 40; i++)
        held[i] = strata_buddy_alloc(b, 256u << (i % 5));
    for (int i = 0; i < 40; i += 2)
        CHECK_EQ(strata_buddy_free(b, held[i]), 0);
    CHECK_EQ(strata_buddy_check(b), 0);
    size_t untouched = 0;
    for (size_t i = 0; i < 64 * PAGE; i++)
        untouched += (unsigned char)mem[i] == 0xab;
    CHECK_EQ(untouched, 64 * PAGE);
    free(meta);
    free(mem);
}

TEST(small_min_block_in_region)
{
    char *mem = arena(1);
    strata_buddy *b = strata_buddy_create(mem, PAGE, 16);
    REQUIRE(b != NULL);
    strata_buddy_info info;
    strata_buddy_get_info(b, &info);
    CHECK(info.meta_bytes < PAGE / 2);
    CHECK_EQ(info.managed_bytes + info.meta_bytes, PAGE);
    void *p = strata_buddy_alloc(b, 1);
    REQUIRE(p != NULL);
    CHECK(((uintptr_t)p & 15) == 0);
    CHECK_EQ(strata_buddy_usable_size(b, p), 16);
    CHECK_EQ(strata_buddy_free(b, p), 0);
    CHECK_EQ(strata_buddy_check(b), 0);
    free(mem);
}

TEST(buddyinfo_line_has_one_column_per_order)
{
    char *mem = arena(16);
    void *meta;
    strata_buddy *b = external(mem, 16 * PAGE, PAGE, 0, &meta);
    REQUIRE(b != NULL);
    strata_buddy_alloc_order(b, 0);
    char line[256];
    int n = strata_buddy_format(b, "Segment", line, sizeof(line));
    const char *want = "Node 0, zone  Segment      1      1      1      1      0 \n";
    CHECK_EQ(n, (int)strlen(want));
    CHECK(strcmp(line, want) == 0);
    char tiny[10];
    CHECK_EQ(strata_buddy_format(b, "Segment", tiny, sizeof(tiny)), n);
    CHECK(strlen(tiny) == 9);
    free(meta);
    free(mem);
}

static void sum_walk(void *block, size_t size, bool used, void *user)
{
    size_t *sums = user;
    (void)block;
    sums[used] += size;
}

TEST(walk_visits_every_block)
{
    char *mem = arena(64);
    void *meta;
    strata_buddy *b = external(mem, 64 * PAGE, PAGE, 0, &meta);
    REQUIRE(b != NULL);
    strata_buddy_alloc_exact(b, 5 * PAGE);
    strata_buddy_alloc_order(b, 3);
    size_t sums[2] = {0, 0};
    strata_buddy_walk(b, sum_walk, sums);
    CHECK_EQ(sums[1], 13 * PAGE);
    CHECK_EQ(sums[0], 51 * PAGE);
    free(meta);
    free(mem);
}

TEST(check_catches_a_write_into_a_free_block)
{
    char *mem = arena(64);
    strata_buddy *b = strata_buddy_create(mem, 64 * PAGE, PAGE);
    REQUIRE(b != NULL);
    void *p = strata_buddy_alloc_order(b, 2);
    REQUIRE(p != NULL);
    CHECK_EQ(strata_buddy_free(b, p), 0);
    CHECK_EQ(strata_buddy_check(b), 0);
    /* a use after free scribbles over the free block's list links */
    memset(p, 0x5a, 16);
    CHECK(strata_buddy_check(b) > 0);
    free(mem);
}

TEST(check_catches_damaged_external_links)
{
    char *mem = arena(64);
    void *meta;
    strata_buddy *b = external(mem, 64 * PAGE, PAGE, 0, &meta);
    REQUIRE(b != NULL);
    CHECK(strata_buddy_alloc_order(b, 0) != NULL);
    CHECK_EQ(strata_buddy_check(b), 0);
    size_t size = strata_buddy_meta_size(64 * PAGE, PAGE);
    memset((char *)meta + size / 2, 0, size - size / 2);
    CHECK(strata_buddy_check(b) > 0);
    free(meta);
    free(mem);
}
