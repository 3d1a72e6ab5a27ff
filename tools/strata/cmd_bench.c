/* SPDX-License-Identifier: MIT */
/*
 * cmd_bench.c — `strata bench`: run the suite of allocation workloads
 * against every allocator found on the machine (glibc, strata, jemalloc,
 * tcmalloc, mimalloc, and any named with --alloc), each run in its own
 * process loaded the same way (LD_PRELOAD; none for glibc), and report
 * medians over repeated runs with their spread, as a table, JSON and an
 * SVG chart. Runs are interleaved — for each workload, run 1 of every
 * allocator, then run 2 of every allocator, … with the allocators' order
 * rotated each time — so drift of the machine hits all alike.
 * `--callgrind` instead counts instructions per malloc+free pair.
 *
 * This file holds the options and the order of the runs; the suite and
 * the allocators are in bench_suite.c, one run in bench_run.c, the
 * figures and reports in bench_report.c.
 */
#define _GNU_SOURCE /* mkdtemp */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "commands.h"
#include "json.h"

#define OUT_SIZE 65536

struct options {
    struct bench_alloc extra[BENCH_MAX_ALLOCS];
    size_t nextra;
    const char *allocs; /* built-in allocators to use, or NULL: all found */
    const char *only;   /* workloads, or NULL: all */
    const char *ref;
    long runs; /* 0: 5, or 3 with --quick */
    int threads;
    bool quick, callgrind, list;
    const char *json, *svg, *bench_dir;
    double timeout;
};

static void usage(FILE *out)
{
    fputs("usage: strata bench [OPTIONS]\n"
          "\n"
          "Compare malloc implementations on a suite of allocation workloads, each run in\n"
          "its own process with the allocator preloaded (LD_PRELOAD; none for glibc).\n"
          "\n"
          "  --alloc NAME=PATH  also measure the malloc library PATH (repeatable)\n"
          "  --allocs LIST      built-in allocators to use, comma-separated (default: all\n"
          "                     found of glibc,strata,jemalloc,tcmalloc,mimalloc)\n"
          "  --ref NAME         the reference of the ratios (default mimalloc, else glibc)\n"
          "  --only W1,W2       run only these workloads (--list names them)\n"
          "  --runs N           runs per workload and allocator (default 5; 3 with --quick)\n"
          "  --threads N        threads of the threaded workloads (default 2)\n"
          "  --quick            smaller parameters and 3 runs: about a minute in all\n"
          "  --json FILE        write every raw run, the medians and the summary as JSON\n"
          "  --svg FILE         write a chart: time and RSS relative to the reference\n"
          "  --timeout S        kill a run after S seconds (default 300; 60 with --quick)\n"
          "  --callgrind        count instructions per malloc+free pair (sizes 16, 64,\n"
          "                     256) under valgrind for every allocator, instead\n"
          "  --bench-dir DIR    where the bench-wl_* programs are (default: beside strata,\n"
          "                     or ../libexec/strata; or $STRATA_BENCH_DIR)\n"
          "  --list             list the workloads and allocators found, and exit\n"
          "  --help             this text\n"
          "\n"
          "strata's library: libstrata.so beside the strata program or in ../lib, or\n"
          "$STRATA_LIB. Exit status: 0 all ran, 1 something failed (a library that does\n"
          "not load, a run that crashed; the rest is still reported), 2 bad usage.\n",
          out);
}

/* ------------------------------------------------------------------ */
/* options                                                             */

