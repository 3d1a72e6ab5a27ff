/* SPDX-License-Identifier: MIT */
/*
 * Memory goes back to the OS: the resident set (RSS, /proc/self/statm)
 * after a program has allocated and touched some 200 MiB of small, medium
 * and large blocks and freed them all must come back within 10 % + 1 MiB
 * of where it started: by the decay alone (STRATA_DECAY_MS=100 here, and
 * some heap activity after it, which is when strata purges), and at once
 * with malloc_trim. Also: with 1 block in 64 kept alive, RSS above the
 * start is at most 2.5 x the live bytes + 1 MiB (every page without a live
 * block goes back, even inside a slab that still has live blocks), and
 * with 1 in 64 of 256-byte blocks or 1 in 4 of 1-8 KiB blocks kept, the
 * pages without one go back at once (with another thread alive too); the blocks of a thread that has
 * exited, freed by the main thread, go back too; and a thread that frees
 * everything it allocated and then idles keeps at most a quarter of it.
 *
 * The harness's own arrays are static and touched before the baseline is
 * taken, so only strata's memory moves the figure.
 */
#define _GNU_SOURCE /* sched_setaffinity, sched_getcpu */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <sys/resource.h>

#include "strata/malloc.h"
#include "test.h"

#define KIB ((size_t)1024)
#define MIB ((size_t)1024 * 1024)
#define PAGE ((size_t)4096)
#define DECAY_MS 100
#define MAX_BLOCKS 65536

/* Options are read at strata's first allocation: set the decay before. */
__attribute__((constructor)) static void set_decay(void)
{
    setenv("STRATA_DECAY_MS", "100", 1);
}

static void *blocks[MAX_BLOCKS];
static size_t sizes[MAX_BLOCKS];

static size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long vm = 0, res = 0;
    if (f == NULL) return 0;
    if (fscanf(f, "%lu %lu", &vm, &res) != 2) res = 0;
    fclose(f);
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

/* Touch the harness's arrays and stdio so they are in the baseline. */
static size_t baseline(void)
{
    memset(blocks, 0, sizeof(blocks));
    memset(sizes, 0, sizeof(sizes));
    fflush(stdout);
    return rss_bytes();
}

/* The bound: within 10 % + 1 MiB of the start. */
static size_t bound(size_t base)
{
    return base + base / 10 + MIB;
}

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&t, NULL);
}

/* A size: 30 % of the bytes small, 30 % medium, 40 % large. */
static size_t mixed_size(void)
{
    uint64_t r = test_rand_range(0, 999);
    if (r < 960) return (size_t)test_rand_range(16, 16 * KIB);
    if (r < 996) return (size_t)test_rand_range(16 * KIB + 1, MIB);
    return (size_t)test_rand_range(MIB + 1, 8 * MIB);
}

/* Allocate and touch about `total` bytes; returns the block count. */
static size_t allocate(size_t total)
{
    size_t n = 0, bytes = 0;
    while (bytes < total && n < MAX_BLOCKS) {
        sizes[n] = mixed_size();
        blocks[n] = strata_malloc(sizes[n]);
        if (blocks[n] == NULL) break;
        memset(blocks[n], (int)(n & 0xff) | 1, sizes[n]);
        bytes += sizes[n++];
    }
    return n;
}

static void free_in_random_order(size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)test_rand_range(0, i - 1);
        void *t = blocks[i - 1];
        blocks[i - 1] = blocks[j];
        blocks[j] = t;
    }
    for (size_t i = 0; i < n; i++)
        strata_free(blocks[i]);
}

/* Heap activity: `pairs` small malloc/free pairs and one medium. */
static void activity(int pairs)
{
    for (int i = 0; i < pairs; i++)
        strata_free(strata_malloc(64));
    strata_free(strata_malloc(20000));
}

/* Wait for the decay, with `pairs` of heap activity every 25 ms (purging
 * happens on activity), until RSS is at most `target` or `limit_ms` has
 * passed. Returns the last RSS. */
static size_t wait_for_decay(size_t target, int pairs, long limit_ms, long *waited)
{
    size_t rss = rss_bytes();
    for (*waited = 0; *waited < limit_ms && rss > target; *waited += 25) {
        sleep_ms(25);
        activity(pairs);
        rss = rss_bytes();
    }
    return rss;
}

