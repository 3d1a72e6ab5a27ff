/* SPDX-License-Identifier: MIT */
/*
 * Threads and strata's malloc: several threads allocating and freeing at
 * random, handing blocks to each other through a locked queue so that the
 * receiver frees (or reallocs) blocks another thread allocated; the
 * contents of every block are checked before it is freed. Then thread
 * churn: thousands of short-lived threads, each leaving live blocks behind
 * for the main thread to free later; their heaps must be adopted (the
 * number of heaps stays far below the number of threads), memory must not
 * grow with the number of threads, and the later threads must not be
 * slower than the first. Also: blocks of a thread that has exited are
 * freed by another thread and its heap is adopted, and many threads free
 * blocks of one owner at once while the owner keeps allocating. And large
 * blocks resized by realloc (which keeps the pages a shrink leaves) while
 * another thread trims, which gives those pages back; and malloc_trim
 * gives back the empty pages waiting in an exited thread's heap.
 *
 * Written to run under ThreadSanitizer too: everything shared by the test
 * itself goes through a mutex or an atomic.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "stats.h"
#include "strata/malloc.h"
#include "test.h"
#include "theap.h"

#define KIB ((size_t)1024)
#define MIB ((size_t)1024 * 1024)

static atomic_long errors;

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "  " __VA_ARGS__);                                                         \
        atomic_fetch_add(&errors, 1);                                                              \
    } while (0)

/* ---- per-thread PRNG and patterns ---------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rng_range(uint64_t *s, uint64_t lo, uint64_t hi)
{
    return lo + rng_next(s) % (hi - lo + 1);
}

static inline uint64_t pat_word(uint64_t tag, size_t i)
{
    uint64_t z = tag * 0x9e3779b97f4a7c15ull + i * 0xbf58476d1ce4e5b9ull;
    return z ^ (z >> 29);
}

static void fill(void *p, size_t n, uint64_t tag)
{
    uint64_t *w = p;
    size_t words = n / 8;
    for (size_t i = 0; i < words; i++)
        w[i] = pat_word(tag, i);
    uint64_t last = pat_word(tag, words);
    memcpy((char *)p + words * 8, &last, n % 8);
}

static bool verify(const void *p, size_t n, uint64_t tag)
{
    const uint64_t *w = p;
    size_t words = n / 8;
    for (size_t i = 0; i < words; i++)
        if (w[i] != pat_word(tag, i)) return false;
    uint64_t last = pat_word(tag, words);
    return memcmp((const char *)p + words * 8, &last, n % 8) == 0;
}

static strata_malloc_stats stats(void)
{
    strata_malloc_stats s;
    strata_malloc_stats_get(&s);
    return s;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* A block in flight: its size and the tag of its pattern; the thread that
 * allocated it is in the top byte of the tag. */
typedef struct item {
    void *p;
    size_t size;
    uint64_t tag;
} item;

#define TAG(thread, n) ((uint64_t)(thread) << 56 | (uint64_t)(n))
#define TAG_THREAD(tag) ((unsigned)((tag) >> 56))

/* A block of a random size: mostly small, some medium, rarely large. */
static size_t random_size(uint64_t *rng)
{
    uint64_t r = rng_range(rng, 0, 9999);
    if (r < 8000) return (size_t)rng_range(rng, 1, 512);
    if (r < 9500) return (size_t)rng_range(rng, 513, 16 * KIB);
    if (r < 9990) return (size_t)rng_range(rng, 16 * KIB + 1, 256 * KIB);
    return (size_t)rng_range(rng, 256 * KIB, 3 * MIB);
}

static bool new_item(item *it, uint64_t *rng, uint64_t tag)
{
    it->size = random_size(rng);
    it->tag = tag;
    it->p = rng_next(rng) % 8 == 0 ? strata_calloc(1, it->size) : strata_malloc(it->size);
    if (it->p == NULL) {
        FAIL("allocation of %zu failed (errno %d)\n", it->size, errno);
        return false;
    }
    if (((uintptr_t)it->p & 15) != 0 || strata_malloc_usable_size(it->p) < it->size)
        FAIL("block %p of %zu misaligned or short\n", it->p, it->size);
    fill(it->p, it->size, tag);
    return true;
}

/* A block of `size` bytes filled with its tag; false if malloc failed. */
static bool sized_item(item *it, size_t size, uint64_t tag)
{
    it->size = size;
    it->tag = tag;
    it->p = strata_malloc(size);
    if (it->p != NULL)
        fill(it->p, size, tag);
    return it->p != NULL;
}

