/* SPDX-License-Identifier: MIT */
/*
 * threads.c — a threaded malloc workload for tests/tools/preload.sh, which
 * runs it with and without libstrata.so preloaded and compares the output.
 * Run alone (as the ctest test preload/threads) it checks itself the same
 * way on whatever malloc it has and exits 0 when everything held.
 *
 * What it does: worker threads allocate with every entry point (malloc,
 * calloc, realloc, posix_memalign, aligned_alloc, memalign, valloc) from
 * tiny to over a megabyte, fill each block with a pattern and verify it
 * before freeing; a share of the blocks is handed to the next worker, which
 * verifies and frees it (a free from a thread that does not own the block);
 * each worker leaves blocks behind that main frees after the worker is gone;
 * thread-specific-data destructors allocate and free on every destructor
 * round, after the C library may already have taken the thread's own heap
 * apart; and many short-lived threads each allocate once and exit. The
 * output depends only on the fixed seeds, never on timing.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WORKERS 4
#define STEPS 20000
#define SLOTS 256
#define LEFT_BEHIND 64
#define SHORT_THREADS 128
#define DTOR_ROUNDS 3

struct block {
    unsigned char *p;
    size_t size;
    uint32_t tag;
};

/* A handoff queue per worker: blocks another worker allocated. */
struct queue {
    pthread_mutex_t lock;
    struct block items[4096];
    size_t count;
};

struct worker {
    int id;
    uint64_t rng;
    struct block slots[SLOTS];
    struct block left[LEFT_BEHIND]; /* freed by main after the join */
    unsigned long allocs, sent;
    unsigned long failures;
};

static struct queue queues[WORKERS];
static unsigned long received[WORKERS];
static pthread_key_t dtor_key;
static unsigned long dtor_blocks; /* blocks the destructors allocated and verified */
static pthread_mutex_t dtor_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long failures;

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static unsigned char pattern(uint32_t tag, size_t i)
{
    return (unsigned char)(tag * 131u + (uint32_t)i * 7u + (uint32_t)(i >> 8));
}

/* Every byte of small blocks, a sparse sample of big ones (time). */
static size_t stride(size_t size)
{
    return size <= 4096 ? 1 : 61;
}

static void fill(unsigned char *p, size_t size, uint32_t tag)
{
    for (size_t i = 0; i < size; i += stride(size))
        p[i] = pattern(tag, i);
    if (size > 0)
        p[size - 1] = pattern(tag, size - 1);
}

/* The first `keep` bytes of a block of `size` bytes filled by fill(). */
static int verify_prefix(const unsigned char *p, size_t size, size_t keep, uint32_t tag)
{
    for (size_t i = 0; i < keep; i += stride(size))
        if (p[i] != pattern(tag, i))
            return 0;
    return keep < size || size == 0 || p[size - 1] == pattern(tag, size - 1);
}

static int verify(const unsigned char *p, size_t size, uint32_t tag)
{
    return verify_prefix(p, size, size, tag);
}

/* Mostly small sizes, some medium, a few large. */
static size_t pick_size(uint64_t *rng)
{
    uint64_t r = next_rand(rng);
    unsigned kind = (unsigned)(r % 100);
    r >>= 8;
    if (kind < 80)
        return 1 + r % 512;
    if (kind < 97)
        return 512 + r % (64 * 1024);
    return 256 * 1024 + r % (1536 * 1024);
}

static void *alloc_with(unsigned how, size_t size)
{
    void *p = NULL;
    switch (how) {
    case 0:
        return calloc(1, size);
    case 1:
        return posix_memalign(&p, (size_t)64 << (size % 4), size) == 0 ? p : NULL;
    case 2:
        return aligned_alloc(256, (size + 255) & ~(size_t)255);
    case 3:
        return memalign(4096, size);
    case 4:
        return size < 8192 ? valloc(size) : malloc(size);
    default:
        return malloc(size);
    }
}

/* Allocation with the alignment and zeroing each entry point promises. */
static unsigned char *checked_alloc(struct worker *w, size_t size)
{
    unsigned how = (unsigned)(next_rand(&w->rng) % 12);
    unsigned char *p = alloc_with(how, size);
    size_t align = how == 1 ? (size_t)64 << (size % 4) : how == 2 ? 256 : how == 3 ? 4096 : 16;
    while ((how == 0 || how >= 5) && align > size)
        align /= 2; /* C only promises the alignment of what fits in `size` bytes */
    if (how == 4 && size < 8192)
        align = (size_t)sysconf(_SC_PAGESIZE);
    if (p == NULL || (uintptr_t)p % align != 0 || malloc_usable_size(p) < size)
        w->failures++;
    if (p != NULL && how == 0)
        for (size_t i = 0; i < size; i += stride(size))
            w->failures += p[i] != 0;
    w->allocs++;
    return p;
}

static void release(struct worker *w, struct block *b)
{
    if (b->p == NULL)
        return;
    if (!verify(b->p, b->size, b->tag))
        w->failures++;
    free(b->p);
    b->p = NULL;
}

/* Grow or shrink a block; its kept prefix must survive. */
static void resize(struct worker *w, struct block *b, size_t size)
{
    unsigned char *q = realloc(b->p, size);
    if (q == NULL) {
        w->failures++;
        return;
    }
    size_t keep = b->size < size ? b->size : size;
    if (!verify_prefix(q, b->size, keep, b->tag))
        w->failures++;
    b->p = q;
    b->size = size;
    fill(q, size, b->tag);
}

