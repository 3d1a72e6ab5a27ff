/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the slab layer: the single-slab level (layout arithmetic,
 * reciprocal index, pop/push, an outside descriptor) and the cache
 * (constructor and destructor counts, list order, shrink, slabinfo text,
 * alignment, the default slab size, statistics, walk, threads).
 */
#include <errno.h>
#include <pthread.h>

#include "slab.h"
#include "strata/slab.h"
#include "test.h"

/* ---- a page source that counts what it hands out --------------------- */

typedef struct counting_source {
    strata_page_source inner;
    size_t bytes_out, blocks_out, calls;
} counting_source;

static void *count_alloc(void *ctx, size_t size, size_t align)
{
    counting_source *cs = ctx;
    cs->calls++;
    void *p = cs->inner.alloc(cs->inner.ctx, size, align);
    if (p != NULL) {
        cs->bytes_out += size;
        cs->blocks_out++;
    }
    return p;
}

static void count_free(void *ctx, void *block, size_t size)
{
    counting_source *cs = ctx;
    cs->bytes_out -= size;
    cs->blocks_out--;
    cs->inner.free(cs->inner.ctx, block, size);
}

static strata_page_source counting(counting_source *cs)
{
    memset(cs, 0, sizeof(*cs));
    cs->inner = strata_page_source_os();
    return (strata_page_source){.alloc = count_alloc, .free = count_free, .ctx = cs};
}

/* ---- level 1: one slab ------------------------------------------------- */

static bool layout_fits(size_t block, size_t stride, size_t align, unsigned cap)
{
    return st_align_up(st_slab_desc_size(cap), align) + (size_t)cap * stride <= block;
}

TEST(layout_known_values)
{
    st_slab_layout l;
    /* descriptor = 64 + 8 * ceil(cap / 64) + 2 * cap, then aligned */
    REQUIRE(st_slab_layout_compute(4096, 64, 8, true, &l));
    CHECK_EQ(l.capacity, 60);
    CHECK_EQ(l.first, 192);
    CHECK_EQ(l.size, 64);
    REQUIRE(st_slab_layout_compute(4096, 100, 8, true, &l));
    CHECK_EQ(l.size, 104);
    CHECK_EQ(l.capacity, 37);
    CHECK_EQ(l.first, 152);
    REQUIRE(st_slab_layout_compute(4096, 8, 8, true, &l));
    CHECK_EQ(l.capacity, 397);
    CHECK_EQ(l.first, 920);
    CHECK_EQ(l.desc_bytes, 914);
    REQUIRE(st_slab_layout_compute(16384, 4096, 4096, true, &l));
    CHECK_EQ(l.capacity, 3);
    CHECK_EQ(l.first, 4096);
    REQUIRE(st_slab_layout_compute(4096, 3, 1, true, &l));
    CHECK_EQ(l.size, 8); /* the smallest stride */
    REQUIRE(st_slab_layout_compute(4096, 24, 8, false, &l));
    CHECK_EQ(l.capacity, 170);
    CHECK_EQ(l.first, 0);
    CHECK(!l.desc_inside);
    REQUIRE(st_slab_layout_compute((size_t)1 << 22, 8, 8, false, &l));
    CHECK_EQ(l.capacity, 65535); /* capped: indices are uint16_t */
}

TEST(layout_rejects)
{
    st_slab_layout l;
    CHECK(!st_slab_layout_compute(4096, 0, 8, true, &l));
    CHECK(!st_slab_layout_compute(4096, 64, 24, true, &l));
    CHECK(!st_slab_layout_compute(4096, 5000, 8, true, &l));
    CHECK(!st_slab_layout_compute(4096, 4096, 8, true, &l)); /* no room beside the descriptor */
    CHECK(st_slab_layout_compute(4096, 4096, 8, false, &l));
    CHECK(!st_slab_layout_compute(0, 8, 8, false, &l));
}

