/* SPDX-License-Identifier: MIT */
/*
 * cmd_run.c — `strata run [OPTIONS] -- CMD ARGS...`: run any dynamically
 * linked program with libstrata.so preloaded, so that every malloc, free,
 * operator new and delete of the program (and of the programs it starts)
 * goes to strata; with --stats, print strata's report of each process and
 * a summary line (exit status, wall time, max RSS) when it ends.
 *
 * The library is found beside this program (a build tree) or in the lib
 * directories of the prefix it is installed in; STRATA_LIB overrides. It is
 * put in front of an existing LD_PRELOAD. The reports are written by the
 * library itself (STRATA_STATS_FILE, one per process, appended); this file
 * only sets the environment, runs the program and shows the file.
 *
 * It does not interpret the program's output, and cannot help a program
 * that ignores LD_PRELOAD (statically linked, set-user-ID): it says so when
 * --stats finds no report. Exit status: the program's, 128+N if signal N
 * killed it, 127 if it cannot be found, 126 if it cannot be executed, 2 for
 * bad usage or when the library is not found.
 */
#define _GNU_SOURCE /* asprintf, mkostemp, pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "strata/defs.h"

#define LIB_NAME "libstrata.so"
#define DECAY_MAX_MS 60000L
#define REPORT_MARK "strata stats: pid "

struct options {
    bool stats;             /* print the reports and a summary */
    const char *stats_file; /* keep the reports in this file (implies stats) */
    const char *decay;      /* STRATA_DECAY_MS, NULL: the library's default */
    char **cmd;             /* the program and its arguments */
};

static void usage(FILE *out)
{
    fputs("usage: strata run [OPTIONS] [--] CMD [ARGS...]\n"
          "\n"
          "Run CMD with strata's malloc (libstrata.so through LD_PRELOAD).\n"
          "\n"
          "  --stats          when CMD ends, print strata's report of every process it ran\n"
          "                   (size classes as /proc/slabinfo lines, segments as\n"
          "                   /proc/buddyinfo lines) and a summary line, on stderr\n"
          "  --stats-file F   append the reports to F instead (kept); implies --stats\n"
          "  --decay MS       return free pages to the OS MS milliseconds after they\n"
          "                   become free (0..60000; the library's default is 1000)\n"
          "  --help           this text\n"
          "\n"
          "The library is looked for beside the strata program, then in ../lib,\n"
          "../lib64 and ../lib/<multiarch> from it; STRATA_LIB=PATH overrides.\n"
          "An existing LD_PRELOAD is kept, after strata's library.\n"
          "\n"
          "Exit status: CMD's; 128+N if signal N killed it; 127 if CMD is not found,\n"
          "126 if it cannot be executed; 2 for bad usage or a missing library.\n",
          out);
}

static int usage_error(const char *fmt, const char *arg)
{
    fputs("strata run: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n(strata run --help for the options)\n", stderr);
    return 2;
}

/* "--name VALUE" or "--name=VALUE": the value, advancing *i; NULL if argv[*i]
 * is not this option. *missing is set when the value is absent. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

static bool valid_decay(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return end != s && *end == '\0' && errno == 0 && v >= 0 && v <= DECAY_MAX_MS;
}

/* One option; 0 taken, 1 not an option (the command starts here), 2 error,
 * 3 --help. */
static int parse_one(int argc, char **argv, int *i, struct options *o)
{
    const char *a = argv[*i];
    bool missing = false;
    const char *v;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
        return 3;
    if (strcmp(a, "--stats") == 0)
        return o->stats = true, 0;
    if ((v = opt_value(argc, argv, i, "--stats-file", &missing)) && *v)
        return o->stats_file = v, o->stats = true, 0;
    if (v && !*v)
        return usage_error("--stats-file needs a file name%s", "");
    if ((v = opt_value(argc, argv, i, "--decay", &missing))) {
        if (!valid_decay(v))
            return usage_error("bad value for --decay: '%s' (milliseconds, 0..60000)", v);
        return o->decay = v, 0;
    }
    if (missing)
        return usage_error("option %s needs a value", a);
    if (a[0] == '-' && a[1] != '\0')
        return usage_error("unknown option '%s'", a);
    return 1;
}

