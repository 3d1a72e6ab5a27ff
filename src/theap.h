/* SPDX-License-Identifier: MIT */
/*
 * theap.h — a thread heap: the size-class slabs, medium blocks and
 * segments one thread allocates from, with no lock on any path its owner
 * takes. Other threads free into it through one lock-free list of
 * carriers (freed blocks that hold the addresses of the others freed in
 * the same batch) plus, for slab objects, an atomic remote bitmap that
 * catches a double free at once. The owner drains the list on its slow
 * paths.
 *
 * A slab is CURRENT (its class allocates from it), PARTIAL (on its
 * class's list) or FULL (on no list); an empty non-current slab goes back
 * to its segment's buddy at once, its pages "dirty" until the decay
 * returns them to the OS. In a PARTIAL slab that is at most half
 * live, every page without a live object is returned (madvise) as the
 * frees empty them, in runs of such pages — which is what keeps a few
 * survivors from pinning whole slabs. Purges go through a queue and to
 * the OS in batches.
 *
 * Heaps are never freed: an exiting thread's heap is trimmed and
 * abandoned, and the next new thread adopts it whole (blocks others free
 * into it meanwhile wait on its list). Thread churn therefore reuses a
 * bounded set of heaps.
 */
#ifndef ST_THEAP_H
#define ST_THEAP_H

#include <pthread.h>

#include "debug.h"
#include "segment.h"
#include "sizeclass.h"
#include "slab.h"

#define ST_MEDIUM_MAX ((size_t)1 << 20) /* larger blocks get a mapping of their own */
#define ST_THEAP_TICK 4096u             /* fast-path allocations between housekeeping */
#define ST_PURGE_PENDING 32u            /* runs of empty pages waiting to be purged */
#define ST_PURGE_PENDING_PAGES 256u     /* … and their pages at most (1 MiB) */

/* A heap's state: its thread's; left by an exiting thread, to be adopted;
 * in a forked child, another thread's of the parent (never touched); or
 * parked: its thread waits in pthread_join, and threads that free its
 * blocks take them in meanwhile, as for an abandoned heap (nobody adopts
 * it). */
enum { ST_HEAP_ACTIVE = 1, ST_HEAP_ABANDONED = 2, ST_HEAP_ORPHANED = 3, ST_HEAP_PARKED = 4 };

#define ST_KEPT_MAX 15                   /* blocks a class's kept stack holds at most */
#define ST_KEPT_BYTES ((size_t)32 << 10) /* … and bytes, unless one block is more */
/* A kept block and where its kept bit is: the word's address times 2^16
 * plus the object's index in its slab (below 2^16; addresses are below
 * 2^48), whose low 6 bits are the bit's. */
typedef struct st_kept {
    void *block;
    uintptr_t bit;
} st_kept;

/* A class's kept stack: 16 entries, 256 bytes, aligned to that. */
#define ST_KEPT_STACK_BYTES ((ST_KEPT_MAX + 1) * sizeof(st_kept))

/* Pages first..last (indexes in its segment) of a slab, empty, not
 * purged yet. */
typedef struct st_purge_run {
    st_slab *slab;
    uint32_t first, last;
} st_purge_run;