/* Verify and free a block; false (and a message) if it was overwritten. */
static bool check_free(item *it, const char *who)
{
    bool ok = verify(it->p, it->size, it->tag);
    if (!ok)
        FAIL("%s: block %p of %zu (from thread %u) overwritten\n", who, it->p, it->size,
             TAG_THREAD(it->tag));
    strata_free(it->p);
    it->p = NULL;
    return ok;
}

/* ---- a locked queue of blocks between threads ------------------------------------ */

#define QCAP 8192

typedef struct queue {
    pthread_mutex_t lock;
    item items[QCAP];
    size_t head, count;
} queue;

static queue q = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool q_push(const item *it)
{
    pthread_mutex_lock(&q.lock);
    bool ok = q.count < QCAP;
    if (ok) q.items[(q.head + q.count++) % QCAP] = *it;
    pthread_mutex_unlock(&q.lock);
    return ok;
}

/* Take the oldest block; false when empty. */
static bool q_pop(item *it)
{
    pthread_mutex_lock(&q.lock);
    bool ok = q.count > 0;
    if (ok) {
        *it = q.items[q.head];
        q.head = (q.head + 1) % QCAP;
        q.count--;
    }
    pthread_mutex_unlock(&q.lock);
    return ok;
}

/* ---- stress: random work with cross-thread frees --------------------------------- */

typedef struct worker {
    pthread_t thread;
    unsigned id;
    uint64_t rng;
    long steps;
    long remote_frees; /* blocks of another thread this one freed */
} worker;

#define SLOTS 256

/* Take a block from the queue: verify it; free it, or now and then
 * realloc it and keep it (a realloc of another thread's block). */
static void receive(worker *w, item *slots)
{
    item it;
    if (!q_pop(&it)) return;
    if (TAG_THREAD(it.tag) != w->id) w->remote_frees++;
    unsigned k = (unsigned)rng_range(&w->rng, 0, SLOTS - 1);
    if (slots[k].p != NULL || rng_next(&w->rng) % 4 != 0) {
        check_free(&it, "receiver");
        return;
    }
    if (!verify(it.p, it.size, it.tag))
        FAIL("receiver: block %p of %zu overwritten before realloc\n", it.p, it.size);
    size_t n = random_size(&w->rng);
    void *p = strata_realloc(it.p, n);
    if (p == NULL) {
        FAIL("realloc of a remote block to %zu failed\n", n);
        return;
    }
    if (!verify(p, it.size < n ? it.size : n, it.tag))
        FAIL("realloc of a remote block %zu -> %zu lost contents\n", it.size, n);
    slots[k] = (item){p, n, TAG(w->id, rng_next(&w->rng) & 0xffffffffffull)};
    fill(p, n, slots[k].tag);
}

static void *stress_main(void *arg)
{
    worker *w = arg;
    item slots[SLOTS];
    memset(slots, 0, sizeof(slots));
    for (long s = 0; s < w->steps && atomic_load(&errors) == 0; s++) {
        unsigned k = (unsigned)rng_range(&w->rng, 0, SLOTS - 1);
        uint64_t r = rng_range(&w->rng, 0, 99);
        if (slots[k].p == NULL && r < 60) {
            new_item(&slots[k], &w->rng, TAG(w->id, (uint64_t)s));
        } else if (slots[k].p != NULL && r < 55) {
            check_free(&slots[k], "owner");
        } else if (slots[k].p != NULL && r < 85) {
            if (q_push(&slots[k])) slots[k].p = NULL;
        } else {
            receive(w, slots);
        }
    }
    for (unsigned k = 0; k < SLOTS; k++)
        if (slots[k].p) check_free(&slots[k], "owner at exit");
    return NULL;
}

TEST(cross_thread_stress)
{
    uint64_t seed = test_seed("stress");
    enum { N = 6 };
    worker w[N];
    atomic_store(&errors, 0);
    strata_malloc_stats before = stats();
    long remote = 0;
    for (unsigned i = 0; i < N; i++) {
        w[i] = (worker){.id = i + 1, .rng = seed + i * 7919, .steps = test_steps(40000)};
        REQUIRE(pthread_create(&w[i].thread, NULL, stress_main, &w[i]) == 0);
    }
    for (unsigned i = 0; i < N; i++) {
        pthread_join(w[i].thread, NULL);
        remote += w[i].remote_frees;
    }
    item it;
    while (q_pop(&it)) {
        remote++;
        check_free(&it, "main");
    }
    CHECK_EQ(atomic_load(&errors), 0);
    strata_malloc_stats after = stats();
    printf("  %ld remote frees by the test; remote_frees +%" PRIu64 ", heaps %zu -> %zu\n", remote,
           after.remote_frees - before.remote_frees, before.heaps, after.heaps);
    CHECK(remote > 0);
    CHECK(after.remote_frees > before.remote_frees);
    CHECK(after.heaps <= before.heaps + N + 1);
    if (after.live_bytes != before.live_bytes)
        fprintf(stderr, "  live bytes %zu after everything was freed, %zu before\n",
                after.live_bytes, before.live_bytes);
    CHECK(after.live_bytes <= before.live_bytes + 64 * KIB);
}