/* 0 with o->cmd set, 2 bad usage, 3 --help. */
static int parse_args(int argc, char **argv, struct options *o)
{
    memset(o, 0, sizeof(*o));
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        int r = parse_one(argc, argv, &i, o);
        if (r == 1)
            break;
        if (r != 0)
            return r;
    }
    if (i >= argc)
        return usage_error("no command given%s", "");
    o->cmd = argv + i;
    return 0;
}

/* ------------------------------------------------------------------ */
/* finding the library                                                 */

/* The places to look, in order, and a list of them for the error message. */
struct search {
    char looked[4 * PATH_MAX];
    size_t used;
};

static void note_looked(struct search *s, const char *path)
{
    int n = snprintf(s->looked + s->used, sizeof(s->looked) - s->used, "\n  %s", path);
    if (n > 0 && (size_t)n < sizeof(s->looked) - s->used)
        s->used += (size_t)n;
}

/* out = the canonical path of dir/name if that is a regular file. */
static bool try_file(struct search *s, const char *dir, const char *name, char *out)
{
    char path[2 * PATH_MAX];
    struct stat st;
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
        return false;
    note_looked(s, path);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && realpath(path, out) != NULL;
}

/* The development name (libstrata.so), then the run-time one
 * (libstrata.so.MAJOR), which is all a split runtime package ships. */
static bool try_dir(struct search *s, const char *dir, char *out)
{
    char soname[64];
    snprintf(soname, sizeof(soname), LIB_NAME ".%.*s", (int)strcspn(strata_version(), "."),
             strata_version());
    return try_file(s, dir, LIB_NAME, out) || try_file(s, dir, soname, out);
}

/* ../lib/<multiarch triplet>/ (Debian's CMAKE_INSTALL_LIBDIR under /usr):
 * any directory there that holds the library. */
static bool try_multiarch(struct search *s, const char *prefix, char *out)
{
    char pattern[PATH_MAX + 32];
    glob_t g;
    bool found = false;
    if (snprintf(pattern, sizeof(pattern), "%s/lib/*-*/", prefix) >= (int)sizeof(pattern))
        return false;
    note_looked(s, pattern);
    if (glob(pattern, GLOB_ONLYDIR, NULL, &g) != 0)
        return false;
    for (size_t i = 0; i < g.gl_pathc && !found; i++) {
        size_t len = s->used;
        found = try_dir(s, g.gl_pathv[i], out);
        s->used = len; /* the pattern above already names these */
        s->looked[len] = '\0';
    }
    globfree(&g);
    return found;
}

static bool find_beside_program(struct search *s, char *out)
{
    char exe[PATH_MAX], dir[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return false;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash == NULL)
        return false;
    *slash = '\0';
    if (try_dir(s, exe, out))
        return true;
    snprintf(dir, sizeof(dir), "%s/../lib", exe);
    if (try_dir(s, dir, out))
        return true;
    snprintf(dir, sizeof(dir), "%s/../lib64", exe);
    if (try_dir(s, dir, out))
        return true;
    snprintf(dir, sizeof(dir), "%s/..", exe);
    return try_multiarch(s, dir, out);
}

/* The library to preload: STRATA_LIB if set (a bare name is left to the
 * dynamic linker's search), else found from this program's place. */
static bool find_library(char *out)
{
    const char *env = getenv("STRATA_LIB");
    if (env && *env) {
        if (strchr(env, '/') == NULL && strlen(env) < PATH_MAX)
            return strcpy(out, env), true;
        if (realpath(env, out) != NULL && access(out, R_OK) == 0)
            return true;
        fprintf(stderr, "strata run: STRATA_LIB=%s: %s\n", env, strerror(errno));
        return false;
    }
    struct search s = {.used = 0};
    s.looked[0] = '\0';
    if (find_beside_program(&s, out))
        return true;
    fprintf(stderr,
            "strata run: cannot find %s; looked for it in:%s\n"
            "Set STRATA_LIB to its path.\n",
            LIB_NAME, s.looked);
    return false;
}

/* ------------------------------------------------------------------ */
/* the environment of the program                                      */

