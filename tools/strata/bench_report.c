/* SPDX-License-Identifier: MIT */
/*
 * bench_report.c — the figures of `strata bench` and their three forms.
 * Statistics: per cell (workload, allocator) the median over the runs that
 * succeeded and the spread (max − min) / median; each median as a ratio
 * to the reference allocator's; per allocator the geometric mean of those
 * ratios over the suite. Reports: a text table (one block per workload,
 * then the summary), a JSON document holding every raw run, and an SVG
 * chart with a time panel and an RSS panel of grouped bars.
 *
 * Nothing here runs anything; a failed run is shown, never averaged in.
 */
#define _GNU_SOURCE /* open_memstream */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "json.h"
#include "svg.h"

struct bench_run *st_bench_at(const struct bench_results *res, size_t job, size_t alloc, size_t run)
{
    return &res->run[(job * res->nallocs + alloc) * res->runs + run];
}

/* ------------------------------------------------------------------ */
/* statistics                                                          */

static double value_of(const struct bench_run *r, const char *what)
{
    if (strcmp(what, "wall") == 0) return r->wall_s;
    if (strcmp(what, "cpu") == 0) return r->user_s + r->sys_s;
    if (strcmp(what, "rss") == 0) return (double)r->maxrss_kib * 1024.0;
    return st_bench_get(r, what);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

bool st_bench_median(const struct bench_results *res, size_t job, size_t alloc, const char *what,
                     double *median, double *spread)
{
    double v[1024];
    size_t n = 0;
    for (size_t k = 0; k < res->runs && n < 1024; k++) {
        const struct bench_run *r = st_bench_at(res, job, alloc, k);
        double x = r->ok ? value_of(r, what) : NAN;
        if (isfinite(x)) v[n++] = x;
    }
    if (n == 0) return false;
    qsort(v, n, sizeof(v[0]), cmp_double);
    *median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    if (spread) *spread = *median != 0 ? (v[n - 1] - v[0]) / fabs(*median) : 0;
    return true;
}

/* The ratio of alloc's median to the reference's, or NaN. */
static double ratio(const struct bench_results *res, size_t job, size_t alloc, const char *what)
{
    double a, r;
    if (!st_bench_median(res, job, alloc, what, &a, NULL) ||
        !st_bench_median(res, job, res->ref, what, &r, NULL) || !(r > 0) || !(a > 0))
        return NAN;
    return a / r;
}

double st_bench_geomean(const struct bench_results *res, size_t alloc, const char *what,
                        size_t *count)
{
    double sum = 0;
    size_t n = 0;
    for (size_t j = 0; j < res->njobs; j++) {
        double x = ratio(res, j, alloc, what);
        if (isfinite(x)) sum += log(x), n++;
    }
    if (count) *count = n;
    return n ? exp(sum / (double)n) : NAN;
}

void st_bench_format(char *buf, size_t n, double v, char fmt)
{
    if (!isfinite(v)) {
        snprintf(buf, n, "-");
        return;
    }
    double a = fabs(v);
    switch (fmt) {
    case 'r':
        if (a >= 1e9)
            snprintf(buf, n, "%.2fG", v / 1e9);
        else if (a >= 1e6)
            snprintf(buf, n, "%.2fM", v / 1e6);
        else if (a >= 1e3)
            snprintf(buf, n, "%.1fk", v / 1e3);
        else
            snprintf(buf, n, "%.0f", v);
        break;
    case 'b':
        if (a >= 10.0 * 1073741824.0)
            snprintf(buf, n, "%.1f GiB", v / 1073741824.0);
        else
            snprintf(buf, n, "%.1f MiB", v / 1048576.0);
        break;
    case 'f':
    case 's':
        snprintf(buf, n, "%.3f", v);
        break;
    default:
        snprintf(buf, n, "%.2f", v);
    }
}

/* ------------------------------------------------------------------ */
/* the table                                                           */

struct figure {
    char key[40], label[40];
    char fmt;
};

/* Parse a workload's "key:label:fmt ..." list. */
static size_t figures_of(const struct bench_workload *w, struct figure *f, size_t max)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", w->figures);
    size_t n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, " ", &save); tok && n < max; tok = strtok_r(NULL, " ", &save)) {
        char *c1 = strchr(tok, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c1 = *c2 = 0;
        snprintf(f[n].key, sizeof(f[n].key), "%s", tok);
        snprintf(f[n].label, sizeof(f[n].label), "%s", c1 + 1);
        for (char *u = f[n].label; *u; u++)
            if (*u == '_') *u = ' '; /* labels are one token: '_' stands for a space */
        f[n++].fmt = c2[1];
    }
    return n;
}

