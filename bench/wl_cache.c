/* SPDX-License-Identifier: MIT */
/*
 * wl_cache.c — false sharing. T threads each write heavily into small
 * objects (default 8 B); when the allocator gives two threads' objects the
 * same 64-byte cache line, every write bounces the line between cores and
 * the phase runs many times slower. Two phases:
 *   active   each thread allocates its own object, writes it, frees it,
 *            again and again: do threads' fresh objects share lines?
 *   passive  the main thread allocates one object per thread, side by
 *            side (they do share lines); each thread frees the one it was
 *            given and then works as in the active phase: does the
 *            allocator hand a thread back the freed neighbour of another
 *            thread's object?
 * Reports the time of each phase and writes per second over both.
 */
#include "workload.h"

#include <pthread.h>

enum { O_THREADS, O_SIZE, O_ITERS, O_WRITES, O_SEED, O_N };

static struct wl_opt opts[O_N] = {
    [O_THREADS] = {"threads", 2, "threads"},
    [O_SIZE] = {"size", 8, "object size, bytes"},
    [O_ITERS] = {"iters", 20000, "objects each thread allocates and frees per phase"},
    [O_WRITES] = {"writes", 1000, "writes to every byte of each object"},
    [O_SEED] = {"seed", 1, "random seed (unused: the workload is deterministic)"},
};

struct worker {
    char *given; /* passive phase: the object main allocated for this thread */
    pthread_t tid;
};

static void hammer(size_t size)
{
    for (long long i = 0; i < opts[O_ITERS].value; i++) {
        volatile char *p = wl_malloc(size);
        for (long long w = 0; w < opts[O_WRITES].value; w++)
            for (size_t b = 0; b < size; b++)
                p[b] = (char)(p[b] + 1);
        free((void *)p);
    }
}

static void *work(void *arg)
{
    struct worker *w = arg;
    if (w->given) free(w->given);
    hammer((size_t)opts[O_SIZE].value);
    return NULL;
}

/* Run one phase with every thread; returns its wall time. */
static double phase(struct worker *w, size_t nt, bool passive)
{
    for (size_t t = 0; t < nt; t++)
        w[t].given = passive ? wl_malloc((size_t)opts[O_SIZE].value) : NULL;
    double t0 = wl_now();
    for (size_t t = 0; t < nt; t++)
        if (pthread_create(&w[t].tid, NULL, work, &w[t]) != 0) {
            fprintf(stderr, "wl_cache: pthread_create failed\n");
            exit(1);
        }
    for (size_t t = 0; t < nt; t++)
        pthread_join(w[t].tid, NULL);
    return wl_now() - t0;
}

int main(int argc, char **argv)
{
    wl_parse(argc, argv, "False sharing: threads write small objects heavily.", opts, O_N);
    size_t nt = (size_t)opts[O_THREADS].value;
    if (nt < 1 || nt > 1024 || opts[O_SIZE].value < 1) {
        fprintf(stderr, "%s: need 1 <= threads <= 1024 and size >= 1\n", argv[0]);
        return 2;
    }
    struct worker *w = wl_map(nt * sizeof(*w));
    size_t base = wl_sample();
    double active = phase(w, nt, false);
    double passive = phase(w, nt, true);
    wl_sample();
    wl_put_str("workload", "cache");
    for (int i = 0; i < O_N; i++)
        wl_put_int(opts[i].name, opts[i].value);
    double t = active + passive;
    wl_put_num("time_s", t);
    wl_put_num("active_s", active);
    wl_put_num("passive_s", passive);
    double writes = 2.0 * (double)nt * (double)opts[O_ITERS].value * (double)opts[O_WRITES].value *
                    (double)opts[O_SIZE].value;
    wl_put_num("ops_per_s", t > 0 ? writes / t : 0);
    wl_put_end(base);
    wl_unmap(w, nt * sizeof(*w));
    return 0;
}
