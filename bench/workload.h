/* SPDX-License-Identifier: MIT */
/*
 * workload.h — helpers shared by the workload programs of `strata bench`
 * (bench/wl_*.c): `--name value` options, a fast PRNG, a monotonic clock,
 * resident-set sampling from /proc/self/statm with a process-wide peak,
 * memory for a workload's own bookkeeping that stays out of its figures,
 * an idle wait that lets decaying allocators return memory, the churn loop
 * that churn and churn-mt share, and the one result line on stdout.
 *
 * The workloads call plain malloc/free, so they measure whichever malloc
 * the process got: glibc's, or the library put first by LD_PRELOAD. The
 * result line names that library (malloc_from=) so the runner can check
 * the preload took. Include this header first: it asks for _GNU_SOURCE.
 *
 * Static inline functions only; no allocation of their own except where
 * said (the result line's stdio buffer, after every measurement).
 */
#ifndef STRATA_BENCH_WORKLOAD_H
#define STRATA_BENCH_WORKLOAD_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* ---- options ------------------------------------------------------------- */

/* One `--name value` option: a non-negative integer with a default. */
struct wl_opt {
    const char *name;
    long long value;
    const char *help;
};

static inline void wl_usage(FILE *out, const char *prog, const char *what,
                            const struct wl_opt *o, size_t n)
{
    fprintf(out, "usage: %s [OPTIONS]\n%s\n\n", prog, what);
    for (size_t i = 0; i < n; i++)
        fprintf(out, "  --%-12s %s (default %lld)\n", o[i].name, o[i].help, o[i].value);
}

/* Parse argv into o[]; --help prints the usage and exits 0, anything
 * unknown or malformed prints it and exits 2. */
static inline void wl_parse(int argc, char **argv, const char *what, struct wl_opt *o, size_t n)
{
    for (int i = 1; i < argc; i += 2) { /* options come as pairs */
        if (strcmp(argv[i], "--help") == 0) {
            wl_usage(stdout, argv[0], what, o, n);
            exit(0);
        }
        size_t k = 0;
        while (k < n && !(strncmp(argv[i], "--", 2) == 0 && strcmp(argv[i] + 2, o[k].name) == 0))
            k++;
        char *end = NULL;
        errno = 0;
        long long v = (k < n && i + 1 < argc) ? strtoll(argv[i + 1], &end, 10) : -1;
        if (k == n || !end || *end || end == argv[i + 1] || errno || v < 0) {
            fprintf(stderr, "%s: bad option or value: %s\n", argv[0], argv[i]);
            wl_usage(stderr, argv[0], what, o, n);
            exit(2);
        }
        o[k].value = v;
    }
}

/* ---- random numbers: splitmix64, one state per thread -------------------- */

static inline uint64_t wl_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi] (inclusive), by multiply-shift. */
static inline uint64_t wl_range(uint64_t *s, uint64_t lo, uint64_t hi)
{
    return lo + (uint64_t)(((unsigned __int128)wl_rand(s) * (hi - lo + 1)) >> 64);
}

/* Log-uniform in [lo, hi]: every power of two in the range equally likely. */
static inline uint64_t wl_log_range(uint64_t *s, uint64_t lo, uint64_t hi)
{
    double f = (double)(wl_rand(s) >> 11) / 9007199254740992.0; /* [0, 1) */
    double v = (double)lo * __builtin_exp(f * __builtin_log((double)hi / (double)lo));
    uint64_t r = (uint64_t)v;
    return r < lo ? lo : r > hi ? hi : r;
}

/* ---- clock and resident set ---------------------------------------------- */

static inline double wl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Resident bytes now, from the second field of /proc/self/statm (read with
 * open/read: stdio would allocate). 0 if it cannot be read. */
static inline size_t wl_rss(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    const char *p = strchr(buf, ' ');
    if (!p) return 0;
    return (size_t)strtoull(p + 1, NULL, 10) * (size_t)sysconf(_SC_PAGESIZE);
}

/* The highest resident set seen by wl_sample() in this process. */
static _Atomic size_t wl_rss_peak_seen;

/* Sample the resident set, raise the peak; returns the sample. Threads may
 * call it concurrently. */
static inline size_t wl_sample(void)
{
    size_t now = wl_rss(), old = atomic_load_explicit(&wl_rss_peak_seen, memory_order_relaxed);
    while (now > old && !atomic_compare_exchange_weak(&wl_rss_peak_seen, &old, now)) {
    }
    return now;
}

static inline size_t wl_rss_peak(void)
{
    return atomic_load(&wl_rss_peak_seen);
}

