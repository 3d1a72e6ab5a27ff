/* SPDX-License-Identifier: MIT */
/*
 * cmd_frag.c — `strata frag`: read a Linux machine's memory counters (or a
 * snapshot of them) and explain its fragmentation: per zone the free blocks
 * per order, the kernel's two indices, the watermarks, a verdict for one
 * allocation size; then meminfo and vmstat figures, slab caches, one
 * process's figures, and advice naming the knob and the figure behind it.
 * Output as text, JSON, the kernel's debugfs format or an SVG chart;
 * `--watch` repeats it with rates; `snapshot DIR` copies the files.
 *
 * It only reads and advises: it never writes a setting. Parsing lives in
 * procfs.c, the indices and verdicts in fragindex.c; this file decides what
 * to show and how.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "fragindex.h"
#include "json.h"
#include "procfs.h"
#include "svg.h"

#define DEFAULT_THRESHOLD 500 /* the kernel's default extfrag_threshold */
#define BAR_WIDTH 30
#define TOP_SLABS 10
#define MAX_ADVICE 24

/* ------------------------------------------------------------------ */
/* options                                                             */

enum kernel_out { KOUT_NONE, KOUT_BOTH, KOUT_UNUSABLE, KOUT_EXTFRAG };

struct options {
    const char *root;
    bool json;
    enum kernel_out kernel;
    long order;    /* -1: from --size or the huge page size */
    uint64_t size; /* bytes, 0 if not given */
    long pid;      /* -1: none */
    double watch;  /* seconds between samples, 0: once */
    long count;    /* samples with --watch, 0: until interrupted */
    const char *svg;
    long page_size; /* 0: from the machine */
};

static void usage(FILE *out)
{
    fputs("usage: strata frag [OPTIONS]\n"
          "       strata frag snapshot DIR [--pid PID]\n"
          "\n"
          "Explain this machine's memory fragmentation from /proc and /sys (read only).\n"
          "\n"
          "  --root DIR          read DIR/proc/... and DIR/sys/... (a snapshot) instead of /\n"
          "  --size SIZE         allocation to judge: bytes with K, M, G or T (default:\n"
          "                      the huge page size, from Hugepagesize in meminfo)\n"
          "  --order N           allocation to judge, as a buddy order (2^N pages)\n"
          "  --json              the whole report as JSON\n"
          "  --kernel-format[=unusable|extfrag]\n"
          "                      print the indices as /sys/kernel/debug/extfrag/ does\n"
          "  --svg FILE          also write a chart of free memory per order per zone\n"
          "  --pid PID           add that process's memory figures\n"
          "  --watch SECONDS     sample repeatedly, showing rates per second\n"
          "  --count N           with --watch: stop after N samples\n"
          "  --page-size BYTES   page size of a snapshot that does not record it\n"
          "  --help              this text\n"
          "\n"
          "snapshot DIR copies the files this command reads into DIR (DIR/proc/buddyinfo,\n"
          "...), for `strata frag --root DIR` on another machine.\n"
          "\n"
          "Exit status: 0 report made, 2 malformed input (the report still shows the\n"
          "rest) or bad usage, 1 other failures (a file or process that cannot be read).\n",
          out);
}

/* "--name VALUE" or "--name=VALUE": the value, advancing *i; NULL if argv[*i]
 * is not this option. *missing is set when the value is absent. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0) return NULL;
    if (a[n] == '=') return a + n + 1;
    if (a[n] != '\0') return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

static bool parse_long_arg(const char *s, long min, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || errno || v < min) return false;
    *out = v;
    return true;
}

/* "2M", "1G", "4096", "64KiB": bytes, binary multiples. */
static bool parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !(v > 0)) return false;
    const char *units = "KMGT";
    const char *u =
        isalpha((unsigned char)*end) ? strchr(units, toupper((unsigned char)*end)) : NULL;
    if (*end && !u) return false;
    if (u) {
        v *= pow(1024, (double)(u - units + 1));
        end++;
        if (strcmp(end, "iB") != 0 && strcmp(end, "B") != 0 && *end != '\0') return false;
    } else if (*end) {
        return false;
    }
    if (v >= 1.8e19) return false;
    *out = (uint64_t)ceil(v);
    return true;
}

static bool parse_kernel_arg(const char *a, struct options *o)
{
    if (strcmp(a, "--kernel-format") == 0)
        o->kernel = KOUT_BOTH;
    else if (strcmp(a, "--kernel-format=unusable") == 0)
        o->kernel = KOUT_UNUSABLE;
    else if (strcmp(a, "--kernel-format=extfrag") == 0)
        o->kernel = KOUT_EXTFRAG;
    else
        return false;
    return true;
}

static int bad_value(const char *opt, const char *v)
{
    fprintf(stderr, "strata frag: bad value for %s: '%s'\n", opt, v ? v : "");
    return 2;
}

/* One option taking a value; 1 if argv[*i] was not it, 0 or 2 otherwise. */
static int parse_valued(int argc, char **argv, int *i, struct options *o)
{
    bool missing = false;
    const char *v;
    if ((v = opt_value(argc, argv, i, "--root", &missing))) return o->root = v, 0;
    if ((v = opt_value(argc, argv, i, "--svg", &missing))) return o->svg = v, 0;
    if ((v = opt_value(argc, argv, i, "--size", &missing)))
        return parse_size(v, &o->size) ? 0 : bad_value("--size", v);
    if ((v = opt_value(argc, argv, i, "--order", &missing)))
        return parse_long_arg(v, 0, &o->order) && o->order < 63 ? 0 : bad_value("--order", v);
    if ((v = opt_value(argc, argv, i, "--pid", &missing)))
        return parse_long_arg(v, 1, &o->pid) ? 0 : bad_value("--pid", v);
    if ((v = opt_value(argc, argv, i, "--count", &missing)))
        return parse_long_arg(v, 1, &o->count) ? 0 : bad_value("--count", v);
    if ((v = opt_value(argc, argv, i, "--page-size", &missing)))
        return parse_long_arg(v, 512, &o->page_size) ? 0 : bad_value("--page-size", v);
    if ((v = opt_value(argc, argv, i, "--watch", &missing))) {
        char *end;
        o->watch = strtod(v, &end);
        return *end == '\0' && o->watch > 0 && o->watch < 1e6 ? 0 : bad_value("--watch", v);
    }
    if (missing) return bad_value(argv[*i], NULL);
    return 1;
}

/* 0: parsed; 2: bad usage (reported); -1: --help shown. */
static int parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){"/", false, KOUT_NONE, -1, 0, -1, 0, 0, NULL, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return usage(stdout), -1;
        if (strcmp(a, "--json") == 0) {
            o->json = true;
            continue;
        }
        if (parse_kernel_arg(a, o)) continue;
        int r = parse_valued(argc, argv, &i, o);
        if (r == 1) {
            fprintf(stderr, "strata frag: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (r) return r;
    }
    if (o->order >= 0 && o->size) {
        fprintf(stderr, "strata frag: give --size or --order, not both\n");
        return 2;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* formatting                                                          */

/* "1.5 GiB", "512 KiB", "0 B". */
static const char *fmt_bytes(char *buf, size_t n, double bytes)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int u = 0;
    while (fabs(bytes) >= 1024 && u < 5) {
        bytes /= 1024;
        u++;
    }
    if (u == 0 || fabs(bytes) >= 100 || bytes == floor(bytes))
        snprintf(buf, n, "%.0f %s", bytes, units[u]);
    else
        snprintf(buf, n, "%.1f %s", bytes, units[u]);
    return buf;
}

/* Short block sizes for table columns: "4K", "2M", "1G". */
static const char *fmt_short(char *buf, size_t n, uint64_t bytes)
{
    static const char units[] = "BKMGTP";
    int u = 0;
    while (bytes >= 1024 && bytes % 1024 == 0 && u < 5) {
        bytes /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, n, "%llu", (unsigned long long)bytes);
    else if (snprintf(buf, n, "%llu%c", (unsigned long long)bytes, units[u]) >= (int)n)
        snprintf(buf, n, "?");
    return buf;
}

/* An index in thousandths as a plain decimal: 873 -> "0.873", -500 -> "-0.500". */
static const char *fmt_index(char *buf, size_t n, int idx)
{
    snprintf(buf, n, "%s%d.%03d", idx < 0 ? "-" : "", abs(idx) / 1000, abs(idx) % 1000);
    return buf;
}

static const char *fmt_percent(char *buf, size_t n, uint64_t part, uint64_t whole)
{
    if (whole == 0)
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, "%.0f%%", 100.0 * (double)part / (double)whole);
    return buf;
}

/* ------------------------------------------------------------------ */
/* analysis                                                            */

struct zone_report {
    const struct st_buddy_zone *bz;
    const struct st_zi_zone *zi; /* NULL when zoneinfo lacks the zone */
    struct st_wmark wm;
    struct st_zone_fit fit;
    uint64_t free_pages; /* from buddyinfo */
};

struct advice {
    char knob[96];
    char text[800];
};

struct report {
    const struct st_machine *m;
    const struct options *o;
    int order;
    uint64_t req_bytes;
    const char *order_from; /* "--order", "--size", "the huge page size" */
    long threshold;
    bool threshold_default;
    struct zone_report *zones;
    size_t nzones;
    struct st_zone_fit *fits; /* the zones' verdicts side by side */
    enum st_fit overall;
    uint64_t buddy_free_pages;
    struct advice advice[MAX_ADVICE];
    size_t nadvice;
};

static uint64_t block_bytes(const struct report *r, int order)
{
    return (uint64_t)r->m->page_size << order;
}

static uint64_t zone_free_pages(const struct st_buddy_zone *z)
{
    uint64_t sum = 0;
    for (int o = 0; o < z->norders; o++)
        sum += z->nr_free[o] << o;
    return sum;
}

static int order_of_bytes(uint64_t bytes, long page)
{
    int order = 0;
    while (((uint64_t)page << order) < bytes && order < 62)
        order++;
    return order;
}

/* The requested order: --order, --size, else the huge page size. */
static void choose_order(struct report *r)
{
    const struct options *o = r->o;
    uint64_t hp_kb;
    if (o->order >= 0) {
        r->order = (int)o->order;
        r->order_from = "--order";
    } else if (o->size) {
        r->order = order_of_bytes(o->size, r->m->page_size);
        r->order_from = "--size";
    } else {
        if (!st_kv_get(&r->m->meminfo, "Hugepagesize", &hp_kb) || hp_kb == 0) hp_kb = 2048;
        r->order = order_of_bytes(hp_kb * 1024, r->m->page_size);
        r->order_from = "the huge page size";
    }
    r->req_bytes = block_bytes(r, r->order);
}

static bool node_has_other_zones(const struct st_buddyinfo *b, const struct st_buddy_zone *bz)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->zones[i].node == bz->node && &b->zones[i] != bz) return true;
    return false;
}