static void send_to_next(struct worker *w, struct block *b)
{
    struct queue *q = &queues[(w->id + 1) % WORKERS];
    pthread_mutex_lock(&q->lock);
    if (q->count < sizeof(q->items) / sizeof(q->items[0])) {
        q->items[q->count++] = *b;
        b->p = NULL;
        w->sent++;
    }
    pthread_mutex_unlock(&q->lock);
    release(w, b); /* when the queue was full */
}

/* Free what the previous worker sent: blocks this thread does not own. */
static void drain(struct worker *w, int id)
{
    struct queue *q = &queues[id];
    pthread_mutex_lock(&q->lock);
    for (size_t i = 0; i < q->count; i++) {
        release(w, &q->items[i]);
        received[id]++;
    }
    q->count = 0;
    pthread_mutex_unlock(&q->lock);
}

static void step(struct worker *w, uint32_t tag)
{
    struct block *b = &w->slots[next_rand(&w->rng) % SLOTS];
    unsigned op = (unsigned)(next_rand(&w->rng) % 10);
    if (b->p != NULL && op < 2) {
        resize(w, b, pick_size(&w->rng));
    } else if (b->p != NULL && op < 4) {
        send_to_next(w, b);
    } else if (b->p != NULL) {
        release(w, b);
    } else {
        b->size = pick_size(&w->rng);
        b->tag = tag;
        b->p = checked_alloc(w, b->size);
        if (b->p != NULL)
            fill(b->p, b->size, tag);
    }
}

/* Thread-specific-data destructor: allocates and frees on each round,
 * and re-arms itself so that it runs again in a later round. */
static void dtor(void *v)
{
    struct block *b = v;
    int ok = verify(b->p, b->size, b->tag);
    uint32_t round = b->tag + 1;
    free(b->p);
    free(b);
    pthread_mutex_lock(&dtor_lock);
    dtor_blocks++;
    failures += !ok;
    pthread_mutex_unlock(&dtor_lock);
    if (round >= DTOR_ROUNDS)
        return;
    b = malloc(sizeof(*b));
    b->size = 100 + round * 1000;
    b->tag = round;
    b->p = malloc(b->size);
    fill(b->p, b->size, b->tag);
    pthread_setspecific(dtor_key, b);
}

static void arm_dtor(void)
{
    struct block *b = malloc(sizeof(*b));
    b->size = 40;
    b->tag = 0;
    b->p = malloc(b->size);
    fill(b->p, b->size, 0);
    pthread_setspecific(dtor_key, b);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    arm_dtor();
    for (uint32_t i = 0; i < STEPS; i++) {
        step(w, i);
        if (i % 512 == 0)
            drain(w, w->id);
    }
    drain(w, w->id);
    for (int i = 0; i < LEFT_BEHIND; i++) {
        w->left[i] = w->slots[i];
        w->slots[i].p = NULL;
    }
    for (int i = LEFT_BEHIND; i < SLOTS; i++)
        release(w, &w->slots[i]);
    return NULL;
}

/* One allocation that outlives its short-lived thread. */
static void *short_main(void *arg)
{
    size_t n = (size_t)(uintptr_t)arg;
    unsigned char *p = malloc(16 + n * 8);
    if (p != NULL)
        fill(p, 16 + n * 8, (uint32_t)n);
    arm_dtor();
    return p;
}

static void run_short_threads(void)
{
    unsigned long ok = 0;
    for (size_t i = 0; i < SHORT_THREADS; i++) {
        pthread_t t;
        void *p = NULL;
        if (pthread_create(&t, NULL, short_main, (void *)(uintptr_t)i) != 0 ||
            pthread_join(t, &p) != 0) {
            failures++;
            continue;
        }
        ok += p != NULL && verify(p, 16 + i * 8, (uint32_t)i);
        free(p);
    }
    printf("short-lived threads: %lu of %d blocks intact after their thread exited\n", ok,
           SHORT_THREADS);
    failures += ok != SHORT_THREADS;
}

static int run_workers(void)
{
    static struct worker w[WORKERS];
    pthread_t t[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        pthread_mutex_init(&queues[i].lock, NULL);
        w[i].id = i;
        w[i].rng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
    }
    for (int i = 0; i < WORKERS; i++)
        if (pthread_create(&t[i], NULL, worker_main, &w[i]) != 0)
            return -1;
    for (int i = 0; i < WORKERS; i++)
        pthread_join(t[i], NULL);
    unsigned long sent = 0, got = 0;
    for (int i = 0; i < WORKERS; i++) {
        drain(&w[i], i);
        for (int j = 0; j < LEFT_BEHIND; j++)
            release(&w[i], &w[i].left[j]); /* the owner thread is gone */
        printf("worker %d: %lu allocations\n", i, w[i].allocs);
        sent += w[i].sent;
        got += received[i];
        failures += w[i].failures;
    }
    printf("handed to another thread: %lu, freed there or by main: %lu\n", sent, got);
    failures += sent != got;
    return 0;
}

int main(void)
{
    if (pthread_key_create(&dtor_key, dtor) != 0 || run_workers() != 0) {
        fprintf(stderr, "threads: cannot start threads: %s\n", strerror(errno));
        return 1;
    }
    run_short_threads();
    unsigned long expect = (WORKERS + SHORT_THREADS) * DTOR_ROUNDS;
    printf("destructor rounds: %lu blocks allocated and verified (expected %lu)\n", dtor_blocks,
           expect);
    failures += dtor_blocks != expect;
    if (failures != 0) {
        printf("FAILED: %lu checks\n", failures);
        return 1;
    }
    printf("threads: ok\n");
    return 0;
}
