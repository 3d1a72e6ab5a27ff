/* SPDX-License-Identifier: MIT */
/*
 * components.c — one allocation trace replayed against every embeddable
 * allocator of strata (and glibc's malloc for reference), printing
 * operations per second and fragmentation. Not a test: a measurement.
 *
 * The trace comes from a real workload run once, in this process, on real
 * text: a word index over C header files (default: the system's
 * /usr/include). Every line read is copied into a buffer kept in a window
 * of recent lines; every new identifier gets a node and a copy of its
 * name; every occurrence is appended to the word's array, which doubles by
 * allocating a new one and freeing the old; rare words are pruned every
 * few thousand lines; at the end everything is freed. So the trace mixes
 * short strings, fixed-size nodes, growing arrays up to kilobytes, FIFO and
 * random lifetimes.
 *
 * For each allocator the trace is replayed `--runs` times, interleaved
 * (A B C … A B C …), and the median time and its spread are printed,
 * together with two fragmentation figures measured in a separate,
 * untimed replay:
 *   held       peak bytes held by the live blocks (rounding to block
 *              sizes and classes, plus per-block tags where the allocator
 *              has them; glibc: usable size + its 8-byte chunk header)
 *              / peak live bytes − 1
 *   footprint  the region this trace needs: the highest address any block
 *              reached, from the region's start (metadata included), over
 *              peak live bytes − 1; it counts the holes the allocator
 *              leaves (not for glibc, whose heap this program shares)
 * usage: bench-components [--runs N] [--max-lines N] [FILE-OR-DIR ...]
 */
#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "strata.h"

/* ---- the trace ----------------------------------------------------------- */

struct event {
    uint32_t id;
    uint32_t size; /* 0: free id */
};

struct trace {
    struct event *ev;
    size_t count, cap;
    uint32_t next_id;
    uint32_t *size_of; /* id -> size */
    size_t live, peak_live;
};

static void trace_push(struct trace *t, uint32_t id, uint32_t size)
{
    if (t->count == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 1 << 16;
        t->ev = realloc(t->ev, t->cap * sizeof(*t->ev));
        if (t->ev == NULL) {
            perror("bench-components");
            exit(1);
        }
    }
    t->ev[t->count++] = (struct event){id, size};
}

static uint32_t trace_alloc(struct trace *t, size_t size)
{
    uint32_t id = t->next_id++;
    if ((id & (id - 1)) == 0 || id == 1) {
        t->size_of = realloc(t->size_of, (size_t)(id + 1) * 2 * sizeof(uint32_t));
        if (t->size_of == NULL) {
            perror("bench-components");
            exit(1);
        }
    }
    t->size_of[id] = (uint32_t)size;
    trace_push(t, id, (uint32_t)size);
    t->live += size;
    if (t->live > t->peak_live)
        t->peak_live = t->live;
    return id;
}

static void trace_free(struct trace *t, uint32_t id)
{
    t->live -= t->size_of[id];
    trace_push(t, id, 0);
}

/* ---- the workload that makes the trace: a word index -------------------- */

#define WINDOW 4096      /* lines kept */
#define PRUNE_EVERY 8192 /* lines between prunes of rare words */
#define WORD_NODE 48     /* bytes of a word node in a real index */

struct word {
    char *name; /* owned by the generator (glibc) */
    uint32_t node_id, name_id, array_id;
    uint32_t count, array_cap;
};

struct index {
    struct word *words; /* open addressing, power-of-two capacity */
    size_t cap, used;
    uint32_t window[WINDOW];
    size_t lines;
    struct trace *t;
};

static uint64_t hash_str(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static void index_grow(struct index *x);

static struct word *index_find(struct index *x, const char *s, size_t n)
{
    if ((x->used + 1) * 2 > x->cap)
        index_grow(x);
    size_t i = hash_str(s, n) & (x->cap - 1);
    while (x->words[i].name != NULL) {
        if (strlen(x->words[i].name) == n && memcmp(x->words[i].name, s, n) == 0)
            return &x->words[i];
        i = (i + 1) & (x->cap - 1);
    }
    struct word *w = &x->words[i];
    w->name = strndup(s, n);
    w->node_id = trace_alloc(x->t, WORD_NODE);
    w->name_id = trace_alloc(x->t, n + 1);
    w->array_cap = 4;
    w->array_id = trace_alloc(x->t, w->array_cap * sizeof(uint32_t));
    x->used++;
    return w;
}

/* Place a word in the table (known absent, table not full). */
static void index_put(struct index *x, const struct word *w)
{
    size_t j = hash_str(w->name, strlen(w->name)) & (x->cap - 1);
    while (x->words[j].name != NULL)
        j = (j + 1) & (x->cap - 1);
    x->words[j] = *w;
}

static void index_grow(struct index *x)
{
    struct word *old = x->words;
    size_t old_cap = x->cap;
    x->cap = old_cap ? old_cap * 2 : 1024;
    x->words = calloc(x->cap, sizeof(*x->words));
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].name != NULL)
            index_put(x, &old[i]);
    free(old);
}

