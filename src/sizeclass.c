/* SPDX-License-Identifier: MIT */
/*
 * sizeclass.c — the slab size of each class, computed from the slab
 * layer's own layout rule so that the two can never disagree.
 */
#include "sizeclass.h"

#include "slab.h"

#define MIN_SLAB_ORDER 4 /* 64 KiB */
#define MAX_SLAB_ORDER 8 /* 1 MiB */

unsigned st_sizeclass_slab_order(unsigned c)
{
    size_t size = st_sizeclass_size(c);
    for (unsigned order = MIN_SLAB_ORDER; order < MAX_SLAB_ORDER; order++) {
        size_t block = (size_t)4096 << order;
        st_slab_layout l;
        if (!st_slab_layout_bitmap(block, size, st_sizeclass_align(c), &l))
            continue;
        size_t lost = block - (size_t)l.capacity * l.size;
        if (l.capacity >= 8 && lost * 32 <= block)
            return order;
    }
    return MAX_SLAB_ORDER;
}
