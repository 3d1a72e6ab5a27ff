/* SPDX-License-Identifier: MIT */
/*
 * bench_suite.c — what `strata bench` runs and against what: the table of
 * workloads (their programs, arguments for a full and a quick run, and the
 * figures the report shows), the two real programs (sqlite3 and python3,
 * with the input they are fed written here), and the allocators found on
 * the machine, each checked by a probe run that must show its malloc in
 * use (LD_PRELOAD silently falls back to glibc when a library does not
 * load, so without the check a broken library would be measured as
 * glibc).
 *
 * It prepares; it does not measure (bench_run.c) or report (bench_report.c).
 */
#include <errno.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"

/* ------------------------------------------------------------------ */
/* the suite                                                           */

/* {T} is --threads; {P} is --threads but at least 2 (xthread needs pairs). */
const struct bench_workload st_bench_workloads[] = {
    {"churn", "bench-wl_churn", "100,000 live blocks of 16-1024 B; random free + malloc",
     "--blocks 100000 --ops 5000000", "--blocks 100000 --ops 1000000",
     "ops_per_s:ops/s:r frag:frag:f", false},
    {"churn-mt", "bench-wl_churn_mt", "churn in {T} threads, each with its own 50,000 blocks",
     "--threads {T} --blocks 50000 --ops 2500000", "--threads {T} --blocks 50000 --ops 500000",
     "ops_per_s:ops/s:r frag:frag:f", false},
    {"xthread", "bench-wl_xthread", "producers malloc, consumers free: every free remote",
     "--threads {P} --ops 5000000", "--threads {P} --ops 1000000", "ops_per_s:blocks/s:r", false},
    {"server", "bench-wl_server", "larson-like: workers exit, successors free their blocks",
     "--threads {T} --slots 10000 --rounds 200000 --generations 10",
     "--threads {T} --slots 10000 --rounds 50000 --generations 6",
     "ops_per_s:ops/s:r frag:frag:f", false},
    {"cache", "bench-wl_cache", "false sharing: {T} threads write small objects",
     "--threads {T} --iters 20000 --writes 1000", "--threads {T} --iters 5000 --writes 1000",
     "active_s:active_s:s passive_s:passive_s:s", false},
    {"phases", "bench-wl_phases",
     "1 survivor per 64 short-lived objects; resident/live after the rest are freed",
     "--small 1000000 --keep-every 64 --idle-ms 1000",
     "--small 200000 --keep-every 64 --idle-ms 300",
     "ratio_after_free:RSS/live_freed:x ratio_after_large:RSS/live_large:x "
     "ratio_after_end:RSS/live_end:x",
     false},
    {"phases-big", "bench-wl_phases",
     "1 survivor per 4 short-lived objects of 1-8 KiB; resident/live after the rest are freed",
     "--small 200000 --keep-every 4 --min 1024 --max 8192 --idle-ms 1000",
     "--small 50000 --keep-every 4 --min 1024 --max 8192 --idle-ms 300",
     "ratio_after_free:RSS/live_freed:x ratio_after_large:RSS/live_large:x "
     "ratio_after_end:RSS/live_end:x",
     false},
    {"realloc", "bench-wl_realloc", "4 vectors grown by realloc to 1-16 MiB and shrunk",
     "--vectors 4 --cycles 30", "--vectors 4 --cycles 6", "ops_per_s:reallocs/s:r frag:frag:f",
     false},
    {"big", "bench-wl_big", "blocks of 256 KiB-64 MiB allocated, touched, freed", "--ops 300",
     "--ops 40", "ops_per_s:blocks/s:r frag:frag:f", false},
    {"alloc-free-simple", "bench-wl_alloc_free_simple", "malloc(64) + free in a tight loop",
     "--size 64 --iters 20000000", "--size 64 --iters 5000000", "ns_per_pair:ns/pair:n", false},
    {"sqlite", "sqlite3", "sqlite3: {ROWS} rows inserted, indexed, grouped, updated", "200000",
     "20000", "", true},
    {"python", "python3", "python3 (PYTHONMALLOC=malloc): dicts, strings, tuples, trees",
     "300000", "40000", "", true},
};
const size_t st_bench_nworkloads = sizeof(st_bench_workloads) / sizeof(st_bench_workloads[0]);

/* ------------------------------------------------------------------ */
/* finding things                                                      */

static bool is_exec(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool st_bench_which(const char *name, char *out, size_t n)
{
    const char *path = getenv("PATH");
    if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path; *p;) {
        size_t len = strcspn(p, ":");
        if (len > 0 && (size_t)snprintf(out, n, "%.*s/%s", (int)len, p, name) < n && is_exec(out))
            return true;
        p += len + (p[len] == ':');
    }
    return false;
}

