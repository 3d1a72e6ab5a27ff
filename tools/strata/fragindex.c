/* SPDX-License-Identifier: MIT */
/*
 * fragindex.c — the kernel's fragmentation indices and the per-zone verdict.
 *
 * The indices follow mm/vmstat.c: the same counts (fill_contig_page_info),
 * the same unsigned 64-bit arithmetic and truncating divisions, the same
 * special cases (no free pages, a suitable block free, an order beyond the
 * free lists). The verdict follows the allocator's own tests: the
 * watermark check of page_alloc.c (free pages minus the block, above the
 * mark plus the lowmem reserve) and compaction.c's compaction_suitable (the
 * order-0 watermark plus a gap of twice the request, then, for orders above
 * PAGE_ALLOC_COSTLY_ORDER, a fragmentation index in [0, extfrag_threshold]
 * means the failure is from lack of memory and compaction is skipped).
 *
 * What it does not model: the high-atomic and CMA reserves, per-migrate-type
 * free lists, cpusets and mempolicies. The verdict is the allocator's view
 * of a plain user-space (movable) allocation.
 */
#include "fragindex.h"

#include <string.h>

/* PAGE_ALLOC_COSTLY_ORDER: above it the kernel consults extfrag_threshold. */
#define COSTLY_ORDER 3

void st_frag_contig(const uint64_t *nr_free, int norders, int order, struct st_contig *out)
{
    memset(out, 0, sizeof(*out));
    for (int k = 0; k < norders; k++) {
        uint64_t blocks = nr_free[k];
        out->free_blocks_total += blocks;
        out->free_pages += blocks << k;
        if (k >= order) out->free_blocks_suitable += blocks << (k - order);
    }
}

int st_frag_unusable(const uint64_t *nr_free, int norders, int order)
{
    struct st_contig c;
    st_frag_contig(nr_free, norders, order, &c);
    if (c.free_pages == 0) return 1000; /* nothing free: all of it (none) is unusable */
    uint64_t usable = c.free_blocks_suitable << order;
    return (int)((c.free_pages - usable) * 1000ULL / c.free_pages);
}

int st_frag_extfrag(const uint64_t *nr_free, int norders, int order)
{
    struct st_contig c;
    if (order < 0 || order >= norders)
        return 0; /* the kernel warns and answers 0 beyond its largest order */
    st_frag_contig(nr_free, norders, order, &c);
    if (c.free_blocks_total == 0) return 0;
    if (c.free_blocks_suitable) return -1000;
    uint64_t requested = 1ULL << order;
    uint64_t q = (1000 + c.free_pages * 1000ULL / requested) / c.free_blocks_total;
    /* The kernel returns 1000 - q through an int: negative when q > 1000,
     * which happens when a single block is free. */
    return (int)(1000 - (int64_t)q);
}

/* ------------------------------------------------------------------ */
/* debugfs format                                                      */

static int kernel_index(const struct st_buddy_zone *z, int order, enum st_kernel_file which)
{
    return which == ST_KF_UNUSABLE ? st_frag_unusable(z->nr_free, z->norders, order)
                                   : st_frag_extfrag(z->nr_free, z->norders, order);
}

/* The kernel splits the index with C's truncating / and %, so -500 prints
 * as " 0.-500" and -1000 as "-1.000"; printf does the same here. */
