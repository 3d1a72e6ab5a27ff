/* SPDX-License-Identifier: MIT */
/*
 * segment.h — the malloc's unit of memory from the OS: 4 MiB mapped at a
 * 4 MiB boundary, its pages managed by a buddy allocator (orders 0..10)
 * whose metadata sits in the segment's first pages, with a page table
 * that says what each page holds. Also the process-wide chunk map that
 * tells, for any address, whether its 4 MiB chunk is a segment or part of
 * a large block of ours — before anything at that address is read.
 *
 * A segment belongs to one thread heap (its owner) for its whole life;
 * only the owner allocates or frees its pages, so nothing here locks.
 * Other threads only read the page table and CAS medium-block entries.
 */
#ifndef ST_SEGMENT_H
#define ST_SEGMENT_H

#include "bits.h"
#include "os.h"
#include "strata/buddy.h"

#define ST_SEGMENT_SHIFT 22
#define ST_SEGMENT_SIZE ((size_t)1 << ST_SEGMENT_SHIFT)
#define ST_SEGMENT_PAGES (ST_SEGMENT_SIZE / ST_PAGE_SIZE)
#define ST_SEGMENT_MAX_ORDER 10
#define ST_CHUNK_COUNT ((size_t)1 << (47 - ST_SEGMENT_SHIFT)) /* 47-bit user addresses */
#define ST_GRANULE_SHIFT 16 /* 64 KiB: the smallest slab */
#define ST_GRANULE_PAGES ((size_t)1 << (ST_GRANULE_SHIFT - 12))
#define ST_SEGMENT_GRANULES (ST_SEGMENT_SIZE >> ST_GRANULE_SHIFT)
#define ST_SEGMENT_SLOT_PAGES 36 /* pages the descriptor slots span (segment.c checks) */

/* Page-table entries below ST_PAGE_SIZE are tags; any other value is the
 * address of the slab descriptor (st_slab, 128-byte aligned) of the slab
 * holding the page, with the slab's size class in its low 7 bits — so a
 * free can read the class's constants from a small hot table while the
 * descriptor's cache line is still on its way. */
#define ST_PAGE_CLASS_MASK ((uintptr_t)127)
#define ST_PAGE_SLAB_ALIGN ((size_t)128)
enum {
    ST_PAGE_FREE = 0,          /* free in the buddy, or not yet handed out */
    ST_PAGE_HEADER = 1,        /* the segment's own header */
    ST_PAGE_MEDIUM = 2,        /* first page of a live medium block */
    ST_PAGE_MEDIUM_REMOTE = 3, /* … freed by another thread, the owner not told yet */
    ST_PAGE_MEDIUM_BODY = 4,   /* a later page of a medium block */
};

struct st_theap;

typedef struct st_segment {
    uint32_t magic;
    uint32_t header_pages;
    struct st_segment *prev, *next; /* the owner's list */
    size_t used_pages;              /* pages handed out, header excluded */
    uint64_t dirty_since_ms;        /* when the oldest dirty page was freed */
    uint64_t dirty[ST_SEGMENT_PAGES / 64];  /* free and possibly resident */
    uint64_t purged[ST_SEGMENT_PAGES / 64]; /* in a slab, returned to the OS */
    uint8_t slot_users[ST_SEGMENT_SLOT_PAGES];  /* taken slots touching each slot page */
    strata_buddy *buddy;
    /* What every free reads, from here on, starts half a page in, off the
     * cache sets of a heap's hot arrays (its first 1.6 KiB; when slab
     * descriptors sat at their slabs' starts, theirs too). */
    _Alignas(ST_PAGE_SIZE / 2) struct st_theap *owner; /* set once when the segment is made */
    /* For each 64 KiB granule that lies wholly in one slab, that slab's
     * page entry, else 0 (pages[] says what it holds). Slabs are 64 KiB
     * and more and aligned to their size, so every slab object's free
     * finds its entry here: 9 cache lines a segment with `owner`, where
     * pages[] spreads over 128 that a random free would miss. */
    uintptr_t granules[ST_SEGMENT_GRANULES];
    uintptr_t pages[ST_SEGMENT_PAGES]; /* read by any thread: atomic loads */
    unsigned char buddy_meta[];
} st_segment;

ST_HIDDEN extern uint64_t st_chunk_segment_bits[ST_CHUNK_COUNT / 64];
ST_HIDDEN extern uint64_t st_chunk_large_bits[ST_CHUNK_COUNT / 64];

static inline bool st_chunk_test(const uint64_t *bits, uintptr_t addr)
{
    size_t chunk = addr >> ST_SEGMENT_SHIFT;
    if (ST_UNLIKELY(chunk >= ST_CHUNK_COUNT))
        return false;
    return (__atomic_load_n(&bits[chunk / 64], __ATOMIC_RELAXED) >> (chunk % 64)) & 1;
}

/* Mark or unmark every chunk of [addr, addr + size). */
ST_HIDDEN void st_chunk_mark(uint64_t *bits, uintptr_t addr, size_t size, bool on);

/* The segment holding p, or NULL if p is not inside a segment of ours. */
static inline st_segment *st_segment_of(const void *p)
{
    if (!st_chunk_test(st_chunk_segment_bits, (uintptr_t)p))
        return NULL;
    return (st_segment *)((uintptr_t)p & ~(ST_SEGMENT_SIZE - 1));
}

