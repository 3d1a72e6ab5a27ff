/* SPDX-License-Identifier: MIT */
/*
 * large.c — blocks with their own mapping (large.h).
 *
 * The header below each block records the mapping; it is found from the
 * block's address alone, and only after the chunk map said the chunk is a
 * large block of ours, so a foreign pointer is never read. The header's
 * state word is swapped atomically on free, which turns a double free
 * racing with the first into a clean abort instead of two munmaps.
 */
#include "large.h"

#include <errno.h>
#include <string.h>

#include "os.h"
#include "segment.h"

#define LIVE 0x1a59eb10c4b10ccaull
#define FREED 0xf7eedf7eedf7eedfull

typedef struct large_header {
    uint64_t state;  /* LIVE or FREED */
    uintptr_t base;  /* the mapping */
    size_t map_size; /* its bytes */
    uintptr_t user;  /* the block: base + offset */
    size_t size;     /* usable bytes from user to the end of the mapping */
    uint64_t pad[3];
} large_header;

_Static_assert(sizeof(large_header) == ST_LARGE_HEADER, "the header fills the bytes before a block");

static size_t live_blocks, mapped_bytes, usable_bytes; /* atomics */

static large_header *header_of(const void *p) { return (large_header *)((uintptr_t)p - ST_LARGE_HEADER); }

/* Offset of the block from the mapping start: room for the header, then
 * the alignment. */
static size_t block_offset(size_t align) { return ST_MAX(align, ST_LARGE_HEADER); }

static bool map_size_for(size_t size, size_t offset, size_t *out)
{
    size_t total;
    if (!st_add_ok(size, offset, &total) || !st_add_ok(total, ST_PAGE_SIZE - 1, &total))
        return false;
    *out = st_align_down(total, ST_PAGE_SIZE);
    return true;
}

static void account(long blocks, long map, long usable)
{
    __atomic_fetch_add(&live_blocks, (size_t)blocks, __ATOMIC_RELAXED);
    __atomic_fetch_add(&mapped_bytes, (size_t)map, __ATOMIC_RELAXED);
    __atomic_fetch_add(&usable_bytes, (size_t)usable, __ATOMIC_RELAXED);
}

void *st_large_alloc(size_t size, size_t align)
{
    size_t offset = block_offset(align), map;
    if (!map_size_for(size, offset, &map)) {
        errno = ENOMEM;
        return NULL;
    }
    void *base = st_os_map_aligned(map, ST_MAX(align, ST_SEGMENT_SIZE));
    if (base == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    large_header *h = header_of((char *)base + offset);
    *h = (large_header){.state = LIVE, .base = (uintptr_t)base, .map_size = map,
                        .user = (uintptr_t)base + offset, .size = map - offset};
    st_chunk_mark(st_chunk_large_bits, (uintptr_t)base, map, true);
    account(1, (long)map, (long)h->size);
    return (void *)h->user;
}

/* The header is read only if both p's chunk and the header's chunk are
 * marked (they differ when the block starts at a chunk boundary). */
st_large_status st_large_lookup(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    if (a < ST_LARGE_HEADER || !st_chunk_test(st_chunk_large_bits, a) ||
        !st_chunk_test(st_chunk_large_bits, a - ST_LARGE_HEADER))
        return ST_LARGE_NOT_OURS;
    const large_header *h = header_of(p);
    uint64_t state = __atomic_load_n(&h->state, __ATOMIC_ACQUIRE);
    if (h->user != a)
        return ST_LARGE_INSIDE;
    return state == LIVE ? ST_LARGE_OK : state == FREED ? ST_LARGE_FREED : ST_LARGE_INSIDE;
}

st_large_status st_large_free(void *p)
{
    large_header *h = header_of(p);
    uint64_t expect = LIVE;
    if (!__atomic_compare_exchange_n(&h->state, &expect, FREED, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return ST_LARGE_FREED;
    uintptr_t base = h->base;
    size_t map = h->map_size;
    st_chunk_mark(st_chunk_large_bits, base, map, false);
    account(-1, -(long)map, -(long)h->size);
    st_os_unmap((void *)base, map);
    return ST_LARGE_OK;
}

size_t st_large_usable_size(const void *p) { return header_of(p)->size; }

/* The mapping [old_base, + old_map) is now [base, + map): re-mark its
 * chunks, rewrite the header (which moved with the pages), count it. */
static large_header *remapped(uintptr_t old_base, size_t old_map, size_t offset, uintptr_t base,
                              size_t map)
{
    st_chunk_mark(st_chunk_large_bits, old_base, old_map, false);
    large_header *h = header_of((char *)base + offset);
    h->base = base;
    h->user = base + offset;
    h->map_size = map;
    h->size = map - offset;
    st_chunk_mark(st_chunk_large_bits, base, map, true);
    account(0, (long)map - (long)old_map, (long)map - (long)old_map);
    return h;
}

void *st_large_realloc(void *p, size_t size)
{
    large_header *h = header_of(p);
    uintptr_t base = h->base;
    size_t offset = h->user - base, old_map = h->map_size, map;
    if (!map_size_for(size, offset, &map)) {
        errno = ENOMEM;
        return NULL;
    }
    if (map == old_map)
        return p;
    if (st_os_resize_in_place((void *)base, old_map, map))
        return (void *)remapped(base, old_map, offset, base, map)->user;
    /* move to a fresh reservation at a 4 MiB boundary: mremap alone would
     * put it anywhere and break the one-mapping-per-chunk rule */
    void *to = st_os_map_aligned(map, ST_MAX(offset, ST_SEGMENT_SIZE));
    if (to == NULL || st_os_move((void *)base, old_map, map, to) == NULL) {
        if (to != NULL)
            st_os_unmap(to, map);
        errno = ENOMEM;
        return NULL;
    }
    return (void *)remapped(base, old_map, offset, (uintptr_t)to, map)->user;
}

void st_large_totals(size_t *blocks, size_t *mapped, size_t *usable)
{
    *blocks = __atomic_load_n(&live_blocks, __ATOMIC_RELAXED);
    *mapped = __atomic_load_n(&mapped_bytes, __ATOMIC_RELAXED);
    *usable = __atomic_load_n(&usable_bytes, __ATOMIC_RELAXED);
}
