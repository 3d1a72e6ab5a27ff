/* SPDX-License-Identifier: MIT */
/*
 * frag_parse.c — the /proc parsers of `strata frag` (tools/strata/procfs.c)
 * on the real samples in tests/fixtures/frag/ and on hand-made edge cases:
 * any number of orders and nodes, unknown zone names, extra columns,
 * truncated and malformed files (the diagnostic must name file and line),
 * and the loader of a whole snapshot.
 */
#include "test.h"

#include "../../tools/strata/procfs.c"

#include <errno.h>

/* The text of a fixture file (tests/fixtures/frag/REL), or NULL. */
static char *fixture(const char *rel)
{
    const char *src = getenv("STRATA_SOURCE_DIR");
    char root[4096];
    char *text = NULL;
    snprintf(root, sizeof(root), "%s/tests/fixtures/frag", src ? src : ".");
    if (st_procfs_read(root, rel, &text, NULL) != 0)
        fprintf(stderr, "  cannot read fixture %s under %s\n", rel, root);
    return text;
}

static const char *fixture_root(char *buf, size_t n, const char *name)
{
    const char *src = getenv("STRATA_SOURCE_DIR");
    snprintf(buf, n, "%s/tests/fixtures/frag/%s", src ? src : ".", name);
    return buf;
}

/* True when some diagnostic contains needle. */
static bool diag_has(const struct st_diags *d, const char *needle)
{
    for (size_t i = 0; i < d->n; i++)
        if (strstr(d->msgs[i], needle)) return true;
    return false;
}

static void dump_diags(const struct st_diags *d)
{
    for (size_t i = 0; i < d->n; i++)
        fprintf(stderr, "    diag: %s\n", d->msgs[i]);
}

/* ---- buddyinfo ---- */

TEST(buddyinfo_real_sample)
{
    struct st_buddyinfo b = {0};
    struct st_diags d = {0};
    char *t = fixture("prometheus/proc/buddyinfo");
    REQUIRE(t);
    CHECK_EQ(st_procfs_parse_buddyinfo(t, "buddyinfo", &b, &d), 0);
    CHECK_EQ(b.n, 3);
    CHECK_EQ(b.max_orders, 11);
    CHECK(strcmp(b.zones[1].zone, "DMA32") == 0);
    CHECK_EQ(b.zones[1].nr_free[0], 759);
    CHECK_EQ(b.zones[2].nr_free[3], 1530);
    CHECK_EQ(b.zones[0].nr_free[10], 3);
    const struct st_buddy_zone *z = st_procfs_find_buddy(&b, 0, "Normal");
    REQUIRE(z);
    CHECK_EQ(z->nr_free[6], 4);
    CHECK(st_procfs_find_buddy(&b, 1, "Normal") == NULL);
    st_procfs_free_buddyinfo(&b);
    st_diags_free(&d);
    free(t);
}

TEST(buddyinfo_trailing_spaces_sample)
{
    /* the pcp and hotsos samples end every line with a space */
    struct st_buddyinfo b = {0};
    struct st_diags d = {0};
    char *t = fixture("hotsos-kvm/proc/buddyinfo");
    REQUIRE(t);
    CHECK_EQ(st_procfs_parse_buddyinfo(t, "buddyinfo", &b, &d), 0);
    CHECK_EQ(b.n, 3);
    CHECK_EQ(b.zones[2].norders, 11);
    CHECK_EQ(b.zones[2].nr_free[8], 8);
    CHECK(!b.zones[2].partial);
    st_procfs_free_buddyinfo(&b);
    free(t);
}

TEST(buddyinfo_13_orders_and_nodes)
{
    const char *t = "Node 0, zone      DMA      1      2      3      4      5      6      7      8"
                    "      9     10     11     12     13 \n"
                    "Node 0, zone   Normal   100    0    0    0    0    0    0    0    0    0    0 "
                    "   0    1\n"
                    "Node 1, zone   Normal     5      4      3      2      1      0      0      0"
                    "      0      0      0      0      0\n";
    struct st_buddyinfo b = {0};
    struct st_diags d = {0};
    CHECK_EQ(st_procfs_parse_buddyinfo(t, "b", &b, &d), 0);
    CHECK_EQ(b.n, 3);
    CHECK_EQ(b.max_orders, 13);
    CHECK_EQ(b.zones[0].nr_free[12], 13);
    CHECK_EQ(b.zones[1].nr_free[12], 1);
    CHECK_EQ(b.zones[2].node, 1);
    CHECK(st_procfs_find_buddy(&b, 1, "Normal") == &b.zones[2]);
    st_procfs_free_buddyinfo(&b);
}

