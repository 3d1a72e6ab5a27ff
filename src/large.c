/* SPDX-License-Identifier: MIT */
/*
 * large.c — blocks with their own mapping (large.h).
 *
 * The header below each block records the mapping; it is found from the
 * block's address alone, and only after the chunk map said the chunk is a
 * large block of ours, so a foreign pointer is never read. The header's
 * state word is swapped atomically on free, which turns a double free
 * racing with the first into a clean abort instead of two munmaps.
 *
 * Freed mappings wait in a small cache for the decay time (at most
 * CACHE_SLOTS of them, and CACHE_BYTES or as many bytes as the live large
 * blocks map, whichever is more: a program's large blocks may turn over
 * whole), so a program that frees and allocates large blocks in turn
 * neither pays munmap, mmap and a page fault per page each time nor hands
 * the kernel work for nothing. A cached mapping keeps its chunk bits and
 * its FREED header: a free of it is still a double free.
 *
 * The same holds within a live block: a realloc that shrinks it, or a
 * cached mapping reused for a smaller block, leaves the mapping as it is
 * and only the block's size shrinks. The pages past the block ("slack")
 * stay resident for the decay time, so a buffer that shrinks and grows
 * again, as vectors and string builders do, grows into pages it already
 * has: no syscall and no page fault. A block with slack is on the slack
 * list, and the decay cuts its mapping down to the block (mremap in
 * place, never moving it: its owner may be using it meanwhile).
 */
#include "large.h"

#include <errno.h>
#include <pthread.h>
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
    size_t size;     /* usable bytes of the block; the mapping may hold more */
    /* under `lock`: on the slack list (prev != NULL) since slack_since_ms */
    uint64_t slack_since_ms;
    struct large_header *slack_prev, *slack_next;
} large_header;

_Static_assert(sizeof(large_header) == ST_LARGE_HEADER, "the header fills the bytes before a block");

#define CACHE_SLOTS 16
#define CACHE_BYTES ((size_t)256 << 20)

static size_t live_blocks, mapped_bytes, usable_bytes; /* atomics */

/* Guards the cache, the slack list and the slack of every block on it;
 * taken by large-block alloc, free, realloc and the decay. A leaf: taken
 * under the heap registry's and the shared heap's locks, never the other
 * way round. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct cached {
    struct large_header *h;
    uint64_t freed_ms;
} cache[CACHE_SLOTS];
static size_t cache_count, cache_bytes;
static large_header slack_list = {.slack_prev = &slack_list, .slack_next = &slack_list};

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

static void slack_unlist(large_header *h)
{
    if (h->slack_prev == NULL)
        return;
    h->slack_prev->slack_next = h->slack_next;
    h->slack_next->slack_prev = h->slack_prev;
    h->slack_prev = h->slack_next = NULL;
}

/* The block (under `lock`) now needs `map` bytes of its mapping, no more
 * than it has: the rest is slack, listed from now on (or from when it
 * first had some). */
static void set_size(large_header *h, size_t map, uint64_t now_ms)
{
    size_t size = map - (h->user - h->base);
    account(0, 0, (long)size - (long)h->size);
    h->size = size;
    if (map == h->map_size) {
        slack_unlist(h);
    } else if (h->slack_prev == NULL) {
        h->slack_since_ms = now_ms;
        h->slack_next = &slack_list;
        h->slack_prev = slack_list.slack_prev;
        slack_list.slack_prev->slack_next = h;
        slack_list.slack_prev = h;
    }
}

/* Give the slack of a listed block back to the OS: the mapping shrinks in
 * place to the block. Only chunks wholly past it are unmarked, so a free
 * of the block racing with this still finds its chunk marked; and they
 * are unmarked before the pages go, since once gone another thread may
 * map the range and mark it for itself. */
static void trim(large_header *h)
{
    size_t map = h->user - h->base + h->size;
    uintptr_t old_end = h->base + h->map_size;
    uintptr_t first_gone = st_align_up(h->base + map, ST_SEGMENT_SIZE);
    size_t gone = first_gone < old_end ? old_end - first_gone : 0;
    slack_unlist(h);
    if (gone > 0)
        st_chunk_mark(st_chunk_large_bits, first_gone, gone, false);
    if (!st_os_resize_in_place((void *)h->base, h->map_size, map)) {
        if (gone > 0) /* cannot fail for a shrink; if it did, the slack stays */
            st_chunk_mark(st_chunk_large_bits, first_gone, gone, true);
        return;
    }
    account(0, (long)map - (long)h->map_size, 0);
    h->map_size = map;
}

/* Is cached mapping a a better pick than b for `map` bytes? The smallest
 * that holds them, else the largest (grown by mremap, its pages kept). */
