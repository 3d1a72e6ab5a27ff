/* SPDX-License-Identifier: MIT */
/*
 * Bad-input tests of TLSF, one per case: NULL, foreign pointers (including
 * unreadable memory and the control structure), interior and misaligned
 * pointers, pointers into free blocks, double frees (also after the block
 * was merged away), damaged neighbours, bad sizes and alignments, regions
 * too small, overlapping or too many pools, and a NULL allocator. After
 * each refusal the allocator is intact (check() is 0).
 */
#include <errno.h>
#include <sys/mman.h>

#include "strata/tlsf.h"
#include "test.h"

static _Alignas(16) unsigned char arena[128 << 10];
static _Alignas(16) unsigned char arena2[64 << 10];

static strata_tlsf *fresh(void)
{
    memset(arena, 0, sizeof(arena));
    return strata_tlsf_create(arena, sizeof(arena));
}

TEST(free_null_is_a_no_op)
{
    strata_tlsf *t = fresh();
    REQUIRE(t != NULL);
    CHECK_EQ(strata_tlsf_free(t, NULL), 0);
    CHECK_EQ(strata_tlsf_check(t), 0);
}

TEST(free_foreign_pointers)
{
    strata_tlsf *t = fresh();
    REQUIRE(t != NULL);
    int local;
    CHECK_EQ(strata_tlsf_free(t, &local), STRATA_ERR_FOREIGN);
    CHECK_EQ(strata_tlsf_free(t, arena2 + 64), STRATA_ERR_FOREIGN);
    CHECK_EQ(strata_tlsf_free(t, (void *)16), STRATA_ERR_FOREIGN);
    CHECK_EQ(strata_tlsf_free(t, arena + sizeof(arena)), STRATA_ERR_FOREIGN);
    CHECK_EQ(strata_tlsf_check(t), 0);
}