TEST(buddyinfo_unknown_zone_and_extra_columns)
{
    /* a zone name the tool never heard of, and one line with a 12th column:
     * both accepted, each zone keeps its own count of orders */
    const char *t = "Node 0, zone   Normal 1 2 3 4 5 6 7 8 9 10 11\n"
                    "Node 0, zone Quirky 1 2 3 4 5 6 7 8 9 10 11 12\n";
    struct st_buddyinfo b = {0};
    struct st_diags d = {0};
    CHECK_EQ(st_procfs_parse_buddyinfo(t, "b", &b, &d), 0);
    CHECK_EQ(b.n, 2);
    CHECK_EQ(b.zones[0].norders, 11);
    CHECK_EQ(b.zones[1].norders, 12);
    CHECK_EQ(b.max_orders, 12);
    CHECK(strcmp(b.zones[1].zone, "Quirky") == 0);
    st_procfs_free_buddyinfo(&b);
}

TEST(buddyinfo_malformed_lines_named)
{
    const char *t = "Node 0, zone DMA32 1 2 3\n"
                    "Node 0, zone Normal 4 x5 6\n"
                    "\n"
                    "garbage here\n"
                    "Node 1, zone Normal 7 8 9\n"
                    "Node 1, zone Normal 7 8 9\n";
    struct st_buddyinfo b = {0};
    struct st_diags d = {0};
    CHECK_EQ(st_procfs_parse_buddyinfo(t, "proc/buddyinfo", &b, &d), 3);
    CHECK(diag_has(&d, "proc/buddyinfo:2: a free block count is not a number"));
    CHECK(diag_has(&d, "proc/buddyinfo:4: expected 'Node N, zone NAME'"));
    CHECK(diag_has(&d, "proc/buddyinfo:6: zone Normal of node 1 listed twice"));
    /* the good lines are still there */
    CHECK_EQ(b.n, 2);
    CHECK_EQ(b.zones[1].nr_free[2], 9);
    st_procfs_free_buddyinfo(&b);
    st_diags_free(&d);
}

TEST(buddyinfo_truncated)
{
    /* the last line lost its end (no newline): kept as partial, reported */
    const char *t = "Node 0, zone DMA32 1 2 3 4\nNode 0, zone Normal 5 6";
    struct st_buddyinfo b = {0};
    struct st_diags d = {0};
    CHECK_EQ(st_procfs_parse_buddyinfo(t, "bi", &b, &d), 1);
    CHECK(diag_has(&d, "bi:2: line cut short"));
    REQUIRE(b.n == 2);
    CHECK(b.zones[1].partial);
    CHECK_EQ(b.zones[1].norders, 2);
    st_procfs_free_buddyinfo(&b);
    st_diags_free(&d);
    /* an empty file is an error too */
    struct st_buddyinfo e = {0};
    CHECK_EQ(st_procfs_parse_buddyinfo("", "bi", &e, &d), 1);
    CHECK(diag_has(&d, "bi: no zones found"));
    st_diags_free(&d);
}

TEST(buddyinfo_too_many_orders)
{
    /* 33 counts: more than ST_PROCFS_MAX_ORDERS, a clear error, not an overflow */
    char t[512] = "Node 0, zone Normal";
    for (int i = 0; i < 33; i++)
        strcat(t, " 1");
    strcat(t, "\n");
    struct st_buddyinfo b = {0};
    struct st_diags d = {0};
    CHECK_EQ(st_procfs_parse_buddyinfo(t, "b", &b, &d), 1);
    CHECK(diag_has(&d, "more orders than this tool supports (32)"));
    CHECK_EQ(b.n, 0);
    st_diags_free(&d);
    /* 80 columns: still no overflow of the token array */
    char u[1024] = "Node 0, zone Normal";
    for (int i = 0; i < 80; i++)
        strcat(u, " 1");
    CHECK_EQ(st_procfs_parse_buddyinfo(u, "b", &b, &d), 1);
    st_diags_free(&d);
}

