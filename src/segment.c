/* SPDX-License-Identifier: MIT */
/*
 * segment.c — 4 MiB segments and the chunk map (segment.h).
 *
 * A segment is carved by a buddy allocator over the whole 4 MiB with the
 * metadata outside the managed pages (in the header), so free pages are
 * never written and can be returned to the OS at any time. The header's
 * pages are the buddy's first allocation, so the segment's buddyinfo line
 * tells the truth about every page. Free segments are kept in a small
 * cache (purged, so they cost address space only) before being unmapped.
 *
 * The chunk map is two bitmaps in .bss, one bit per 4 MiB of the 47-bit
 * address space (4 MiB each, touched only where chunks of ours are): a
 * bit is set while the chunk is a segment (or part of a large block).
 */
#include "segment.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "debug.h"

#define SEGMENT_MAGIC 0x5e6e0a7au
#define CACHE_MAX 8

uint64_t st_chunk_segment_bits[ST_CHUNK_COUNT / 64];
uint64_t st_chunk_large_bits[ST_CHUNK_COUNT / 64];

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static bool huge_pages;

void st_segment_configure(bool huge) { huge_pages = huge; }
static st_segment *cache[CACHE_MAX];
static size_t cache_count;

void st_chunk_mark(uint64_t *bits, uintptr_t addr, size_t size, bool on)
{
    for (size_t c = addr >> ST_SEGMENT_SHIFT; c <= (addr + size - 1) >> ST_SEGMENT_SHIFT; c++) {
        uint64_t bit = (uint64_t)1 << (c % 64);
        if (on)
            __atomic_fetch_or(&bits[c / 64], bit, __ATOMIC_RELEASE);
        else
            __atomic_fetch_and(&bits[c / 64], ~bit, __ATOMIC_RELEASE);
    }
}

/* The header: the struct, the buddy's metadata, then (from a page
 * boundary, so that a cached segment can drop them) the descriptor slots. */
static size_t slots_offset(void)
{
    size_t meta = strata_buddy_meta_size(ST_SEGMENT_SIZE, ST_PAGE_SIZE);
    return st_align_up(offsetof(st_segment, buddy_meta) + meta, ST_PAGE_SIZE);
}

const size_t st_segment_slot_bytes[ST_SEGMENT_SLOT_TIERS] = {128, 512, ST_SEGMENT_SLOT_BYTES};
#define SLOTS_BYTES (ST_SEGMENT_GRANULES * (128 + 512 + ST_SEGMENT_SLOT_BYTES))

static size_t header_bytes(void) { return st_align_up(slots_offset() + SLOTS_BYTES, ST_PAGE_SIZE); }

_Static_assert(ST_SEGMENT_SLOT_PAGES * ST_PAGE_SIZE >= SLOTS_BYTES, "slot pages cover the slots");

/* Offset of the slot from the first slot page: the tiers one after the
 * other, each an array indexed by granule. */
static size_t slot_at(st_segment *seg, const void *block, size_t bytes)
{
    size_t g = ((uintptr_t)block - (uintptr_t)seg) >> ST_GRANULE_SHIFT, at = 0, t = 0;
    while (t + 1 < ST_SEGMENT_SLOT_TIERS && bytes > st_segment_slot_bytes[t])
        at += ST_SEGMENT_GRANULES * st_segment_slot_bytes[t++];
    return at + g * st_segment_slot_bytes[t];
}

void *st_segment_slab_slot(st_segment *seg, const void *block, size_t bytes)
{
    return (char *)seg + slots_offset() + slot_at(seg, block, bytes);
}

/* The slot pages a descriptor of `bytes` at offset `at` touches. */
static size_t first_page(size_t at) { return at / ST_PAGE_SIZE; }
static size_t last_page(size_t at, size_t bytes)
{
    return (at + ST_MIN(bytes, ST_SEGMENT_SLOT_BYTES) - 1) / ST_PAGE_SIZE;
}

void *st_segment_slot_take(st_segment *seg, const void *block, size_t bytes)
{
    size_t at = slot_at(seg, block, bytes);
    for (size_t i = first_page(at); i <= last_page(at, bytes); i++)
        seg->slot_users[i]++;
    return (char *)seg + slots_offset() + at;
}

void st_segment_slot_put(st_segment *seg, const void *block, size_t bytes)
{
    size_t at = slot_at(seg, block, bytes);
    for (size_t i = first_page(at); i <= last_page(at, bytes); i++)
        if (--seg->slot_users[i] == 0 && !huge_pages) /* a purge would split the huge page */
            st_os_purge((char *)seg + slots_offset() + i * ST_PAGE_SIZE, ST_PAGE_SIZE);
}