static int name_width(const struct bench_results *res)
{
    int w = 9;
    for (size_t a = 0; a < res->nallocs; a++)
        if ((int)strlen(res->allocs[a].name) > w) w = (int)strlen(res->allocs[a].name);
    return w;
}

/* Print s in a column of width characters (UTF-8 aware: "±" and "×" are
 * one character each), left-aligned for the first column, else right. */
static void put_col(FILE *out, const char *s, int width, bool left)
{
    int n = 0;
    for (const char *p = s; *p; p++)
        n += ((unsigned char)*p & 0xC0) != 0x80;
    if (!left)
        for (int i = n; i < width; i++)
            fputc(' ', out);
    fputs(s, out);
    if (left)
        for (int i = n; i < width; i++)
            fputc(' ', out);
}

static int figure_width(const struct figure *f)
{
    return strlen(f->label) > 9 ? (int)strlen(f->label) : 9;
}

/* The fixed columns: label and width. */
static const struct {
    const char *label;
    int width;
} fixed[] = {{"wall s", 8}, {"±", 6}, {"cpu s", 8}, {"max RSS", 10}, {"±", 6},
             {"time×", 6},  {"cpu×", 6}, {"RSS×", 6}};
#define NFIXED (sizeof(fixed) / sizeof(fixed[0]))

static void print_header(FILE *out, const struct figure *f, size_t nf, int nw)
{
    fputs("  ", out);
    put_col(out, "allocator", nw, true);
    for (size_t i = 0; i < NFIXED; i++) {
        fputc(' ', out);
        put_col(out, fixed[i].label, fixed[i].width, false);
    }
    for (size_t i = 0; i < nf; i++) {
        fputc(' ', out);
        put_col(out, f[i].label, figure_width(&f[i]), false);
    }
    fputc('\n', out);
}

/* How many of a cell's runs failed, and the first failure's message. */
static size_t failures(const struct bench_results *res, size_t j, size_t a, const char **msg)
{
    size_t n = 0;
    *msg = "";
    for (size_t k = 0; k < res->runs; k++) {
        const struct bench_run *r = st_bench_at(res, j, a, k);
        if (r->done && !r->ok && n++ == 0) *msg = r->error;
    }
    return n;
}

static void print_row(FILE *out, const struct bench_results *res, size_t j, size_t a,
                      const struct figure *f, size_t nf, int nw)
{
    double wall, ws, cpu, rss, rs;
    const char *msg;
    size_t nfail = failures(res, j, a, &msg);
    fputs("  ", out);
    put_col(out, res->allocs[a].name, nw, true);
    if (!st_bench_median(res, j, a, "wall", &wall, &ws)) {
        fprintf(out, " FAILED in %zu of %zu runs: %s\n", nfail, res->runs, msg);
        return;
    }
    st_bench_median(res, j, a, "cpu", &cpu, NULL);
    st_bench_median(res, j, a, "rss", &rss, &rs);
    char b[NFIXED][32];
    snprintf(b[0], 32, "%.3f", wall);
    snprintf(b[1], 32, "%.1f%%", 100 * ws);
    snprintf(b[2], 32, "%.3f", cpu);
    st_bench_format(b[3], 32, rss, 'b');
    snprintf(b[4], 32, "%.1f%%", 100 * rs);
    st_bench_format(b[5], 32, ratio(res, j, a, "wall"), 'x');
    st_bench_format(b[6], 32, ratio(res, j, a, "cpu"), 'x');
    st_bench_format(b[7], 32, ratio(res, j, a, "rss"), 'x');
    for (size_t i = 0; i < NFIXED; i++) {
        fputc(' ', out);
        put_col(out, b[i], fixed[i].width, false);
    }
    for (size_t i = 0; i < nf; i++) {
        double v = NAN;
        st_bench_median(res, j, a, f[i].key, &v, NULL);
        st_bench_format(b[0], 32, v, f[i].fmt);
        fputc(' ', out);
        put_col(out, b[0], figure_width(&f[i]), false);
    }
    fputc('\n', out);
    if (nfail) {
        fputs("  ", out);
        put_col(out, "", nw, true);
        fprintf(out, " (%zu of %zu runs failed: %s)\n", nfail, res->runs, msg);
    }
}