/* ---- many threads free one owner's blocks while it allocates ------------------- */

typedef struct chunk {
    item *items;
    size_t n;
} chunk;

static void *free_chunk(void *arg)
{
    chunk *c = arg;
    for (size_t i = 0; i < c->n; i++)
        check_free(&c->items[i], "remote freer");
    return NULL;
}

TEST(concurrent_remote_frees_of_one_owner)
{
    uint64_t rng = test_seed("one owner");
    enum { FREERS = 4 };
    size_t n = (size_t)test_steps(40000);
    item *items = malloc(n * sizeof(item));
    atomic_store(&errors, 0);
    strata_malloc_stats before = stats();
    for (int round = 0; round < 3; round++) {
        /* Two size classes, interleaved, so slabs hold both old and new. */
        for (size_t i = 0; i < n; i++)
            REQUIRE(sized_item(&items[i], i % 2 ? 48 : 200, TAG(0, i + (size_t)round * n)));
        pthread_t t[FREERS];
        chunk c[FREERS];
        for (int k = 0; k < FREERS; k++) {
            c[k] = (chunk){items + n / FREERS * (size_t)k, n / FREERS};
            REQUIRE(pthread_create(&t[k], NULL, free_chunk, &c[k]) == 0);
        }
        /* Meanwhile the owner allocates and frees the same classes. */
        item mine[64];
        for (size_t s = 0; s < n / 4; s++) {
            item *m = &mine[s % 64];
            if (s >= 64) check_free(m, "owner");
            m->size = s % 2 ? 48 : 200;
            m->tag = TAG(0x7f, s + rng % 1000);
            m->p = strata_malloc(m->size);
            REQUIRE(m->p != NULL);
            fill(m->p, m->size, m->tag);
        }
        for (int k = 0; k < FREERS; k++)
            pthread_join(t[k], NULL);
        for (size_t s = 0; s < 64 && s < n / 4; s++)
            check_free(&mine[s], "owner");
        for (size_t i = n / FREERS * FREERS; i < n; i++)
            check_free(&items[i], "owner");
        /* Everything the freers returned can be handed out again, with no
         * block given twice. */
        for (size_t i = 0; i < n; i++)
            REQUIRE(sized_item(&items[i], 48, TAG(1, i)));
        for (size_t i = 0; i < n; i++)
            check_free(&items[i], "owner, second pass");
    }
    CHECK_EQ(atomic_load(&errors), 0);
    strata_malloc_stats after = stats();
    CHECK(after.remote_frees >= before.remote_frees + (uint64_t)(n / FREERS * FREERS) * 3);
    /* (At most: remote frees of earlier tests may have been merged since.) */
    CHECK(after.live_bytes <= before.live_bytes);
    free(items);
}

/* A thread hands the blocks it frees for another heap over in batches,
 * their addresses written into the roomiest of them (a 16-byte block has
 * room for none: each is a carrier of its own; a medium block for the
 * whole batch). Whatever the batch's shape, the owner must take in every
 * block exactly once: afterwards its live bytes are back where they were,
 * and every block can be handed out again, none twice. */
static size_t shape_size(int shape, size_t i)
{
    switch (shape) {
    case 0: return 16;
    case 1: return i % 97 == 0 ? 20000 : 16 + i % 497; /* with medium blocks */
    default: return 100;
    }
}