typedef struct st_theap {
    st_slab *current[ST_CLASS_COUNT]; /* never NULL: st_full_slab when none */
    /* The top of each class's kept stack, which grows down: its blocks are
     * kept_top[c] (the newest) .. kept[c][kept_max - 1], and
     * kept[c][kept_max] is a NULL that ends it. A pointer, so that a push
     * or a pop is one load and one store, and the stack is full when the
     * top is at the stack's 256-byte boundary, kept[c][0]. There with a
     * NULL kept[c][0]: switched off while the class shrinks (theap.c). */
    st_kept *kept_top[ST_CLASS_COUNT];
    uint32_t tick; /* counts down to the next housekeeping */
    uint32_t state;
    bool collecting; /* st_theap_collect is taking in what other threads freed */
    void *remote; /* atomic: carriers of blocks freed by other threads (theap.c) */
    st_slab_link partial[ST_CLASS_COUNT];
    st_segment *segments;
    uint64_t next_decay_ms;
    size_t dirty_pages; /* free pages not yet purged (an estimate) */
    size_t used_pages;  /* pages of slabs and medium blocks */
    uint64_t purges, purged_bytes;
    /* Runs of empty pages in sparse slabs, oldest first, that wait for
     * their madvise while the frees emptying them go on (theap.c). */
    st_purge_run pending[ST_PURGE_PENDING];
    unsigned pending_runs, pending_pages;
    /* Pages on their way back to the OS, given back together (os.h):
     * empty pages of sparse slabs and free pages of the buddies, none of
     * which is written until it goes. Flushed when a range is added to
     * it full or it holds 1 MiB, when a page of it is taken from a buddy
     * or belongs to a slab made current or a segment dropped, and at the
     * end of housekeeping and of st_theap_purge_pending. */
    st_os_batch purge_queue;
    uint64_t remote_frees; /* atomic: blocks other threads freed, added per batch */
    struct st_theap *next_all, *next_abandoned;
    /* Blocks of each class its owner freed (up to the class's kept_max;
     * frees past that clear their bits), handed out again first, newest
     * first, without touching the slab's live bits: a free and a malloc
     * then form no chain through the bitmap word, the block comes back
     * while its lines are still cached, and a program that frees and
     * allocates sizes at random meets no branch it cannot predict. Each
     * is still live in its slab, with its kept bit set: a second free of
     * it (by any thread) finds the bit (double free). */
    _Alignas(ST_KEPT_STACK_BYTES) st_kept kept[ST_CLASS_COUNT][ST_KEPT_MAX + 1];
} st_theap;

/* Is the kept stack whose top is t full (or switched off)? */
static inline bool st_kept_full(const st_kept *t)
{
    return ((uintptr_t)t & (ST_KEPT_STACK_BYTES - 1)) == 0;
}

/* A full slab with no memory behind it: what current[] holds before a
 * class is used, so the fast path needs no NULL test. */
ST_HIDDEN extern st_slab st_full_slab;
/* The heap of a thread that has none (all classes full): its slow path
 * makes or adopts a real one. */
ST_HIDDEN extern st_theap st_empty_heap;

/* Milliseconds of a coarse monotonic clock (the decay's). */
ST_HIDDEN uint64_t st_theap_now_ms(void);

/* Options the heaps obey (set once at start). */
ST_HIDDEN void st_theap_configure(uint64_t decay_ms, size_t retain_pages);

/* A heap for a new thread. With want NULL: an abandoned one if any, else
 * a fresh one; NULL if the OS gives no memory. Else want itself if it is
 * still abandoned (a thread adopting, at its first allocation, the heap it
 * freed a block of), NULL if another thread adopted it first. */
ST_HIDDEN st_theap *st_theap_acquire(st_theap *want);
/* Leave the heap for adoption (its thread is exiting). */
ST_HIDDEN void st_theap_abandon(st_theap *h);
/* Park the calling thread's heap while it waits for another thread, and
 * take it back (once no other thread is taking blocks in for it). */
ST_HIDDEN void st_theap_park(st_theap *h);
ST_HIDDEN void st_theap_unpark(st_theap *h);
/* pthread_join with the calling thread's heap parked meanwhile (malloc.c;
 * libstrata.so's pthread_join). */
ST_HIDDEN int st_malloc_parked_join(pthread_t t, void **ret);

/* Slow paths of malloc: an object of class c, n pages of a medium block
 * (aligned to `align` when above a page); NULL when out of memory. */
ST_HIDDEN void *st_theap_alloc_class(st_theap *h, unsigned c);
ST_HIDDEN void *st_theap_alloc_medium(st_theap *h, size_t size, size_t align);

/* A free of object idx changed something in a slab that is not current:
 * full → partial, partial → empty, or it left the slab sparse (at most
 * half live), where a page it emptied goes back to the OS. */