bool st_bench_find_dir(char *dir, size_t n, const char *exe_dir)
{
    char probe[BENCH_PATH + 64];
    const char *env = getenv("STRATA_BENCH_DIR");
    const char *cand[3] = {env, exe_dir, NULL};
    char libexec[BENCH_PATH];
    snprintf(libexec, sizeof(libexec), "%s/../libexec/strata", exe_dir);
    cand[2] = libexec;
    for (int i = 0; i < 3; i++) {
        if (!cand[i] || !*cand[i]) continue;
        snprintf(probe, sizeof(probe), "%s/bench-wl_churn", cand[i]);
        if (is_exec(probe) || (i == 0)) {
            snprintf(dir, n, "%s", cand[i]);
            return is_exec(probe);
        }
    }
    snprintf(dir, n, "%s", exe_dir);
    return false;
}

/* The first existing file matching one of the glob patterns. */
static bool find_glob(const char *const *patterns, size_t np, char *out, size_t n)
{
    for (size_t i = 0; i < np; i++) {
        glob_t g;
        if (glob(patterns[i], 0, NULL, &g) != 0) continue;
        bool found = false;
        for (size_t k = 0; k < g.gl_pathc && !found; k++)
            if (is_file(g.gl_pathv[k])) {
                snprintf(out, n, "%s", g.gl_pathv[k]);
                found = true;
            }
        globfree(&g);
        if (found) return true;
    }
    return false;
}

static void find_strata(struct bench_alloc *a, const char *exe_dir)
{
    const char *env = getenv("STRATA_LIB");
    if (env && *env) {
        snprintf(a->path, sizeof(a->path), "%s", env);
        if (!is_file(env)) {
            a->state = BENCH_ALLOC_BROKEN;
            snprintf(a->why, sizeof(a->why), "STRATA_LIB=%.400s: no such file", env);
        }
        return;
    }
    char p[4][BENCH_PATH + 40];
    snprintf(p[0], sizeof(p[0]), "%s/libstrata.so", exe_dir);
    snprintf(p[1], sizeof(p[1]), "%s/../lib/libstrata.so", exe_dir);
    snprintf(p[2], sizeof(p[2]), "%s/../lib64/libstrata.so", exe_dir);
    snprintf(p[3], sizeof(p[3]), "%s/../lib/*/libstrata.so", exe_dir);
    const char *pats[4] = {p[0], p[1], p[2], p[3]};
    if (!find_glob(pats, 4, a->path, sizeof(a->path))) {
        a->state = BENCH_ALLOC_MISSING;
        snprintf(a->why, sizeof(a->why),
                 "libstrata.so not found beside the strata program nor in ../lib (set STRATA_LIB)");
    }
}

static void find_peer(struct bench_alloc *a, const char *file)
{
    static const char *const dirs[] = {"/usr/lib/*-linux-gnu", "/lib/*-linux-gnu", "/usr/lib64",
                                       "/usr/lib", "/usr/local/lib"};
    char p[5][128];
    const char *pats[5];
    for (size_t i = 0; i < 5; i++) {
        snprintf(p[i], sizeof(p[i]), "%s/%s", dirs[i], file);
        pats[i] = p[i];
    }
    if (!find_glob(pats, 5, a->path, sizeof(a->path))) {
        a->state = BENCH_ALLOC_MISSING;
        snprintf(a->why, sizeof(a->why), "not found (apt-get install %s)", a->package);
    }
}

size_t st_bench_builtin_allocs(struct bench_alloc *a, size_t max, const char *exe_dir)
{
    static const struct {
        const char *name, *file, *package;
    } peers[] = {{"jemalloc", "libjemalloc.so.2", "libjemalloc2"},
                 {"tcmalloc", "libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"},
                 {"mimalloc", "libmimalloc.so.2", "libmimalloc2.0"}};
    size_t n = 0;
    if (max < 5) return 0;
    memset(a, 0, 5 * sizeof(*a));
    snprintf(a[n++].name, sizeof(a->name), "glibc");
    snprintf(a[n].name, sizeof(a->name), "strata");
    find_strata(&a[n++], exe_dir);
    for (size_t i = 0; i < 3; i++, n++) {
        snprintf(a[n].name, sizeof(a->name), "%s", peers[i].name);
        a[n].package = peers[i].package;
        find_peer(&a[n], peers[i].file);
    }
    return n;
}

/* ------------------------------------------------------------------ */
/* the probe                                                           */

