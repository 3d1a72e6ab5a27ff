/* SPDX-License-Identifier: MIT */
/*
 * API conformance of strata's malloc, through its strata_ names (the
 * harness itself keeps using the C library's malloc, so nothing here
 * disturbs strata's counters). Every function of strata/malloc.h and its
 * edge cases, held to what glibc does: sizes 0, 1, 15/16/17, every size
 * class boundary, medium and large sizes up to 64 MiB; 16-byte alignment
 * of every block and the asked alignment up to 64 MiB (and 1 GiB, which
 * the header promises); usable size at least what was asked and writable;
 * realloc keeping the contents across small, medium and large; the
 * overflow checks of calloc and reallocarray; EINVAL and an untouched
 * *out from posix_memalign; calloc memory zero even when reused; NULL with
 * ENOMEM for impossible sizes; mallopt, mallinfo2, malloc_trim, the C23
 * sized frees; and a randomized model of every allocating function with
 * content patterns and an overlap check. The statistics (live bytes) must
 * come back to their starting value after each test frees what it made.
 */
#include <errno.h>

#include "sizeclass.h"
#include "strata/malloc.h"
#include "test.h"

#define KIB ((size_t)1024)
#define MIB ((size_t)1024 * 1024)
#define PAGE ((size_t)4096)

/* ---- content patterns ---------------------------------------------------------- */

/* The 64-bit word at word index i of a block filled with `seed`. */
static inline uint64_t pat_word(uint64_t seed, size_t i)
{
    uint64_t z = seed * 0x9e3779b97f4a7c15ull + i * 0xbf58476d1ce4e5b9ull;
    return z ^ (z >> 29);
}

/* Fill n bytes of p (16-byte aligned) with the pattern of seed. */
static void fill(void *p, size_t n, uint64_t seed)
{
    uint64_t *w = p;
    size_t words = n / 8;
    for (size_t i = 0; i < words; i++)
        w[i] = pat_word(seed, i);
    uint64_t last = pat_word(seed, words);
    memcpy((char *)p + words * 8, &last, n % 8);
}

/* Whether the first n bytes of p still hold the pattern of seed. */
static bool verify(const void *p, size_t n, uint64_t seed)
{
    const uint64_t *w = p;
    size_t words = n / 8;
    for (size_t i = 0; i < words; i++)
        if (w[i] != pat_word(seed, i)) return false;
    uint64_t last = pat_word(seed, words);
    return memcmp((const char *)p + words * 8, &last, n % 8) == 0;
}

static bool all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0) return false;
    return true;
}

static bool aligned(const void *p, size_t a)
{
    return ((uintptr_t)p & (a - 1)) == 0;
}

static size_t live_bytes(void)
{
    strata_malloc_stats s;
    strata_malloc_stats_get(&s);
    return s.live_bytes;
}

/* Every size worth trying: the small edge cases, both sides of every size
 * class boundary, then medium and large. Returns how many. */
static size_t edge_sizes(size_t *out, size_t cap, bool with_huge)
{
    size_t n = 0;
    static const size_t first[] = {0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33};
    for (size_t i = 0; i < ST_ARRAY_LEN(first); i++)
        out[n++] = first[i];
    for (unsigned c = 0; c < ST_CLASS_COUNT && n + 3 <= cap; c++) {
        size_t s = st_sizeclass_size(c);
        out[n++] = s - 1;
        out[n++] = s;
        out[n++] = s + 1;
    }
    static const size_t big[] = {
        16 * KIB + 1, 32 * KIB,    64 * KIB - 1, 100 * KIB, 256 * KIB + 3, MIB - 1, MIB,
        MIB + 1,      2 * MIB + 5, 4 * MIB - 1,  4 * MIB,   4 * MIB + 1,   8 * MIB, 64 * MIB};
    for (size_t i = 0; i < ST_ARRAY_LEN(big) && n < cap; i++)
        if (with_huge || big[i] <= 8 * MIB) out[n++] = big[i];
    return n;
}

/* Check one fresh block of `asked` bytes: aligned to 16 and `align`, at
 * least `asked` usable, writable over its whole usable size. */
static bool check_block(void *p, size_t asked, size_t align, uint64_t seed)
{
    if (p == NULL) {
        fprintf(stderr, "  NULL for %zu bytes (align %zu)\n", asked, align);
        return false;
    }
    size_t us = strata_malloc_usable_size(p);
    bool ok = aligned(p, 16) && aligned(p, align) && us >= asked;
    if (!ok)
        fprintf(stderr, "  block %p of %zu bytes (align %zu): usable %zu\n", p, asked, align, us);
    fill(p, us, seed);
    if (!verify(p, us, seed)) {
        fprintf(stderr, "  block %p of %zu bytes: pattern lost at once\n", p, asked);
        ok = false;
    }
    return ok;
}

/* ---- malloc / free / usable_size --------------------------------------------------- */

TEST(malloc_every_size)
{
    size_t sizes[400];
    size_t n = edge_sizes(sizes, ST_ARRAY_LEN(sizes), true);
    size_t base = live_bytes();
    for (size_t i = 0; i < n; i++) {
        void *p = strata_malloc(sizes[i]);
        CHECK(check_block(p, sizes[i], 16, i));
        if (p == NULL) continue;
        size_t us = strata_malloc_usable_size(p);
        CHECK_EQ(live_bytes(), base + us);
        CHECK(verify(p, us, i));
        strata_free(p);
        if (live_bytes() != base)
            fprintf(stderr, "  after free of %zu bytes: live %zu, was %zu\n", sizes[i],
                    live_bytes(), base);
        CHECK_EQ(live_bytes(), base);
    }
}

