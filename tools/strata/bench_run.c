/* SPDX-License-Identifier: MIT */
/*
 * bench_run.c — one measured process of `strata bench`. The child gets
 * stdout and stderr on pipes, stdin from a file or /dev/null, LD_PRELOAD
 * set to the allocator's library or removed (glibc), then execs. The
 * parent reads both pipes until they close (blocking in poll, so it uses
 * no CPU the workload could want), kills the child if it runs past its
 * time limit, and reaps it with wait4 for its rusage. Wall time is taken
 * with CLOCK_MONOTONIC from just before fork to just after wait4, so it
 * includes exec and loading, the same for every allocator.
 *
 * This file runs and parses; it does not decide what a failure means.
 */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

/* In the child, after fork: wire the descriptors and the environment,
 * then exec. Never returns. */
static void child(const struct bench_spawn *s, int out, int err)
{
    const char *in = s->stdin_path && *s->stdin_path ? s->stdin_path : "/dev/null";
    int fd = open(in, O_RDONLY);
    if (fd < 0 || dup2(fd, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) _exit(126);
    if (s->preload && *s->preload)
        setenv("LD_PRELOAD", s->preload, 1);
    else
        unsetenv("LD_PRELOAD");
    if (s->env) putenv((char *)s->env);
    execv(s->argv[0], s->argv);
    dprintf(2, "cannot run %s: %s\n", s->argv[0], strerror(errno));
    _exit(127);
}

/* Append what fd has to buf (keeping the first n-1 bytes for stdout, the
 * last ones for stderr); false at end of file. */
static bool drain(int fd, char *buf, size_t n, size_t *len, bool keep_tail)
{
    char tmp[4096];
    ssize_t got = read(fd, tmp, sizeof(tmp));
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) return true;
    if (got <= 0) return false;
    if (!buf || n < 2) return true;
    for (ssize_t i = 0; i < got; i++) {
        if (*len + 1 >= n) {
            if (!keep_tail) break;
            memmove(buf, buf + n / 2, *len - n / 2);
            *len -= n / 2;
        }
        buf[(*len)++] = tmp[i];
    }
    buf[*len] = 0;
    return true;
}

/* Read both pipes until both close or the deadline passes; true if the
 * deadline passed. */
static bool collect(const struct bench_spawn *s, int fds[2], double deadline)
{
    size_t len[2] = {0, 0};
    bool live[2] = {true, true};
    while (live[0] || live[1]) {
        struct pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
        for (int i = 0; i < 2; i++)
            if (!live[i]) p[i].fd = -1;
        double left = deadline - now_s();
        if (left <= 0) return true;
        int r = poll(p, 2, (int)(left * 1000) + 1);
        if (r < 0 && errno != EINTR) return false;
        for (int i = 0; i < 2 && r > 0; i++)
            if (live[i] && p[i].revents)
                live[i] = drain(fds[i], i ? s->err : s->out, i ? s->errsz : s->outsz, &len[i], i);
    }
    return false;
}

int st_bench_spawn(const struct bench_spawn *s, struct bench_run *r)
{
    int po[2], pe[2];
    if (s->out && s->outsz) s->out[0] = 0;
    if (s->err && s->errsz) s->err[0] = 0;
    if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC)) {
        snprintf(r->error, sizeof(r->error), "pipe: %s", strerror(errno));
        return -1;
    }
    fflush(NULL);
    double t0 = now_s();
    pid_t pid = fork();
    if (pid == 0) child(s, po[1], pe[1]);
    close(po[1]);
    close(pe[1]);
    if (pid < 0) {
        snprintf(r->error, sizeof(r->error), "fork: %s", strerror(errno));
        close(po[0]), close(pe[0]);
        return -1;
    }
    int fds[2] = {po[0], pe[0]};
    r->timed_out = collect(s, fds, t0 + s->timeout_s);
    if (r->timed_out) kill(pid, SIGKILL);
    close(po[0]);
    close(pe[0]);
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof(ru));
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
    }
    r->wall_s = now_s() - t0;
    r->user_s = tv_s(ru.ru_utime);
    r->sys_s = tv_s(ru.ru_stime);
    r->maxrss_kib = ru.ru_maxrss;
    r->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    r->done = true;
    return 0;
}

/* One "key=value" token: numbers go to the figures, malloc_from is kept. */
static void parse_token(char *tok, struct bench_run *r)
{
    char *eq = strchr(tok, '=');
    if (!eq || eq == tok) return;
    *eq = 0;
    const char *v = eq + 1;
    if (strcmp(tok, "malloc_from") == 0) {
        snprintf(r->malloc_from, sizeof(r->malloc_from), "%s", v);
        return;
    }
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end || r->nkv >= BENCH_MAX_KEYS || strlen(tok) >= sizeof(r->kv[0].key)) return;
    snprintf(r->kv[r->nkv].key, sizeof(r->kv[0].key), "%s", tok);
    r->kv[r->nkv++].value = d;
}

bool st_bench_parse(const char *out, struct bench_run *r)
{
    /* the last line holding a '=' */
    const char *line = NULL;
    for (const char *p = out; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (memchr(p, '=', n)) line = p;
        p = nl ? nl + 1 : p + n;
    }
    if (!line) return false;
    char buf[8192];
    size_t n = strcspn(line, "\n");
    if (n >= sizeof(buf)) n = sizeof(buf) - 1;
    memcpy(buf, line, n);
    buf[n] = 0;
    r->nkv = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save))
        parse_token(tok, r);
    return r->nkv > 0;
}

double st_bench_get(const struct bench_run *r, const char *key)
{
    for (size_t i = 0; i < r->nkv; i++)
        if (strcmp(r->kv[i].key, key) == 0) return r->kv[i].value;
    return NAN;
}

/* The last non-empty line of text, trimmed to fit n. */
static void last_line(char *buf, size_t n, const char *text)
{
    buf[0] = 0;
    if (!text) return;
    const char *end = text + strlen(text);
    while (end > text && (end[-1] == '\n' || end[-1] == ' ')) end--;
    const char *start = end;
    while (start > text && start[-1] != '\n') start--;
    size_t len = (size_t)(end - start);
    if (len >= n) len = n - 1;
    memcpy(buf, start, len);
    buf[len] = 0;
}

void st_bench_describe_failure(struct bench_run *r, const char *err)
{
    char tail[200];
    last_line(tail, sizeof(tail), err);
    const char *sep = tail[0] ? ": " : "";
    if (r->timed_out)
        snprintf(r->error, sizeof(r->error), "timed out after %.0f s%s%s", r->wall_s, sep, tail);
    else if (r->signal)
        snprintf(r->error, sizeof(r->error), "killed by signal %d (%s)%s%s", r->signal,
                 strsignal(r->signal), sep, tail);
    else if (r->exit_code != 0)
        snprintf(r->error, sizeof(r->error), "exit status %d%s%s", r->exit_code, sep, tail);
}

bool st_bench_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (!a || !b || stat(a, &sa) || stat(b, &sb)) return false;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}
