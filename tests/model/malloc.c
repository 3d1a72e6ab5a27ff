/* SPDX-License-Identifier: MIT */
/*
 * Randomized model test of the malloc in one thread: random malloc,
 * calloc, realloc, memalign and free steps over every size range (small
 * classes, the classes above the fast path, medium blocks, large blocks),
 * now and then a malloc_trim, against a reference list of live blocks.
 * Every 64 steps the heap's invariants (THEAP-1..8, with every listed
 * slab's and segment's own) and the large blocks' (LARGE-1, 2) must hold;
 * every block keeps the pattern written into it until it is freed, and
 * no two live blocks overlap. At the end everything is freed and the
 * statistics show no live bytes.
 */
#include <sys/mman.h>

#include "large.h"
#include "strata/malloc.h"
#include "test.h"
#include "theap.h"

#define SLOTS 2048
#define KIB ((size_t)1024)

typedef struct block {
    unsigned char *p;
    size_t n;
    unsigned char tag;
} block;

static block live[SLOTS];

/* A size from one of the ranges, the small ones most often. */
static size_t random_size(void)
{
    unsigned r = (unsigned)test_rand_range(0, 99);
    if (r < 70)
        return (size_t)test_rand_range(0, 1024);
    if (r < 88)
        return (size_t)test_rand_range(1025, 16 * KIB);
    if (r < 98)
        return (size_t)test_rand_range(16 * KIB + 1, 1024 * KIB);
    return (size_t)test_rand_range(1024 * KIB + 1, 6 * 1024 * KIB);
}

/* The pattern: the tag in the first and the last 64 bytes. */
static void fill(block *b)
{
    size_t edge = ST_MIN(b->n, 64);
    memset(b->p, b->tag, edge);
    memset(b->p + b->n - edge, b->tag, edge);
}

static bool head_intact(const unsigned char *p, size_t n, unsigned char tag)
{
    for (size_t i = 0; i < ST_MIN(n, 64); i++)
        if (p[i] != tag)
            return false;
    return true;
}

static bool intact(const block *b)
{
    size_t edge = ST_MIN(b->n, 64);
    return head_intact(b->p, b->n, b->tag) && head_intact(b->p + b->n - edge, edge, b->tag);
}

static void *allocate(size_t n)
{
    switch (test_rand_range(0, 9)) {
    case 0: {
        unsigned char *p = strata_calloc(1, n);
        for (size_t i = 0; p != NULL && i < n; i += 61)
            if (p[i] != 0) {
                fprintf(stderr, "  calloc(%zu): byte %zu is %u\n", n, i, p[i]);
                CHECK(false);
                break;
            }
        return p;
    }
    case 1: {
        size_t align = (size_t)1 << test_rand_range(4, 13);
        void *p = strata_memalign(align, n);
        CHECK(p == NULL || ((uintptr_t)p & (align - 1)) == 0);
        return p;
    }
    default:
        return strata_malloc(n);
    }
}

/* No two live blocks overlap (checked against the new or resized one). */
static bool overlaps(size_t k)
{
    for (size_t i = 0; i < SLOTS; i++)
        if (i != k && live[i].p != NULL && live[k].p < live[i].p + ST_MAX(live[i].n, 1) &&
            live[i].p < live[k].p + ST_MAX(live[k].n, 1))
            return true;
    return false;
}

static void step(size_t k, unsigned char tag)
{
    block *b = &live[k];
    if (b->p != NULL && !intact(b)) {
        fprintf(stderr, "  block %p of %zu bytes damaged\n", (void *)b->p, b->n);
        CHECK(false);
    }
    unsigned r = (unsigned)test_rand_range(0, 9);
    if (b->p != NULL && r < 4) {
        strata_free(b->p);
        b->p = NULL;
        return;
    }
    size_t n = random_size();
    if (b->p != NULL && r < 7) {
        unsigned char *q = strata_realloc(b->p, n);
        REQUIRE(q != NULL || n == 0);
        b->p = q;
        if (q != NULL && !head_intact(q, ST_MIN(b->n, n), b->tag)) {
            fprintf(stderr, "  realloc to %zu lost the contents\n", n);
            CHECK(false);
        }
    } else {
        if (b->p != NULL)
            strata_free(b->p);
        b->p = allocate(n);
        REQUIRE(b->p != NULL || n == 0);
    }
    b->n = n;
    b->tag = tag;
    if (b->p != NULL) {
        fill(b);
        if (overlaps(k)) {
            fprintf(stderr, "  block %p of %zu bytes overlaps a live one\n", (void *)b->p, n);
            CHECK(false);
        }
    }
}

static st_theap *this_heap(void)
{
    st_theap_lock_all();
    st_theap *h = st_theap_first(); /* the only heap: one thread */
    st_theap_unlock_all();
    return h;
}