static void print_args(FILE *out, const struct bench_job *job)
{
    const char *prog = strrchr(job->path, '/');
    fprintf(out, "  $ %s", prog ? prog + 1 : job->path);
    for (size_t i = 1; job->argv[i]; i++) {
        const char *slash = strrchr(job->argv[i], '/');
        fprintf(out, " %s", slash ? slash + 1 : job->argv[i]);
    }
    if (job->stdin_path[0]) {
        const char *slash = strrchr(job->stdin_path, '/');
        fprintf(out, " < %s", slash ? slash + 1 : job->stdin_path);
    }
    fputc('\n', out);
}

static void print_summary(FILE *out, const struct bench_results *res, int nw)
{
    const char *ref = res->allocs[res->ref].name;
    fprintf(out,
            "\nsummary: geometric mean over the workloads of each allocator's ratio to %s\n"
            "(wall time, CPU time, max RSS; below 1 is better than %s)\n  ",
            ref, ref);
    put_col(out, "allocator", nw, true);
    fputs("   time×    cpu×    RSS×  workloads\n", out);
    for (size_t a = 0; a < res->nallocs; a++) {
        size_t n[3];
        char t[3][32];
        static const char *const what[3] = {"wall", "cpu", "rss"};
        for (int i = 0; i < 3; i++)
            st_bench_format(t[i], sizeof(t[i]), st_bench_geomean(res, a, what[i], &n[i]), 'x');
        fputs("  ", out);
        put_col(out, res->allocs[a].name, nw, true);
        fprintf(out, " %7s %7s %7s %10zu\n", t[0], t[1], t[2], n[0] < n[2] ? n[0] : n[2]);
    }
}

void st_bench_print_table(FILE *out, const struct bench_results *res)
{
    int nw = name_width(res);
    fprintf(out, "strata bench: %s; %s\n", res->machine, res->date);
    fprintf(out,
            "%zu run%s per cell, allocators interleaved; medians, ± = (max - min) / median; "
            "time× and RSS× relative to %s.\nload average at start %s, at end %s; %d thread%s "
            "for the threaded workloads%s.\n",
            res->runs, res->runs == 1 ? "" : "s", res->allocs[res->ref].name, res->load_start,
            res->load_end, res->threads, res->threads == 1 ? "" : "s",
            res->quick ? "; --quick (smaller parameters)" : "");
    for (size_t j = 0; j < res->njobs; j++) {
        const struct bench_job *job = &res->jobs[j];
        struct figure f[8];
        size_t nf = figures_of(job->w, f, 8);
        fprintf(out, "\n%s: %s\n", job->w->name, job->what);
        print_args(out, job);
        print_header(out, f, nf, nw);
        for (size_t a = 0; a < res->nallocs; a++)
            print_row(out, res, j, a, f, nf, nw);
    }
    print_summary(out, res, nw);
}

/* ------------------------------------------------------------------ */
/* JSON                                                                */

static void json_run(struct st_json *j, const struct bench_results *res, size_t job, size_t a,
                     size_t k)
{
    const struct bench_run *r = st_bench_at(res, job, a, k);
    st_json_begin_object(j);
    st_json_kv_string(j, "allocator", res->allocs[a].name);
    st_json_kv_uint(j, "run", k + 1);
    st_json_kv_bool(j, "ok", r->ok);
    if (!r->ok) st_json_kv_string(j, "error", r->error);
    st_json_kv_double(j, "wall_s", r->wall_s);
    st_json_kv_double(j, "user_s", r->user_s);
    st_json_kv_double(j, "sys_s", r->sys_s);
    st_json_kv_int(j, "maxrss_kib", r->maxrss_kib);
    st_json_kv_int(j, "exit_code", r->exit_code);
    st_json_kv_int(j, "signal", r->signal);
    if (r->malloc_from[0]) st_json_kv_string(j, "malloc_from", r->malloc_from);
    st_json_key(j, "figures");
    st_json_begin_object(j);
    for (size_t i = 0; i < r->nkv; i++)
        st_json_kv_double(j, r->kv[i].key, r->kv[i].value);
    st_json_end_object(j);
    st_json_end_object(j);
}