void st_bench_probe_alloc(struct bench_alloc *a, const char *probe)
{
    if (a->state != BENCH_ALLOC_OK) return;
    if (a->path[0] && !is_file(a->path)) {
        a->state = BENCH_ALLOC_BROKEN;
        snprintf(a->why, sizeof(a->why), "%.400s: no such file", a->path);
        return;
    }
    if (!is_exec(probe)) { /* only real programs can run: nothing to check with */
        snprintf(a->why, sizeof(a->why), "not checked: %.400s not found", probe);
        return;
    }
    char *argv[] = {(char *)probe, "--iters", "1000", NULL};
    char out[4096], err[4096];
    struct bench_spawn s = {argv, a->path, NULL, NULL, 30, out, sizeof(out), err, sizeof(err)};
    struct bench_run r;
    memset(&r, 0, sizeof(r));
    a->state = BENCH_ALLOC_BROKEN;
    if (st_bench_spawn(&s, &r) != 0) {
        snprintf(a->why, sizeof(a->why), "probe not started: %s", r.error);
        return;
    }
    char *bad = strstr(err, "cannot be preloaded");
    if (bad || r.exit_code != 0 || !st_bench_parse(out, &r)) {
        st_bench_describe_failure(&r, err);
        snprintf(a->why, sizeof(a->why), "%.200s does not load: %.280s", a->path,
                 bad || !r.error[0] ? err : r.error);
        char *nl = strchr(a->why, '\n');
        if (nl) *nl = 0;
        return;
    }
    if (!a->path[0] && !strstr(r.malloc_from, "/libc.so")) /* still usable, but say so */
        snprintf(a->why, sizeof(a->why),
                 "note: malloc comes from %.300s, not the C library (a sanitizer build?): "
                 "these figures are not glibc's",
                 r.malloc_from);
    if (a->path[0] && !st_bench_same_file(r.malloc_from, a->path)) {
        snprintf(a->why, sizeof(a->why),
                 "%.200s loads, but malloc still comes from %.200s: the library does not define malloc",
                 a->path, r.malloc_from);
        return;
    }
    a->state = BENCH_ALLOC_OK;
}

/* ------------------------------------------------------------------ */
/* preparing a workload                                                */

static const char sqlite_script[] =
    "CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, val REAL);\n"
    "BEGIN;\n"
    "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < %ld)\n"
    "  INSERT INTO t SELECT i, (i * 7919) %% 1000,\n"
    "    printf('name-%%08x-%%d', (i * 2654435761) %% 4294967296, i), (i %% 977) * 0.5 FROM s;\n"
    "COMMIT;\n"
    "CREATE INDEX t_grp ON t(grp);\n"
    "CREATE INDEX t_name ON t(name);\n"
    "SELECT grp, count(*), sum(val), max(name) FROM t GROUP BY grp ORDER BY 2 DESC, 1 LIMIT 3;\n"
    "SELECT substr(name, 6, 2) AS k, count(*), avg(val) FROM t GROUP BY k ORDER BY k LIMIT 3;\n"
    "SELECT count(*) FROM t a JOIN t b ON b.grp = a.grp AND b.id = a.id + 1000;\n"
    "UPDATE t SET name = name || '-updated' WHERE id %% 3 = 0;\n"
    "DELETE FROM t WHERE id %% 5 = 0;\n"
    "SELECT 'rows=' || count(*) || ' name_bytes=' || sum(length(name)) FROM t;\n";

static const char python_script[] =
    "import sys\n"
    "n = int(sys.argv[1])\n"
    "d = {}\n"
    "for i in range(n):\n"
    "    d['key-%d' % i] = (i, str(i) * 3, [i, i + 1, i * 2])\n"
    "items = sorted(d.items(), key=lambda kv: kv[1][1])\n"
    "total = sum(len(v[1]) for k, v in items[: n // 2])\n"
    "del items\n"
    "for i in range(0, n, 2):\n"
    "    del d['key-%d' % i]\n"
    "words = {}\n"
    "for w in ' '.join('w%d' % (i % 5000) for i in range(n)).split():\n"
    "    words[w] = words.get(w, 0) + 1\n"
    "def tree(depth):\n"
    "    return None if depth == 0 else (tree(depth - 1), [depth], tree(depth - 1))\n"
    "for _ in range(4):\n"
    "    t = tree(15)\n"
    "print('total=%d kept=%d words=%d' % (total, len(d), len(words)))\n";

/* Write text to dir/name; with rows > 0, text is a printf format taking
 * that one long. */
static bool write_input(char *path, size_t n, const char *dir, const char *name, const char *text,
                        long rows)
{
    snprintf(path, n, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) return false;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    if (rows > 0)
        fprintf(f, text, rows);
    else
        fputs(text, f);
#pragma GCC diagnostic pop
    return fclose(f) == 0;
}