TEST(malloc_zero_gives_distinct_blocks)
{
    void *a = strata_malloc(0), *b = strata_malloc(0);
    REQUIRE(a != NULL && b != NULL);
    CHECK(a != b);
    CHECK(aligned(a, 16) && aligned(b, 16));
    strata_free(a);
    strata_free(b);
}

TEST(usable_size_and_free_of_null)
{
    CHECK_EQ(strata_malloc_usable_size(NULL), 0);
    size_t base = live_bytes();
    strata_free(NULL);
    strata_free_sized(NULL, 0);
    strata_free_sized(NULL, 100);
    strata_free_aligned_sized(NULL, 64, 128);
    CHECK_EQ(live_bytes(), base);
}

/* The usable size of a block does not change while it lives. */
TEST(usable_size_is_stable)
{
    size_t sizes[400];
    size_t n = edge_sizes(sizes, ST_ARRAY_LEN(sizes), false);
    void *ptrs[400];
    size_t us[400];
    for (size_t i = 0; i < n; i++) {
        ptrs[i] = strata_malloc(sizes[i]);
        REQUIRE(ptrs[i] != NULL);
        us[i] = strata_malloc_usable_size(ptrs[i]);
    }
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ(strata_malloc_usable_size(ptrs[i]), us[i]);
        strata_free(ptrs[i]);
    }
}

/* ---- many blocks of each class: no overlap, contents kept --------------------- */

typedef struct span {
    uintptr_t start;
    size_t len;
} span;

static int span_cmp(const void *a, const void *b)
{
    uintptr_t x = ((const span *)a)->start, y = ((const span *)b)->start;
    return x < y ? -1 : x > y;
}

/* Whether any two of the n blocks overlap (sorts the array). */
static bool any_overlap(span *s, size_t n)
{
    qsort(s, n, sizeof(*s), span_cmp);
    for (size_t i = 1; i < n; i++)
        if (s[i - 1].start + s[i - 1].len > s[i].start) {
            fprintf(stderr, "  blocks 0x%lx+%zu and 0x%lx overlap\n", (unsigned long)s[i - 1].start,
                    s[i - 1].len, (unsigned long)s[i].start);
            return true;
        }
    return false;
}

/* Shuffle n pointers (Fisher-Yates with the test PRNG). */
static void shuffle(void **a, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)test_rand_range(0, i - 1);
        void *t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

TEST(many_blocks_per_class_do_not_overlap)
{
    test_seed("free order");
    enum { PER_SIZE = 300 };
    size_t sizes[400];
    size_t nsizes = edge_sizes(sizes, ST_ARRAY_LEN(sizes), false);
    void **ptrs = malloc(PER_SIZE * sizeof(void *));
    span *spans = malloc(PER_SIZE * 2 * sizeof(span));
    size_t base = live_bytes();
    for (size_t k = 0; k < nsizes; k++) {
        size_t sz = sizes[k];
        size_t count = sz <= 16 * KIB ? PER_SIZE : sz <= MIB ? 40 : 6;
        for (size_t i = 0; i < count; i++) {
            ptrs[i] = strata_malloc(sz);
            REQUIRE(ptrs[i] != NULL);
            REQUIRE(aligned(ptrs[i], 16));
            size_t us = strata_malloc_usable_size(ptrs[i]);
            REQUIRE(us >= sz);
            fill(ptrs[i], us, (uint64_t)k << 32 | i);
            spans[i] = (span){(uintptr_t)ptrs[i], us};
        }
        for (size_t i = 0; i < count; i++)
            if (!verify(ptrs[i], spans[i].len, (uint64_t)k << 32 | i)) {
                fprintf(stderr, "  size %zu: block %zu of %zu overwritten\n", sz, i, count);
                CHECK(false);
            }
        CHECK(!any_overlap(spans, count));
        shuffle(ptrs, count);
        for (size_t i = 0; i < count; i++)
            strata_free(ptrs[i]);
        CHECK_EQ(live_bytes(), base);
    }
    free(ptrs);
    free(spans);
}

/* ---- calloc -------------------------------------------------------------------------- */

TEST(calloc_is_zero_even_when_reused)
{
    test_seed("calloc sizes");
    size_t sizes[400];
    size_t nsizes = edge_sizes(sizes, ST_ARRAY_LEN(sizes), false);
    for (size_t k = 0; k < nsizes; k++) {
        size_t sz = sizes[k];
        int rounds = sz <= 16 * KIB ? 20 : 4;
        for (int r = 0; r < rounds; r++) {
            void *dirty[8];
            int nd = sz <= 16 * KIB ? 8 : 2;
            for (int i = 0; i < nd; i++) {
                dirty[i] = strata_malloc(sz);
                REQUIRE(dirty[i] != NULL);
                memset(dirty[i], 0xff, strata_malloc_usable_size(dirty[i]));
            }
            for (int i = 0; i < nd; i++)
                strata_free(dirty[i]);
            /* Half as count x 1, half as 1 x count, one as (size/16) x 16. */
            void *z[8];
            for (int i = 0; i < nd; i++) {
                size_t cnt = sz, each = 1;
                if (i % 2) cnt = 1, each = sz;
                if (i == 2 && sz % 16 == 0 && sz > 0) cnt = sz / 16, each = 16;
                z[i] = strata_calloc(cnt, each);
                REQUIRE(z[i] != NULL);
                CHECK(aligned(z[i], 16));
                CHECK(strata_malloc_usable_size(z[i]) >= sz);
                if (!all_zero(z[i], sz)) {
                    fprintf(stderr, "  calloc(%zu, %zu) not zero (round %d)\n", cnt, each, r);
                    CHECK(false);
                }
                memset(z[i], 0xee, sz);
            }
            for (int i = 0; i < nd; i++)
                strata_free(z[i]);
        }
    }
}