/* Bookkeeping memory (slot arrays, queues) from mmap, populated at once so
 * it is part of the baseline, never of the allocator's figures. */
static inline void *wl_map(size_t bytes)
{
    void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return p;
}

static inline void wl_unmap(void *p, size_t bytes)
{
    munmap(p, bytes ? bytes : 1);
}

/* Write one byte per page of [p, p+n) and its last byte, so every page of
 * the block is really backed, as a program using the block would make it. */
static inline void wl_touch(void *p, size_t n)
{
    volatile char *c = p;
    for (size_t i = 0; i < n; i += 4096)
        c[i] = (char)i;
    c[n - 1] = 1;
}

/* malloc with the failure path every workload wants: a message, exit 1. */
static inline void *wl_malloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "workload: malloc(%zu) failed\n", n);
        exit(1);
    }
    return p;
}

/* Keep the compiler from eliding a malloc/free pair. */
static inline void wl_keep(void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

/* Wait ms milliseconds the way a quiet program does: in ten naps, each
 * followed by one small malloc/free pair, so an allocator that returns
 * memory lazily (on its next call) gets the chance a live program gives. */
static inline void wl_idle(long long ms)
{
    for (int i = 0; i < 10; i++) {
        struct timespec ts = {(time_t)(ms / 10 / 1000), (long)(ms / 10 % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        void *p = wl_malloc(16);
        wl_keep(p);
        free(p);
    }
}

/* ---- churn: the loop churn and churn-mt share ----------------------------- */

struct wl_slot {
    char *p;
    size_t n;
};

struct wl_churn {
    struct wl_slot *slots; /* `blocks` of them, mapped before the RSS baseline */
    size_t blocks;      /* live blocks */
    size_t ops;         /* replacements: one free and one malloc each */
    size_t min, max;    /* block sizes, uniform */
    uint64_t seed;
    size_t peak_live;   /* out: highest sum of requested sizes */
    double seconds;     /* out: time of the replacement phase */
};

/* Fill `blocks` slots, then `ops` times free a random one and allocate a
 * new block of random size in its place; free everything at the end. */
static inline void wl_churn_run(struct wl_churn *c)
{
    struct wl_slot *s = c->slots;
    uint64_t rng = c->seed;
    size_t live = 0;
    for (size_t i = 0; i < c->blocks; i++) {
        s[i].n = wl_range(&rng, c->min, c->max);
        s[i].p = wl_malloc(s[i].n);
        wl_touch(s[i].p, s[i].n);
        live += s[i].n;
        if (i % 1000 == 0) wl_sample();
    }
    c->peak_live = live;
    double t0 = wl_now();
    for (size_t op = 0; op < c->ops; op++) {
        struct wl_slot *e = &s[wl_range(&rng, 0, c->blocks - 1)];
        free(e->p);
        live -= e->n;
        e->n = wl_range(&rng, c->min, c->max);
        e->p = wl_malloc(e->n);
        wl_touch(e->p, e->n);
        live += e->n;
        if (live > c->peak_live) c->peak_live = live;
        if (op % 1000 == 0) wl_sample();
    }
    c->seconds = wl_now() - t0;
    wl_sample();
    for (size_t i = 0; i < c->blocks; i++)
        free(s[i].p);
}

/* ---- the result line ------------------------------------------------------ */

/* Where this process's malloc comes from: the file defining the first
 * `malloc` in the global lookup order (the preloaded library, or libc). */
static inline const char *wl_malloc_from(void)
{
    Dl_info info;
    void *f = dlsym(RTLD_DEFAULT, "malloc");
    if (f && dladdr(f, &info) && info.dli_fname && !strchr(info.dli_fname, ' '))
        return info.dli_fname;
    return "unknown";
}

static inline void wl_put_str(const char *key, const char *v)
{
    printf("%s=%s ", key, v);
}

static inline void wl_put_int(const char *key, long long v)
{
    printf("%s=%lld ", key, v);
}

static inline void wl_put_num(const char *key, double v)
{
    printf("%s=%.6g ", key, v);
}

/* (RSS - base) / live - 1: the resident bytes beyond the live ones, per
 * live byte. */
static inline double wl_frag(size_t rss, size_t base, size_t live)
{
    return live ? ((double)rss - (double)base) / (double)live - 1.0 : 0.0;
}

/* The fields every workload ends its line with, then the newline. */
static inline void wl_put_end(size_t rss_base)
{
    wl_put_int("rss_base", (long long)rss_base);
    wl_put_int("rss_peak", (long long)wl_rss_peak());
    printf("malloc_from=%s\n", wl_malloc_from());
    fflush(stdout);
}

#endif /* STRATA_BENCH_WORKLOAD_H */
