/* SPDX-License-Identifier: MIT */
/*
 * malloc.c — the malloc API (include/strata/malloc.h) on thread heaps.
 *
 * The fast paths are here, inline: malloc of up to 16 KiB pops its class's
 * kept stack, else takes the lowest free bit of the current slab's cursor
 * word; free finds the segment by masking the address (after one bit of
 * the chunk map says it is ours), the slab by the segment's granule
 * table, the object index by a reciprocal multiply, checks the live,
 * remote and kept bits (the double-free check) and pushes the block on
 * its class's kept stack (theap.h). Everything else goes to theap.c,
 * large.c or segment.c.
 *
 * Built twice: into libstrata.a with the strata_ names only, and with
 * STRATA_STANDARD_NAMES into libstrata.so, where malloc, free, … are
 * aliases of the same functions (no extra jump).
 *
 * Start-up is lazy and never recurses: the first slow path reads the
 * options and creates the thread-exit key; a thread's first allocation
 * makes or adopts its heap and publishes it in TLS before anything that
 * may allocate (pthread_setspecific, atexit) runs.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "large.h"
#include "options.h"
#include "stats.h"
#include "strata/malloc.h"
#include "theap.h"

#define ALIGN_DEFAULT ((size_t)16)

static __thread st_theap *tls_heap __attribute__((tls_model("initial-exec"))) = &st_empty_heap;
static __thread bool tls_exiting __attribute__((tls_model("initial-exec")));
static __thread st_remote_batch tls_batch __attribute__((tls_model("initial-exec")));
static __thread bool tls_exit_hooked __attribute__((tls_model("initial-exec")));
/* In pthread_join with its heap parked: the thread uses no heap of its
 * own meanwhile (st_malloc_parked_join). */
static __thread bool tls_parked __attribute__((tls_model("initial-exec")));
/* An abandoned heap whose block this thread freed before it had a heap:
 * the one to adopt at its first allocation (see note_successor). */
static __thread st_theap *tls_successor_of __attribute__((tls_model("initial-exec")));

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static int initialized; /* atomic: 0, then 1 once the options are read */
static pthread_key_t exit_key;

/* Heap of threads past their exit destructor (their own heap is gone). */
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static st_theap *shared_heap;

/* ---- start-up, thread exit, fork ------------------------------------------- */

/* The thread-exit key's destructor: its value is the thread's heap, or
 * &st_empty_heap for a thread that only freed (its batch must go out). */
static void thread_exit(void *heap)
{
    st_theap_remote_flush(&tls_batch);
    tls_heap = &st_empty_heap;
    tls_exiting = true;
    if (heap != &st_empty_heap)
        st_theap_abandon(heap);
}

/* Every lock is held across fork, so the child finds none taken by a
 * thread that does not exist there. */
static void fork_prepare(void)
{
    pthread_mutex_lock(&shared_lock);
    st_theap_lock_all();
    st_segment_at_fork(0);
    st_large_at_fork(0);
}

static void fork_parent(void)
{
    st_large_at_fork(1);
    st_segment_at_fork(1);
    st_theap_unlock_all();
    pthread_mutex_unlock(&shared_lock);
}

static void fork_child(void)
{
    st_large_at_fork(2);
    st_segment_at_fork(2);
    pthread_mutex_init(&shared_lock, NULL);
    st_theap_after_fork_child(tls_heap == &st_empty_heap ? NULL : tls_heap, shared_heap);
}

static void say_settings(void)
{
    char a[21], b[21];
    st_write_stderr("strata: malloc ");
    st_write_stderr(strata_version());
    st_write_stderr(": decay ");
    st_write_stderr(st_fmt_dec(a, st_opts.decay_ms));
    st_write_stderr(" ms, retain ");
    st_write_stderr(st_fmt_dec(b, st_opts.retain_kb));
    st_write_stderr(" KiB\n");
}

static ST_COLD void say_failure(size_t n)
{
    char a[21];
    st_write_stderr("strata: out of memory: ");
    st_write_stderr(st_fmt_dec(a, n));
    st_write_stderr(" bytes\n");
}