static void word_occurs(struct index *x, struct word *w)
{
    if (++w->count > w->array_cap) {
        uint32_t grown = trace_alloc(x->t, (size_t)w->array_cap * 2 * sizeof(uint32_t));
        trace_free(x->t, w->array_id);
        w->array_id = grown;
        w->array_cap *= 2;
    }
}

static void word_drop(struct index *x, struct word *w)
{
    trace_free(x->t, w->array_id);
    trace_free(x->t, w->name_id);
    trace_free(x->t, w->node_id);
    free(w->name);
    w->name = NULL;
}

/* Drop the words seen fewer than `min_count` times, then rebuild the
 * table (open addressing has no cheap delete). */
static void index_prune(struct index *x, uint32_t min_count)
{
    struct word *old = x->words;
    size_t old_cap = x->cap;
    x->words = calloc(old_cap, sizeof(*x->words));
    x->used = 0;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].name == NULL)
            continue;
        if (old[i].count < min_count) {
            word_drop(x, &old[i]);
            continue;
        }
        index_put(x, &old[i]);
        x->used++;
    }
    free(old);
}

static int is_ident(int c, int first)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (!first && c >= '0' && c <= '9');
}

static void index_line(struct index *x, const char *line, size_t len)
{
    size_t slot = x->lines % WINDOW;
    if (x->lines >= WINDOW)
        trace_free(x->t, x->window[slot]);
    x->window[slot] = trace_alloc(x->t, len + 1);
    for (size_t i = 0; i < len;) {
        if (!is_ident((unsigned char)line[i], 1)) {
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < len && is_ident((unsigned char)line[j], 0))
            j++;
        word_occurs(x, index_find(x, line + i, j - i));
        i = j;
    }
    if (++x->lines % PRUNE_EVERY == 0)
        index_prune(x, 3);
}

static void index_file(struct index *x, const char *path, size_t max_lines)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (x->lines < max_lines && (n = getline(&line, &cap, f)) > 0)
        index_line(x, line, (size_t)n);
    free(line);
    fclose(f);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Index every regular file of a directory (sorted, one level down too). */
static void index_path(struct index *x, const char *path, size_t max_lines, int depth)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        index_file(x, path, max_lines);
        return;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        names = realloc(names, (n + 1) * sizeof(*names));
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_str);
    for (size_t i = 0; i < n; i++) {
        char child[4096];
        if (snprintf(child, sizeof(child), "%s/%s", path, names[i]) >= (int)sizeof(child)) {
            free(names[i]);
            continue; /* a path too long to open */
        }
        DIR *sub = depth > 0 ? opendir(child) : NULL;
        if (sub != NULL) {
            closedir(sub);
            index_path(x, child, max_lines, depth - 1);
        } else {
            index_file(x, child, max_lines);
        }
        free(names[i]);
    }
    free(names);
}

static void index_finish(struct index *x)
{
    size_t kept = x->lines < WINDOW ? x->lines : WINDOW;
    for (size_t i = 0; i < kept; i++)
        trace_free(x->t, x->window[(x->lines - kept + i) % WINDOW]);
    for (size_t i = 0; i < x->cap; i++)
        if (x->words[i].name != NULL)
            word_drop(x, &x->words[i]);
    free(x->words);
}

/* ---- allocators under test ------------------------------------------------ */

struct allocator {
    const char *name;
    void *(*setup)(void *region, size_t size);
    void *(*alloc)(void *ctx, size_t size);
    int (*free)(void *ctx, void *p, size_t size);
    size_t (*usable)(void *ctx, void *p, size_t size); /* bytes the block holds, tags included */
    void (*teardown)(void *ctx);
};

static void no_teardown(void *ctx) { (void)ctx; }