TEST(buddyinfo_all_real_samples)
{
    /* every buddyinfo sample parses cleanly; the sums of free pages are the
     * ones computed with awk from the sample files */
    static const struct {
        const char *rel;
        uint64_t normal_free;
    } s[] = {{"prometheus/proc/buddyinfo", 32139},      {"pcp-16g/proc/buddyinfo", 2744},
             {"hotsos-kvm/proc/buddyinfo", 5207},       {"hotsos-buddy-05/proc/buddyinfo", 17283},
             {"hotsos-buddy-06/proc/buddyinfo", 19639}, {"hotsos-buddy-07/proc/buddyinfo", 24397},
             {"fragmented/proc/buddyinfo", 201406}};
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
        struct st_buddyinfo b = {0};
        struct st_diags d = {0};
        char *t = fixture(s[i].rel);
        REQUIRE(t);
        CHECK_EQ(st_procfs_parse_buddyinfo(t, s[i].rel, &b, &d), 0);
        const struct st_buddy_zone *z = st_procfs_find_buddy(&b, 0, "Normal");
        REQUIRE(z);
        uint64_t sum = 0;
        for (int o = 0; o < z->norders; o++)
            sum += z->nr_free[o] << o;
        CHECK_EQ(sum, s[i].normal_free);
        st_procfs_free_buddyinfo(&b);
        free(t);
    }
}

/* ---- pagetypeinfo ---- */

TEST(pagetypeinfo_real_sample)
{
    struct st_pagetypeinfo p = {0};
    struct st_diags d = {0};
    char *t = fixture("hotsos-kvm/proc/pagetypeinfo");
    REQUIRE(t);
    CHECK_EQ(st_procfs_parse_pagetypeinfo(t, "pti", &p, &d), 0);
    dump_diags(&d);
    CHECK_EQ(p.pageblock_order, 9);
    CHECK_EQ(p.pages_per_block, 512);
    CHECK_EQ(p.nfree, 18); /* 3 zones x 6 migrate types */
    CHECK_EQ(p.nblocks, 3);
    CHECK_EQ(p.ntypes, 6);
    CHECK(strcmp(p.type_names[0], "Unmovable") == 0);
    CHECK(strcmp(p.type_names[5], "Isolate") == 0);
    /* "Node 0, zone Normal, type Movable 57 16 19 7 32 0 1 5 10 0 0" */
    const struct st_pti_free *f = &p.free[13];
    CHECK(strcmp(f->zone, "Normal") == 0 && strcmp(f->type, "Movable") == 0);
    CHECK_EQ(f->nr_free[0], 57);
    CHECK_EQ(f->nr_free[8], 10);
    /* "Node 0, zone DMA32 40 1426 62 0 0 0" */
    CHECK(strcmp(p.blocks[1].zone, "DMA32") == 0);
    CHECK_EQ(p.blocks[1].count[1], 1426);
    CHECK_EQ(p.blocks[1].count[2], 62);
    st_procfs_free_pagetypeinfo(&p);
    free(t);
}

TEST(pagetypeinfo_capped_counts_and_mixed_section)
{
    /* the kernel stops counting a free list at 100000 and prints ">100000";
     * a "Number of mixed blocks" table (CONFIG_PAGE_OWNER) is skipped */
    const char *t = "Page block order: 9\n"
                    "Pages per block:  512\n"
                    "\n"
                    "Free pages count per migrate type at order       0      1      2 \n"
                    "Node    0, zone   Normal, type      Movable >100000  12  3 \n"
                    "\n"
                    "Number of blocks type     Unmovable      Movable \n"
                    "Node 0, zone   Normal            4           60 \n"
                    "\n"
                    "Number of mixed blocks    Unmovable      Movable \n"
                    "Node 0, zone   Normal            1            2 \n";
    struct st_pagetypeinfo p = {0};
    struct st_diags d = {0};
    CHECK_EQ(st_procfs_parse_pagetypeinfo(t, "pti", &p, &d), 0);
    dump_diags(&d);
    REQUIRE(p.nfree == 1);
    CHECK_EQ(p.free[0].nr_free[0], 100000);
    CHECK_EQ(p.free[0].capped, 1);
    CHECK_EQ(p.free[0].nr_free[1], 12);
    CHECK_EQ(p.nblocks, 1); /* the mixed table did not add a row */
    CHECK_EQ(p.blocks[0].count[1], 60);
    st_procfs_free_pagetypeinfo(&p);
}