/* Light activity: what a program that has freed everything and goes on
 * quietly does. Heavy: enough allocations to run any per-count trigger. */
#define LIGHT 1
#define HEAVY 5000

TEST(rss_back_by_decay)
{
    size_t base = baseline();
    test_seed("decay");
    size_t n = allocate(200 * MIB);
    REQUIRE(n > 0);
    size_t peak = rss_bytes();
    free_in_random_order(n);
    long waited = 0;
    size_t rss = wait_for_decay(bound(base), LIGHT, 15 * DECAY_MS, &waited);
    printf("  RSS %zu KiB at the start, %zu KiB with %zu blocks, %zu KiB %ld ms after the "
           "frees (light activity)\n",
           base / 1024, peak / 1024, n, rss / 1024, waited);
    CHECK(peak > base + 150 * MIB);
    CHECK(rss <= bound(base));
    if (rss > bound(base)) { /* tell apart "never" from "only with more activity" */
        long more = 0;
        size_t heavy = wait_for_decay(bound(base), HEAVY, 15 * DECAY_MS, &more);
        printf("  then %zu KiB after %ld ms more with heavy activity\n", heavy / 1024, more);
    }
}

TEST(rss_back_with_malloc_trim)
{
    size_t base = baseline();
    test_seed("trim");
    size_t n = allocate(200 * MIB);
    REQUIRE(n > 0);
    size_t peak = rss_bytes();
    free_in_random_order(n);
    int r = strata_malloc_trim(0);
    size_t rss = rss_bytes();
    printf("  RSS %zu KiB at the start, %zu KiB with %zu blocks, %zu KiB after malloc_trim "
           "(%d)\n",
           base / 1024, peak / 1024, n, rss / 1024, r);
    CHECK(peak > base + 150 * MIB);
    CHECK_EQ(r, 1);
    CHECK(rss <= bound(base));
    /* The heap works after the trim. */
    void *p = strata_calloc(1, 100000);
    REQUIRE(p != NULL);
    CHECK(((unsigned char *)p)[99999] == 0);
    strata_free(p);
}

/* 1 block in 64 survives: RSS over the start at most 2.5 x live + 1 MiB. */
TEST(rss_survivors_one_in_64)
{
    size_t base = baseline();
    test_seed("survivors");
    size_t n = 0, bytes = 0;
    while (bytes < 64 * MIB && n < MAX_BLOCKS) {
        sizes[n] = (size_t)test_rand_range(1 * KIB, 16 * KIB);
        blocks[n] = strata_malloc(sizes[n]);
        REQUIRE(blocks[n] != NULL);
        memset(blocks[n], 0x77, sizes[n]);
        bytes += sizes[n++];
    }
    size_t live = 0, kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (i % 64 == 0) {
            live += strata_malloc_usable_size(blocks[i]);
            blocks[kept++] = blocks[i];
        } else {
            strata_free(blocks[i]);
        }
    }
    /* Heavy activity, so the test is about which pages go back, not about
     * what triggers the purge; then malloc_trim, which purges at once. */
    size_t target = base + 5 * live / 2 + MIB;
    long waited = 0;
    size_t rss = wait_for_decay(target, HEAVY, 15 * DECAY_MS, &waited);
    printf("  %zu of %zu blocks kept (%zu KiB live): RSS %zu KiB over the start after %ld ms\n",
           kept, n, live / 1024, (rss - base) / 1024, waited);
    CHECK(rss <= target);
    strata_malloc_trim(0);
    rss = rss_bytes();
    printf("  after malloc_trim: RSS %zu KiB over the start\n", (rss - base) / 1024);
    CHECK(rss <= target);
    /* The survivors are intact. */
    for (size_t i = 0; i < kept; i++) {
        const unsigned char *b = blocks[i];
        if (b[0] != 0x77 || b[1023] != 0x77) {
            fprintf(stderr, "  survivor %zu damaged\n", i);
            CHECK(false);
            break;
        }
    }
    for (size_t i = 0; i < kept; i++)
        strata_free(blocks[i]);
}