/* glibc: the reference (its heap is this program's, not the region). */
static void *glibc_setup(void *region, size_t size) { (void)size; return region; }
static void *glibc_alloc(void *ctx, size_t size) { (void)ctx; return malloc(size); }
static int glibc_free(void *ctx, void *p, size_t size) { (void)ctx; (void)size; free(p); return 0; }
static size_t glibc_usable(void *ctx, void *p, size_t size)
{
    (void)ctx;
    (void)size;
    return malloc_usable_size(p) + sizeof(size_t); /* with its chunk header */
}
static void glibc_teardown(void *ctx) { (void)ctx; malloc_trim(0); }

/* buddy: every block a power of two of 16-byte units, or an exact run. */
static void *buddy_setup(void *region, size_t size) { return strata_buddy_create(region, size, 16); }
static void *buddy_alloc(void *ctx, size_t size) { return strata_buddy_alloc(ctx, size); }
static void *buddy_alloc_exact(void *ctx, size_t size) { return strata_buddy_alloc_exact(ctx, size); }
static int buddy_free(void *ctx, void *p, size_t size) { (void)size; return strata_buddy_free(ctx, p); }
static size_t buddy_usable(void *ctx, void *p, size_t size)
{
    (void)size;
    return strata_buddy_usable_size(ctx, p);
}

/* The boundary-tag heap, one entry per policy. */
#define HEAP_SETUP(policy, fn)                                                                     \
    static void *fn(void *region, size_t size) { return strata_heap_create(region, size, policy); }
HEAP_SETUP(STRATA_HEAP_FIRST_FIT, heap_first_setup)
HEAP_SETUP(STRATA_HEAP_NEXT_FIT, heap_next_setup)
HEAP_SETUP(STRATA_HEAP_BEST_FIT, heap_best_setup)
HEAP_SETUP(STRATA_HEAP_WORST_FIT, heap_worst_setup)
HEAP_SETUP(STRATA_HEAP_SEGREGATED, heap_segregated_setup)
static void *heap_alloc(void *ctx, size_t size) { return strata_heap_alloc(ctx, size); }
static int heap_free(void *ctx, void *p, size_t size) { (void)size; return strata_heap_free(ctx, p); }
static size_t heap_usable(void *ctx, void *p, size_t size)
{
    (void)size;
    return strata_heap_usable_size(ctx, p) + STRATA_HEAP_OVERHEAD; /* with its tags */
}

/* TLSF over the whole region as one pool. */
static void *tlsf_setup(void *region, size_t size) { return strata_tlsf_create(region, size); }
static void *tlsf_alloc(void *ctx, size_t size) { return strata_tlsf_malloc(ctx, size); }
static int tlsf_free(void *ctx, void *p, size_t size) { (void)size; return strata_tlsf_free(ctx, p); }
static size_t tlsf_usable(void *ctx, void *p, size_t size)
{
    (void)size;
    return strata_tlsf_usable_size(ctx, p) + strata_tlsf_overhead(); /* with its header */
}

/* Size classes for the slab caches and pools (kmalloc-like: 2 per
 * doubling); anything larger goes to the buddy that backs them. */
static const size_t class_sizes[] = {16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024,
                                     1536, 2048, 3072, 4096};
#define NCLASSES (sizeof(class_sizes) / sizeof(class_sizes[0]))

static int class_of(size_t size)
{
    for (unsigned c = 0; c < NCLASSES; c++)
        if (size <= class_sizes[c])
            return (int)c;
    return -1;
}

struct classed {
    strata_buddy *pages; /* the page source; its metadata outside the region */
    void *meta;
    void *caches[NCLASSES];
    int is_pool;
};

static void *classed_create(strata_page_source src, size_t object_size, int is_pool)
{
    if (is_pool) {
        strata_pool_config pc = {.object_size = object_size, .source = src};
        return strata_pool_create(&pc);
    }
    char name[32];
    snprintf(name, sizeof(name), "size-%zu", object_size);
    strata_slab_config sc;
    strata_slab_config_init(&sc, name, object_size);
    sc.source = src;
    sc.keep_empty = 0;
    return strata_slab_cache_create_ex(&sc);
}