TEST(pagetypeinfo_malformed)
{
    const char *t = "Free pages count per migrate type at order 0 1 2\n"
                    "Node 0, zone Normal, type Movable 1 2\n"
                    "Node 0, zone Normal, type Unmovable 1 b 3\n"
                    "Number of blocks type Unmovable Movable\n"
                    "Node 0, zone Normal 5\n"
                    "Node 0, zone Normal, type Reclaimable 1 2";
    struct st_pagetypeinfo p = {0};
    struct st_diags d = {0};
    CHECK_EQ(st_procfs_parse_pagetypeinfo(t, "pti", &p, &d), 4);
    CHECK(diag_has(&d, "pti:2: the number of counts differs"));
    CHECK(diag_has(&d, "pti:3: a free block count is not a number"));
    CHECK(diag_has(&d, "pti:5: the number of pageblock counts differs"));
    CHECK(diag_has(&d, "pti:6: "));
    st_procfs_free_pagetypeinfo(&p);
    st_diags_free(&d);
}

/* ---- zoneinfo ---- */

TEST(zoneinfo_real_sample)
{
    struct st_zoneinfo z = {0};
    struct st_diags d = {0};
    char *t = fixture("hotsos-kvm/proc/zoneinfo");
    REQUIRE(t);
    CHECK_EQ(st_procfs_parse_zoneinfo(t, "zi", &z, &d), 0);
    dump_diags(&d);
    CHECK_EQ(z.n, 5);
    const struct st_zi_zone *n = st_procfs_find_zi(&z, 0, "Normal");
    REQUIRE(n);
    CHECK_EQ(n->free, 5146);
    CHECK_EQ(n->min, 4130);
    CHECK_EQ(n->low, 5162);
    CHECK_EQ(n->high, 6194);
    CHECK_EQ(n->managed, 243950);
    CHECK_EQ(n->spanned, 262144);
    const struct st_zi_zone *dma = st_procfs_find_zi(&z, 0, "DMA");
    REQUIRE(dma);
    /* protection: (0, 2929, 3882, 3882, 3882) */
    CHECK_EQ(dma->nprotection, 5);
    CHECK_EQ(dma->protection[1], 2929);
    CHECK_EQ(dma->protection[4], 3882);
    /* the DMA zone's per-node stats come before its "pages free" line */
    CHECK_EQ(dma->free, 3962);
    const struct st_zi_zone *mov = st_procfs_find_zi(&z, 0, "Movable");
    REQUIRE(mov);
    CHECK_EQ(mov->present, 0);
    CHECK_EQ(mov->seen & ST_ZI_CORE, ST_ZI_CORE);
    st_procfs_free_zoneinfo(&z);
    free(t);
}

TEST(zoneinfo_two_nodes)
{
    struct st_zoneinfo z = {0};
    struct st_diags d = {0};
    char *t = fixture("pcp-numa/proc/zoneinfo");
    REQUIRE(t);
    CHECK_EQ(st_procfs_parse_zoneinfo(t, "zi", &z, &d), 0);
    CHECK_EQ(z.n, 4);
    const struct st_zi_zone *n1 = st_procfs_find_zi(&z, 1, "Normal");
    REQUIRE(n1);
    CHECK_EQ(n1->free, 11093906);
    CHECK_EQ(n1->managed, 16514387);
    CHECK_EQ(n1->nprotection, 4);
    st_procfs_free_zoneinfo(&z);
    free(t);
}

TEST(zoneinfo_new_fields_and_unknown_lines)
{
    /* recent kernels add boost, promo and cma lines; future ones may add
     * anything: unknown lines pass */
    const char *t = "Node 0, zone   Normal\n"
                    "  pages free     113500\n"
                    "        boost    0\n"
                    "        min      2943\n"
                    "        low      3678\n"
                    "        high     4413\n"
                    "        promo    5148\n"
                    "        spanned  5505024\n"
                    "        present  5505024\n"
                    "        managed  163840\n"
                    "        cma      0\n"
                    "        protection: (0, 0, 0, 0, 0)\n"
                    "      nr_free_pages 113500\n"
                    "  pagesets\n"
                    "    cpu: 0\n"
                    "              count:    41\n"
                    "              high:     378\n"
                    "        a future line 1 2 3\n"
                    "  start_pfn:           1048576\n";
    struct st_zoneinfo z = {0};
    struct st_diags d = {0};
    CHECK_EQ(st_procfs_parse_zoneinfo(t, "zi", &z, &d), 0);
    dump_diags(&d);
    REQUIRE(z.n == 1);
    CHECK_EQ(z.zones[0].high, 4413); /* not the pageset's "high: 378" */
    CHECK_EQ(z.zones[0].promo, 5148);
    CHECK(z.zones[0].seen & ST_ZI_BOOST);
    CHECK(z.zones[0].seen & ST_ZI_CMA);
    st_procfs_free_zoneinfo(&z);
}