static ST_NOINLINE void init(void)
{
    pthread_mutex_lock(&init_lock);
    if (!__atomic_load_n(&initialized, __ATOMIC_ACQUIRE)) {
        st_options_read(&st_opts);
        st_theap_configure(st_opts.decay_ms, (size_t)st_opts.retain_kb / 4);
        st_segment_configure(st_opts.huge_pages);
        pthread_key_create(&exit_key, thread_exit);
        if (st_opts.verbose)
            say_settings();
        __atomic_store_n(&initialized, 1, __ATOMIC_RELEASE);
        /* these may allocate: the flag is already set */
        pthread_atfork(fork_prepare, fork_parent, fork_child);
        if (st_opts.show_stats || st_opts.stats_file != NULL)
            atexit(st_stats_at_exit);
    }
    pthread_mutex_unlock(&init_lock);
}

/* Make h (if any) the calling thread's heap. */
static st_theap *own_heap(st_theap *h)
{
    if (h == NULL)
        return NULL;
    tls_heap = h;
    tls_exit_hooked = true;
    pthread_setspecific(exit_key, h);
    return h;
}

/* The calling thread's heap, made or adopted on first use; NULL when
 * the thread is exiting (use the shared heap) or out of memory. */
static st_theap *thread_heap(void)
{
    if (ST_UNLIKELY(!__atomic_load_n(&initialized, __ATOMIC_ACQUIRE)))
        init();
    if (tls_heap != &st_empty_heap || tls_exiting || tls_parked)
        return tls_exiting || tls_parked ? NULL : tls_heap;
    st_theap *h = tls_successor_of != NULL ? st_theap_acquire(tls_successor_of) : NULL;
    tls_successor_of = NULL;
    return own_heap(h != NULL ? h : st_theap_acquire(NULL));
}

/* ---- waiting for another thread ------------------------------------------------ */

typedef int (*join_fn)(pthread_t, void **);

/* The C library's pthread_join. libstrata.so defines its own (below): the
 * next one in the lookup order. */
static join_fn c_library_join(void)
{
#ifdef STRATA_STANDARD_NAMES
    static join_fn next; /* atomic */
    join_fn join = __atomic_load_n(&next, __ATOMIC_RELAXED);
    if (join == NULL) {
        join = (join_fn)dlsym(RTLD_NEXT, "pthread_join");
        if (join == NULL)
            st_malloc_fault("pthread_join not found", NULL);
        __atomic_store_n(&next, join, __ATOMIC_RELAXED);
    }
    return join;
#else
    return pthread_join;
#endif
}

/* The thread's heap is its own again: first its batch goes out (its own
 * blocks among them, taken in while the heap is still parked). */
static void unpark(void *h)
{
    st_theap_remote_flush(&tls_batch);
    st_theap_unpark(h);
    tls_parked = false;
    tls_heap = h;
}

/* pthread_join with the calling thread's heap parked while it waits: a
 * main thread that allocated, started workers and waits for them would
 * otherwise hold everything they free of its blocks, which only its own
 * allocations take in. Parked, the heap may be in other threads' hands
 * (reclaim), so the thread itself leaves it alone: the C library frees
 * inside pthread_join (the joined thread's TLS vector, which the joiner
 * allocated), and those frees go through the heap's remote list like
 * anyone's, an allocation to the shared heap. The C library's function is
 * looked up before the heap is parked: dlsym allocates and frees too.
 * Unparked also when the wait is cancelled. */
int st_malloc_parked_join(pthread_t t, void **ret)
{
    st_theap *h = tls_heap;
    if (h == &st_empty_heap || tls_exiting)
        return c_library_join()(t, ret);
    c_library_join(); /* (its lookup, done once: the call below finds it done) */
    st_theap_park(h);
    tls_heap = &st_empty_heap;
    tls_parked = true;
    int r;
    pthread_cleanup_push(unpark, h);
    r = c_library_join()(t, ret);
    pthread_cleanup_pop(1);
    return r;
}