/* Replace {T}, {P} and {ROWS} in template into buf. */
static void expand(char *buf, size_t n, const char *tmpl, int threads, const char *rows)
{
    size_t len = 0;
    buf[0] = 0;
    for (const char *p = tmpl; *p && len + 1 < n;) {
        char num[32] = "";
        size_t skip = 0;
        if (strncmp(p, "{T}", 3) == 0)
            snprintf(num, sizeof(num), "%d", threads), skip = 3;
        else if (strncmp(p, "{P}", 3) == 0)
            snprintf(num, sizeof(num), "%d", threads < 2 ? 2 : threads), skip = 3;
        else if (strncmp(p, "{ROWS}", 6) == 0 && rows)
            snprintf(num, sizeof(num), "%s", rows), skip = 6;
        if (skip) {
            len += (size_t)snprintf(buf + len, n - len, "%s", num);
            if (len >= n) len = n - 1;
            p += skip;
        } else {
            buf[len++] = *p++;
            buf[len] = 0;
        }
    }
}

static void split_args(struct bench_job *job, size_t first)
{
    size_t argc = first;
    char *save = NULL;
    for (char *tok = strtok_r(job->argbuf, " ", &save); tok && argc < BENCH_MAX_ARGS;
         tok = strtok_r(NULL, " ", &save))
        job->argv[argc++] = tok;
    job->argv[argc] = NULL;
}

/* python3 in PATH may be a wrapper script (pyenv); time the interpreter
 * itself, as sys.executable names it. */
static bool resolve_python(char *path, size_t n)
{
    char found[BENCH_PATH];
    if (!st_bench_which("python3", found, sizeof(found))) return false;
    char *argv[] = {found, "-c", "import sys; print(sys.executable)", NULL};
    char out[BENCH_PATH], err[512];
    struct bench_spawn s = {argv, NULL, NULL, NULL, 30, out, sizeof(out), err, sizeof(err)};
    struct bench_run r;
    memset(&r, 0, sizeof(r));
    if (st_bench_spawn(&s, &r) != 0 || r.exit_code != 0) return false;
    out[strcspn(out, "\n")] = 0;
    snprintf(path, n, "%s", is_exec(out) ? out : found);
    return true;
}

static void prepare_real(struct bench_job *job, const char *tmpdir, const char *param)
{
    const struct bench_workload *w = job->w;
    bool sqlite = strcmp(w->program, "sqlite3") == 0;
    bool found = sqlite ? st_bench_which("sqlite3", job->path, sizeof(job->path))
                        : resolve_python(job->path, sizeof(job->path));
    if (!found) {
        job->skipped = true;
        snprintf(job->why, sizeof(job->why), "skipped: %s not found (apt-get install %s)",
                 w->program, sqlite ? "sqlite3" : "python3");
        return;
    }
    char input[BENCH_PATH];
    long value = strtol(param, NULL, 10);
    if (value <= 0) value = 1;
    bool ok = sqlite ? write_input(job->stdin_path, sizeof(job->stdin_path), tmpdir, "bench.sql",
                                   sqlite_script, value)
                     : write_input(input, sizeof(input), tmpdir, "bench.py", python_script, 0);
    if (!ok) {
        snprintf(job->why, sizeof(job->why), "cannot write its input in %s: %s", tmpdir,
                 strerror(errno));
        return;
    }
    job->argv[0] = job->path;
    if (sqlite) {
        snprintf(job->argbuf, sizeof(job->argbuf), "-batch -bail");
    } else {
        /* -S (no site packages) rather than -I, which would ignore
         * PYTHONMALLOC along with every other PYTHON* variable */
        snprintf(job->argbuf, sizeof(job->argbuf), "-S %s %s", input, param);
        job->env = "PYTHONMALLOC=malloc";
    }
    split_args(job, 1);
    job->ready = true;
}

void st_bench_prepare(struct bench_job *job, const struct bench_workload *w, const char *bench_dir,
                      const char *tmpdir, bool quick, int threads)
{
    memset(job, 0, sizeof(*job));
    job->w = w;
    const char *args = quick ? w->quick : w->full;
    expand(job->what, sizeof(job->what), w->what, threads, w->real ? args : NULL);
    if (w->real) {
        prepare_real(job, tmpdir, args);
        return;
    }
    snprintf(job->path, sizeof(job->path), "%s/%s", bench_dir, w->program);
    if (!is_exec(job->path)) {
        snprintf(job->why, sizeof(job->why), "%s not found in %s", w->program, bench_dir);
        return;
    }
    job->argv[0] = job->path;
    expand(job->argbuf, sizeof(job->argbuf), args, threads, NULL);
    split_args(job, 1);
    job->ready = true;
}