static struct classed *classed_setup(void *region, size_t size, int is_pool)
{
    struct classed *c = calloc(1, sizeof(*c));
    size_t meta_size = strata_buddy_meta_size(size, 4096);
    c->meta = malloc(meta_size);
    strata_buddy_config cfg = {.min_block = 4096, .meta = c->meta, .meta_size = meta_size};
    c->pages = strata_buddy_create_ex(region, size, &cfg);
    c->is_pool = is_pool;
    for (unsigned k = 0; k < NCLASSES; k++) {
        c->caches[k] = classed_create(strata_page_source_buddy(c->pages), class_sizes[k], is_pool);
        if (c->caches[k] == NULL) {
            fprintf(stderr, "bench-components: cannot create class %zu: %s\n", class_sizes[k],
                    strerror(errno));
            exit(1);
        }
    }
    return c;
}

static void *slab_setup(void *region, size_t size) { return classed_setup(region, size, 0); }
static void *pool_setup(void *region, size_t size) { return classed_setup(region, size, 1); }

static void *classed_alloc(void *ctx, size_t size)
{
    struct classed *c = ctx;
    int k = class_of(size);
    if (k < 0)
        return strata_buddy_alloc_exact(c->pages, size);
    return c->is_pool ? strata_pool_alloc(c->caches[k]) : strata_slab_alloc(c->caches[k]);
}

static int classed_free(void *ctx, void *p, size_t size)
{
    struct classed *c = ctx;
    int k = class_of(size);
    if (k < 0)
        return strata_buddy_free(c->pages, p);
    return c->is_pool ? strata_pool_free(c->caches[k], p) : strata_slab_free(c->caches[k], p);
}

static size_t classed_usable(void *ctx, void *p, size_t size)
{
    int k = class_of(size);
    return k < 0 ? strata_buddy_usable_size(((struct classed *)ctx)->pages, p) : class_sizes[k];
}

static void classed_teardown(void *ctx)
{
    struct classed *c = ctx;
    for (unsigned k = 0; k < NCLASSES; k++) {
        if (c->is_pool)
            strata_pool_destroy(c->caches[k]);
        else
            strata_slab_cache_destroy(c->caches[k]);
    }
    free(c->meta);
    free(c);
}

static const struct allocator allocators[] = {
    {"glibc malloc", glibc_setup, glibc_alloc, glibc_free, glibc_usable, glibc_teardown},
    {"buddy 2^k", buddy_setup, buddy_alloc, buddy_free, buddy_usable, no_teardown},
    {"buddy exact", buddy_setup, buddy_alloc_exact, buddy_free, buddy_usable, no_teardown},
    {"slab classes", slab_setup, classed_alloc, classed_free, classed_usable, classed_teardown},
    {"pool classes", pool_setup, classed_alloc, classed_free, classed_usable, classed_teardown},
    {"heap first-fit", heap_first_setup, heap_alloc, heap_free, heap_usable, no_teardown},
    {"heap next-fit", heap_next_setup, heap_alloc, heap_free, heap_usable, no_teardown},
    {"heap best-fit", heap_best_setup, heap_alloc, heap_free, heap_usable, no_teardown},
    {"heap worst-fit", heap_worst_setup, heap_alloc, heap_free, heap_usable, no_teardown},
    {"heap segregated", heap_segregated_setup, heap_alloc, heap_free, heap_usable, no_teardown},
    {"tlsf", tlsf_setup, tlsf_alloc, tlsf_free, tlsf_usable, no_teardown},
};
#define NALLOCATORS (sizeof(allocators) / sizeof(allocators[0]))

struct peak {
    size_t held, held_now; /* Σ usable size of live blocks */
    size_t top;            /* highest address reached, from the region's start */
};

/* ---- replay --------------------------------------------------------------- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void measure_alloc(struct peak *peak, const struct allocator *a, void *ctx,
                          unsigned char *p, size_t size, void *region, size_t region_size)
{
    peak->held_now += a->usable(ctx, p, size);
    if (peak->held_now > peak->held)
        peak->held = peak->held_now;
    size_t top = (size_t)(p + size - (unsigned char *)region);
    if (top <= region_size && top > peak->top)
        peak->top = top;
}

/* Replay the trace once; seconds taken, or -1 if an allocation failed.
 * With `peak` set, track usable bytes and the address high-water mark. */
