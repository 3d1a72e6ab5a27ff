/* SPDX-License-Identifier: MIT */
/*
 * sizeclass.h — the malloc's size classes: which object size a request
 * gets and which slab block carries that size. A leaf: no state beyond a
 * table built once.
 *
 * Classes 0..63 are 16, 32, … 1024 bytes (steps of 16: at most 15 bytes,
 * under 1.5 % on average, lost to rounding for the common small sizes);
 * above that 8 classes per doubling up to ST_SMALL_MAX (waste under 12.5 %,
 * 6 % on average). Larger requests take whole pages (see segment.h).
 */
#ifndef ST_SIZECLASS_H
#define ST_SIZECLASS_H

#include "bits.h"

#define ST_SMALL_MAX ((size_t)16384)
#define ST_CLASS_FINE 64                 /* classes of 16-byte steps, up to 1024 bytes */
#define ST_CLASS_COUNT (ST_CLASS_FINE + 32) /* + 8 per doubling from 1 KiB to 16 KiB */

/* The class of a request of 1..ST_SMALL_MAX bytes (0 is treated as 1). */
static inline unsigned st_sizeclass_of(size_t n)
{
    if (ST_LIKELY(n <= 1024))
        return n == 0 ? 0 : (unsigned)((n - 1) >> 4);
    unsigned d = st_log2_floor(n - 1); /* 10..13 */
    return ST_CLASS_FINE + (d - 10) * 8 + (unsigned)((n - 1 - ((size_t)1 << d)) >> (d - 3));
}

/* Object size of a class. */
static inline size_t st_sizeclass_size(unsigned c)
{
    if (c < ST_CLASS_FINE)
        return (size_t)(c + 1) << 4;
    unsigned k = c - ST_CLASS_FINE, d = 10 + k / 8;
    return ((size_t)1 << d) + (size_t)(k % 8 + 1) * ((size_t)1 << (d - 3));
}

/* Alignment of the objects of a class: the largest power of two dividing
 * its size, at most a page. Slabs place object 0 at that alignment, so an
 * aligned request is served by the first class whose size it divides. */
static inline size_t st_sizeclass_align(unsigned c)
{
    size_t size = st_sizeclass_size(c);
    return ST_MIN(size & (~size + 1), (size_t)4096);
}

/* Buddy order (of 4 KiB pages) of the slabs of a class: the smallest block
 * of at least 64 KiB that holds 8 objects and loses under 1/32 of itself
 * to the bitmap-mode descriptor and the unusable tail. */
ST_HIDDEN unsigned st_sizeclass_slab_order(unsigned c);

#endif /* ST_SIZECLASS_H */
