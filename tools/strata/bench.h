/* SPDX-License-Identifier: MIT */
/*
 * bench.h — the parts of `strata bench` (cmd_bench.c): the suite of
 * workloads and the allocators found on the machine (bench_suite.c), one
 * measured process (bench_run.c), and the statistics and reports: table,
 * JSON, SVG chart (bench_report.c).
 *
 * A run is one process: a workload program started with LD_PRELOAD set to
 * the allocator's library (nothing for glibc), its wall time taken around
 * fork and wait4, its CPU time and peak RSS from wait4's rusage, and the
 * key=value figures of its one result line.
 */
#ifndef STRATA_TOOL_BENCH_H
#define STRATA_TOOL_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define BENCH_MAX_KEYS 48    /* numeric figures kept per run */
#define BENCH_MAX_ALLOCS 16  /* allocators in one comparison */
#define BENCH_MAX_ARGS 32    /* arguments of one workload program */
#define BENCH_PATH 1024

/* ---- allocators ---- */

enum bench_alloc_state {
    BENCH_ALLOC_OK,      /* found and loads */
    BENCH_ALLOC_MISSING, /* not installed / not built: a note, not a failure */
    BENCH_ALLOC_BROKEN,  /* named or found, but does not load: a failure */
};

struct bench_alloc {
    char name[32];
    char path[BENCH_PATH]; /* the library to preload; "" for glibc */
    const char *package;   /* what provides it (for the "not found" note), or NULL */
    bool explicit;         /* named with --alloc */
    enum bench_alloc_state state;
    char why[512]; /* when not OK: what is wrong */
};

/* Fill a[] with the built-in allocators (glibc, strata, jemalloc, tcmalloc,
 * mimalloc), found or not; exe_dir is the strata program's directory.
 * Returns how many. */
size_t st_bench_builtin_allocs(struct bench_alloc *a, size_t max, const char *exe_dir);
/* Check that a's library really replaces malloc in a workload program
 * (probe is bench-wl_alloc_free_simple's path); sets a->state and a->why. */
void st_bench_probe_alloc(struct bench_alloc *a, const char *probe);

/* ---- workloads ---- */

struct bench_workload {
    const char *name;    /* on the command line and in reports */
    const char *program; /* bench-wl_* file name, or the real program's name */
    const char *what;    /* one line for the table */
    const char *full;    /* arguments for a full run; "{T}" is --threads */
    const char *quick;   /* arguments for --quick */
    const char *figures; /* "key:label:fmt ..." shown in the table ("_" in a label is
                          * a space); fmt as st_bench_format */
    bool real;           /* a real program (sqlite3, python3): prepared by the suite */
};

extern const struct bench_workload st_bench_workloads[];
extern const size_t st_bench_nworkloads;

/* A workload made ready to run: its argv, stdin and environment. */
struct bench_job {
    const struct bench_workload *w;
    char what[200];        /* w->what with {T} and {ROWS} filled in */
    char path[BENCH_PATH]; /* the program */
    char *argv[BENCH_MAX_ARGS + 2];
    char argbuf[2048];
    char stdin_path[BENCH_PATH]; /* "" : /dev/null */
    const char *env;             /* one extra "KEY=VALUE", or NULL */
    bool ready;
    char why[512]; /* when not ready: e.g. "skipped: sqlite3 not found (...)" */
    bool skipped;  /* not ready because an optional program is absent */
};

/* Prepare job for w: find the program (bench_dir for workload programs,
 * PATH for real ones), expand its arguments, write real programs' input
 * files into tmpdir. */
void st_bench_prepare(struct bench_job *job, const struct bench_workload *w, const char *bench_dir,
                      const char *tmpdir, bool quick, int threads);
/* The directory holding the workload programs: $STRATA_BENCH_DIR, else
 * exe_dir or exe_dir/../libexec/strata. Fills dir; false if none. */
bool st_bench_find_dir(char *dir, size_t n, const char *exe_dir);
/* Find name in $PATH; false if absent. */
bool st_bench_which(const char *name, char *out, size_t n);

/* ---- one process ---- */

struct bench_kv {
    char key[40];
    double value;
};

struct bench_run {
    bool done; /* ran (ok or not) */
    bool ok;   /* exit 0, a result line where one is expected, right malloc */
    char error[320];
    double wall_s, user_s, sys_s;
    long maxrss_kib;
    int exit_code; /* -1 if killed */
    int signal;    /* the killing signal, 0 if it exited */
    bool timed_out;
    size_t nkv;
    struct bench_kv kv[BENCH_MAX_KEYS];
    char malloc_from[BENCH_PATH];
};

struct bench_spawn {
    char *const *argv;      /* argv[0]: the program's path */
    const char *preload;    /* LD_PRELOAD, or NULL/"" for none */
    const char *env;        /* an extra "KEY=VALUE", or NULL */
    const char *stdin_path; /* NULL or "": /dev/null */
    double timeout_s;       /* kill after this long */
    char *out;              /* stdout kept here (NUL-terminated, cut at outsz) */
    size_t outsz;
    char *err; /* the tail of stderr kept here */
    size_t errsz;
};

/* Run one process and fill r's times, rusage and exit status (not its
 * figures). Returns 0, or -1 if it could not be started (r->error says). */
int st_bench_spawn(const struct bench_spawn *s, struct bench_run *r);
/* Parse the last "key=value ..." line of out into r's figures and
 * malloc_from; false if there is none. */
bool st_bench_parse(const char *out, struct bench_run *r);
/* A figure of r, or NaN. */
double st_bench_get(const struct bench_run *r, const char *key);
/* Describe how r failed in r->error (exit code, signal, timeout, stderr). */
void st_bench_describe_failure(struct bench_run *r, const char *err);
/* True if the two paths name the same file. */
bool st_bench_same_file(const char *a, const char *b);

/* ---- results and reports ---- */

struct bench_results {
    const struct bench_alloc *allocs; /* only those that ran */
    size_t nallocs;
    const struct bench_job *jobs;
    size_t njobs;
    size_t runs;
    size_t ref; /* index of the reference allocator */
    int threads;
    bool quick;
    struct bench_run *run; /* [job][alloc][run] */
    char machine[256];     /* "host, CPU model, N CPUs, Linux x.y" */
    char date[64];
    char load_start[64], load_end[64];
};

struct bench_run *st_bench_at(const struct bench_results *res, size_t job, size_t alloc, size_t run);

/* The median (and spread (max-min)/median) of the successful runs of one
 * cell, for wall ("wall"), CPU ("cpu"), max RSS in bytes ("rss") or any
 * figure key; false if no run succeeded. */
bool st_bench_median(const struct bench_results *res, size_t job, size_t alloc, const char *what,
                     double *median, double *spread);
/* Geometric mean over the jobs of alloc's ratio to the reference for
 * "wall", "cpu" or "rss"; *count: the jobs where both succeeded. */
double st_bench_geomean(const struct bench_results *res, size_t alloc, const char *what,
                        size_t *count);

void st_bench_print_table(FILE *out, const struct bench_results *res);
/* 0, or -1 if the file could not be written (errno). */
int st_bench_write_json(const char *path, const struct bench_results *res,
                        const struct bench_alloc *all, size_t nall);
int st_bench_write_svg(const char *path, const struct bench_results *res);
/* Format a value for the table: fmt 'r' rate (1.23M), 'b' bytes (12.3 MiB),
 * 'f' three decimals, 'x' ratio (1.23), 'n' two decimals, 's' seconds. */
void st_bench_format(char *buf, size_t n, double v, char fmt);

#endif /* STRATA_TOOL_BENCH_H */
