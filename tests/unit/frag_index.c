/* SPDX-License-Identifier: MIT */
/*
 * frag_index.c — the kernel's fragmentation indices, their debugfs format
 * and the per-zone verdicts of `strata frag`, against values computed by
 * hand from mm/vmstat.c's formulas (the arithmetic is written next to each
 * expectation; every division truncates, as div_u64 does):
 *
 *   free_pages      = sum nr_free[k] << k
 *   blocks_total    = sum nr_free[k]
 *   blocks_suitable = sum over k >= o of nr_free[k] << (k - o)
 *   unusable(o)     = (free_pages - (blocks_suitable << o)) * 1000 / free_pages
 *   extfrag(o)      = 1000 - (1000 + free_pages * 1000 / 2^o) / blocks_total
 *                     (-1000 if blocks_suitable > 0, 0 if blocks_total == 0)
 */
#include "test.h"

#include "../../tools/strata/procfs.c"
#include "../../tools/strata/fragindex.c"

/* Capture what a printer writes. */
struct capture {
    char *buf;
    size_t len;
    FILE *f;
};

static void capture_open(struct capture *c)
{
    c->buf = NULL;
    c->len = 0;
    c->f = open_memstream(&c->buf, &c->len);
}

static const char *capture_close(struct capture *c)
{
    fclose(c->f);
    return c->buf;
}

/* A buddyinfo with one zone, for the kernel printer. */
static void one_zone(struct st_buddyinfo *b, struct st_buddy_zone *z, const char *name,
                     const uint64_t *nr_free, int norders)
{
    memset(z, 0, sizeof(*z));
    snprintf(z->zone, sizeof(z->zone), "%s", name);
    z->norders = norders;
    memcpy(z->nr_free, nr_free, (size_t)norders * sizeof(*nr_free));
    b->zones = z;
    b->n = 1;
    b->cap = 1;
    b->max_orders = norders;
}

TEST(contig_counts)
{
    /* nr_free {4, 2, 1, 0}: free_pages = 4*1 + 2*2 + 1*4 = 12, blocks_total = 7 */
    const uint64_t f[] = {4, 2, 1, 0};
    struct st_contig c;
    st_frag_contig(f, 4, 1, &c);
    CHECK_EQ(c.free_pages, 12);
    CHECK_EQ(c.free_blocks_total, 7);
    CHECK_EQ(c.free_blocks_suitable, 4); /* order 1: 2 << 0 + 1 << 1 = 2 + 2 */
    st_frag_contig(f, 4, 0, &c);
    CHECK_EQ(c.free_blocks_suitable, 12); /* order 0: every page is a block */
    st_frag_contig(f, 4, 3, &c);
    CHECK_EQ(c.free_blocks_suitable, 0);
}

TEST(unusable_small_zone)
{
    const uint64_t f[] = {4, 2, 1, 0};
    /* order 0: suitable 12, usable 12 << 0 = 12: (12 - 12) * 1000 / 12 = 0 */
    CHECK_EQ(st_frag_unusable(f, 4, 0), 0);
    /* order 1: suitable 4, usable 4 << 1 = 8: (12 - 8) * 1000 / 12 = 4000 / 12 = 333 */
    CHECK_EQ(st_frag_unusable(f, 4, 1), 333);
    /* order 2: suitable 1, usable 4: 8000 / 12 = 666 (truncated, not 667) */
    CHECK_EQ(st_frag_unusable(f, 4, 2), 666);
    /* order 3: nothing suitable: 12000 / 12 = 1000 */
    CHECK_EQ(st_frag_unusable(f, 4, 3), 1000);
    /* beyond the lists: nothing suitable either */
    CHECK_EQ(st_frag_unusable(f, 4, 6), 1000);
}

TEST(extfrag_small_zone)
{
    const uint64_t f[] = {4, 2, 1, 0};
    /* orders 0..2 have a suitable block: -1000 */
    CHECK_EQ(st_frag_extfrag(f, 4, 0), -1000);
    CHECK_EQ(st_frag_extfrag(f, 4, 2), -1000);
    /* order 3: requested 8; 12 * 1000 / 8 = 1500; (1000 + 1500) / 7 = 357; 1000 - 357 = 643 */
    CHECK_EQ(st_frag_extfrag(f, 4, 3), 643);
    /* order 4 is beyond the zone's lists: the kernel warns and returns 0 */
    CHECK_EQ(st_frag_extfrag(f, 4, 4), 0);
}

