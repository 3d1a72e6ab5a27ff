/* SPDX-License-Identifier: MIT */
/*
 * forks.c — fork under load, for tests/tools/preload.sh (run with and
 * without libstrata.so preloaded, outputs compared). Run alone (the ctest
 * test preload/forks) it checks itself and exits 0 when everything held.
 *
 * The parent keeps live blocks with known contents and two threads that
 * allocate and free without pause; meanwhile it forks again and again. A
 * child must find the parent's blocks intact, free some of them, allocate
 * (also from a thread of its own), fork a grandchild that does the same,
 * and exit normally (so that a preloaded malloc writes its report). A
 * malloc that holds a lock across fork deadlocks here; one whose child
 * inherits a half-updated heap corrupts blocks. Every tenth child instead
 * runs this program again through exec, with the malloc's state started
 * afresh. The output depends on nothing but the program.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define FORKS 20
#define KEPT 200
#define BUSY_THREADS 2

static unsigned char *kept[KEPT];
static atomic_int stop;

static size_t kept_size(int i)
{
    return 8 + (size_t)i * 37 % 3000 + (i % 50 == 0 ? 300000 : 0);
}

static void fill(unsigned char *p, size_t n, unsigned tag)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(tag * 29u + i * 13u);
}

static int intact(const unsigned char *p, size_t n, unsigned tag)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(tag * 29u + i * 13u))
            return 0;
    return 1;
}

/* Allocate and free continuously, so that forks land mid-operation. */
static void *busy_main(void *arg)
{
    uint64_t s = (uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
    void *slots[64] = {0};
    while (!atomic_load(&stop)) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        unsigned i = (unsigned)(s % 64);
        free(slots[i]);
        slots[i] = malloc(1 + (s >> 8) % (s % 7 == 0 ? 200000 : 2000));
    }
    for (int i = 0; i < 64; i++)
        free(slots[i]);
    return NULL;
}

/* Churn some memory; 0 if every block kept its contents. */
static int churn(unsigned tag)
{
    unsigned char *p[100];
    int bad = 0;
    for (unsigned i = 0; i < 100; i++) {
        p[i] = malloc(16 + i * 40);
        if (p[i] == NULL)
            return 1;
        fill(p[i], 16 + i * 40, tag + i);
    }
    for (unsigned i = 0; i < 100; i++) {
        bad += !intact(p[i], 16 + i * 40, tag + i);
        free(p[i]);
    }
    return bad;
}

static void *churn_main(void *arg)
{
    return (void *)(uintptr_t)churn((unsigned)(uintptr_t)arg);
}

/* The parent's blocks that this process has not freed: all intact; then
 * free every other one of them (a grandchild sees the rest). */
static int check_kept(void)
{
    int bad = 0, other = 0;
    for (int i = 0; i < KEPT; i++) {
        if (kept[i] == NULL)
            continue;
        bad += !intact(kept[i], kept_size(i), (unsigned)i);
        if (other++ % 2 == 0) {
            free(kept[i]);
            kept[i] = NULL;
        }
    }
    return bad;
}

static int child_work(unsigned n, int depth)
{
    pthread_t t;
    void *thread_bad = (void *)1;
    int bad = check_kept() + churn(n);
    if (pthread_create(&t, NULL, churn_main, (void *)(uintptr_t)n) == 0)
        pthread_join(t, &thread_bad);
    bad += thread_bad != NULL;
    if (depth == 0) {
        fflush(stdout);
        pid_t g = fork();
        if (g == 0)
            exit(child_work(n + 1000, 1) != 0);
        int st = 1;
        if (g < 0 || waitpid(g, &st, 0) != g || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad++;
    }
    return bad;
}

static void run_exec_child(const char *self)
{
    execl(self, self, "--exec-child", (char *)NULL);
    fprintf(stderr, "forks: exec %s: %s\n", self, strerror(errno));
    _exit(127);
}

/* Fork once; the child's verdict as an exit status. */
static int fork_one(unsigned n, const char *self)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (n % 10 == 9)
            run_exec_child(self);
        exit(child_work(n, 0) != 0);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--exec-child") == 0)
        return churn(7) != 0;
    for (int i = 0; i < KEPT; i++) {
        kept[i] = malloc(kept_size(i));
        if (kept[i] == NULL)
            return 1;
        fill(kept[i], kept_size(i), (unsigned)i);
    }
    pthread_t t[BUSY_THREADS];
    for (uintptr_t i = 0; i < BUSY_THREADS; i++)
        pthread_create(&t[i], NULL, busy_main, (void *)(i + 1));
    int failed = 0;
    for (unsigned n = 0; n < FORKS; n++) {
        int st = fork_one(n, "/proc/self/exe");
        printf("child %u: %s\n", n, st == 0 ? "ok" : "FAILED");
        if (st != 0)
            fprintf(stderr, "forks: child %u: status %d\n", n, st);
        failed += st != 0;
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < BUSY_THREADS; i++)
        pthread_join(t[i], NULL);
    int bad = 0;
    for (int i = 0; i < KEPT; i++) {
        bad += !intact(kept[i], kept_size(i), (unsigned)i);
        free(kept[i]);
    }
    printf("parent: %d of %d blocks intact after %d forks\n", KEPT - bad, KEPT, FORKS);
    printf("forks: %s\n", failed == 0 && bad == 0 ? "ok" : "FAILED");
    return failed != 0 || bad != 0;
}