/* A random mix of dirty frees and callocs of random sizes. */
TEST(calloc_random_reuse)
{
    test_seed("calloc reuse");
    enum { SLOTS = 64 };
    void *slot[SLOTS] = {0};
    long steps = test_steps(20000);
    for (long s = 0; s < steps; s++) {
        unsigned i = (unsigned)test_rand_range(0, SLOTS - 1);
        if (slot[i] != NULL) {
            memset(slot[i], 0xa5, strata_malloc_usable_size(slot[i]));
            strata_free(slot[i]);
            slot[i] = NULL;
            continue;
        }
        uint64_t r = test_rand_range(0, 99);
        size_t sz = r < 85   ? test_rand_range(0, 2048)
                    : r < 98 ? test_rand_range(2049, 300 * KIB)
                             : test_rand_range(300 * KIB, 3 * MIB);
        if (test_rand() % 2) {
            slot[i] = strata_calloc(1, sz);
        } else {
            slot[i] = strata_malloc(sz);
            if (slot[i]) memset(slot[i], 0, sz);
        }
        REQUIRE(slot[i] != NULL);
        if (!all_zero(slot[i], sz)) {
            fprintf(stderr, "  step %ld: calloc of %zu not zero\n", s, sz);
            REQUIRE(false);
        }
    }
    for (unsigned i = 0; i < SLOTS; i++)
        strata_free(slot[i]);
}

TEST(calloc_overflow_and_zero)
{
    static const size_t bad[][2] = {
        {SIZE_MAX / 2, 3},
        {3, SIZE_MAX / 2},
        {SIZE_MAX, SIZE_MAX},
        {(size_t)1 << 32, (size_t)1 << 32},
        {((size_t)1 << 33) + 1, (size_t)1 << 31},
        {SIZE_MAX, 2},
    };
    for (size_t i = 0; i < ST_ARRAY_LEN(bad); i++) {
        errno = 0;
        void *p = strata_calloc(bad[i][0], bad[i][1]);
        CHECK(p == NULL);
        CHECK_EQ(errno, ENOMEM);
        if (p) strata_free(p);
    }
    /* A product that fits but is absurd (> PTRDIFF_MAX): no memory. */
    errno = 0;
    void *p = strata_calloc((size_t)1 << 62, 2);
    CHECK(p == NULL);
    CHECK_EQ(errno, ENOMEM);
    /* Zero products are fine, as in glibc: a unique, freeable block. */
    void *a = strata_calloc(0, 100), *b = strata_calloc(100, 0), *c = strata_calloc(0, 0);
    CHECK(a != NULL && b != NULL && c != NULL);
    CHECK(a != b && b != c && a != c);
    strata_free(a);
    strata_free(b);
    strata_free(c);
}

/* ---- realloc ------------------------------------------------------------------------- */

/* Grow then shrink one block through every regime, checking contents. */
TEST(realloc_keeps_contents_across_regimes)
{
    static const size_t steps[] = {
        1,        15,       16,           17,        100,       1024,      1025,
        4000,     16 * KIB, 16 * KIB + 1, 100 * KIB, 500 * KIB, MIB + 1,   3 * MIB,
        8 * MIB,  20 * MIB, 64 * MIB,     8 * MIB,   MIB + 1,   300 * KIB, 16 * KIB + 1,
        16 * KIB, 2000,     48,           17,        1,         30 * MIB,  5,
        4 * MIB,  33,       16 * KIB,     65 * MIB};
    size_t base = live_bytes();
    void *p = strata_realloc(NULL, steps[0]);
    REQUIRE(check_block(p, steps[0], 16, 0));
    size_t cur = steps[0];
    fill(p, cur, 1000);
    for (size_t i = 1; i < ST_ARRAY_LEN(steps); i++) {
        size_t n = steps[i];
        void *q = strata_realloc(p, n);
        REQUIRE(q != NULL);
        size_t keep = cur < n ? cur : n;
        if (!verify(q, keep, 1000 + i - 1)) {
            fprintf(stderr, "  realloc %zu -> %zu lost the contents\n", cur, n);
            CHECK(false);
        }
        CHECK(aligned(q, 16));
        CHECK(strata_malloc_usable_size(q) >= n);
        fill(q, strata_malloc_usable_size(q), 1000 + i);
        p = q;
        cur = n;
    }
    strata_free(p);
    CHECK_EQ(live_bytes(), base);
}