TEST(remote_frees_in_batches_of_every_shape)
{
    static const size_t counts[] = {1000, 1000, 1, 33};
    item *items = malloc(1000 * sizeof(item));
    REQUIRE(items != NULL);
    atomic_store(&errors, 0);
    for (int shape = 0; shape < 4; shape++) {
        size_t n = counts[shape];
        strata_malloc_trim(0);
        strata_malloc_stats before = stats();
        for (size_t i = 0; i < n; i++)
            REQUIRE(sized_item(&items[i], shape_size(shape, i), TAG(2, i)));
        chunk c = {items, n};
        pthread_t t;
        REQUIRE(pthread_create(&t, NULL, free_chunk, &c) == 0);
        pthread_join(t, NULL); /* its exit hands over the last batch */
        strata_malloc_trim(0); /* takes everything in */
        strata_malloc_stats after = stats();
        printf("  %zu blocks freed by another thread: live bytes %zu before, %zu after\n", n,
               before.live_bytes, after.live_bytes);
        CHECK(after.live_bytes <= before.live_bytes);
        for (size_t i = 0; i < n; i++)
            REQUIRE(sized_item(&items[i], items[i].size, TAG(3, i)));
        for (size_t i = 0; i < n; i++)
            check_free(&items[i], "owner");
    }
    CHECK_EQ(atomic_load(&errors), 0);
    free(items);
}

/* ---- a thread waiting in pthread_join parks its heap ----------------------------- */

/* libstrata.so's pthread_join is st_malloc_parked_join: while the calling
 * thread waits, the blocks other threads free of its heap are taken in by
 * them, not left until it next allocates. With the C library's
 * pthread_join (what a program that links the static library gets) they
 * wait on its list. */
static void free_while_joining(item *items, size_t n, bool parked)
{
    for (size_t i = 0; i < n; i++)
        REQUIRE(sized_item(&items[i], 200, TAG(4, i)));
    chunk c = {items, n};
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, free_chunk, &c) == 0);
    REQUIRE((parked ? st_malloc_parked_join(t, NULL) : pthread_join(t, NULL)) == 0);
}

TEST(blocks_freed_while_their_owner_waits_in_join_are_taken_in)
{
    enum { N = 20000 };
    item *items = malloc(N * sizeof(item));
    REQUIRE(items != NULL);
    atomic_store(&errors, 0);
    strata_malloc_trim(0);
    size_t base = stats().live_bytes;
    free_while_joining(items, N, true);
    size_t parked = stats().live_bytes;
    void *p = strata_malloc(200); /* the heap is its thread's again */
    REQUIRE(p != NULL);
    strata_free(p);
    strata_malloc_trim(0);
    free_while_joining(items, N, false);
    size_t plain = stats().live_bytes;
    printf("  live bytes after %d blocks of 200 were freed by the joined thread: %zu with the "
           "heap parked, %zu without (%zu before)\n",
           N, parked, plain, base);
    CHECK(parked <= base);
    CHECK(plain >= base + (size_t)N * 200); /* the control: without parking they wait */
    CHECK_EQ(atomic_load(&errors), 0);
    strata_malloc_trim(0);
    free(items);
}

/* ---- a thread that exits leaves its heap to be adopted ------------------------- */

typedef struct handoff {
    item *items;
    size_t n;
    uint64_t rng;
} handoff;

static void *alloc_and_exit(void *arg)
{
    handoff *h = arg;
    for (size_t i = 0; i < h->n; i++)
        new_item(&h->items[i], &h->rng, TAG(3, i));
    return NULL;
}

TEST(exited_thread_blocks_and_adoption)
{
    uint64_t seed = test_seed("adoption");
    enum { N = 3000 };
    item *items = malloc(N * sizeof(item));
    atomic_store(&errors, 0);
    strata_malloc_stats s0 = stats();
    handoff h = {items, N, seed};
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, alloc_and_exit, &h) == 0);
    pthread_join(t, NULL);
    REQUIRE(atomic_load(&errors) == 0);
    strata_malloc_stats s1 = stats();
    CHECK(s1.abandoned >= s0.abandoned + 1);
    CHECK(s1.heaps_abandoned >= 1);
    /* The main thread frees the dead thread's blocks: contents intact. */
    for (size_t i = 0; i < N; i++)
        check_free(&items[i], "main");
    /* A new thread takes the abandoned heap over instead of making one. */
    h.rng = seed + 1;
    REQUIRE(pthread_create(&t, NULL, alloc_and_exit, &h) == 0);
    pthread_join(t, NULL);
    strata_malloc_stats s2 = stats();
    printf("  heaps %zu -> %zu -> %zu, adopted +%" PRIu64 ", abandoned +%" PRIu64 "\n", s0.heaps,
           s1.heaps, s2.heaps, s2.adopted - s0.adopted, s2.abandoned - s0.abandoned);
    CHECK(s2.adopted >= s1.adopted + 1);
    CHECK_EQ(s2.heaps, s1.heaps);
    for (size_t i = 0; i < N; i++)
        check_free(&items[i], "main");
    CHECK_EQ(atomic_load(&errors), 0);
    /* Nothing of this test is live (at most: remote frees of earlier tests
     * may have been merged since s0). */
    strata_malloc_stats s3 = stats();
    if (s3.live_bytes > s0.live_bytes)
        fprintf(stderr, "  live bytes %zu after the dead thread's blocks were freed, %zu before\n",
                s3.live_bytes, s0.live_bytes);
    CHECK(s3.live_bytes <= s0.live_bytes);
    free(items);
}