static bool better(size_t a, size_t b, size_t map)
{
    if ((a >= map) != (b >= map))
        return a >= map;
    return a >= map ? a < b : a > b;
}

/* The best cached mapping for `map` bytes, out of the cache; NULL if
 * none. Its resident pages are what is worth reusing: no fault for them. */
static large_header *cache_take(size_t map, uint64_t now_ms, bool *fits)
{
    pthread_mutex_lock(&lock);
    size_t best = CACHE_SLOTS;
    for (size_t i = 0; i < cache_count; i++)
        if (best == CACHE_SLOTS || better(cache[i].h->map_size, cache[best].h->map_size, map))
            best = i;
    large_header *h = NULL;
    if (best != CACHE_SLOTS) {
        h = cache[best].h;
        cache_bytes -= h->map_size;
        cache[best] = cache[--cache_count];
        account(1, (long)h->map_size, (long)h->size);
        *fits = h->map_size >= map; /* read here: once listed, the decay may trim it */
        if (*fits)
            set_size(h, map, now_ms); /* the rest of it is slack */
    }
    pthread_mutex_unlock(&lock);
    return h;
}

/* Out of the live blocks (the decay may be trimming it: hence the lock)
 * and into the cache, slack and all, if it is a plain block and fits. */
static bool cache_put(large_header *h, uint64_t now_ms)
{
    bool kept = false;
    pthread_mutex_lock(&lock);
    slack_unlist(h);
    account(-1, -(long)h->map_size, -(long)h->size);
    if (h->user - h->base == ST_LARGE_HEADER && cache_count < CACHE_SLOTS &&
        cache_bytes + h->map_size <=
            ST_MAX(CACHE_BYTES, __atomic_load_n(&mapped_bytes, __ATOMIC_RELAXED))) {
        cache[cache_count++] = (struct cached){h, now_ms};
        cache_bytes += h->map_size;
        kept = true;
    }
    pthread_mutex_unlock(&lock);
    return kept;
}

/* Unmap a mapping that is no longer counted as live. */
static void unmap(large_header *h)
{
    st_chunk_mark(st_chunk_large_bits, h->base, h->map_size, false);
    st_os_unmap((void *)h->base, h->map_size);
}

/* Was `since` decay_ms or more before now? (Another thread may have
 * stamped it after the caller read its clock.) */
static bool decayed(uint64_t since, uint64_t now_ms, uint64_t decay_ms)
{
    return now_ms >= since && now_ms - since >= decay_ms;
}

size_t st_large_decay(uint64_t now_ms, uint64_t decay_ms, bool all)
{
    large_header *gone[CACHE_SLOTS];
    size_t n = 0, trimmed = 0;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < cache_count;) {
        if (all || decayed(cache[i].freed_ms, now_ms, decay_ms)) {
            gone[n++] = cache[i].h;
            cache_bytes -= cache[i].h->map_size;
            cache[i] = cache[--cache_count];
        } else {
            i++;
        }
    }
    for (large_header *h = slack_list.slack_next, *next; h != &slack_list; h = next) {
        next = h->slack_next;
        if (all || decayed(h->slack_since_ms, now_ms, decay_ms)) {
            trim(h);
            trimmed++;
        }
    }
    pthread_mutex_unlock(&lock);
    for (size_t i = 0; i < n; i++)
        unmap(gone[i]);
    return n + trimmed;
}

void st_large_at_fork(int phase)
{
    if (phase == 0)
        pthread_mutex_lock(&lock);
    else if (phase == 1)
        pthread_mutex_unlock(&lock);
    else
        pthread_mutex_init(&lock, NULL);
}

