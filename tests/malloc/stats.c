/* SPDX-License-Identifier: MIT */
/*
 * The statistics of strata's malloc: strata_malloc_stats_get follows
 * allocations exactly (live bytes are the usable sizes of live blocks;
 * large blocks are counted with their mappings; a free by a thread that
 * does not own the block is a remote free); strata_stats_print writes the
 * same figures, a /proc/slabinfo 2.1 line per class in use (consistent
 * with what was allocated) and a /proc/buddyinfo line per segment;
 * strata_stats_print_json is valid JSON with the same figures; and
 * STRATA_STATS_FILE makes a process append its report at exit.
 */
#include <errno.h>
#include <pthread.h>

#include "strata/malloc.h"
#include "test.h"

#define KIB ((size_t)1024)
#define MIB ((size_t)1024 * 1024)

static strata_malloc_stats stats(void)
{
    strata_malloc_stats s;
    strata_malloc_stats_get(&s);
    return s;
}

/* The whole of a stream written by fn, as a string (caller frees). */
static char *capture(void (*fn)(FILE *))
{
    FILE *f = tmpfile();
    if (f == NULL) return NULL;
    fn(f);
    fflush(f);
    long len = ftell(f);
    char *text = malloc((size_t)len + 1);
    rewind(f);
    size_t n = fread(text, 1, (size_t)len, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

/* The number after `label` at the start of a line of text, or -1. */
static long long figure(const char *text, const char *label)
{
    size_t len = strlen(label);
    for (const char *line = text; line != NULL && *line; line = strchr(line, '\n')) {
        if (*line == '\n') line++;
        if (strncmp(line, label, len) == 0 && line[len] == ' ')
            return strtoll(line + len, NULL, 10);
    }
    return -1;
}

/* One /proc/slabinfo 2.1 line. */
typedef struct slabinfo_line {
    char name[64];
    size_t active, total, objsize;
    unsigned perslab, pages, limit, batch, shared;
    size_t active_slabs, slabs;
    unsigned avail;
} slabinfo_line;

static bool parse_slabinfo(const char *line, slabinfo_line *l)
{
    return sscanf(line, "%63s %zu %zu %zu %u %u : tunables %u %u %u : slabdata %zu %zu %u", l->name,
                  &l->active, &l->total, &l->objsize, &l->perslab, &l->pages, &l->limit, &l->batch,
                  &l->shared, &l->active_slabs, &l->slabs, &l->avail) == 12;
}

/* The slabinfo line of objects of `objsize` bytes, if any. */
static bool find_slabinfo(const char *text, size_t objsize, slabinfo_line *out)
{
    for (const char *line = text; line != NULL && *line; line = strchr(line, '\n')) {
        if (*line == '\n') line++;
        if (parse_slabinfo(line, out) && out->objsize == objsize) return true;
    }
    return false;
}

/* Lines "Node 0, zone <name> <count> <count> ..." with at least one count;
 * -1 if a line starts like one and is malformed. */
static int count_buddyinfo(const char *text)
{
    int n = 0;
    for (const char *line = text; line != NULL && *line; line = strchr(line, '\n')) {
        if (*line == '\n') line++;
        if (strncmp(line, "Node 0, zone ", 13) != 0) continue;
        char name[64];
        int used = 0;
        if (sscanf(line + 13, "%63s%n", name, &used) != 1) return -1;
        const char *p = line + 13 + used;
        int counts = 0;
        char *end;
        for (;;) {
            while (*p == ' ')
                p++;
            if (*p == '\n' || *p == '\0') break;
            strtoull(p, &end, 10);
            if (end == p) return -1;
            p = end;
            counts++;
        }
        if (counts == 0) return -1;
        n++;
    }
    return n;
}

/* ---- strata_malloc_stats_get ----------------------------------------------------- */

TEST(live_bytes_follow_small_and_medium_blocks)
{
    enum { N = 500 };
    static const size_t sizes[] = {1,        48,       100,       1000,     5000,
                                   16 * KIB, 20 * KIB, 100 * KIB, 700 * KIB};
    void **p = malloc(N * sizeof(void *));
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        strata_malloc_stats a = stats();
        size_t sum = 0, n = sizes[k] > 16 * KIB ? 20 : N;
        for (size_t i = 0; i < n; i++) {
            p[i] = strata_malloc(sizes[k]);
            REQUIRE(p[i] != NULL);
            sum += strata_malloc_usable_size(p[i]);
        }
        strata_malloc_stats b = stats();
        if (b.live_bytes - a.live_bytes != sum)
            fprintf(stderr, "  %zu blocks of %zu: live bytes +%zu, usable sizes %zu\n", n, sizes[k],
                    b.live_bytes - a.live_bytes, sum);
        CHECK_EQ(b.live_bytes - a.live_bytes, sum);
        CHECK(b.mapped_bytes >= b.live_bytes);
        CHECK(b.resident_bytes <= b.mapped_bytes);
        CHECK(b.segments >= 1);
        CHECK(b.mapped_bytes >= b.segments * 4 * MIB);
        for (size_t i = 0; i < n; i++)
            strata_free(p[i]);
        strata_malloc_stats c = stats();
        CHECK_EQ(c.live_bytes, a.live_bytes);
    }
    free(p);
}

TEST(large_blocks_are_counted)
{
    static const size_t sizes[] = {5 * MIB, 8 * MIB, 33 * MIB + 5};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        /* freed large mappings are cached (and still mapped): empty the
         * cache so that this block is a new mapping */
        strata_malloc_trim(0);
        strata_malloc_stats a = stats();
        void *p = strata_malloc(sizes[k]);
        REQUIRE(p != NULL);
        size_t us = strata_malloc_usable_size(p);
        strata_malloc_stats b = stats();
        CHECK_EQ(b.large_blocks, a.large_blocks + 1);
        CHECK(b.large_bytes >= a.large_bytes + sizes[k]);
        CHECK(b.mapped_bytes >= a.mapped_bytes + sizes[k]);
        if (b.live_bytes - a.live_bytes != us)
            fprintf(stderr, "  a large block of %zu (usable %zu): live bytes +%zu\n", sizes[k], us,
                    b.live_bytes - a.live_bytes);
        CHECK_EQ(b.live_bytes - a.live_bytes, us);
        strata_free(p);
        strata_malloc_stats c = stats();
        CHECK_EQ(c.large_blocks, a.large_blocks);
        CHECK_EQ(c.large_bytes, a.large_bytes);
        CHECK_EQ(c.live_bytes, a.live_bytes);
        CHECK(c.mapped_bytes + us + 4096 >= b.mapped_bytes); /* cached, not unmapped */
    }
    /* An aligned large block: live bytes are its usable size, not the
     * alignment padding in front of it. */
    strata_malloc_stats a = stats();
    void *p = strata_aligned_alloc(64 * MIB, 5 * MIB);
    REQUIRE(p != NULL);
    size_t us = strata_malloc_usable_size(p);
    strata_malloc_stats b = stats();
    if (b.live_bytes - a.live_bytes != us)
        fprintf(stderr, "  a 64 MiB-aligned block of 5 MiB (usable %zu): live bytes +%zu\n", us,
                b.live_bytes - a.live_bytes);
    CHECK_EQ(b.live_bytes - a.live_bytes, us);
    strata_free(p);
}

