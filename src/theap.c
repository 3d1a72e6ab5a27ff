/* SPDX-License-Identifier: MIT */
/*
 * theap.c — thread heaps (theap.h): slab lists, medium blocks, remote
 * frees, decay and the registry of heaps.
 *
 * Everything here runs on the owner's slow paths, except
 * st_theap_free_remote (any thread: one atomic OR on the slab's remote
 * bitmap or one CAS on a medium block's page entry, then into the
 * thread's batch, handed to the owner with one CAS per batch) and the
 * registry (one lock, taken when a thread starts or exits, by a thread
 * that frees into an abandoned heap, and for stats).
 */
#include "theap.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "large.h"
#include "os.h"

#define STATE_SHIFT 8
#define STATE_MASK ST_SLAB_STATE_MASK
#define SCANNED (1u << 10)  /* a sparse slab whose free pages were all purged */
#define RECYCLED (1u << 11) /* made current again after pages were purged */
#define PENDING (1u << 12)  /* has a run of empty pages waiting to be purged */
#define BORROW_CLASSES 2    /* how many classes up borrow() looks */
#define POPULATE_CAPACITY 64 /* slabs of at most so many objects are faulted in at once */
#define QUEUE_BYTES ((size_t)1 << 20) /* the purge queue goes once it holds this much */
enum { CURRENT = 1, PARTIAL = 2, FULL = 3 };
_Static_assert(ST_SLAB_CURRENT_TAG == CURRENT << STATE_SHIFT, "the fast path knows CURRENT");
_Static_assert((ST_KEPT_STACK_BYTES & (ST_KEPT_STACK_BYTES - 1)) == 0, "a kept stack's size is a power of two");
_Static_assert(ST_SLAB_MAX_CAPACITY < (1u << 16), "a kept entry holds an object index");

st_slab st_full_slab = {.magic = ST_SLAB_MAGIC_BITMAP, .cursor = 0, .bits = {UINT64_MAX}};

/* The empty heap's stacks: one entry, NULL, at a stack boundary: empty to
 * a pop, full to a push. */
static _Alignas(ST_KEPT_STACK_BYTES) st_kept no_kept[1];

st_theap st_empty_heap = {.current = {[0 ... ST_CLASS_COUNT - 1] = &st_full_slab},
                          .kept_top = {[0 ... ST_CLASS_COUNT - 1] = no_kept}};

static struct {
    st_slab_layout layout;
    unsigned order;
} classes[ST_CLASS_COUNT];

st_class_consts st_class_table[ST_CLASS_COUNT];

static uint64_t decay_ms = 1000;
static size_t retain_pages = 1024;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
/* Held by an owner while it links a segment into its list or unlinks and
 * releases one (rare: a segment is 4 MiB), and by whoever walks other
 * heaps' segments (statistics, fork), so that none is unmapped under the
 * walker. Taken after the registry lock, never before it. */
static pthread_mutex_t segments_lock = PTHREAD_MUTEX_INITIALIZER;
static st_theap *all_heaps, *abandoned_heaps;
static uint64_t abandon_count, adopt_count; /* under registry_lock */

_Noreturn void st_malloc_fault(const char *fault, const void *p) { st_fatal("malloc", fault, p); }
void st_free_fault(const char *fault, const void *p) { st_fatal("malloc", fault, p); }

uint64_t st_theap_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void st_theap_configure(uint64_t decay, size_t retain)
{
    decay_ms = decay;
    retain_pages = retain;
    for (unsigned c = 0; c < ST_CLASS_COUNT; c++) {
        classes[c].order = st_sizeclass_slab_order(c);
        if (!st_slab_layout_bitmap((size_t)ST_PAGE_SIZE << classes[c].order,
                                   st_sizeclass_size(c), st_sizeclass_align(c),
                                   &classes[c].layout))
            st_fatal("malloc", "size class without a slab layout", NULL);
        const st_slab_layout *l = &classes[c].layout;
        if (l->desc_bytes > ST_SEGMENT_SLOT_BYTES || l->block_bytes < ((size_t)1 << ST_GRANULE_SHIFT))
            st_fatal("malloc", "size class whose slab the segment cannot describe", NULL);
        st_class_table[c] = (st_class_consts){
            .recip = st_recip_of(l->size),
            .slab_mask = (uint32_t)(l->block_bytes - 1),
            .capacity = l->capacity,
            .sparse_at = (l->capacity + 1) / 2,
            .kept_max = (uint16_t)ST_MIN(ST_KEPT_MAX, ST_MAX(1, ST_KEPT_BYTES / l->size))};
    }
}

/* ---- slab state and lists ------------------------------------------------ */

static unsigned slab_state(const st_slab *s) { return (s->owner_tag & STATE_MASK) >> STATE_SHIFT; }
static unsigned slab_class(const st_slab *s) { return s->owner_tag & 0xff; }

static void set_state(st_slab *s, unsigned state)
{
    s->owner_tag = (s->owner_tag & ~STATE_MASK) | (state << STATE_SHIFT);
}

static st_slab *slab_of_link(st_slab_link *l)
{
    return (st_slab *)(uintptr_t)((char *)l - offsetof(st_slab, link));
}

/* At the tail: the partial list is FIFO, so the slab taken next is the
 * one that has waited longest and gathered the most frees. */
static void list_push(st_slab_link *head, st_slab *s)
{
    s->link.next = head;
    s->link.prev = head->prev;
    head->prev->next = &s->link;
    head->prev = &s->link;
}

static void list_remove(st_slab *s)
{
    s->link.prev->next = s->link.next;
    s->link.next->prev = s->link.prev;
}

static st_slab *list_pop(st_slab_link *head)
{
    if (head->next == head)
        return NULL;
    st_slab *s = slab_of_link(head->next);
    list_remove(s);
    return s;
}

static st_segment *segment_of_slab(const st_slab *s) { return st_segment_of((void *)s->block); }

static size_t slab_pages(const st_slab *s) { return s->block_bytes / ST_PAGE_SIZE; }

/* ---- pages from the heap's segments ---------------------------------------- */

/* Give the queued pages back now (theap.h: before they may be written). */
static void purge_flush(st_theap *h)
{
    if (h->purge_queue.count > 0)
        st_os_batch_flush(&h->purge_queue);
}

/* … once they add up to QUEUE_BYTES: memory waiting for the next
 * flush stays bounded. */
static void purge_flush_if_big(st_theap *h)
{
    if (h->purge_queue.bytes >= QUEUE_BYTES)
        purge_flush(h);
}

/* … if any of them lies in [lo, lo + bytes): pages about to be written.
 * Only then, so that the queue goes out full, as rarely as it can: in a
 * threaded process each call interrupts the CPUs of the other threads
 * to flush their TLBs. */
static void purge_flush_within(st_theap *h, const void *lo, size_t bytes)
{
    for (unsigned i = 0; i < h->purge_queue.count; i++) {
        const struct iovec *r = &h->purge_queue.range[i];
        if ((const char *)r->iov_base < (const char *)lo + bytes &&
            (const char *)r->iov_base + r->iov_len > (const char *)lo)
            return purge_flush(h);
    }
}