TEST(zoneinfo_truncated_and_malformed)
{
    const char *t = "Node 0, zone DMA32\n"
                    "  pages free     100\n"
                    "        min      many\n"
                    "        low      3\n"
                    "        high     4\n"
                    "        managed  5\n"
                    "Node 0 zone\n"
                    "Node 0, zone Normal\n"
                    "  pages free     7\n"
                    "        min      1\n"
                    "        low      2\n"
                    "        hi";
    struct st_zoneinfo z = {0};
    struct st_diags d = {0};
    int errors = st_procfs_parse_zoneinfo(t, "zoneinfo", &z, &d);
    CHECK_EQ(errors, 5);
    CHECK(diag_has(&d, "zoneinfo:3: value is not a number"));
    CHECK(diag_has(&d, "zoneinfo:1: node 0 zone DMA32 has no 'min' line"));
    CHECK(diag_has(&d, "zoneinfo:7: expected 'Node N, zone NAME'"));
    CHECK(diag_has(&d, "zoneinfo:12: line cut short"));
    CHECK(diag_has(&d, "zoneinfo:8: node 0 zone Normal has no 'high' line"));
    CHECK_EQ(z.n, 2);
    st_procfs_free_zoneinfo(&z);
    st_diags_free(&d);
}

/* ---- meminfo, vmstat, status, smaps_rollup ---- */

TEST(meminfo_real_sample)
{
    struct st_kvlist m = {0};
    struct st_diags d = {0};
    char *t = fixture("hotsos-kvm/proc/meminfo");
    uint64_t v = 0;
    REQUIRE(t);
    CHECK_EQ(st_procfs_parse_meminfo(t, "mi", &m, &d), 0);
    CHECK(st_kv_get(&m, "MemTotal", &v) && v == 4026036);
    CHECK(st_kv_get(&m, "Active(anon)", &v) && v == 800388);
    CHECK(st_kv_get(&m, "HugePages_Total", &v) && v == 0); /* no unit */
    CHECK(st_kv_get(&m, "Hugepagesize", &v) && v == 2048);
    CHECK(st_kv_get(&m, "VmallocTotal", &v) && v == 34359738367ull);
    CHECK(!st_kv_get(&m, "Nonexistent", &v));
    CHECK_EQ(st_kv_get_or(&m, "Nonexistent", 77), 77);
    st_kv_free(&m);
    free(t);
}

TEST(meminfo_malformed_and_cut)
{
    const char *t = "MemTotal: 100 kB\nMemFree 50 kB\nCached: lots kB\nSlab: 5 MB\nBuffers: 12";
    struct st_kvlist m = {0};
    struct st_diags d = {0};
    CHECK_EQ(st_procfs_parse_meminfo(t, "meminfo", &m, &d), 4);
    CHECK(diag_has(&d, "meminfo:2: expected 'Key: value'"));
    CHECK(diag_has(&d, "meminfo:3: expected a number"));
    CHECK(diag_has(&d, "meminfo:4: expected a number"));
    CHECK(diag_has(&d, "meminfo:5: line cut short"));
    CHECK_EQ(m.n, 1);
    st_kv_free(&m);
    st_diags_free(&d);
}

TEST(vmstat_parse)
{
    const char *t = "nr_free_pages 852677\nallocstall_normal 3\nallocstall_movable 4\n"
                    "pgscan_kswapd 10\nthp_fault_fallback 5\nthp_fault_fallback_charge 9\n"
                    "compact_stall twelve\nlonely\n";
    struct st_kvlist v = {0};
    struct st_diags d = {0};
    uint64_t x = 0;
    CHECK_EQ(st_procfs_parse_vmstat(t, "vmstat", &v, &d), 2);
    CHECK(diag_has(&d, "vmstat:7: expected 'name number'"));
    CHECK(diag_has(&d, "vmstat:8: expected 'name number'"));
    CHECK(st_kv_get(&v, "nr_free_pages", &x) && x == 852677);
    CHECK(st_kv_sum_prefix(&v, "allocstall", &x) && x == 7);
    CHECK(!st_kv_sum_prefix(&v, "pgsteal", &x));
    CHECK(st_kv_get(&v, "thp_fault_fallback", &x) && x == 5);
    st_kv_free(&v);
    st_diags_free(&d);
}