void st_malloc_flush_thread(void)
{
    st_theap_remote_flush(&tls_batch);
    if (tls_heap != &st_empty_heap) {
        st_theap_flush_kept(tls_heap); /* its figures then count them free */
        st_theap_purge_pending(tls_heap); /* … and not resident */
    }
}

/* ---- allocation ---------------------------------------------------------------- */

/* The first class that fits n and whose objects are aligned to align. */
static int aligned_class(size_t n, size_t align)
{
    for (unsigned c = st_sizeclass_of(n); c < ST_CLASS_COUNT; c++)
        if (st_sizeclass_align(c) >= align)
            return (int)c;
    return -1;
}

static void *heap_alloc(st_theap *h, size_t n, size_t align)
{
    if (n <= ST_SMALL_MAX && align <= ALIGN_DEFAULT)
        return st_theap_alloc_class(h, st_sizeclass_of(n));
    int c = n <= ST_SMALL_MAX && align <= ST_PAGE_SIZE ? aligned_class(n, align) : -1;
    if (c >= 0)
        return st_theap_alloc_class(h, (unsigned)c);
    if (n <= ST_MEDIUM_MAX && align <= ST_MEDIUM_MAX)
        return st_theap_alloc_medium(h, n, align);
    return st_large_alloc(n, align, st_theap_now_ms(), NULL);
}

static void *shared_alloc(size_t n, size_t align)
{
    pthread_mutex_lock(&shared_lock);
    if (shared_heap == NULL)
        shared_heap = st_theap_acquire(NULL);
    void *p = shared_heap != NULL ? heap_alloc(shared_heap, n, align) : NULL;
    pthread_mutex_unlock(&shared_lock);
    return p;
}

static ST_NOINLINE void *alloc_slow(size_t n, size_t align)
{
    st_theap_remote_flush(&tls_batch);
    if (ST_UNLIKELY(n > PTRDIFF_MAX)) {
        errno = ENOMEM;
        return NULL;
    }
    st_theap *h = thread_heap();
    void *p = h != NULL ? heap_alloc(h, n, align) : shared_alloc(n, align);
    if (ST_UNLIKELY(p == NULL) && h != NULL) {
        /* out of address space or memory: give back what is cached, retry */
        st_theap_housekeep(h, true);
        st_segment_cache_flush();
        p = heap_alloc(h, n, align);
    }
    if (p == NULL) {
        if (st_opts.verbose)
            say_failure(n);
        errno = ENOMEM;
    }
    return p;
}

/* The fast path's miss for a heap that exists: the class's next slab. */
static ST_NOINLINE void *class_slow(st_theap *h, unsigned c)
{
    st_theap_remote_flush(&tls_batch);
    void *p = st_theap_alloc_class(h, c);
    if (ST_UNLIKELY(p == NULL))
        return alloc_slow(st_sizeclass_size(c), ALIGN_DEFAULT); /* trims and retries */
    return p;
}

/* Every ST_THEAP_TICK fast allocations: housekeeping, then hand out p
 * (a tail call from the fast path, which stays frameless). */
static ST_NOINLINE void *tick(st_theap *h, void *p)
{
    st_theap_remote_flush(&tls_batch);
    h->tick = ST_THEAP_TICK;
    st_theap_housekeep(h, false);
    return p;
}

/* malloc's fast path for class c: a kept block, else the lowest free
 * object of the current slab's cursor word. */
static inline void *class_alloc(st_theap *h, uintptr_t c)
{
    void *p = st_theap_take_kept(h, c);
    if (p != NULL) {
        if (ST_UNLIKELY(--h->tick == 0))
            return tick(h, p);
        return p;
    }
    if (ST_UNLIKELY(st_kept_full(h->kept_top[c]))) /* switched off, or h is the empty heap */
        return h != &st_empty_heap ? class_slow(h, (unsigned)c)
                                   : alloc_slow(st_sizeclass_size((unsigned)c), ALIGN_DEFAULT);
    st_slab *s = h->current[c];
    uint32_t cur = s->cursor;
    uint64_t w = st_slab_live(s, cur);
    if (ST_LIKELY(w != UINT64_MAX)) {
        st_slab_set_live(s, cur, w | (w + 1));
        s->free_count--;
        p = (char *)s->block + (uintptr_t)(cur * 64 + st_ctz(~w)) * s->size;
        if (ST_UNLIKELY(--h->tick == 0))
            return tick(h, p);
        return p;
    }
    return class_slow(h, (unsigned)c);
}