/* Random walk of many blocks through realloc, each with its pattern. */
TEST(realloc_random_walk)
{
    test_seed("realloc walk");
    enum { SLOTS = 48 };
    void *slot[SLOTS] = {0};
    size_t size[SLOTS] = {0};
    uint64_t tag[SLOTS] = {0};
    size_t base = live_bytes();
    long steps = test_steps(6000);
    for (long s = 0; s < steps; s++) {
        unsigned i = (unsigned)test_rand_range(0, SLOTS - 1);
        uint64_t r = test_rand_range(0, 999);
        size_t n = r < 700   ? test_rand_range(0, 4096)
                   : r < 950 ? test_rand_range(4097, 512 * KIB)
                   : r < 995 ? test_rand_range(512 * KIB, 6 * MIB)
                             : test_rand_range(6 * MIB, 24 * MIB);
        if (slot[i] != NULL && !verify(slot[i], size[i], tag[i])) {
            fprintf(stderr, "  step %ld: block of %zu overwritten before realloc\n", s, size[i]);
            REQUIRE(false);
        }
        void *q = strata_realloc(slot[i], n);
        if (n == 0 && slot[i] != NULL) {
            CHECK(q == NULL); /* glibc: realloc(p, 0) frees p and returns NULL */
            slot[i] = q;
            size[i] = 0;
            continue;
        }
        REQUIRE(q != NULL);
        REQUIRE(aligned(q, 16));
        REQUIRE(strata_malloc_usable_size(q) >= n);
        size_t keep = size[i] < n ? size[i] : n;
        if (!verify(q, keep, tag[i])) {
            fprintf(stderr, "  step %ld: realloc %zu -> %zu lost the contents\n", s, size[i], n);
            REQUIRE(false);
        }
        tag[i] = (uint64_t)s;
        fill(q, n, tag[i]);
        slot[i] = q;
        size[i] = n;
    }
    span spans[SLOTS];
    size_t nspans = 0;
    for (unsigned i = 0; i < SLOTS; i++)
        if (slot[i])
            spans[nspans++] = (span){(uintptr_t)slot[i], strata_malloc_usable_size(slot[i])};
    CHECK(!any_overlap(spans, nspans));
    for (unsigned i = 0; i < SLOTS; i++) {
        if (slot[i]) CHECK(verify(slot[i], size[i], tag[i]));
        strata_free(slot[i]);
    }
    CHECK_EQ(live_bytes(), base);
}

TEST(realloc_null_and_zero_like_glibc)
{
    size_t base = live_bytes();
    /* realloc(NULL, n) is malloc(n). */
    void *p = strata_realloc(NULL, 100);
    REQUIRE(check_block(p, 100, 16, 7));
    strata_free(p);
    /* realloc(NULL, 0) is malloc(0): a block. */
    p = strata_realloc(NULL, 0);
    CHECK(p != NULL);
    strata_free(p);
    CHECK_EQ(live_bytes(), base);
    /* glibc: realloc(p, 0) frees p and returns NULL; in every regime. */
    static const size_t sizes[] = {1, 100, 5000, 40 * KIB, 2 * MIB, 9 * MIB};
    for (size_t i = 0; i < ST_ARRAY_LEN(sizes); i++) {
        p = strata_malloc(sizes[i]);
        REQUIRE(p != NULL);
        void *q = strata_realloc(p, 0);
        CHECK(q == NULL);
        if (q != NULL) strata_free(q);
        if (live_bytes() != base)
            fprintf(stderr, "  realloc(p of %zu, 0) did not free p\n", sizes[i]);
        CHECK_EQ(live_bytes(), base);
    }
}

TEST(realloc_failure_leaves_block)
{
    static const size_t sizes[] = {24, 3000, 64 * KIB, 3 * MIB, 10 * MIB};
    static const size_t huge[] = {SIZE_MAX, SIZE_MAX - 4096, (size_t)PTRDIFF_MAX + 1,
                                  (size_t)1 << 62};
    for (size_t i = 0; i < ST_ARRAY_LEN(sizes); i++) {
        void *p = strata_malloc(sizes[i]);
        REQUIRE(p != NULL);
        fill(p, sizes[i], i);
        for (size_t k = 0; k < ST_ARRAY_LEN(huge); k++) {
            errno = 0;
            void *q = strata_realloc(p, huge[k]);
            CHECK(q == NULL);
            CHECK_EQ(errno, ENOMEM);
            CHECK(verify(p, sizes[i], i));
        }
        strata_free(p);
    }
}

/* ---- reallocarray --------------------------------------------------------------- */

TEST(reallocarray)
{
    size_t base = live_bytes();
    void *p = strata_reallocarray(NULL, 10, 10);
    REQUIRE(check_block(p, 100, 16, 3));
    fill(p, 100, 3);
    void *q = strata_reallocarray(p, 1000, 24);
    REQUIRE(q != NULL);
    CHECK(verify(q, 100, 3));
    CHECK(strata_malloc_usable_size(q) >= 24000);
    fill(q, 24000, 4);
    static const size_t bad[][2] = {{SIZE_MAX / 2, 3},
                                    {3, SIZE_MAX / 2},
                                    {(size_t)1 << 32, (size_t)1 << 32},
                                    {SIZE_MAX, SIZE_MAX}};
    for (size_t i = 0; i < ST_ARRAY_LEN(bad); i++) {
        errno = 0;
        void *r = strata_reallocarray(q, bad[i][0], bad[i][1]);
        CHECK(r == NULL);
        CHECK_EQ(errno, ENOMEM);
        CHECK(verify(q, 24000, 4)); /* untouched, still ours */
    }
    /* An overflowing product with a NULL block: also ENOMEM. */
    errno = 0;
    CHECK(strata_reallocarray(NULL, SIZE_MAX / 2, 3) == NULL);
    CHECK_EQ(errno, ENOMEM);
    q = strata_reallocarray(q, 3, 1000);
    REQUIRE(q != NULL);
    CHECK(verify(q, 3000, 4));
    strata_free(q);
    /* reallocarray(NULL, 0, 0) is malloc(0) as in glibc. */
    p = strata_reallocarray(NULL, 0, 0);
    CHECK(p != NULL);
    strata_free(p);
    CHECK_EQ(live_bytes(), base);
}

/* ---- aligned allocation --------------------------------------------------------- */