/* If argv[*i] is --name or --name=VALUE, return the value (taking the next
 * argument for the first form) and advance *i; NULL if it is not. A
 * missing value sets *bad. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, bool *bad)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0) return NULL;
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (argv[*i][n] != 0) return NULL;
    if (*i + 1 >= argc) {
        fprintf(stderr, "strata bench: %s needs a value\n", name);
        *bad = true;
        return NULL;
    }
    return argv[++*i];
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi) return false;
    *out = v;
    return true;
}

static bool add_alloc(struct options *o, const char *spec)
{
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || !eq[1] || (size_t)(eq - spec) >= sizeof(o->extra[0].name) ||
        o->nextra >= BENCH_MAX_ALLOCS - 5) {
        fprintf(stderr, "strata bench: --alloc wants NAME=PATH (a name of up to 31 characters)\n");
        return false;
    }
    struct bench_alloc *a = &o->extra[o->nextra++];
    memset(a, 0, sizeof(*a));
    snprintf(a->name, sizeof(a->name), "%.*s", (int)(eq - spec), spec);
    snprintf(a->path, sizeof(a->path), "%s", eq + 1);
    a->explicit = true;
    return true;
}

/* One option at argv[*i]; false on bad usage. */
static bool parse_one(struct options *o, int argc, char **argv, int *i)
{
    bool bad = false;
    const char *v;
    long n;
    const char *a = argv[*i];
    if (strcmp(a, "--quick") == 0) return o->quick = true;
    if (strcmp(a, "--callgrind") == 0) return o->callgrind = true;
    if (strcmp(a, "--list") == 0) return o->list = true;
    if ((v = opt_value(argc, argv, i, "--alloc", &bad))) return add_alloc(o, v);
    if ((v = opt_value(argc, argv, i, "--allocs", &bad))) return (o->allocs = v), true;
    if ((v = opt_value(argc, argv, i, "--only", &bad))) return (o->only = v), true;
    if ((v = opt_value(argc, argv, i, "--ref", &bad))) return (o->ref = v), true;
    if ((v = opt_value(argc, argv, i, "--json", &bad))) return (o->json = v), true;
    if ((v = opt_value(argc, argv, i, "--svg", &bad))) return (o->svg = v), true;
    if ((v = opt_value(argc, argv, i, "--bench-dir", &bad))) return (o->bench_dir = v), true;
    if ((v = opt_value(argc, argv, i, "--runs", &bad))) {
        if (parse_long(v, 1, 1000, &o->runs)) return true;
        fprintf(stderr, "strata bench: --runs wants 1..1000, not '%s'\n", v);
        return false;
    }
    if ((v = opt_value(argc, argv, i, "--threads", &bad))) {
        if (parse_long(v, 1, 1024, &n)) return (o->threads = (int)n), true;
        fprintf(stderr, "strata bench: --threads wants 1..1024, not '%s'\n", v);
        return false;
    }
    if ((v = opt_value(argc, argv, i, "--timeout", &bad))) {
        if (parse_long(v, 1, 86400, &n)) return (o->timeout = (double)n), true;
        fprintf(stderr, "strata bench: --timeout wants 1..86400 seconds, not '%s'\n", v);
        return false;
    }
    if (!bad) fprintf(stderr, "strata bench: unknown option '%s'\n", a);
    return false;
}

/* 0 to go on, 1 after --help, 2 on bad usage. */
static int parse_options(struct options *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    o->threads = 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 1;
        }
        if (!parse_one(o, argc, argv, &i)) {
            fputs("(strata bench --help lists the options)\n", stderr);
            return 2;
        }
    }
    if (o->runs == 0) o->runs = o->quick ? 3 : 5;
    if (o->timeout == 0) o->timeout = o->quick ? 60 : 300;
    return 0;
}

/* True if name is one of the comma-separated items of list. */
static bool in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, name, n) == 0) return true;
        p += len + (p[len] == ',');
    }
    return false;
}

/* Every item of list must be one of names[]; false (and a message) if not. */
static bool check_list(const char *list, const char *what, const char *const *names, size_t n)
{
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        bool known = false;
        for (size_t i = 0; i < n && !known; i++)
            known = strlen(names[i]) == len && strncmp(p, names[i], len) == 0;
        if (!known) {
            fprintf(stderr, "strata bench: unknown %s '%.*s'; known:", what, (int)len, p);
            for (size_t i = 0; i < n; i++)
                fprintf(stderr, " %s", names[i]);
            fputc('\n', stderr);
            return false;
        }
        p += len + (p[len] == ',');
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* the machine                                                         */

static void exe_dir(char *dir, size_t n)
{
    char buf[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (len <= 0) {
        snprintf(dir, n, ".");
        return;
    }
    buf[len] = 0;
    char *slash = strrchr(buf, '/');
    if (slash) *slash = 0;
    snprintf(dir, n, "%s", buf[0] ? buf : "/");
}

static void read_line(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "r");
    buf[0] = 0;
    if (f && fgets(buf, (int)n, f)) buf[strcspn(buf, "\n")] = 0;
    if (f) fclose(f);
}

static void load_average(char *buf, size_t n)
{
    char line[128];
    read_line("/proc/loadavg", line, sizeof(line));
    double a = 0, b = 0, c = 0;
    if (sscanf(line, "%lf %lf %lf", &a, &b, &c) == 3)
        snprintf(buf, n, "%.2f %.2f %.2f", a, b, c);
    else
        snprintf(buf, n, "unknown");
}

static void cpu_model(char *buf, size_t n)
{
    char line[256];
    snprintf(buf, n, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof(line), f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon) {
            colon += 1 + (colon[1] == ' ');
            colon[strcspn(colon, "\n")] = 0;
            snprintf(buf, n, "%s", colon);
            break;
        }
    }
    if (f) fclose(f);
}

