/* SPDX-License-Identifier: MIT */
/*
 * wl_xthread.c — producer/consumer: producer threads allocate blocks
 * (random size, default 16–512 B), write them and pass them in batches
 * through a queue to a consumer thread, which reads and frees them. Every
 * free is a remote free: the block dies in a thread other than its birth
 * thread. Threads come in pairs (one producer, one consumer, their own
 * single-producer single-consumer ring of batches); --threads 2 is one
 * pair. The ring bounds the blocks in flight, so live bytes stay small and
 * the RSS figure shows how long freed blocks take to become reusable.
 * Reports blocks per second (all pairs) and the peak RSS.
 */
#include "workload.h"

#include <pthread.h>
#include <sched.h>

#define BATCH 64  /* blocks per queue entry */
#define RING 256  /* entries per ring */

enum { O_THREADS, O_OPS, O_MIN, O_MAX, O_SEED, O_N };

static struct wl_opt opts[O_N] = {
    [O_THREADS] = {"threads", 2, "threads (pairs of producer and consumer)"},
    [O_OPS] = {"ops", 5000000, "blocks per producer"},
    [O_MIN] = {"min", 16, "smallest block, bytes"},
    [O_MAX] = {"max", 512, "largest block, bytes"},
    [O_SEED] = {"seed", 1, "random seed"},
};

struct entry {
    void *p[BATCH];
    uint32_t n[BATCH];
};

/* One producer/consumer pair: head is written by the producer only, tail
 * by the consumer only, each on its own cache line. */
struct pair {
    _Alignas(64) _Atomic size_t head;
    _Alignas(64) _Atomic size_t tail;
    _Alignas(64) _Atomic size_t freed_bytes;
    _Alignas(64) uint64_t seed;
    size_t made_bytes, peak_live;
    struct entry ring[RING];
};

static void wait_a_little(unsigned *spins)
{
    if (++*spins > 64) sched_yield();
}

static void *producer(void *arg)
{
    struct pair *q = arg;
    uint64_t rng = q->seed;
    size_t batches = ((size_t)opts[O_OPS].value + BATCH - 1) / BATCH;
    for (size_t b = 0; b < batches; b++) {
        unsigned spins = 0;
        size_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
        while (h - atomic_load_explicit(&q->tail, memory_order_acquire) >= RING)
            wait_a_little(&spins);
        struct entry *e = &q->ring[h % RING];
        for (int i = 0; i < BATCH; i++) {
            e->n[i] = (uint32_t)wl_range(&rng, (uint64_t)opts[O_MIN].value, (uint64_t)opts[O_MAX].value);
            e->p[i] = wl_malloc(e->n[i]);
            wl_touch(e->p[i], e->n[i]);
            q->made_bytes += e->n[i];
        }
        atomic_store_explicit(&q->head, h + 1, memory_order_release);
        size_t live = q->made_bytes - atomic_load_explicit(&q->freed_bytes, memory_order_relaxed);
        if (live > q->peak_live) q->peak_live = live;
        if (b % 16 == 0) wl_sample();
    }
    return NULL;
}

static void *consumer(void *arg)
{
    struct pair *q = arg;
    size_t batches = ((size_t)opts[O_OPS].value + BATCH - 1) / BATCH;
    for (size_t b = 0; b < batches; b++) {
        unsigned spins = 0;
        while (atomic_load_explicit(&q->head, memory_order_acquire) == b)
            wait_a_little(&spins);
        struct entry *e = &q->ring[b % RING];
        size_t bytes = 0;
        for (int i = 0; i < BATCH; i++) {
            (void)((volatile char *)e->p[i])[e->n[i] - 1]; /* read it, as a consumer would */
            bytes += e->n[i];
            free(e->p[i]);
        }
        atomic_fetch_add_explicit(&q->freed_bytes, bytes, memory_order_relaxed);
        atomic_store_explicit(&q->tail, b + 1, memory_order_release);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    wl_parse(argc, argv, "Producers allocate, consumers free: every free is remote.", opts, O_N);
    if (opts[O_THREADS].value < 2 || opts[O_THREADS].value > 1024 || opts[O_MIN].value < 1 ||
        opts[O_MAX].value < opts[O_MIN].value || opts[O_MAX].value > UINT32_MAX) {
        fprintf(stderr, "%s: need 2 <= threads <= 1024 and 1 <= min <= max < 4 GiB\n", argv[0]);
        return 2;
    }
    size_t np = (size_t)opts[O_THREADS].value / 2;
    struct pair *q = wl_map(np * sizeof(*q));
    pthread_t *tid = wl_map(2 * np * sizeof(*tid));
    size_t base = wl_sample();
    double t0 = wl_now();
    for (size_t i = 0; i < np; i++) {
        q[i].seed = (uint64_t)opts[O_SEED].value * 1000003u + i;
        if (pthread_create(&tid[2 * i], NULL, producer, &q[i]) ||
            pthread_create(&tid[2 * i + 1], NULL, consumer, &q[i])) {
            fprintf(stderr, "%s: pthread_create failed\n", argv[0]);
            return 1;
        }
    }
    size_t peak_live = 0;
    for (size_t i = 0; i < 2 * np; i++)
        pthread_join(tid[i], NULL);
    double t = wl_now() - t0;
    for (size_t i = 0; i < np; i++)
        peak_live += q[i].peak_live;
    wl_sample();
    wl_put_str("workload", "xthread");
    for (int i = 0; i < O_N; i++)
        wl_put_int(opts[i].name, opts[i].value);
    wl_put_int("pairs", (long long)np);
    wl_put_num("time_s", t);
    size_t blocks = np * (((size_t)opts[O_OPS].value + BATCH - 1) / BATCH) * BATCH;
    wl_put_num("ops_per_s", t > 0 ? (double)blocks / t : 0);
    wl_put_int("peak_live", (long long)peak_live);
    wl_put_end(base);
    wl_unmap(q, np * sizeof(*q));
    wl_unmap(tid, 2 * np * sizeof(*tid));
    return 0;
}