TEST(layout_properties)
{
    static const size_t sizes[] = {1, 8, 12, 24, 40, 64, 100, 192, 250, 512, 1000, 3000, 4096};
    static const size_t aligns[] = {1, 8, 16, 64, 256, 4096};
    static const size_t blocks[] = {4096, 8192, 65536, (size_t)1 << 20};
    for (size_t b = 0; b < ST_ARRAY_LEN(blocks); b++)
        for (size_t s = 0; s < ST_ARRAY_LEN(sizes); s++)
            for (size_t a = 0; a < ST_ARRAY_LEN(aligns); a++) {
                st_slab_layout l;
                if (!st_slab_layout_compute(blocks[b], sizes[s], aligns[a], true, &l)) {
                    CHECK(!layout_fits(blocks[b], st_align_up(ST_MAX(sizes[s], 8), aligns[a]),
                                       aligns[a], 1));
                    continue;
                }
                CHECK(l.size >= sizes[s] && l.size % aligns[a] == 0 && l.size >= 8);
                CHECK_EQ(l.first % aligns[a], 0);
                CHECK(l.first >= l.desc_bytes);
                CHECK_EQ(l.desc_bytes, st_slab_desc_size(l.capacity));
                CHECK(l.first + (size_t)l.capacity * l.size <= blocks[b]);
                /* maximal: one more object does not fit */
                CHECK(l.capacity == ST_SLAB_MAX_CAPACITY ||
                      !layout_fits(blocks[b], l.size, aligns[a], l.capacity + 1));
            }
}

static st_slab *carve_in(void *block, size_t block_bytes, size_t size, size_t align)
{
    st_slab_layout l;
    if (!st_slab_layout_compute(block_bytes, size, align, true, &l))
        return NULL;
    return st_slab_carve(block, &l);
}

TEST(reciprocal_index_is_exact)
{
    static const size_t sizes[] = {8, 24, 40, 104, 1000, 4104, 12345};
    size_t bytes = 65536;
    char *block = aligned_alloc(bytes, bytes);
    REQUIRE(block != NULL);
    for (size_t k = 0; k < ST_ARRAY_LEN(sizes); k++) {
        st_slab *s = carve_in(block, bytes, sizes[k], 8);
        REQUIRE(s != NULL);
        size_t stride = s->size;
        size_t end = s->first + (size_t)s->capacity * stride;
        for (size_t off = 0; off < bytes; off++) {
            long idx = st_slab_object_index(s, block + off);
            bool boundary = off >= s->first && off < end && (off - s->first) % stride == 0;
            if (boundary)
                CHECK_EQ(idx, (long)((off - s->first) / stride));
            else if (idx != STRATA_ERR_NOT_BLOCK)
                CHECK_EQ(idx, STRATA_ERR_NOT_BLOCK);
        }
        CHECK_EQ(st_slab_object_index(s, block - 8), STRATA_ERR_NOT_BLOCK);
        CHECK_EQ(st_slab_object_index(s, block + bytes), STRATA_ERR_NOT_BLOCK);
    }
    free(block);
}

TEST(reciprocal_index_large_block)
{
    /* the outside layout of a 4 MiB block: offsets up to 2^22 */
    static uint64_t desc_mem[(64 + 8 * 1024 + 2 * 65536) / 8 + 1];
    st_slab *s = (st_slab *)desc_mem;
    static const size_t sizes[] = {8, 72, 1000, 65536, 100000};
    char *block = (char *)(uintptr_t)0x40000000; /* never dereferenced */
    for (size_t k = 0; k < ST_ARRAY_LEN(sizes); k++) {
        st_slab_layout l;
        REQUIRE(st_slab_layout_compute((size_t)1 << 22, sizes[k], 8, false, &l));
        st_slab_init(s, block, &l);
        for (unsigned i = 0; i < l.capacity; i += 1 + i / 7) {
            CHECK_EQ(st_slab_object_index(s, block + (size_t)i * l.size), i);
            CHECK_EQ(st_slab_object_index(s, block + (size_t)i * l.size + 4), STRATA_ERR_NOT_BLOCK);
        }
    }
}