ST_HIDDEN void st_theap_slab_event(st_theap *h, st_slab *s, unsigned idx);
/* Free of a medium block by its owner; entry is its page-table entry. */
ST_HIDDEN void st_theap_free_medium(st_theap *h, st_segment *seg, void *p, uintptr_t entry);
/* Blocks a thread freed for one other heap, not handed over yet: one CAS
 * per ST_REMOTE_BATCH of them instead of one each. Each block is marked
 * freed (remote bit or page tag) at once; only its reuse waits. At the
 * hand-over their addresses are written into the roomiest of them, the
 * carrier (theap.c), so that the owner reads a line or two per batch
 * instead of every block, which is likely in the freeing CPU's cache. */
#define ST_REMOTE_BATCH 32u
typedef struct st_remote_batch {
    st_theap *owner;
    unsigned count;
    void *blocks[ST_REMOTE_BATCH];
    uint16_t room[ST_REMOTE_BATCH]; /* addresses each block can carry */
} st_remote_batch;

/* Free by a thread that does not own the segment, through its batch. */
ST_HIDDEN void st_theap_free_remote(st_segment *seg, void *p, uintptr_t entry,
                                    st_remote_batch *batch);
/* Hand the batch over to its owner now. */
ST_HIDDEN void st_theap_remote_flush(st_remote_batch *batch);
/* Bytes of the medium block at p (a valid live one). */
ST_HIDDEN size_t st_theap_medium_size(st_segment *seg, const void *p);

/* Take in blocks other threads freed; run the decay if due (always with
 * force, which also returns every free page and empty segment). */
ST_HIDDEN void st_theap_collect(st_theap *h);
ST_HIDDEN void st_theap_housekeep(st_theap *h, bool force);
/* The forced decay of every heap whose thread is gone or waits in
 * pthread_join, under the registry lock (malloc_trim); true if it gave
 * any page back. */
ST_HIDDEN bool st_theap_trim_others(void);

/* Verify THEAP-1..8 of docs/INVARIANTS.md (and each listed slab's and
 * segment's own); 0 or the number of violations. Only the heap's owner
 * may call it. */
ST_HIDDEN int st_theap_check(st_theap *h);

/* Every heap ever made, under the registry lock (for stats and fork). */
ST_HIDDEN void st_theap_lock_all(void);
ST_HIDDEN void st_theap_unlock_all(void);
ST_HIDDEN st_theap *st_theap_first(void); /* then h->next_all */
/* Heaps in `state` now (ST_HEAP_ACTIVE, …). */
ST_HIDDEN unsigned st_theap_count_in_state(uint32_t state);
/* Heaps abandoned and adopted since the start. */
ST_HIDDEN void st_theap_counters(uint64_t *abandoned, uint64_t *adopted);
/* In a forked child: every active heap but `self` and `shared` (the heap
 * of exiting threads, which stays that) belonged to a thread that does
 * not exist there, and may be half-changed: it is orphaned, never to be
 * adopted or serviced. Locks are re-made. */
ST_HIDDEN void st_theap_after_fork_child(st_theap *self, st_theap *shared);

/* One line naming the fault and the pointer, then abort. */
ST_HIDDEN _Noreturn void st_malloc_fault(const char *fault, const void *p);
/* The same for the free fast path: declared as returning, so that the
 * compiler reaches it with a jump and keeps the fast path frameless. */
ST_HIDDEN ST_COLD void st_free_fault(const char *fault, const void *p);

#define ST_SLAB_CURRENT_TAG (1u << 8) /* owner_tag state bits of a CURRENT slab (theap.c) */
#define ST_SLAB_STATE_MASK (3u << 8)
/* What every slab of a class shares, for the free path: the same as
 * its descriptors hold, 24 bytes a class: the whole table, 2.3 KiB, stays
 * in L1 on a busy free path. */
