/* SPDX-License-Identifier: MIT */
/*
 * procfs.h — tolerant parsers for the kernel's memory reports under /proc
 * and /sys, and a loader that reads them all from a root directory ("/" for
 * this machine, or a snapshot copied from another one).
 *
 * Every parser takes the text of one file (so tests can feed fixtures), the
 * name to use in messages, the struct to fill and a diagnostics list. A
 * malformed line adds "FILE:LINE: what is wrong" to the list and parsing goes
 * on with the next line. Counts are never assumed: buddyinfo may have any
 * number of orders, any zone names, any number of nodes. Arrays grow as
 * needed; the few fixed limits (orders per line, name lengths) are far above
 * what kernels print and are reported as errors when exceeded.
 *
 * Cost: one pass over each file; memory proportional to its size.
 */
#ifndef STRATA_TOOL_PROCFS_H
#define STRATA_TOOL_PROCFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ST_PROCFS_MAX_ORDERS 32 /* columns per buddyinfo/pagetypeinfo line */
#define ST_PROCFS_NAME_LEN 64   /* zone, migrate type, key and cache names */
#define ST_PROCFS_MAX_TYPES 16  /* migrate types in the block-count table */
#define ST_PROCFS_MAX_PROT 16   /* entries of a zoneinfo protection array */

/* Diagnostics: "FILE:LINE: message" strings, in the order found. */
struct st_diags {
    char **msgs;
    size_t n, cap;
};