static void segment_link(st_theap *h, st_segment *seg)
{
    pthread_mutex_lock(&segments_lock);
    seg->prev = NULL;
    seg->next = h->segments;
    if (h->segments)
        h->segments->prev = seg;
    h->segments = seg;
    pthread_mutex_unlock(&segments_lock);
}

/* Out of the heap's list and back to the segment layer (cached or unmapped). */
static void segment_drop(st_theap *h, st_segment *seg)
{
    purge_flush_within(h, seg, ST_SEGMENT_SIZE);
    pthread_mutex_lock(&segments_lock);
    if (seg->prev)
        seg->prev->next = seg->next;
    else
        h->segments = seg->next;
    if (seg->next)
        seg->next->prev = seg->prev;
    st_segment_release(seg);
    pthread_mutex_unlock(&segments_lock);
}

/* A run of pages from h's segments (a new one if none has room); with
 * `resident`, how many of them are still resident (dirty when freed). */
static void *pages_alloc(st_theap *h, size_t pages, bool aligned, st_segment **out,
                         size_t *resident)
{
    void *run = NULL;
    st_segment *seg;
    size_t was_dirty = 0;
    for (seg = h->segments; seg != NULL; seg = seg->next)
        if ((run = st_segment_alloc_pages(seg, pages, aligned, &was_dirty)) != NULL)
            break;
    if (run == NULL) {
        if ((seg = st_segment_new(h)) == NULL)
            return NULL;
        segment_link(h, seg);
        run = st_segment_alloc_pages(seg, pages, aligned, &was_dirty);
    }
    size_t taken = st_segment_run_pages(seg, run);
    purge_flush_within(h, run, taken * ST_PAGE_SIZE); /* before the caller writes them */
    h->used_pages += taken;
    h->dirty_pages -= ST_MIN(h->dirty_pages, was_dirty);
    *out = seg;
    if (resident != NULL)
        *resident = was_dirty;
    return run;
}

static void purge_segment(st_theap *h, st_segment *seg)
{
    size_t bytes = st_segment_purge(seg, &h->purge_queue, &h->purges);
    purge_flush_if_big(h);
    h->purged_bytes += bytes;
    h->dirty_pages -= ST_MIN(h->dirty_pages, bytes / ST_PAGE_SIZE);
}

/* Pages back to the segment. When the dirty pages outgrow both the
 * retain limit and the pages in use (a heap that shrank: a busy heap
 * reuses its dirty pages instead of faulting in fresh ones), every dirty
 * page of the heap goes to the OS at once, in one batch, instead of
 * waiting for the decay. */
static void pages_free(st_theap *h, st_segment *seg, void *run)
{
    size_t pages = st_segment_free_pages(seg, run, st_theap_now_ms());
    h->dirty_pages += pages;
    h->used_pages -= pages;
    if (h->dirty_pages > ST_MAX(retain_pages, h->used_pages)) {
        for (st_segment *each = h->segments; each != NULL; each = each->next)
            purge_segment(h, each);
        h->dirty_pages = 0;
        purge_flush(h);
    }
}

/* ---- returning the pages of sparse slabs ------------------------------------- */

/* Are objects lo..hi (inclusive) all free? */
static bool range_free(const st_slab *s, unsigned lo, unsigned hi)
{
    for (unsigned w = lo / 64; w <= hi / 64; w++) {
        uint64_t mask = UINT64_MAX;
        if (w == lo / 64)
            mask &= UINT64_MAX << (lo % 64);
        if (w == hi / 64 && hi % 64 != 63)
            mask &= ((uint64_t)1 << (hi % 64 + 1)) - 1;
        if (st_slab_live(s, w) & mask)
            return false;
    }
    return true;
}

/* What purging page `page` of slab s (an index in its segment) would do. */
enum page_state {
    PAGE_IN_USE, /* a live object touches it: it stays */
    PAGE_EMPTY,  /* no live object, still resident: purge it */
    PAGE_GONE,   /* purged already, or padding no object reaches: either way
                  * not resident, so a run of empty pages may take it in */
};

static bool page_purged(const st_segment *seg, size_t page)
{
    return (seg->purged[page / 64] >> (page % 64)) & 1;
}

/* Is page `page` (of slab s's segment) padding that no object reaches? */
static bool page_unused(const st_slab *s, const st_segment *seg, size_t page)
{
    uintptr_t pa = (uintptr_t)seg + page * ST_PAGE_SIZE, base = st_slab_base(s);
    return pa + ST_PAGE_SIZE <= base || pa >= base + (uintptr_t)s->capacity * s->size;
}

/* Does a live object of slab s touch page `page` (not padding)? */
static bool page_live(const st_slab *s, const st_segment *seg, size_t page)
{
    uintptr_t pa = (uintptr_t)seg + page * ST_PAGE_SIZE, base = st_slab_base(s);
    unsigned lo = pa <= base ? 0 : (unsigned)((pa - base) / s->size);
    unsigned hi = (unsigned)ST_MIN((pa + ST_PAGE_SIZE - 1 - base) / s->size, s->capacity - 1u);
    return !range_free(s, lo, hi);
}

static enum page_state page_state(const st_slab *s, const st_segment *seg, size_t page)
{
    if (page_purged(seg, page) || page_unused(s, seg, page))
        return PAGE_GONE;
    return page_live(s, seg, page) ? PAGE_IN_USE : PAGE_EMPTY;
}

/* Queue pages first..last of the segment for purging and mark them. */
static void purge_pages(st_theap *h, st_segment *seg, size_t first, size_t last)
{
    st_os_batch_add(&h->purge_queue, (char *)seg + first * ST_PAGE_SIZE,
                    (last + 1 - first) * ST_PAGE_SIZE);
    purge_flush_if_big(h);
    for (size_t page = first; page <= last; page++) {
        uint64_t bit = (uint64_t)1 << (page % 64);
        if (!(seg->purged[page / 64] & bit))
            h->purged_bytes += ST_PAGE_SIZE;
        seg->purged[page / 64] |= bit;
    }
    h->purges++;
}

/* Purge the empty pages among pages lo..hi of slab s (indexes in its
 * segment): one range per run of them. */
static void purge_range(st_theap *h, st_slab *s, size_t lo, size_t hi)
{
    st_segment *seg = segment_of_slab(s);
    size_t run = SIZE_MAX, last = 0; /* the run: empty pages run..last, maybe gone ones between */
    for (size_t page = lo; page <= hi; page++) {
        enum page_state state = page_state(s, seg, page);
        if (state == PAGE_EMPTY) {
            run = ST_MIN(run, page);
            last = page;
        } else if (state == PAGE_IN_USE && run != SIZE_MAX) {
            purge_pages(h, seg, run, last);
            run = SIZE_MAX;
        }
    }
    if (run != SIZE_MAX)
        purge_pages(h, seg, run, last);
}