TEST(empty_zone)
{
    const uint64_t f[11] = {0};
    /* no free pages: unusable is defined as 1000, extfrag 0 (no blocks at all) */
    for (int o = 0; o < 11; o++) {
        CHECK_EQ(st_frag_unusable(f, 11, o), 1000);
        CHECK_EQ(st_frag_extfrag(f, 11, o), 0);
    }
}

TEST(extfrag_negative_single_block)
{
    /* one free block of order 1: free_pages 2, blocks_total 1 */
    const uint64_t f[] = {0, 1, 0, 0};
    /* order 2: 2 * 1000 / 4 = 500; (1000 + 500) / 1 = 1500; 1000 - 1500 = -500 */
    CHECK_EQ(st_frag_extfrag(f, 4, 2), -500);
    /* order 3: 2000 / 8 = 250; 1250; 1000 - 1250 = -250 */
    CHECK_EQ(st_frag_extfrag(f, 4, 3), -250);
    /* one free page: order 6: 1000 / 64 = 15; 1015; -15 */
    const uint64_t g[] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    CHECK_EQ(st_frag_extfrag(g, 11, 6), -15);
    /* order 10: 1000 / 1024 = 0; (1000 + 0) / 1 = 1000; 1000 - 1000 = 0 */
    CHECK_EQ(st_frag_extfrag(g, 11, 10), 0);
}

TEST(indices_real_fragmented_zone)
{
    /* buddyinfo-08's Normal zone (canonical/hotsos data, in the fixtures):
     * free_pages = 29196 + 20577*2 + 9900*4 + 5734*8 + 1915*16 + 349*32 + 53*64 + 3*128
     *            = 29196 + 41154 + 39600 + 45872 + 30640 + 11168 + 3392 + 384 = 201406
     * blocks_total = 29196 + 20577 + 9900 + 5734 + 1915 + 349 + 53 + 3 = 67727 */
    const uint64_t f[] = {29196, 20577, 9900, 5734, 1915, 349, 53, 3, 0, 0, 0};
    /* order 9: 201406000 / 512 = 393371; (1000 + 393371) / 67727 = 5; 1000 - 5 = 995 */
    CHECK_EQ(st_frag_extfrag(f, 11, 9), 995);
    /* order 8: 201406000 / 256 = 786742; 787742 / 67727 = 11; 989 */
    CHECK_EQ(st_frag_extfrag(f, 11, 8), 989);
    /* order 10: 201406000 / 1024 = 196685; 197685 / 67727 = 2; 998 */
    CHECK_EQ(st_frag_extfrag(f, 11, 10), 998);
    /* order 7: 3 blocks of order 7 are free */
    CHECK_EQ(st_frag_extfrag(f, 11, 7), -1000);
    /* unusable order 1: suitable = 20577 + 9900*2 + 5734*4 + 1915*8 + 349*16 + 53*32 + 3*64
     * = 20577 + 19800 + 22936 + 15320 + 5584 + 1696 + 192 = 86105; usable 172210 pages;
     * (201406 - 172210) * 1000 / 201406 = 29196000 / 201406 = 144 */
    CHECK_EQ(st_frag_unusable(f, 11, 1), 144);
    /* unusable order 7: usable 3 << 7 = 384; 201022000 / 201406 = 998 */
    CHECK_EQ(st_frag_unusable(f, 11, 7), 998);
}

TEST(indices_order8_blocks)
{
    /* 100 blocks of order 8: free_pages 25600, blocks_total 100.
     * order 9: 25600000 / 512 = 50000; (1000 + 50000) / 100 = 510; 1000 - 510 = 490 */
    uint64_t f[11] = {0};
    f[8] = 100;
    CHECK_EQ(st_frag_extfrag(f, 11, 9), 490);
    /* unusable order 9: nothing suitable: 1000; order 8: all usable: 0 */
    CHECK_EQ(st_frag_unusable(f, 11, 9), 1000);
    CHECK_EQ(st_frag_unusable(f, 11, 8), 0);
}