/* Blocks of min..max bytes (about `total` of them), 1 in keep_every kept:
 * the pages without a live block go back as the frees empty them,
 * with no decay, no further activity and no malloc_trim.
 * RSS over the start afterwards must be at most `bound_permille` of
 * what was allocated, and at most 2.5 x the live bytes + 1 MiB when
 * `vs_live`. */
static void sparse_pages_back_at_once(size_t min, size_t max, size_t keep_every, size_t total,
                                      size_t bound_permille, bool vs_live)
{
    size_t base = baseline();
    size_t n = 0, bytes = 0;
    while (bytes < total && n < MAX_BLOCKS) {
        sizes[n] = min == max ? min : (size_t)test_rand_range(min, max);
        blocks[n] = strata_malloc(sizes[n]);
        REQUIRE(blocks[n] != NULL);
        memset(blocks[n], 0x5a, sizes[n]);
        bytes += sizes[n++];
    }
    size_t peak = rss_bytes(), kept = 0, live = 0;
    for (size_t i = 0; i < n; i++) {
        if (i % keep_every == 0) {
            live += sizes[i];
            sizes[kept] = sizes[i];
            blocks[kept++] = blocks[i];
        } else {
            strata_free(blocks[i]);
        }
    }
    size_t rss = rss_bytes();
    printf("  %zu of %zu blocks of %zu-%zu bytes kept (%zu KiB live): RSS %zu KiB over the "
           "start, %zu KiB at the peak\n",
           kept, n, min, max, live / 1024, (rss - base) / 1024, (peak - base) / 1024);
    CHECK(peak >= base + bytes * 9 / 10);
    CHECK(rss <= base + bytes / 1000 * bound_permille);
    if (vs_live)
        CHECK(rss <= base + 5 * live / 2 + MIB);
    for (size_t i = 0; i < kept; i++) {
        const unsigned char *b = blocks[i];
        if (b[0] != 0x5a || b[sizes[i] - 1] != 0x5a) {
            fprintf(stderr, "  survivor %zu damaged\n", i);
            CHECK(false);
            break;
        }
    }
    for (size_t i = 0; i < kept; i++)
        strata_free(blocks[i]);
}

/* 256-byte blocks, 1 in 64 kept: 3 pages in 4 hold no live block, yet
 * every bitmap word (64 blocks) keeps one. At most 38 % of what was
 * allocated stays: a quarter pinned by the survivors, plus descriptor
 * pages and the current slab. */
TEST(rss_sparse_pages_back_at_once)
{
    sparse_pages_back_at_once(256, 256, 64, 16 * MIB, 380, false);
}

/* 1-8 KiB blocks, 1 in 4 kept (every allocator that keeps whole slabs
 * stays at 4x the live bytes or more): at most 2.5 x live, and at most
 * half of what was allocated. */
TEST(rss_quarter_live_pages_back_at_once)
{
    test_seed("quarter live");
    sparse_pages_back_at_once(1 * KIB, 8 * KIB, 4, 64 * MIB, 500, true);
}

/* The same beside another thread that holds a heap of its own: a
 * threaded process purges as the frees go too (in batches). */
static pthread_barrier_t holding;

static void *hold_a_heap(void *unused)
{
    (void)unused;
    void *p = strata_malloc(64);
    pthread_barrier_wait(&holding); /* the heap is made */
    pthread_barrier_wait(&holding); /* the test is over */
    strata_free(p);
    return NULL;
}

TEST(rss_quarter_live_pages_back_at_once_beside_another_thread)
{
    test_seed("quarter live, two threads");
    pthread_t t;
    REQUIRE(pthread_barrier_init(&holding, NULL, 2) == 0);
    REQUIRE(pthread_create(&t, NULL, hold_a_heap, NULL) == 0);
    pthread_barrier_wait(&holding);
    sparse_pages_back_at_once(1 * KIB, 8 * KIB, 4, 64 * MIB, 500, true);
    pthread_barrier_wait(&holding);
    pthread_join(t, NULL);
    pthread_barrier_destroy(&holding);
}

/* A producer allocates, a consumer frees (every free a remote one),
 * 16,384 blocks in flight: the producer takes the freed blocks in while
 * it allocates, and the slabs they leave sparse are refilled at once.
 * Their pages must not go to the OS in between (each would fault in
 * again: 24,000 page faults for a million blocks, 4,000-7,000 without); the
 * decay returns them if the producer stops. */
