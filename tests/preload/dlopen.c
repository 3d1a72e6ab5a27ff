/* SPDX-License-Identifier: MIT */
/*
 * dlopen.c — loading and unloading libraries, for tests/tools/preload.sh
 * (run with and without libstrata.so preloaded, outputs compared). Run
 * alone (the ctest test preload/dlopen) it checks itself and exits 0.
 *
 * The same file is also the plugin: compiled with -DPRELOAD_PLUGIN -shared
 * it becomes a library whose constructor allocates, whose destructor checks
 * and frees, and which has a large thread-local array. The C library gives
 * each thread its copy of such an array with malloc when the thread first
 * touches it, and frees it with free when the thread exits, from inside the
 * thread-exit path, after the thread's other destructors have run. dlopen
 * and dlclose themselves allocate and free the library's bookkeeping.
 *
 * usage: dlopen [PLUGIN.so]    (without a plugin: the C math library only)
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TLS_BYTES (64 * 1024)

#ifdef PRELOAD_PLUGIN

/* ---- the plugin ---- */

unsigned long plugin_touch(unsigned seed);
int plugin_constructed(void);

static __thread unsigned char tls_area[TLS_BYTES];
static unsigned char *made[32];

static size_t made_size(int i)
{
    return 24 + (size_t)i * 700;
}

__attribute__((constructor)) static void plugin_init(void)
{
    for (int i = 0; i < 32; i++) {
        made[i] = malloc(made_size(i));
        if (made[i])
            memset(made[i], 0x40 + i, made_size(i));
    }
}

__attribute__((destructor)) static void plugin_fini(void)
{
    for (int i = 0; i < 32; i++) {
        for (size_t j = 0; made[i] && j < made_size(i); j++)
            if (made[i][j] != 0x40 + i)
                abort(); /* a block of the constructor was overwritten */
        free(made[i]);
    }
}

/* 1 if the constructor's blocks are all there. */
int plugin_constructed(void)
{
    for (int i = 0; i < 32; i++)
        if (made[i] == NULL)
            return 0;
    return 1;
}

/* Write this thread's copy of the array and sum it, with an allocation. */
unsigned long plugin_touch(unsigned seed)
{
    unsigned long sum = 0;
    for (size_t i = 0; i < TLS_BYTES; i++)
        tls_area[i] = (unsigned char)(seed + i);
    char *s = malloc(100);
    snprintf(s, 100, "%u", seed);
    sum += strlen(s);
    free(s);
    for (size_t i = 0; i < TLS_BYTES; i += 97)
        sum += tls_area[i];
    return sum;
}

#else

/* ---- the program ---- */

#define ROUNDS 40
#define THREADS 3

typedef unsigned long (*touch_fn)(unsigned);

struct job {
    touch_fn touch;
    unsigned seed;
    unsigned long sum;
};

static void *thread_main(void *arg)
{
    struct job *j = arg;
    j->sum = j->touch(j->seed);
    return NULL;
}

/* Open the plugin, use it from fresh threads, close it; the sum. */
static long plugin_round(const char *path, unsigned round)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return -1;
    }
    touch_fn touch = (touch_fn)dlsym(h, "plugin_touch");
    int (*constructed)(void) = (int (*)(void))dlsym(h, "plugin_constructed");
    if (touch == NULL || constructed == NULL || !constructed()) {
        dlclose(h);
        return -1;
    }
    struct job jobs[THREADS];
    pthread_t t[THREADS];
    long sum = (long)touch(round);
    for (unsigned i = 0; i < THREADS; i++) {
        jobs[i] = (struct job){touch, round * 10 + i, 0};
        pthread_create(&t[i], NULL, thread_main, &jobs[i]);
    }
    for (unsigned i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        sum += (long)jobs[i].sum;
    }
    dlclose(h);
    return sum;
}

/* The C math library, opened and closed repeatedly; the number of rounds
 * where cos(0) came back as 1. */
static int libm_rounds(void)
{
    int ok = 0;
    for (int i = 0; i < ROUNDS; i++) {
        void *h = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
        double (*cosine)(double) = h ? (double (*)(double))dlsym(h, "cos") : NULL;
        ok += cosine != NULL && cosine(0.0) == 1.0;
        if (h)
            dlclose(h);
    }
    return ok;
}

int main(int argc, char **argv)
{
    int ok = libm_rounds();
    printf("libm: %d of %d rounds\n", ok, ROUNDS);
    int failed = ok != ROUNDS;
    if (argc > 1) {
        long total = 0;
        for (unsigned r = 0; r < ROUNDS && !failed; r++) {
            long s = plugin_round(argv[1], r);
            failed |= s < 0;
            total += s;
        }
        printf("plugin: %d rounds of %d threads, sum %ld\n", ROUNDS, THREADS, total);
    }
    printf("dlopen: %s\n", failed ? "FAILED" : "ok");
    return failed;
}

#endif