static size_t slab_first_page(const st_slab *s)
{
    return (s->block - (uintptr_t)segment_of_slab(s)) / ST_PAGE_SIZE;
}

/* Purge every empty page of slab s. */
static void purge_slab_pages(st_theap *h, st_slab *s)
{
    size_t lo = slab_first_page(s);
    purge_range(h, s, lo, lo + slab_pages(s) - 1);
    s->owner_tag |= SCANNED;
}

static bool is_sparse(const st_slab *s)
{
    return s->free_count >= st_class_table[slab_class(s)].sparse_at;
}

/* ---- pending runs of empty pages ------------------------------------------------ */

static unsigned pending_pages(const st_purge_run *r) { return r->last + 1 - r->first; }

/* The index of the newest run of slab s among pending[0 .. from), or
 * `from` if it has none there. */
static unsigned pending_newest(const st_theap *h, const st_slab *s, unsigned from)
{
    unsigned i = from;
    while (i-- > 0)
        if (h->pending[i].slab == s)
            return i;
    return from;
}

static void pending_drop(st_theap *h, unsigned i)
{
    st_slab *s = h->pending[i].slab;
    h->pending_pages -= pending_pages(&h->pending[i]);
    h->pending_runs--;
    memmove(&h->pending[i], &h->pending[i + 1], (h->pending_runs - i) * sizeof(st_purge_run));
    if (pending_newest(h, s, h->pending_runs) == h->pending_runs)
        s->owner_tag &= ~PENDING;
}

/* Purge every pending run (what of it is still empty), and whatever
 * else is queued, now. */
void st_theap_purge_pending(st_theap *h)
{
    for (unsigned i = 0; i < h->pending_runs; i++) {
        h->pending[i].slab->owner_tag &= ~PENDING;
        purge_range(h, h->pending[i].slab, h->pending[i].first, h->pending[i].last);
    }
    h->pending_runs = h->pending_pages = 0;
    purge_flush(h);
}

/* Slab s is going back to its buddy, or about to be allocated from: its
 * runs are dropped, and queued for purging only if it goes (as the pages
 * would have been had the frees that emptied them purged them at once). */
static void pending_forget(st_theap *h, st_slab *s, bool purge)
{
    if (!(s->owner_tag & PENDING))
        return;
    for (unsigned i; (i = pending_newest(h, s, h->pending_runs)) < h->pending_runs;) {
        if (purge)
            purge_range(h, s, h->pending[i].first, h->pending[i].last);
        pending_drop(h, i);
    }
}

/* Pages first..last of slab s just became empty: they join its newest
 * run if they touch it; else they start a run of their own. The runs
 * go to the OS together, in one batch, when ST_PURGE_PENDING of them or
 * ST_PURGE_PENDING_PAGES pages wait. */
static void pending_add(st_theap *h, st_slab *s, unsigned first, unsigned last)
{
    unsigned i = (s->owner_tag & PENDING) ? pending_newest(h, s, h->pending_runs) : h->pending_runs;
    st_purge_run *r = &h->pending[i];
    if (i < h->pending_runs && first <= r->last + 1 && last + 1 >= r->first) {
        h->pending_pages -= pending_pages(r);
        r->first = ST_MIN(r->first, first);
        r->last = ST_MAX(r->last, last);
        h->pending_pages += pending_pages(r);
    } else {
        if (h->pending_runs == ST_PURGE_PENDING)
            st_theap_purge_pending(h);
        h->pending[h->pending_runs++] = (st_purge_run){s, first, last};
        h->pending_pages += last + 1 - first;
        s->owner_tag |= PENDING;
    }
    if (h->pending_pages > ST_PURGE_PENDING_PAGES)
        st_theap_purge_pending(h);
}

/* A free of object idx left slab s (PARTIAL) sparse: its empty pages go
 * back now, not at the decay: the first time, every one of them; after
 * that, the page or two of idx if the free emptied them. Not each page
 * with a madvise of its own as it empties: frees tend to go on in address
 * order, and the pages they empty join a run, and the runs go to the OS
 * in batches through the purge queue. In a threaded process every call
 * interrupts the other threads' CPUs to flush their TLBs: one madvise a
 * run cost a two-thread churn a fifth of its speed, batches cost it
 * nothing measurable. Not while a thread takes in the blocks other
 * threads freed for its own heap: it is allocating, and the slab a batch
 * leaves sparse is refilled at once (a producer and its consumer on one
 * CPU: 250,000 page faults for 5 M blocks, 5,000 without). A thread
 * standing in for an absent owner (gone, or in pthread_join) does purge:
 * nothing refills those slabs soon (server: peak RSS 24.4 -> 19.9 MiB for
 * about 5 % of its time). And once per slab life: a slab reused after a
 * purge (RECYCLED) is left to the decay, so a slab that cycles between
 * busy and sparse cannot thrash. */
static void purge_sparse_now(st_theap *h, st_slab *s, unsigned idx)
{
    if (!is_sparse(s) || (s->owner_tag & RECYCLED) ||
        (h->collecting && h->state == ST_HEAP_ACTIVE))
        return;
    if (!(s->owner_tag & SCANNED))
        return purge_slab_pages(h, s);
    st_segment *seg = segment_of_slab(s);
    uintptr_t base = st_slab_base(s) - (uintptr_t)seg;
    size_t lo = (base + (uintptr_t)idx * s->size) / ST_PAGE_SIZE;
    size_t hi = (base + ((uintptr_t)idx + 1) * s->size - 1) / ST_PAGE_SIZE;
    while (lo <= hi && page_state(s, seg, lo) != PAGE_EMPTY)
        lo++;
    while (hi >= lo && page_state(s, seg, hi) != PAGE_EMPTY)
        hi--;
    if (lo <= hi)
        pending_add(h, s, (unsigned)lo, (unsigned)hi);
}

/* ---- slabs ------------------------------------------------------------------ */

/* A slab that takes over from one that filled up is written all over
 * soon: its objects are handed out in turn until it is full too. Pages
 * of it that are not resident (new, or purged) would fault in one trap
 * each; they are faulted in at once with one call. Only then: a class
 * that takes its first slab may never fill it, and the pages of a slab
 * of many small objects may wait long for their first write. */
static bool worth_populating(unsigned c, bool filled)
{
    return filled && st_class_table[c].capacity <= POPULATE_CAPACITY;
}

static st_slab *slab_new(st_theap *h, unsigned c, bool filled)
{
    st_segment *seg;
    size_t pages = (size_t)1 << classes[c].order;
    size_t resident;
    void *block = pages_alloc(h, pages, true, &seg, &resident);
    if (block == NULL)
        return NULL;
    if (resident < pages && worth_populating(c, filled))
        st_os_populate(block, pages * ST_PAGE_SIZE);
    st_slab *s = st_segment_slot_take(seg, block, classes[c].layout.desc_bytes);
    st_slab_init_bitmap(s, block, &classes[c].layout);
    s->owner_tag = c;
    uintptr_t entry = (uintptr_t)s | c;
    st_segment_set_pages(seg, block, pages, entry, entry);
    return s;
}