/* ---- malloc_trim reaches the heaps no thread serves ------------------------------- */

enum { TRIM_BLOCKS = 16384 };

static void *fill_and_exit(void *arg)
{
    unsigned char **p = arg;
    for (size_t i = 0; i < TRIM_BLOCKS; i++)
        if ((p[i] = strata_malloc(256)) != NULL)
            memset(p[i], 0x3c, 256);
    return NULL;
}

/* Runs of empty pages and queued ranges in heaps whose threads are gone. */
static unsigned long waiting_in_abandoned_heaps(void)
{
    unsigned long n = 0;
    st_theap_lock_all();
    for (st_theap *h = st_theap_first(); h != NULL; h = h->next_all)
        if (h->state == ST_HEAP_ABANDONED)
            n += h->pending_runs + h->purge_queue.count;
    st_theap_unlock_all();
    return n;
}

/* The main thread frees 63 in 64 of an exited thread's blocks: the pages
 * that empties in its heap's slabs wait there for the heap's decay, and
 * malloc_trim gives them back at once. */
TEST(malloc_trim_gives_back_what_abandoned_heaps_hold)
{
    unsigned char **p = calloc(TRIM_BLOCKS, sizeof(*p));
    REQUIRE(p != NULL);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, fill_and_exit, p) == 0);
    pthread_join(t, NULL);
    for (size_t i = 0; i < TRIM_BLOCKS; i++)
        REQUIRE(p[i] != NULL);
    for (size_t i = 0; i < TRIM_BLOCKS; i++)
        if (i % 64 != 0)
            strata_free(p[i]);
    st_malloc_flush_thread(); /* the last batch of them goes over */
    unsigned long before = waiting_in_abandoned_heaps();
    strata_malloc_trim(0);
    unsigned long after = waiting_in_abandoned_heaps();
    printf("  runs and ranges waiting in abandoned heaps: %lu, after malloc_trim %lu\n", before,
           after);
    CHECK(before > 0);
    CHECK_EQ(after, 0);
    for (size_t i = 0; i < TRIM_BLOCKS; i += 64) {
        CHECK(p[i][0] == 0x3c && p[i][255] == 0x3c);
        strata_free(p[i]);
    }
    free(p);
}

/* ---- a new thread adopts the heap whose block it frees first ---------------------- */

/* Two threads allocate at the same time (so into two heaps); the first
 * exits, then the second. */
typedef struct pair_of_owners {
    handoff a, b;
    pthread_barrier_t both_allocated, a_gone;
} pair_of_owners;

static void *owner_a(void *arg)
{
    pair_of_owners *o = arg;
    alloc_and_exit(&o->a);
    pthread_barrier_wait(&o->both_allocated);
    return NULL;
}

static void *owner_b(void *arg)
{
    pair_of_owners *o = arg;
    alloc_and_exit(&o->b);
    pthread_barrier_wait(&o->both_allocated);
    pthread_barrier_wait(&o->a_gone);
    return NULL;
}

/* A successor: replaces each of its predecessor's blocks, a free then a
 * malloc, as a pool's new worker does with the work it inherits. */
static void *replace_all(void *arg)
{
    handoff *h = arg;
    for (size_t i = 0; i < h->n; i++) {
        check_free(&h->items[i], "successor");
        new_item(&h->items[i], &h->rng, TAG(5, i));
    }
    return NULL;
}

static void run_thread(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, fn, arg) == 0);
    pthread_join(t, NULL);
}