STRATA_API void *strata_malloc(size_t n)
{
    st_theap *h = tls_heap;
    if (ST_LIKELY(n - 1 < 1024))
        return class_alloc(h, (n - 1) >> 4);
    if (n - 1 < ST_SMALL_MAX)
        return class_alloc(h, st_sizeclass_of(n));
    return alloc_slow(n, ALIGN_DEFAULT);
}

/* ---- free ------------------------------------------------------------------------ */

static ST_NOINLINE void free_outside_segments(void *p)
{
    if (p == NULL)
        return;
    switch (st_large_lookup(p)) {
    case ST_LARGE_OK:
        if (st_large_free(p, st_theap_now_ms()) == ST_LARGE_OK)
            return;
        st_malloc_fault("double free", p); /* another free got there first */
    case ST_LARGE_FREED:
        st_malloc_fault("double free", p);
    case ST_LARGE_INSIDE:
        st_malloc_fault("free of a pointer inside a block", p);
    case ST_LARGE_NOT_OURS:
        break;
    }
    st_malloc_fault("free of a pointer strata does not own", p);
}

/* A thread with no heap yet frees a block of a heap whose thread is gone:
 * if it allocates later, it adopts that heap, so that a successor (a
 * pool's new worker inheriting its predecessor's blocks) frees them as
 * their owner, not remotely into a heap another new thread happened to
 * adopt. Only at its first allocation: a thread that only frees (a
 * reaper) must not hold a heap, which only its owner's allocations
 * service, and leave everything freed into it stranded. */
static void note_successor(const st_segment *seg)
{
    st_theap *owner = __atomic_load_n(&seg->owner, __ATOMIC_RELAXED);
    if (owner != NULL && __atomic_load_n(&owner->state, __ATOMIC_ACQUIRE) == ST_HEAP_ABANDONED)
        tls_successor_of = owner;
}

/* The rare frees into another heap: a thread's first free before it has
 * its exit hook (which hands over what is left in its batch), and frees
 * from thread destructors after it ran, which no batch may outlive. */
static ST_NOINLINE void free_unhooked(st_theap *h, st_segment *seg, void *p, uintptr_t entry)
{
    if (!tls_exit_hooked) {
        tls_exit_hooked = true;
        if (h == &st_empty_heap && !tls_exiting)
            pthread_setspecific(exit_key, &st_empty_heap);
    }
    if (tls_exiting)
        st_theap_remote_flush(&tls_batch); /* no destructor will run again */
    st_theap_free_remote(seg, p, entry, &tls_batch);
    if (tls_exiting)
        st_theap_remote_flush(&tls_batch);
}

/* Not the owner's slab object: a medium block, or another heap's block
 * (a tail call into the remote free, without a frame of its own). */
static ST_NOINLINE void free_slow(st_theap *h, st_segment *seg, void *p, uintptr_t entry)
{
    if (seg->owner == h) /* granule entry 0: a medium block (slabs fill whole granules) */
        return st_theap_free_medium(h, seg, p, entry);
    if (h == &st_empty_heap && tls_successor_of == NULL)
        note_successor(seg);
    if (ST_UNLIKELY(!tls_exit_hooked || tls_exiting))
        return free_unhooked(h, seg, p, entry);
    return st_theap_free_remote(seg, p, entry, &tls_batch);
}

STRATA_API void strata_free(void *p)
{
    if (ST_UNLIKELY(!st_chunk_test(st_chunk_segment_bits, (uintptr_t)p)))
        return free_outside_segments(p);
    st_segment *seg = (st_segment *)((uintptr_t)p & ~(ST_SEGMENT_SIZE - 1));
    st_theap *h = tls_heap;
    uintptr_t entry = st_segment_granule_tag(seg, p);
    if (ST_LIKELY(seg->owner == h && entry != 0))
        return st_theap_free_in_slab(h, entry, p, true);
    return free_slow(h, seg, p, st_segment_page_tag(seg, p));
}