TEST(kernel_format_layout)
{
    /* one zone {4, 2, 1, 0}: unusable 0, 333, 666, 1000; extfrag -1000 x3, 643 */
    const uint64_t f[] = {4, 2, 1, 0};
    struct st_buddyinfo b;
    struct st_buddy_zone z;
    struct capture c;
    one_zone(&b, &z, "Normal", f, 4);
    capture_open(&c);
    CHECK_EQ(st_frag_print_kernel(c.f, &b, ST_KF_UNUSABLE), 0);
    const char *u = capture_close(&c);
    /* "Node %d, zone %8s " then "%d.%03d " per order */
    CHECK(strcmp(u, "Node 0, zone   Normal 0.000 0.333 0.666 1.000 \n") == 0);
    free(c.buf);
    capture_open(&c);
    CHECK_EQ(st_frag_print_kernel(c.f, &b, ST_KF_EXTFRAG), 0);
    const char *e = capture_close(&c);
    /* "%2d.%03d ": -1000 prints as "-1.000", 643 as " 0.643" */
    CHECK(strcmp(e, "Node 0, zone   Normal -1.000 -1.000 -1.000  0.643 \n") == 0);
    free(c.buf);
}

TEST(kernel_format_negative_quirk)
{
    /* one order-1 block: extfrag -1000, -1000, -500, -250. The kernel prints
     * index / 1000 and index % 1000 with C's truncating division: -500 gives
     * 0 and -500, hence " 0.-500". */
    const uint64_t f[] = {0, 1, 0, 0};
    struct st_buddyinfo b;
    struct st_buddy_zone z;
    struct capture c;
    one_zone(&b, &z, "DMA32", f, 4);
    z.node = 3;
    capture_open(&c);
    st_frag_print_kernel(c.f, &b, ST_KF_EXTFRAG);
    const char *e = capture_close(&c);
    CHECK(strcmp(e, "Node 3, zone    DMA32 -1.000 -1.000  0.-500  0.-250 \n") == 0);
    free(c.buf);
    /* -15 through "%03d" is "-15" */
    const uint64_t g[] = {1, 0, 0, 0, 0, 0, 0};
    one_zone(&b, &z, "Normal", g, 7);
    capture_open(&c);
    st_frag_print_kernel(c.f, &b, ST_KF_EXTFRAG);
    e = capture_close(&c);
    /* orders 1..6: 1000 - (1000 + 1000/2^o): -500, -250, -125, -62, -31, -15 */
    CHECK(
        strcmp(e, "Node 0, zone   Normal -1.000  0.-500  0.-250  0.-125  0.-62  0.-31  0.-15 \n") ==
        0);
    free(c.buf);
}

TEST(kernel_format_long_zone_name)
{
    /* %8s pads short names and never truncates long ones */
    const uint64_t f[] = {0, 0};
    struct st_buddyinfo b;
    struct st_buddy_zone z;
    struct capture c;
    one_zone(&b, &z, "VeryLongZone", f, 2);
    capture_open(&c);
    st_frag_print_kernel(c.f, &b, ST_KF_UNUSABLE);
    const char *u = capture_close(&c);
    CHECK(strcmp(u, "Node 0, zone VeryLongZone 1.000 1.000 \n") == 0);
    free(c.buf);
}

static struct st_wmark wmark(uint64_t free_pages, uint64_t min, uint64_t low, uint64_t high,
                             uint64_t reserve)
{
    struct st_wmark w = {true, free_pages, min, low, high, reserve};
    return w;
}

TEST(verdict_now)
{
    uint64_t f[11] = {0};
    f[9] = 1;
    f[0] = 9489;
    struct st_wmark w = wmark(10001, 1000, 1250, 1500, 0);
    struct st_zone_fit fit;
    /* 10001 - (512 - 1) = 9490 > min 1000 + reserve 0 */
    st_frag_zone_fit(f, 11, 9, &w, 500, &fit);
    CHECK_EQ(fit.fit, ST_FIT_NOW);
    CHECK(fit.has_block);
    CHECK_EQ(fit.largest_order, 9);
    CHECK_EQ(fit.fragindex, -1000);
    CHECK_EQ(fit.level, ST_WM_ABOVE_HIGH);
}