TEST(successor_adopts_the_heap_whose_blocks_it_frees)
{
    uint64_t seed = test_seed("successor");
    enum { N = 2000 };
    item *items = malloc(2 * N * sizeof(item));
    REQUIRE(items != NULL);
    atomic_store(&errors, 0);
    pair_of_owners o = {.a = {items, N, seed}, .b = {items + N, N, seed + 1}};
    pthread_barrier_init(&o.both_allocated, NULL, 3);
    pthread_barrier_init(&o.a_gone, NULL, 2);
    pthread_t a, b;
    REQUIRE(pthread_create(&a, NULL, owner_a, &o) == 0);
    REQUIRE(pthread_create(&b, NULL, owner_b, &o) == 0);
    pthread_barrier_wait(&o.both_allocated);
    pthread_join(a, NULL);
    pthread_barrier_wait(&o.a_gone);
    pthread_join(b, NULL);
    /* A's heap was abandoned first, B's last: a new thread that allocated
     * first would adopt B's, the newest. This one frees A's block first. */
    strata_malloc_stats s0 = stats();
    o.a.rng = seed + 2;
    run_thread(replace_all, &o.a);
    strata_malloc_stats s1 = stats();
    printf("  remote frees +%" PRIu64 ", adopted +%" PRIu64 ", heaps %zu -> %zu\n",
           s1.remote_frees - s0.remote_frees, s1.adopted - s0.adopted, s0.heaps, s1.heaps);
    CHECK(s0.heaps_abandoned >= 2);
    CHECK_EQ(s1.remote_frees, s0.remote_frees + 1); /* the first free only: then it owns them */
    CHECK_EQ(s1.adopted, s0.adopted + 1);
    CHECK_EQ(s1.heaps, s0.heaps);
    for (size_t i = 0; i < 2 * N; i++)
        check_free(&items[i], "main");
    CHECK_EQ(atomic_load(&errors), 0);
    pthread_barrier_destroy(&o.both_allocated);
    pthread_barrier_destroy(&o.a_gone);
    free(items);
}

/* ---- a thread that only frees takes no heap ----------------------------------------- */

typedef struct reaper {
    item *first;
    pthread_barrier_t freed, done;
} reaper;

static void *reap_one_and_wait(void *arg)
{
    reaper *r = arg;
    check_free(r->first, "reaper");
    pthread_barrier_wait(&r->freed);
    pthread_barrier_wait(&r->done); /* alive, never allocating, while main frees the rest */
    return NULL;
}

/* A thread that frees one block of a dead thread's heap and then only
 * waits must not hold that heap: what others free into it while it
 * waits is taken in (a heap is serviced only by its owner's allocations). */
TEST(a_thread_that_only_frees_strands_nothing)
{
    uint64_t seed = test_seed("reaper");
    enum { N = 20000 };
    item *items = malloc(N * sizeof(item));
    REQUIRE(items != NULL);
    atomic_store(&errors, 0);
    strata_malloc_stats s0 = stats();
    handoff h = {items, N, seed};
    run_thread(alloc_and_exit, &h);
    size_t first_size = strata_malloc_usable_size(items[0].p);
    reaper r = {.first = &items[0]};
    pthread_barrier_init(&r.freed, NULL, 2);
    pthread_barrier_init(&r.done, NULL, 2);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, reap_one_and_wait, &r) == 0);
    pthread_barrier_wait(&r.freed);
    for (size_t i = 1; i < N; i++)
        check_free(&items[i], "main");
    strata_malloc_trim(0); /* hands over main's last batch */
    strata_malloc_stats s1 = stats();
    printf("  live bytes %zu before, %zu with the reaper still waiting\n", s0.live_bytes,
           s1.live_bytes);
    /* all but the reaper's own block, in the batch it has not sent yet */
    CHECK(s1.live_bytes <= s0.live_bytes + first_size);
    pthread_barrier_wait(&r.done);
    pthread_join(t, NULL);
    CHECK_EQ(atomic_load(&errors), 0);
    pthread_barrier_destroy(&r.freed);
    pthread_barrier_destroy(&r.done);
    free(items);
}

/* ---- statistics while other threads give segments back ------------------------------ */

static atomic_int stop_releasing;

/* Medium blocks fill and empty whole segments; the decay and malloc_trim
 * give them back (and unmap those the cache does not keep). */
static void *release_segments(void *unused)
{
    (void)unused;
    void *p[40];
    for (long round = 0; !atomic_load(&stop_releasing); round++) {
        for (int i = 0; i < 40; i++)
            p[i] = strata_malloc(900 * KIB);
        for (int i = 0; i < 40; i++)
            strata_free(p[i]);
        if (round % 4 == 0)
            strata_malloc_trim(0);
    }
    return NULL;
}

/* The statistics walk every heap's segments: another thread's segments
 * must not be unmapped under the walk (without the segment lock, this
 * test crashed). */
TEST(statistics_while_other_threads_release_segments)
{
    atomic_store(&stop_releasing, 0);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, release_segments, NULL) == 0);
    FILE *null = fopen("/dev/null", "w");
    REQUIRE(null != NULL);
    size_t mapped = 0;
    double t0 = now_s();
    long walks = 0;
    while (now_s() - t0 < 0.5) {
        strata_malloc_stats st;
        strata_malloc_stats_get(&st);
        struct mallinfo2 mi = strata_mallinfo2();
        mapped += st.mapped_bytes + mi.arena;
        if (++walks % 64 == 0)
            strata_stats_print(null);
    }
    atomic_store(&stop_releasing, 1);
    pthread_join(t, NULL);
    fclose(null);
    printf("  %ld walks of the heaps while another thread released segments\n", walks);
    CHECK(walks > 0 && mapped > 0);
}