/* LD_PRELOAD = lib, then what was there. The dynamic linker splits the
 * list at spaces and colons, so a path holding one cannot be named. */
static bool set_preload(const char *lib)
{
    if (strpbrk(lib, " :\t\n") != NULL) {
        fprintf(stderr,
                "strata run: cannot preload '%s': LD_PRELOAD cannot name a path holding a\n"
                "space or a colon; set STRATA_LIB to a copy of the library elsewhere\n",
                lib);
        return false;
    }
    const char *old = getenv("LD_PRELOAD");
    char *val = NULL;
    int n = old && *old ? asprintf(&val, "%s:%s", lib, old) : asprintf(&val, "%s", lib);
    if (n < 0 || setenv("LD_PRELOAD", val, 1) != 0) {
        free(val);
        fprintf(stderr, "strata run: cannot set LD_PRELOAD: %s\n", strerror(errno));
        return false;
    }
    free(val);
    return true;
}

/* Where the reports go: the user's file (made absolute, since the program
 * may change directory before it exits) or a fresh temporary file. Its
 * size now is where this run's reports will start. */
static int open_stats(const struct options *o, char *path, off_t *start)
{
    int fd;
    if (o->stats_file) {
        char cwd[PATH_MAX];
        if (o->stats_file[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL)
            snprintf(path, PATH_MAX, "%s", o->stats_file);
        else if (snprintf(path, PATH_MAX, "%s/%s", cwd, o->stats_file) >= PATH_MAX)
            return errno = ENAMETOOLONG, -1;
        fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(path, PATH_MAX, "%s/strata-run.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        fd = mkostemp(path, O_CLOEXEC);
    }
    if (fd >= 0)
        *start = lseek(fd, 0, SEEK_END);
    return fd;
}

static bool set_environment(const struct options *o, const char *lib, const char *stats_path)
{
    if (!set_preload(lib))
        return false;
    bool ok = true;
    if (o->decay)
        ok = setenv("STRATA_DECAY_MS", o->decay, 1) == 0;
    if (ok && stats_path)
        ok = setenv("STRATA_SHOW_STATS", "1", 1) == 0 &&
             setenv("STRATA_STATS_FILE", stats_path, 1) == 0;
    if (!ok)
        fprintf(stderr, "strata run: cannot set the environment: %s\n", strerror(errno));
    return ok;
}

/* ------------------------------------------------------------------ */
/* running it                                                          */

static volatile sig_atomic_t child_pid;
static struct sigaction saved_int, saved_quit;

/* A termination request sent to strata alone (kill, timeout) is passed on:
 * the program decides how to die and its reports are still printed. */
static void forward_signal(int sig)
{
    if (child_pid > 0)
        kill((pid_t)child_pid, sig);
}

/* Like system(): while the program runs, the terminal's interrupt and quit
 * keys are for it (they reach the whole process group), not for us. */
static void take_signals(void)
{
    struct sigaction ign = {.sa_handler = SIG_IGN}, fwd = {.sa_handler = forward_signal};
    sigemptyset(&ign.sa_mask);
    sigemptyset(&fwd.sa_mask);
    fwd.sa_flags = SA_RESTART;
    sigaction(SIGINT, &ign, &saved_int);
    sigaction(SIGQUIT, &ign, &saved_quit);
    sigaction(SIGTERM, &fwd, NULL);
    sigaction(SIGHUP, &fwd, NULL);
}

/* In the child: the dispositions strata was started with, then exec. A
 * failure is reported to the parent through the close-on-exec pipe. */
static void exec_child(char **cmd, int report_fd)
{
    sigaction(SIGINT, &saved_int, NULL);
    sigaction(SIGQUIT, &saved_quit, NULL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    execvp(cmd[0], cmd);
    int err = errno;
    ssize_t w = write(report_fd, &err, sizeof(err));
    (void)w;
    _exit(127);
}

/* Start cmd: its pid, or -1 with *exec_err set (errno of fork or exec). */
static pid_t spawn(char **cmd, int *exec_err)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return *exec_err = errno, -1;
    pid_t pid = fork();
    if (pid == 0)
        exec_child(cmd, p[1]);
    close(p[1]);
    if (pid < 0) {
        *exec_err = errno;
        close(p[0]);
        return -1;
    }
    child_pid = pid;
    ssize_t n;
    while ((n = read(p[0], exec_err, sizeof(*exec_err))) < 0 && errno == EINTR)
        ;
    close(p[0]);
    if (n != (ssize_t)sizeof(*exec_err))
        return pid;
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    return -1;
}

/* A shell's status for a program that could not be started. */
static int exec_failure(const char *name, int err)
{
    fprintf(stderr, "strata run: cannot run '%s': %s\n", name, strerror(err));
    return err == ENOENT || err == ENOTDIR ? 127 : 126;
}

static double seconds(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The number of process reports in this run's part of the report file,
 * copied to stderr if echo. */
static int read_reports(int fd, off_t start, bool echo)
{
    FILE *f = fdopen(dup(fd), "r");
    if (f == NULL || fseeko(f, start, SEEK_SET) != 0) {
        if (f)
            fclose(f);
        fprintf(stderr, "strata run: cannot read the reports: %s\n", strerror(errno));
        return 0;
    }
    char line[4096];
    int reports = 0;
    bool at_start = true;
    while (fgets(line, sizeof(line), f)) {
        if (at_start && strncmp(line, REPORT_MARK, strlen(REPORT_MARK)) == 0)
            reports++;
        if (echo)
            fputs(line, stderr);
        at_start = strchr(line, '\n') != NULL;
    }
    fclose(f);
    return reports;
}

static void print_summary(const char *name, int status, double wall, const struct rusage *ru)
{
    fprintf(stderr, "strata run: %s ", name);
    if (WIFSIGNALED(status))
        fprintf(stderr, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        fprintf(stderr, "exit status %d", WEXITSTATUS(status));
    fprintf(stderr, ", wall %.3f s, user %.3f s, system %.3f s, max RSS %.1f MiB\n", wall,
            seconds(ru->ru_utime), seconds(ru->ru_stime), (double)ru->ru_maxrss / 1024.0);
}

static int exit_code(int status)
{
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

/* Run it, wait for it; the reports and summary with --stats. */
static int run_and_report(const struct options *o, int stats_fd, off_t start)
{
    int err = 0, status = 0;
    struct rusage ru;
    take_signals();
    double t0 = now();
    pid_t pid = spawn(o->cmd, &err);
    if (pid < 0)
        return exec_failure(o->cmd[0], err);
    while (wait4(pid, &status, 0, &ru) < 0)
        if (errno != EINTR) {
            fprintf(stderr, "strata run: wait: %s\n", strerror(errno));
            return 1;
        }
    double wall = now() - t0;
    child_pid = 0;
    if (o->stats) {
        int reports = read_reports(stats_fd, start, o->stats_file == NULL);
        if (reports == 0)
            fprintf(stderr, "strata run: no report was written: %s did not run on strata's "
                            "malloc\n(a statically linked or set-user-ID program ignores "
                            "LD_PRELOAD)\n", o->cmd[0]);
        print_summary(o->cmd[0], status, wall, &ru);
    } else if (WIFSIGNALED(status)) {
        fprintf(stderr, "strata run: %s killed by signal %d (%s)\n", o->cmd[0],
                WTERMSIG(status), strsignal(WTERMSIG(status)));
    }
    return exit_code(status);
}

int cmd_run(int argc, char **argv)
{
    struct options o;
    int r = parse_args(argc, argv, &o);
    if (r == 3) {
        usage(stdout);
        return 0;
    }
    if (r != 0)
        return r;
    char lib[PATH_MAX], stats_path[PATH_MAX];
    if (!find_library(lib))
        return 2;
    int stats_fd = -1;
    off_t start = 0;
    if (o.stats && (stats_fd = open_stats(&o, stats_path, &start)) < 0) {
        fprintf(stderr, "strata run: cannot open a stats file: %s\n", strerror(errno));
        return 2;
    }
    if (!set_environment(&o, lib, o.stats ? stats_path : NULL))
        r = 2;
    else
        r = run_and_report(&o, stats_fd, start);
    if (stats_fd >= 0) {
        close(stats_fd);
        if (!o.stats_file)
            unlink(stats_path);
    }
    return r;
}
