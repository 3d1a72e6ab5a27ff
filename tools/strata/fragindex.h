/* SPDX-License-Identifier: MIT */
/*
 * fragindex.h — the kernel's two external-fragmentation indices, computed
 * from the free block counts of one zone exactly as mm/vmstat.c computes
 * them (integer arithmetic, thousandths), their debugfs text format, and the
 * verdict for one allocation order: can it be had now, would compaction
 * help, or is reclaim needed.
 *
 * Indices (order o, requested = 2^o pages, over the zone's free lists):
 *   free_pages      = sum over k of nr_free[k] * 2^k
 *   blocks_total    = sum over k of nr_free[k]
 *   blocks_suitable = sum over k >= o of nr_free[k] * 2^(k - o)
 *   unusable(o)     = free_pages == 0 ? 1000
 *                     : (free_pages - blocks_suitable * 2^o) * 1000 / free_pages
 *   fragmentation(o)= blocks_total == 0 ? 0 : blocks_suitable > 0 ? -1000
 *                     : 1000 - (1000 + free_pages * 1000 / requested) / blocks_total
 * with every division truncating, as the kernel's div_u64 does.
 *
 * Cost: O(orders) per index; no allocation.
 */
#ifndef STRATA_TOOL_FRAGINDEX_H
#define STRATA_TOOL_FRAGINDEX_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "procfs.h"

/* The kernel's struct contig_page_info for one zone and one order. */
struct st_contig {
    uint64_t free_pages;
    uint64_t free_blocks_total;
    uint64_t free_blocks_suitable;
};

void st_frag_contig(const uint64_t *nr_free, int norders, int order, struct st_contig *out);
/* Unusable free space index in thousandths: 0 (all free memory usable for
 * this order) .. 1000 (none is, or nothing is free). */
int st_frag_unusable(const uint64_t *nr_free, int norders, int order);
/* External fragmentation index in thousandths: -1000 when a block of this
 * order is free, else towards 0 = lack of memory, towards 1000 =
 * fragmentation. 0 for an order the zone's lists do not have (the kernel
 * warns and returns 0). May be negative when only one block is free. */
int st_frag_extfrag(const uint64_t *nr_free, int norders, int order);

/* Which debugfs file to imitate. */
enum st_kernel_file { ST_KF_UNUSABLE, ST_KF_EXTFRAG };

/* Print the zones of b as /sys/kernel/debug/extfrag/unusable_index or
 * extfrag_index would, byte for byte ("Node %d, zone %8s " then one
 * "%d.%03d " or "%2d.%03d " per order, negative values split the kernel's
 * way). Returns 0, or -1 on an output error. */
int st_frag_print_kernel(FILE *out, const struct st_buddyinfo *b, enum st_kernel_file which);

/* Where a zone's free pages stand against its watermarks. */
enum st_wm_level {
    ST_WM_UNKNOWN,
    ST_WM_BELOW_MIN,
    ST_WM_BELOW_LOW,
    ST_WM_BELOW_HIGH,
    ST_WM_ABOVE_HIGH
};

/* A zone's watermarks from zoneinfo, in pages. reserve is the lowmem
 * reserve that applies to user-space (movable) allocations: the largest
 * entry of the zone's protection array. */
struct st_wmark {
    bool known;
    uint64_t free, min, low, high, reserve;
};

/* Verdict for one order in one zone, or overall. Ordered from best. */
enum st_fit {
    ST_FIT_NOW,      /* a free block of the order exists and the watermarks allow it */
    ST_FIT_COMPACT,  /* no block; fragmentation: compaction would help */
    ST_FIT_RECLAIM,  /* lack of free memory: reclaim needed first */
    ST_FIT_RESERVED, /* a block exists but the zone keeps it for lower-zone allocations */
    ST_FIT_TOO_BIG,  /* the order is beyond the buddy allocator's largest */
};

struct st_zone_fit {
    enum st_fit fit;
    int order;
    int largest_order;     /* highest order with a free block, -1 if none */
    int unusable;          /* thousandths */
    int fragindex;         /* thousandths */
    bool has_block;        /* a free block of this order or above exists */
    bool compact_wmark_ok; /* free pages allow compaction (order-0 mark + 2 << order) */
    enum st_wm_level level;
};

enum st_wm_level st_frag_wm_level(const struct st_wmark *wm);
/* Apply the kernel's rules (page_alloc.c's watermark check, compaction.c's
 * compaction_suitable with extfrag_threshold) to one zone. */
void st_frag_zone_fit(const uint64_t *nr_free, int norders, int order, const struct st_wmark *wm,
                      long extfrag_threshold, struct st_zone_fit *out);
/* The best verdict of n zones: NOW if any zone can serve it, else COMPACT
 * if any zone would, else TOO_BIG if every zone says so, else RECLAIM. */
enum st_fit st_frag_overall(const struct st_zone_fit *zones, size_t n);
/* Short name ("now", "compact", "reclaim", "reserved", "too-big"). */
const char *st_frag_fit_name(enum st_fit fit);
const char *st_frag_wm_name(enum st_wm_level level);
/* Watermarks of a zoneinfo zone (known false when z is NULL or incomplete). */
void st_frag_wmark_from(const struct st_zi_zone *z, struct st_wmark *wm);

#endif /* STRATA_TOOL_FRAGINDEX_H */
