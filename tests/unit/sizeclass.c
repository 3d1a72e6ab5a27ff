/* SPDX-License-Identifier: MIT */
/* The malloc's size classes: every request maps to the smallest class
 * that holds it, classes grow strictly, the rounding loss stays within the
 * documented bounds, and every class has a slab order that fits 8 objects. */
#include "sizeclass.h"
#include "slab.h"
#include "test.h"

TEST(every_size_maps_to_the_smallest_class_that_holds_it)
{
    for (size_t n = 1; n <= ST_SMALL_MAX; n++) {
        unsigned c = st_sizeclass_of(n);
        REQUIRE(c < ST_CLASS_COUNT);
        REQUIRE(st_sizeclass_size(c) >= n);
        REQUIRE(c == 0 || st_sizeclass_size(c - 1) < n);
    }
    CHECK_EQ(st_sizeclass_of(0), 0);
    CHECK_EQ(st_sizeclass_of(ST_SMALL_MAX), ST_CLASS_COUNT - 1);
}

TEST(classes_grow_and_lose_little_to_rounding)
{
    CHECK_EQ(st_sizeclass_size(0), 16);
    CHECK_EQ(st_sizeclass_size(ST_CLASS_FINE - 1), 1024);
    CHECK_EQ(st_sizeclass_size(ST_CLASS_FINE), 1152);
    CHECK_EQ(st_sizeclass_size(ST_CLASS_COUNT - 1), ST_SMALL_MAX);
    for (unsigned c = 1; c < ST_CLASS_COUNT; c++) {
        size_t prev = st_sizeclass_size(c - 1), size = st_sizeclass_size(c);
        CHECK(size > prev);
        CHECK(size % 16 == 0);
        /* the worst request of a class is prev + 1: under 12.5 % lost */
        CHECK((size - (prev + 1)) * 8 < prev + 1 || size - prev <= 16);
    }
}

TEST(every_class_has_a_slab_that_holds_eight_objects)
{
    for (unsigned c = 0; c < ST_CLASS_COUNT; c++) {
        unsigned order = st_sizeclass_slab_order(c);
        CHECK(order >= 4 && order <= 8);
        st_slab_layout l;
        size_t block = (size_t)4096 << order;
        REQUIRE(st_slab_layout_bitmap(block, st_sizeclass_size(c), st_sizeclass_align(c), &l));
        CHECK(l.capacity >= 8);
        CHECK(l.first % st_sizeclass_align(c) == 0);
        /* at most 1/32 lost, unless even the largest slab cannot do better */
        CHECK(order == 8 || (block - (size_t)l.capacity * l.size) * 32 <= block);
    }
}
