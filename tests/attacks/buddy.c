/* SPDX-License-Identifier: MIT */
/* Bad input to the buddy allocator: every case is rejected with its error
 * and leaves the allocator intact (check() passes afterwards). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "strata/buddy.h"
#include "test.h"

#define PAGE 4096

static char *mem;
static strata_buddy *b;

static void setup(void)
{
    mem = aligned_alloc(PAGE * 64, 64 * PAGE);
    b = strata_buddy_create(mem, 64 * PAGE, PAGE);
}

TEST(free_outside_the_region_is_foreign)
{
    setup();
    int local;
    CHECK_EQ(strata_buddy_free(b, &local), STRATA_ERR_FOREIGN);
    CHECK_EQ(strata_buddy_free(b, mem + 64 * PAGE), STRATA_ERR_FOREIGN);
    CHECK_EQ(strata_buddy_free(b, mem), STRATA_ERR_FOREIGN); /* the metadata page */
    CHECK_EQ(strata_buddy_free(b, NULL), STRATA_ERR_FOREIGN);
    CHECK_EQ(strata_buddy_check(b), 0);
    free(mem);
}

TEST(free_of_the_middle_of_a_block_is_rejected)
{
    setup();
    char *p = strata_buddy_alloc_order(b, 2);
    REQUIRE(p != NULL);
    CHECK_EQ(strata_buddy_free(b, p + 1), STRATA_ERR_NOT_BLOCK);   /* unaligned */
    CHECK_EQ(strata_buddy_free(b, p + PAGE), STRATA_ERR_NOT_BLOCK); /* aligned interior */
    CHECK_EQ(strata_buddy_usable_size(b, p + PAGE), 0);
    CHECK_EQ(strata_buddy_check(b), 0);
    CHECK_EQ(strata_buddy_free(b, p), 0);
    free(mem);
}

TEST(double_free_is_rejected)
{
    setup();
    /* pages 1, 2 and 3 (page 0 holds the metadata) */
    char *a = strata_buddy_alloc_order(b, 0);
    char *c = strata_buddy_alloc_order(b, 0);
    char *d = strata_buddy_alloc_order(b, 0);
    REQUIRE(a == mem + PAGE && c == mem + 2 * PAGE && d == mem + 3 * PAGE);
    CHECK_EQ(strata_buddy_free(b, a), 0);
    CHECK_EQ(strata_buddy_free(b, a), STRATA_ERR_DOUBLE_FREE);
    CHECK_EQ(strata_buddy_check(b), 0);
    CHECK_EQ(strata_buddy_free(b, d), 0);
    CHECK_EQ(strata_buddy_free(b, c), 0); /* merges with d into pages 2..3 */
    CHECK_EQ(strata_buddy_free(b, c), STRATA_ERR_DOUBLE_FREE);
    /* d is now inside a larger free block: not the start of one */
    CHECK_EQ(strata_buddy_free(b, d), STRATA_ERR_NOT_BLOCK);
    CHECK_EQ(strata_buddy_check(b), 0);
    free(mem);
}

TEST(bad_sizes_and_orders)
{
    setup();
    errno = 0;
    CHECK(strata_buddy_alloc(b, 0) == NULL && errno == EINVAL);
    CHECK(strata_buddy_alloc_exact(b, 0) == NULL && errno == EINVAL);
    CHECK(strata_buddy_alloc(b, SIZE_MAX) == NULL && errno == ENOMEM);
    CHECK(strata_buddy_alloc_exact(b, SIZE_MAX - 5) == NULL && errno == ENOMEM);
    CHECK(strata_buddy_alloc(b, 65 * PAGE) == NULL && errno == ENOMEM);
    CHECK(strata_buddy_alloc_order(b, 6) == NULL && errno == EINVAL);
    CHECK(strata_buddy_alloc_order(b, 200) == NULL && errno == EINVAL);
    CHECK_EQ(strata_buddy_check(b), 0);
    free(mem);
}

TEST(bad_creation_arguments)
{
    char *m = aligned_alloc(PAGE, 16 * PAGE);
    errno = 0;
    CHECK(strata_buddy_create(NULL, 16 * PAGE, PAGE) == NULL && errno == EINVAL);
    CHECK(strata_buddy_create(m, 16 * PAGE, 8) == NULL && errno == EINVAL);    /* < 16 */
    CHECK(strata_buddy_create(m, 16 * PAGE, 24) == NULL && errno == EINVAL);   /* not 2^k */
    CHECK(strata_buddy_create(m, 16 * PAGE, 0) == NULL && errno == EINVAL);
    CHECK(strata_buddy_create(m, SIZE_MAX, PAGE) == NULL && errno == EINVAL);  /* wraps */
    CHECK(strata_buddy_create(m, PAGE, PAGE) == NULL && errno == ERANGE);      /* metadata only */
    CHECK(strata_buddy_create(m, 100, 64) == NULL && errno == ERANGE);
    strata_buddy_config c = {.min_block = PAGE, .max_order = 32};
    CHECK(strata_buddy_create_ex(m, 16 * PAGE, &c) == NULL && errno == EINVAL);
    char meta[64];
    strata_buddy_config small = {.min_block = PAGE, .meta = meta, .meta_size = sizeof(meta)};
    CHECK(strata_buddy_create_ex(m, 16 * PAGE, &small) == NULL && errno == ERANGE);
    CHECK(strata_buddy_create_ex(m, 16 * PAGE, NULL) == NULL && errno == EINVAL);
    CHECK_EQ(strata_buddy_meta_size(16 * PAGE, 24), 0);
    free(m);
}

TEST(error_strings_name_the_fault)
{
    CHECK(strcmp(strata_strerror(STRATA_ERR_DOUBLE_FREE), "double free") == 0);
    CHECK(strstr(strata_strerror(STRATA_ERR_NOT_BLOCK), "not the start") != NULL);
    CHECK(strstr(strata_strerror(STRATA_ERR_FOREIGN), "not managed") != NULL);
}