static const size_t align_sizes[] = {1, 16, 100, 4095, 5000, 70000};

TEST(posix_memalign_good_alignments)
{
    size_t base = live_bytes();
    uint64_t seed = 1;
    for (size_t a = 8; a <= 4 * MIB; a *= 2) {
        for (size_t k = 0; k < ST_ARRAY_LEN(align_sizes); k++) {
            size_t sz = align_sizes[k];
            void *p = (void *)1;
            int rc = strata_posix_memalign(&p, a, sz);
            CHECK_EQ(rc, 0);
            if (rc != 0) continue;
            CHECK(check_block(p, sz, a, seed++));
            strata_free(p);
        }
        /* Size equal to and just over the alignment. */
        void *p = NULL;
        REQUIRE(strata_posix_memalign(&p, a, a + 1) == 0);
        CHECK(check_block(p, a + 1, a, seed++));
        strata_free(p);
    }
    CHECK_EQ(live_bytes(), base);
}

/* Many aligned blocks of one alignment live at once: none overlap, all keep
 * their contents (the carving of the alignment slack must not leak into a
 * neighbour). */
TEST(aligned_blocks_coexist)
{
    test_seed("aligned sizes");
    static const size_t aligns[] = {32, 64, 256, 4096, 65536, 2 * MIB};
    enum { N = 24 };
    for (size_t ai = 0; ai < ST_ARRAY_LEN(aligns); ai++) {
        void *p[N];
        span s[N];
        size_t sz[N];
        for (int i = 0; i < N; i++) {
            sz[i] = (size_t)test_rand_range(1, aligns[ai] >= 65536 ? 100 * KIB : 3 * KIB);
            p[i] = strata_memalign(aligns[ai], sz[i]);
            REQUIRE(p[i] != NULL);
            CHECK(aligned(p[i], aligns[ai]));
            s[i] = (span){(uintptr_t)p[i], strata_malloc_usable_size(p[i])};
            CHECK(s[i].len >= sz[i]);
            fill(p[i], s[i].len, ai * N + (size_t)i);
        }
        for (int i = 0; i < N; i++)
            CHECK(verify(p[i], strata_malloc_usable_size(p[i]), ai * N + (size_t)i));
        CHECK(!any_overlap(s, N));
        for (int i = 0; i < N; i++)
            strata_free(p[i]);
    }
}

TEST(large_alignments)
{
    /* 64 MiB (the large path) and 1 GiB (the header's promise). */
    static const size_t aligns[] = {8 * MIB, 64 * MIB, 1024 * MIB};
    static const size_t sizes[] = {100, MIB, 5 * MIB};
    size_t base = live_bytes();
    for (size_t ai = 0; ai < ST_ARRAY_LEN(aligns); ai++)
        for (size_t k = 0; k < ST_ARRAY_LEN(sizes); k++) {
            void *p = NULL;
            int rc = strata_posix_memalign(&p, aligns[ai], sizes[k]);
            CHECK_EQ(rc, 0);
            if (rc == 0) {
                CHECK(check_block(p, sizes[k], aligns[ai], k));
                strata_free(p);
            }
            p = strata_aligned_alloc(aligns[ai], sizes[k]);
            CHECK(check_block(p, sizes[k], aligns[ai], k + 10));
            strata_free(p);
            p = strata_memalign(aligns[ai], sizes[k]);
            CHECK(check_block(p, sizes[k], aligns[ai], k + 20));
            strata_free(p);
        }
    CHECK_EQ(live_bytes(), base);
}

TEST(posix_memalign_bad_alignment)
{
    static const size_t bad[] = {0,
                                 1,
                                 2,
                                 3,
                                 4 /* sizeof(void *) / 2 */,
                                 12,
                                 24,
                                 48,
                                 100,
                                 3 * MIB,
                                 SIZE_MAX,
                                 SIZE_MAX - 7,
                                 ((size_t)1 << 63) + 8};
    size_t base = live_bytes();
    for (size_t i = 0; i < ST_ARRAY_LEN(bad); i++) {
        void *out = (void *)0x1234;
        int rc = strata_posix_memalign(&out, bad[i], 64);
        if (rc != EINVAL)
            fprintf(stderr, "  posix_memalign(align %zu): %d, not EINVAL\n", bad[i], rc);
        CHECK_EQ(rc, EINVAL);
        CHECK(out == (void *)0x1234);
    }
    /* 8 = sizeof(void *) is valid. */
    void *out = NULL;
    CHECK_EQ(strata_posix_memalign(&out, sizeof(void *), 10), 0);
    CHECK(out != NULL && aligned(out, 16));
    strata_free(out);
    /* A valid alignment with an impossible size: ENOMEM, *out untouched. */
    static const size_t huge[] = {SIZE_MAX, SIZE_MAX - 100, (size_t)PTRDIFF_MAX + 1};
    for (size_t i = 0; i < ST_ARRAY_LEN(huge); i++) {
        out = (void *)0x1234;
        CHECK_EQ(strata_posix_memalign(&out, 64, huge[i]), ENOMEM);
        CHECK(out == (void *)0x1234);
        out = (void *)0x1234;
        CHECK_EQ(strata_posix_memalign(&out, 4 * MIB, huge[i]), ENOMEM);
        CHECK(out == (void *)0x1234);
    }
    /* A power of two too large to ever be honoured: glibc says ENOMEM. */
    out = (void *)0x1234;
    CHECK_EQ(strata_posix_memalign(&out, (size_t)1 << 63, 16), ENOMEM);
    CHECK(out == (void *)0x1234);
    CHECK_EQ(live_bytes(), base);
}