/* ---- thread churn ------------------------------------------------------------------- */

#define CHURN_BLOCKS 24
#define CHURN_WAVE 8

typedef struct churner {
    pthread_t thread;
    uint64_t rng;
    unsigned id;
    item kept[CHURN_BLOCKS / 2]; /* handed to the main thread */
} churner;

static void *churn_main(void *arg)
{
    churner *c = arg;
    item it[CHURN_BLOCKS];
    for (int i = 0; i < CHURN_BLOCKS; i++) {
        if (!new_item(&it[i], &c->rng, TAG(c->id & 0xff, (uint64_t)c->id << 8 | (unsigned)i)))
            return NULL;
    }
    /* A medium block now and then, a large one rarely. */
    item extra = {0};
    if (c->id % 16 == 0) {
        extra.size = c->id % 256 == 0 ? 2 * MIB : 64 * KIB;
        extra.tag = c->id;
        extra.p = strata_malloc(extra.size);
        if (extra.p == NULL)
            FAIL("churner: malloc(%zu) failed\n", extra.size);
        else
            fill(extra.p, extra.size, extra.tag);
    }
    for (int i = 0; i < CHURN_BLOCKS; i += 2)
        check_free(&it[i], "churner");
    for (int i = 1; i < CHURN_BLOCKS; i += 2)
        c->kept[i / 2] = it[i];
    if (extra.p) check_free(&extra, "churner");
    return NULL;
}

/* Run `count` threads in waves; main frees their kept blocks, half of them
 * at once, the other half one wave later. Returns false on a failure. */
static bool churn(churner *cs, unsigned first_id, long count, item *later, size_t *nlater)
{
    for (long done = 0; done < count; done += CHURN_WAVE) {
        int wave = (int)(count - done < CHURN_WAVE ? count - done : CHURN_WAVE);
        for (int k = 0; k < wave; k++) {
            cs[k].id = first_id + (unsigned)(done + k);
            cs[k].rng = cs[k].rng * 31 + cs[k].id;
            if (pthread_create(&cs[k].thread, NULL, churn_main, &cs[k]) != 0) {
                fprintf(stderr, "  pthread_create failed after %ld threads\n", done + k);
                return false;
            }
        }
        for (size_t i = 0; i < *nlater; i++)
            check_free(&later[i], "main, a wave later");
        *nlater = 0;
        for (int k = 0; k < wave; k++) {
            pthread_join(cs[k].thread, NULL);
            for (int i = 0; i < CHURN_BLOCKS / 2; i++) {
                if (cs[k].kept[i].p == NULL) continue;
                if (i % 2)
                    later[(*nlater)++] = cs[k].kept[i];
                else
                    check_free(&cs[k].kept[i], "main");
                cs[k].kept[i].p = NULL;
            }
        }
        if (atomic_load(&errors) != 0) return false;
    }
    return true;
}

