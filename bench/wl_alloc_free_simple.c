/* SPDX-License-Identifier: MIT */
/*
 * wl_alloc_free_simple.c — the fast path: a tight loop of malloc(size)
 * followed by free, at one fixed size (or --batch blocks allocated, then
 * freed in the same order). Nothing else happens in the loop, so the time
 * per pair is the allocator's fast-path latency. Reports pairs per second
 * and nanoseconds per pair.
 *
 * Instruction counts: run it under `valgrind --tool=callgrind` with two
 * --iters values and divide the difference of the instruction counts by
 * the difference of the iterations (`strata bench --callgrind` does this
 * for every allocator); start-up costs cancel out.
 */
#include "workload.h"

#define MAX_BATCH 4096

enum { O_SIZE, O_ITERS, O_BATCH, O_SEED, O_N };

static struct wl_opt opts[O_N] = {
    [O_SIZE] = {"size", 64, "block size, bytes"},
    [O_ITERS] = {"iters", 20000000, "malloc+free pairs"},
    [O_BATCH] = {"batch", 1, "blocks allocated before they are freed (1..4096)"},
    [O_SEED] = {"seed", 1, "random seed (unused: the workload is deterministic)"},
};

int main(int argc, char **argv)
{
    wl_parse(argc, argv, "Tight malloc/free loops at a fixed size (the fast path).", opts, O_N);
    size_t size = (size_t)opts[O_SIZE].value, batch = (size_t)opts[O_BATCH].value;
    if (batch < 1 || batch > MAX_BATCH) {
        fprintf(stderr, "%s: need 1 <= batch <= %d\n", argv[0], MAX_BATCH);
        return 2;
    }
    void *p[MAX_BATCH];
    size_t rounds = (size_t)opts[O_ITERS].value / batch, base = wl_sample();
    double t0 = wl_now();
    for (size_t r = 0; r < rounds; r++) {
        for (size_t b = 0; b < batch; b++) {
            p[b] = malloc(size);
            wl_keep(p[b]);
        }
        for (size_t b = 0; b < batch; b++)
            free(p[b]);
    }
    double t = wl_now() - t0;
    wl_sample();
    double pairs = (double)rounds * (double)batch;
    wl_put_str("workload", "alloc-free-simple");
    for (int i = 0; i < O_N; i++)
        wl_put_int(opts[i].name, opts[i].value);
    wl_put_num("time_s", t);
    wl_put_num("ops_per_s", t > 0 ? pairs / t : 0);
    wl_put_num("ns_per_pair", pairs > 0 ? t * 1e9 / pairs : 0);
    wl_put_end(base);
    return 0;
}