static void describe_machine(struct bench_results *res)
{
    struct utsname u;
    char cpu[128];
    if (uname(&u) != 0) memset(&u, 0, sizeof(u));
    cpu_model(cpu, sizeof(cpu));
    snprintf(res->machine, sizeof(res->machine), "%.64s, %.80s, %ld CPUs, %.20s %.40s", u.nodename, cpu,
             sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release);
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(res->date, sizeof(res->date), "%Y-%m-%d %H:%M UTC", &tm);
    load_average(res->load_start, sizeof(res->load_start));
}

/* ------------------------------------------------------------------ */
/* allocators and workloads                                            */

static bool names_unique(const struct bench_alloc *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t k = i + 1; k < n; k++)
            if (strcmp(a[i].name, a[k].name) == 0) {
                fprintf(stderr, "strata bench: two allocators named '%s'\n", a[i].name);
                return false;
            }
    return true;
}

/* The allocators to compare: the built-in ones (filtered by --allocs),
 * then --alloc ones; each probed. Notes go to stderr. Returns how many,
 * 0 if two have the same name; *failed is set when one that should work
 * does not. */
static size_t gather_allocs(const struct options *o, struct bench_alloc *all, const char *dir,
                            const char *probe, bool *failed)
{
    size_t n = st_bench_builtin_allocs(all, BENCH_MAX_ALLOCS, dir), kept = 0;
    for (size_t i = 0; i < n; i++)
        if (!o->allocs || in_list(o->allocs, all[i].name)) all[kept++] = all[i];
    for (size_t i = 0; i < o->nextra; i++)
        all[kept++] = o->extra[i];
    if (!names_unique(all, kept)) return 0;
    for (size_t i = 0; i < kept; i++) {
        st_bench_probe_alloc(&all[i], probe);
        if (all[i].state == BENCH_ALLOC_MISSING || (all[i].state == BENCH_ALLOC_OK && all[i].why[0]))
            fprintf(stderr, "strata bench: %s: %s\n", all[i].name, all[i].why);
        if (all[i].state == BENCH_ALLOC_BROKEN) {
            fprintf(stderr, "strata bench: %s: %s\n", all[i].name, all[i].why);
            *failed = true;
        }
    }
    return kept;
}

/* The reference: --ref, else mimalloc, else glibc, else the first. */
static size_t pick_ref(const struct options *o, const struct bench_alloc *a, size_t n, bool *failed)
{
    const char *want[3] = {o->ref, "mimalloc", "glibc"};
    for (int w = 0; w < 3; w++) {
        for (size_t i = 0; want[w] && i < n; i++)
            if (strcmp(a[i].name, want[w]) == 0) return i;
        if (w == 0 && o->ref) {
            fprintf(stderr, "strata bench: reference '%s' is not among the allocators that run\n",
                    o->ref);
            *failed = true;
        }
    }
    return 0;
}

static void list_all(const struct bench_alloc *all, size_t n, const char *bench_dir)
{
    printf("workloads (programs in %s):\n", bench_dir);
    for (size_t i = 0; i < st_bench_nworkloads; i++)
        printf("  %-18s %s\n", st_bench_workloads[i].name, st_bench_workloads[i].what);
    printf("allocators:\n");
    static const char *const state[] = {"ok", "not found", "does not load"};
    for (size_t i = 0; i < n; i++)
        printf("  %-18s %-14s %s\n", all[i].name, state[all[i].state],
               all[i].why[0] ? all[i].why : all[i].path[0] ? all[i].path : "(no preload)");
}

/* ------------------------------------------------------------------ */
/* running                                                             */

struct runner {
    struct bench_results *res;
    char *out, err[4096];
    double timeout;
    size_t done, total;
    bool tty;
};