/* ---- remote frees -------------------------------------------------------------------- */

typedef struct owner {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int phase; /* 0 start, 1 blocks ready, 2 main freed them, 3 done */
    void *blocks[200];
    size_t n;
} owner;

static void wait_phase(owner *o, int phase)
{
    pthread_mutex_lock(&o->lock);
    while (o->phase < phase)
        pthread_cond_wait(&o->cond, &o->lock);
    pthread_mutex_unlock(&o->lock);
}

static void set_phase(owner *o, int phase)
{
    pthread_mutex_lock(&o->lock);
    o->phase = phase;
    pthread_cond_broadcast(&o->cond);
    pthread_mutex_unlock(&o->lock);
}

static void *owner_main(void *arg)
{
    owner *o = arg;
    for (size_t i = 0; i < o->n; i++)
        o->blocks[i] = strata_malloc(i % 3 == 0 ? 64 * KIB : 24 + i);
    set_phase(o, 1);
    wait_phase(o, 2); /* the owner is alive while main frees its blocks */
    for (int i = 0; i < 1000; i++)
        strata_free(strata_malloc(24 + (size_t)i % 200));
    return NULL;
}

TEST(remote_frees_are_counted)
{
    owner o = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .n = 200};
    strata_malloc_stats a = stats();
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, owner_main, &o) == 0);
    wait_phase(&o, 1);
    for (size_t i = 0; i < o.n; i++) {
        CHECK(o.blocks[i] != NULL);
        strata_free(o.blocks[i]);
    }
    strata_malloc_stats b = stats();
    set_phase(&o, 2);
    pthread_join(t, NULL);
    printf("  remote_frees +%" PRIu64 " for %zu frees by a thread that does not own the blocks\n",
           b.remote_frees - a.remote_frees, o.n);
    CHECK_EQ(b.remote_frees - a.remote_frees, o.n);
    /* The main thread's own frees are not remote. */
    strata_malloc_stats c = stats();
    for (int i = 0; i < 100; i++)
        strata_free(strata_malloc(40));
    strata_malloc_stats d = stats();
    CHECK_EQ(d.remote_frees, c.remote_frees);
    CHECK(d.heaps >= 1);
    CHECK(d.abandoned >= a.abandoned + 1);
}