TEST(status_and_smaps_rollup)
{
    const char *status = "Name:\tcat\nUmask:\t0022\nState:\tR (running)\nUid:\t0\t0\t0\t0\n"
                         "VmRSS:\t    1748 kB\nRssAnon:\t     116 kB\nCpus_allowed:\tff\n"
                         "Groups:\t \n";
    const char *rollup = "55b192b81000-7fff827ae000 ---p 00000000 00:00 0      [rollup]\n"
                         "Rss:                1668 kB\nAnonymous:           116 kB\n"
                         "AnonHugePages:         0 kB\n";
    struct st_kvlist s = {0}, r = {0};
    struct st_diags d = {0};
    char name[64];
    uint64_t v = 0;
    CHECK_EQ(st_procfs_parse_status(status, "status", &s, name, sizeof(name), &d), 0);
    CHECK(strcmp(name, "cat") == 0);
    CHECK(st_kv_get(&s, "VmRSS", &v) && v == 1748);
    CHECK(st_kv_get(&s, "Umask", &v) && v == 22); /* numeric lines are all kept */
    CHECK(!st_kv_get(&s, "State", &v));
    CHECK_EQ(st_procfs_parse_smaps_rollup(rollup, "rollup", &r, &d), 0);
    dump_diags(&d);
    CHECK(st_kv_get(&r, "Anonymous", &v) && v == 116);
    CHECK(st_kv_get(&r, "AnonHugePages", &v) && v == 0);
    st_kv_free(&s);
    st_kv_free(&r);
    st_diags_free(&d);
}

/* ---- slabinfo ---- */

TEST(slabinfo_all_real_samples)
{
    /* caches per sample: lines minus the two header lines */
    static const struct {
        const char *rel;
        size_t caches;
    } s[] = {{"prometheus/proc/slabinfo", 300},      {"pcp-16g/proc/slabinfo", 136},
             {"pcp-empty-zones/proc/slabinfo", 120}, {"healthy/proc/slabinfo", 126},
             {"pcp-numa/proc/slabinfo", 292},        {"hotsos-kvm/proc/slabinfo", 211}};
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
        struct st_slabinfo sl = {0};
        struct st_diags d = {0};
        char *t = fixture(s[i].rel);
        REQUIRE(t);
        CHECK_EQ(st_procfs_parse_slabinfo(t, s[i].rel, &sl, &d), 0);
        dump_diags(&d);
        CHECK_EQ(sl.n, s[i].caches);
        st_procfs_free_slabinfo(&sl);
        st_diags_free(&d);
        free(t);
    }
}

TEST(slabinfo_fields)
{
    const char *t =
        "slabinfo - version: 2.1\n"
        "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : "
        "tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> "
        "<sharedavail>\n"
        "gfs2_glock(aspace)      0      0   1056   31    8 : tunables    0    0    0 : slabdata "
        "     0      0      0\n"
        "dentry             20897  21021    192   21    1 : tunables    0    0    0 : slabdata "
        "  1001   1001      0\n"
        "kmalloc-64 100 128 64 64 1 : tunables 120 60 8 : slabdata 2 2 0 : globalstat 9 9 9 9 "
        "0 0 0 0 0 : cpustat 1 2 3 4\n"
        "broken 1 2\n";
    struct st_slabinfo s = {0};
    struct st_diags d = {0};
    CHECK_EQ(st_procfs_parse_slabinfo(t, "slabinfo", &s, &d), 1);
    CHECK(diag_has(&d, "slabinfo:6: expected a cache name and five numbers"));
    REQUIRE(s.n == 3);
    CHECK(strcmp(s.v[0].name, "gfs2_glock(aspace)") == 0);
    CHECK_EQ(s.v[1].active_objs, 20897);
    CHECK_EQ(s.v[1].num_objs, 21021);
    CHECK_EQ(s.v[1].objsize, 192);
    CHECK_EQ(s.v[1].objperslab, 21);
    CHECK_EQ(s.v[1].pagesperslab, 1);
    CHECK_EQ(s.v[1].num_slabs, 1001);
    CHECK_EQ(s.v[2].num_slabs, 2); /* statistics columns after slabdata */
    st_procfs_free_slabinfo(&s);
    st_diags_free(&d);
}

