/* SPDX-License-Identifier: MIT */
/*
 * wl_churn_mt.c — churn in T threads at once, each with its own blocks
 * (default 50,000 per thread of 16–1024 B): every thread fills its slots,
 * then replaces random ones. No block crosses threads, so this measures
 * how the allocator scales when threads do not share, and its footprint
 * with several thread caches or heaps. Reports replacements per second
 * over all threads (all replacements over the longest thread's replacement
 * phase) and the fragmentation overhead, with peak live bytes summed over
 * the threads' own peaks (an upper bound of the true joint peak).
 */
#include "workload.h"

#include <pthread.h>

enum { O_THREADS, O_BLOCKS, O_OPS, O_MIN, O_MAX, O_SEED, O_N };

static struct wl_opt opts[O_N] = {
    [O_THREADS] = {"threads", 2, "threads"},
    [O_BLOCKS] = {"blocks", 50000, "live blocks per thread"},
    [O_OPS] = {"ops", 2500000, "replacements per thread"},
    [O_MIN] = {"min", 16, "smallest block, bytes"},
    [O_MAX] = {"max", 1024, "largest block, bytes"},
    [O_SEED] = {"seed", 1, "random seed"},
};

static void *worker(void *arg)
{
    wl_churn_run(arg);
    return NULL;
}

int main(int argc, char **argv)
{
    wl_parse(argc, argv, "Churn in several threads, each with its own blocks.", opts, O_N);
    size_t nt = (size_t)opts[O_THREADS].value;
    if (nt < 1 || nt > 1024 || opts[O_BLOCKS].value < 1 || opts[O_MIN].value < 1 ||
        opts[O_MAX].value < opts[O_MIN].value) {
        fprintf(stderr, "%s: need 1 <= threads <= 1024, blocks >= 1, 1 <= min <= max\n", argv[0]);
        return 2;
    }
    struct wl_churn *c = wl_map(nt * sizeof(*c));
    pthread_t *tid = wl_map(nt * sizeof(*tid));
    size_t nb = (size_t)opts[O_BLOCKS].value;
    for (size_t t = 0; t < nt; t++)
        c[t] = (struct wl_churn){.slots = wl_map(nb * sizeof(struct wl_slot)),
                                 .blocks = nb,
                                 .ops = (size_t)opts[O_OPS].value,
                                 .min = (size_t)opts[O_MIN].value,
                                 .max = (size_t)opts[O_MAX].value,
                                 .seed = (uint64_t)opts[O_SEED].value * 1000003u + t};
    size_t base = wl_sample(); /* the slots are resident already: they are not the allocator's */
    double t0 = wl_now();
    for (size_t t = 0; t < nt; t++) {
        if (pthread_create(&tid[t], NULL, worker, &c[t]) != 0) {
            fprintf(stderr, "%s: pthread_create failed\n", argv[0]);
            return 1;
        }
    }
    size_t peak_live = 0;
    double slowest = 0;
    for (size_t t = 0; t < nt; t++) {
        pthread_join(tid[t], NULL);
        peak_live += c[t].peak_live;
        if (c[t].seconds > slowest) slowest = c[t].seconds;
    }
    double total = wl_now() - t0;
    wl_put_str("workload", "churn-mt");
    for (int i = 0; i < O_N; i++)
        wl_put_int(opts[i].name, opts[i].value);
    wl_put_num("time_s", total);
    wl_put_num("churn_s", slowest);
    double ops = (double)nt * (double)opts[O_OPS].value;
    wl_put_num("ops_per_s", slowest > 0 ? ops / slowest : 0);
    wl_put_int("peak_live", (long long)peak_live);
    wl_put_num("frag", wl_frag(wl_rss_peak(), base, peak_live));
    wl_put_end(base);
    for (size_t t = 0; t < nt; t++)
        wl_unmap(c[t].slots, nb * sizeof(struct wl_slot));
    wl_unmap(c, nt * sizeof(*c));
    wl_unmap(tid, nt * sizeof(*tid));
    return 0;
}