void *st_large_alloc(size_t size, size_t align, uint64_t now_ms, bool *fresh)
{
    size_t offset = block_offset(align), map;
    if (!map_size_for(size, offset, &map)) {
        errno = ENOMEM;
        return NULL;
    }
    bool fits = false;
    large_header *cached = offset == ST_LARGE_HEADER ? cache_take(map, now_ms, &fits) : NULL;
    if (cached != NULL) {
        if (fresh != NULL)
            *fresh = false;
        __atomic_store_n(&cached->state, LIVE, __ATOMIC_RELEASE);
        if (fits)
            return (void *)cached->user; /* as it is: no syscall, no fault */
        void *p = st_large_realloc((void *)cached->user, size, now_ms);
        if (p != NULL)
            return p;
        st_large_free((void *)cached->user, now_ms); /* could not grow it: cached again */
    }
    void *base = st_os_map_aligned(map, ST_MAX(align, ST_SEGMENT_SIZE));
    if (base == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    large_header *h = header_of((char *)base + offset);
    *h = (large_header){.state = LIVE, .base = (uintptr_t)base, .map_size = map,
                        .user = (uintptr_t)base + offset, .size = map - offset};
    /* (.slack_prev NULL: not listed) */
    st_chunk_mark(st_chunk_large_bits, (uintptr_t)base, map, true);
    account(1, (long)map, (long)h->size);
    if (fresh != NULL)
        *fresh = true;
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

st_large_status st_large_free(void *p, uint64_t now_ms)
{
    large_header *h = header_of(p);
    uint64_t expect = LIVE;
    if (!__atomic_compare_exchange_n(&h->state, &expect, FREED, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return ST_LARGE_FREED;
    if (!cache_put(h, now_ms))
        unmap(h);
    return ST_LARGE_OK;
}

size_t st_large_usable_size(const void *p) { return header_of(p)->size; }

/* The mapping of old_map bytes is now [base, + map): mark its chunks,
 * rewrite the header (which moved with the pages), count it. */
static large_header *remapped(size_t old_map, size_t offset, uintptr_t base, size_t map)
{
    large_header *h = header_of((char *)base + offset);
    account(0, (long)map - (long)old_map, (long)(map - offset) - (long)h->size);
    h->base = base;
    h->user = base + offset;
    h->map_size = map;
    h->size = map - offset;
    st_chunk_mark(st_chunk_large_bits, base, map, true);
    return h;
}

/* Move the pages of [base, + old_map) to `to`, growing them to map. The
 * old chunks are unmarked first: once the pages are gone, another thread
 * may map the range and mark it for itself. */
static bool moved(uintptr_t base, size_t old_map, void *to, size_t map)
{
    st_chunk_mark(st_chunk_large_bits, base, old_map, false);
    if (st_os_move((void *)base, old_map, map, to) != NULL)
        return true;
    st_chunk_mark(st_chunk_large_bits, base, old_map, true);
    return false;
}

/* Within the mapping: the size changes, the pages stay (slack). Beyond
 * it: off the slack list first (the move rewrites the header, and the
 * decay must not trim a mapping being remapped), then mremap. */
void *st_large_realloc(void *p, size_t size, uint64_t now_ms)
{
    large_header *h = header_of(p);
    uintptr_t base = h->base;
    size_t offset = h->user - base, map;
    if (!map_size_for(size, offset, &map)) {
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_lock(&lock);
    size_t old_map = h->map_size;
    if (map <= old_map)
        set_size(h, map, now_ms);
    else
        slack_unlist(h);
    pthread_mutex_unlock(&lock);
    if (map <= old_map)
        return p;
    if (st_os_resize_in_place((void *)base, old_map, map))
        return (void *)remapped(old_map, offset, base, map)->user;
    /* move to a fresh reservation at a 4 MiB boundary: mremap alone would
     * put it anywhere and break the one-mapping-per-chunk rule */
    void *to = st_os_map_aligned(map, ST_MAX(offset, ST_SEGMENT_SIZE));
    if (to != NULL && moved(base, old_map, to, map))
        return (void *)remapped(old_map, offset, (uintptr_t)to, map)->user;
    if (to != NULL)
        st_os_unmap(to, map);
    pthread_mutex_lock(&lock);
    set_size(h, offset + h->size, now_ms); /* its slack, if any, listed again */
    pthread_mutex_unlock(&lock);
    errno = ENOMEM;
    return NULL;
}

/* LARGE-1: the cache holds FREED plain blocks whose sizes add up to
 * cache_bytes; LARGE-2: the slack list is well linked and holds LIVE
 * blocks whose mappings reach past them. */
int st_large_check(void)
{
    int bad = 0;
    size_t bytes = 0;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < cache_count; i++) {
        const large_header *h = cache[i].h;
        bad += h->state != FREED || h->user - h->base != ST_LARGE_HEADER;
        bytes += h->map_size;
    }
    bad += bytes != cache_bytes;
    for (const large_header *h = slack_list.slack_next; h != &slack_list; h = h->slack_next)
        bad += h->state != LIVE || h->slack_next->slack_prev != h ||
               h->map_size <= h->user - h->base + h->size;
    pthread_mutex_unlock(&lock);
    return bad;
}

size_t st_large_cached_bytes(void)
{
    pthread_mutex_lock(&lock);
    size_t n = cache_bytes;
    pthread_mutex_unlock(&lock);
    return n;
}

void st_large_totals(size_t *blocks, size_t *mapped, size_t *usable)
{
    *blocks = __atomic_load_n(&live_blocks, __ATOMIC_RELAXED);
    *mapped = __atomic_load_n(&mapped_bytes, __ATOMIC_RELAXED);
    *usable = __atomic_load_n(&usable_bytes, __ATOMIC_RELAXED);
}