enum { XFER_BATCH = 64, XFER_RING = 256, XFER_BLOCKS = 1000000 };

static struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    void *ring[XFER_RING][XFER_BATCH];
    unsigned head, tail; /* batches produced, consumed */
} xfer = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {{0}}, 0, 0};

static void *produce(void *unused)
{
    (void)unused;
    uint64_t rng = 12345;
    for (unsigned b = 0; b < XFER_BLOCKS / XFER_BATCH; b++) {
        void *batch[XFER_BATCH];
        for (unsigned i = 0; i < XFER_BATCH; i++) {
            rng = rng * 6364136223846793005u + 1442695040888963407u;
            size_t n = 16 + (size_t)(rng >> 33) % 497;
            if ((batch[i] = strata_malloc(n)) != NULL)
                memset(batch[i], 0x77, n);
        }
        pthread_mutex_lock(&xfer.lock);
        while (xfer.head - xfer.tail == XFER_RING)
            pthread_cond_wait(&xfer.changed, &xfer.lock);
        memcpy(xfer.ring[xfer.head % XFER_RING], batch, sizeof(batch));
        xfer.head++;
        pthread_cond_broadcast(&xfer.changed);
        pthread_mutex_unlock(&xfer.lock);
    }
    return NULL;
}

static long minor_faults(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_minflt;
}

TEST(producer_consumer_does_not_refault_its_slabs)
{
    /* on one CPU, as on a busy machine: the producer takes each batch in
     * while its slabs still hold the rest of the ring */
    cpu_set_t all, one;
    REQUIRE(sched_getaffinity(0, sizeof(all), &all) == 0);
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    REQUIRE(sched_setaffinity(0, sizeof(one), &one) == 0);
    long before = minor_faults();
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, produce, NULL) == 0);
    for (unsigned b = 0; b < XFER_BLOCKS / XFER_BATCH; b++) {
        void *batch[XFER_BATCH];
        pthread_mutex_lock(&xfer.lock);
        while (xfer.head == xfer.tail)
            pthread_cond_wait(&xfer.changed, &xfer.lock);
        memcpy(batch, xfer.ring[xfer.tail % XFER_RING], sizeof(batch));
        xfer.tail++;
        pthread_cond_broadcast(&xfer.changed);
        pthread_mutex_unlock(&xfer.lock);
        for (unsigned i = 0; i < XFER_BATCH; i++) {
            CHECK(batch[i] != NULL && ((unsigned char *)batch[i])[0] == 0x77);
            strata_free(batch[i]);
        }
    }
    pthread_join(t, NULL);
    long faults = minor_faults() - before;
    sched_setaffinity(0, sizeof(all), &all);
    printf("  %d blocks through a ring of %d x %d: %ld page faults\n", XFER_BLOCKS, XFER_RING,
           XFER_BATCH, faults);
    CHECK(faults < XFER_BLOCKS / 80); /* half of what purging at the take-in costs */
}

/* 48-byte blocks, 85 and a third a page, 1 in 256 kept and the rest freed
 * in address order: a page empties while the objects past its end, on the
 * next page, are still live, and some of those stay live. Every page no
 * survivor touches must go back all the same: strata's resident bytes
 * grow by at most the pages the survivors touch, plus 1 MiB (slab
 * descriptors, segment headers, the current slab). (Its own figure, from
 * mincore: the process's RSS moves by a megabyte or two more, run to run,
 * with pages of the C library and the kernel.) */
static int by_page(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return (x > y) - (x < y);
}

