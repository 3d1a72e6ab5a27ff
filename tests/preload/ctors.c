/* SPDX-License-Identifier: MIT */
/*
 * ctors.c — allocation before main and after it, and by the C library on
 * its own, for tests/tools/preload.sh (run with and without libstrata.so
 * preloaded, outputs compared). Run alone (the ctest test preload/ctors) it
 * checks itself and exits 0.
 *
 * Constructors allocate with every entry point before main runs (a
 * preloaded malloc may be called before its own initialisation); main
 * checks and frees some and keeps others; exit handlers and destructors
 * allocate, check and free after main has returned, the last ones after
 * stdout was used for the final lines. In between, C library functions
 * that allocate internally: stdio streams, open_memstream, asprintf,
 * getline, qsort, regcomp, setenv, strdup, tmpfile.
 */
#define _GNU_SOURCE /* asprintf, open_memstream */
#include <malloc.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EARLY 40

static unsigned char *early[EARLY];
static size_t early_size[EARLY];
static char *early_text;
static int failures;

static void fill(unsigned char *p, size_t n, unsigned tag)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(tag + i * 3u);
}

static int intact(const unsigned char *p, size_t n, unsigned tag)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(tag + i * 3u))
            return 0;
    return 1;
}

static unsigned char *alloc_kind(int i, size_t n)
{
    void *p = NULL;
    switch (i % 5) {
    case 0:
        return calloc(n, 1);
    case 1:
        return posix_memalign(&p, 128, n) == 0 ? p : NULL;
    case 2:
        return aligned_alloc(64, (n + 63) & ~(size_t)63);
    case 3:
        return realloc(NULL, n);
    default:
        return malloc(n);
    }
}

/* The first code of the program: nothing of main has run. */
__attribute__((constructor(101))) static void first_ctor(void)
{
    for (int i = 0; i < EARLY; i++) {
        early_size[i] = 1 + (size_t)i * (size_t)i * 97;
        early[i] = alloc_kind(i, early_size[i]);
        if (early[i] == NULL)
            failures++;
        else
            fill(early[i], early_size[i], (unsigned)i);
    }
    early_text = strdup("allocated before main");
}

/* A later constructor: grow every other early block in place or moved. */
__attribute__((constructor)) static void second_ctor(void)
{
    for (int i = 0; i < EARLY; i += 2) {
        if (early[i] == NULL || !intact(early[i], early_size[i], (unsigned)i)) {
            failures++;
            continue;
        }
        unsigned char *q = realloc(early[i], early_size[i] * 3 + 10);
        if (q == NULL) {
            failures++;
            continue;
        }
        early[i] = q;
        early_size[i] = early_size[i] * 3 + 10;
        fill(q, early_size[i], (unsigned)i);
    }
}

static char *kept_for_dtor;

/* The last code: after main, after the exit handlers. */
__attribute__((destructor)) static void last_dtor(void)
{
    int ok = kept_for_dtor && strcmp(kept_for_dtor, "kept for the destructor") == 0;
    free(kept_for_dtor);
    for (int i = 1; i < EARLY; i += 2) {
        ok &= intact(early[i], early_size[i], (unsigned)i);
        free(early[i]);
    }
    char *s = malloc(1000);
    ok &= s != NULL;
    free(s);
    if (!ok) {
        fputs("ctors: FAILED in the destructor\n", stderr);
        _exit(1);
    }
}

static void exit_handler(void)
{
    char *s = NULL;
    if (asprintf(&s, "exit handler: %s", early_text) < 0)
        _exit(1);
    puts(s);
    free(s);
    free(early_text);
    void *p = malloc(70000);
    free(realloc(p, 200));
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Functions of the C library that allocate for themselves; a checksum. */
static unsigned long libc_work(void)
{
    unsigned long sum = 0;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    for (int i = 0; i < 20000 && m; i++)
        fprintf(m, "line %d %x\n", i, i * 7919);
    if (m == NULL || fclose(m) != 0)
        return 0;
    sum += len;
    FILE *r = fmemopen(buf, len, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (r && (n = getline(&line, &cap, r)) > 0)
        sum += (unsigned long)n * (unsigned long)(unsigned char)line[n - 2];
    free(line);
    if (r)
        fclose(r);
    free(buf);
    int *v = malloc(100000 * sizeof(int));
    for (int i = 0; i < 100000; i++)
        v[i] = (int)((unsigned)i * 2654435761u >> 8);
    qsort(v, 100000, sizeof(int), cmp_int); /* a merge sort: a malloc'd buffer */
    for (int i = 1; i < 100000; i++)
        sum += v[i - 1] <= v[i];
    free(v);
    regex_t re;
    if (regcomp(&re, "^(ab|cd)+[0-9]{2,4}$", REG_EXTENDED) == 0) {
        sum += regexec(&re, "abcdab2024", 0, NULL, 0) == 0;
        sum += regexec(&re, "abx12", 0, NULL, 0) != 0;
        regfree(&re);
    }
    for (int i = 0; i < 200; i++) {
        char name[32], value[64];
        snprintf(name, sizeof(name), "PRELOAD_TEST_%d", i % 17);
        snprintf(value, sizeof(value), "%0*d", 1 + i % 60, i);
        setenv(name, value, 1);
    }
    sum += strlen(getenv("PRELOAD_TEST_3"));
    FILE *t = tmpfile();
    if (t) {
        fputs("temporary\n", t);
        rewind(t);
        sum += (unsigned long)fgetc(t);
        fclose(t);
    }
    return sum;
}

int main(void)
{
    puts(early_text ? early_text : "(no early text)");
    int ok_early = 0;
    for (int i = 0; i < EARLY; i += 2) {
        ok_early += early[i] && intact(early[i], early_size[i], (unsigned)i) &&
                    malloc_usable_size(early[i]) >= early_size[i];
        free(early[i]);
    }
    printf("constructor blocks intact in main: %d of %d\n", ok_early, EARLY / 2);
    failures += ok_early != EARLY / 2;
    printf("libc functions: checksum %lu\n", libc_work());
    kept_for_dtor = strdup("kept for the destructor");
    atexit(exit_handler);
    printf("ctors: %s\n", failures == 0 ? "ok" : "FAILED");
    return failures != 0;
}