static void json_kv_maybe(struct st_json *j, const char *key, double v)
{
    if (isfinite(v))
        st_json_kv_double(j, key, v);
    else {
        st_json_key(j, key);
        st_json_null(j);
    }
}

static void json_cell(struct st_json *j, const struct bench_results *res, size_t job, size_t a)
{
    double m = NAN, s = NAN;
    st_json_begin_object(j);
    st_json_kv_string(j, "allocator", res->allocs[a].name);
    static const char *const what[] = {"wall", "cpu", "rss"};
    for (int i = 0; i < 3; i++) {
        char key[32];
        bool ok = st_bench_median(res, job, a, what[i], &m, &s);
        snprintf(key, sizeof(key), "%s_median", what[i]);
        json_kv_maybe(j, key, ok ? m : NAN);
        snprintf(key, sizeof(key), "%s_spread", what[i]);
        json_kv_maybe(j, key, ok ? s : NAN);
    }
    json_kv_maybe(j, "time_ratio", ratio(res, job, a, "wall"));
    json_kv_maybe(j, "cpu_ratio", ratio(res, job, a, "cpu"));
    json_kv_maybe(j, "rss_ratio", ratio(res, job, a, "rss"));
    st_json_end_object(j);
}

static void json_job(struct st_json *j, const struct bench_results *res, size_t job)
{
    const struct bench_job *jb = &res->jobs[job];
    st_json_begin_object(j);
    st_json_kv_string(j, "name", jb->w->name);
    st_json_kv_string(j, "what", jb->what);
    st_json_key(j, "argv");
    st_json_begin_array(j);
    for (size_t i = 0; jb->argv[i]; i++)
        st_json_string(j, jb->argv[i]);
    st_json_end_array(j);
    st_json_key(j, "medians");
    st_json_begin_array(j);
    for (size_t a = 0; a < res->nallocs; a++)
        json_cell(j, res, job, a);
    st_json_end_array(j);
    st_json_key(j, "runs");
    st_json_begin_array(j);
    for (size_t k = 0; k < res->runs; k++)
        for (size_t a = 0; a < res->nallocs; a++)
            if (st_bench_at(res, job, a, k)->done) json_run(j, res, job, a, k);
    st_json_end_array(j);
    st_json_end_object(j);
}

static void json_allocs(struct st_json *j, const struct bench_alloc *all, size_t nall)
{
    static const char *const state[] = {"ok", "missing", "broken"};
    st_json_key(j, "allocators");
    st_json_begin_array(j);
    for (size_t a = 0; a < nall; a++) {
        st_json_begin_object(j);
        st_json_kv_string(j, "name", all[a].name);
        st_json_kv_string(j, "path", all[a].path[0] ? all[a].path : NULL);
        st_json_kv_string(j, "state", state[all[a].state]);
        if (all[a].why[0]) st_json_kv_string(j, "why", all[a].why);
        st_json_end_object(j);
    }
    st_json_end_array(j);
}