TEST(aligned_alloc_and_memalign)
{
    size_t base = live_bytes();
    uint64_t seed = 50;
    for (size_t a = 16; a <= 4 * MIB; a *= 2)
        for (size_t k = 0; k < ST_ARRAY_LEN(align_sizes); k++) {
            /* Sizes that are not a multiple of the alignment: glibc accepts. */
            void *p = strata_aligned_alloc(a, align_sizes[k]);
            CHECK(check_block(p, align_sizes[k], a, seed++));
            strata_free(p);
            p = strata_memalign(a, align_sizes[k]);
            CHECK(check_block(p, align_sizes[k], a, seed++));
            strata_free(p);
        }
    /* Alignments below 16 still give 16-aligned blocks. */
    for (size_t a = 1; a < 16; a *= 2) {
        void *p = strata_memalign(a, 24);
        CHECK(check_block(p, 24, 16, seed++));
        strata_free(p);
        p = strata_aligned_alloc(a, 24);
        CHECK(check_block(p, 24, 16, seed++));
        strata_free(p);
    }
    /* memalign rounds a non-power-of-two alignment up (glibc): 24 -> 32. */
    void *p = strata_memalign(24, 100);
    CHECK(check_block(p, 100, 32, seed++));
    strata_free(p);
    p = strata_memalign(3000, 100);
    CHECK(check_block(p, 100, 4096, seed++));
    strata_free(p);
    /* memalign(0, n) is malloc(n). */
    p = strata_memalign(0, 100);
    CHECK(check_block(p, 100, 16, seed++));
    strata_free(p);
    /* aligned_alloc with a bad alignment: glibc 2.36 treats it like
     * memalign, 2.38 fails with EINVAL; either is accepted. */
    errno = 0;
    p = strata_aligned_alloc(24, 100);
    if (p == NULL)
        CHECK_EQ(errno, EINVAL);
    else
        CHECK(check_block(p, 100, 32, seed++));
    strata_free(p);
    errno = 0;
    p = strata_aligned_alloc(0, 100);
    if (p == NULL)
        CHECK_EQ(errno, EINVAL);
    else
        CHECK(check_block(p, 100, 16, seed++));
    strata_free(p);
    CHECK_EQ(live_bytes(), base);
}

TEST(valloc_and_pvalloc)
{
    size_t base = live_bytes();
    long page = sysconf(_SC_PAGESIZE);
    REQUIRE(page > 0);
    size_t pg = (size_t)page;
    static const size_t sizes[] = {1, 17, 4095, 4096, 4097, 10000, 70000, 3 * MIB + 1};
    for (size_t k = 0; k < ST_ARRAY_LEN(sizes); k++) {
        void *p = strata_valloc(sizes[k]);
        CHECK(check_block(p, sizes[k], pg, k));
        strata_free(p);
        size_t rounded = (sizes[k] + pg - 1) / pg * pg;
        p = strata_pvalloc(sizes[k]);
        CHECK(check_block(p, rounded, pg, k + 100));
        strata_free(p);
    }
    void *p = strata_valloc(0);
    CHECK(p != NULL && aligned(p, pg));
    strata_free(p);
    p = strata_pvalloc(0);
    CHECK(p != NULL && aligned(p, pg));
    strata_free(p);
    /* The rounding of pvalloc must not wrap around. */
    static const size_t huge[] = {SIZE_MAX, SIZE_MAX - 100, SIZE_MAX - 4096,
                                  (size_t)PTRDIFF_MAX + 1};
    for (size_t k = 0; k < ST_ARRAY_LEN(huge); k++) {
        errno = 0;
        CHECK(strata_pvalloc(huge[k]) == NULL);
        CHECK_EQ(errno, ENOMEM);
        errno = 0;
        CHECK(strata_valloc(huge[k]) == NULL);
        CHECK_EQ(errno, ENOMEM);
    }
    CHECK_EQ(live_bytes(), base);
}

/* ---- impossible requests -------------------------------------------------------- */

TEST(impossible_sizes_fail_with_enomem)
{
    size_t base = live_bytes();
    static const size_t huge[] = {SIZE_MAX,
                                  SIZE_MAX - 1,
                                  SIZE_MAX - 15,
                                  SIZE_MAX - 4096,
                                  SIZE_MAX - 4 * MIB,
                                  (size_t)PTRDIFF_MAX + 1,
                                  (size_t)PTRDIFF_MAX,
                                  (size_t)1 << 62,
                                  (size_t)1 << 48};
    for (size_t k = 0; k < ST_ARRAY_LEN(huge); k++) {
        errno = 0;
        void *p = strata_malloc(huge[k]);
        if (p != NULL || errno != ENOMEM)
            fprintf(stderr, "  malloc(%zu) = %p, errno %d\n", huge[k], p, errno);
        CHECK(p == NULL);
        CHECK_EQ(errno, ENOMEM);
        errno = 0;
        CHECK(strata_aligned_alloc(64, huge[k]) == NULL);
        CHECK_EQ(errno, ENOMEM);
        errno = 0;
        CHECK(strata_memalign(4 * MIB, huge[k]) == NULL);
        CHECK_EQ(errno, ENOMEM);
        errno = 0;
        CHECK(strata_calloc(1, huge[k]) == NULL);
        CHECK_EQ(errno, ENOMEM);
    }
    /* errno is left alone on success. */
    errno = 12345;
    void *p = strata_malloc(10);
    CHECK(p != NULL);
    CHECK_EQ(errno, 12345);
    strata_free(p);
    /* The heap still works after all those failures. */
    p = strata_malloc(1000);
    CHECK(check_block(p, 1000, 16, 9));
    strata_free(p);
    CHECK_EQ(live_bytes(), base);
}