TEST(slab_pop_push)
{
    size_t bytes = 8192;
    char *block = aligned_alloc(bytes, bytes);
    REQUIRE(block != NULL);
    st_slab *s = carve_in(block, bytes, 40, 8);
    REQUIRE(s != NULL && (void *)s == block);
    unsigned cap = s->capacity;
    CHECK(st_slab_is_empty(s));
    CHECK_EQ(st_slab_check(s), 0);
    void *objs[512];
    REQUIRE(cap <= 512);
    for (unsigned i = 0; i < cap; i++) {
        objs[i] = st_slab_pop(s);
        CHECK(objs[i] == st_slab_object(s, i)); /* index order on a fresh slab */
        CHECK(st_slab_is_live(s, i));
    }
    CHECK(st_slab_is_full(s));
    CHECK(st_slab_pop(s) == NULL);
    CHECK_EQ(st_slab_check(s), 0);
    CHECK_EQ(st_slab_push(s, objs[5]), 0);
    CHECK_EQ(st_slab_push(s, objs[9]), 0);
    CHECK_EQ(st_slab_push(s, objs[9]), STRATA_ERR_DOUBLE_FREE);
    CHECK_EQ(st_slab_push(s, (char *)objs[3] + 1), STRATA_ERR_NOT_BLOCK);
    CHECK_EQ(st_slab_push(s, block + 8), STRATA_ERR_NOT_BLOCK); /* the descriptor */
    CHECK_EQ(st_slab_push(s, block + bytes - 1), STRATA_ERR_NOT_BLOCK);
    CHECK_EQ(st_slab_used(s), cap - 2);
    CHECK_EQ(st_slab_check(s), 0);
    CHECK(st_slab_pop(s) == objs[9]); /* last in, first out */
    CHECK(st_slab_pop(s) == objs[5]);
    for (unsigned i = 0; i < cap; i++)
        CHECK_EQ(st_slab_push(s, objs[i]), 0);
    CHECK(st_slab_is_empty(s));
    CHECK_EQ(st_slab_check(s), 0);
    free(block);
}

TEST(outside_descriptor_never_writes_the_block)
{
    size_t bytes = 4096;
    unsigned char *block = aligned_alloc(bytes, bytes);
    static uint64_t desc_mem[1024];
    REQUIRE(block != NULL);
    memset(block, 0xa5, bytes);
    st_slab_layout l;
    REQUIRE(st_slab_layout_compute(bytes, 32, 8, false, &l));
    REQUIRE(st_slab_desc_size(l.capacity) <= sizeof(desc_mem));
    st_slab *s = (st_slab *)desc_mem;
    st_slab_init(s, block, &l);
    REQUIRE(l.capacity == 128);
    void *objs[128] = {0};
    for (unsigned i = 0; i < l.capacity; i++)
        objs[i] = st_slab_pop(s);
    CHECK(objs[0] == block);
    for (unsigned i = 0; i < l.capacity; i += 2)
        CHECK_EQ(st_slab_push(s, objs[i]), 0);
    CHECK_EQ(st_slab_check(s), 0);
    bool untouched = true;
    for (size_t i = 0; i < bytes; i++)
        untouched &= block[i] == 0xa5;
    CHECK(untouched);
    free(block);
}

/* ---- level 2: the cache ---------------------------------------------------- */

#define CONSTRUCTED 0xc0ffee11u

typedef struct obj48 {
    uint32_t state;
    uint32_t uses;
    char payload[40];
} obj48;

static size_t ctor_calls, dtor_calls;

static void count_ctor(void *p)
{
    obj48 *o = p;
    o->state = CONSTRUCTED;
    o->uses = 0;
    ctor_calls++;
}

static void count_dtor(void *p)
{
    obj48 *o = p;
    if (o->state == CONSTRUCTED)
        dtor_calls++;
}

static strata_slab_cache *counted_cache(unsigned keep_empty, counting_source *cs)
{
    strata_slab_config cfg;
    strata_slab_config_init(&cfg, "obj48", sizeof(obj48));
    cfg.ctor = count_ctor;
    cfg.dtor = count_dtor;
    cfg.keep_empty = keep_empty;
    if (cs != NULL)
        cfg.source = counting(cs);
    ctor_calls = dtor_calls = 0;
    return strata_slab_cache_create_ex(&cfg);
}

static strata_slab_info info_of(const strata_slab_cache *c)
{
    strata_slab_info i;
    strata_slab_cache_get_info(c, &i);
    return i;
}