TEST(slabinfo_wrong_version)
{
    struct st_slabinfo s = {0};
    struct st_diags d = {0};
    CHECK_EQ(st_procfs_parse_slabinfo("slabinfo - version: 1.1\nx 1 2 3 4 5\n", "sl", &s, &d), 1);
    CHECK(diag_has(&d, "sl:1: not slabinfo version 2.x"));
    CHECK_EQ(s.n, 0);
    st_diags_free(&d);
}

/* ---- one-value files, reading, a whole machine ---- */

TEST(one_value_files)
{
    struct st_diags d = {0};
    long v = 0;
    char c[32];
    CHECK_EQ(st_procfs_parse_long("67584\n", "mfk", &v, &d), 0);
    CHECK_EQ(v, 67584);
    CHECK_EQ(st_procfs_parse_long("ten\n", "wsf", &v, &d), 1);
    CHECK(diag_has(&d, "wsf:1: expected one integer"));
    CHECK_EQ(st_procfs_parse_choice("always [madvise] never\n", "thp", c, sizeof(c), &d), 0);
    CHECK(strcmp(c, "madvise") == 0);
    CHECK_EQ(st_procfs_parse_choice("always defer defer+madvise [madvise] never\n", "thp", c,
                                    sizeof(c), &d),
             0);
    CHECK(strcmp(c, "madvise") == 0);
    CHECK_EQ(st_procfs_parse_choice("always madvise never\n", "thp", c, sizeof(c), &d), 1);
    st_diags_free(&d);
}

TEST(read_missing_file)
{
    char *t = NULL;
    CHECK_EQ(st_procfs_read("/nonexistent-root-for-strata", "proc/buddyinfo", &t, NULL), ENOENT);
    CHECK(t == NULL);
    char path[64];
    st_procfs_path(path, sizeof(path), "/", "proc/x");
    CHECK(strcmp(path, "/proc/x") == 0);
    st_procfs_path(path, sizeof(path), "snap", "proc/x");
    CHECK(strcmp(path, "snap/proc/x") == 0);
}

TEST(machine_load_snapshot)
{
    char root[4096];
    struct st_machine m;
    struct st_diags d = {0};
    CHECK_EQ(st_machine_load(&m, fixture_root(root, sizeof(root), "healthy"), 0, &d), 0);
    dump_diags(&d);
    CHECK(m.files[ST_F_BUDDYINFO].loaded);
    CHECK(!m.files[ST_F_PAGETYPEINFO].loaded);
    CHECK_EQ(m.files[ST_F_PAGETYPEINFO].err, ENOENT);
    CHECK_EQ(m.buddy.n, 3);
    CHECK_EQ(m.zi.n, 3);
    CHECK_EQ(m.extfrag_threshold, 500);
    CHECK(strcmp(m.thp_enabled, "madvise") == 0);
    CHECK_EQ(m.page_size, 4096);
    CHECK(strcmp(m.page_size_from, "snapshot") == 0);
    CHECK(strcmp(m.hostname, "web-healthy") == 0);
    CHECK(strcmp(m.date, "2024-05-01 10:00:00 UTC") == 0);
    st_machine_free(&m);
    st_diags_free(&d);
}

TEST(machine_load_malformed_goes_on)
{
    char root[4096];
    struct st_machine m;
    struct st_diags d = {0};
    int errors = st_machine_load(&m, fixture_root(root, sizeof(root), "malformed"), 0, &d);
    CHECK(errors >= 6);
    CHECK(diag_has(&d, "malformed/proc/buddyinfo:3: a free block count is not a number"));
    CHECK(diag_has(&d, "malformed/proc/vmstat:"));
    CHECK(diag_has(&d, "malformed/proc/sys/vm/watermark_scale_factor:1:"));
    /* the rest is still there */
    CHECK_EQ(m.buddy.n, 3);
    CHECK_EQ(m.files[ST_F_BUDDYINFO].nerrors, 2);
    CHECK_EQ(m.wsf, -1);
    CHECK_EQ(m.min_free_kbytes, 67584);
    CHECK(m.slab.n > 100);
    st_machine_free(&m);
    st_diags_free(&d);
}

