/* SPDX-License-Identifier: MIT */
/*
 * wl_realloc.c — growing and shrinking vectors. V vectors (default 4), in
 * turn one step each so their reallocs interleave, grow from 4 KiB by a
 * random factor of 1.1–1.6 per realloc, writing the new part as an append
 * would, up to a random target of 1–16 MiB; then shrink by halves back to
 * 4 KiB; for C cycles (default 30). An allocator that grows in place or
 * remaps pages wins over one that copies; shrinking shows whether the
 * freed tail goes back. Reports reallocs per second, peak live bytes (sum
 * of the vectors' sizes) and the fragmentation overhead.
 */
#include "workload.h"

#define START 4096

enum { O_VECTORS, O_CYCLES, O_MIN, O_MAX, O_SEED, O_N };

static struct wl_opt opts[O_N] = {
    [O_VECTORS] = {"vectors", 4, "vectors growing at once"},
    [O_CYCLES] = {"cycles", 30, "grow-and-shrink cycles per vector"},
    [O_MIN] = {"min", 1048576, "smallest target size, bytes"},
    [O_MAX] = {"max", 16777216, "largest target size, bytes"},
    [O_SEED] = {"seed", 1, "random seed"},
};

struct vec {
    char *p;
    size_t n, target;
    int growing; /* 1 growing, 0 shrinking */
    long long cycles_left;
};

/* One realloc step of v; returns the change in its size. */
static long long step(struct vec *v, uint64_t *rng, size_t *reallocs)
{
    size_t old = v->n, n;
    if (v->growing) {
        n = old + old * wl_range(rng, 10, 60) / 100;
        if (n >= v->target) n = v->target, v->growing = 0;
    } else {
        n = old / 2 > START ? old / 2 : START;
        if (n == START) {
            v->growing = 1, v->cycles_left--;
            v->target = wl_range(rng, (uint64_t)opts[O_MIN].value, (uint64_t)opts[O_MAX].value);
        }
    }
    char *p = realloc(v->p, n);
    if (!p) {
        fprintf(stderr, "wl_realloc: realloc(%zu) failed\n", n);
        exit(1);
    }
    if (n > old) memset(p + old, (int)(n & 0x7f), n - old);
    v->p = p, v->n = n;
    (*reallocs)++;
    return (long long)n - (long long)old;
}

int main(int argc, char **argv)
{
    wl_parse(argc, argv, "Vectors grown by realloc to 1-16 MiB and shrunk again.", opts, O_N);
    size_t nv = (size_t)opts[O_VECTORS].value;
    if (nv < 1 || opts[O_MIN].value < START * 2 || opts[O_MAX].value < opts[O_MIN].value) {
        fprintf(stderr, "%s: need vectors >= 1 and %d <= min <= max\n", argv[0], START * 2);
        return 2;
    }
    struct vec *v = wl_map(nv * sizeof(*v));
    uint64_t rng = (uint64_t)opts[O_SEED].value;
    size_t base = wl_sample(), live = 0, peak_live = 0, reallocs = 0;
    double t0 = wl_now();
    for (size_t i = 0; i < nv; i++) {
        v[i] = (struct vec){wl_malloc(START), START, 0, 1, opts[O_CYCLES].value};
        memset(v[i].p, 1, START);
        v[i].target = wl_range(&rng, (uint64_t)opts[O_MIN].value, (uint64_t)opts[O_MAX].value);
        live += START;
    }
    for (bool busy = true; busy;) {
        busy = false;
        for (size_t i = 0; i < nv; i++) {
            if (v[i].cycles_left <= 0) continue;
            busy = true;
            live = (size_t)((long long)live + step(&v[i], &rng, &reallocs));
            if (live > peak_live) peak_live = live;
            wl_sample();
        }
    }
    double t = wl_now() - t0;
    for (size_t i = 0; i < nv; i++)
        free(v[i].p);
    wl_put_str("workload", "realloc");
    for (int i = 0; i < O_N; i++)
        wl_put_int(opts[i].name, opts[i].value);
    wl_put_int("reallocs", (long long)reallocs);
    wl_put_num("time_s", t);
    wl_put_num("ops_per_s", t > 0 ? (double)reallocs / t : 0);
    wl_put_int("peak_live", (long long)peak_live);
    wl_put_num("frag", wl_frag(wl_rss_peak(), base, peak_live));
    wl_put_end(base);
    wl_unmap(v, nv * sizeof(*v));
    return 0;
}