TEST(ctor_runs_once_per_object_at_slab_creation)
{
    strata_slab_cache *c = counted_cache(1, NULL);
    REQUIRE(c != NULL);
    CHECK_EQ(ctor_calls, 0);
    size_t cap = info_of(c).objects_per_slab;
    obj48 *o = strata_slab_alloc(c);
    REQUIRE(o != NULL);
    CHECK_EQ(ctor_calls, cap);
    for (int i = 0; i < 1000; i++) {
        CHECK_EQ(o->state, CONSTRUCTED);
        o->uses++; /* the state the user keeps across uses */
        CHECK_EQ(strata_slab_free(c, o), 0);
        o = strata_slab_alloc(c);
        REQUIRE(o != NULL);
    }
    CHECK_EQ(o->uses, 1000); /* the same object, never re-constructed */
    CHECK_EQ(ctor_calls, cap);
    obj48 **all = calloc(cap + 1, sizeof(*all));
    REQUIRE(all != NULL);
    all[0] = o;
    for (size_t i = 1; i <= cap; i++) {
        all[i] = strata_slab_alloc(c);
        REQUIRE(all[i] != NULL);
        CHECK_EQ(all[i]->state, CONSTRUCTED);
    }
    CHECK_EQ(ctor_calls, 2 * cap); /* the second slab */
    CHECK_EQ(dtor_calls, 0);
    CHECK_EQ(strata_slab_cache_check(c), 0);
    for (size_t i = 0; i <= cap; i++)
        CHECK_EQ(strata_slab_free(c, all[i]), 0);
    free(all);
    CHECK_EQ(strata_slab_cache_destroy(c), 0);
    CHECK_EQ(dtor_calls, 2 * cap);
}

TEST(dtor_runs_on_shrink_and_destroy)
{
    counting_source cs;
    strata_slab_cache *c = counted_cache(1, &cs);
    REQUIRE(c != NULL);
    size_t cap = info_of(c).objects_per_slab;
    size_t n = 3 * cap;
    void **objs = calloc(n, sizeof(void *));
    REQUIRE(objs != NULL);
    for (size_t i = 0; i < n; i++)
        REQUIRE((objs[i] = strata_slab_alloc(c)) != NULL);
    CHECK_EQ(info_of(c).total_slabs, 3);
    for (size_t i = 0; i < n; i++)
        CHECK_EQ(strata_slab_free(c, objs[i]), 0);
    free(objs);
    CHECK_EQ(dtor_calls, 0);
    CHECK_EQ(strata_slab_shrink(c), 2);
    CHECK_EQ(dtor_calls, 2 * cap);
    CHECK_EQ(info_of(c).total_slabs, 1);
    CHECK_EQ(strata_slab_shrink(c), 0);
    CHECK_EQ(strata_slab_cache_check(c), 0);
    CHECK_EQ(strata_slab_cache_destroy(c), 0);
    CHECK_EQ(dtor_calls, 3 * cap);
    CHECK_EQ(ctor_calls, dtor_calls);
    CHECK_EQ(cs.bytes_out, 0);
    CHECK_EQ(cs.blocks_out, 0);
}

TEST(destroy_with_live_objects_is_busy)
{
    counting_source cs;
    strata_slab_cache *c = counted_cache(1, &cs);
    REQUIRE(c != NULL);
    void *a = strata_slab_alloc(c);
    void *b = strata_slab_alloc(c);
    REQUIRE(a != NULL && b != NULL);
    size_t held = cs.bytes_out;
    CHECK_EQ(strata_slab_free(c, a), 0);
    CHECK_EQ(strata_slab_cache_destroy(c), STRATA_ERR_BUSY);
    CHECK_EQ(cs.bytes_out, held);
    CHECK_EQ(dtor_calls, 0);
    CHECK_EQ(strata_slab_cache_check(c), 0);
    CHECK_EQ(info_of(c).active_objects, 1);
    CHECK_EQ(strata_slab_free(c, b), 0);
    CHECK_EQ(strata_slab_cache_destroy(c), 0);
    CHECK_EQ(cs.bytes_out, 0);
}

static uintptr_t slab_base(const strata_slab_cache *c, const void *p)
{
    return (uintptr_t)p & ~(uintptr_t)(info_of(c).slab_bytes - 1);
}