TEST(random_steps_keep_every_invariant)
{
    test_seed("malloc model");
    long steps = test_steps(60000);
    strata_free(strata_malloc(1)); /* make the heap */
    st_theap *h = this_heap();
    REQUIRE(h != NULL && h->next_all == NULL);
    for (long s = 0; s < steps; s++) {
        step((size_t)test_rand_range(0, SLOTS - 1), (unsigned char)(s % 251 + 1));
        if (test_rand_range(0, 4999) == 0)
            strata_malloc_trim(0);
        if (s % 64 == 0) {
            int theap = st_theap_check(h), large = st_large_check();
            if (theap != 0 || large != 0) {
                fprintf(stderr, "  step %ld: %d heap and %d large-block violations\n", s, theap,
                        large);
                CHECK(false);
                break;
            }
        }
    }
    for (size_t i = 0; i < SLOTS; i++)
        if (live[i].p != NULL) {
            CHECK(intact(&live[i]));
            strata_free(live[i].p);
            live[i].p = NULL;
        }
    CHECK_EQ(st_theap_check(h), 0);
    CHECK_EQ(st_large_check(), 0);
    strata_malloc_stats st;
    strata_malloc_stats_get(&st);
    CHECK_EQ(st.live_bytes, 0);
}

/* n blocks of `size` bytes filled with `byte`, in an array of the C
 * library's (its free releases it); NULL if any allocation failed. */
static unsigned char **filled_blocks(size_t n, size_t size, int byte)
{
    unsigned char **p = malloc(n * sizeof(*p));
    strata_malloc_trim(0); /* no kept blocks or half-used slabs of earlier tests */
    for (size_t i = 0; p != NULL && i < n; i++) {
        p[i] = strata_malloc(size);
        if (p[i] == NULL)
            return NULL;
        memset(p[i], byte, size);
    }
    return p;
}

/* Blocks of one size, all but one in 64 freed in address order (the
 * order they were allocated in): the pages the frees empty in a sparse
 * slab wait in pending runs and go back with one madvise per run, not
 * one per page; then the slabs are allocated from again, and no pending
 * purge may touch a page that holds a block by then. */
static void pending_runs(size_t size)
{
    size_t n = 8 * 1024 * KIB / size, kept = 0, most_pending = 0;
    unsigned char **p = filled_blocks(n, size, 0x11);
    REQUIRE(p != NULL);
    st_theap *h = this_heap();
    uint64_t calls = h->purges, bytes = h->purged_bytes;
    for (size_t i = 0; i < n; i++) {
        if (i % 64 == 0) {
            p[kept++] = p[i];
            continue;
        }
        strata_free(p[i]);
        most_pending = ST_MAX(most_pending, h->pending_runs);
        if (i % 512 == 0 && st_theap_check(h) != 0) {
            fprintf(stderr, "  %zu bytes: heap violations after free %zu\n", size, i);
            CHECK(false);
            break;
        }
    }
    calls = h->purges - calls;
    size_t pages = (h->purged_bytes - bytes) / ST_PAGE_SIZE, pending = h->pending_runs;
    printf("  %zu bytes: %zu pages purged in %llu calls; at most %zu runs pending, %zu at the "
           "end\n",
           size, pages, (unsigned long long)calls, most_pending, pending);
    CHECK(pending > 0);
    CHECK(pages >= n * size / ST_PAGE_SIZE / 2);
    CHECK(calls * 4 <= pages); /* runs of ~15 pages between survivors */
    for (size_t i = kept; i < n; i++) { /* slabs with pending runs allocated from again */
        p[i] = strata_malloc(size);
        REQUIRE(p[i] != NULL);
        memset(p[i], 0x22, size);
    }
    CHECK_EQ(st_theap_check(h), 0);
    st_theap_purge_pending(h);
    for (size_t i = 0; i < n; i++)
        if (!head_intact(p[i], size, i < kept ? 0x11 : 0x22)) {
            fprintf(stderr, "  %zu bytes: block %zu lost its contents\n", size, i);
            CHECK(false);
            break;
        }
    for (size_t i = 0; i < n; i++)
        strata_free(p[i]);
    CHECK_EQ(st_theap_check(h), 0);
    free(p);
}

TEST(pending_runs_purge_in_few_calls_and_spare_reused_pages)
{
    pending_runs(1024);
    pending_runs(3000); /* blocks straddle pages */
}

/* Pages queued for purging go back to the OS before anything takes them
 * again: a slab emptied with runs pending queues them, and blocks
 * allocated at once, which may get those very pages, keep what is
 * written in them when the queue goes. */
TEST(queued_pages_go_back_before_they_are_reused)
{
    enum { SIZE = 3000, MEDIUM = 20 * KIB, MEDIUMS = 256 };
    size_t cap = st_class_table[st_sizeclass_of(SIZE)].capacity;
    /* one slab full, then one more block: the first slab is no longer current */
    unsigned char **p = filled_blocks(cap + 1, SIZE, 0x44), *m[MEDIUMS];
    REQUIRE(p != NULL);
    st_theap *h = this_heap();
    for (size_t i = 0; i < cap; i++) /* in address order: sparse, runs pending, then empty */
        strata_free(p[i]);
    printf("  %u ranges (%zu bytes) queued once the slab is gone\n", h->purge_queue.count,
           h->purge_queue.bytes);
    REQUIRE(h->purge_queue.count > 0);
    for (size_t i = 0; i < MEDIUMS; i++) {
        m[i] = strata_malloc(MEDIUM);
        REQUIRE(m[i] != NULL);
        memset(m[i], 0x55, MEDIUM);
    }
    CHECK_EQ(st_theap_check(h), 0);
    st_theap_purge_pending(h); /* the queue goes (if it is still there) */
    for (size_t i = 0; i < MEDIUMS; i++) {
        size_t k = 0;
        while (k < MEDIUM && m[i][k] == 0x55)
            k++;
        CHECK_EQ(k, MEDIUM); /* a page given back after the memset reads zero */
        strata_free(m[i]);
    }
    strata_free(p[cap]);
    free(p);
}

