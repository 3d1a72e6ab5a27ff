/* SPDX-License-Identifier: MIT */
/*
 * stats.c — the malloc's figures (strata_malloc_stats_get, mallinfo2's
 * source, strata_stats_print and its JSON form).
 *
 * Everything is computed when asked, by walking every heap's segments
 * under the registry and segment locks (no segment leaves a heap, nor is
 * unmapped, meanwhile): the fast paths keep no counters. Other threads go
 * on allocating meanwhile, so the figures are a snapshot, not a
 * consistent cut, and what a descriptor says is checked before it is
 * used (its slot page may have just been given back and read zeros).
 * Resident bytes come from mincore(2).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "large.h"
#include "options.h"
#include "stats.h"
#include "strata/malloc.h"
#include "theap.h"


typedef struct class_totals {
    size_t active, total, slabs, active_slabs;
} class_totals;

typedef struct walk {
    strata_malloc_stats st;
    size_t large_usable;
    size_t dirty_bytes;
    class_totals classes[ST_CLASS_COUNT];
} walk;

static size_t resident_pages(void *addr, size_t pages)
{
    unsigned char vec[ST_SEGMENT_PAGES];
    if (pages > ST_SEGMENT_PAGES || mincore(addr, pages * ST_PAGE_SIZE, vec) != 0)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < pages; i++)
        n += vec[i] & 1;
    return n;
}

/* The class of slab s, from its object size. */
static unsigned slab_class_of(const st_slab *s) { return s->owner_tag & 0xff; }

static void walk_segment(walk *w, st_segment *seg)
{
    w->st.segments++;
    w->st.mapped_bytes += ST_SEGMENT_SIZE;
    w->st.resident_bytes += resident_pages(seg, ST_SEGMENT_PAGES) * ST_PAGE_SIZE;
    for (size_t i = 0; i < ST_SEGMENT_PAGES; i++) {
        uintptr_t e = seg->pages[i], page = (uintptr_t)seg + i * ST_PAGE_SIZE;
        if (e == ST_PAGE_MEDIUM || e == ST_PAGE_MEDIUM_REMOTE) {
            w->st.live_bytes += st_theap_medium_size(seg, (void *)page);
        } else if (e >= ST_PAGE_SIZE && ((const st_slab *)st_page_slab(e))->block == page) {
            const st_slab *s = st_page_slab(e); /* counted at its first page */
            if (slab_class_of(s) >= ST_CLASS_COUNT || s->capacity > ST_SLAB_MAX_CAPACITY)
                continue; /* changing under us */
            class_totals *c = &w->classes[slab_class_of(s)];
            size_t used = st_slab_used(s);
            w->st.live_bytes += used * s->size;
            c->active += used;
            c->total += s->capacity;
            c->slabs++;
            c->active_slabs += used > 0;
        }
    }
}

/* One heap's figures, read while its owner may go on (tests/tsan.supp
 * names this function: its reads are a snapshot by design). */
static void walk_heap(walk *w, st_theap *h)
{
    w->st.heaps++;
    w->st.heaps_abandoned += h->state == ST_HEAP_ABANDONED;
    w->st.remote_frees += __atomic_load_n(&h->remote_frees, __ATOMIC_RELAXED);
    w->st.purges += h->purges;
    w->st.purged_bytes += h->purged_bytes;
    w->dirty_bytes += h->dirty_pages * ST_PAGE_SIZE;
    for (st_segment *seg = h->segments; seg != NULL; seg = seg->next)
        walk_segment(w, seg);
}

static void walk_all(walk *w)
{
    memset(w, 0, sizeof(*w));
    st_malloc_flush_thread();
    st_theap_lock_all();
    for (st_theap *h = st_theap_first(); h != NULL; h = h->next_all) {
        /* blocks freed into a heap whose thread is gone (or waits in
         * pthread_join) wait on its list when the freeing thread found the
         * registry busy: under its lock we stand in for the owner, so they
         * count as freed */
        if (h->state == ST_HEAP_ABANDONED || h->state == ST_HEAP_PARKED) {
            st_theap_collect(h);
            st_theap_purge_pending(h);
        }
        walk_heap(w, h);
    }
    st_theap_unlock_all();
    size_t cached = st_segment_cached();
    w->st.segments += cached;
    w->st.mapped_bytes += cached * ST_SEGMENT_SIZE;
    st_large_totals(&w->st.large_blocks, &w->st.large_bytes, &w->large_usable);
    w->st.mapped_bytes += w->st.large_bytes + st_large_cached_bytes();
    w->st.live_bytes += w->large_usable;
    w->st.resident_bytes += w->st.large_bytes; /* an upper bound: large pages are touched by use */
    st_theap_counters(&w->st.abandoned, &w->st.adopted);
}