TEST(thread_churn)
{
    uint64_t seed = test_seed("churn");
    long total = test_steps(2000);
    if (total < 200) total = 200;
    churner cs[CHURN_WAVE];
    memset(cs, 0, sizeof(cs));
    for (int k = 0; k < CHURN_WAVE; k++)
        cs[k].rng = seed + (uint64_t)k;
    item *later = malloc(CHURN_WAVE * CHURN_BLOCKS * sizeof(item));
    size_t nlater = 0;
    atomic_store(&errors, 0);
    strata_malloc_stats s0 = stats();
    double t0 = now_s();
    REQUIRE(churn(cs, 1, total / 2, later, &nlater));
    double t1 = now_s();
    strata_malloc_stats s1 = stats();
    REQUIRE(churn(cs, 1 + (unsigned)(total / 2), total - total / 2, later, &nlater));
    double t2 = now_s();
    for (size_t i = 0; i < nlater; i++)
        check_free(&later[i], "main, at the end");
    strata_malloc_stats s2 = stats();
    CHECK_EQ(atomic_load(&errors), 0);
    printf("  %ld threads: heaps %zu -> %zu -> %zu, abandoned +%" PRIu64 ", adopted +%" PRIu64
           ", mapped %zu -> %zu -> %zu KiB, live %zu -> %zu, %.3f s then %.3f s\n",
           total, s0.heaps, s1.heaps, s2.heaps, s2.abandoned - s0.abandoned,
           s2.adopted - s0.adopted, s0.mapped_bytes / 1024, s1.mapped_bytes / 1024,
           s2.mapped_bytes / 1024, s0.live_bytes, s2.live_bytes, t1 - t0, t2 - t1);
    /* Heaps are adopted: far fewer heaps than threads. */
    CHECK(s2.heaps - s0.heaps <= 4 * CHURN_WAVE);
    CHECK(s2.abandoned - s0.abandoned >= (uint64_t)total * 9 / 10);
    CHECK((s2.heaps - s0.heaps) + (s2.adopted - s0.adopted) >= (uint64_t)total * 9 / 10);
    /* No leak: the second half maps no more than the first left, give or
     * take what the segment cache happens to hold at each count (up to 8
     * segments, 32 MiB); a heap leaked per thread would be gigabytes. */
    CHECK(s2.mapped_bytes <= s1.mapped_bytes + 40 * MIB);
    /* No slowdown: the second half takes about as long as the first. */
    CHECK(t2 - t1 <= 3 * (t1 - t0) + 0.5);
    /* Everything freed: the live bytes are back where they started. */
    if (s2.live_bytes != s0.live_bytes)
        fprintf(stderr, "  live bytes %zu after everything was freed, %zu before\n", s2.live_bytes,
                s0.live_bytes);
    CHECK(s2.live_bytes <= s0.live_bytes + 64 * KIB);
    free(later);
}

/* ---- large reallocs while another thread trims ----------------------------------- */

static atomic_int trimming;
static atomic_long trims;

/* Trims, and maps fresh large blocks (aligned ones are never cached), so
 * that they may land where a trim has just given pages back: their chunk
 * marks must survive it, or their free aborts. */
static void *trimmer(void *arg)
{
    (void)arg;
    while (atomic_load(&trimming)) {
        strata_malloc_trim(0);
        char *fresh = strata_memalign(4 * MIB, 2 * MIB);
        if (fresh != NULL) {
            fresh[0] = 1;
            strata_free(fresh);
        }
        atomic_fetch_add(&trims, 1);
    }
    return NULL;
}

/* Byte i of a large block of generation g (checked one per page). */
static char large_byte(size_t i, unsigned g) { return (char)((i >> 12) * 31 + g); }

TEST(large_realloc_while_another_thread_trims)
{
    uint64_t seed = test_seed("large realloc"), rng = seed;
    long steps = test_steps(300);
    atomic_store(&errors, 0);
    atomic_store(&trimming, 1);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, trimmer, NULL) == 0);
    size_t n = 8 * MIB;
    unsigned g = 0;
    char *p = strata_malloc(n);
    REQUIRE(p != NULL);
    for (size_t i = 0; i < n; i += 4096)
        p[i] = large_byte(i, g);
    for (long s = 0; s < steps && atomic_load(&errors) == 0; s++) {
        size_t m = 2 * MIB + rng_next(&rng) % (14 * MIB);
        char *r = strata_realloc(p, m);
        if (r == NULL) {
            FAIL("realloc(%zu) failed\n", m);
            break;
        }
        size_t kept = n < m ? n : m;
        for (size_t i = 0; i < kept; i += 4096)
            if (r[i] != large_byte(i, g)) {
                FAIL("step %ld: byte %zu of a %zu-byte block lost in realloc to %zu\n", s, i, n, m);
                break;
            }
        g++;
        for (size_t i = 0; i < m; i += 4096)
            r[i] = large_byte(i, g);
        /* a whole trim pass now, with the slack of a shrink still there:
         * it must take the pages past the block, none of the block's */
        long passes = atomic_load(&trims);
        while (atomic_load(&trims) < passes + 2)
            sched_yield();
        for (size_t i = 0; i < m; i += 4096)
            if (r[i] != large_byte(i, g)) {
                FAIL("step %ld: byte %zu of a %zu-byte block lost in a trim\n", s, i, m);
                break;
            }
        p = r, n = m;
    }
    atomic_store(&trimming, 0);
    pthread_join(t, NULL);
    /* the trims gave back what the shrinks kept: only the block is mapped */
    strata_malloc_trim(0);
    size_t mapped = stats().large_bytes;
    printf("  %zu-byte block last: %zu bytes of large mappings after a trim\n", n, mapped);
    CHECK(mapped <= n + 4096 + 64);
    strata_free(p);
    CHECK_EQ(atomic_load(&errors), 0);
}