/* ---- the text report ------------------------------------------------------------- */

TEST(text_report)
{
    enum { N = 1000 };
    void **p = malloc(N * sizeof(void *));
    for (int i = 0; i < N; i++) {
        p[i] = strata_malloc(100);
        REQUIRE(p[i] != NULL);
    }
    size_t objsize = strata_malloc_usable_size(p[0]);
    void *medium = strata_malloc(64 * KIB), *large = strata_malloc(8 * MIB);
    REQUIRE(medium != NULL && large != NULL);
    strata_malloc_stats s = stats();
    char *text = capture(strata_stats_print);
    REQUIRE(text != NULL);
    /* The figures, as strata_malloc_stats_get gives them. */
    char first[64];
    snprintf(first, sizeof(first), "strata stats: pid %ld\n", (long)getpid());
    CHECK(strncmp(text, first, strlen(first)) == 0);
    CHECK_EQ(figure(text, "live"), (long long)s.live_bytes);
    CHECK_EQ(figure(text, "mapped"), (long long)s.mapped_bytes);
    CHECK_EQ(figure(text, "segments"), (long long)s.segments);
    CHECK_EQ(figure(text, "large"), (long long)s.large_blocks);
    CHECK_EQ(figure(text, "heaps"), (long long)s.heaps);
    CHECK(figure(text, "resident") >= 0);
    CHECK(figure(text, "purges") >= 0);
    CHECK(strstr(text, "remote frees") != NULL);
    /* slabinfo: the header, and a line for the 100-byte blocks. */
    CHECK(strstr(text, "slabinfo - version: 2.1\n") != NULL);
    CHECK(strstr(text, "# name            <active_objs> <num_objs> <objsize> <objperslab> "
                       "<pagesperslab> : tunables") != NULL);
    slabinfo_line l;
    if (find_slabinfo(text, objsize, &l)) {
        CHECK(l.active >= N);
        CHECK(l.total >= l.active);
        CHECK(l.perslab > 0 && l.pages > 0);
        CHECK_EQ(l.total, l.slabs * l.perslab);
        CHECK(l.active_slabs <= l.slabs);
        CHECK(l.active_slabs * l.perslab >= l.active);
        CHECK(l.perslab * l.objsize <= (size_t)l.pages * 4096);
    } else {
        fprintf(stderr, "  no slabinfo line of objects of %zu bytes in:\n%s", objsize, text);
        CHECK(false);
    }
    /* buddyinfo: one well-formed line per segment in a heap. */
    int buddies = count_buddyinfo(text);
    CHECK(buddies >= 1);
    CHECK(buddies <= (int)s.segments);
    free(text);
    /* After the frees, the class shows no active objects. */
    for (int i = 0; i < N; i++)
        strata_free(p[i]);
    strata_free(medium);
    strata_free(large);
    text = capture(strata_stats_print);
    REQUIRE(text != NULL);
    if (find_slabinfo(text, objsize, &l)) CHECK_EQ(l.active, 0);
    CHECK_EQ(figure(text, "live"), (long long)stats().live_bytes);
    free(text);
    free(p);
}

/* ---- the JSON report ------------------------------------------------------------- */

/* Whether python3 can be run. */
static bool have_python(void)
{
    return system("python3 -c 'pass' >/dev/null 2>&1") == 0;
}