/* Without zoneinfo the lowmem reserve is unknown; the kernel's default
 * lowmem_reserve_ratio always keeps the small DMA zone from allocations
 * that may use higher zones, so it is taken as reserved then. */
static bool assume_reserved(const struct report *r, const struct zone_report *z)
{
    return !z->wm.known && z->fit.fit == ST_FIT_NOW && strcmp(z->bz->zone, "DMA") == 0 &&
           node_has_other_zones(&r->m->buddy, z->bz);
}

static void analyse_zone(struct report *r, struct zone_report *z, const struct st_buddy_zone *bz)
{
    z->bz = bz;
    z->zi = st_procfs_find_zi(&r->m->zi, bz->node, bz->zone);
    st_frag_wmark_from(z->zi, &z->wm);
    z->free_pages = zone_free_pages(bz);
    st_frag_zone_fit(bz->nr_free, bz->norders, r->order, &z->wm, r->threshold, &z->fit);
    if (assume_reserved(r, z)) z->fit.fit = ST_FIT_RESERVED;
    r->buddy_free_pages += z->free_pages;
}

static void advise(struct report *r);

static int analyse(struct report *r, const struct st_machine *m, const struct options *o)
{
    memset(r, 0, sizeof(*r));
    r->m = m;
    r->o = o;
    r->threshold = m->extfrag_threshold >= 0 ? m->extfrag_threshold : DEFAULT_THRESHOLD;
    r->threshold_default = m->extfrag_threshold < 0;
    choose_order(r);
    r->nzones = m->buddy.n;
    r->zones = calloc(r->nzones ? r->nzones : 1, sizeof(*r->zones));
    r->fits = calloc(r->nzones ? r->nzones : 1, sizeof(*r->fits));
    if (!r->zones || !r->fits) return -1;
    for (size_t i = 0; i < r->nzones; i++) {
        analyse_zone(r, &r->zones[i], &m->buddy.zones[i]);
        r->fits[i] = r->zones[i].fit;
    }
    r->overall = st_frag_overall(r->fits, r->nzones);
    advise(r);
    return 0;
}

static void report_free(struct report *r)
{
    free(r->zones);
    free(r->fits);
    r->zones = NULL;
    r->fits = NULL;
}

static uint64_t vmstat_of(const struct report *r, const char *key)
{
    return st_kv_get_or(&r->m->vmstat, key, 0);
}

static bool mem_kb(const struct report *r, const char *key, uint64_t *kb)
{
    return st_kv_get(&r->m->meminfo, key, kb);
}

/* A vmstat figure by name; names ending in '*' sum every counter with that
 * prefix (allocstall_normal, allocstall_movable, ... or older kernels'
 * pgscan_kswapd_dma32, ...). */
static bool vmstat_figure(const struct st_kvlist *l, const char *name, uint64_t *v)
{
    size_t n = strlen(name);
    char prefix[ST_PROCFS_NAME_LEN];
    if (n == 0 || name[n - 1] != '*') return st_kv_get(l, name, v);
    snprintf(prefix, sizeof(prefix), "%.*s", (int)(n - 1), name);
    return st_kv_sum_prefix(l, prefix, v);
}

static const char *const activity_names[] = {
    "compact_stall",   "compact_fail",       "compact_success", "compact_daemon_wake",
    "thp_fault_alloc", "thp_fault_fallback", "allocstall*",     "pgscan_kswapd*",
    "pgscan_direct*",  "pgsteal_kswapd*",    "pgsteal_direct*",
};
#define NACTIVITY (sizeof(activity_names) / sizeof(activity_names[0]))

/* ------------------------------------------------------------------ */
/* advice: each rule names the knob and the figure that triggered it     */