static void slab_release(st_theap *h, st_slab *s)
{
    pending_forget(h, s, true);
    if (slab_state(s) == PARTIAL)
        list_remove(s);
    s->magic = 0;
    st_segment *seg = segment_of_slab(s);
    void *block = (void *)s->block;
    st_segment_slot_put(seg, block, classes[slab_class(s)].layout.desc_bytes); /* s may go */
    pages_free(h, seg, block);
}

/* The slab's pages may be written again: forget which were purged (and
 * fault them in, if worth_populating). */
static void make_current(st_theap *h, st_slab *s, bool filled)
{
    pending_forget(h, s, false);
    purge_flush_within(h, (void *)s->block, s->block_bytes);
    if (s->owner_tag & SCANNED) {
        st_segment *seg = segment_of_slab(s);
        size_t first = slab_first_page(s), lo = SIZE_MAX, hi = 0;
        for (size_t i = first; i < first + slab_pages(s); i++) {
            uint64_t bit = (uint64_t)1 << (i % 64);
            if (seg->purged[i / 64] & bit) {
                lo = ST_MIN(lo, i);
                hi = i;
                seg->purged[i / 64] &= ~bit;
            }
        }
        if (lo <= hi && worth_populating(slab_class(s), filled))
            st_os_populate((char *)seg + lo * ST_PAGE_SIZE, (hi + 1 - lo) * ST_PAGE_SIZE);
        s->owner_tag |= RECYCLED;
    }
    s->owner_tag &= ~SCANNED;
    set_state(s, CURRENT);
    h->current[slab_class(s)] = s;
}

/* Is class c's kept stack switched off (kept_switch_off)? */
static bool kept_off(const st_theap *h, unsigned c)
{
    return h->kept_top[c] == &h->kept[c][0] && h->kept[c][0].block == NULL;
}

/* Class c has no free object left and would take a new slab: a free
 * object of one of the next classes up (at most half as large again, as
 * aligned) serves instead, if its owner keeps one or its oldest partial
 * slab has one. Each class's count of live objects wanders up and down
 * on its own, and without this every class would hold slabs for its own
 * highest count; with it, neighbours lend each other their slack (churn:
 * 3 points less fragmentation). Partial slabs with purged pages are left
 * alone: they are emptying, and a page written again would need its
 * purged mark cleared. */
static void *borrow(st_theap *h, unsigned c)
{
    size_t size = st_sizeclass_size(c), align = st_sizeclass_align(c);
    for (unsigned d = c + 1; d <= c + BORROW_CLASSES && d < ST_CLASS_COUNT; d++) {
        if (st_sizeclass_size(d) > size + size / 2 || st_sizeclass_align(d) < align)
            break;
        void *p = st_theap_take_kept(h, d);
        if (p != NULL)
            return p;
        st_slab_link *first = h->partial[d].next;
        if (first == &h->partial[d] || (slab_of_link(first)->owner_tag & SCANNED))
            continue;
        st_slab *s = slab_of_link(first);
        p = st_slab_take(s);
        if (s->free_count == 0) {
            list_remove(s);
            set_state(s, FULL);
        }
        return p;
    }
    return NULL;
}

/* The current slab's cursor word was full: scan on; when the slab is
 * full, take the oldest partial slab (or a new one) — and only then pay
 * for housekeeping and for taking in remote frees. */