TEST(free_unreadable_memory_is_not_touched)
{
    strata_tlsf *t = fresh();
    REQUIRE(t != NULL);
    unsigned char *m = mmap(NULL, 1 << 16, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(m != MAP_FAILED);
    CHECK_EQ(strata_tlsf_free(t, m + 4096), STRATA_ERR_FOREIGN);
    CHECK_EQ(strata_tlsf_usable_size(t, m + 4096), 0);
    errno = 0;
    CHECK(strata_tlsf_realloc(t, m + 4096, 10) == NULL);
    CHECK_EQ(errno, EINVAL);
    munmap(m, 1 << 16);
}

TEST(free_pointer_into_the_control_structure)
{
    strata_tlsf *t = fresh();
    REQUIRE(t != NULL);
    CHECK_EQ(strata_tlsf_free(t, t), STRATA_ERR_FOREIGN);
    CHECK_EQ(strata_tlsf_free(t, (unsigned char *)t + 64), STRATA_ERR_FOREIGN);
    CHECK_EQ(strata_tlsf_check(t), 0);
}

TEST(free_pointer_of_another_allocator)
{
    strata_tlsf *t = fresh();
    strata_tlsf *u = strata_tlsf_create(arena2, sizeof(arena2));
    REQUIRE(t && u);
    void *p = strata_tlsf_malloc(u, 100);
    REQUIRE(p != NULL);
    CHECK_EQ(strata_tlsf_free(t, p), STRATA_ERR_FOREIGN);
    CHECK_EQ(strata_tlsf_free(u, p), 0);
    CHECK_EQ(strata_tlsf_check(t), 0);
    CHECK_EQ(strata_tlsf_check(u), 0);
}

TEST(free_interior_pointer)
{
    strata_tlsf *t = fresh();
    REQUIRE(t != NULL);
    unsigned char *p = strata_tlsf_malloc(t, 1000);
    REQUIRE(p != NULL);
    memset(p, 0, 1000); /* zeros: no header can be faked by chance */
    for (size_t off = 16; off < 1000; off += 16)
        CHECK_EQ(strata_tlsf_free(t, p + off), STRATA_ERR_NOT_BLOCK);
    memset(p, 0xff, 1000);
    CHECK_EQ(strata_tlsf_free(t, p + 512), STRATA_ERR_NOT_BLOCK);
    CHECK_EQ(strata_tlsf_check(t), 0);
    CHECK_EQ(strata_tlsf_free(t, p), 0);
}

TEST(free_misaligned_pointer)
{
    strata_tlsf *t = fresh();
    REQUIRE(t != NULL);
    unsigned char *p = strata_tlsf_malloc(t, 100);
    REQUIRE(p != NULL);
    CHECK_EQ(strata_tlsf_free(t, p + 1), STRATA_ERR_NOT_BLOCK);
    CHECK_EQ(strata_tlsf_free(t, p + 8), STRATA_ERR_NOT_BLOCK);
    CHECK_EQ(strata_tlsf_free(t, p - 8), STRATA_ERR_NOT_BLOCK);
    CHECK_EQ(strata_tlsf_usable_size(t, p + 8), 0);
    CHECK_EQ(strata_tlsf_check(t), 0);
}

TEST(free_pool_start_and_header_addresses)
{
    strata_tlsf *t = fresh();
    REQUIRE(t != NULL);
    unsigned char *pool = strata_tlsf_get_pool(t, 0);
    unsigned char *p = strata_tlsf_malloc(t, 100);
    REQUIRE(pool && p);
    CHECK_EQ(strata_tlsf_free(t, pool), STRATA_ERR_NOT_BLOCK);
    CHECK_EQ(strata_tlsf_free(t, p - 16), STRATA_ERR_NOT_BLOCK);
    CHECK_EQ(strata_tlsf_check(t), 0);
}

TEST(free_pointer_into_a_free_block)
{
    strata_tlsf *t = fresh();
    REQUIRE(t != NULL);
    unsigned char *p = strata_tlsf_malloc(t, 100);
    REQUIRE(p != NULL);
    unsigned char *tail = p + 4096; /* inside the big free block after p */
    CHECK_EQ(strata_tlsf_free(t, tail), STRATA_ERR_NOT_BLOCK);
    CHECK_EQ(strata_tlsf_check(t), 0);
}

TEST(double_free)
{
    strata_tlsf *t = fresh();
    REQUIRE(t != NULL);
    void *a = strata_tlsf_malloc(t, 64), *b = strata_tlsf_malloc(t, 64);
    REQUIRE(a && b);
    CHECK_EQ(strata_tlsf_free(t, a), 0);
    CHECK_EQ(strata_tlsf_free(t, a), STRATA_ERR_DOUBLE_FREE);
    CHECK_EQ(strata_tlsf_usable_size(t, a), 0);
    CHECK_EQ(strata_tlsf_check(t), 0);
}

/* b is freed and merged into a's free block: its old header is now inside
 * a free block, and a second free must still be refused. */
TEST(double_free_after_merge)
{
    strata_tlsf *t = fresh();
    REQUIRE(t != NULL);
    void *a = strata_tlsf_malloc(t, 64), *b = strata_tlsf_malloc(t, 64);
    void *c = strata_tlsf_malloc(t, 64);
    REQUIRE(a && b && c);
    CHECK_EQ(strata_tlsf_free(t, a), 0);
    CHECK_EQ(strata_tlsf_free(t, b), 0);
    int rc = strata_tlsf_free(t, b);
    CHECK(rc == STRATA_ERR_DOUBLE_FREE || rc == STRATA_ERR_NOT_BLOCK);
    CHECK_EQ(strata_tlsf_free(t, c), 0);
    rc = strata_tlsf_free(t, c);
    CHECK(rc == STRATA_ERR_DOUBLE_FREE || rc == STRATA_ERR_NOT_BLOCK);
    strata_tlsf_info info;
    strata_tlsf_get_info(t, &info);
    CHECK_EQ(info.free_blocks, 1);
    CHECK_EQ(info.used_blocks, 0);
    CHECK_EQ(strata_tlsf_check(t), 0);
}

/* A neighbour's header damaged (an overflow out of the block before it):
 * free refuses and changes nothing rather than merge into garbage. */
TEST(free_with_damaged_neighbour_is_refused)
{
    strata_tlsf *t = fresh();
    REQUIRE(t != NULL);
    unsigned char *a = strata_tlsf_malloc(t, 64), *b = strata_tlsf_malloc(t, 64);
    REQUIRE(a && b);
    unsigned char saved[16];
    memcpy(saved, b - 16, 16);
    memset(b - 16, 0x41, 16); /* a's overflow smashes b's header */
    CHECK_EQ(strata_tlsf_free(t, a), STRATA_ERR_CORRUPT);
    CHECK(strata_tlsf_check(t) > 0);
    memcpy(b - 16, saved, 16);
    CHECK_EQ(strata_tlsf_check(t), 0);
    CHECK_EQ(strata_tlsf_free(t, a), 0);
    /* a damaged back pointer of a free predecessor */
    unsigned char *x = strata_tlsf_malloc(t, 64), *y = strata_tlsf_malloc(t, 64);
    unsigned char *z = strata_tlsf_malloc(t, 64);
    REQUIRE(x && y && z);
    REQUIRE(x < y && y < z);
    CHECK_EQ(strata_tlsf_free(t, y), 0); /* y free between x and z */
    void *saved_ptr, *evil = x - 16;
    memcpy(&saved_ptr, z - 24, sizeof(saved_ptr));
    CHECK(saved_ptr == (void *)(y - 16));
    memcpy(z - 24, &evil, sizeof(evil));
    CHECK_EQ(strata_tlsf_free(t, z), STRATA_ERR_CORRUPT);
    memcpy(z - 24, &saved_ptr, sizeof(saved_ptr));
    CHECK_EQ(strata_tlsf_check(t), 0);
    CHECK_EQ(strata_tlsf_free(t, z), 0);
    CHECK_EQ(strata_tlsf_check(t), 0);
}

TEST(malloc_zero_and_overflowing_sizes)
{
    strata_tlsf *t = fresh();
    REQUIRE(t != NULL);
    errno = 0;
    CHECK(strata_tlsf_malloc(t, 0) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(strata_tlsf_malloc(t, SIZE_MAX) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(strata_tlsf_malloc(t, SIZE_MAX - 8) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(strata_tlsf_malloc(t, STRATA_TLSF_BLOCK_MAX) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(strata_tlsf_malloc(t, STRATA_TLSF_BLOCK_MAX - 1) == NULL); /* valid, too big */
    CHECK_EQ(errno, ENOMEM);
    errno = 0;
    CHECK(strata_tlsf_malloc(t, sizeof(arena)) == NULL);
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(strata_tlsf_check(t), 0);
}

TEST(memalign_bad_alignment)
{
    strata_tlsf *t = fresh();
    REQUIRE(t != NULL);
    static const size_t bad[] = {0, 3, 24, 48, 1000, (size_t)1 << 62, SIZE_MAX};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        CHECK(strata_tlsf_memalign(t, bad[i], 64) == NULL);
        CHECK_EQ(errno, EINVAL);
    }
    errno = 0;
    CHECK(strata_tlsf_memalign(t, 64, 0) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(strata_tlsf_memalign(t, 64, SIZE_MAX - 100) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(strata_tlsf_check(t), 0);
}

TEST(realloc_bad_pointer_and_size)
{
    strata_tlsf *t = fresh();
    REQUIRE(t != NULL);
    unsigned char *p = strata_tlsf_malloc(t, 100);
    REQUIRE(p != NULL);
    memset(p, 0x3c, 100);
    errno = 0;
    CHECK(strata_tlsf_realloc(t, p + 16, 200) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(strata_tlsf_realloc(t, p, SIZE_MAX) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(p[99], 0x3c);
    CHECK(strata_tlsf_usable_size(t, p) >= 100);
    CHECK_EQ(strata_tlsf_free(t, p), 0);
    errno = 0;
    CHECK(strata_tlsf_realloc(t, p, 50) == NULL); /* already freed */
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(strata_tlsf_check(t), 0);
}

TEST(create_region_too_small)
{
    errno = 0;
    CHECK(strata_tlsf_create(arena, 100) == NULL);
    CHECK_EQ(errno, ERANGE);
    errno = 0;
    CHECK(strata_tlsf_create(arena, strata_tlsf_size()) == NULL); /* no room for a pool */
    CHECK_EQ(errno, ERANGE);
    errno = 0;
    CHECK(strata_tlsf_create(arena, 0) == NULL);
    CHECK_EQ(errno, ERANGE);
    errno = 0;
    CHECK(strata_tlsf_create_with_pool(arena, 64, NULL, 0) == NULL);
    CHECK_EQ(errno, ERANGE);
    errno = 0;
    CHECK(strata_tlsf_create_with_pool(arena, strata_tlsf_size(), arena2, 40) == NULL);
    CHECK_EQ(errno, ERANGE);
}

TEST(create_bad_region)
{
    errno = 0;
    CHECK(strata_tlsf_create(NULL, 1 << 16) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(strata_tlsf_create(arena, SIZE_MAX) == NULL); /* wraps the address space */
    CHECK_EQ(errno, EINVAL);
}

TEST(add_pool_bad_regions)
{
    strata_tlsf *t = fresh();
    REQUIRE(t != NULL);
    errno = 0;
    CHECK(strata_tlsf_add_pool(t, arena2, 40) == NULL);
    CHECK_EQ(errno, ERANGE);
    errno = 0;
    CHECK(strata_tlsf_add_pool(t, NULL, 4096) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(strata_tlsf_add_pool(t, arena + 4096, 4096) == NULL); /* overlaps the first pool */
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(strata_tlsf_add_pool(t, arena2, SIZE_MAX) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK(strata_tlsf_add_pool(t, arena2, sizeof(arena2)) != NULL);
    errno = 0;
    CHECK(strata_tlsf_add_pool(t, arena2 + 100, 1000) == NULL); /* overlaps the second */
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(strata_tlsf_check(t), 0);
}

TEST(add_pool_overlapping_control)
{
    static _Alignas(16) unsigned char control[32 << 10];
    strata_tlsf *t = strata_tlsf_create_with_pool(control, sizeof(control), NULL, 0);
    REQUIRE(t != NULL);
    errno = 0;
    CHECK(strata_tlsf_add_pool(t, control, sizeof(control)) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK(strata_tlsf_add_pool(t, control + strata_tlsf_size(), 4096) != NULL);
    CHECK_EQ(strata_tlsf_check(t), 0);
}

TEST(too_many_pools)
{
    static _Alignas(16) unsigned char control[16 << 10];
    static _Alignas(16) unsigned char pools[STRATA_TLSF_MAX_POOLS + 1][256];
    strata_tlsf *t = strata_tlsf_create_with_pool(control, sizeof(control), NULL, 0);
    REQUIRE(t != NULL);
    for (int i = 0; i < STRATA_TLSF_MAX_POOLS; i++)
        REQUIRE(strata_tlsf_add_pool(t, pools[i], sizeof(pools[i])) != NULL);
    errno = 0;
    CHECK(strata_tlsf_add_pool(t, pools[STRATA_TLSF_MAX_POOLS], 256) == NULL);
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(strata_tlsf_check(t), 0);
    CHECK_EQ(strata_tlsf_remove_pool(t, pools[3]), 0);
    CHECK(strata_tlsf_add_pool(t, pools[STRATA_TLSF_MAX_POOLS], 256) != NULL);
    CHECK_EQ(strata_tlsf_check(t), 0);
}

TEST(remove_pool_busy_and_foreign)
{
    strata_tlsf *t = fresh();
    REQUIRE(t != NULL);
    void *pool2 = strata_tlsf_add_pool(t, arena2, sizeof(arena2));
    REQUIRE(pool2 != NULL);
    CHECK_EQ(strata_tlsf_remove_pool(t, arena2 + 32), STRATA_ERR_FOREIGN);
    void *p = strata_tlsf_malloc(t, 100000); /* only fits the first pool */
    void *q = strata_tlsf_malloc(t, 40000);  /* the second */
    REQUIRE(p && q);
    CHECK_EQ(strata_tlsf_remove_pool(t, pool2), STRATA_ERR_BUSY);
    CHECK_EQ(strata_tlsf_remove_pool(t, strata_tlsf_get_pool(t, 0)), STRATA_ERR_BUSY);
    CHECK_EQ(strata_tlsf_check(t), 0);
}

TEST(null_allocator)
{
    int x;
    errno = 0;
    CHECK(strata_tlsf_malloc(NULL, 16) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(strata_tlsf_memalign(NULL, 64, 16) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(strata_tlsf_realloc(NULL, NULL, 16) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(strata_tlsf_free(NULL, &x), STRATA_ERR_INVALID);
    CHECK_EQ(strata_tlsf_remove_pool(NULL, &x), STRATA_ERR_INVALID);
    errno = 0;
    CHECK(strata_tlsf_add_pool(NULL, arena2, sizeof(arena2)) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(strata_tlsf_usable_size(NULL, &x), 0);
    CHECK(strata_tlsf_check(NULL) > 0);
}