int st_bench_write_json(const char *path, const struct bench_results *res,
                        const struct bench_alloc *all, size_t nall)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    struct st_json j;
    st_json_init(&j, f, true);
    st_json_begin_object(&j);
    st_json_kv_string(&j, "tool", "strata bench");
    st_json_kv_string(&j, "machine", res->machine);
    st_json_kv_string(&j, "date", res->date);
    st_json_kv_string(&j, "load_start", res->load_start);
    st_json_kv_string(&j, "load_end", res->load_end);
    st_json_kv_uint(&j, "runs", res->runs);
    st_json_kv_int(&j, "threads", res->threads);
    st_json_kv_bool(&j, "quick", res->quick);
    st_json_kv_string(&j, "reference", res->nallocs ? res->allocs[res->ref].name : NULL);
    json_allocs(&j, all, nall);
    st_json_key(&j, "workloads");
    st_json_begin_array(&j);
    for (size_t job = 0; job < res->njobs; job++)
        json_job(&j, res, job);
    st_json_end_array(&j);
    st_json_key(&j, "summary");
    st_json_begin_array(&j);
    for (size_t a = 0; a < res->nallocs; a++) {
        size_t n;
        st_json_begin_object(&j);
        st_json_kv_string(&j, "allocator", res->allocs[a].name);
        json_kv_maybe(&j, "time_geomean", st_bench_geomean(res, a, "wall", &n));
        json_kv_maybe(&j, "cpu_geomean", st_bench_geomean(res, a, "cpu", &n));
        json_kv_maybe(&j, "rss_geomean", st_bench_geomean(res, a, "rss", &n));
        st_json_kv_uint(&j, "workloads", n);
        st_json_end_object(&j);
    }
    st_json_end_array(&j);
    st_json_end_object(&j);
    int rc = st_json_finish(&j);
    if (fclose(f) != 0) rc = -1;
    return rc;
}

/* ------------------------------------------------------------------ */
/* SVG                                                                 */

/* Write one chart into out below y, as a nested <svg> (the chart writer
 * makes whole documents: drop its XML declaration). */
static int embed_chart(FILE *out, const struct st_svg_chart *c, double y)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem) return -1;
    int rc = st_svg_bar_chart(mem, c);
    if (fclose(mem) != 0) rc = -1;
    if (rc == 0 && text) {
        const char *body = strstr(text, "<svg");
        fprintf(out, "<g transform=\"translate(0,%.0f)\">\n%s</g>\n", y, body ? body : "");
    }
    free(text);
    return rc;
}

int st_bench_write_svg(const char *path, const struct bench_results *res)
{
    size_t nc = res->njobs, ns = res->nallocs;
    if (nc == 0 || ns == 0) return -1;
    const char **cats = calloc(nc, sizeof(*cats)), **series = calloc(ns, sizeof(*series));
    double *tv = calloc(nc * ns, sizeof(double)), *rv = calloc(nc * ns, sizeof(double));
    FILE *f = cats && series && tv && rv ? fopen(path, "w") : NULL;
    int rc = -1;
    if (f) {
        for (size_t c = 0; c < nc; c++)
            cats[c] = res->jobs[c].w->name;
        for (size_t s = 0; s < ns; s++) {
            series[s] = res->allocs[s].name;
            for (size_t c = 0; c < nc; c++) {
                double t = ratio(res, c, s, "wall"), r = ratio(res, c, s, "rss");
                tv[s * nc + c] = isfinite(t) ? t : 0;
                rv[s * nc + c] = isfinite(r) ? r : 0;
            }
        }
        char title[512], t1[160], t2[160], y1[96], y2[96], sub[160];
        const char *ref = res->allocs[res->ref].name;
        double w = 140 + 110.0 * (double)nc;
        if (w < 960) w = 960;
        snprintf(title, sizeof(title), "strata bench: %s; %s", res->machine, res->date);
        snprintf(sub, sizeof(sub), "medians of %zu interleaved runs per bar; %s = 1; lower is better",
                 res->runs, ref);
        snprintf(t1, sizeof(t1), "Wall time relative to %s", ref);
        snprintf(t2, sizeof(t2), "Peak RSS (max RSS from wait4) relative to %s", ref);
        snprintf(y1, sizeof(y1), "wall time / %s's", ref);
        snprintf(y2, sizeof(y2), "max RSS / %s's", ref);
        struct st_svg_chart c1 = {t1, sub, "workload", y1, "× reference", nc, cats, ns, series,
                                  tv, false, w, 480};
        struct st_svg_chart c2 = c1;
        c2.title = t2, c2.y_label = y2, c2.values = rv;
        struct st_svg s;
        st_svg_begin(&s, f, w, 60 + 2 * 480);
        st_svg_text(&s, w / 2, 34, "middle", 20, 0, true, title);
        rc = embed_chart(f, &c1, 60) | embed_chart(f, &c2, 60 + 480);
        if (st_svg_end(&s) != 0) rc = -1;
        if (fclose(f) != 0) rc = -1;
    }
    free(cats), free(series), free(tv), free(rv);
    return rc;
}
