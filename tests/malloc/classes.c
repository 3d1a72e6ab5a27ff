/* SPDX-License-Identifier: MIT */
/*
 * Size classes lending each other their free objects: a class that has no
 * free object of its own takes one of the next classes up (at most half
 * as large again, aligned at least as well) before it takes a new slab.
 * Checked through the strata_ API in a process of its own, so no other
 * test's blocks are in the classes used: the borrowed blocks are exactly
 * the ones freed in the neighbour class, they hold their contents like
 * any other, and the limits (size, alignment) hold.
 */
#include "strata/malloc.h"
#include "test.h"

enum { MANY = 3000, FREED = 100 };

/* MANY blocks of `size` bytes, each filled with its index; then the first
 * FREED of them (the oldest slab's) freed. */
static void **fill_and_free_some(size_t size)
{
    void **p = malloc(MANY * sizeof(void *));
    if (p == NULL)
        abort();
    for (size_t i = 0; i < MANY; i++) {
        if ((p[i] = strata_malloc(size)) == NULL)
            abort();
        memset(p[i], (int)(i & 0xff), size);
    }
    for (size_t i = 0; i < FREED; i++)
        strata_free(p[i]);
    return p;
}

static bool among(void *const *p, size_t n, const void *q)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] == q)
            return true;
    return false;
}

static void free_all(void **p, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        strata_free(p[i]);
}

TEST(a_class_without_free_objects_borrows_from_the_next_ones)
{
    void **big = fill_and_free_some(64), *q[2 * FREED];
    size_t borrowed = 0;
    for (size_t i = 0; i < 2 * FREED; i++) {
        q[i] = strata_malloc(48);
        REQUIRE(q[i] != NULL);
        memset(q[i], 0xa5, 48);
        if (strata_malloc_usable_size(q[i]) == 64) {
            CHECK(among(big, FREED, q[i])); /* one of the 64-byte blocks freed */
            CHECK_EQ(borrowed, i);          /* borrowed first, then a slab of its own */
            borrowed++;
        } else {
            CHECK_EQ(strata_malloc_usable_size(q[i]), 48);
        }
    }
    printf("  %zu of %d 48-byte requests served by freed 64-byte blocks\n", borrowed, 2 * FREED);
    CHECK_EQ(borrowed, FREED); /* every freed one, and no more */
    for (size_t i = FREED; i < MANY; i++) {
        const unsigned char *b = big[i];
        CHECK(b[0] == (i & 0xff) && b[63] == (i & 0xff)); /* the lenders' blocks untouched */
    }
    free_all(q, 0, 2 * FREED);
    free_all(big, FREED, MANY);
    free(big);
}

TEST(borrowing_keeps_alignment_and_bounds_the_waste)
{
    /* 128-byte objects are 128-aligned; 144 and 160 are not: no lending */
    void **p144 = fill_and_free_some(144);
    for (size_t i = 0; i < FREED; i++) {
        void *q = strata_malloc(128);
        REQUIRE(q != NULL);
        CHECK_EQ(strata_malloc_usable_size(q), 128);
        CHECK_EQ((uintptr_t)q % 128, 0);
        strata_free(q);
    }
    /* 32 is twice 16: more than half as large again */
    void **p32 = fill_and_free_some(32);
    for (size_t i = 0; i < FREED; i++) {
        void *q = strata_malloc(16);
        REQUIRE(q != NULL);
        CHECK_EQ(strata_malloc_usable_size(q), 16);
        strata_free(q);
    }
    free_all(p144, FREED, MANY);
    free_all(p32, FREED, MANY);
    free(p144);
    free(p32);
}
