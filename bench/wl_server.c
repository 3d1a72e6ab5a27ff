/* SPDX-License-Identifier: MIT */
/*
 * wl_server.c — a larson-like server: T worker threads, each owning a range
 * of slots (default 10,000 blocks of 16–1024 B per worker), replace random
 * slots of their range with new blocks. After its rounds a worker exits and
 * a new thread takes over its range, so the blocks it left are freed by a
 * thread other than their birth thread — after that thread is gone. The
 * main thread fills every slot first, so the first generation frees its
 * blocks too. Generations run one after another (all workers of one
 * generation, then the next). Reports replacements per second over the
 * generations (thread start and exit included), peak live bytes (measured
 * at generation boundaries) and the fragmentation overhead.
 */
#include "workload.h"

#include <pthread.h>

enum { O_THREADS, O_SLOTS, O_ROUNDS, O_GENS, O_MIN, O_MAX, O_SEED, O_N };

static struct wl_opt opts[O_N] = {
    [O_THREADS] = {"threads", 2, "workers alive at a time"},
    [O_SLOTS] = {"slots", 10000, "blocks per worker"},
    [O_ROUNDS] = {"rounds", 200000, "replacements per worker before it exits"},
    [O_GENS] = {"generations", 10, "workers each range sees, one after another"},
    [O_MIN] = {"min", 16, "smallest block, bytes"},
    [O_MAX] = {"max", 1024, "largest block, bytes"},
    [O_SEED] = {"seed", 1, "random seed"},
};

struct worker {
    struct wl_slot *s; /* this worker's range */
    size_t n;
    uint64_t seed;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    uint64_t rng = w->seed;
    size_t lo = (size_t)opts[O_MIN].value, hi = (size_t)opts[O_MAX].value;
    for (long long r = 0; r < opts[O_ROUNDS].value; r++) {
        struct wl_slot *e = &w->s[wl_range(&rng, 0, w->n - 1)];
        free(e->p);
        e->n = wl_range(&rng, lo, hi);
        e->p = wl_malloc(e->n);
        wl_touch(e->p, e->n);
        if (r % 1000 == 0) wl_sample();
    }
    return NULL;
}

static size_t live_bytes(const struct wl_slot *s, size_t n)
{
    size_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += s[i].n;
    return sum;
}

int main(int argc, char **argv)
{
    wl_parse(argc, argv, "Workers replace random blocks, exit, and successors inherit them.", opts,
             O_N);
    size_t nt = (size_t)opts[O_THREADS].value, ns = (size_t)opts[O_SLOTS].value;
    if (nt < 1 || nt > 1024 || ns < 1 || opts[O_MIN].value < 1 ||
        opts[O_MAX].value < opts[O_MIN].value) {
        fprintf(stderr, "%s: need 1 <= threads <= 1024, slots >= 1, 1 <= min <= max\n", argv[0]);
        return 2;
    }
    struct wl_slot *s = wl_map(nt * ns * sizeof(*s));
    struct worker *w = wl_map(nt * sizeof(*w));
    pthread_t *tid = wl_map(nt * sizeof(*tid));
    size_t base = wl_sample();
    uint64_t rng = (uint64_t)opts[O_SEED].value;
    for (size_t i = 0; i < nt * ns; i++) {
        s[i].n = wl_range(&rng, (uint64_t)opts[O_MIN].value, (uint64_t)opts[O_MAX].value);
        s[i].p = wl_malloc(s[i].n);
        wl_touch(s[i].p, s[i].n);
        if (i % 1000 == 0) wl_sample();
    }
    size_t peak_live = live_bytes(s, nt * ns);
    double t0 = wl_now();
    for (long long g = 0; g < opts[O_GENS].value; g++) {
        for (size_t t = 0; t < nt; t++) {
            w[t] = (struct worker){s + t * ns, ns, wl_rand(&rng)};
            if (pthread_create(&tid[t], NULL, work, &w[t]) != 0) {
                fprintf(stderr, "%s: pthread_create failed\n", argv[0]);
                return 1;
            }
        }
        for (size_t t = 0; t < nt; t++)
            pthread_join(tid[t], NULL);
        size_t live = live_bytes(s, nt * ns);
        if (live > peak_live) peak_live = live;
    }
    double t = wl_now() - t0;
    wl_sample();
    for (size_t i = 0; i < nt * ns; i++)
        free(s[i].p);
    wl_put_str("workload", "server");
    for (int i = 0; i < O_N; i++)
        wl_put_int(opts[i].name, opts[i].value);
    wl_put_num("time_s", t);
    double ops = (double)nt * (double)opts[O_ROUNDS].value * (double)opts[O_GENS].value;
    wl_put_num("ops_per_s", t > 0 ? ops / t : 0);
    wl_put_int("peak_live", (long long)peak_live);
    wl_put_num("frag", wl_frag(wl_rss_peak(), base, peak_live));
    wl_put_end(base);
    wl_unmap(s, nt * ns * sizeof(*s));
    wl_unmap(w, nt * sizeof(*w));
    wl_unmap(tid, nt * sizeof(*tid));
    return 0;
}