TEST(partial_slabs_before_empty_ones)
{
    strata_slab_cache *c = counted_cache(10, NULL);
    REQUIRE(c != NULL);
    size_t cap = info_of(c).objects_per_slab;
    void **objs = calloc(3 * cap, sizeof(void *));
    REQUIRE(objs != NULL);
    for (size_t i = 0; i < 3 * cap; i++)
        REQUIRE((objs[i] = strata_slab_alloc(c)) != NULL);
    uintptr_t a = slab_base(c, objs[0]);
    uintptr_t b = slab_base(c, objs[cap]);
    REQUIRE(a != b && slab_base(c, objs[cap - 1]) == a && slab_base(c, objs[2 * cap - 1]) == b);
    for (size_t i = 0; i < cap; i++) /* slab A: empty (and emptied last) */
        CHECK_EQ(strata_slab_free(c, objs[i]), 0);
    CHECK_EQ(strata_slab_free(c, objs[cap + 7]), 0); /* slab B: partial */
    strata_slab_info i = info_of(c);
    CHECK_EQ(i.empty_slabs, 1);
    CHECK_EQ(i.partial_slabs, 1);
    CHECK_EQ(i.full_slabs, 1);
    void *p = strata_slab_alloc(c);
    CHECK(p == objs[cap + 7]);
    p = strata_slab_alloc(c); /* no partial slab now: the empty one, not a new one */
    CHECK_EQ(slab_base(c, p), a);
    CHECK_EQ(info_of(c).total_slabs, 3);
    CHECK_EQ(info_of(c).partial_slabs, 1);
    CHECK_EQ(info_of(c).empty_slabs, 0);
    CHECK_EQ(strata_slab_cache_check(c), 0);
    CHECK_EQ(strata_slab_free(c, p), 0);
    for (size_t k = cap; k < 3 * cap; k++)
        CHECK_EQ(strata_slab_free(c, objs[k]), 0);
    free(objs);
    CHECK_EQ(strata_slab_cache_destroy(c), 0);
}

static size_t make_empty_slabs(strata_slab_cache *c, size_t slabs)
{
    size_t cap = info_of(c).objects_per_slab;
    void **objs = calloc(slabs * cap, sizeof(void *));
    size_t n = 0;
    while (objs != NULL && n < slabs * cap && (objs[n] = strata_slab_alloc(c)) != NULL)
        n++;
    for (size_t i = 0; i < n; i++)
        strata_slab_free(c, objs[i]);
    free(objs);
    return info_of(c).empty_slabs;
}

TEST(shrink_keeps_keep_empty)
{
    static const unsigned keeps[] = {0, 1, 2, 7};
    for (size_t k = 0; k < ST_ARRAY_LEN(keeps); k++) {
        counting_source cs;
        strata_slab_cache *c = counted_cache(keeps[k], &cs);
        REQUIRE(c != NULL);
        CHECK_EQ(make_empty_slabs(c, 5), 5);
        CHECK_EQ(strata_slab_shrink(c), 5 - ST_MIN(keeps[k], 5u));
        CHECK_EQ(info_of(c).empty_slabs, ST_MIN(keeps[k], 5u));
        CHECK_EQ(info_of(c).total_slabs, ST_MIN(keeps[k], 5u));
        CHECK_EQ(strata_slab_shrink(c), 0);
        CHECK_EQ(cs.bytes_out, info_of(c).bytes_held);
        CHECK_EQ(strata_slab_cache_check(c), 0);
        CHECK_EQ(strata_slab_cache_destroy(c), 0);
        CHECK_EQ(cs.bytes_out, 0);
    }
}

TEST(slabinfo_header_matches_the_kernel)
{
    static const char expect[] =
        "slabinfo - version: 2.1\n"
        "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>"
        " : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs>"
        " <num_slabs> <sharedavail>\n";
    char buf[512];
    int n = strata_slab_format_header(buf, sizeof(buf));
    CHECK_EQ(n, (int)strlen(expect));
    CHECK(strcmp(buf, expect) == 0);
    char small[10];
    CHECK_EQ(strata_slab_format_header(small, sizeof(small)), n);
    CHECK(strcmp(small, "slabinfo ") == 0);
}