/* ---- mallopt, mallinfo2, malloc_trim, sized frees ------------------------------ */

TEST(mallopt_returns_one)
{
    CHECK_EQ(strata_mallopt(M_MMAP_THRESHOLD, 128 * 1024), 1);
    CHECK_EQ(strata_mallopt(M_TRIM_THRESHOLD, -1), 1);
    CHECK_EQ(strata_mallopt(M_ARENA_MAX, 1), 1);
    CHECK_EQ(strata_mallopt(-12345, 0), 1);
    void *p = strata_malloc(100);
    CHECK(check_block(p, 100, 16, 1));
    strata_free(p);
}

TEST(mallinfo_is_mallinfo2_in_ints)
{
    void *p = strata_malloc(MIB);
    REQUIRE(p != NULL);
    struct mallinfo2 b = strata_mallinfo2();
    struct mallinfo a = strata_mallinfo();
    CHECK_EQ(a.uordblks, b.uordblks); /* both taken with p live, nothing else moving */
    CHECK_EQ(a.hblks, b.hblks);
    CHECK(a.arena > 0 && a.uordblks >= (int)MIB);
    strata_free(p);
}

TEST(mallinfo2_tracks_live_bytes)
{
    struct mallinfo2 a = strata_mallinfo2();
    void *p = strata_malloc(MIB);
    REQUIRE(p != NULL);
    memset(p, 1, MIB);
    struct mallinfo2 b = strata_mallinfo2();
    CHECK(b.uordblks >= a.uordblks + MIB);
    CHECK(b.arena >= b.uordblks);
    CHECK(b.arena >= MIB);
    strata_free(p);
    struct mallinfo2 c = strata_mallinfo2();
    CHECK(c.uordblks < b.uordblks);
    CHECK_EQ(c.uordblks, a.uordblks);
    /* A large block counts in hblks / hblkhd while it lives (and, as in
     * glibc, a block with a mapping of its own is not in uordblks). */
    void *big = strata_malloc(16 * MIB);
    REQUIRE(big != NULL);
    struct mallinfo2 d = strata_mallinfo2();
    CHECK_EQ(d.hblks, c.hblks + 1);
    CHECK(d.hblkhd >= c.hblkhd + 16 * MIB);
    CHECK(d.arena >= d.hblkhd);
    strata_free(big);
    struct mallinfo2 e = strata_mallinfo2();
    CHECK_EQ(e.hblks, c.hblks);
    CHECK_EQ(e.hblkhd, c.hblkhd);
    CHECK_EQ(e.uordblks, c.uordblks);
    /* Against the statistics: live bytes are uordblks plus large blocks. */
    strata_malloc_stats s;
    strata_malloc_stats_get(&s);
    CHECK(e.uordblks <= s.live_bytes);
    CHECK_EQ(e.hblks, s.large_blocks);
}

TEST(malloc_trim_then_heap_works)
{
    test_seed("trim");
    enum { N = 2000 };
    void **p = malloc(N * sizeof(void *));
    size_t *len = malloc(N * sizeof(size_t));
    size_t base = live_bytes();
    for (int i = 0; i < N; i++) {
        uint64_t r = test_rand_range(0, 99);
        size_t sz = r < 80 ? test_rand_range(1, 2048) : test_rand_range(16 * KIB, 256 * KIB);
        p[i] = strata_malloc(sz);
        REQUIRE(p[i] != NULL);
        memset(p[i], 0x5a, sz);
    }
    for (int i = 0; i < N; i++)
        strata_free(p[i]);
    int r1 = strata_malloc_trim(0);
    CHECK(r1 == 0 || r1 == 1);
    /* Everything was just returned: a second trim finds nothing. */
    int r2 = strata_malloc_trim(0);
    CHECK_EQ(r2, 0);
    CHECK_EQ(live_bytes(), base);
    /* The heap works after the trim, and calloc'ed pages read as zero. */
    for (int i = 0; i < N; i++) {
        size_t sz = (size_t)test_rand_range(1, i % 10 ? 2048 : 256 * KIB);
        p[i] = strata_calloc(1, sz);
        REQUIRE(p[i] != NULL);
        if (!all_zero(p[i], sz)) {
            fprintf(stderr, "  calloc(%zu) after trim not zero\n", sz);
            REQUIRE(false);
        }
        fill(p[i], sz, (uint64_t)i);
        len[i] = sz;
    }
    for (int i = 0; i < N; i++)
        CHECK(verify(p[i], len[i], (uint64_t)i));
    int r3 = strata_malloc_trim(1 * MIB);
    CHECK(r3 == 0 || r3 == 1);
    for (int i = 0; i < N; i++)
        strata_free(p[i]);
    CHECK_EQ(live_bytes(), base);
    free(p);
    free(len);
}

