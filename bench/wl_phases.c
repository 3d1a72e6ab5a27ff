/* SPDX-License-Identifier: MIT */
/*
 * wl_phases.c — fragmentation over time, in four phases, with the resident
 * set measured after each:
 *   1 alloc  many short-lived small objects (default 1,000,000 of 16–256 B)
 *            with a few long-lived ones of the same sizes interleaved among
 *            them (one after every 64 short-lived), so the survivors are
 *            spread over every page and slab the short-lived ones filled;
 *   2 free   every short-lived object freed; then an idle wait (default
 *            1 s: twice a decay time of 500 ms) so allocators that return
 *            free pages after a delay can do so. What stays resident now
 *            is what the few survivors pin;
 *   3 large  a phase of larger objects (1–16 KiB, about half the bytes of
 *            phase 1): can memory freed by small objects serve them?
 *   4 end    the large objects freed, another idle wait.
 * For each phase: rss_after_P (resident bytes less the baseline at start),
 * live_after_P (requested bytes live) and ratio_after_P = their quotient
 * (1.0 would be perfect). ratio_after_free is the headline: resident bytes
 * per live byte once the survivors are all that is left.
 */
#include "workload.h"

enum { O_SMALL, O_KEEP, O_MIN, O_MAX, O_LMIN, O_LMAX, O_IDLE, O_SEED, O_N };

static struct wl_opt opts[O_N] = {
    [O_SMALL] = {"small", 1000000, "short-lived small objects"},
    [O_KEEP] = {"keep-every", 64, "one long-lived object after this many short-lived"},
    [O_MIN] = {"min", 16, "smallest small object, bytes"},
    [O_MAX] = {"max", 256, "largest small object, bytes"},
    [O_LMIN] = {"large-min", 1024, "smallest large object, bytes"},
    [O_LMAX] = {"large-max", 16384, "largest large object, bytes"},
    [O_IDLE] = {"idle-ms", 1000, "idle wait after each free phase, ms"},
    [O_SEED] = {"seed", 1, "random seed"},
};

struct phase_figures {
    const char *name;
    size_t rss, live;
};

static void report(const struct phase_figures *f, size_t base)
{
    char key[64];
    size_t rss = f->rss > base ? f->rss - base : 0;
    snprintf(key, sizeof(key), "rss_after_%s", f->name);
    wl_put_int(key, (long long)rss);
    snprintf(key, sizeof(key), "live_after_%s", f->name);
    wl_put_int(key, (long long)f->live);
    snprintf(key, sizeof(key), "ratio_after_%s", f->name);
    wl_put_num(key, f->live ? (double)rss / (double)f->live : 0);
}

int main(int argc, char **argv)
{
    wl_parse(argc, argv, "Fragmentation over time: survivors among short-lived objects.", opts,
             O_N);
    size_t ns = (size_t)opts[O_SMALL].value, every = (size_t)opts[O_KEEP].value;
    if (ns < 1 || every < 1 || opts[O_MIN].value < 1 || opts[O_MAX].value < opts[O_MIN].value ||
        opts[O_LMIN].value < 1 || opts[O_LMAX].value < opts[O_LMIN].value) {
        fprintf(stderr, "%s: need small, keep-every >= 1 and 1 <= min <= max for both sizes\n",
                argv[0]);
        return 2;
    }
    size_t nk = ns / every; /* every (every+1)-th object is long-lived */
    struct wl_slot *shortl = wl_map(ns * sizeof(*shortl)), *keep = wl_map((nk + 1) * sizeof(*keep));
    struct wl_slot *large = wl_map(ns * sizeof(*large)); /* before the baseline: not the allocator's */
    uint64_t rng = (uint64_t)opts[O_SEED].value;
    struct phase_figures f[4] = {{"alloc", 0, 0}, {"free", 0, 0}, {"large", 0, 0}, {"end", 0, 0}};
    size_t base = wl_sample(), live = 0, kept = 0, si = 0, small_bytes = 0;
    double t0 = wl_now(), busy = 0;

    for (size_t j = 0; j < ns + nk; j++) {
        bool is_keep = j % (every + 1) == every && kept < nk;
        struct wl_slot *e = is_keep ? &keep[kept++] : &shortl[si++];
        e->n = wl_range(&rng, (uint64_t)opts[O_MIN].value, (uint64_t)opts[O_MAX].value);
        e->p = wl_malloc(e->n);
        wl_touch(e->p, e->n);
        live += e->n;
        if (!is_keep) small_bytes += e->n;
    }
    f[0].rss = wl_sample(), f[0].live = live;

    for (size_t i = 0; i < ns; i++)
        free(shortl[i].p), live -= shortl[i].n;
    busy += wl_now() - t0;
    wl_idle(opts[O_IDLE].value);
    f[1].rss = wl_sample(), f[1].live = live;

    /* about half the short-lived bytes again, as large objects */
    t0 = wl_now();
    size_t nl = 0, large_bytes = 0;
    while (large_bytes < small_bytes / 2 && nl < ns) {
        struct wl_slot *e = &large[nl++];
        e->n = wl_range(&rng, (uint64_t)opts[O_LMIN].value, (uint64_t)opts[O_LMAX].value);
        e->p = wl_malloc(e->n);
        wl_touch(e->p, e->n);
        large_bytes += e->n, live += e->n;
    }
    f[2].rss = wl_sample(), f[2].live = live;
    for (size_t i = 0; i < nl; i++)
        free(large[i].p), live -= large[i].n;
    busy += wl_now() - t0;
    wl_idle(opts[O_IDLE].value);
    f[3].rss = wl_sample(), f[3].live = live;

    wl_put_str("workload", "phases");
    for (int i = 0; i < O_N; i++)
        wl_put_int(opts[i].name, opts[i].value);
    wl_put_int("kept", (long long)kept);
    wl_put_num("time_s", busy);
    /* malloc and free calls: short-lived and large ones both, survivors malloc only */
    wl_put_num("ops_per_s", busy > 0 ? (2.0 * (double)(ns + nl) + (double)kept) / busy : 0);
    wl_put_int("peak_live", (long long)f[0].live);
    for (int i = 0; i < 4; i++)
        report(&f[i], base);
    wl_put_end(base);
    for (size_t i = 0; i < kept; i++)
        free(keep[i].p);
    wl_unmap(shortl, ns * sizeof(*shortl));
    wl_unmap(keep, (nk + 1) * sizeof(*keep));
    wl_unmap(large, ns * sizeof(*large));
    return 0;
}