TEST(verdict_reserved_by_lowmem_reserve)
{
    /* the DMA zone of the fragmented fixture: blocks at orders 9 and 10, but
     * 3974 - 511 = 3463 <= min 67 + reserve 16244 (and > 67 alone) */
    const uint64_t f[] = {0, 1, 1, 0, 2, 1, 1, 0, 1, 1, 3};
    struct st_wmark w = wmark(3974, 67, 83, 99, 16244);
    struct st_zone_fit fit;
    st_frag_zone_fit(f, 11, 9, &w, 500, &fit);
    CHECK_EQ(fit.fit, ST_FIT_RESERVED);
    CHECK(fit.has_block);
}

TEST(verdict_block_but_below_min)
{
    uint64_t f[11] = {0};
    f[9] = 1;
    f[0] = 88;
    /* free 600 - 511 = 89 <= min 500: reclaim first */
    struct st_wmark w = wmark(600, 500, 600, 700, 0);
    struct st_zone_fit fit;
    st_frag_zone_fit(f, 11, 9, &w, 500, &fit);
    CHECK_EQ(fit.fit, ST_FIT_RECLAIM);
    CHECK_EQ(fit.level, ST_WM_BELOW_LOW);
}

TEST(verdict_compact)
{
    /* buddyinfo-08 Normal with its hand-made watermarks: no block of order 9;
     * compaction needs free > low 20251 + (2 << 9) = 21275 + reserve 0, and
     * 201406 is; the index 995 > 500 */
    const uint64_t f[] = {29196, 20577, 9900, 5734, 1915, 349, 53, 3, 0, 0, 0};
    struct st_wmark w = wmark(201406, 16201, 20251, 24301, 0);
    struct st_zone_fit fit;
    st_frag_zone_fit(f, 11, 9, &w, 500, &fit);
    CHECK_EQ(fit.fit, ST_FIT_COMPACT);
    CHECK(fit.compact_wmark_ok);
    CHECK_EQ(fit.fragindex, 995);
    CHECK_EQ(fit.largest_order, 7);
}

TEST(verdict_threshold_decides)
{
    /* 100 order-8 blocks: index 490 for order 9 (see indices_order8_blocks);
     * free 25600 > low 1000 + 1024. 490 <= 500: lack of memory; with the
     * threshold at 400, 490 > 400: compaction */
    uint64_t f[11] = {0};
    f[8] = 100;
    struct st_wmark w = wmark(25600, 800, 1000, 1200, 0);
    struct st_zone_fit fit;
    st_frag_zone_fit(f, 11, 9, &w, 500, &fit);
    CHECK_EQ(fit.fit, ST_FIT_RECLAIM);
    st_frag_zone_fit(f, 11, 9, &w, 400, &fit);
    CHECK_EQ(fit.fit, ST_FIT_COMPACT);
    /* exactly at the threshold is still "lack of memory" (index <= threshold) */
    st_frag_zone_fit(f, 11, 9, &w, 490, &fit);
    CHECK_EQ(fit.fit, ST_FIT_RECLAIM);
}

TEST(verdict_small_orders_ignore_index)
{
    /* 1000 order-1 blocks, order 2: index = 1000 - (1000 + 2000000/4) / 1000
     * = 1000 - 501000 / 1000 = 1000 - 501 = 499 <= 500, but orders up to 3
     * compact whatever the index (free 2000 > min 100 + 2 << 2) */
    uint64_t f[11] = {0};
    f[1] = 1000;
    struct st_wmark w = wmark(2000, 100, 125, 150, 0);
    struct st_zone_fit fit;
    st_frag_zone_fit(f, 11, 2, &w, 500, &fit);
    CHECK_EQ(fit.fragindex, 499);
    CHECK_EQ(fit.fit, ST_FIT_COMPACT);
}