TEST(slabinfo_line_exact)
{
    strata_slab_cache *c = strata_slab_cache_create("strata_test", 100, 0, NULL, NULL, 0);
    REQUIRE(c != NULL);
    void *objs[40];
    for (int i = 0; i < 40; i++)
        REQUIRE((objs[i] = strata_slab_alloc(c)) != NULL);
    /* stride 104, 37 per 4 KiB slab: 40 live objects in 2 slabs of 74 */
    static const char expect[] = "strata_test           40     74    104   37    1 : tunables    0"
                                 "    0    0 : slabdata      2      2      0\n";
    char buf[256];
    int n = strata_slab_cache_format(c, buf, sizeof(buf));
    CHECK_EQ(n, (int)strlen(expect));
    CHECK(strcmp(buf, expect) == 0);
    if (strcmp(buf, expect) != 0)
        fprintf(stderr, "  got: %s", buf);
    for (int i = 0; i < 37; i++) /* slab 1 empty: one active slab left */
        CHECK_EQ(strata_slab_free(c, objs[i]), 0);
    static const char expect2[] = "strata_test            3     74    104   37    1 : tunables    0"
                                  "    0    0 : slabdata      1      2      0\n";
    strata_slab_cache_format(c, buf, sizeof(buf));
    CHECK(strcmp(buf, expect2) == 0);
    char small[8];
    CHECK_EQ(strata_slab_cache_format(c, small, sizeof(small)), n);
    CHECK(strcmp(small, "strata_") == 0);
    for (int i = 37; i < 40; i++)
        CHECK_EQ(strata_slab_free(c, objs[i]), 0);
    CHECK_EQ(strata_slab_cache_destroy(c), 0);
}

TEST(slabinfo_line_same_widths_as_a_real_one)
{
    /* a real kernel line (0 0 objects) and ours for the same numbers */
    static const char real[] = "kvm_vcpu               0      0  17280    1    8 : tunables    0"
                               "    0    0 : slabdata      0      0      0\n";
    strata_slab_config cfg;
    strata_slab_config_init(&cfg, "kvm_vcpu", 17280);
    cfg.slab_size = 32768;
    strata_slab_cache *c = strata_slab_cache_create_ex(&cfg);
    REQUIRE(c != NULL);
    char buf[256];
    strata_slab_cache_format(c, buf, sizeof(buf));
    CHECK(strcmp(buf, real) == 0);
    CHECK_EQ(strata_slab_cache_destroy(c), 0);
}