int st_frag_print_kernel(FILE *out, const struct st_buddyinfo *b, enum st_kernel_file which)
{
    const char *fmt = which == ST_KF_UNUSABLE ? "%d.%03d " : "%2d.%03d ";
    for (size_t i = 0; i < b->n; i++) {
        const struct st_buddy_zone *z = &b->zones[i];
        fprintf(out, "Node %d, zone %8s ", z->node, z->zone);
        for (int o = 0; o < z->norders; o++) {
            int idx = kernel_index(z, o, which);
            fprintf(out, fmt, idx / 1000, idx % 1000);
        }
        fputc('\n', out);
    }
    return ferror(out) ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* verdict                                                             */

void st_frag_wmark_from(const struct st_zi_zone *z, struct st_wmark *wm)
{
    memset(wm, 0, sizeof(*wm));
    if (!z || (z->seen & ST_ZI_CORE) != ST_ZI_CORE) return;
    wm->known = true;
    wm->free = z->free;
    wm->min = z->min;
    wm->low = z->low;
    wm->high = z->high;
    for (int i = 0; i < z->nprotection; i++)
        if (z->protection[i] > wm->reserve) wm->reserve = z->protection[i];
}

enum st_wm_level st_frag_wm_level(const struct st_wmark *wm)
{
    if (!wm->known) return ST_WM_UNKNOWN;
    if (wm->free <= wm->min) return ST_WM_BELOW_MIN;
    if (wm->free <= wm->low) return ST_WM_BELOW_LOW;
    if (wm->free <= wm->high) return ST_WM_BELOW_HIGH;
    return ST_WM_ABOVE_HIGH;
}

static int largest_order(const uint64_t *nr_free, int norders)
{
    for (int o = norders - 1; o >= 0; o--)
        if (nr_free[o]) return o;
    return -1;
}

/* page_alloc.c's watermark test: the free pages left once the block is
 * taken (free - (2^order - 1)) must stay above mark + lowmem reserve. */
static bool wmark_ok(const struct st_wmark *wm, int order, uint64_t mark, uint64_t reserve)
{
    int64_t left = (int64_t)wm->free - (int64_t)((1ULL << order) - 1);
    return left > (int64_t)(mark + reserve);
}

/* A block is free: the min watermark (the slow path's) decides. */
static enum st_fit block_fit(const struct st_wmark *wm, int order)
{
    if (!wm->known || wmark_ok(wm, order, wm->min, wm->reserve)) return ST_FIT_NOW;
    if (wmark_ok(wm, order, wm->min, 0)) return ST_FIT_RESERVED;
    return ST_FIT_RECLAIM;
}

/* compaction_suitable(): compaction needs free order-0 pages above the
 * watermark (low for costly orders, else min) plus compact_gap = 2 << order
 * for the copies it makes while migrating. */
static bool compact_wmark_ok(const struct st_wmark *wm, int order, uint64_t free_pages)
{
    uint64_t gap = 2ULL << order;
    if (!wm->known) return free_pages > gap;
    uint64_t mark = (order > COSTLY_ORDER ? wm->low : wm->min) + gap;
    return wm->free > mark + wm->reserve;
}

static enum st_fit no_block_fit(const struct st_zone_fit *f, long threshold, uint64_t free_pages)
{
    if (free_pages == 0 || !f->compact_wmark_ok) return ST_FIT_RECLAIM;
    if (f->order > COSTLY_ORDER && f->fragindex >= 0 && f->fragindex <= threshold)
        return ST_FIT_RECLAIM;
    return ST_FIT_COMPACT;
}

void st_frag_zone_fit(const uint64_t *nr_free, int norders, int order, const struct st_wmark *wm,
                      long extfrag_threshold, struct st_zone_fit *out)
{
    struct st_contig c;
    memset(out, 0, sizeof(*out));
    st_frag_contig(nr_free, norders, order, &c);
    out->order = order;
    out->largest_order = largest_order(nr_free, norders);
    out->unusable = st_frag_unusable(nr_free, norders, order);
    out->fragindex = st_frag_extfrag(nr_free, norders, order);
    out->has_block = out->largest_order >= order;
    out->level = st_frag_wm_level(wm);
    out->compact_wmark_ok = compact_wmark_ok(wm, order, c.free_pages);
    if (order >= norders)
        out->fit = ST_FIT_TOO_BIG;
    else if (out->has_block)
        out->fit = block_fit(wm, order);
    else
        out->fit = no_block_fit(out, extfrag_threshold, c.free_pages);
}

enum st_fit st_frag_overall(const struct st_zone_fit *zones, size_t n)
{
    bool any_compact = false, all_too_big = n > 0;
    for (size_t i = 0; i < n; i++) {
        if (zones[i].fit == ST_FIT_NOW) return ST_FIT_NOW;
        any_compact |= zones[i].fit == ST_FIT_COMPACT;
        all_too_big &= zones[i].fit == ST_FIT_TOO_BIG;
    }
    if (any_compact) return ST_FIT_COMPACT;
    return all_too_big ? ST_FIT_TOO_BIG : ST_FIT_RECLAIM;
}

const char *st_frag_fit_name(enum st_fit fit)
{
    switch (fit) {
    case ST_FIT_NOW:
        return "now";
    case ST_FIT_COMPACT:
        return "compact";
    case ST_FIT_RECLAIM:
        return "reclaim";
    case ST_FIT_RESERVED:
        return "reserved";
    case ST_FIT_TOO_BIG:
        return "too-big";
    }
    return "?";
}

const char *st_frag_wm_name(enum st_wm_level level)
{
    switch (level) {
    case ST_WM_UNKNOWN:
        return "unknown";
    case ST_WM_BELOW_MIN:
        return "below-min";
    case ST_WM_BELOW_LOW:
        return "below-low";
    case ST_WM_BELOW_HIGH:
        return "below-high";
    case ST_WM_ABOVE_HIGH:
        return "above-high";
    }
    return "?";
}