STRATA_API void strata_malloc_stats_get(strata_malloc_stats *out)
{
    walk w;
    walk_all(&w);
    *out = w.st;
}

STRATA_API struct mallinfo2 strata_mallinfo2(void)
{
    walk w;
    walk_all(&w);
    struct mallinfo2 mi;
    memset(&mi, 0, sizeof(mi));
    size_t small_mapped = w.st.mapped_bytes - w.st.large_bytes;
    mi.arena = w.st.mapped_bytes;
    mi.uordblks = w.st.live_bytes - w.large_usable;
    mi.fordblks = small_mapped - ST_MIN(small_mapped, mi.uordblks);
    mi.hblks = w.st.large_blocks;
    mi.hblkhd = w.st.large_bytes;
    mi.keepcost = w.dirty_bytes;
    return mi;
}

static int clamp(size_t v) { return v > INT_MAX ? INT_MAX : (int)v; }

STRATA_API struct mallinfo strata_mallinfo(void)
{
    struct mallinfo2 m = strata_mallinfo2();
    struct mallinfo mi;
    memset(&mi, 0, sizeof(mi));
    mi.arena = clamp(m.arena);
    mi.uordblks = clamp(m.uordblks);
    mi.fordblks = clamp(m.fordblks);
    mi.hblks = clamp(m.hblks);
    mi.hblkhd = clamp(m.hblkhd);
    mi.keepcost = clamp(m.keepcost);
    return mi;
}

/* ---- text and JSON ----------------------------------------------------------- */

static void class_info(const walk *w, unsigned c, strata_slab_info *i)
{
    memset(i, 0, sizeof(*i));
    snprintf(i->name, sizeof(i->name), "strata-%zu", st_sizeclass_size(c));
    st_slab_layout l;
    st_slab_layout_bitmap((size_t)ST_PAGE_SIZE << st_sizeclass_slab_order(c), st_sizeclass_size(c),
                          st_sizeclass_align(c), &l);
    i->object_stride = l.size;
    i->objects_per_slab = l.capacity;
    i->pages_per_slab = (unsigned)(l.block_bytes / ST_PAGE_SIZE);
    i->active_objects = w->classes[c].active;
    i->total_objects = w->classes[c].total;
    i->active_slabs = w->classes[c].active_slabs;
    i->total_slabs = w->classes[c].slabs;
}

static void print_figures(FILE *out, const strata_malloc_stats *s)
{
    fprintf(out,
            "live      %12zu bytes\nresident  %12zu bytes\nmapped    %12zu bytes\n"
            "segments  %12zu\nlarge     %12zu blocks, %zu bytes\n"
            "heaps     %12zu (%zu waiting for a thread)\n"
            "remote frees %9llu\nabandoned %12llu\nadopted   %12llu\n"
            "purges    %12llu (%llu bytes returned)\n",
            s->live_bytes, s->resident_bytes, s->mapped_bytes, s->segments, s->large_blocks,
            s->large_bytes, s->heaps, s->heaps_abandoned, (unsigned long long)s->remote_frees,
            (unsigned long long)s->abandoned, (unsigned long long)s->adopted,
            (unsigned long long)s->purges, (unsigned long long)s->purged_bytes);
}

/* The buddyinfo line of every heap's segments, read while their owners
 * go on: the counts are a snapshot (relaxed atomics, src/buddy.c). */
static void print_segments(FILE *out)
{
    char line[256], zone[32];
    size_t n = 0;
    st_theap_lock_all();
    for (st_theap *h = st_theap_first(); h != NULL; h = h->next_all)
        for (st_segment *seg = h->segments; seg != NULL; seg = seg->next) {
            snprintf(zone, sizeof(zone), "seg%zu", n++);
            strata_buddy_format(seg->buddy, zone, line, sizeof(line));
            fputs(line, out);
        }
    st_theap_unlock_all();
}