void *st_theap_alloc_class(st_theap *h, unsigned c)
{
    void *p = st_theap_take_kept(h, c);
    if (p != NULL)
        return p; /* the slow paths (aligned requests, the empty heap) come here */
    if (kept_off(h, c)) /* switched off while the class shrank: it grows again */
        h->kept_top[c] = &h->kept[c][st_class_table[c].kept_max];
    st_slab *s = h->current[c];
    p = s != &st_full_slab ? st_slab_take_scan(s) : NULL;
    if (p != NULL)
        return p;
    st_theap_housekeep(h, false);
    if (__atomic_load_n(&h->remote, __ATOMIC_RELAXED) != NULL)
        st_theap_collect(h);
    /* both may have freed into the current slab, even emptied and released it */
    s = h->current[c];
    if (s != &st_full_slab && (p = st_slab_take_scan(s)) != NULL)
        return p;
    bool filled = s != &st_full_slab;
    if (filled)
        set_state(s, FULL);
    h->current[c] = &st_full_slab;
    s = list_pop(&h->partial[c]);
    if (s == NULL && (p = borrow(h, c)) != NULL)
        return p;
    if (s == NULL && (s = slab_new(h, c, filled)) == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    make_current(h, s, filled);
    return st_slab_take(s);
}

void st_theap_free_clear(st_theap *h, st_slab *s, unsigned c, unsigned idx)
{
    const st_class_consts *k = &st_class_table[c];
    unsigned wi = idx >> 6;
    uint64_t bit = (uint64_t)1 << (idx & 63);
    uint64_t w = st_slab_live(s, wi) & ~bit, *kw = st_slab_kept_word(s, wi);
    st_slab_set_live(s, wi, w);
    __atomic_store_n(kw, *kw & ~bit, __ATOMIC_RELAXED); /* the fast path may have set it */
    uint32_t was_free = s->free_count++;
    s->cursor = ST_MIN(wi, s->cursor); /* random frees: a branch would mispredict half the time */
    /* was_free - 1 wraps for 0 (was full) and reaches capacity - 2 when empty now */
    if (ST_UNLIKELY((was_free - 1 >= k->capacity - 2 || was_free + 1 >= k->sparse_at) &&
                    (s->owner_tag & ST_SLAB_STATE_MASK) != ST_SLAB_CURRENT_TAG))
        st_theap_slab_event(h, s, idx);
}

/* Free a block of h's that the free path has not validated yet (kept
 * blocks given back, with their kept bits already clear). */
static void free_owned(st_theap *h, void *p)
{
    st_theap_free_in_slab(h, st_segment_page_tag(st_segment_of(p), p), p, false);
}

/* Class c is shrinking (a slab of it emptied or became sparse): give its
 * kept blocks back and keep no more until its next malloc that finds the
 * stack empty (st_theap_alloc_class, or the fast path sending it there).
 * Otherwise the blocks a thread freed last before going idle would each
 * pin their slab, up to 15 slabs a class, for as long as it stays idle.
 * Switched off: no room, and an empty first entry, so that the fast paths
 * see a full stack when they push and an empty one when they pop. */
static void kept_switch_off(st_theap *h, unsigned c)
{
    void *blocks[ST_KEPT_MAX], *p;
    unsigned n = 0;
    while ((p = st_theap_take_kept(h, c)) != NULL)
        blocks[n++] = p;
    h->kept_top[c] = &h->kept[c][0];
    h->kept[c][0].block = NULL;
    /* after the switch: their frees may report more shrinking */
    for (unsigned i = 0; i < n; i++)
        free_owned(h, blocks[i]);
}

void st_theap_slab_event(st_theap *h, st_slab *s, unsigned idx)
{
    unsigned c = slab_class(s);
    unsigned state = slab_state(s);
    if (state == CURRENT)
        return;
    if (st_slab_is_empty(s)) {
        slab_release(h, s);
        kept_switch_off(h, c);
        return;
    }
    if (state == FULL) {
        set_state(s, PARTIAL);
        list_push(&h->partial[slab_class(s)], s);
    }
    purge_sparse_now(h, s, idx);
    if (s->free_count == st_class_table[c].sparse_at)
        kept_switch_off(h, c);
}

/* ---- medium blocks ------------------------------------------------------------ */

void *st_theap_alloc_medium(st_theap *h, size_t size, size_t align)
{
    st_theap_housekeep(h, false);
    if (__atomic_load_n(&h->remote, __ATOMIC_RELAXED) != NULL)
        st_theap_collect(h);
    size_t pages = st_align_up(size, ST_PAGE_SIZE) / ST_PAGE_SIZE;
    bool aligned = align > ST_PAGE_SIZE;
    if (aligned)
        pages = ST_MAX(pages, align / ST_PAGE_SIZE);
    st_segment *seg;
    void *run = pages_alloc(h, pages, aligned, &seg, NULL);
    if (run == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    st_segment_set_pages(seg, run, st_segment_run_pages(seg, run), ST_PAGE_MEDIUM,
                         ST_PAGE_MEDIUM_BODY);
    return run;
}

size_t st_theap_medium_size(st_segment *seg, const void *p)
{
    return st_segment_run_pages(seg, p) * ST_PAGE_SIZE;
}

/* The fault a bad medium-or-page free is, from its page entry. */
static _Noreturn void page_fault(const void *p, uintptr_t entry)
{
    if (entry == ST_PAGE_MEDIUM_REMOTE || entry == ST_PAGE_FREE)
        st_malloc_fault("double free", p);
    st_malloc_fault("free of a pointer inside a block", p);
}

/* Free medium block p, whose first page's tag must still be `expect`:
 * it is swapped to FREE before the pages go, so that of two frees of p
 * racing from two threads (the other swaps MEDIUM for MEDIUM_REMOTE) one
 * finds the other's tag and reports the double free. */
static void medium_free(st_theap *h, st_segment *seg, void *p, uintptr_t expect)
{
    uintptr_t seen = expect;
    if (((uintptr_t)p & (ST_PAGE_SIZE - 1)) != 0 ||
        !__atomic_compare_exchange_n(st_segment_entry(seg, p), &seen, ST_PAGE_FREE, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        page_fault(p, seen);
    pages_free(h, seg, p);
}

void st_theap_free_medium(st_theap *h, st_segment *seg, void *p, uintptr_t entry)
{
    if (entry != ST_PAGE_MEDIUM)
        page_fault(p, entry);
    medium_free(h, seg, p, ST_PAGE_MEDIUM);
}

/* ---- remote frees --------------------------------------------------------------- */

/* Blocks freed into a heap whose thread is gone, or parked in
 * pthread_join: nobody would take them in until a new thread adopts the
 * heap or its thread returns, so the freeing thread does it, holding the
 * registry lock as the owner's stand-in (adoption and unparking take the
 * same lock). When the lock is busy the blocks wait: the adopter, the
 * returning owner, or (abandoned heaps) the next decay of an active heap
 * (housekeep_abandoned) takes them in. */
static void reclaim(st_theap *h)
{
    if (pthread_mutex_trylock(&registry_lock) != 0)
        return;
    if (h->state == ST_HEAP_ABANDONED || h->state == ST_HEAP_PARKED) {
        st_theap_collect(h); /* its runs wait for its decay (or malloc_trim) */
        st_theap_housekeep(h, false);
    }
    pthread_mutex_unlock(&registry_lock);
}

/* A carrier: a freed block that holds the addresses of others freed
 * with it, which its owner takes in. Word 0 links the carriers on the
 * owner's remote list, word 1 counts the addresses that follow. */
enum { CARRIER_LINK, CARRIER_COUNT, CARRIER_BLOCKS };

/* Addresses a freed block of `bytes` can carry. */
static uint16_t carrier_room(size_t bytes)
{
    return (uint16_t)ST_MIN(bytes / sizeof(void *) - CARRIER_BLOCKS, ST_REMOTE_BATCH);
}

/* Blocks batch[0..n) into carriers, the roomiest first; the last carrier
 * made. */
static void **load_carriers(st_remote_batch *b, void ***first)
{
    void **last = NULL;
    unsigned n = b->count;
    while (n > 0) {
        unsigned big = 0;
        for (unsigned i = 1; i < n; i++)
            big = b->room[i] > b->room[big] ? i : big;
        void **carrier = b->blocks[big];
        unsigned k = ST_MIN(b->room[big], n - 1);
        n--;
        b->blocks[big] = b->blocks[n];
        b->room[big] = b->room[n];
        n -= k;
        memcpy(&carrier[CARRIER_BLOCKS], &b->blocks[n], k * sizeof(void *));
        carrier[CARRIER_COUNT] = (void *)(uintptr_t)k;
        if (last == NULL)
            *first = carrier;
        else
            last[CARRIER_LINK] = carrier;
        last = carrier;
    }
    return last;
}

/* Hand a batch to its owner with one CAS. */
void st_theap_remote_flush(st_remote_batch *b)
{
    if (b->count == 0)
        return;
    st_theap *owner = b->owner;
    void **first = NULL, **last = load_carriers(b, &first);
    void *old = __atomic_load_n(&owner->remote, __ATOMIC_RELAXED);
    do
        last[CARRIER_LINK] = old;
    while (!__atomic_compare_exchange_n(&owner->remote, &old, first, true, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED));
    /* (acquire too: a push after a parking owner's take-in then sees
     * the state it stored before, st_theap_park) */
    __atomic_fetch_add(&owner->remote_frees, b->count, __ATOMIC_RELAXED);
    b->count = 0;
    uint32_t state = __atomic_load_n(&owner->state, __ATOMIC_ACQUIRE);
    if (state == ST_HEAP_ABANDONED || state == ST_HEAP_PARKED)
        reclaim(owner);
}

static void batch_add(st_remote_batch *b, st_theap *owner, void *p, size_t bytes)
{
    if (b->owner != owner) {
        st_theap_remote_flush(b);
        b->owner = owner;
    }
    b->room[b->count] = carrier_room(bytes);
    b->blocks[b->count++] = p;
    if (b->count >= ST_REMOTE_BATCH)
        st_theap_remote_flush(b);
}

/* Mark the block freed (so a second free aborts here, at once) before
 * publishing it: after the push the owner may reuse it any time. */
void st_theap_free_remote(st_segment *seg, void *p, uintptr_t entry, st_remote_batch *batch)
{
    if (entry >= ST_PAGE_SIZE) {
        st_slab *s = st_page_slab(entry);
        uint32_t idx;
        if (!st_theap_object_index(entry, p, &idx))
            st_malloc_fault("free of a pointer inside a block", p);
        uint64_t bit = (uint64_t)1 << (idx & 63);
        /* the kept bit is read after whatever ordered this free after the
         * owner's: a block the owner keeps is found */
        if (!(st_slab_live(s, idx >> 6) & bit) ||
            (__atomic_load_n(st_slab_kept_word(s, idx >> 6), __ATOMIC_RELAXED) & bit) ||
            (__atomic_fetch_or(st_slab_remote_word(s, idx >> 6), bit, __ATOMIC_RELAXED) & bit))
            st_malloc_fault("double free", p);
        batch_add(batch, seg->owner, p, st_sizeclass_size((unsigned)(entry & ST_PAGE_CLASS_MASK)));
    } else {
        uintptr_t expect = ST_PAGE_MEDIUM;
        if (((uintptr_t)p & (ST_PAGE_SIZE - 1)) != 0 ||
            !__atomic_compare_exchange_n(st_segment_entry(seg, p), &expect, ST_PAGE_MEDIUM_REMOTE,
                                         false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            page_fault(p, entry == ST_PAGE_MEDIUM ? expect : entry);
        batch_add(batch, seg->owner, p, ST_PAGE_SIZE); /* at least a page */
    }
}

/* A block from the remote list, p: check that it is one freed to h (in
 * one of h's segments, an object start or a medium block, with its
 * remote mark: the remote bit of object *idx, or the page tag) and
 * return its page entry; with `unmark`, clear its remote bit too (a
 * medium block's tag is swapped by medium_free). A mark found missing
 * means that the list was overwritten (a write to a freed block). */
static uintptr_t remote_entry(st_theap *h, st_segment *seg, void *p, uint32_t *idx, bool unmark)
{
    uintptr_t entry = seg != NULL && seg->owner == h ? st_segment_page_tag(seg, p) : 0;
    if (entry >= ST_PAGE_SIZE && st_theap_object_index(entry, p, idx)) {
        uint64_t bit = (uint64_t)1 << (*idx & 63);
        uint64_t *word = st_slab_remote_word(st_page_slab(entry), *idx >> 6);
        uint64_t was = unmark ? __atomic_fetch_and(word, ~bit, __ATOMIC_RELAXED)
                              : __atomic_load_n(word, __ATOMIC_RELAXED);
        if (was & bit)
            return entry;
    } else if (entry == ST_PAGE_MEDIUM_REMOTE && ((uintptr_t)p & (ST_PAGE_SIZE - 1)) == 0) {
        return entry;
    }
    st_malloc_fault("remote-freed block overwritten", p);
}

/* Free a block whose remote mark is gone. The freeing thread validated
 * it and its mark kept every other free out since, so this only checks
 * what a free racing with the take-in would have changed: marked again
 * by another thread, or kept by the owner (a double free either way). */
static void free_unmarked(st_theap *h, st_segment *seg, void *p, uintptr_t entry, uint32_t idx)
{
    if (entry == ST_PAGE_MEDIUM_REMOTE)
        return medium_free(h, seg, p, ST_PAGE_MEDIUM_REMOTE);
    st_slab *s = st_page_slab(entry);
    uint64_t *bits = st_slab_bitmap(s, idx >> 6), bit = (uint64_t)1 << (idx & 63);
    if ((~bits[0] | __atomic_load_n(&bits[1], __ATOMIC_RELAXED) | bits[2]) & bit)
        st_malloc_fault("double free", p);
    st_theap_free_clear(h, s, (unsigned)(entry & ST_PAGE_CLASS_MASK), idx);
}

/* Take in one carrier: the blocks it names, then itself; returns the
 * next carrier. It is read only once it is known to be a block freed to
 * h, and keeps its mark until the end, so that a second free of it
 * meanwhile still aborts. */
static void **take_carrier(st_theap *h, void **carrier)
{
    st_segment *seg = st_segment_of(carrier);
    uint32_t idx = 0;
    uintptr_t entry = remote_entry(h, seg, carrier, &idx, false);
    void **next = carrier[CARRIER_LINK];
    size_t n = (uintptr_t)carrier[CARRIER_COUNT];
    size_t bytes = entry == ST_PAGE_MEDIUM_REMOTE ? ST_PAGE_SIZE
                                                  : st_sizeclass_size((unsigned)(entry & ST_PAGE_CLASS_MASK));
    if (n > carrier_room(bytes))
        st_malloc_fault("remote-freed block overwritten", carrier);
    for (size_t i = 0; i < n; i++) {
        void *p = carrier[CARRIER_BLOCKS + i];
        st_segment *pseg = st_segment_of(p);
        uint32_t pidx = 0;
        uintptr_t pentry = remote_entry(h, pseg, p, &pidx, true);
        free_unmarked(h, pseg, p, pentry, pidx);
    }
    remote_entry(h, seg, carrier, &idx, true);
    free_unmarked(h, seg, carrier, entry, idx);
    return next;
}

void st_theap_flush_kept(st_theap *h)
{
    for (unsigned c = 0; c < ST_CLASS_COUNT; c++) {
        void *p;
        while ((p = st_theap_take_kept(h, c)) != NULL)
            free_owned(h, p);
    }
}

void st_theap_collect(st_theap *h)
{
    void **carrier = __atomic_exchange_n(&h->remote, NULL, __ATOMIC_ACQ_REL);
    h->collecting = true;
    while (carrier != NULL)
        carrier = take_carrier(h, carrier);
    h->collecting = false;
}

/* ---- decay -------------------------------------------------------------------------- */

/* Kept blocks go back to their slabs; empty current slabs go back (a busy
 * class makes a new one from the same, still resident, pages); sparse
 * partial slabs return their free pages (those reused after a purge,
 * RECYCLED, return them only here); dirty pages older than the decay go
 * to the OS; segments with nothing in use are released. */
static void decay_pass(st_theap *h, uint64_t now, bool force)
{
    h->next_decay_ms = now + ST_MAX(decay_ms / 2, 1);
    st_theap_collect(h);
    st_theap_flush_kept(h); /* they may be all that keeps a slab */
    st_theap_purge_pending(h);
    for (unsigned c = 0; c < ST_CLASS_COUNT; c++) {
        st_slab *s = h->current[c];
        if (s != &st_full_slab && st_slab_is_empty(s)) {
            h->current[c] = &st_full_slab;
            slab_release(h, s);
        }
        for (st_slab_link *l = h->partial[c].next; l != &h->partial[c]; l = l->next)
            if (is_sparse(slab_of_link(l)))
                purge_slab_pages(h, slab_of_link(l));
    }
    st_segment *next;
    for (st_segment *seg = h->segments; seg != NULL; seg = next) {
        next = seg->next;
        if (st_segment_has_dirty(seg) && (force || now - seg->dirty_since_ms >= decay_ms))
            purge_segment(h, seg);
        if (st_segment_is_empty(seg) && (force || !st_segment_has_dirty(seg)))
            segment_drop(h, seg);
    }
    if (h->segments == NULL)
        h->dirty_pages = 0;
    purge_flush(h);
    st_large_decay(now, decay_ms, force);
}

/* Heaps whose threads are gone have no activity of their own: an active
 * heap's housekeeping does theirs (skipped if the registry is busy). */
static void housekeep_abandoned(uint64_t now)
{
    if (pthread_mutex_trylock(&registry_lock) != 0)
        return;
    for (st_theap *a = abandoned_heaps; a != NULL; a = a->next_abandoned)
        if (now >= a->next_decay_ms)
            decay_pass(a, now, false);
    pthread_mutex_unlock(&registry_lock);
}

bool st_theap_trim_others(void)
{
    uint64_t now = st_theap_now_ms(), before = 0, after = 0;
    pthread_mutex_lock(&registry_lock);
    for (st_theap *a = all_heaps; a != NULL; a = a->next_all)
        if (a->state == ST_HEAP_ABANDONED || a->state == ST_HEAP_PARKED) {
            before += a->purged_bytes;
            decay_pass(a, now, true); /* (it takes in the remote frees first) */
            after += a->purged_bytes;
        }
    pthread_mutex_unlock(&registry_lock);
    return after != before;
}

void st_theap_housekeep(st_theap *h, bool force)
{
    uint64_t now = st_theap_now_ms();
    if (!force && now < h->next_decay_ms)
        return;
    decay_pass(h, now, force);
    if (h->state == ST_HEAP_ACTIVE && __atomic_load_n(&abandoned_heaps, __ATOMIC_RELAXED) != NULL)
        housekeep_abandoned(now);
}

/* ---- checking ------------------------------------------------------------------ */

/* Is p a live, not remotely freed object of class c in one of h's
 * segments, with its kept bit set and named by `bit`? */
static bool kept_block_ok(const st_theap *h, unsigned c, void *p, uintptr_t bit)
{
    st_segment *seg = st_segment_of(p);
    if (seg == NULL || seg->owner != h)
        return false;
    uintptr_t entry = st_segment_page_tag(seg, p);
    if (entry < ST_PAGE_SIZE || st_page_class(entry) != c)
        return false;
    st_slab *s = st_page_slab(entry);
    long idx = st_slab_object_index(s, p);
    if (idx < 0)
        return false;
    uint64_t *words = st_slab_bitmap(s, (uintptr_t)idx / 64), mask = (uint64_t)1 << (idx % 64);
    uint64_t remote = __atomic_load_n(&words[1], __ATOMIC_RELAXED);
    return (words[0] & mask) && !(remote & mask) && (words[2] & mask) &&
           bit == ((uintptr_t)&words[2] << 16 | (uintptr_t)idx);
}

/* THEAP-5 for class c: the stack's top is within it, at most at the
 * class's kept_max, its entries from there on are kept_block_ok, each
 * block once, and the entry at kept_max ends it. */
static int check_kept(const st_theap *h, unsigned c)
{
    unsigned max = st_class_table[c].kept_max;
    uintptr_t at = (uintptr_t)h->kept_top[c] - (uintptr_t)h->kept[c];
    if (at % sizeof(st_kept) != 0 || at / sizeof(st_kept) > max || h->kept[c][max].block != NULL)
        return 1;
    unsigned room = (unsigned)(at / sizeof(st_kept));
    if (kept_off(h, c))
        return 0;
    int bad = 0;
    for (unsigned i = room; i < max; i++) {
        const st_kept *e = &h->kept[c][i];
        bad += e->block == NULL || !kept_block_ok(h, c, e->block, e->bit);
        for (unsigned j = room; j < i; j++)
            bad += h->kept[c][j].block == e->block;
    }
    return bad;
}

/* Blocks on class c's kept stack. */
static size_t kept_blocks(const st_theap *h, unsigned c)
{
    if (kept_off(h, c))
        return 0;
    return st_class_table[c].kept_max - (size_t)(h->kept_top[c] - h->kept[c]);
}

/* THEAP-6 over one segment's slabs: each descriptor is in the slot its
 * size and first granule pick, the slot pages count exactly the slots in
 * use, and kept bits are live and not remote; kept[c] gets the kept bits
 * of class c. */
static int check_slabs(st_segment *seg, size_t kept[ST_CLASS_COUNT], unsigned *pending)
{
    unsigned users[ST_SEGMENT_SLOT_PAGES] = {0};
    char *slots = st_segment_slab_slot(seg, seg, 0); /* the first slot page */
    int bad = 0;
    for (size_t i = 0; i < ST_SEGMENT_PAGES; i++) {
        uintptr_t e = seg->pages[i], page = (uintptr_t)seg + i * ST_PAGE_SIZE;
        const st_slab *s = st_page_slab(e);
        if (e < ST_PAGE_SIZE || s->block != page)
            continue; /* not the first page of a slab */
        unsigned c = st_page_class(e);
        *pending += (s->owner_tag & PENDING) != 0;
        size_t bytes = classes[c].layout.desc_bytes, at = (size_t)((const char *)s - slots);
        bad += (const void *)s != st_segment_slab_slot(seg, (void *)page, bytes);
        for (size_t p = at / ST_PAGE_SIZE; p <= (at + bytes - 1) / ST_PAGE_SIZE; p++)
            bad += p < ST_SEGMENT_SLOT_PAGES ? (users[p]++, 0) : 1;
        for (unsigned w = 0; w < (s->capacity + 63) / 64; w++) {
            const uint64_t *b = st_slab_bitmap((st_slab *)(uintptr_t)s, w);
            bad += (b[2] & ~b[0]) != 0 || (b[2] & __atomic_load_n(&b[1], __ATOMIC_RELAXED)) != 0;
            kept[c] += (size_t)__builtin_popcountll(b[2]);
        }
    }
    for (size_t p = 0; p < ST_SEGMENT_SLOT_PAGES; p++)
        bad += users[p] != seg->slot_users[p];
    return bad;
}

/* THEAP-8: is page `page` of seg (one of h's) fit to be in the purge
 * queue: free in its buddy and not counted dirty, or an empty page of a
 * slab that is not current, marked purged? */
static bool queued_page_ok(st_segment *seg, size_t page)
{
    uintptr_t tag = seg->pages[page];
    if (tag == ST_PAGE_FREE)
        return !((seg->dirty[page / 64] >> (page % 64)) & 1);
    if (tag < ST_PAGE_SIZE)
        return false;
    const st_slab *s = st_page_slab(tag);
    return slab_state(s) != CURRENT && page_purged(seg, page) &&
           (page_unused(s, seg, page) || !page_live(s, seg, page));
}

static int check_queue(const st_theap *h)
{
    int bad = 0;
    for (unsigned i = 0; i < h->purge_queue.count; i++) {
        char *a = h->purge_queue.range[i].iov_base;
        st_segment *seg = st_segment_of(a);
        if (seg == NULL || seg->owner != h) {
            bad++;
            continue;
        }
        size_t first = (size_t)(a - (char *)seg) / ST_PAGE_SIZE;
        size_t n = h->purge_queue.range[i].iov_len / ST_PAGE_SIZE;
        if (n == 0 || first + n > ST_SEGMENT_PAGES) {
            bad++;
            continue;
        }
        for (size_t page = first; page < first + n; page++)
            bad += !queued_page_ok(seg, page);
    }
    return bad;
}

int st_theap_check(st_theap *h)
{
    int bad = 0;
    size_t kept[ST_CLASS_COUNT] = {0};
    unsigned pending = 0, pages = 0;
    for (st_segment *seg = h->segments; seg != NULL; seg = seg->next)
        bad += seg->owner == h ? check_slabs(seg, kept, &pending) : 0;
    unsigned slabs = 0; /* with a run */
    for (unsigned i = 0; i < h->pending_runs; i++) { /* THEAP-7 */
        const st_purge_run *r = &h->pending[i];
        slabs += pending_newest(h, r->slab, i) == i;
        size_t lo = slab_first_page(r->slab);
        bad += !(r->slab->owner_tag & PENDING) || slab_state(r->slab) == CURRENT ||
               r->first < lo || r->last < r->first || r->last >= lo + slab_pages(r->slab);
        pages += pending_pages(r);
    }
    bad += pending != slabs || pages != h->pending_pages ||
           pages > ST_PURGE_PENDING_PAGES;
    for (unsigned c = 0; c < ST_CLASS_COUNT; c++) /* THEAP-6: a kept bit per stack entry */
        bad += kept[c] != kept_blocks(h, c);
    for (unsigned c = 0; c < ST_CLASS_COUNT; c++) {
        st_slab *s = h->current[c]; /* THEAP-1 */
        if (s != &st_full_slab)
            bad += slab_class(s) != c || slab_state(s) != CURRENT || st_slab_check(s) != 0;
        for (st_slab_link *l = h->partial[c].next; l != &h->partial[c]; l = l->next) {
            st_slab *p = slab_of_link(l); /* THEAP-2, THEAP-3 */
            bad += slab_class(p) != c || slab_state(p) != PARTIAL || st_slab_is_full(p) ||
                   st_slab_is_empty(p) || l->next->prev != l || st_slab_check(p) != 0;
        }
        bad += check_kept(h, c);
    }
    for (st_segment *seg = h->segments; seg != NULL; seg = seg->next) /* THEAP-4 */
        bad += seg->owner != h || st_segment_check(seg) != 0;
    return bad + check_queue(h);
}

/* ---- the registry ----------------------------------------------------------------------- */

static st_theap *heap_new(void)
{
    st_theap *h = st_os_map_aligned(st_align_up(sizeof(st_theap), ST_PAGE_SIZE), ST_PAGE_SIZE);
    if (h == NULL)
        return NULL;
    for (unsigned c = 0; c < ST_CLASS_COUNT; c++) {
        h->current[c] = &st_full_slab;
        h->kept_top[c] = &h->kept[c][st_class_table[c].kept_max];
        h->partial[c].prev = h->partial[c].next = &h->partial[c];
    }
    h->tick = ST_THEAP_TICK;
    h->next_all = all_heaps;
    all_heaps = h;
    return h;
}

st_theap *st_theap_acquire(st_theap *want)
{
    pthread_mutex_lock(&registry_lock);
    st_theap **link = &abandoned_heaps;
    while (want != NULL && *link != NULL && *link != want)
        link = &(*link)->next_abandoned;
    st_theap *h = *link;
    if (h != NULL) {
        __atomic_store_n(link, h->next_abandoned, __ATOMIC_RELAXED);
        adopt_count++;
    } else if (want == NULL)
        h = heap_new();
    if (h != NULL)
        __atomic_store_n(&h->state, ST_HEAP_ACTIVE, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&registry_lock);
    return h;
}

/* Not a forced trim: the next thread adopts the heap with its pages still
 * resident (a thread pool's replacement threads would otherwise fault all
 * of them in again); the decay, run by the active heaps, returns them. */
void st_theap_abandon(st_theap *h)
{
    st_theap_collect(h);
    st_theap_flush_kept(h); /* no owner will take them: they count as free */
    st_theap_purge_pending(h); /* … nor extend its runs */
    st_theap_housekeep(h, false);
    pthread_mutex_lock(&registry_lock);
    __atomic_store_n(&h->state, ST_HEAP_ABANDONED, __ATOMIC_RELEASE);
    h->next_abandoned = abandoned_heaps;
    __atomic_store_n(&abandoned_heaps, h, __ATOMIC_RELAXED);
    abandon_count++;
    /* blocks freed into h since the first collect found it still active,
     * so nobody reclaimed them */
    st_theap_collect(h);
    st_theap_purge_pending(h);
    pthread_mutex_unlock(&registry_lock);
}

/* Under the registry lock, which a thread standing in for the owner
 * (reclaim) holds throughout: once unparked, the heap is its owner's
 * alone again. */
void st_theap_park(st_theap *h)
{
    pthread_mutex_lock(&registry_lock);
    __atomic_store_n(&h->state, ST_HEAP_PARKED, __ATOMIC_RELEASE);
    /* what was handed over before the state said so: nobody else will */
    st_theap_collect(h);
    st_theap_purge_pending(h);
    pthread_mutex_unlock(&registry_lock);
}

void st_theap_unpark(st_theap *h)
{
    pthread_mutex_lock(&registry_lock);
    __atomic_store_n(&h->state, ST_HEAP_ACTIVE, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&registry_lock);
}

unsigned st_theap_count_in_state(uint32_t state)
{
    unsigned n = 0;
    pthread_mutex_lock(&registry_lock);
    for (st_theap *h = all_heaps; h != NULL; h = h->next_all)
        n += __atomic_load_n(&h->state, __ATOMIC_RELAXED) == state;
    pthread_mutex_unlock(&registry_lock);
    return n;
}

void st_theap_counters(uint64_t *abandoned, uint64_t *adopted)
{
    pthread_mutex_lock(&registry_lock);
    *abandoned = abandon_count;
    *adopted = adopt_count;
    pthread_mutex_unlock(&registry_lock);
}

void st_theap_lock_all(void)
{
    pthread_mutex_lock(&registry_lock);
    pthread_mutex_lock(&segments_lock);
}

void st_theap_unlock_all(void)
{
    pthread_mutex_unlock(&segments_lock);
    pthread_mutex_unlock(&registry_lock);
}
st_theap *st_theap_first(void) { return all_heaps; }

/* The other threads' heaps may have been in the middle of a change when
 * the parent forked (their owners take no lock): nobody may adopt, reclaim
 * or decay them, and their memory stays as it is. Blocks freed into them
 * wait on their lists for good. A child that lives on loses what the
 * parent's other threads held; one that execs or exits soon, nothing. */
void st_theap_after_fork_child(st_theap *self, st_theap *shared)
{
    pthread_mutex_init(&registry_lock, NULL);
    pthread_mutex_init(&segments_lock, NULL);
    for (st_theap *h = all_heaps; h != NULL; h = h->next_all)
        if (h != self && h != shared &&
            (h->state == ST_HEAP_ACTIVE || h->state == ST_HEAP_PARKED))
            h->state = ST_HEAP_ORPHANED;
}