/* ---- sizes --------------------------------------------------------------------------- */

/* Usable bytes of a live block; aborts on a pointer that is not one. */
static size_t block_size(const void *p)
{
    st_segment *seg = st_segment_of(p);
    if (seg == NULL) {
        st_large_status st = st_large_lookup(p);
        if (st == ST_LARGE_OK)
            return st_large_usable_size(p);
        st_malloc_fault(st == ST_LARGE_NOT_OURS ? "not a block strata owns"
                        : st == ST_LARGE_FREED ? "use of a freed block"
                                                : "pointer inside a block",
                        p);
    }
    uintptr_t entry = st_segment_page_tag(seg, p);
    if (entry >= ST_PAGE_SIZE) {
        const st_slab *s = st_page_slab(entry);
        long idx = st_slab_object_index(s, p);
        if (idx < 0)
            st_malloc_fault("pointer inside a block", p);
        /* live, and neither kept by its owner nor freed by another thread:
         * else realloc would copy from a free block (and free it again
         * only if nothing reused it meanwhile) */
        uint64_t *w = st_slab_bitmap((st_slab *)s, (uintptr_t)idx / 64);
        uint64_t bit = (uint64_t)1 << (idx % 64);
        if (!(__atomic_load_n(&w[0], __ATOMIC_RELAXED) & bit) ||
            ((__atomic_load_n(&w[1], __ATOMIC_RELAXED) | __atomic_load_n(&w[2], __ATOMIC_RELAXED)) &
             bit))
            st_malloc_fault("use of a freed block", p);
        return s->size;
    }
    if (entry == ST_PAGE_FREE || entry == ST_PAGE_MEDIUM_REMOTE)
        st_malloc_fault("use of a freed block", p);
    if (entry != ST_PAGE_MEDIUM || ((uintptr_t)p & (ST_PAGE_SIZE - 1)) != 0)
        st_malloc_fault("pointer inside a block", p);
    return st_theap_medium_size(seg, p);
}

STRATA_API size_t strata_malloc_usable_size(const void *p) { return p == NULL ? 0 : block_size(p); }

/* ---- the rest of the API ----------------------------------------------------------------- */