static void progress(struct runner *rn, size_t j, size_t a, size_t k)
{
    const struct bench_results *res = rn->res;
    rn->done++;
    if (rn->tty)
        fprintf(stderr, "\r\033[K[%zu/%zu] %s: %s, run %zu of %zu", rn->done, rn->total,
                res->jobs[j].w->name, res->allocs[a].name, k + 1, res->runs);
    else
        fprintf(stderr, "[%zu/%zu] %s: %s, run %zu of %zu\n", rn->done, rn->total,
                res->jobs[j].w->name, res->allocs[a].name, k + 1, res->runs);
}

/* Judge a finished run of a workload program: a result line, and malloc
 * from the library it was meant to use. */
static void check_result(struct bench_run *r, const struct bench_job *job,
                         const struct bench_alloc *a, const char *out)
{
    bool parsed = st_bench_parse(out, r);
    if (job->w->real) return;
    if (!parsed)
        snprintf(r->error, sizeof(r->error), "no result line on stdout");
    else if (a->path[0] && !st_bench_same_file(r->malloc_from, a->path))
        snprintf(r->error, sizeof(r->error), "malloc came from %.140s, not %.140s", r->malloc_from,
                 a->path);
    else
        return;
    r->ok = false;
}

static void run_one(struct runner *rn, size_t j, size_t a, size_t k)
{
    struct bench_results *res = rn->res;
    const struct bench_job *job = &res->jobs[j];
    struct bench_run *r = st_bench_at(res, j, a, k);
    struct bench_spawn s = {job->argv,  res->allocs[a].path, job->env,   job->stdin_path,
                            rn->timeout, rn->out,            OUT_SIZE,   rn->err,
                            sizeof(rn->err)};
    progress(rn, j, a, k);
    if (st_bench_spawn(&s, r) != 0) {
        r->done = true;
        return;
    }
    r->ok = !r->timed_out && r->exit_code == 0 && r->signal == 0;
    if (!r->ok)
        st_bench_describe_failure(r, rn->err);
    else
        check_result(r, job, &res->allocs[a], rn->out);
    if (!r->ok && rn->tty) fputc('\n', stderr);
    if (!r->ok)
        fprintf(stderr, "strata bench: %s on %s, run %zu: %s\n", job->w->name, res->allocs[a].name,
                k + 1, r->error);
}

/* Every run, workload by workload; within a workload run k of every
 * allocator before run k+1, starting each round one allocator later. */
static bool run_all(struct bench_results *res, double timeout)
{
    struct runner rn = {res, malloc(OUT_SIZE), "", timeout, 0, 0, isatty(2)};
    if (!rn.out) return false;
    rn.total = res->njobs * res->nallocs * res->runs;
    bool all_ok = true;
    for (size_t j = 0; j < res->njobs; j++)
        for (size_t k = 0; k < res->runs; k++)
            for (size_t i = 0; i < res->nallocs; i++) {
                size_t a = (i + k) % res->nallocs;
                run_one(&rn, j, a, k);
                all_ok &= st_bench_at(res, j, a, k)->ok;
            }
    if (rn.tty) fputs("\r\033[K", stderr);
    free(rn.out);
    return all_ok;
}

/* ------------------------------------------------------------------ */
/* callgrind                                                           */

/* Instructions callgrind counted for one run, or -1. */
static double callgrind_count(const char *valgrind, const char *probe, const char *tmpdir,
                              const struct bench_alloc *a, long size, long iters)
{
    char outfile[BENCH_PATH + 32], s_size[32], s_iters[32], out[4096], err[8192];
    snprintf(outfile, sizeof(outfile), "--callgrind-out-file=%s/callgrind.out", tmpdir);
    snprintf(s_size, sizeof(s_size), "%ld", size);
    snprintf(s_iters, sizeof(s_iters), "%ld", iters);
    /* count only inside malloc and free (and what they call), not the loop */
    char *argv[] = {(char *)valgrind, "--tool=callgrind", "--toggle-collect=malloc",
                    "--toggle-collect=free", outfile, (char *)probe, "--size", s_size,
                    "--iters", s_iters, NULL};
    struct bench_spawn s = {argv, a->path, NULL, NULL, 300, out, sizeof(out), err, sizeof(err)};
    struct bench_run r;
    memset(&r, 0, sizeof(r));
    if (st_bench_spawn(&s, &r) != 0 || r.exit_code != 0 || !st_bench_parse(out, &r)) return -1;
    if (a->path[0] && !st_bench_same_file(r.malloc_from, a->path)) return -1;
    const char *c = strstr(err, "Collected :");
    return c ? strtod(c + strlen("Collected :"), NULL) : -1;
}