/* Append a message; line 0 means the whole file ("FILE: message"). */
void st_diags_add(struct st_diags *d, const char *file, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void st_diags_free(struct st_diags *d);

/* ---- /proc/buddyinfo: free blocks per order per zone ---- */
struct st_buddy_zone {
    int node;
    char zone[ST_PROCFS_NAME_LEN];
    int norders;  /* columns read on this line */
    bool partial; /* the line was cut short (truncated file) */
    uint64_t nr_free[ST_PROCFS_MAX_ORDERS];
};

struct st_buddyinfo {
    struct st_buddy_zone *zones;
    size_t n, cap;
    int max_orders; /* the largest norders of any line */
};

/* Parse buddyinfo text; returns the number of errors added to d. */
int st_procfs_parse_buddyinfo(const char *text, const char *file, struct st_buddyinfo *out,
                              struct st_diags *d);
void st_procfs_free_buddyinfo(struct st_buddyinfo *b);
/* The zone of that node and name, or NULL. */
const struct st_buddy_zone *st_procfs_find_buddy(const struct st_buddyinfo *b, int node,
                                                 const char *zone);

/* ---- /proc/pagetypeinfo: free blocks per order per migrate type ---- */
struct st_pti_free {
    int node;
    char zone[ST_PROCFS_NAME_LEN];
    char type[ST_PROCFS_NAME_LEN];
    int norders;
    uint64_t nr_free[ST_PROCFS_MAX_ORDERS];
    uint32_t capped; /* bit o: the kernel stopped counting at order o (">100000") */
};

struct st_pti_blocks {
    int node;
    char zone[ST_PROCFS_NAME_LEN];
    int ntypes;
    uint64_t count[ST_PROCFS_MAX_TYPES]; /* pageblocks per type, in type_names order */
};

struct st_pagetypeinfo {
    int pageblock_order;      /* -1 when not given */
    uint64_t pages_per_block; /* 0 when not given */
    struct st_pti_free *free;
    size_t nfree, capfree;
    struct st_pti_blocks *blocks;
    size_t nblocks, capblocks;
    int ntypes; /* columns of the "Number of blocks type" table */
    char type_names[ST_PROCFS_MAX_TYPES][ST_PROCFS_NAME_LEN];
};

int st_procfs_parse_pagetypeinfo(const char *text, const char *file, struct st_pagetypeinfo *out,
                                 struct st_diags *d);
void st_procfs_free_pagetypeinfo(struct st_pagetypeinfo *p);

/* ---- /proc/zoneinfo: watermarks and sizes per zone ---- */
enum st_zi_field {
    ST_ZI_FREE = 1u << 0,
    ST_ZI_MIN = 1u << 1,
    ST_ZI_LOW = 1u << 2,
    ST_ZI_HIGH = 1u << 3,
    ST_ZI_SPANNED = 1u << 4,
    ST_ZI_PRESENT = 1u << 5,
    ST_ZI_MANAGED = 1u << 6,
    ST_ZI_PROTECTION = 1u << 7,
    ST_ZI_BOOST = 1u << 8,
    ST_ZI_PROMO = 1u << 9,
    ST_ZI_CMA = 1u << 10,
};
#define ST_ZI_CORE (ST_ZI_FREE | ST_ZI_MIN | ST_ZI_LOW | ST_ZI_HIGH | ST_ZI_MANAGED)

struct st_zi_zone {
    int node;
    char zone[ST_PROCFS_NAME_LEN];
    unsigned seen; /* st_zi_field bits of the lines found */
    uint64_t free, min, low, high, spanned, present, managed, boost, promo, cma;
    int nprotection;
    uint64_t protection[ST_PROCFS_MAX_PROT]; /* lowmem_reserve, one per zone index */
};

struct st_zoneinfo {
    struct st_zi_zone *zones;
    size_t n, cap;
};

int st_procfs_parse_zoneinfo(const char *text, const char *file, struct st_zoneinfo *out,
                             struct st_diags *d);
void st_procfs_free_zoneinfo(struct st_zoneinfo *z);
const struct st_zi_zone *st_procfs_find_zi(const struct st_zoneinfo *z, int node, const char *zone);

/* ---- key/value files: meminfo (kB), vmstat, /proc/PID/status ---- */
struct st_kv {
    char key[ST_PROCFS_NAME_LEN];
    uint64_t value;
};

struct st_kvlist {
    struct st_kv *v;
    size_t n, cap;
};

/* "Key:   123 kB" lines; the value is in kB where the line says kB. */
int st_procfs_parse_meminfo(const char *text, const char *file, struct st_kvlist *out,
                            struct st_diags *d);
/* "key 123" lines. */
int st_procfs_parse_vmstat(const char *text, const char *file, struct st_kvlist *out,
                           struct st_diags *d);
/* /proc/PID/smaps_rollup: its mapping header line, then meminfo-style lines. */
int st_procfs_parse_smaps_rollup(const char *text, const char *file, struct st_kvlist *out,
                                 struct st_diags *d);
/* /proc/PID/status: numeric lines are kept, text ones skipped; Name into name. */
int st_procfs_parse_status(const char *text, const char *file, struct st_kvlist *out, char *name,
                           size_t name_len, struct st_diags *d);
bool st_kv_get(const struct st_kvlist *l, const char *key, uint64_t *value);
/* The value of key, or def when absent. */
uint64_t st_kv_get_or(const struct st_kvlist *l, const char *key, uint64_t def);
/* Sum of the values of every key starting with prefix; false if none. */
bool st_kv_sum_prefix(const struct st_kvlist *l, const char *prefix, uint64_t *sum);
void st_kv_free(struct st_kvlist *l);

/* ---- /proc/slabinfo version 2.1 ---- */
struct st_slabinfo_cache {
    char name[ST_PROCFS_NAME_LEN];
    uint64_t active_objs, num_objs, objsize, objperslab, pagesperslab;
    uint64_t active_slabs, num_slabs;
};

struct st_slabinfo {
    struct st_slabinfo_cache *v;
    size_t n, cap;
};

int st_procfs_parse_slabinfo(const char *text, const char *file, struct st_slabinfo *out,
                             struct st_diags *d);
void st_procfs_free_slabinfo(struct st_slabinfo *s);

/* ---- one-value files of /proc/sys/vm and /sys/kernel/mm ---- */
/* A file holding one integer: 0, or the number of errors added. */
int st_procfs_parse_long(const char *text, const char *file, long *value, struct st_diags *d);
/* "always [madvise] never": copy the bracketed choice into out. */
int st_procfs_parse_choice(const char *text, const char *file, char *out, size_t out_len,
                           struct st_diags *d);

/* ---- reading files ---- */
/* Read ROOT/REL (REL like "proc/buddyinfo") into a NUL-terminated malloc'd
 * buffer. Returns 0, or a positive errno (ENOENT, EACCES, ...). */
int st_procfs_read(const char *root, const char *rel, char **text, size_t *len);
/* "ROOT/REL" into buf, without doubling the slash when root is "/". */
void st_procfs_path(char *buf, size_t n, const char *root, const char *rel);

/* ---- a whole machine ---- */
/* What became of one file. */
struct st_file {
    const char *rel; /* "proc/buddyinfo" */
    int err;         /* 0, or the errno that prevented reading it */
    int nerrors;     /* malformed lines found */
    bool loaded;     /* read (possibly with errors) */
};

enum st_machine_file {
    ST_F_BUDDYINFO,
    ST_F_PAGETYPEINFO,
    ST_F_ZONEINFO,
    ST_F_MEMINFO,
    ST_F_VMSTAT,
    ST_F_SLABINFO,
    ST_F_MIN_FREE_KBYTES,
    ST_F_EXTFRAG_THRESHOLD,
    ST_F_PROACTIVENESS,
    ST_F_WSF,
    ST_F_THP_ENABLED,
    ST_F_THP_DEFRAG,
    ST_F_COUNT
};

struct st_machine {
    const char *root;
    struct st_file files[ST_F_COUNT];
    struct st_buddyinfo buddy;
    struct st_pagetypeinfo pti;
    struct st_zoneinfo zi;
    struct st_kvlist meminfo, vmstat;
    struct st_slabinfo slab;
    long min_free_kbytes, extfrag_threshold, proactiveness, wsf; /* -1: unknown */
    char thp_enabled[32], thp_defrag[32];                        /* "" : unknown */
    char hostname[128], kernel[128], date[64];
    long page_size;             /* bytes */
    const char *page_size_from; /* "snapshot", "this machine", "--page-size", "assumed" */
};

/* Load every file that exists under root; missing files are recorded, not
 * fatal. page_size 0: from the snapshot's strata-snapshot file, or this
 * machine's when root is "/", else 4096. Returns the number of malformed
 * lines found (each also added to d). */
int st_machine_load(struct st_machine *m, const char *root, long page_size, struct st_diags *d);
void st_machine_free(struct st_machine *m);

#endif /* STRATA_TOOL_PROCFS_H */
