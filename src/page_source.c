/* SPDX-License-Identifier: MIT */
/*
 * page_source.c — the two built-in page sources: the operating system
 * (aligned anonymous mappings) and a buddy allocator. Sits above the os
 * and buddy layers and below everything that takes pages (slab, pool).
 */
#include <errno.h>

#include "os.h"
#include "strata/buddy.h"
#include "strata/page_source.h"

static void *os_alloc(void *ctx, size_t size, size_t align)
{
    (void)ctx;
    return st_os_map_aligned(st_align_up(size, ST_PAGE_SIZE), align);
}

static void os_free(void *ctx, void *block, size_t size)
{
    (void)ctx;
    st_os_unmap(block, st_align_up(size, ST_PAGE_SIZE));
}

strata_page_source strata_page_source_os(void)
{
    return (strata_page_source){.alloc = os_alloc, .free = os_free, .ctx = NULL};
}

/* Buddy blocks are aligned to their own size, so asking for
 * max(size, align) bytes gives both the size and the alignment. */
static void *buddy_alloc(void *ctx, size_t size, size_t align)
{
    if (!st_is_pow2(align)) {
        errno = EINVAL;
        return NULL;
    }
    return strata_buddy_alloc(ctx, ST_MAX(size, align));
}

static void buddy_free(void *ctx, void *block, size_t size)
{
    (void)size;
    strata_buddy_free(ctx, block);
}

strata_page_source strata_page_source_buddy(struct strata_buddy *buddy)
{
    return (strata_page_source){.alloc = buddy_alloc, .free = buddy_free, .ctx = buddy};
}
