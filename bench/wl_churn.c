/* SPDX-License-Identifier: MIT */
/*
 * wl_churn.c — the classic churn workload of `strata bench`: a set of live
 * blocks of random size (default 100,000 of 16–1024 B), then, many times,
 * one random block freed and a new one of random size allocated in its
 * place. Reports replacements per second and the fragmentation overhead:
 * (peak RSS − RSS at start) / peak live bytes − 1, live bytes being the sum
 * of the requested sizes. One thread; churn-mt is the threaded variant.
 */
#include "workload.h"

enum { O_BLOCKS, O_OPS, O_MIN, O_MAX, O_SEED, O_N };

static struct wl_opt opts[O_N] = {
    [O_BLOCKS] = {"blocks", 100000, "live blocks"},
    [O_OPS] = {"ops", 5000000, "replacements (one free + one malloc each)"},
    [O_MIN] = {"min", 16, "smallest block, bytes"},
    [O_MAX] = {"max", 1024, "largest block, bytes"},
    [O_SEED] = {"seed", 1, "random seed"},
};

int main(int argc, char **argv)
{
    wl_parse(argc, argv, "Random free/malloc replacements among live blocks.", opts, O_N);
    if (opts[O_BLOCKS].value < 1 || opts[O_MIN].value < 1 || opts[O_MAX].value < opts[O_MIN].value) {
        fprintf(stderr, "%s: need blocks >= 1 and 1 <= min <= max\n", argv[0]);
        return 2;
    }
    struct wl_churn c = {
        .slots = wl_map((size_t)opts[O_BLOCKS].value * sizeof(struct wl_slot)),
        .blocks = (size_t)opts[O_BLOCKS].value,
        .ops = (size_t)opts[O_OPS].value,
        .min = (size_t)opts[O_MIN].value,
        .max = (size_t)opts[O_MAX].value,
        .seed = (uint64_t)opts[O_SEED].value,
    };
    size_t base = wl_sample(); /* the slots are resident already: they are not the allocator's */
    wl_churn_run(&c);
    wl_put_str("workload", "churn");
    for (int i = 0; i < O_N; i++)
        wl_put_int(opts[i].name, opts[i].value);
    wl_put_num("time_s", c.seconds);
    wl_put_num("ops_per_s", c.seconds > 0 ? (double)c.ops / c.seconds : 0);
    wl_put_int("peak_live", (long long)c.peak_live);
    wl_put_num("frag", wl_frag(wl_rss_peak(), base, c.peak_live));
    wl_put_end(base);
    wl_unmap(c.slots, c.blocks * sizeof(struct wl_slot));
    return 0;
}