STRATA_API void *strata_calloc(size_t count, size_t size)
{
    size_t n;
    if (!st_mul_ok(count, size, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    bool fresh = false;
    void *p = NULL;
    if (n > ST_MEDIUM_MAX)
        p = st_large_alloc(n, ALIGN_DEFAULT, st_theap_now_ms(), &fresh);
    if (p == NULL)
        p = strata_malloc(n); /* small, medium, or the retry after trimming */
    if (p != NULL && !fresh)
        memset(p, 0, n); /* pages fresh from mmap are zero already */
    return p;
}

static bool is_large(const void *p) { return st_segment_of(p) == NULL; }

STRATA_API void *strata_realloc(void *p, size_t n)
{
    if (p == NULL)
        return strata_malloc(n);
    if (n == 0) {
        strata_free(p);
        return NULL;
    }
    size_t old = block_size(p);
    if (n <= old && (n >= old / 2 || old <= ALIGN_DEFAULT) && !is_large(p))
        return p;
    if (is_large(p) && n > ST_MEDIUM_MAX)
        return st_large_realloc(p, n, st_theap_now_ms());
    void *q = strata_malloc(n);
    if (q == NULL)
        return NULL;
    memcpy(q, p, ST_MIN(old, n));
    strata_free(p);
    return q;
}

STRATA_API void *strata_reallocarray(void *p, size_t count, size_t size)
{
    size_t n;
    if (!st_mul_ok(count, size, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    return strata_realloc(p, n);
}

/* glibc's memalign: a non-power-of-two alignment is rounded up. */
STRATA_API void *strata_memalign(size_t align, size_t n)
{
    if (align <= ALIGN_DEFAULT)
        return strata_malloc(n);
    if (align > ((size_t)1 << 62)) {
        errno = EINVAL;
        return NULL;
    }
    return alloc_slow(n, (size_t)1 << st_log2_ceil(align));
}

STRATA_API void *strata_aligned_alloc(size_t align, size_t n) { return strata_memalign(align, n); }

STRATA_API int strata_posix_memalign(void **out, size_t align, size_t n)
{
    if (!st_is_pow2(align) || align % sizeof(void *) != 0)
        return EINVAL;
    int saved = errno;
    void *p = strata_memalign(align, n);
    if (p == NULL)
        return ENOMEM;
    errno = saved;
    *out = p;
    return 0;
}

STRATA_API void *strata_valloc(size_t n) { return strata_memalign(ST_PAGE_SIZE, n); }

STRATA_API void *strata_pvalloc(size_t n)
{
    size_t rounded;
    if (!st_add_ok(n, ST_PAGE_SIZE - 1, &rounded)) {
        errno = ENOMEM;
        return NULL;
    }
    rounded = st_align_down(rounded, ST_PAGE_SIZE);
    return strata_memalign(ST_PAGE_SIZE, rounded == 0 ? ST_PAGE_SIZE : rounded);
}

STRATA_API void strata_free_sized(void *p, size_t size)
{
    (void)size;
    strata_free(p);
}

STRATA_API void strata_free_aligned_sized(void *p, size_t align, size_t size)
{
    (void)align;
    (void)size;
    strata_free(p);
}

STRATA_API int strata_malloc_trim(size_t pad)
{
    (void)pad;
    st_theap_remote_flush(&tls_batch);
    st_theap *h = tls_heap;
    uint64_t before = 0;
    if (h != &st_empty_heap) {
        before = h->purged_bytes;
        st_theap_housekeep(h, true);
    }
    bool others = st_theap_trim_others(); /* heaps no thread is serving now */
    size_t flushed = st_segment_cache_flush() + st_large_decay(0, 0, true);
    return (h != &st_empty_heap && h->purged_bytes != before) || others || flushed > 0;
}

STRATA_API int strata_mallopt(int param, int value)
{
    (void)param;
    (void)value;
    return 1;
}

#ifdef STRATA_STANDARD_NAMES
/* The C library's names, as aliases of the functions above. */
#define ALIAS(name) __attribute__((alias(#name), visibility("default"), used))
void *malloc(size_t n) ALIAS(strata_malloc);
void free(void *p) ALIAS(strata_free);
void *calloc(size_t count, size_t size) ALIAS(strata_calloc);
void *realloc(void *p, size_t n) ALIAS(strata_realloc);
void *reallocarray(void *p, size_t count, size_t size) ALIAS(strata_reallocarray);
int posix_memalign(void **out, size_t align, size_t n) ALIAS(strata_posix_memalign);
void *aligned_alloc(size_t align, size_t n) ALIAS(strata_aligned_alloc);
void *memalign(size_t align, size_t n) ALIAS(strata_memalign);
void *valloc(size_t n) ALIAS(strata_valloc);
void *pvalloc(size_t n) ALIAS(strata_pvalloc);
size_t malloc_usable_size(void *p) ALIAS(strata_malloc_usable_size);
void free_sized(void *p, size_t size) ALIAS(strata_free_sized);
void free_aligned_sized(void *p, size_t align, size_t size) ALIAS(strata_free_aligned_sized);
int malloc_trim(size_t pad) ALIAS(strata_malloc_trim);
int mallopt(int param, int value) ALIAS(strata_mallopt);
__attribute__((visibility("default"))) struct mallinfo2 mallinfo2(void)
{
    return strata_mallinfo2();
}
/* glibc's mallinfo is deprecated, but programs still call it: strata's
 * figures, not those of glibc's idle arenas. */
__attribute__((visibility("default"))) struct mallinfo mallinfo(void)
{
    return strata_mallinfo();
}
__attribute__((visibility("default"))) void malloc_stats(void) { strata_malloc_stats_print(); }
__attribute__((visibility("default"))) int pthread_join(pthread_t t, void **ret)
{
    return st_malloc_parked_join(t, ret);
}
#endif