static double replay(const struct allocator *a, const struct trace *t, void **ptrs,
                     size_t region_size, struct peak *peak)
{
    /* aligned to its size, so a buddy sees one block, not a carving whose
     * small pieces at the far end would inflate the footprint */
    char *raw = mmap(NULL, 2 * region_size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED)
        return -1;
    void *region = (void *)(((uintptr_t)raw + region_size - 1) & ~(uintptr_t)(region_size - 1));
    void *ctx = a->setup(region, region_size);
    double ok = ctx != NULL ? 0 : -1;
    double start = now();
    for (size_t i = 0; i < t->count && ok == 0; i++) {
        const struct event *e = &t->ev[i];
        if (e->size != 0) {
            unsigned char *p = a->alloc(ctx, e->size);
            if (p == NULL) {
                ok = -1;
                break;
            }
            p[0] = p[e->size - 1] = (unsigned char)e->id; /* touch it, as a program would */
            ptrs[e->id] = p;
            if (peak != NULL)
                measure_alloc(peak, a, ctx, p, e->size, region, region_size);
        } else {
            if (peak != NULL)
                peak->held_now -= a->usable(ctx, ptrs[e->id], t->size_of[e->id]);
            if (a->free(ctx, ptrs[e->id], t->size_of[e->id]) != 0)
                ok = -1;
        }
    }
    double seconds = now() - start;
    if (ctx != NULL)
        a->teardown(ctx);
    munmap(raw, 2 * region_size);
    return ok == 0 ? seconds : -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int runs = 5;
    size_t max_lines = 20000; /* the list policies of the heap are O(free blocks) */
    const char *paths[64];
    int npaths = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--max-lines") == 0 && i + 1 < argc)
            max_lines = (size_t)atol(argv[++i]);
        else if (argv[i][0] == '-' || npaths == 64) {
            fprintf(stderr, "usage: bench-components [--runs N] [--max-lines N] [PATH ...]\n");
            return 2;
        } else
            paths[npaths++] = argv[i];
    }
    if (runs < 1 || runs > 99) {
        fprintf(stderr, "bench-components: --runs must be 1..99\n");
        return 2;
    }
    if (npaths == 0)
        paths[npaths++] = "/usr/include";

    struct trace t = {0};
    struct index x = {.t = &t};
    for (int i = 0; i < npaths; i++)
        index_path(&x, paths[i], max_lines, 1);
    index_finish(&x);
    if (t.count == 0) {
        fprintf(stderr, "bench-components: no text found in the paths given\n");
        return 1;
    }
    size_t allocs = t.next_id;
    printf("trace: word index of %zu lines: %zu allocations, %zu frees, peak live %.1f KiB\n",
           x.lines, allocs, t.count - allocs, (double)t.peak_live / 1024);
    printf("replays: %d per allocator, interleaved; time = median, spread = (max-min)/median\n\n",
           runs);

    void **ptrs = calloc(allocs, sizeof(void *));
    size_t region = 64u << 20;
    while (region < 16 * t.peak_live)
        region *= 2;
    double times[NALLOCATORS][99];
    for (int r = 0; r < runs; r++)
        for (unsigned a = 0; a < NALLOCATORS; a++) {
            if (isatty(2))
                fprintf(stderr, "\r  run %d/%d: %-14s", r + 1, runs, allocators[a].name);
            times[a][r] = replay(&allocators[a], &t, ptrs, region, NULL);
        }
    if (isatty(2))
        fprintf(stderr, "\r%60s\r", "");

    printf("%-14s %12s %8s %12s %12s\n", "allocator", "Mops/s", "spread", "held frag",
           "footprint");
    for (unsigned a = 0; a < NALLOCATORS; a++) {
        struct peak peak = {0, 0, 0};
        int failed = replay(&allocators[a], &t, ptrs, region, &peak) < 0;
        qsort(times[a], (size_t)runs, sizeof(double), cmp_double);
        double med = times[a][runs / 2];
        if (failed || med < 0) {
            printf("%-14s failed (out of memory in a %zu MiB region?)\n", allocators[a].name,
                   region >> 20);
            continue;
        }
        double spread = (times[a][runs - 1] - times[a][0]) / med;
        printf("%-14s %12.2f %7.1f%% %11.1f%%", allocators[a].name, (double)t.count / med / 1e6,
               spread * 100, ((double)peak.held / (double)t.peak_live - 1) * 100);
        if (a == 0)
            printf(" %12s\n", "n/a");
        else
            printf(" %11.1f%%\n", ((double)peak.top / (double)t.peak_live - 1) * 100);
    }
    printf("\nheld frag: peak bytes held by live blocks (tags included) / peak live bytes - 1;\n"
           "footprint: highest address reached in the region / peak live bytes - 1\n"
           "(n/a for glibc: its heap is shared with this program).\n");
    free(ptrs);
    free(t.ev);
    free(t.size_of);
    return 0;
}
