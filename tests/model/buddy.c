/* SPDX-License-Identifier: MIT */
/* Randomized model test of the buddy allocator: random alloc (by bytes,
 * by order, exact) and free against a model of the live blocks; after
 * every step strata_buddy_check() must pass, no two live blocks overlap,
 * each is aligned as promised and its contents survive until freed;
 * freeing everything restores the initial free lists. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "strata/buddy.h"
#include "test.h"

#define MAX_LIVE 256

struct live {
    unsigned char *p;
    size_t size;  /* bytes asked for */
    size_t align; /* alignment promised */
    unsigned char pattern;
};

struct model {
    strata_buddy *b;
    size_t min_block;
    struct live blocks[MAX_LIVE];
    int count;
    unsigned char next_pattern;
};

static int overlaps_any(const struct model *m, const unsigned char *p, size_t size)
{
    for (int i = 0; i < m->count; i++) {
        const struct live *l = &m->blocks[i];
        if (p < l->p + l->size && l->p < p + size)
            return 1;
    }
    return 0;
}

static void fill(struct live *l) { memset(l->p, l->pattern, l->size); }

static int intact(const struct live *l)
{
    for (size_t i = 0; i < l->size; i++)
        if (l->p[i] != l->pattern)
            return 0;
    return 1;
}

/* One allocation of a random kind; returns 0 on a model violation. */
static int step_alloc(struct model *m, size_t max_bytes)
{
    size_t bytes = (size_t)test_rand_range(1, max_bytes);
    unsigned kind = (unsigned)test_rand() % 3;
    void *p;
    size_t align;
    size_t units = (bytes - 1) / m->min_block + 1;
    if (kind == 0) {
        p = strata_buddy_alloc(m->b, bytes);
        align = m->min_block << (units <= 1 ? 0 : 64 - __builtin_clzll(units - 1));
    } else if (kind == 1) {
        unsigned order = (unsigned)test_rand_range(0, 4);
        p = strata_buddy_alloc_order(m->b, order);
        bytes = m->min_block << order;
        align = bytes;
    } else {
        p = strata_buddy_alloc_exact(m->b, bytes);
        align = m->min_block << (63 - __builtin_clzll(units));
    }
    if (p == NULL)
        return errno == ENOMEM;
    struct live *l = &m->blocks[m->count];
    *l = (struct live){p, bytes, align, ++m->next_pattern};
    if (((uintptr_t)p & (align - 1)) != 0 || overlaps_any(m, p, bytes))
        return 0;
    if (strata_buddy_usable_size(m->b, p) < bytes)
        return 0;
    fill(l);
    m->count++;
    return 1;
}

static int step_free(struct model *m)
{
    int i = (int)(test_rand() % (uint64_t)m->count);
    struct live l = m->blocks[i];
    m->blocks[i] = m->blocks[--m->count];
    return intact(&l) && strata_buddy_free(m->b, l.p) == 0;
}

static void run_model(void *region, size_t size, const strata_buddy_config *cfg, long steps,
                      size_t max_bytes)
{
    struct model m = {.min_block = cfg->min_block};
    m.b = cfg->meta ? strata_buddy_create_ex(region, size, cfg)
                    : strata_buddy_create(region, size, cfg->min_block);
    REQUIRE(m.b != NULL);
    strata_buddy_info before, after;
    strata_buddy_get_info(m.b, &before);
    for (long s = 0; s < steps; s++) {
        int grow = m.count == 0 || (m.count < MAX_LIVE && test_rand() % 100 < 55);
        int ok = grow ? step_alloc(&m, max_bytes) : step_free(&m);
        if (!ok || strata_buddy_check(m.b) != 0) {
            fprintf(stderr, "  step %ld (%s) failed, check=%d\n", s, grow ? "alloc" : "free",
                    strata_buddy_check(m.b));
            REQUIRE(0);
        }
    }
    while (m.count > 0)
        REQUIRE(step_free(&m));
    strata_buddy_get_info(m.b, &after);
    CHECK_EQ(after.free_bytes, before.free_bytes);
    CHECK(memcmp(after.free_blocks, before.free_blocks, sizeof(before.free_blocks)) == 0);
    CHECK_EQ(strata_buddy_check(m.b), 0);
}

TEST(model_pages_metadata_inside)
{
    test_seed("buddy pages inside");
    size_t size = 1024 * 4096;
    char *mem = aligned_alloc(4096, size);
    strata_buddy_config cfg = {.min_block = 4096};
    run_model(mem, size, &cfg, test_steps(20000), 40 * 4096);
    free(mem);
}

TEST(model_small_blocks_metadata_outside_unaligned_region)
{
    test_seed("buddy 64B outside");
    size_t size = 300000;
    char *mem = aligned_alloc(4096, (size + 4096 + 4095) / 4096 * 4096);
    size_t offset = 64 * (size_t)test_rand_range(1, 60);
    size_t meta_size = strata_buddy_meta_size(size, 64);
    void *meta = malloc(meta_size);
    strata_buddy_config cfg = {.min_block = 64, .meta = meta, .meta_size = meta_size};
    run_model(mem + offset, size, &cfg, test_steps(20000), 5000);
    free(meta);
    free(mem);
}

TEST(model_segment_orders_0_to_10)
{
    test_seed("buddy segment");
    /* the malloc's use: a 4 MiB segment of 4 KiB pages, orders 0..10 */
    size_t size = 4u << 20;
    char *mem = aligned_alloc(size, size);
    size_t meta_size = strata_buddy_meta_size(size, 4096);
    void *meta = malloc(meta_size);
    strata_buddy_config cfg = {.min_block = 4096, .max_order = 10, .meta = meta,
                               .meta_size = meta_size};
    run_model(mem, size, &cfg, test_steps(20000), 300 * 4096);
    free(meta);
    free(mem);
}