TEST(rss_pages_back_where_blocks_straddle_pages)
{
    size_t n = 16 * MIB / 48, kept = 0;
    void **p = malloc(n * sizeof(void *)); /* the C library's: not counted against strata */
    uintptr_t *pages = malloc(2 * (n / 256 + 1) * sizeof(uintptr_t));
    REQUIRE(p != NULL && pages != NULL);
    memset(p, 0, n * sizeof(void *)); /* resident before the baseline */
    strata_malloc_trim(0); /* what earlier tests left goes now, not during this one */
    size_t base = baseline();
    strata_malloc_stats st0, st1;
    strata_malloc_stats_get(&st0);
    for (size_t i = 0; i < n; i++) {
        p[i] = strata_malloc(48);
        REQUIRE(p[i] != NULL);
        memset(p[i], 0x3c, 48);
    }
    for (size_t i = 0; i < n; i++) {
        if (i % 256 == 0)
            p[kept++] = p[i];
        else
            strata_free(p[i]);
    }
    for (size_t i = 0; i < kept; i++) {
        pages[2 * i] = (uintptr_t)p[i] / PAGE;
        pages[2 * i + 1] = ((uintptr_t)p[i] + 47) / PAGE;
    }
    qsort(pages, 2 * kept, sizeof(uintptr_t), by_page);
    size_t touched = 0;
    for (size_t i = 0; i < 2 * kept; i++)
        touched += i == 0 || pages[i] != pages[i - 1];
    long over = (long)rss_bytes() - (long)base;
    strata_malloc_stats_get(&st1);
    long grown = (long)st1.resident_bytes - (long)st0.resident_bytes;
    printf("  %zu of %zu blocks kept, touching %zu pages (%zu KiB): strata's resident bytes "
           "%+ld KiB, the RSS %+ld KiB\n",
           kept, n, touched, touched * PAGE / 1024, grown / 1024, over / 1024);
    CHECK(grown <= (long)(touched * PAGE + MIB));
    for (size_t i = 0; i < kept; i++)
        strata_free(p[i]);
    free(pages);
    free(p);
}

/* ---- blocks of an exited thread, freed by the main thread ----------------------- */

static void *allocate_in_thread(void *arg)
{
    size_t *n = arg;
    *n = allocate(64 * MIB);
    return NULL;
}

TEST(rss_back_after_exited_thread_blocks_freed)
{
    size_t base = baseline();
    test_seed("exited thread");
    size_t n = 0;
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, allocate_in_thread, &n) == 0);
    pthread_join(t, NULL);
    REQUIRE(n > 0);
    size_t peak = rss_bytes();
    free_in_random_order(n);
    long waited = 0;
    size_t rss = wait_for_decay(bound(base), HEAVY, 15 * DECAY_MS, &waited);
    size_t after_decay = rss;
    int r = strata_malloc_trim(0);
    rss = rss_bytes();
    strata_malloc_stats s;
    strata_malloc_stats_get(&s);
    printf("  RSS %zu KiB at the start, %zu KiB with %zu blocks, %zu KiB %ld ms after the "
           "frees, %zu KiB after malloc_trim (%d); live %zu, resident %zu KiB\n",
           base / 1024, peak / 1024, n, after_decay / 1024, waited, rss / 1024, r, s.live_bytes,
           s.resident_bytes / 1024);
    CHECK(peak > base + 48 * MIB);
    CHECK(after_decay <= bound(base));
    CHECK(rss <= bound(base));
}

/* ---- a thread that frees all it allocated, then idles ---------------------------- */

/* Its heap's blocks kept for reuse must not pin their slabs while it
 * idles: nothing runs that heap's housekeeping until it allocates again. */
static volatile int idle_state; /* 1: freed everything, 2: may exit */

static void *free_all_then_idle(void *arg)
{
    size_t n = 0;
    while (n < MAX_BLOCKS / 2) {
        sizes[n] = (size_t)test_rand_range(16, 1040);
        blocks[n] = strata_malloc(sizes[n]);
        memset(blocks[n], 1, sizes[n]);
        n++;
    }
    *(size_t *)arg = rss_bytes();
    free_in_random_order(n);
    idle_state = 1;
    while (idle_state != 2)
        sleep_ms(5);
    return NULL;
}

TEST(rss_idle_thread_keeps_no_slabs)
{
    size_t base = baseline();
    test_seed("idle thread");
    size_t peak = 0;
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, free_all_then_idle, &peak) == 0);
    while (idle_state != 1)
        sleep_ms(5);
    sleep_ms(3 * DECAY_MS);
    size_t rss = rss_bytes();
    idle_state = 2;
    pthread_join(t, NULL);
    printf("  RSS %zu KiB at the start, %zu KiB with %d blocks, %zu KiB while the thread idles\n",
           base / 1024, peak / 1024, MAX_BLOCKS / 2, rss / 1024);
    CHECK(peak > base + 16 * MIB);
    CHECK(rss - base <= (peak - base) / 4);
}