/* Braces and brackets balance outside strings (the fallback check). */
static bool balanced(const char *s)
{
    int depth = 0;
    bool in_string = false;
    for (; *s; s++) {
        if (in_string) {
            if (*s == '\\' && s[1])
                s++;
            else if (*s == '"')
                in_string = false;
        } else if (*s == '"') {
            in_string = true;
        } else if (*s == '{' || *s == '[') {
            depth++;
        } else if (*s == '}' || *s == ']') {
            if (--depth < 0) return false;
        }
    }
    return depth == 0 && !in_string;
}

TEST(json_report)
{
    enum { N = 300 };
    void *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = strata_malloc(200);
        REQUIRE(p[i] != NULL);
    }
    size_t objsize = strata_malloc_usable_size(p[0]);
    strata_malloc_stats s = stats();
    char path[] = "/tmp/strata-stats-json-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    FILE *f = fdopen(fd, "w");
    REQUIRE(f != NULL);
    strata_stats_print_json(f);
    fclose(f);
    f = fopen(path, "r");
    REQUIRE(f != NULL);
    char text[1 << 16];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    CHECK(balanced(text));
    if (have_python()) {
        /* Valid JSON, the same live bytes, and the class of 200-byte blocks. */
        char cmd[2048];
        /* Duplicate keys are an error: a parser would keep only one. */
        snprintf(cmd, sizeof(cmd),
                 "python3 -c 'import json,sys\n"
                 "def pairs(kv):\n"
                 "    keys=[k for k,v in kv]\n"
                 "    dup=set(k for k in keys if keys.count(k) > 1)\n"
                 "    assert not dup, \"duplicate keys %%s\" %% dup\n"
                 "    return dict(kv)\n"
                 "d=json.load(open(sys.argv[1]), object_pairs_hook=pairs)\n"
                 "assert isinstance(d, dict)\n"
                 "assert d[\"live_bytes\"] == %zu, d[\"live_bytes\"]\n"
                 "assert d[\"segments\"] == %zu, d[\"segments\"]\n"
                 "c=[x for x in d[\"classes\"] if x[\"size\"] == %zu]\n"
                 "assert c and c[0][\"active_objects\"] >= %d, c' %s",
                 s.live_bytes, s.segments, objsize, N, path);
        int rc = system(cmd);
        if (rc != 0) fprintf(stderr, "  the JSON report failed the check:\n%s\n", text);
        CHECK_EQ(rc, 0);
    } else {
        printf("  no python3: only the balance of braces is checked\n");
    }
    unlink(path);
    for (int i = 0; i < N; i++)
        strata_free(p[i]);
}

/* ---- STRATA_STATS_FILE ------------------------------------------------------------ */

#define CHILD_MARK "STRATA_TEST_STATS_CHILD"

/* Started again by the test below with CHILD_MARK set: allocate, leave the
 * blocks live, and exit, which writes the report. */
__attribute__((constructor)) static void stats_child(void)
{
    if (getenv(CHILD_MARK) == NULL) return;
    for (int i = 0; i < 77; i++)
        if (strata_malloc(100) == NULL) _exit(2);
    exit(0);
}

/* Run this program again as the child above, writing to path. */
static bool run_reporting_child(const char *path, pid_t *pid_out)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
        setenv(CHILD_MARK, "1", 1);
        setenv("STRATA_STATS_FILE", path, 1);
        execl("/proc/self/exe", "test-malloc-stats", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    *pid_out = pid;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

TEST(stats_file_at_exit)
{
    char path[] = "/tmp/strata-stats-file-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    pid_t a = 0, b = 0;
    CHECK(run_reporting_child(path, &a));
    CHECK(run_reporting_child(path, &b));
    FILE *f = fopen(path, "r");
    REQUIRE(f != NULL);
    static char text[1 << 17];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    unlink(path);
    /* Two reports appended, one per process, each starting as promised. */
    char first[64], second[64];
    snprintf(first, sizeof(first), "strata stats: pid %ld\n", (long)a);
    snprintf(second, sizeof(second), "\nstrata stats: pid %ld\n", (long)b);
    CHECK(strncmp(text, first, strlen(first)) == 0);
    char *next = strstr(text, second);
    CHECK(next != NULL);
    if (next != NULL) *next = '\0'; /* look at the first report alone */
    slabinfo_line l;
    CHECK(find_slabinfo(text, 112, &l) && l.active == 77);
    CHECK(figure(text, "live") >= 77 * 100);
}