static void add_advice(struct report *r, const char *knob, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add_advice(struct report *r, const char *knob, const char *fmt, ...)
{
    if (r->nadvice == MAX_ADVICE) return;
    struct advice *a = &r->advice[r->nadvice++];
    va_list ap;
    snprintf(a->knob, sizeof(a->knob), "%s", knob);
    va_start(ap, fmt);
    vsnprintf(a->text, sizeof(a->text), fmt, ap);
    va_end(ap);
}

static const char *setting(char *buf, size_t n, long v)
{
    if (v < 0)
        snprintf(buf, n, "unknown");
    else
        snprintf(buf, n, "%ld", v);
    return buf;
}

/* Among zones with verdict fit, the one with the highest fragmentation
 * index (for COMPACT) or the largest free memory (otherwise). */
static const struct zone_report *pick_zone(const struct report *r, enum st_fit fit)
{
    const struct zone_report *best = NULL;
    for (size_t i = 0; i < r->nzones; i++) {
        const struct zone_report *z = &r->zones[i];
        if (z->fit.fit != fit) continue;
        bool better = !best || (fit == ST_FIT_COMPACT ? z->fit.fragindex > best->fit.fragindex
                                                      : z->free_pages > best->free_pages);
        if (better) best = z;
    }
    return best;
}

static void advise_too_big(struct report *r)
{
    char a[32], b[32], c[32];
    int max = r->m->buddy.max_orders - 1;
    if (r->overall != ST_FIT_TOO_BIG) return;
    add_advice(r, "hugepagesz=/hugepages= (kernel command line)",
               "%s blocks (order %d) are larger than the buddy allocator's largest block, "
               "order %d (%s): no amount of compaction or reclaim produces one. Reserve them "
               "at boot, e.g. hugepagesz=%s hugepages=N on the kernel command line (or set "
               "aside a CMA area for them).",
               fmt_bytes(a, sizeof(a), (double)r->req_bytes), r->order, max,
               fmt_bytes(b, sizeof(b), (double)block_bytes(r, max)),
               fmt_short(c, sizeof(c), r->req_bytes));
}

static void advise_compaction(struct report *r)
{
    const struct zone_report *z = pick_zone(r, ST_FIT_COMPACT);
    char a[32], b[32], c[32];
    if (r->overall != ST_FIT_COMPACT || !z) return;
    add_advice(r, "vm.compaction_proactiveness",
               "free memory exists but is fragmented: node %d zone %s has no free %s block "
               "(order %d) and its fragmentation index %s is above vm.extfrag_threshold %ld, "
               "so such allocations compact on demand and stall meanwhile (compact_stall %llu "
               "since boot). To compact in the background before they stall, raise "
               "vm.compaction_proactiveness (now %s; 20 is the default, 40-60 is eager); "
               "for a one-off, write 1 to /proc/sys/vm/compact_memory.",
               z->bz->node, z->bz->zone, fmt_bytes(a, sizeof(a), (double)r->req_bytes), r->order,
               fmt_index(b, sizeof(b), z->fit.fragindex), r->threshold,
               (unsigned long long)vmstat_of(r, "compact_stall"),
               setting(c, sizeof(c), r->m->proactiveness));
}

static void advise_reclaim(struct report *r)
{
    char a[32], b[32], c[32], d[32];
    uint64_t avail = 0;
    const struct zone_report *z = pick_zone(r, ST_FIT_RECLAIM);
    if (r->overall != ST_FIT_RECLAIM || !z) return;
    bool has_avail = mem_kb(r, "MemAvailable", &avail);
    add_advice(r, "vm.nr_hugepages / hugepages= (kernel command line)",
               "no zone can supply a %s block (order %d) and compaction would not help: in "
               "node %d zone %s, the largest zone, %s is free, the largest free block is "
               "order %d and the fragmentation index is %s (not above vm.extfrag_threshold "
               "%ld, or too little free memory for compaction to work). The memory is in "
               "use: reclaim must come first (MemAvailable %s). If these blocks are needed "
               "reliably, reserve huge pages early: hugepages=N at boot or vm.nr_hugepages "
               "right after boot.",
               fmt_bytes(a, sizeof(a), (double)r->req_bytes), r->order, z->bz->node, z->bz->zone,
               fmt_bytes(b, sizeof(b), (double)z->free_pages * r->m->page_size),
               z->fit.largest_order, fmt_index(c, sizeof(c), z->fit.fragindex), r->threshold,
               has_avail ? fmt_bytes(d, sizeof(d), (double)avail * 1024) : "unknown");
}

/* The zone furthest below its low watermark (free / low smallest). */
static const struct zone_report *lowest_zone(const struct report *r)
{
    const struct zone_report *low = NULL;
    for (size_t i = 0; i < r->nzones; i++) {
        const struct zone_report *z = &r->zones[i];
        if (z->fit.level != ST_WM_BELOW_MIN && z->fit.level != ST_WM_BELOW_LOW) continue;
        if (!low || (double)z->wm.free / (double)(z->wm.low + 1) <
                        (double)low->wm.free / (double)(low->wm.low + 1))
            low = z;
    }
    return low;
}

static void advise_watermarks(struct report *r)
{
    char a[32], b[32];
    uint64_t stalls = 0;
    const struct zone_report *z = lowest_zone(r);
    vmstat_figure(&r->m->vmstat, "allocstall*", &stalls);
    if (z) {
        add_advice(r, "vm.watermark_scale_factor / vm.min_free_kbytes",
                   "node %d zone %s has %llu free pages, at or below its low watermark %llu "
                   "(min %llu): kswapd is reclaiming, and allocations that find the zone "
                   "under min reclaim themselves (allocstall %llu since boot). If that "
                   "stalls the workload, start reclaim earlier: raise "
                   "vm.watermark_scale_factor (now %s) or vm.min_free_kbytes (now %s).",
                   z->bz->node, z->bz->zone, (unsigned long long)z->wm.free,
                   (unsigned long long)z->wm.low, (unsigned long long)z->wm.min,
                   (unsigned long long)stalls, setting(a, sizeof(a), r->m->wsf),
                   setting(b, sizeof(b), r->m->min_free_kbytes));
    } else if (stalls > 0) {
        add_advice(r, "vm.watermark_scale_factor",
                   "allocations waited for direct reclaim %llu times since boot (allocstall): "
                   "kswapd did not keep up. Raising vm.watermark_scale_factor (now %s) widens "
                   "the gap between the watermarks so that kswapd starts earlier.",
                   (unsigned long long)stalls, setting(a, sizeof(a), r->m->wsf));
    }
}

static void advise_thp(struct report *r)
{
    uint64_t alloc = vmstat_of(r, "thp_fault_alloc"), fb = vmstat_of(r, "thp_fault_fallback");
    const char *defrag = r->m->thp_defrag[0] ? r->m->thp_defrag : "unknown";
    char p[16];
    if (alloc + fb >= 20 && fb * 10 >= alloc + fb)
        add_advice(r, "/sys/kernel/mm/transparent_hugepage/defrag",
                   "%s of transparent huge page faults fell back to small pages "
                   "(thp_fault_fallback %llu, thp_fault_alloc %llu). defrag is '%s': "
                   "'defer+madvise' has kswapd and kcompactd make huge pages in the background "
                   "(and compacts directly only for madvise'd memory); for huge pages that must "
                   "not fail, reserve them at boot (hugepages=N) and use hugetlbfs.",
                   fmt_percent(p, sizeof(p), fb, alloc + fb), (unsigned long long)fb,
                   (unsigned long long)alloc, defrag);
    if (strcmp(defrag, "always") == 0 && vmstat_of(r, "compact_stall") > 0)
        add_advice(r, "/sys/kernel/mm/transparent_hugepage/defrag",
                   "THP defrag is 'always': every huge page fault may stall on direct "
                   "compaction (compact_stall %llu since boot). 'defer+madvise' or 'madvise' "
                   "keeps faults from stalling.",
                   (unsigned long long)vmstat_of(r, "compact_stall"));
}

static void advise_compact_fail(struct report *r)
{
    uint64_t stall = vmstat_of(r, "compact_stall"), fail = vmstat_of(r, "compact_fail");
    char p[16], a[32];
    if (stall < 10 || fail * 2 < stall) return;
    add_advice(r, "vm.min_free_kbytes",
               "direct compaction failed %s of the time (compact_fail %llu of compact_stall "
               "%llu): the pageblocks hold pages that cannot move (kernel allocations). "
               "A larger vm.min_free_kbytes (now %s) keeps more pageblocks free so that "
               "unmovable allocations mix less with movable ones; if huge pages are required, "
               "reserve them at boot (hugepages=N).",
               fmt_percent(p, sizeof(p), fail, stall), (unsigned long long)fail,
               (unsigned long long)stall, setting(a, sizeof(a), r->m->min_free_kbytes));
}

static bool is_movable_type(const char *name)
{
    return strcmp(name, "Movable") == 0 || strcmp(name, "CMA") == 0 || strcmp(name, "Isolate") == 0;
}

/* Pageblocks of the zone that hold unmovable or reclaimable allocations,
 * and all its pageblocks; false when pagetypeinfo lacks the zone. */
static bool pageblock_mix(const struct report *r, const struct st_buddy_zone *bz, uint64_t *pinned,
                          uint64_t *total)
{
    const struct st_pagetypeinfo *p = &r->m->pti;
    *pinned = *total = 0;
    for (size_t i = 0; i < p->nblocks; i++) {
        const struct st_pti_blocks *b = &p->blocks[i];
        if (b->node != bz->node || strcmp(b->zone, bz->zone) != 0) continue;
        for (int t = 0; t < b->ntypes; t++) {
            *total += b->count[t];
            if (!is_movable_type(p->type_names[t])) *pinned += b->count[t];
        }
        return *total > 0;
    }
    return false;
}

/* Only where the request fails for want of a block: there, pageblocks
 * pinned by kernel allocations are what compaction cannot move. */
static const struct zone_report *most_pinned_zone(const struct report *r, uint64_t *pinned,
                                                  uint64_t *total)
{
    const struct zone_report *best = NULL;
    double best_share = 0.1; /* below a tenth of the pageblocks: not worth a word */
    for (size_t i = 0; i < r->nzones; i++) {
        const struct zone_report *z = &r->zones[i];
        uint64_t p, t;
        if ((z->fit.fit != ST_FIT_COMPACT && z->fit.fit != ST_FIT_RECLAIM) ||
            !pageblock_mix(r, z->bz, &p, &t) || (double)p / (double)t < best_share)
            continue;
        best = z;
        best_share = (double)p / (double)t;
        *pinned = p;
        *total = t;
    }
    return best;
}

static void advise_unmovable(struct report *r)
{
    char p[16], a[32];
    uint64_t pinned = 0, total = 0;
    const struct zone_report *z =
        r->overall == ST_FIT_NOW ? NULL : most_pinned_zone(r, &pinned, &total);
    if (!z) return;
    add_advice(r, "vm.min_free_kbytes",
               "node %d zone %s: %llu of its %llu pageblocks (%s) are Unmovable or Reclaimable "
               "(pagetypeinfo). Kernel allocations spread over many pageblocks are the usual "
               "reason huge pages cannot be assembled even by compaction. Raising "
               "vm.min_free_kbytes (now %s) lets the kernel keep whole pageblocks free; "
               "reserving huge pages at boot avoids the problem.",
               z->bz->node, z->bz->zone, (unsigned long long)pinned, (unsigned long long)total,
               fmt_percent(p, sizeof(p), pinned, total),
               setting(a, sizeof(a), r->m->min_free_kbytes));
}

static void advise_meminfo(struct report *r)
{
    uint64_t total, sunr, mfree, avail;
    char a[32], b[32], p[16];
    if (!mem_kb(r, "MemTotal", &total) || total == 0) return;
    if (mem_kb(r, "SUnreclaim", &sunr) && sunr * 10 >= total)
        add_advice(r, "slab (SUnreclaim)",
                   "unreclaimable slab holds %s, %s of memory (SUnreclaim): look at the "
                   "largest caches below (slabinfo needs root); a cache that keeps growing "
                   "is usually a leak in a kernel subsystem or module.",
                   fmt_bytes(a, sizeof(a), (double)sunr * 1024),
                   fmt_percent(p, sizeof(p), sunr, total));
    if (mem_kb(r, "MemFree", &mfree) && mem_kb(r, "MemAvailable", &avail) && mfree * 10 < total &&
        avail * 10 >= total * 4)
        add_advice(r, "none (page cache)",
                   "MemFree is only %s but MemAvailable is %s: the difference is page cache "
                   "and reclaimable slab that the kernel frees on demand. That is normal; "
                   "it is the free blocks per order above that decide large allocations.",
                   fmt_bytes(a, sizeof(a), (double)mfree * 1024),
                   fmt_bytes(b, sizeof(b), (double)avail * 1024));
}

/* MemFree is the kernel's NR_FREE_PAGES, the same pages buddyinfo lists;
 * a large gap means MemFree counts memory the zones cannot hand out. */
static bool memfree_mismatch(const struct report *r, uint64_t *memfree_kb, uint64_t *buddy_kb)
{
    if (!r->m->files[ST_F_BUDDYINFO].loaded || !mem_kb(r, "MemFree", memfree_kb)) return false;
    *buddy_kb = r->buddy_free_pages * (uint64_t)r->m->page_size / 1024;
    uint64_t diff = *memfree_kb > *buddy_kb ? *memfree_kb - *buddy_kb : *buddy_kb - *memfree_kb;
    return diff > *memfree_kb / 10 + 65536;
}

static void advise_memfree(struct report *r)
{
    uint64_t mf, bf;
    char a[32], b[32];
    if (!memfree_mismatch(r, &mf, &bf)) return;
    add_advice(r, "none (MemFree)",
               "MemFree (%s) does not match the free pages in the zones' buddy lists (%s, "
               "buddyinfo). Either the files were not read together (a snapshot assembled "
               "from different moments), or this kernel counts memory in MemFree that the "
               "zones cannot hand out (memory not yet onlined or accepted, a balloon). Only "
               "the zones' figures decide what can be allocated.",
               fmt_bytes(a, sizeof(a), (double)mf * 1024),
               fmt_bytes(b, sizeof(b), (double)bf * 1024));
}

static void advise_threshold(struct report *r)
{
    if (r->threshold_default || r->threshold == DEFAULT_THRESHOLD) return;
    add_advice(r, "vm.extfrag_threshold",
               "vm.extfrag_threshold is %ld, not the default 500: the kernel compacts for "
               "large orders only when the fragmentation index is above it, and the "
               "verdicts above use the same rule.",
               r->threshold);
}

static void advise(struct report *r)
{
    advise_too_big(r);
    advise_compaction(r);
    advise_reclaim(r);
    advise_watermarks(r);
    advise_unmovable(r);
    advise_compact_fail(r);
    advise_thp(r);
    advise_meminfo(r);
    advise_memfree(r);
    advise_threshold(r);
}
/* ------------------------------------------------------------------ */
/* one process (--pid)                                                 */

struct pid_info;

/* A heap the tool can recognise in a process's maps and report on. To
 * support another allocator, add an entry with its library's name. */
struct heap_probe {
    const char *name;   /* "strata" */
    const char *needle; /* a substring of the library's path in /proc/PID/maps */
    void (*text)(FILE *out, const struct pid_info *p);
    void (*json)(struct st_json *j, const struct pid_info *p);
};

struct pid_info {
    long pid;
    int err; /* errno reading /proc/PID/status; 0 when read */
    char name[64];
    struct st_kvlist status, rollup;
    bool have_rollup, have_maps;
    const struct heap_probe *heap; /* NULL: no known heap found */
};

/* strata's malloc computes its figures inside the process (it keeps no
 * shared-memory page another process could read), so from outside we can
 * only say where they come from. */
#define STRATA_HEAP_NOTE                                                                           \
    "strata's malloc prints its own figures: start the program with STRATA_SHOW_STATS=1 "      \
    "(or STRATA_STATS_FILE=path), or under `strata run --stats`, or call strata_stats_print()"

static void strata_heap_text(FILE *out, const struct pid_info *p)
{
    (void)p;
    fprintf(out, "  heap: runs on strata (libstrata is mapped); %s\n", STRATA_HEAP_NOTE);
}

static void strata_heap_json(struct st_json *j, const struct pid_info *p)
{
    (void)p;
    st_json_kv_string(j, "allocator", "strata");
    st_json_kv_bool(j, "figures_available", false);
    st_json_kv_string(j, "note", STRATA_HEAP_NOTE);
}

static const struct heap_probe heap_probes[] = {
    {"strata", "libstrata", strata_heap_text, strata_heap_json},
};

static const struct heap_probe *probe_heap(const char *maps)
{
    for (size_t i = 0; i < sizeof(heap_probes) / sizeof(heap_probes[0]); i++)
        if (strstr(maps, heap_probes[i].needle)) return &heap_probes[i];
    return NULL;
}

static int pid_load(struct pid_info *p, const char *root, long pid, struct st_diags *d)
{
    char rel[64], name[4200], *text;
    int errors = 0;
    memset(p, 0, sizeof(*p));
    p->pid = pid;
    snprintf(rel, sizeof(rel), "proc/%ld/status", pid);
    st_procfs_path(name, sizeof(name), root, rel);
    if ((p->err = st_procfs_read(root, rel, &text, NULL)) != 0) return 0;
    errors += st_procfs_parse_status(text, name, &p->status, p->name, sizeof(p->name), d);
    free(text);
    snprintf(rel, sizeof(rel), "proc/%ld/smaps_rollup", pid);
    st_procfs_path(name, sizeof(name), root, rel);
    if (st_procfs_read(root, rel, &text, NULL) == 0) {
        p->have_rollup = true;
        errors += st_procfs_parse_smaps_rollup(text, name, &p->rollup, d);
        free(text);
    }
    snprintf(rel, sizeof(rel), "proc/%ld/maps", pid);
    if (st_procfs_read(root, rel, &text, NULL) == 0) {
        p->have_maps = true;
        p->heap = probe_heap(text);
        free(text);
    }
    return errors;
}

static void pid_free(struct pid_info *p)
{
    st_kv_free(&p->status);
    st_kv_free(&p->rollup);
}

/* ------------------------------------------------------------------ */
/* text report                                                         */

static const char *const file_short[ST_F_COUNT] = {
    "buddyinfo",
    "pagetypeinfo",
    "zoneinfo",
    "meminfo",
    "vmstat",
    "slabinfo",
    "min_free_kbytes",
    "extfrag_threshold",
    "compaction_proactiveness",
    "watermark_scale_factor",
    "thp/enabled",
    "thp/defrag",
};

static const char *file_state(const struct st_file *f, char *buf, size_t n)
{
    if (f->loaded && f->nerrors)
        snprintf(buf, n, "%d malformed line%s", f->nerrors, f->nerrors == 1 ? "" : "s");
    else if (f->loaded)
        snprintf(buf, n, "ok");
    else if (f->err == EACCES || f->err == EPERM)
        snprintf(buf, n, "permission denied");
    else if (f->err == ENOENT)
        snprintf(buf, n, "missing");
    else
        snprintf(buf, n, "%s", strerror(f->err));
    return buf;
}

static void text_sources(FILE *out, const struct st_machine *m)
{
    char buf[64];
    fprintf(out, "files:");
    for (int i = 0; i < ST_F_COUNT; i++) {
        const struct st_file *f = &m->files[i];
        if (i == ST_F_MIN_FREE_KBYTES) fprintf(out, "\n      ");
        fprintf(out, " %s %s%s", file_short[i], file_state(f, buf, sizeof(buf)),
                i + 1 < ST_F_COUNT ? ";" : "\n");
    }
}

static void text_header(FILE *out, const struct report *r)
{
    const struct st_machine *m = r->m;
    char a[32], b[32];
    fprintf(out, "strata frag: %s, %s, kernel %s\n", m->hostname, m->date, m->kernel);
    fprintf(out, "page size %s (%s); judging a %s allocation: order %d (%s)\n",
            fmt_bytes(a, sizeof(a), (double)m->page_size), m->page_size_from,
            fmt_bytes(b, sizeof(b), (double)r->req_bytes), r->order, r->order_from);
    text_sources(out, m);
}

static void bar(char *buf, double share)
{
    int n = (int)lround(share * BAR_WIDTH);
    if (share > 0 && n == 0) n = 1;
    for (int i = 0; i < BAR_WIDTH; i++)
        buf[i] = i < n ? '#' : ' ';
    buf[BAR_WIDTH] = '\0';
}

static void text_zone_title(FILE *out, const struct report *r, const struct zone_report *z)
{
    char a[32], b[32];
    double pg = (double)r->m->page_size;
    fprintf(out, "\nNode %d, zone %s: %s free (%llu pages)", z->bz->node, z->bz->zone,
            fmt_bytes(a, sizeof(a), (double)z->free_pages * pg), (unsigned long long)z->free_pages);
    if (z->zi && (z->zi->seen & ST_ZI_MANAGED))
        fprintf(out, " of %s managed", fmt_bytes(b, sizeof(b), (double)z->zi->managed * pg));
    fprintf(out, "%s\n", z->bz->partial ? " [line cut short: higher orders unknown]" : "");
    if (!z->wm.known) {
        fprintf(out, "  watermarks: unknown (zoneinfo lacks this zone)\n");
        return;
    }
    fprintf(out,
            "  watermarks (pages): free %llu, min %llu, low %llu, high %llu, reserve %llu"
            " -> %s\n",
            (unsigned long long)z->wm.free, (unsigned long long)z->wm.min,
            (unsigned long long)z->wm.low, (unsigned long long)z->wm.high,
            (unsigned long long)z->wm.reserve, st_frag_wm_name(z->fit.level));
}

static void text_zone_table(FILE *out, const struct report *r, const struct zone_report *z)
{
    const struct st_buddy_zone *bz = z->bz;
    char a[32], b[32], c[16], d[16], bars[BAR_WIDTH + 1];
    fprintf(out, "   order  block        blocks       memory  %-*s unusable fragindex\n", BAR_WIDTH,
            "share of free memory");
    for (int o = 0; o < bz->norders; o++) {
        uint64_t pages = bz->nr_free[o] << o;
        bar(bars, z->free_pages ? (double)pages / (double)z->free_pages : 0);
        fprintf(out, "  %s%5d %6s %13llu %12s  %s %8s %9s\n", o == r->order ? ">" : " ", o,
                fmt_short(a, sizeof(a), block_bytes(r, o)), (unsigned long long)bz->nr_free[o],
                fmt_bytes(b, sizeof(b), (double)pages * (double)r->m->page_size), bars,
                fmt_index(c, sizeof(c), st_frag_unusable(bz->nr_free, bz->norders, o)),
                fmt_index(d, sizeof(d), st_frag_extfrag(bz->nr_free, bz->norders, o)));
    }
}

/* "yes (3 blocks)" or "no": can a block of this order be had without
 * compaction (a free block of the order or larger, split as needed)? */
static const char *block_avail(char *buf, size_t n, const struct st_buddy_zone *bz, int order)
{
    struct st_contig c;
    st_frag_contig(bz->nr_free, bz->norders, order, &c);
    if (order >= bz->norders)
        snprintf(buf, n, "no (beyond the largest order)");
    else if (c.free_blocks_suitable)
        snprintf(buf, n, "yes (%llu)", (unsigned long long)c.free_blocks_suitable);
    else
        snprintf(buf, n, "no");
    return buf;
}

static void text_zone_blocks(FILE *out, const struct report *r, const struct zone_report *z)
{
    char a[32], b[40], c[40], d[32], e[32];
    if (z->fit.largest_order < 0)
        fprintf(out, "  largest free block: none");
    else
        fprintf(out, "  largest free block: order %d (%s)", z->fit.largest_order,
                fmt_bytes(a, sizeof(a), (double)block_bytes(r, z->fit.largest_order)));
    fprintf(out, "; without compaction: %s blocks %s, %s blocks %s\n",
            fmt_short(d, sizeof(d), block_bytes(r, 9)), block_avail(b, sizeof(b), z->bz, 9),
            fmt_short(e, sizeof(e), block_bytes(r, 10)), block_avail(c, sizeof(c), z->bz, 10));
}

static bool pti_row_used(const struct st_pti_free *f)
{
    for (int o = 0; o < f->norders; o++)
        if (f->nr_free[o]) return true;
    return false;
}

static void text_pti_row(FILE *out, const struct st_pti_free *f)
{
    char n[32];
    fprintf(out, "    %-12s", f->type);
    for (int o = 0; o < f->norders; o++) {
        snprintf(n, sizeof(n), "%s%llu", (f->capped >> o) & 1 ? ">" : "",
                 (unsigned long long)f->nr_free[o]);
        fprintf(out, " %6s", n);
    }
    fputc('\n', out);
}

static void text_pageblocks(FILE *out, const struct report *r, const struct st_buddy_zone *bz)
{
    const struct st_pagetypeinfo *p = &r->m->pti;
    char a[32];
    for (size_t i = 0; i < p->nblocks; i++) {
        const struct st_pti_blocks *b = &p->blocks[i];
        if (b->node != bz->node || strcmp(b->zone, bz->zone) != 0) continue;
        fprintf(out, "  pageblocks");
        if (p->pageblock_order >= 0)
            fprintf(out, " (%s each)",
                    fmt_bytes(a, sizeof(a), (double)block_bytes(r, p->pageblock_order)));
        fprintf(out, ":");
        for (int t = 0; t < b->ntypes; t++)
            if (b->count[t])
                fprintf(out, " %s %llu", p->type_names[t], (unsigned long long)b->count[t]);
        fputc('\n', out);
    }
}

static void text_zone_types(FILE *out, const struct report *r, const struct st_buddy_zone *bz)
{
    const struct st_pagetypeinfo *p = &r->m->pti;
    bool header = false;
    for (size_t i = 0; i < p->nfree; i++) {
        const struct st_pti_free *f = &p->free[i];
        if (f->node != bz->node || strcmp(f->zone, bz->zone) != 0 || !pti_row_used(f)) continue;
        if (!header) fprintf(out, "  free blocks per migrate type, order 0 up (pagetypeinfo):\n");
        header = true;
        text_pti_row(out, f);
    }
    text_pageblocks(out, r, bz);
}

static const char *verdict_compact(char *buf, size_t n, const struct report *r,
                                   const struct st_zone_fit *f)
{
    char a[16];
    if (f->order <= 3)
        snprintf(buf, n,
                 "fails now from fragmentation; compaction would help (no free block "
                 "of this order; the kernel compacts orders up to 3 whatever the index)");
    else
        snprintf(buf, n,
                 "fails now from fragmentation; compaction would help: no free block "
                 "of this order, fragmentation index %s > extfrag_threshold %ld%s",
                 fmt_index(a, sizeof(a), f->fragindex), r->threshold,
                 f->fragindex < 0 ? " (a single free block: the kernel's index goes negative)"
                                  : "");
    return buf;
}

static const char *verdict_reclaim(char *buf, size_t n, const struct report *r,
                                   const struct zone_report *z)
{
    const struct st_zone_fit *f = &z->fit;
    char a[16];
    if (f->has_block)
        snprintf(buf, n,
                 "fails from lack of free memory: a free block exists but the zone is "
                 "under its min watermark; reclaim needed");
    else if (z->free_pages == 0)
        snprintf(buf, n, "fails from lack of free memory: nothing is free; reclaim needed");
    else if (!f->compact_wmark_ok)
        snprintf(buf, n,
                 "fails from lack of free memory: too few free pages for compaction "
                 "(it needs the watermark plus %llu pages); reclaim needed",
                 (unsigned long long)(2ULL << f->order));
    else
        snprintf(buf, n,
                 "fails from lack of free memory: fragmentation index %s <= "
                 "extfrag_threshold %ld, so compaction would not help; reclaim needed",
                 fmt_index(a, sizeof(a), f->fragindex), r->threshold);
    return buf;
}

static const char *zone_verdict(char *buf, size_t n, const struct report *r,
                                const struct zone_report *z)
{
    const struct st_zone_fit *f = &z->fit;
    switch (f->fit) {
    case ST_FIT_NOW:
        snprintf(buf, n, "can be allocated now: a free block of this order or larger exists%s",
                 !z->wm.known                   ? " (watermarks unknown)"
                 : f->level >= ST_WM_BELOW_HIGH ? ", and the zone is above its low watermark"
                                                : ", but the zone is at or below its low "
                                                  "watermark: the allocation wakes kswapd");
        return buf;
    case ST_FIT_RESERVED:
        if (!z->wm.known)
            return snprintf(buf, n,
                            "not for user-space allocations: a free block exists, but "
                            "the DMA zone is kept for DMA allocations (lowmem reserve; "
                            "assumed, zoneinfo lacks the zone)"),
                   buf;
        snprintf(buf, n,
                 "not for user-space allocations: a free block exists, but the free "
                 "pages left would not clear min + lowmem reserve (%llu + %llu); the "
                 "zone keeps them for allocations that can only use it",
                 (unsigned long long)z->wm.min, (unsigned long long)z->wm.reserve);
        return buf;
    case ST_FIT_COMPACT:
        return verdict_compact(buf, n, r, f);
    case ST_FIT_RECLAIM:
        return verdict_reclaim(buf, n, r, z);
    case ST_FIT_TOO_BIG:
        snprintf(buf, n,
                 "impossible from the buddy allocator: order %d is beyond the "
                 "zone's largest, %d",
                 f->order, z->bz->norders - 1);
        return buf;
    }
    return "";
}

static void text_zone(FILE *out, const struct report *r, const struct zone_report *z)
{
    char a[32], v[512];
    text_zone_title(out, r, z);
    text_zone_table(out, r, z);
    text_zone_blocks(out, r, z);
    text_zone_types(out, r, z->bz);
    fprintf(out, "  verdict for %s (order %d): %s\n", fmt_bytes(a, sizeof(a), (double)r->req_bytes),
            r->order, zone_verdict(v, sizeof(v), r, z));
}

static const struct zone_report *first_zone(const struct report *r, enum st_fit fit)
{
    for (size_t i = 0; i < r->nzones; i++)
        if (r->zones[i].fit.fit == fit) return &r->zones[i];
    return NULL;
}

static const char *overall_text(char *buf, size_t n, const struct report *r)
{
    const struct zone_report *z = first_zone(r, r->overall);
    if (r->nzones == 0) return snprintf(buf, n, "unknown: no buddyinfo"), buf;
    switch (r->overall) {
    case ST_FIT_NOW:
        z = pick_zone(r, ST_FIT_NOW);
        snprintf(buf, n, "can be allocated now (node %d zone %s has a free block)", z->bz->node,
                 z->bz->zone);
        break;
    case ST_FIT_COMPACT:
        z = pick_zone(r, ST_FIT_COMPACT);
        snprintf(buf, n, "fails now from fragmentation; compaction would help (node %d zone %s)",
                 z->bz->node, z->bz->zone);
        break;
    case ST_FIT_TOO_BIG:
        snprintf(buf, n,
                 "impossible from the buddy allocator (order above its largest); "
                 "only huge pages reserved at boot can serve it");
        break;
    default:
        snprintf(buf, n, "fails from lack of free memory in every zone; reclaim needed");
    }
    return buf;
}

static void text_total(FILE *out, const struct report *r)
{
    char a[32];
    uint64_t kb = r->buddy_free_pages * (uint64_t)r->m->page_size / 1024, mf, bf;
    fprintf(out, "\nTotal free (buddyinfo): %llu pages, %llu kB (%s)",
            (unsigned long long)r->buddy_free_pages, (unsigned long long)kb,
            fmt_bytes(a, sizeof(a), (double)kb * 1024));
    if (mem_kb(r, "MemFree", &mf))
        fprintf(out, "; MemFree %llu kB%s", (unsigned long long)mf,
                memfree_mismatch(r, &mf, &bf) ? " (does not match: see the advice)" : "");
    fputc('\n', out);
}

static void text_overall(FILE *out, const struct report *r)
{
    char a[32], v[512];
    fprintf(out, "Overall, %s (order %d): %s\n", fmt_bytes(a, sizeof(a), (double)r->req_bytes),
            r->order, overall_text(v, sizeof(v), r));
}

static void kb_item(FILE *out, const struct report *r, const char *key, const char *sep)
{
    uint64_t kb;
    char a[32];
    if (mem_kb(r, key, &kb))
        fprintf(out, "%s %s%s", key, fmt_bytes(a, sizeof(a), (double)kb * 1024), sep);
    else
        fprintf(out, "%s unknown%s", key, sep);
}

static void text_memory(FILE *out, const struct report *r)
{
    uint64_t sr = 0, su = 0, hpt = 0, hpf = 0;
    char p[16], q[16];
    if (!r->m->files[ST_F_MEMINFO].loaded) {
        fprintf(out, "\nMemory (meminfo): not available\n");
        return;
    }
    fprintf(out, "\nMemory (meminfo)\n  ");
    kb_item(out, r, "MemTotal", ", ");
    kb_item(out, r, "MemFree", ", ");
    kb_item(out, r, "MemAvailable", "\n  ");
    kb_item(out, r, "Slab", ": ");
    mem_kb(r, "SReclaimable", &sr);
    mem_kb(r, "SUnreclaim", &su);
    fprintf(out, "reclaimable %s, unreclaimable %s\n  ", fmt_percent(p, sizeof(p), sr, sr + su),
            fmt_percent(q, sizeof(q), su, sr + su));
    kb_item(out, r, "AnonHugePages", ", ");
    mem_kb(r, "HugePages_Total", &hpt);
    mem_kb(r, "HugePages_Free", &hpf);
    fprintf(out, "hugetlb pages %llu reserved, %llu free\n", (unsigned long long)hpt,
            (unsigned long long)hpf);
}

static void rate_text(FILE *out, const char *what, uint64_t part, uint64_t whole)
{
    char p[16];
    fprintf(out, " (%s %s)", what, fmt_percent(p, sizeof(p), part, whole));
}

static void text_activity(FILE *out, const struct report *r)
{
    const struct st_kvlist *v = &r->m->vmstat;
    uint64_t st = 0, fa = 0, su = 0, ta = 0, tf = 0, as = 0, sk = 0, sd = 0, tk = 0, td = 0;
    if (!r->m->files[ST_F_VMSTAT].loaded) {
        fprintf(out, "\nActivity (vmstat): not available\n");
        return;
    }
    st_kv_get(v, "compact_stall", &st);
    st_kv_get(v, "compact_fail", &fa);
    st_kv_get(v, "compact_success", &su);
    st_kv_get(v, "thp_fault_alloc", &ta);
    st_kv_get(v, "thp_fault_fallback", &tf);
    vmstat_figure(v, "allocstall*", &as);
    vmstat_figure(v, "pgscan_kswapd*", &sk);
    vmstat_figure(v, "pgscan_direct*", &sd);
    vmstat_figure(v, "pgsteal_kswapd*", &tk);
    vmstat_figure(v, "pgsteal_direct*", &td);
    fprintf(out,
            "\nActivity since boot (vmstat)\n  compaction: stalls %llu, success %llu, fail %llu",
            (unsigned long long)st, (unsigned long long)su, (unsigned long long)fa);
    rate_text(out, "failure rate", fa, st);
    fprintf(out, "\n  THP faults: allocated %llu, fell back %llu", (unsigned long long)ta,
            (unsigned long long)tf);
    rate_text(out, "fallback rate", tf, ta + tf);
    fprintf(out,
            "\n  reclaim: direct reclaim stalls (allocstall) %llu; pages scanned kswapd %llu,"
            " direct %llu; reclaimed kswapd %llu, direct %llu\n",
            (unsigned long long)as, (unsigned long long)sk, (unsigned long long)sd,
            (unsigned long long)tk, (unsigned long long)td);
}

static void text_settings(FILE *out, const struct report *r)
{
    const struct st_machine *m = r->m;
    char a[32], b[32], c[32], d[32];
    fprintf(out,
            "\nSettings: vm.min_free_kbytes %s, vm.extfrag_threshold %s%s, "
            "vm.compaction_proactiveness %s, vm.watermark_scale_factor %s\n",
            setting(a, sizeof(a), m->min_free_kbytes), setting(b, sizeof(b), m->extfrag_threshold),
            r->threshold_default ? " (500 assumed)" : "", setting(c, sizeof(c), m->proactiveness),
            setting(d, sizeof(d), m->wsf));
    fprintf(out, "  transparent huge pages: enabled [%s], defrag [%s]\n",
            m->thp_enabled[0] ? m->thp_enabled : "unknown",
            m->thp_defrag[0] ? m->thp_defrag : "unknown");
}

static uint64_t slab_bytes(const struct report *r, const struct st_slabinfo_cache *s)
{
    return s->num_slabs * s->pagesperslab * (uint64_t)r->m->page_size;
}

/* Indices of the caches sorted by memory, largest first (insertion into a
 * fixed top list: n is small). Returns how many were placed. */
static size_t top_slabs(const struct report *r, size_t *top, size_t max)
{
    size_t n = 0;
    const struct st_slabinfo *s = &r->m->slab;
    for (size_t i = 0; i < s->n; i++) {
        uint64_t b = slab_bytes(r, &s->v[i]);
        size_t at = n;
        while (at > 0 && slab_bytes(r, &s->v[top[at - 1]]) < b)
            at--;
        if (at >= max) continue;
        if (n < max) n++;
        memmove(top + at + 1, top + at, (n - at - 1) * sizeof(*top));
        top[at] = i;
    }
    return n;
}

static const char *slab_missing_reason(const struct st_machine *m)
{
    int err = m->files[ST_F_SLABINFO].err;
    if (err == EACCES || err == EPERM) return "/proc/slabinfo cannot be read: it needs root";
    if (err == ENOENT) return "no slabinfo (not in this snapshot, or a kernel without it)";
    return "slabinfo could not be read";
}

static void text_slab_missing(FILE *out, const struct report *r)
{
    char a[32], b[32];
    uint64_t sr = 0, su = 0;
    mem_kb(r, "SReclaimable", &sr);
    mem_kb(r, "SUnreclaim", &su);
    int err = r->m->files[ST_F_SLABINFO].err;
    fprintf(out,
            "\nSlab caches: %s. What is lost: which kernel caches hold the slab memory "
            "(meminfo only gives the totals: reclaimable %s, unreclaimable %s) and how "
            "full their slabs are.%s\n",
            slab_missing_reason(r->m), fmt_bytes(a, sizeof(a), (double)sr * 1024),
            fmt_bytes(b, sizeof(b), (double)su * 1024),
            err == EACCES || err == EPERM ? " Run as root to see them." : "");
}

static void text_slabs(FILE *out, const struct report *r)
{
    const struct st_slabinfo *s = &r->m->slab;
    size_t top[TOP_SLABS], n;
    uint64_t total = 0;
    char a[32], p[16];
    if (!r->m->files[ST_F_SLABINFO].loaded) return text_slab_missing(out, r);
    n = top_slabs(r, top, TOP_SLABS);
    fprintf(out, "\nSlab caches by memory (slabinfo)\n  %-28s %12s %12s %5s %8s %11s\n", "name",
            "active objs", "objects", "fill", "objsize", "memory");
    for (size_t i = 0; i < n; i++) {
        const struct st_slabinfo_cache *c = &s->v[top[i]];
        fprintf(out, "  %-28s %12llu %12llu %5s %8llu %11s\n", c->name,
                (unsigned long long)c->active_objs, (unsigned long long)c->num_objs,
                fmt_percent(p, sizeof(p), c->active_objs, c->num_objs),
                (unsigned long long)c->objsize, fmt_bytes(a, sizeof(a), (double)slab_bytes(r, c)));
    }
    for (size_t i = 0; i < s->n; i++)
        total += slab_bytes(r, &s->v[i]);
    fprintf(out, "  %zu caches, %s in all\n", s->n, fmt_bytes(a, sizeof(a), (double)total));
}

static void pid_item(FILE *out, const struct st_kvlist *l, const char *key, const char *label,
                     const char *sep)
{
    uint64_t kb;
    char a[32];
    if (st_kv_get(l, key, &kb))
        fprintf(out, "%s %s%s", label, fmt_bytes(a, sizeof(a), (double)kb * 1024), sep);
}

static void text_pid(FILE *out, const struct pid_info *p)
{
    uint64_t anon = 0, ahp = 0;
    char a[32], b[32], q[16];
    if (p->err) {
        fprintf(out, "\nProcess %ld: cannot read its status: %s\n", p->pid, strerror(p->err));
        return;
    }
    fprintf(out, "\nProcess %ld (%s)\n  ", p->pid, p->name);
    pid_item(out, &p->status, "VmRSS", "RSS", ": ");
    pid_item(out, &p->status, "RssAnon", "anonymous", ", ");
    pid_item(out, &p->status, "RssFile", "file", ", ");
    pid_item(out, &p->status, "RssShmem", "shmem", "; ");
    pid_item(out, &p->status, "VmSwap", "swap", "; ");
    pid_item(out, &p->status, "HugetlbPages", "hugetlb", "");
    fputc('\n', out);
    if (p->have_rollup && st_kv_get(&p->rollup, "Anonymous", &anon) &&
        st_kv_get(&p->rollup, "AnonHugePages", &ahp))
        fprintf(out,
                "  anonymous memory in transparent huge pages: %s of %s (%s) "
                "(AnonHugePages, smaps_rollup)\n",
                fmt_bytes(a, sizeof(a), (double)ahp * 1024),
                fmt_bytes(b, sizeof(b), (double)anon * 1024), fmt_percent(q, sizeof(q), ahp, anon));
    else
        fprintf(out, "  smaps_rollup not readable: no huge page share\n");
    if (p->heap)
        p->heap->text(out, p);
    else
        fprintf(out, "  heap: %s\n",
                p->have_maps ? "no strata in its maps; the kernel's figures "
                               "above are all there is"
                             : "maps not readable");
}

static void text_advice(FILE *out, const struct report *r)
{
    fprintf(out, "\nAdvice\n");
    if (r->nadvice == 0) fprintf(out, "  nothing to change: no figure points at a problem.\n");
    for (size_t i = 0; i < r->nadvice; i++)
        fprintf(out, "  - [%s] %s\n", r->advice[i].knob, r->advice[i].text);
}

static void text_report(FILE *out, const struct report *r, const struct pid_info *p)
{
    text_header(out, r);
    if (r->nzones == 0)
        fprintf(out, "\nNo buddyinfo: no per-order figures, indices or verdicts.\n");
    for (size_t i = 0; i < r->nzones; i++)
        text_zone(out, r, &r->zones[i]);
    text_total(out, r);
    text_overall(out, r);
    text_memory(out, r);
    text_activity(out, r);
    text_settings(out, r);
    text_slabs(out, r);
    if (p) text_pid(out, p);
    text_advice(out, r);
}
/* ------------------------------------------------------------------ */
/* JSON report                                                         */

static void json_u64_array(struct st_json *j, const char *key, const uint64_t *v, int n)
{
    st_json_key(j, key);
    st_json_begin_array(j);
    for (int i = 0; i < n; i++)
        st_json_uint(j, v[i]);
    st_json_end_array(j);
}

static void json_index_array(struct st_json *j, const char *key, const struct st_buddy_zone *bz,
                             bool unusable)
{
    st_json_key(j, key);
    st_json_begin_array(j);
    for (int o = 0; o < bz->norders; o++)
        st_json_int(j, unusable ? st_frag_unusable(bz->nr_free, bz->norders, o)
                                : st_frag_extfrag(bz->nr_free, bz->norders, o));
    st_json_end_array(j);
}

static void json_watermarks(struct st_json *j, const struct zone_report *z)
{
    st_json_key(j, "watermarks");
    st_json_begin_object(j);
    st_json_kv_bool(j, "known", z->wm.known);
    if (z->wm.known) {
        st_json_kv_uint(j, "free_pages", z->wm.free);
        st_json_kv_uint(j, "min", z->wm.min);
        st_json_kv_uint(j, "low", z->wm.low);
        st_json_kv_uint(j, "high", z->wm.high);
        st_json_kv_uint(j, "lowmem_reserve", z->wm.reserve);
        st_json_kv_uint(j, "managed", z->zi->managed);
        st_json_kv_uint(j, "present", z->zi->present);
        st_json_kv_uint(j, "spanned", z->zi->spanned);
    }
    st_json_kv_string(j, "level", st_frag_wm_name(z->fit.level));
    st_json_end_object(j);
}

static void json_migrate_types(struct st_json *j, const struct report *r,
                               const struct st_buddy_zone *bz)
{
    const struct st_pagetypeinfo *p = &r->m->pti;
    st_json_key(j, "migrate_types");
    st_json_begin_array(j);
    for (size_t i = 0; i < p->nfree; i++) {
        const struct st_pti_free *f = &p->free[i];
        if (f->node != bz->node || strcmp(f->zone, bz->zone) != 0) continue;
        st_json_begin_object(j);
        st_json_kv_string(j, "type", f->type);
        json_u64_array(j, "free_blocks", f->nr_free, f->norders);
        st_json_key(j, "at_least");
        st_json_begin_array(j);
        for (int o = 0; o < f->norders; o++)
            st_json_bool(j, (f->capped >> o) & 1);
        st_json_end_array(j);
        st_json_end_object(j);
    }
    st_json_end_array(j);
}

static void json_pageblocks(struct st_json *j, const struct report *r,
                            const struct st_buddy_zone *bz)
{
    const struct st_pagetypeinfo *p = &r->m->pti;
    st_json_key(j, "pageblocks");
    st_json_begin_object(j);
    for (size_t i = 0; i < p->nblocks; i++) {
        const struct st_pti_blocks *b = &p->blocks[i];
        if (b->node != bz->node || strcmp(b->zone, bz->zone) != 0) continue;
        for (int t = 0; t < b->ntypes; t++)
            st_json_kv_uint(j, p->type_names[t], b->count[t]);
    }
    st_json_end_object(j);
}

static void json_suitable(struct st_json *j, const char *key, const struct st_buddy_zone *bz,
                          int order)
{
    struct st_contig c;
    st_frag_contig(bz->nr_free, bz->norders, order, &c);
    st_json_kv_uint(j, key, order < bz->norders ? c.free_blocks_suitable : 0);
}

static void json_verdict(struct st_json *j, const struct report *r, const struct zone_report *z)
{
    char v[512];
    st_json_key(j, "verdict");
    st_json_begin_object(j);
    st_json_kv_string(j, "fit", st_frag_fit_name(z->fit.fit));
    st_json_kv_string(j, "text", zone_verdict(v, sizeof(v), r, z));
    st_json_kv_int(j, "fragmentation_index", z->fit.fragindex);
    st_json_kv_int(j, "unusable_index", z->fit.unusable);
    st_json_kv_bool(j, "compaction_watermark_ok", z->fit.compact_wmark_ok);
    st_json_end_object(j);
}

static void json_zone(struct st_json *j, const struct report *r, const struct zone_report *z)
{
    const struct st_buddy_zone *bz = z->bz;
    st_json_begin_object(j);
    st_json_kv_int(j, "node", bz->node);
    st_json_kv_string(j, "zone", bz->zone);
    st_json_kv_bool(j, "partial", bz->partial);
    st_json_kv_int(j, "orders", bz->norders);
    st_json_kv_uint(j, "free_pages", z->free_pages);
    st_json_kv_uint(j, "free_bytes", z->free_pages * (uint64_t)r->m->page_size);
    json_u64_array(j, "free_blocks", bz->nr_free, bz->norders);
    st_json_kv_int(j, "largest_free_order", z->fit.largest_order);
    json_suitable(j, "order9_blocks_without_compaction", bz, 9);
    json_suitable(j, "order10_blocks_without_compaction", bz, 10);
    json_index_array(j, "unusable_index", bz, true);
    json_index_array(j, "fragmentation_index", bz, false);
    json_watermarks(j, z);
    json_migrate_types(j, r, bz);
    json_pageblocks(j, r, bz);
    json_verdict(j, r, z);
    st_json_end_object(j);
}

static void json_files(struct st_json *j, const struct st_machine *m)
{
    char buf[64];
    st_json_key(j, "files");
    st_json_begin_object(j);
    for (int i = 0; i < ST_F_COUNT; i++) {
        st_json_key(j, m->files[i].rel);
        st_json_begin_object(j);
        st_json_kv_string(j, "state", file_state(&m->files[i], buf, sizeof(buf)));
        st_json_kv_int(j, "malformed_lines", m->files[i].nerrors);
        st_json_end_object(j);
    }
    st_json_end_object(j);
}

static void json_machine(struct st_json *j, const struct report *r)
{
    const struct st_machine *m = r->m;
    st_json_key(j, "machine");
    st_json_begin_object(j);
    st_json_kv_string(j, "root", m->root);
    st_json_kv_string(j, "hostname", m->hostname);
    st_json_kv_string(j, "kernel", m->kernel);
    st_json_kv_string(j, "date", m->date);
    st_json_kv_int(j, "page_size", m->page_size);
    st_json_kv_string(j, "page_size_from", m->page_size_from);
    st_json_end_object(j);
    json_files(j, m);
    st_json_key(j, "request");
    st_json_begin_object(j);
    st_json_kv_int(j, "order", r->order);
    st_json_kv_uint(j, "bytes", r->req_bytes);
    st_json_kv_string(j, "from", r->order_from);
    st_json_end_object(j);
}

static void json_kv_object(struct st_json *j, const char *key, const struct st_kvlist *l)
{
    st_json_key(j, key);
    st_json_begin_object(j);
    for (size_t i = 0; i < l->n; i++)
        st_json_kv_uint(j, l->v[i].key, l->v[i].value);
    st_json_end_object(j);
}

static void json_long_or_null(struct st_json *j, const char *key, long v)
{
    st_json_key(j, key);
    if (v < 0)
        st_json_null(j);
    else
        st_json_int(j, v);
}

static void json_settings(struct st_json *j, const struct report *r)
{
    const struct st_machine *m = r->m;
    st_json_key(j, "settings");
    st_json_begin_object(j);
    json_long_or_null(j, "min_free_kbytes", m->min_free_kbytes);
    json_long_or_null(j, "extfrag_threshold", m->extfrag_threshold);
    st_json_kv_int(j, "extfrag_threshold_used", r->threshold);
    json_long_or_null(j, "compaction_proactiveness", m->proactiveness);
    json_long_or_null(j, "watermark_scale_factor", m->wsf);
    st_json_kv_string(j, "thp_enabled", m->thp_enabled[0] ? m->thp_enabled : NULL);
    st_json_kv_string(j, "thp_defrag", m->thp_defrag[0] ? m->thp_defrag : NULL);
    st_json_end_object(j);
}

static void json_activity(struct st_json *j, const struct report *r)
{
    uint64_t v;
    st_json_key(j, "activity");
    st_json_begin_object(j);
    for (size_t i = 0; i < NACTIVITY; i++) {
        char key[ST_PROCFS_NAME_LEN];
        snprintf(key, sizeof(key), "%s", activity_names[i]);
        key[strcspn(key, "*")] = '\0';
        st_json_key(j, key);
        if (vmstat_figure(&r->m->vmstat, activity_names[i], &v))
            st_json_uint(j, v);
        else
            st_json_null(j);
    }
    st_json_end_object(j);
}

static void json_slab_cache(struct st_json *j, const struct report *r, const struct st_slabinfo_cache *c)
{
    st_json_begin_object(j);
    st_json_kv_string(j, "name", c->name);
    st_json_kv_uint(j, "active_objs", c->active_objs);
    st_json_kv_uint(j, "num_objs", c->num_objs);
    st_json_kv_uint(j, "objsize", c->objsize);
    st_json_kv_double(j, "fill", c->num_objs ? (double)c->active_objs / (double)c->num_objs : 0);
    st_json_kv_uint(j, "bytes", slab_bytes(r, c));
    st_json_end_object(j);
}

static void json_slab(struct st_json *j, const struct report *r)
{
    const struct st_slabinfo *s = &r->m->slab;
    size_t top[TOP_SLABS], n;
    uint64_t total = 0;
    bool readable = r->m->files[ST_F_SLABINFO].loaded;
    st_json_key(j, "slab");
    st_json_begin_object(j);
    st_json_kv_bool(j, "readable", readable);
    st_json_kv_string(j, "reason", readable ? NULL : slab_missing_reason(r->m));
    n = readable ? top_slabs(r, top, TOP_SLABS) : 0;
    for (size_t i = 0; i < s->n; i++)
        total += slab_bytes(r, &s->v[i]);
    st_json_kv_uint(j, "caches", s->n);
    st_json_kv_uint(j, "total_bytes", total);
    st_json_key(j, "top");
    st_json_begin_array(j);
    for (size_t i = 0; i < n; i++)
        json_slab_cache(j, r, &s->v[top[i]]);
    st_json_end_array(j);
    st_json_end_object(j);
}

static void json_pid(struct st_json *j, const struct pid_info *p)
{
    st_json_key(j, "process");
    st_json_begin_object(j);
    st_json_kv_int(j, "pid", p->pid);
    st_json_kv_string(j, "error", p->err ? strerror(p->err) : NULL);
    st_json_kv_string(j, "name", p->err ? NULL : p->name);
    json_kv_object(j, "status_kb", &p->status);
    json_kv_object(j, "smaps_rollup_kb", &p->rollup);
    st_json_key(j, "heap");
    st_json_begin_object(j);
    if (p->heap)
        p->heap->json(j, p);
    else
        st_json_kv_string(j, "allocator", NULL);
    st_json_end_object(j);
    st_json_end_object(j);
}

static void json_tail(struct st_json *j, const struct report *r, const struct st_diags *d)
{
    st_json_key(j, "advice");
    st_json_begin_array(j);
    for (size_t i = 0; i < r->nadvice; i++) {
        st_json_begin_object(j);
        st_json_kv_string(j, "knob", r->advice[i].knob);
        st_json_kv_string(j, "text", r->advice[i].text);
        st_json_end_object(j);
    }
    st_json_end_array(j);
    st_json_key(j, "errors");
    st_json_begin_array(j);
    for (size_t i = 0; i < d->n; i++)
        st_json_string(j, d->msgs[i]);
    st_json_end_array(j);
}

static void json_overall(struct st_json *j, const struct report *r)
{
    char v[512];
    uint64_t mf;
    st_json_kv_uint(j, "total_free_pages", r->buddy_free_pages);
    st_json_kv_uint(j, "total_free_kb", r->buddy_free_pages * (uint64_t)r->m->page_size / 1024);
    st_json_key(j, "memfree_kb");
    if (mem_kb(r, "MemFree", &mf))
        st_json_uint(j, mf);
    else
        st_json_null(j);
    st_json_key(j, "overall");
    st_json_begin_object(j);
    st_json_kv_string(j, "fit", r->nzones ? st_frag_fit_name(r->overall) : NULL);
    st_json_kv_string(j, "text", overall_text(v, sizeof(v), r));
    st_json_end_object(j);
}

/* Per-second rates between two samples, for --watch. */
struct rates {
    bool valid;
    int sample;
    double dt;
    double v[NACTIVITY];
};

static void json_rates(struct st_json *j, const struct rates *rt)
{
    st_json_kv_int(j, "sample", rt->sample);
    if (!rt->valid) return;
    st_json_kv_double(j, "interval_s", rt->dt);
    st_json_key(j, "rates_per_second");
    st_json_begin_object(j);
    for (size_t i = 0; i < NACTIVITY; i++) {
        char key[ST_PROCFS_NAME_LEN];
        snprintf(key, sizeof(key), "%s", activity_names[i]);
        key[strcspn(key, "*")] = '\0';
        st_json_kv_double(j, key, rt->v[i]);
    }
    st_json_end_object(j);
}

static int json_report(FILE *out, const struct report *r, const struct pid_info *p,
                       const struct st_diags *d, const struct rates *rt)
{
    struct st_json j;
    st_json_init(&j, out, rt == NULL);
    st_json_begin_object(&j);
    st_json_kv_string(&j, "tool", "strata frag");
    if (rt) json_rates(&j, rt);
    json_machine(&j, r);
    st_json_key(&j, "zones");
    st_json_begin_array(&j);
    for (size_t i = 0; i < r->nzones; i++)
        json_zone(&j, r, &r->zones[i]);
    st_json_end_array(&j);
    json_overall(&j, r);
    json_kv_object(&j, "meminfo", &r->m->meminfo);
    json_activity(&j, r);
    json_settings(&j, r);
    json_slab(&j, r);
    if (p) json_pid(&j, p);
    json_tail(&j, r, d);
    st_json_end_object(&j);
    return st_json_finish(&j);
}

/* ------------------------------------------------------------------ */
/* kernel format and SVG                                               */

static int kernel_report(FILE *out, const struct st_machine *m, enum kernel_out k)
{
    int rc = 0;
    if (k == KOUT_BOTH) fprintf(out, "# /sys/kernel/debug/extfrag/unusable_index\n");
    if (k == KOUT_BOTH || k == KOUT_UNUSABLE)
        rc |= st_frag_print_kernel(out, &m->buddy, ST_KF_UNUSABLE);
    if (k == KOUT_BOTH) fprintf(out, "# /sys/kernel/debug/extfrag/extfrag_index\n");
    if (k == KOUT_BOTH || k == KOUT_EXTFRAG)
        rc |= st_frag_print_kernel(out, &m->buddy, ST_KF_EXTFRAG);
    return rc;
}

struct chart_data {
    char (*cats)[16];
    char (*series)[96];
    const char **cat_ptrs, **series_ptrs;
    double *values;
};

static bool chart_alloc(struct chart_data *c, size_t ncats, size_t nseries)
{
    c->cats = calloc(ncats, sizeof(*c->cats));
    c->series = calloc(nseries, sizeof(*c->series));
    c->cat_ptrs = calloc(ncats, sizeof(*c->cat_ptrs));
    c->series_ptrs = calloc(nseries, sizeof(*c->series_ptrs));
    c->values = calloc(ncats * nseries, sizeof(*c->values));
    return c->cats && c->series && c->cat_ptrs && c->series_ptrs && c->values;
}

static void chart_free(struct chart_data *c)
{
    free(c->cats);
    free(c->series);
    free(c->cat_ptrs);
    free(c->series_ptrs);
    free(c->values);
}

static void chart_fill(struct chart_data *c, const struct report *r, size_t ncats)
{
    for (size_t o = 0; o < ncats; o++) {
        fmt_short(c->cats[o], sizeof(c->cats[o]), block_bytes(r, (int)o));
        c->cat_ptrs[o] = c->cats[o];
    }
    for (size_t s = 0; s < r->nzones; s++) {
        const struct st_buddy_zone *bz = r->zones[s].bz;
        snprintf(c->series[s], sizeof(c->series[s]), "node %d %s", bz->node, bz->zone);
        c->series_ptrs[s] = c->series[s];
        for (int o = 0; o < bz->norders; o++)
            c->values[s * ncats + (size_t)o] =
                (double)(bz->nr_free[o] << o) * (double)r->m->page_size / (1024.0 * 1024.0);
    }
}

static int svg_report(const struct report *r, const char *path)
{
    size_t ncats = (size_t)r->m->buddy.max_orders;
    struct chart_data c = {0};
    char title[256], sub[256], xl[96];
    FILE *f;
    int rc = -1;
    if (r->nzones == 0 || !chart_alloc(&c, ncats, r->nzones)) {
        chart_free(&c);
        return -1;
    }
    chart_fill(&c, r, ncats);
    snprintf(title, sizeof(title), "Free memory per block size: %s, %s", r->m->hostname,
             r->m->date);
    if (snprintf(sub, sizeof(sub), "kernel %s; stacked per zone; a %s block (order %d): %s",
                 r->m->kernel, fmt_short(xl, sizeof(xl), r->req_bytes), r->order,
                 st_frag_fit_name(r->overall)) >= (int)sizeof(sub))
        sub[sizeof(sub) - 1] = '\0'; /* an overlong kernel name is cut, not an error */
    snprintf(xl, sizeof(xl), "free block size (buddy order 0 to %zu)", ncats - 1);
    struct st_svg_chart chart = {title, sub,        xl,        "free memory (MiB)", "MiB",
                                 ncats, c.cat_ptrs, r->nzones, c.series_ptrs,       c.values,
                                 true,  0,          0};
    if ((f = fopen(path, "w")) != NULL) {
        rc = st_svg_bar_chart(f, &chart);
        rc |= fclose(f) ? -1 : 0;
    }
    chart_free(&c);
    return rc;
}
/* ------------------------------------------------------------------ */
/* one sample, once or repeatedly                                      */

struct sample {
    struct st_machine m;
    struct report r;
    struct pid_info p;
    struct st_diags d;
    int errors;
    struct timespec t;
};

static int sample_load(struct sample *s, const struct options *o)
{
    memset(s, 0, sizeof(*s));
    clock_gettime(CLOCK_MONOTONIC, &s->t);
    s->errors = st_machine_load(&s->m, o->root, o->page_size, &s->d);
    if (o->pid > 0) s->errors += pid_load(&s->p, o->root, o->pid, &s->d);
    return analyse(&s->r, &s->m, o);
}

static void sample_free(struct sample *s)
{
    report_free(&s->r);
    pid_free(&s->p);
    st_machine_free(&s->m);
    st_diags_free(&s->d);
}

static void print_diags(const struct st_diags *d)
{
    for (size_t i = 0; i < d->n; i++)
        fprintf(stderr, "strata frag: %s\n", d->msgs[i]);
}

/* 2 for malformed input, 1 for what could not be read or written, else 0. */
static int sample_status(const struct sample *s, const struct options *o)
{
    const struct st_file *b = &s->m.files[ST_F_BUDDYINFO];
    int rc = 0;
    if (!b->loaded) {
        fprintf(stderr, "strata frag: cannot read %s under %s: %s\n", b->rel, o->root,
                strerror(b->err));
        rc = 1;
    }
    if (o->pid > 0 && s->p.err) {
        fprintf(stderr, "strata frag: cannot read process %ld: %s\n", o->pid, strerror(s->p.err));
        rc = 1;
    }
    return s->errors ? 2 : rc; /* malformed input is the more specific failure */
}

static int sample_output(FILE *out, const struct sample *s, const struct options *o,
                         const struct rates *rt)
{
    const struct pid_info *p = o->pid > 0 ? &s->p : NULL;
    if (o->kernel != KOUT_NONE) return kernel_report(out, &s->m, o->kernel);
    if (o->json) return json_report(out, &s->r, p, &s->d, rt);
    text_report(out, &s->r, p);
    return ferror(out) ? -1 : 0;
}

static int write_svg_file(const struct sample *s, const struct options *o)
{
    if (!o->svg) return 0;
    if (svg_report(&s->r, o->svg) == 0) return 0;
    fprintf(stderr, "strata frag: cannot write the chart to %s%s\n", o->svg,
            s->r.nzones ? "" : " (no buddyinfo to chart)");
    return 1;
}

static int run_once(const struct options *o)
{
    struct sample s;
    int rc = 1;
    if (sample_load(&s, o) == 0) {
        print_diags(&s.d);
        rc = sample_output(stdout, &s, o, NULL) ? 1 : sample_status(&s, o);
        if (write_svg_file(&s, o) && rc == 0) rc = 1;
    }
    sample_free(&s);
    return rc;
}

static double seconds_between(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* Counters only grow; a drop (a counter reset) reads as no activity. */
static double rate_of(const struct sample *prev, const struct sample *cur, const char *name,
                      double dt)
{
    uint64_t a = 0, b = 0;
    vmstat_figure(&prev->m.vmstat, name, &a);
    vmstat_figure(&cur->m.vmstat, name, &b);
    return b > a && dt > 0 ? (double)(b - a) / dt : 0;
}

static void compute_rates(struct rates *rt, const struct sample *prev, const struct sample *cur,
                          int n)
{
    rt->sample = n;
    rt->valid = prev != NULL;
    if (!prev) return;
    rt->dt = seconds_between(&prev->t, &cur->t);
    for (size_t i = 0; i < NACTIVITY; i++)
        rt->v[i] = rate_of(prev, cur, activity_names[i], rt->dt);
}

static const struct zone_report *find_zone(const struct report *r, const struct st_buddy_zone *bz)
{
    for (size_t i = 0; i < r->nzones; i++)
        if (r->zones[i].bz->node == bz->node && strcmp(r->zones[i].bz->zone, bz->zone) == 0)
            return &r->zones[i];
    return NULL;
}

static void text_delta_zone(FILE *out, const struct report *r, const struct zone_report *z,
                            const struct zone_report *was, double dt)
{
    char a[32], b[32], v[512];
    double pg = (double)r->m->page_size;
    double d = was ? ((double)z->free_pages - (double)was->free_pages) * pg / dt : 0;
    fprintf(out, "  node %d %s: free %s (%s%s/s), largest order %d, fragindex(%d) %s: %s\n",
            z->bz->node, z->bz->zone, fmt_bytes(a, sizeof(a), (double)z->free_pages * pg),
            d >= 0 ? "+" : "-", fmt_bytes(b, sizeof(b), fabs(d)), z->fit.largest_order, r->order,
            fmt_index(v, sizeof(v), z->fit.fragindex), st_frag_fit_name(z->fit.fit));
}

static void text_delta(FILE *out, const struct sample *prev, const struct sample *cur,
                       const struct rates *rt)
{
    char v[512];
    fprintf(out, "\n-- sample %d, %.1f s after the previous: %s\n", rt->sample, rt->dt,
            overall_text(v, sizeof(v), &cur->r));
    for (size_t i = 0; i < cur->r.nzones; i++)
        text_delta_zone(out, &cur->r, &cur->r.zones[i], find_zone(&prev->r, cur->r.zones[i].bz),
                        rt->dt);
    fprintf(out, "  per second:");
    for (size_t i = 0; i < NACTIVITY; i++)
        fprintf(out, " %.*s %.1f%s", (int)strcspn(activity_names[i], "*"), activity_names[i],
                rt->v[i], i + 1 < NACTIVITY ? "," : "\n");
    fflush(out);
}

static void sleep_seconds(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int watch_step(struct sample *prev, struct sample *cur, const struct options *o, int n)
{
    struct rates rt;
    int rc;
    if (sample_load(cur, o) != 0) return 1;
    print_diags(&cur->d);
    compute_rates(&rt, prev, cur, n);
    if (o->json || o->kernel != KOUT_NONE || !prev)
        rc = sample_output(stdout, cur, o, o->json ? &rt : NULL);
    else
        text_delta(stdout, prev, cur, &rt), rc = 0;
    fflush(stdout);
    if (rc) return 1;
    rc = sample_status(cur, o);
    return write_svg_file(cur, o) && rc == 0 ? 1 : rc;
}

static int watch(const struct options *o)
{
    struct sample a, b, *prev = NULL, *cur = &a;
    int worst = 0;
    for (int n = 1; o->count == 0 || n <= o->count; n++) {
        int rc = watch_step(prev, cur, o, n);
        worst = rc > worst ? rc : worst;
        if (prev) sample_free(prev);
        prev = cur;
        cur = cur == &a ? &b : &a;
        if (o->count == 0 || n < o->count) sleep_seconds(o->watch);
    }
    if (prev) sample_free(prev);
    return worst;
}

/* ------------------------------------------------------------------ */
/* snapshot                                                            */

static const char *const snapshot_rel[] = {
    "proc/buddyinfo", /* first, and the debugfs indices right after it */
    "sys/kernel/debug/extfrag/unusable_index",
    "sys/kernel/debug/extfrag/extfrag_index",
    "proc/pagetypeinfo",
    "proc/zoneinfo",
    "proc/meminfo",
    "proc/vmstat",
    "proc/slabinfo",
    "proc/sys/vm/min_free_kbytes",
    "proc/sys/vm/extfrag_threshold",
    "proc/sys/vm/compaction_proactiveness",
    "proc/sys/vm/watermark_scale_factor",
    "proc/sys/vm/nr_hugepages",
    "sys/kernel/mm/transparent_hugepage/enabled",
    "sys/kernel/mm/transparent_hugepage/defrag",
    "proc/sys/kernel/hostname",
    "proc/sys/kernel/osrelease",
};

/* mkdir -p for the directory part of path. */
static int make_parents(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return errno;
        *p = '/';
    }
    return 0;
}

static int write_file(const char *path, const char *text, size_t len)
{
    int e = make_parents(path);
    FILE *f;
    if (e) return e;
    if (!(f = fopen(path, "w"))) return errno;
    size_t w = fwrite(text, 1, len, f);
    e = ferror(f) || w != len ? EIO : 0;
    if (fclose(f) != 0 && !e) e = errno;
    return e;
}

/* Copy /REL to DIR/REL; 0 or an errno (reported). */
static int snapshot_copy(const char *dir, const char *rel)
{
    char path[4096], *text;
    size_t len;
    int e = st_procfs_read("/", rel, &text, &len);
    if (e == 0) {
        st_procfs_path(path, sizeof(path), dir, rel);
        e = write_file(path, text, len);
        free(text);
    }
    if (e) printf("  not copied: /%s (%s)\n", rel, strerror(e));
    return e;
}

static int snapshot_meta(const char *dir)
{
    char path[4096], text[1024], date[64];
    struct utsname u;
    time_t t = time(NULL);
    if (uname(&u) != 0) memset(&u, 0, sizeof(u));
    strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", gmtime(&t));
    int n = snprintf(text, sizeof(text),
                     "hostname: %s\nkernel: %s\nmachine: %s\ndate: %s\npage_size: %ld\n"
                     "made_by: strata frag snapshot\n",
                     u.nodename, u.release, u.machine, date, sysconf(_SC_PAGESIZE));
    st_procfs_path(path, sizeof(path), dir, "strata-snapshot");
    return write_file(path, text, (size_t)n);
}

static int snapshot_pid(const char *dir, long pid)
{
    static const char *const files[] = {"status", "smaps_rollup", "maps"};
    char rel[64];
    int failed = 0;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(rel, sizeof(rel), "proc/%ld/%s", pid, files[i]);
        failed += snapshot_copy(dir, rel) != 0;
    }
    return failed;
}

static int snapshot_cmd(int argc, char **argv)
{
    long pid = -1;
    const char *dir = argc >= 2 ? argv[1] : NULL;
    size_t copied = 0, n = sizeof(snapshot_rel) / sizeof(snapshot_rel[0]);
    if (!dir || (argc != 2 && (argc != 4 || strcmp(argv[2], "--pid") != 0 ||
                               !parse_long_arg(argv[3], 1, &pid)))) {
        fprintf(stderr, "usage: strata frag snapshot DIR [--pid PID]\n");
        return 2;
    }
    printf("snapshot of this machine into %s\n", dir);
    for (size_t i = 0; i < n; i++)
        copied += snapshot_copy(dir, snapshot_rel[i]) == 0;
    if (pid > 0 && snapshot_pid(dir, pid)) printf("  process %ld: not every file copied\n", pid);
    if (snapshot_meta(dir) != 0)
        return fprintf(stderr, "strata frag: cannot write %s/strata-snapshot\n", dir), 1;
    printf("copied %zu of %zu files; read it with: strata frag --root %s\n", copied, n, dir);
    char check[4096];
    st_procfs_path(check, sizeof(check), dir, "proc/buddyinfo");
    return access(check, R_OK) == 0 ? 0 : 1;
}

/* ------------------------------------------------------------------ */

int cmd_frag(int argc, char **argv)
{
    struct options o;
    if (argc >= 2 && strcmp(argv[1], "snapshot") == 0) return snapshot_cmd(argc - 1, argv + 1);
    int rc = parse_options(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    if (o.json && o.kernel != KOUT_NONE) {
        fprintf(stderr, "strata frag: --json and --kernel-format do not mix\n");
        return 2;
    }
    return o.watch > 0 ? watch(&o) : run_once(&o);
}