static inline uintptr_t *st_segment_entry(st_segment *seg, const void *p)
{
    return &seg->pages[((uintptr_t)p >> 12) & (ST_SEGMENT_PAGES - 1)];
}

static inline uintptr_t st_segment_page_tag(st_segment *seg, const void *p)
{
    return __atomic_load_n(st_segment_entry(seg, p), __ATOMIC_RELAXED);
}

/* The header ends with slots for slab descriptors, three per 64 KiB
 * granule: 128 bytes (enough for 128 objects), 512 bytes (1,024 objects)
 * and 1,664 bytes (the largest descriptor, 4,096 objects of 16 bytes in
 * 1,600 bytes; theap.c checks). A slab takes the smallest slot of its
 * first granule that fits its descriptor. There the descriptors are
 * spread over the header's pages and cache sets (at their slabs' starts
 * they all crowded a page's first sets), every page of a slab holds
 * objects only, and descriptors of one size share pages densely. Slots
 * are multiples of 128 bytes: page entries keep the class in the low 7
 * bits. */
#define ST_SEGMENT_SLOT_TIERS 3
ST_HIDDEN extern const size_t st_segment_slot_bytes[ST_SEGMENT_SLOT_TIERS];
#define ST_SEGMENT_SLOT_BYTES ((size_t)1664) /* the largest */
/* The slot for a descriptor of `bytes` of the slab at block. */
ST_HIDDEN void *st_segment_slab_slot(st_segment *seg, const void *block, size_t bytes);
/* The same, taken for a new slab; given back when the slab is released.
 * A header page whose slots are all given back goes to the OS at once (a
 * segment that once held many slabs would otherwise keep every slot page
 * for its whole life). */
ST_HIDDEN void *st_segment_slot_take(st_segment *seg, const void *block, size_t bytes);
ST_HIDDEN void st_segment_slot_put(st_segment *seg, const void *block, size_t bytes);

/* The page entry of p if its granule lies in one slab, else 0. */
static inline uintptr_t st_segment_granule_tag(st_segment *seg, const void *p)
{
    return __atomic_load_n(&seg->granules[((uintptr_t)p >> ST_GRANULE_SHIFT) &
                                          (ST_SEGMENT_GRANULES - 1)],
                           __ATOMIC_RELAXED);
}

/* The slab descriptor and the class of a slab page's entry (>= ST_PAGE_SIZE). */
static inline void *st_page_slab(uintptr_t entry) { return (void *)(entry & ~ST_PAGE_CLASS_MASK); }
static inline unsigned st_page_class(uintptr_t entry) { return (unsigned)(entry & ST_PAGE_CLASS_MASK); }

/* Ask the OS for transparent huge pages on new segments (fewer TLB
 * misses, coarser purging). Set once at start. */
ST_HIDDEN void st_segment_configure(bool huge_pages);

/* A fresh segment owned by `owner` (from the cache of free segments or
 * the OS), or NULL with errno ENOMEM. */
ST_HIDDEN st_segment *st_segment_new(struct st_theap *owner);
/* Give a segment with no pages in use back (cached, purged, or unmapped). */
ST_HIDDEN void st_segment_release(st_segment *seg);
/* Unmap every cached free segment; returns how many. */
ST_HIDDEN size_t st_segment_cache_flush(void);
ST_HIDDEN size_t st_segment_cached(void);
/* pthread_atfork phases: 0 prepare, 1 parent, 2 child. */
ST_HIDDEN void st_segment_at_fork(int phase);

/* Pages: `pages` rounded to a power of two aligned to its size when
 * `aligned`, else exactly `pages` (aligned to a page). NULL if no room.
 * *was_dirty: how many of them were dirty (free, resident) before. */
ST_HIDDEN void *st_segment_alloc_pages(st_segment *seg, size_t pages, bool aligned,
                                       size_t *was_dirty);
/* Give back a run allocated above; its pages become dirty at `now_ms`.
 * Returns the pages freed. */
ST_HIDDEN size_t st_segment_free_pages(st_segment *seg, void *run, uint64_t now_ms);
/* Pages held by the allocation at run (0 if none). */
ST_HIDDEN size_t st_segment_run_pages(st_segment *seg, const void *run);
/* Set the page-table entries of [run, run + pages) (plain stores), and
 * the granule entries the run covers: a slab's entry where it covers a
 * whole granule with one slab entry, else 0. */
ST_HIDDEN void st_segment_set_pages(st_segment *seg, void *run, size_t pages, uintptr_t first,
                                    uintptr_t rest);
/* Return every dirty free page to the OS through the batch (flushed
 * before the pages are allocated again); bytes returned, ranges counted. */
ST_HIDDEN size_t st_segment_purge(st_segment *seg, st_os_batch *b, uint64_t *ranges);
static inline bool st_segment_has_dirty(const st_segment *seg)
{
    for (size_t i = 0; i < ST_SEGMENT_PAGES / 64; i++)
        if (seg->dirty[i] != 0)
            return true;
    return false;
}
static inline bool st_segment_is_empty(const st_segment *seg) { return seg->used_pages == 0; }

/* Invariants SEG-1..4 (docs/INVARIANTS.md); 0 or violations. */
ST_HIDDEN int st_segment_check(st_segment *seg);

#endif /* ST_SEGMENT_H */
