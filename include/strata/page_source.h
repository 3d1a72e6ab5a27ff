/* SPDX-License-Identifier: MIT */
/*
 * strata/page_source.h — where the slab caches and pools get their memory.
 *
 * A page source hands out blocks of `size` bytes aligned to `align` (both
 * powers of two, at least 4096 for the OS source) and takes them back with
 * the same size. Two are built in: the operating system (anonymous mmap)
 * and a strata buddy allocator over caller memory. Tests plug in their own
 * to make allocation fail after N calls.
 */
#ifndef STRATA_PAGE_SOURCE_H
#define STRATA_PAGE_SOURCE_H

#include "strata/defs.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct strata_page_source {
    /* A block of `size` bytes aligned to `align`, or NULL. */
    void *(*alloc)(void *ctx, size_t size, size_t align);
    /* Give back a block that alloc returned, with the size asked for. */
    void (*free)(void *ctx, void *block, size_t size);
    void *ctx;
} strata_page_source;

struct strata_buddy;

/* Pages straight from the operating system (mmap/munmap). */
STRATA_API strata_page_source strata_page_source_os(void);

/* Blocks from a buddy allocator (which the caller must keep alive and must
 * not use from another thread without a lock). */
STRATA_API strata_page_source strata_page_source_buddy(struct strata_buddy *buddy);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_PAGE_SOURCE_H */