STRATA_API void strata_stats_print(FILE *out)
{
    walk w;
    walk_all(&w);
    fprintf(out, "strata stats: pid %ld\n", (long)getpid());
    print_figures(out, &w.st);
    char line[256];
    strata_slab_format_header(line, sizeof(line));
    fputs(line, out);
    for (unsigned c = 0; c < ST_CLASS_COUNT; c++) {
        if (w.classes[c].slabs == 0)
            continue;
        strata_slab_info i;
        class_info(&w, c, &i);
        st_slabinfo_line(line, sizeof(line), &i);
        fputs(line, out);
    }
    fprintf(out, "buddyinfo of each segment (free blocks of 4 KiB << order, orders 0..%d):\n",
            ST_SEGMENT_MAX_ORDER);
    print_segments(out);
}

static void json_figures(FILE *out, const strata_malloc_stats *s)
{
    fprintf(out,
            "\"live_bytes\":%zu,\"resident_bytes\":%zu,\"mapped_bytes\":%zu,\"segments\":%zu,"
            "\"large_blocks\":%zu,\"large_bytes\":%zu,\"heaps\":%zu,\"heaps_abandoned\":%zu,"
            "\"remote_frees\":%llu,\"abandoned\":%llu,\"adopted\":%llu,\"purges\":%llu,"
            "\"purged_bytes\":%llu",
            s->live_bytes, s->resident_bytes, s->mapped_bytes, s->segments, s->large_blocks,
            s->large_bytes, s->heaps, s->heaps_abandoned, (unsigned long long)s->remote_frees,
            (unsigned long long)s->abandoned, (unsigned long long)s->adopted,
            (unsigned long long)s->purges, (unsigned long long)s->purged_bytes);
}

static void json_segments(FILE *out)
{
    const char *sep = "";
    st_theap_lock_all();
    for (st_theap *h = st_theap_first(); h != NULL; h = h->next_all)
        for (st_segment *seg = h->segments; seg != NULL; seg = seg->next) {
            strata_buddy_info bi;
            strata_buddy_get_info(seg->buddy, &bi);
            fprintf(out, "%s{\"address\":\"%p\",\"free_blocks\":[", sep, (void *)seg);
            for (unsigned o = 0; o <= ST_SEGMENT_MAX_ORDER; o++)
                fprintf(out, "%s%zu", o ? "," : "", bi.free_blocks[o]);
            fprintf(out, "]}");
            sep = ",";
        }
    st_theap_unlock_all();
}

STRATA_API void strata_stats_print_json(FILE *out)
{
    walk w;
    walk_all(&w);
    fprintf(out, "{\"pid\":%ld,", (long)getpid());
    json_figures(out, &w.st);
    fprintf(out, ",\"classes\":[");
    const char *sep = "";
    for (unsigned c = 0; c < ST_CLASS_COUNT; c++) {
        if (w.classes[c].slabs == 0)
            continue;
        strata_slab_info i;
        class_info(&w, c, &i);
        fprintf(out,
                "%s{\"size\":%zu,\"active_objects\":%zu,\"total_objects\":%zu,"
                "\"objects_per_slab\":%u,\"pages_per_slab\":%u,\"active_slabs\":%zu,"
                "\"total_slabs\":%zu}",
                sep, i.object_stride, i.active_objects, i.total_objects, i.objects_per_slab,
                i.pages_per_slab, i.active_slabs, i.total_slabs);
        sep = ",";
    }
    fprintf(out, "],\"segment_buddyinfo\":[");
    json_segments(out);
    fprintf(out, "]}\n");
}

STRATA_API void strata_malloc_stats_print(void) { strata_stats_print(stderr); }

void st_stats_at_exit(void)
{
    const st_options *o = &st_opts;
    FILE *out = o->stats_file != NULL ? fopen(o->stats_file, "a") : stderr;
    if (out == NULL)
        return;
    strata_stats_print(out);
    if (out != stderr)
        fclose(out);
    else
        fflush(out);
}