TEST(verdict_compaction_needs_free_pages)
{
    /* 5000 free single pages: index 998 for order 9 (5000000/512 = 9765;
     * 10765 / 5000 = 2), but free 5000 is not above low 4500 + 1024 */
    uint64_t f[11] = {0};
    f[0] = 5000;
    struct st_wmark w = wmark(5000, 4000, 4500, 5000, 0);
    struct st_zone_fit fit;
    st_frag_zone_fit(f, 11, 9, &w, 500, &fit);
    CHECK_EQ(fit.fragindex, 998);
    CHECK(!fit.compact_wmark_ok);
    CHECK_EQ(fit.fit, ST_FIT_RECLAIM);
}

TEST(verdict_too_big_and_empty)
{
    uint64_t f[11] = {0};
    struct st_wmark unknown = {0};
    struct st_zone_fit fit;
    f[10] = 5;
    /* order 18 (1 GiB of 4 KiB pages) is beyond 11 orders */
    st_frag_zone_fit(f, 11, 18, &unknown, 500, &fit);
    CHECK_EQ(fit.fit, ST_FIT_TOO_BIG);
    CHECK_EQ(fit.fragindex, 0);
    f[10] = 0;
    /* nothing free at all: reclaim, even with unknown watermarks */
    st_frag_zone_fit(f, 11, 2, &unknown, 500, &fit);
    CHECK_EQ(fit.fit, ST_FIT_RECLAIM);
    CHECK_EQ(fit.largest_order, -1);
    CHECK_EQ(fit.level, ST_WM_UNKNOWN);
}

TEST(overall_verdict)
{
    struct st_zone_fit z[3] = {
        {.fit = ST_FIT_RESERVED}, {.fit = ST_FIT_RECLAIM}, {.fit = ST_FIT_COMPACT}};
    CHECK_EQ(st_frag_overall(z, 3), ST_FIT_COMPACT);
    z[1].fit = ST_FIT_NOW;
    CHECK_EQ(st_frag_overall(z, 3), ST_FIT_NOW);
    z[0].fit = z[1].fit = z[2].fit = ST_FIT_TOO_BIG;
    CHECK_EQ(st_frag_overall(z, 3), ST_FIT_TOO_BIG);
    z[2].fit = ST_FIT_RESERVED;
    CHECK_EQ(st_frag_overall(z, 3), ST_FIT_RECLAIM);
    CHECK_EQ(st_frag_overall(z, 0), ST_FIT_RECLAIM);
}

TEST(watermark_levels)
{
    struct st_wmark w = wmark(100, 100, 200, 300, 0);
    CHECK_EQ(st_frag_wm_level(&w), ST_WM_BELOW_MIN); /* free <= min */
    w.free = 200;
    CHECK_EQ(st_frag_wm_level(&w), ST_WM_BELOW_LOW);
    w.free = 201;
    CHECK_EQ(st_frag_wm_level(&w), ST_WM_BELOW_HIGH);
    w.free = 301;
    CHECK_EQ(st_frag_wm_level(&w), ST_WM_ABOVE_HIGH);
    CHECK(strcmp(st_frag_wm_name(ST_WM_BELOW_LOW), "below-low") == 0);
    CHECK(strcmp(st_frag_fit_name(ST_FIT_COMPACT), "compact") == 0);
}

TEST(wmark_from_zoneinfo)
{
    struct st_zi_zone z = {0};
    struct st_wmark w;
    st_frag_wmark_from(&z, &w);
    CHECK(!w.known); /* no fields seen */
    z.seen = ST_ZI_CORE | ST_ZI_PROTECTION;
    z.free = 10;
    z.min = 1;
    z.low = 2;
    z.high = 3;
    z.nprotection = 5;
    z.protection[1] = 2962;
    z.protection[2] = 16244;
    z.protection[3] = 16244;
    st_frag_wmark_from(&z, &w);
    CHECK(w.known);
    CHECK_EQ(w.reserve, 16244); /* the largest entry: the movable allocations' */
    st_frag_wmark_from(NULL, &w);
    CHECK(!w.known);
}