TEST(machine_load_page_size_override)
{
    char root[4096];
    struct st_machine m;
    struct st_diags d = {0};
    st_machine_load(&m, fixture_root(root, sizeof(root), "prometheus"), 16384, &d);
    CHECK_EQ(m.page_size, 16384);
    CHECK(strcmp(m.page_size_from, "--page-size") == 0);
    st_machine_free(&m);
    /* no strata-snapshot file and not this machine: 4 KiB assumed */
    st_machine_load(&m, root, 0, &d);
    CHECK_EQ(m.page_size, 4096);
    CHECK(strcmp(m.page_size_from, "assumed") == 0);
    st_machine_free(&m);
    st_diags_free(&d);
}

/* ---- random damage ---- */

typedef int (*parse_fn)(const char *text, struct st_diags *d);

static int p_buddy(const char *t, struct st_diags *d)
{
    struct st_buddyinfo b = {0};
    int e = st_procfs_parse_buddyinfo(t, "f", &b, d);
    for (size_t i = 0; i < b.n; i++)
        if (b.zones[i].norders < 1 || b.zones[i].norders > ST_PROCFS_MAX_ORDERS)
            e = -1000; /* a zone kept with an impossible number of orders */
    st_procfs_free_buddyinfo(&b);
    return e;
}

static int p_pti(const char *t, struct st_diags *d)
{
    struct st_pagetypeinfo p = {0};
    int e = st_procfs_parse_pagetypeinfo(t, "f", &p, d);
    st_procfs_free_pagetypeinfo(&p);
    return e;
}

static int p_zi(const char *t, struct st_diags *d)
{
    struct st_zoneinfo z = {0};
    int e = st_procfs_parse_zoneinfo(t, "f", &z, d);
    st_procfs_free_zoneinfo(&z);
    return e;
}

static int p_mem(const char *t, struct st_diags *d)
{
    struct st_kvlist m = {0};
    int e = st_procfs_parse_meminfo(t, "f", &m, d);
    st_kv_free(&m);
    return e;
}

static int p_slab(const char *t, struct st_diags *d)
{
    struct st_slabinfo s = {0};
    int e = st_procfs_parse_slabinfo(t, "f", &s, d);
    st_procfs_free_slabinfo(&s);
    return e;
}

/* Overwrite, delete or cut at random places; '\0' never enters the text. */
static void mutate(char *t, size_t *len)
{
    static const char alphabet[] = " \t\n0123456789:,()>-xNodezone";
    int edits = (int)test_rand_range(1, 4);
    for (int i = 0; i<edits && * len> 0; i++) {
        size_t at = test_rand_range(0, *len - 1);
        switch (test_rand_range(0, 2)) {
        case 0:
            t[at] = alphabet[test_rand_range(0, sizeof(alphabet) - 2)];
            break;
        case 1:
            memmove(t + at, t + at + 1, *len - at);
            (*len)--;
            break;
        default:
            *len = at;
            t[at] = '\0';
        }
    }
}

TEST(parsers_survive_random_damage)
{
    /* every error a parser counts comes with exactly one message, whatever
     * the damage; and nothing crashes (run under the sanitizers too) */
    static const struct {
        const char *rel;
        parse_fn fn;
    } files[] = {{"hotsos-kvm/proc/buddyinfo", p_buddy},
                 {"hotsos-kvm/proc/pagetypeinfo", p_pti},
                 {"hotsos-kvm/proc/zoneinfo", p_zi},
                 {"hotsos-kvm/proc/meminfo", p_mem},
                 {"healthy/proc/slabinfo", p_slab}};
    test_seed("mutations");
    long steps = test_steps(300);
    for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
        char *orig = fixture(files[f].rel);
        REQUIRE(orig);
        size_t olen = strlen(orig);
        char *t = malloc(olen + 1);
        REQUIRE(t);
        for (long s = 0; s < steps; s++) {
            size_t len = olen;
            memcpy(t, orig, olen + 1);
            mutate(t, &len);
            struct st_diags d = {0};
            int e = files[f].fn(t, &d);
            REQUIRE(e >= 0);
            REQUIRE((size_t)e == d.n);
            st_diags_free(&d);
        }
        free(t);
        free(orig);
    }
}