static void *cache_pop(void)
{
    pthread_mutex_lock(&cache_lock);
    void *mem = cache_count > 0 ? cache[--cache_count] : NULL;
    pthread_mutex_unlock(&cache_lock);
    return mem;
}

/* Build the header of a segment at mem: the buddy over all of it, the
 * header pages as its first allocation. */
static st_segment *format(void *mem, struct st_theap *owner)
{
    size_t hdr = header_bytes();
    st_segment *seg = mem;
    memset(seg, 0, offsetof(st_segment, buddy_meta));
    seg->magic = SEGMENT_MAGIC;
    seg->owner = owner;
    seg->header_pages = (uint32_t)(hdr / ST_PAGE_SIZE);
    strata_buddy_config cfg = {.min_block = ST_PAGE_SIZE,
                               .max_order = ST_SEGMENT_MAX_ORDER,
                               .meta = seg->buddy_meta,
                               .meta_size = strata_buddy_meta_size(ST_SEGMENT_SIZE, ST_PAGE_SIZE)};
    seg->buddy = strata_buddy_create_ex(mem, ST_SEGMENT_SIZE, &cfg);
    void *head = seg->buddy ? strata_buddy_alloc_exact(seg->buddy, hdr) : NULL;
    if (head != mem)
        st_fatal("segment", "header is not the buddy's first block", mem);
    for (size_t i = 0; i < seg->header_pages; i++)
        seg->pages[i] = ST_PAGE_HEADER;
    return seg;
}

st_segment *st_segment_new(struct st_theap *owner)
{
    void *mem = cache_pop();
    if (mem == NULL) {
        mem = st_os_map_aligned(ST_SEGMENT_SIZE, ST_SEGMENT_SIZE);
        if (mem != NULL && huge_pages)
            st_os_huge_pages(mem, ST_SEGMENT_SIZE);
    }
    if (mem == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    st_segment *seg = format(mem, owner);
    st_chunk_mark(st_chunk_segment_bits, (uintptr_t)seg, ST_SEGMENT_SIZE, true);
    return seg;
}

void st_segment_release(st_segment *seg)
{
    ST_ASSERT(1, seg->used_pages == 0);
    for (size_t i = 0; i < ST_SEGMENT_SLOT_PAGES; i++)
        ST_ASSERT(1, seg->slot_users[i] == 0);
    st_chunk_mark(st_chunk_segment_bits, (uintptr_t)seg, ST_SEGMENT_SIZE, false);
    seg->magic = 0;
    size_t keep = slots_offset(); /* format() rewrites the rest of the header */
    pthread_mutex_lock(&cache_lock);
    if (cache_count < CACHE_MAX) {
        /* keep the address range, not the pages */
        st_os_purge((char *)seg + keep, ST_SEGMENT_SIZE - keep);
        cache[cache_count++] = seg;
        seg = NULL;
    }
    pthread_mutex_unlock(&cache_lock);
    if (seg != NULL)
        st_os_unmap(seg, ST_SEGMENT_SIZE);
}

size_t st_segment_cache_flush(void)
{
    pthread_mutex_lock(&cache_lock);
    size_t n = cache_count;
    while (cache_count > 0)
        st_os_unmap(cache[--cache_count], ST_SEGMENT_SIZE);
    pthread_mutex_unlock(&cache_lock);
    return n;
}

void st_segment_at_fork(int phase)
{
    if (phase == 0)
        pthread_mutex_lock(&cache_lock);
    else if (phase == 1)
        pthread_mutex_unlock(&cache_lock);
    else
        pthread_mutex_init(&cache_lock, NULL);
}

size_t st_segment_cached(void)
{
    pthread_mutex_lock(&cache_lock);
    size_t n = cache_count;
    pthread_mutex_unlock(&cache_lock);
    return n;
}

static size_t page_index(const st_segment *seg, const void *p)
{
    return ((uintptr_t)p - (uintptr_t)seg) / ST_PAGE_SIZE;
}

static void set_bits(uint64_t *bits, size_t first, size_t n, bool on)
{
    for (size_t i = first; i < first + n; i++) {
        uint64_t bit = (uint64_t)1 << (i % 64);
        bits[i / 64] = on ? bits[i / 64] | bit : bits[i / 64] & ~bit;
    }
}

void *st_segment_alloc_pages(st_segment *seg, size_t pages, bool aligned, size_t *was_dirty)
{
    void *run = aligned ? strata_buddy_alloc_order(seg->buddy, st_log2_ceil(pages))
                        : strata_buddy_alloc_exact(seg->buddy, pages * ST_PAGE_SIZE);
    if (run == NULL)
        return NULL;
    size_t held = st_segment_run_pages(seg, run), first = page_index(seg, run);
    seg->used_pages += held;
    *was_dirty = 0;
    for (size_t i = first; i < first + held; i++)
        *was_dirty += (seg->dirty[i / 64] >> (i % 64)) & 1;
    set_bits(seg->dirty, first, held, false);
    set_bits(seg->purged, first, held, false);
    return run;
}

size_t st_segment_run_pages(st_segment *seg, const void *run)
{
    return strata_buddy_usable_size(seg->buddy, run) / ST_PAGE_SIZE;
}

void st_segment_set_pages(st_segment *seg, void *run, size_t pages, uintptr_t first,
                          uintptr_t rest)
{
    size_t i = page_index(seg, run);
    __atomic_store_n(&seg->pages[i], first, __ATOMIC_RELEASE);
    for (size_t k = 1; k < pages; k++)
        __atomic_store_n(&seg->pages[i + k], rest, __ATOMIC_RELAXED);
    bool slab = first == rest && first >= ST_PAGE_SIZE;
    for (size_t g = i / ST_GRANULE_PAGES; g * ST_GRANULE_PAGES < i + pages; g++) {
        bool whole = g * ST_GRANULE_PAGES >= i && (g + 1) * ST_GRANULE_PAGES <= i + pages;
        __atomic_store_n(&seg->granules[g], slab && whole ? first : 0, __ATOMIC_RELEASE);
    }
}

size_t st_segment_free_pages(st_segment *seg, void *run, uint64_t now_ms)
{
    size_t held = st_segment_run_pages(seg, run);
    if (strata_buddy_free(seg->buddy, run) != 0)
        st_fatal("segment", "page run is not allocated", run);
    st_segment_set_pages(seg, run, held, ST_PAGE_FREE, ST_PAGE_FREE);
    seg->used_pages -= held;
    if (!st_segment_has_dirty(seg))
        seg->dirty_since_ms = now_ms;
    /* a page purged while it was in a slab is clean: not dirty again */
    for (size_t i = page_index(seg, run), end = i + held; i < end; i++) {
        uint64_t bit = (uint64_t)1 << (i % 64);
        if (!(seg->purged[i / 64] & bit))
            seg->dirty[i / 64] |= bit;
        seg->purged[i / 64] &= ~bit;
    }
    return held;
}

struct purge_walk {
    st_segment *seg;
    st_os_batch *batch;
    size_t bytes;
    uint64_t ranges;
};

/* Purge the dirty pages of one free buddy block, in maximal runs. */
static void purge_block(void *block, size_t size, bool used, void *user)
{
    struct purge_walk *w = user;
    if (used)
        return;
    size_t first = page_index(w->seg, block), end = first + size / ST_PAGE_SIZE;
    for (size_t i = first; i < end;) {
        if (!((w->seg->dirty[i / 64] >> (i % 64)) & 1)) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < end && ((w->seg->dirty[j / 64] >> (j % 64)) & 1))
            j++;
        st_os_batch_add(w->batch, (char *)w->seg + i * ST_PAGE_SIZE, (j - i) * ST_PAGE_SIZE);
        set_bits(w->seg->dirty, i, j - i, false);
        w->bytes += (j - i) * ST_PAGE_SIZE;
        w->ranges++;
        i = j;
    }
}