/* Pages of slab s resident now (mincore). */
static size_t resident_pages(const st_slab *s)
{
    size_t pages = s->block_bytes / ST_PAGE_SIZE, n = 0;
    unsigned char vec[512];
    if (pages > sizeof(vec) || mincore((void *)s->block, s->block_bytes, vec) != 0)
        return SIZE_MAX;
    for (size_t i = 0; i < pages; i++)
        n += vec[i] & 1;
    return n;
}

/* A class's first slab faults in as it is written; the one that takes
 * over when it has filled up (objects of 1 KiB and up) is faulted in
 * whole at once, before anything is written to it. */
TEST(a_slab_that_takes_over_from_a_full_one_is_faulted_in_at_once)
{
    enum { SIZE = 11 * 1024 }; /* a class no other test uses */
    unsigned c = st_sizeclass_of(SIZE);
    size_t cap = st_class_table[c].capacity;
    REQUIRE(cap <= 64);
    unsigned char **p = malloc((cap + 1) * sizeof(*p));
    REQUIRE(p != NULL);
    strata_malloc_trim(0);
    st_theap *h = this_heap();
    REQUIRE(h->current[c] == &st_full_slab); /* the class has no slab yet */
    p[0] = strata_malloc(SIZE);
    REQUIRE(p[0] != NULL);
    size_t first = resident_pages(h->current[c]), pages = h->current[c]->block_bytes / ST_PAGE_SIZE;
    printf("  first slab: %zu of %zu pages resident before any write\n", first, pages);
    CHECK(first < pages / 2);
    for (size_t i = 1; i < cap; i++) {
        p[i] = strata_malloc(SIZE);
        REQUIRE(p[i] != NULL);
        memset(p[i], 0x66, SIZE);
    }
    p[cap] = strata_malloc(SIZE); /* the slab is full: the next one takes over */
    REQUIRE(p[cap] != NULL);
    size_t next = resident_pages(h->current[c]);
    printf("  next slab: %zu of %zu pages resident before any write\n", next, pages);
    CHECK_EQ(next, pages);
    CHECK_EQ(st_theap_check(h), 0);
    for (size_t i = 0; i <= cap; i++)
        strata_free(p[i]);
    free(p);
}

/* Frees that go round many sparse slabs, emptying pages of each in turn,
 * grow a run in every one of them: the runs together stay within
 * ST_PURGE_PENDING_PAGES (else a thread that stops there would hold up to
 * 32 slabs' worth of empty pages until its next housekeeping). */
TEST(pending_runs_stay_within_their_page_limit)
{
    enum { SIZE = 13312, SLABS = 30 }; /* fewer slabs than runs: every run grows */
    size_t cap = st_class_table[st_sizeclass_of(SIZE)].capacity, n = SLABS * cap, most = 0;
    unsigned char **p = filled_blocks(n, SIZE, 0x33);
    REQUIRE(p != NULL);
    st_theap *h = this_heap();
    /* slab j holds p[j * cap ...] (a fresh class fills its slabs in turn);
     * its first half freed makes it sparse, then round the slabs one
     * block at a time, in address order in each, the last block kept */
    for (size_t j = 0; j < SLABS; j++)
        for (size_t k = 0; k < cap / 2; k++)
            strata_free(p[j * cap + k]), p[j * cap + k] = NULL;
    uint64_t calls = h->purges;
    for (size_t k = cap / 2; k + 1 < cap; k++)
        for (size_t j = 0; j < SLABS; j++) {
            strata_free(p[j * cap + k]);
            p[j * cap + k] = NULL;
            most = ST_MAX(most, h->pending_pages);
        }
    printf("  %zu objects a slab: at most %zu pages pending (limit %u), %llu ranges purged\n", cap,
           most, ST_PURGE_PENDING_PAGES, (unsigned long long)(h->purges - calls));
    CHECK(most > ST_PURGE_PENDING_PAGES * 3 / 4); /* reached the limit, which held */
    CHECK(most <= ST_PURGE_PENDING_PAGES);
    CHECK_EQ(st_theap_check(h), 0);
    for (size_t i = 0; i < n; i++)
        if (p[i] != NULL) {
            CHECK(head_intact(p[i], SIZE, 0x33));
            strata_free(p[i]);
        }
    CHECK_EQ(st_theap_check(h), 0);
    free(p);
}