static bool aligned_to(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

TEST(hwcache_align)
{
    strata_slab_cache *c = strata_slab_cache_create("hw", 10, 0, NULL, NULL,
                                                    STRATA_SLAB_HWCACHE_ALIGN);
    REQUIRE(c != NULL);
    strata_slab_info i = info_of(c);
    CHECK_EQ(i.align, 64);
    CHECK_EQ(i.object_stride, 64);
    CHECK_EQ(i.first_offset % 64, 0);
    void *objs[200];
    for (int k = 0; k < 200; k++) {
        REQUIRE((objs[k] = strata_slab_alloc(c)) != NULL);
        CHECK(aligned_to(objs[k], 64));
    }
    for (int k = 0; k < 200; k++)
        CHECK_EQ(strata_slab_free(c, objs[k]), 0);
    CHECK_EQ(strata_slab_cache_destroy(c), 0);
    /* without the flag: 8-byte alignment and a 16-byte stride */
    c = strata_slab_cache_create("plain", 10, 0, NULL, NULL, 0);
    REQUIRE(c != NULL);
    CHECK_EQ(info_of(c).align, 8);
    CHECK_EQ(info_of(c).object_stride, 16);
    CHECK_EQ(strata_slab_cache_destroy(c), 0);
    /* an explicit alignment larger than a line */
    c = strata_slab_cache_create("al256", 300, 256, NULL, NULL, STRATA_SLAB_HWCACHE_ALIGN);
    REQUIRE(c != NULL);
    void *p = strata_slab_alloc(c);
    CHECK(p != NULL && aligned_to(p, 256));
    CHECK_EQ(info_of(c).object_stride, 512);
    CHECK_EQ(strata_slab_free(c, p), 0);
    CHECK_EQ(strata_slab_cache_destroy(c), 0);
}

static size_t pages_for(size_t size)
{
    strata_slab_cache *c = strata_slab_cache_create("rule", size, 0, NULL, NULL, 0);
    if (c == NULL)
        return 0;
    size_t pages = info_of(c).pages_per_slab;
    strata_slab_cache_destroy(c);
    return pages;
}

TEST(default_slab_size_rule)
{
    CHECK_EQ(pages_for(8), 1);
    CHECK_EQ(pages_for(100), 1);
    CHECK_EQ(pages_for(1024), 4);     /* 3 and 7 objects in 1 and 2 pages */
    CHECK_EQ(pages_for(3000), 8);     /* 10 objects */
    CHECK_EQ(pages_for(614400), 512); /* 600 KiB: 3 in 2 MiB, the first under 1/8 waste */
    CHECK_EQ(pages_for(STRATA_SLAB_MAX_OBJECT_SIZE), 512); /* one object, 2 MiB */
    /* the rule itself, for many sizes: 8 objects, waste < 1/8, smallest */
    for (size_t size = 8; size <= 40000; size = size * 5 / 4 + 8) {
        size_t pages = pages_for(size);
        size_t bytes = pages * 4096;
        st_slab_layout l;
        REQUIRE(st_slab_layout_compute(bytes, size, 8, true, &l));
        CHECK(l.capacity >= 8);
        CHECK((bytes - l.desc_bytes - (size_t)l.capacity * l.size) * 8 < bytes);
        if (pages > 1 && st_slab_layout_compute(bytes / 2, size, 8, true, &l))
            CHECK(l.capacity < 8 ||
                  (bytes / 2 - l.desc_bytes - (size_t)l.capacity * l.size) * 8 >= bytes / 2);
    }
}

typedef struct walk_seen {
    void **live;
    size_t n, hits, misses, size;
} walk_seen;

static void walk_count(void *obj, size_t size, void *user)
{
    walk_seen *w = user;
    bool found = false;
    for (size_t i = 0; i < w->n; i++)
        if (w->live[i] == obj) {
            found = true;
            w->live[i] = NULL; /* each object once */
        }
    if (found)
        w->hits++;
    else
        w->misses++;
    w->size = size;
}

TEST(info_and_walk)
{
    counting_source cs;
    strata_slab_config cfg;
    strata_slab_config_init(&cfg, "walked", 200);
    cfg.source = counting(&cs);
    strata_slab_cache *c = strata_slab_cache_create_ex(&cfg);
    REQUIRE(c != NULL);
    strata_slab_info i = info_of(c);
    CHECK(strcmp(i.name, "walked") == 0);
    CHECK_EQ(i.object_size, 200);
    CHECK_EQ(i.total_slabs, 0);
    CHECK_EQ(i.bytes_held, cs.bytes_out);
    void *objs[100], *copy[100];
    for (int k = 0; k < 100; k++)
        REQUIRE((objs[k] = strata_slab_alloc(c)) != NULL);
    for (int k = 0; k < 100; k += 3)
        CHECK_EQ(strata_slab_free(c, objs[k]), 0);
    size_t n = 0;
    for (int k = 0; k < 100; k++)
        if (k % 3 != 0)
            copy[n++] = objs[k];
    walk_seen w = {.live = copy, .n = n};
    strata_slab_cache_walk(c, walk_count, &w);
    CHECK_EQ(w.hits, n);
    CHECK_EQ(w.misses, 0);
    CHECK_EQ(w.size, 200);
    i = info_of(c);
    CHECK_EQ(i.active_objects, n);
    CHECK_EQ(i.total_objects, i.total_slabs * i.objects_per_slab);
    CHECK_EQ(i.active_slabs, i.full_slabs + i.partial_slabs);
    CHECK_EQ(i.total_slabs, i.active_slabs + i.empty_slabs);
    CHECK_EQ(i.bytes_held, cs.bytes_out);
    CHECK_EQ(i.slab_bytes, i.pages_per_slab * 4096);
    for (int k = 0; k < 100; k++)
        if (k % 3 != 0)
            CHECK_EQ(strata_slab_free(c, objs[k]), 0);
    CHECK_EQ(strata_slab_cache_destroy(c), 0);
    CHECK_EQ(cs.bytes_out, 0);
}

TEST(poison_fills_freed_objects)
{
    strata_slab_cache *c = strata_slab_cache_create("poisoned", 40, 0, NULL, NULL,
                                                    STRATA_SLAB_POISON);
    REQUIRE(c != NULL);
    unsigned char *p = strata_slab_alloc(c);
    REQUIRE(p != NULL);
    bool all = true;
    for (int k = 0; k < 40; k++)
        all &= p[k] == STRATA_SLAB_POISON_BYTE; /* fresh objects are poisoned too */
    CHECK(all);
    memset(p, 0x11, 40);
    CHECK_EQ(strata_slab_cache_check(c), 0); /* live objects are the user's */
    CHECK_EQ(strata_slab_free(c, p), 0);
    all = true;
    for (int k = 0; k < 40; k++)
        all &= p[k] == STRATA_SLAB_POISON_BYTE;
    CHECK(all);
    CHECK_EQ(strata_slab_cache_check(c), 0);
    CHECK(strata_slab_alloc(c) == p);
    CHECK_EQ(strata_slab_free(c, p), 0);
    CHECK_EQ(strata_slab_cache_destroy(c), 0);
}

/* ---- threads ------------------------------------------------------------------ */

typedef struct hammer_arg {
    strata_slab_cache *cache;
    pthread_barrier_t *start;
    unsigned id;
    uint64_t rng;
    long steps;
    int errors;
} hammer_arg;

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void *hammer(void *p)
{
    hammer_arg *a = p;
    uint64_t *live[64];
    size_t n = 0;
    pthread_barrier_wait(a->start); /* all threads at once: contention */
    for (long step = 0; step < a->steps; step++) {
        if (n < 64 && (n == 0 || xorshift(&a->rng) % 2 == 0)) {
            uint64_t *o = strata_slab_alloc(a->cache);
            if (o == NULL) {
                a->errors++;
                continue;
            }
            o[0] = a->id;
            o[1] = (uint64_t)step;
            live[n++] = o;
        } else {
            size_t k = xorshift(&a->rng) % n;
            a->errors += live[k][0] != a->id;
            a->errors += strata_slab_free(a->cache, live[k]) != 0;
            live[k] = live[--n];
        }
    }
    while (n > 0)
        a->errors += strata_slab_free(a->cache, live[--n]) != 0;
    return NULL;
}

TEST(threadsafe_cache_under_threads)
{
    strata_slab_cache *c = strata_slab_cache_create("threads", 24, 0, NULL, NULL,
                                                    STRATA_SLAB_THREADSAFE);
    REQUIRE(c != NULL);
    enum { THREADS = 4 };
    pthread_t t[THREADS];
    hammer_arg args[THREADS];
    pthread_barrier_t start;
    REQUIRE(pthread_barrier_init(&start, NULL, THREADS) == 0);
    for (unsigned k = 0; k < THREADS; k++) {
        args[k] = (hammer_arg){.cache = c, .start = &start, .id = k + 1,
                               .rng = 0x9e3779b97f4a7c15ull * (k + 1),
                               .steps = test_steps(200000)};
        REQUIRE(pthread_create(&t[k], NULL, hammer, &args[k]) == 0);
    }
    for (unsigned k = 0; k < THREADS; k++) {
        pthread_join(t[k], NULL);
        CHECK_EQ(args[k].errors, 0);
    }
    pthread_barrier_destroy(&start);
    CHECK_EQ(strata_slab_cache_check(c), 0);
    strata_slab_info i = info_of(c);
    CHECK_EQ(i.active_objects, 0);
    CHECK_EQ(i.empty_slabs, i.total_slabs);
    CHECK_EQ(strata_slab_cache_destroy(c), 0);
}

TEST(create_defaults_and_name_copy)
{
    char name[32];
    strcpy(name, "copied_name");
    strata_slab_cache *c = strata_slab_cache_create(name, 1, 0, NULL, NULL, 0);
    REQUIRE(c != NULL);
    strcpy(name, "changed");
    strata_slab_info i = info_of(c);
    CHECK(strcmp(i.name, "copied_name") == 0);
    CHECK_EQ(i.object_stride, 8);
    CHECK_EQ(i.keep_empty, STRATA_SLAB_KEEP_EMPTY_DEFAULT);
    CHECK_EQ(strata_slab_cache_destroy(c), 0);
    CHECK_EQ(strata_slab_cache_destroy(NULL), 0);
    /* a 31-character name is fine */
    c = strata_slab_cache_create("abcdefghijklmnopqrstuvwxyz01234", 64, 0, NULL, NULL, 0);
    CHECK(c != NULL);
    CHECK_EQ(strata_slab_cache_destroy(c), 0);
}