size_t st_segment_purge(st_segment *seg, st_os_batch *b, uint64_t *ranges)
{
    struct purge_walk w = {seg, b, 0, 0};
    strata_buddy_walk(seg->buddy, purge_block, &w);
    *ranges += w.ranges;
    return w.bytes;
}

/* SEG-4: a granule's entry is its pages' entry when they all hold the same
 * slab entry, else 0. */
static int check_granules(const st_segment *seg)
{
    int bad = 0;
    for (size_t g = 0; g < ST_SEGMENT_GRANULES; g++) {
        uintptr_t first = seg->pages[g * ST_GRANULE_PAGES];
        bool one_slab = first >= ST_PAGE_SIZE;
        for (size_t i = 1; i < ST_GRANULE_PAGES; i++)
            one_slab &= seg->pages[g * ST_GRANULE_PAGES + i] == first;
        bad += seg->granules[g] != (one_slab ? first : 0);
    }
    return bad;
}

/* SEG-1: magic and header; SEG-2: the buddy's own invariants; SEG-3:
 * used_pages equals the buddy's used pages less the header; SEG-4. */
int st_segment_check(st_segment *seg)
{
    if (seg->magic != SEGMENT_MAGIC || seg->buddy == NULL)
        return 1;
    int bad = strata_buddy_check(seg->buddy) + check_granules(seg);
    strata_buddy_info info;
    strata_buddy_get_info(seg->buddy, &info);
    size_t used = info.used_bytes / ST_PAGE_SIZE;
    bad += used != seg->used_pages + seg->header_pages;
    return bad;
}