typedef struct st_class_consts {
    uint64_t recip;     /* of the object size */
    uint32_t slab_mask; /* slab bytes - 1: slabs are aligned to their size */
    uint32_t capacity;  /* objects per slab */
    uint32_t sparse_at; /* free objects from which a slab is sparse (half live) */
    uint16_t kept_max;  /* blocks the kept stack holds: ST_KEPT_BYTES' worth, 1..ST_KEPT_MAX */
} st_class_consts;
ST_HIDDEN extern st_class_consts st_class_table[ST_CLASS_COUNT];

/* The index of object p in the slab whose page entry is `entry`, from
 * the class table; false if p is not the start of one of its objects. */
static inline bool st_theap_object_index(uintptr_t entry, const void *p, uint32_t *idx)
{
    const st_class_consts *k = &st_class_table[entry & ST_PAGE_CLASS_MASK];
    unsigned __int128 prod = (unsigned __int128)k->recip * ((uint32_t)(uintptr_t)p & k->slab_mask);
    *idx = (uint32_t)(uint64_t)(prod >> 64);
    return (uint64_t)prod <= k->recip - 1 && *idx < k->capacity;
}

/* Clear the live and kept bits of object idx (validated) of slab s of
 * class c, owned by h, and let the heap react when a slab that is not
 * the current one stops being full, empties, or is sparse (at most half
 * live) after it. */
ST_HIDDEN void st_theap_free_clear(st_theap *h, st_slab *s, unsigned c, unsigned idx);

/* Free object p of the slab whose page entry is `entry`, owned by h:
 * validate (an object start, live, neither remotely freed nor kept),
 * then push it on the class's kept stack if there is room (when `keep`),
 * else st_theap_free_clear. The object index comes from the class
 * table, so the loads of the bits and of the descriptor overlap. */
static inline void st_theap_free_in_slab(st_theap *h, uintptr_t entry, void *p, bool keep)
{
    uintptr_t c = entry & ST_PAGE_CLASS_MASK;
    uint32_t idx;
    if (ST_UNLIKELY(!st_theap_object_index(entry, p, &idx)))
        return st_free_fault("free of a pointer inside a block", p);
    uint64_t *bits = st_slab_bitmap(st_page_slab(entry), idx >> 6), bit = (uint64_t)1 << (idx & 63);
    uint64_t kept = bits[2];
    /* not live, already freed by another thread and not yet taken in, or kept */
    if (ST_UNLIKELY((~bits[0] | __atomic_load_n(&bits[1], __ATOMIC_RELAXED) | kept) & bit))
        return st_free_fault("double free", p);
    if (ST_UNLIKELY(!keep))
        return st_theap_free_clear(h, st_page_slab(entry), (unsigned)c, (unsigned)idx);
    /* set before the room is known: fewer values live at once, fewer spilled */
    __atomic_store_n(&bits[2], kept | bit, __ATOMIC_RELAXED);
    st_kept *top = h->kept_top[c];
    if (ST_UNLIKELY(st_kept_full(top)))
        return st_theap_free_clear(h, st_page_slab(entry), (unsigned)c, (unsigned)idx);
    *--top = (st_kept){p, (uintptr_t)&bits[2] << 16 | idx};
    h->kept_top[c] = top;
}

/* Take the newest kept block of class c, if there is one. */
static inline void *st_theap_take_kept(st_theap *h, uintptr_t c)
{
    st_kept *top = h->kept_top[c];
    void *p = top->block;
    if (p != NULL) {
        uint64_t *kw = (uint64_t *)(top->bit >> 16);
        __atomic_store_n(kw, st_bit_clear(*kw, top->bit), __ATOMIC_RELAXED);
        h->kept_top[c] = top + 1;
    }
    return p;
}

/* Purge h's pending runs of empty pages, and all else queued, now. */
ST_HIDDEN void st_theap_purge_pending(st_theap *h);

/* Give every kept block back to its slab (housekeeping, stats). */
ST_HIDDEN void st_theap_flush_kept(st_theap *h);

#endif /* ST_THEAP_H */