TEST(sized_frees)
{
    size_t sizes[400];
    size_t n = edge_sizes(sizes, ST_ARRAY_LEN(sizes), false);
    size_t base = live_bytes();
    for (size_t i = 0; i < n; i++) {
        void *p = strata_malloc(sizes[i]);
        REQUIRE(p != NULL);
        fill(p, sizes[i], i);
        strata_free_sized(p, sizes[i]);
        CHECK_EQ(live_bytes(), base);
        p = strata_calloc(1, sizes[i]);
        REQUIRE(p != NULL);
        strata_free_sized(p, sizes[i]);
        CHECK_EQ(live_bytes(), base);
    }
    for (size_t a = 16; a <= 4 * MIB; a *= 4)
        for (size_t k = 0; k < ST_ARRAY_LEN(align_sizes); k++) {
            void *p = strata_aligned_alloc(a, align_sizes[k]);
            REQUIRE(p != NULL);
            CHECK(aligned(p, a));
            fill(p, align_sizes[k], k);
            strata_free_aligned_sized(p, a, align_sizes[k]);
            CHECK_EQ(live_bytes(), base);
        }
}

/* ---- randomized model of every allocating function ----------------------------- */

typedef struct model_block {
    void *p;
    size_t size, align;
    uint64_t tag;
    int how; /* 0 plain, 1 aligned with `align` (free_aligned_sized allowed) */
} model_block;

/* A size: mostly small, some medium, now and then large. */
static size_t random_size(void)
{
    uint64_t r = test_rand_range(0, 999);
    if (r < 750) return (size_t)test_rand_range(0, 1024);
    if (r < 900) return (size_t)test_rand_range(1025, 16 * KIB);
    if (r < 990) return (size_t)test_rand_range(16 * KIB + 1, 1 * MIB);
    return (size_t)test_rand_range(1 * MIB, 10 * MIB);
}

/* Allocate one block by a random function; fills *b. False on failure. */
static bool model_alloc(model_block *b)
{
    size_t sz = random_size();
    size_t align = (size_t)1 << test_rand_range(3, 16);
    *b = (model_block){.size = sz, .align = 16, .tag = test_rand()};
    switch (test_rand_range(0, 7)) {
    case 0:
        b->p = strata_calloc(1, sz);
        if (b->p && !all_zero(b->p, sz))
            return fprintf(stderr, "  calloc(%zu) not zero\n", sz), false;
        break;
    case 1:
        b->p = strata_reallocarray(NULL, 1, sz);
        break;
    case 2:
        if (strata_posix_memalign(&b->p, align, sz) != 0) b->p = NULL;
        b->align = align, b->how = 1;
        break;
    case 3:
        b->p = strata_aligned_alloc(align, sz);
        b->align = align, b->how = 1;
        break;
    case 4:
        b->p = strata_memalign(align, sz);
        b->align = align;
        break;
    case 5:
        if (test_rand() % 8 == 0) {
            b->p = strata_valloc(sz);
            b->align = 4096;
            break;
        }
        /* fall through */
    default:
        b->p = strata_malloc(sz);
        break;
    }
    if (b->p == NULL) return fprintf(stderr, "  allocation of %zu failed\n", sz), false;
    if (!aligned(b->p, 16) || !aligned(b->p, b->align) || strata_malloc_usable_size(b->p) < sz)
        return fprintf(stderr, "  block %p of %zu: misaligned (%zu) or short\n", b->p, sz,
                       b->align),
               false;
    fill(b->p, sz, b->tag);
    return true;
}

static void model_free(model_block *b)
{
    switch (test_rand_range(0, 2)) {
    case 0:
        strata_free(b->p);
        break;
    case 1:
        strata_free_sized(b->p, b->size);
        break;
    default:
        if (b->how == 1)
            strata_free_aligned_sized(b->p, b->align, b->size);
        else
            strata_free(b->p);
        break;
    }
    b->p = NULL;
}

static bool model_all_intact(model_block *m, size_t n)
{
    span *s = malloc(n * sizeof(span) + 1);
    size_t k = 0;
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        if (m[i].p == NULL) continue;
        if (!verify(m[i].p, m[i].size, m[i].tag)) {
            fprintf(stderr, "  block %p of %zu overwritten\n", m[i].p, m[i].size);
            ok = false;
        }
        s[k++] = (span){(uintptr_t)m[i].p, strata_malloc_usable_size(m[i].p)};
    }
    if (any_overlap(s, k)) ok = false;
    free(s);
    return ok;
}

TEST(random_model_every_function)
{
    test_seed("model");
    enum { SLOTS = 512 };
    model_block *m = calloc(SLOTS, sizeof(model_block));
    size_t base = live_bytes();
    long steps = test_steps(20000);
    for (long s = 0; s < steps; s++) {
        model_block *b = &m[test_rand_range(0, SLOTS - 1)];
        if (b->p == NULL) {
            REQUIRE(model_alloc(b));
        } else if (!verify(b->p, b->size, b->tag)) {
            fprintf(stderr, "  step %ld: block %p of %zu overwritten\n", s, b->p, b->size);
            REQUIRE(false);
        } else if (test_rand() % 4 == 0) {
            size_t n = random_size() + 1;
            void *q = strata_realloc(b->p, n);
            REQUIRE(q != NULL);
            REQUIRE(aligned(q, 16) && strata_malloc_usable_size(q) >= n);
            if (!verify(q, b->size < n ? b->size : n, b->tag)) {
                fprintf(stderr, "  step %ld: realloc %zu -> %zu lost contents\n", s, b->size, n);
                REQUIRE(false);
            }
            *b = (model_block){.p = q, .size = n, .align = 16, .tag = test_rand()};
            fill(q, n, b->tag);
        } else {
            model_free(b);
        }
        if (s % 1024 == 0) REQUIRE(model_all_intact(m, SLOTS));
    }
    CHECK(model_all_intact(m, SLOTS));
    for (size_t i = 0; i < SLOTS; i++)
        if (m[i].p) model_free(&m[i]);
    CHECK_EQ(live_bytes(), base);
    free(m);
}
