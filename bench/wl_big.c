/* SPDX-License-Identifier: MIT */
/*
 * wl_big.c — large blocks: a few live slots (default 4) each replaced, at
 * random, by a new block of 256 KiB to 64 MiB (log-uniform: every power of
 * two equally likely), every page of which is written. This is the domain
 * of mmap: an allocator that caches freed large blocks saves page faults
 * (time) and pays in resident memory; one that unmaps at once does the
 * opposite. Reports blocks per second, peak live bytes and the
 * fragmentation overhead.
 */
#include "workload.h"

enum { O_OPS, O_LIVE, O_MIN, O_MAX, O_SEED, O_N };

static struct wl_opt opts[O_N] = {
    [O_OPS] = {"ops", 300, "blocks allocated, touched and freed"},
    [O_LIVE] = {"live", 4, "blocks live at a time"},
    [O_MIN] = {"min", 262144, "smallest block, bytes"},
    [O_MAX] = {"max", 67108864, "largest block, bytes"},
    [O_SEED] = {"seed", 1, "random seed"},
};

int main(int argc, char **argv)
{
    wl_parse(argc, argv, "Blocks of 256 KiB to 64 MiB allocated, touched and freed.", opts, O_N);
    size_t nl = (size_t)opts[O_LIVE].value;
    if (nl < 1 || opts[O_MIN].value < 1 || opts[O_MAX].value < opts[O_MIN].value) {
        fprintf(stderr, "%s: need live >= 1 and 1 <= min <= max\n", argv[0]);
        return 2;
    }
    struct wl_slot *s = wl_map(nl * sizeof(*s));
    uint64_t rng = (uint64_t)opts[O_SEED].value;
    size_t base = wl_sample(), live = 0, peak_live = 0;
    double t0 = wl_now();
    for (long long op = 0; op < opts[O_OPS].value; op++) {
        struct wl_slot *e = &s[wl_range(&rng, 0, nl - 1)];
        if (e->p) free(e->p), live -= e->n;
        e->n = wl_log_range(&rng, (uint64_t)opts[O_MIN].value, (uint64_t)opts[O_MAX].value);
        e->p = wl_malloc(e->n);
        wl_touch(e->p, e->n);
        live += e->n;
        if (live > peak_live) peak_live = live;
        wl_sample();
    }
    for (size_t i = 0; i < nl; i++)
        free(s[i].p);
    double t = wl_now() - t0;
    wl_put_str("workload", "big");
    for (int i = 0; i < O_N; i++)
        wl_put_int(opts[i].name, opts[i].value);
    wl_put_num("time_s", t);
    wl_put_num("ops_per_s", t > 0 ? (double)opts[O_OPS].value / t : 0);
    wl_put_int("peak_live", (long long)peak_live);
    wl_put_num("frag", wl_frag(wl_rss_peak(), base, peak_live));
    wl_put_end(base);
    wl_unmap(s, nl * sizeof(*s));
    return 0;
}