static int run_callgrind(const struct options *o, struct bench_alloc *all, size_t n,
                         const char *probe, const char *tmpdir)
{
    static const long sizes[3] = {16, 64, 256};
    const long lo = 100000, hi = 300000;
    char valgrind[BENCH_PATH];
    if (!st_bench_which("valgrind", valgrind, sizeof(valgrind))) {
        fprintf(stderr, "strata bench: valgrind not found (apt-get install valgrind)\n");
        return 1;
    }
    double ipp[BENCH_MAX_ALLOCS][3];
    int rc = 0;
    for (size_t a = 0; a < n; a++)
        for (int s = 0; s < 3; s++) {
            ipp[a][s] = NAN;
            if (all[a].state != BENCH_ALLOC_OK) continue;
            fprintf(stderr, "strata bench: callgrind, %s, %ld B\n", all[a].name, sizes[s]);
            double i1 = callgrind_count(valgrind, probe, tmpdir, &all[a], sizes[s], lo);
            double i2 = callgrind_count(valgrind, probe, tmpdir, &all[a], sizes[s], hi);
            if (i1 < 0 || i2 < 0 || i2 - i1 < (double)(hi - lo)) {
                fprintf(stderr,
                        "strata bench: callgrind: no count for %s (the run failed, or its "
                        "functions are not named malloc and free)\n",
                        all[a].name);
                rc = 1;
            } else {
                ipp[a][s] = (i2 - i1) / (double)(hi - lo);
            }
        }
    printf("instructions per malloc+free pair (callgrind, counting inside malloc and free;\n"
           "bench-wl_alloc_free_simple, difference of %ld and %ld pairs: start-up cancels out)\n",
           hi, lo);
    printf("  %-12s %8s %8s %8s\n", "allocator", "16 B", "64 B", "256 B");
    for (size_t a = 0; a < n; a++) {
        if (all[a].state != BENCH_ALLOC_OK) continue;
        printf("  %-12s", all[a].name);
        for (int s = 0; s < 3; s++)
            if (isfinite(ipp[a][s]))
                printf(" %8.1f", ipp[a][s]);
            else
                printf(" %8s", "-");
        printf("\n");
    }
    if (o->json) {
        FILE *f = fopen(o->json, "w");
        struct st_json j;
        if (f) {
            st_json_init(&j, f, true);
            st_json_begin_object(&j);
            st_json_kv_string(&j, "tool", "strata bench --callgrind");
            st_json_key(&j, "instructions_per_pair");
            st_json_begin_array(&j);
            for (size_t a = 0; a < n; a++)
                for (int s = 0; s < 3 && all[a].state == BENCH_ALLOC_OK; s++) {
                    st_json_begin_object(&j);
                    st_json_kv_string(&j, "allocator", all[a].name);
                    st_json_kv_int(&j, "size", sizes[s]);
                    st_json_kv_double(&j, "instructions", ipp[a][s]);
                    st_json_end_object(&j);
                }
            st_json_end_array(&j);
            st_json_end_object(&j);
        }
        if (!f || st_json_finish(&j) != 0 || fclose(f) != 0) {
            fprintf(stderr, "strata bench: cannot write %s\n", o->json);
            rc = 1;
        }
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* the command                                                         */

static void remove_tmpdir(const char *dir)
{
    static const char *const files[] = {"bench.sql", "bench.py", "callgrind.out"};
    char path[BENCH_PATH + 32];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%.1000s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* Prepare the chosen workloads; not-ready ones are reported and left out.
 * Returns how many are ready. */
static size_t prepare_jobs(const struct options *o, struct bench_job *jobs, const char *bench_dir,
                           const char *tmpdir, bool *failed)
{
    size_t n = 0;
    for (size_t i = 0; i < st_bench_nworkloads; i++) {
        const struct bench_workload *w = &st_bench_workloads[i];
        if (o->only && !in_list(o->only, w->name)) continue;
        st_bench_prepare(&jobs[n], w, bench_dir, tmpdir, o->quick, o->threads);
        if (jobs[n].ready) {
            n++;
            continue;
        }
        fprintf(stderr, "strata bench: %s: %s\n", w->name, jobs[n].why);
        if (!jobs[n].skipped) *failed = true;
    }
    return n;
}

static int report(const struct options *o, struct bench_results *res, const struct bench_alloc *all,
                  size_t nall)
{
    int rc = 0;
    load_average(res->load_end, sizeof(res->load_end));
    st_bench_print_table(stdout, res);
    for (size_t i = 0; i < nall; i++)
        if (all[i].state != BENCH_ALLOC_OK) printf("not compared: %s: %s\n", all[i].name, all[i].why);
    fflush(stdout);
    if (o->json && st_bench_write_json(o->json, res, all, nall) != 0) {
        fprintf(stderr, "strata bench: cannot write %s: %s\n", o->json, strerror(errno));
        rc = 1;
    }
    if (o->svg && st_bench_write_svg(o->svg, res) != 0) {
        fprintf(stderr, "strata bench: cannot write %s: %s\n", o->svg, strerror(errno));
        rc = 1;
    }
    return rc;
}

/* Everything after the options: allocators, workloads, runs, reports. */
static int bench(const struct options *o, const char *dir, const char *bench_dir, const char *tmpdir)
{
    bool failed = false;
    char probe[BENCH_PATH + 40];
    snprintf(probe, sizeof(probe), "%.1000s/bench-wl_alloc_free_simple", bench_dir);
    struct bench_alloc all[BENCH_MAX_ALLOCS], ok[BENCH_MAX_ALLOCS];
    size_t nall = gather_allocs(o, all, dir, probe, &failed), nok = 0;
    if (nall == 0) return 2;
    if (o->list) {
        list_all(all, nall, bench_dir);
        return 0;
    }
    if (o->callgrind) return run_callgrind(o, all, nall, probe, tmpdir) | (failed ? 1 : 0);
    for (size_t i = 0; i < nall; i++)
        if (all[i].state == BENCH_ALLOC_OK) ok[nok++] = all[i];
    struct bench_job *jobs = calloc(st_bench_nworkloads, sizeof(*jobs));
    size_t njobs = jobs ? prepare_jobs(o, jobs, bench_dir, tmpdir, &failed) : 0;
    if (nok == 0 || njobs == 0) {
        fprintf(stderr, "strata bench: nothing to run (%zu allocators, %zu workloads ready)\n", nok,
                njobs);
        free(jobs);
        return 1;
    }
    struct bench_results res = {.allocs = ok, .nallocs = nok, .jobs = jobs, .njobs = njobs,
                                .runs = (size_t)o->runs, .threads = o->threads, .quick = o->quick};
    res.ref = pick_ref(o, ok, nok, &failed);
    res.run = calloc(njobs * nok * res.runs, sizeof(*res.run));
    if (!res.run) {
        free(jobs);
        return 1;
    }
    describe_machine(&res);
    if (!run_all(&res, o->timeout)) failed = true;
    if (report(o, &res, all, nall) != 0) failed = true;
    free(res.run);
    free(jobs);
    return failed ? 1 : 0;
}

int cmd_bench(int argc, char **argv)
{
    struct options o;
    int rc = parse_options(&o, argc, argv);
    if (rc) return rc == 1 ? 0 : 2;
    const char *wl_names[64], *alloc_names[5] = {"glibc", "strata", "jemalloc", "tcmalloc",
                                                 "mimalloc"};
    for (size_t i = 0; i < st_bench_nworkloads && i < 64; i++)
        wl_names[i] = st_bench_workloads[i].name;
    if ((o.only && !check_list(o.only, "workload", wl_names, st_bench_nworkloads)) ||
        (o.allocs && !check_list(o.allocs, "allocator", alloc_names, 5)))
        return 2;
    char dir[PATH_MAX], bench_dir[PATH_MAX], tmpdir[PATH_MAX];
    exe_dir(dir, sizeof(dir));
    if (o.bench_dir)
        snprintf(bench_dir, sizeof(bench_dir), "%s", o.bench_dir);
    else if (!st_bench_find_dir(bench_dir, sizeof(bench_dir), dir))
        fprintf(stderr,
                "strata bench: the workload programs (bench-wl_*) are not in %s; build them, or\n"
                "  name their directory with --bench-dir or STRATA_BENCH_DIR\n",
                bench_dir);
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%.900s/strata-bench.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "strata bench: cannot make a directory in %s: %s\n", t ? t : "/tmp",
                strerror(errno));
        return 1;
    }
    rc = bench(&o, dir, bench_dir, tmpdir);
    remove_tmpdir(tmpdir);
    return rc;
}
