/* SPDX-License-Identifier: MIT */
/*
 * fork() and strata's malloc: a parent whose threads keep allocating and
 * freeing calls fork() again and again; each child must be able to use
 * the heap at once: verify and free blocks the parent (and the parent's
 * other threads, which do not exist in the child) allocated before the
 * fork, allocate and free blocks of every regime, start a thread that
 * allocates, and exit 0. A child stuck on a lock strata held at the fork
 * is turned into a failure by alarm(). The parent checks every exit status
 * and that its own blocks survived its children.
 *
 * And the heap of threads past their exit destructor stays theirs in a
 * child, not one left for a new thread to adopt beside them; and forks
 * that land while other threads are inside malloc or free leave the child
 * sound (their heaps may be half-changed: the child never touches them).
 *
 * Under ThreadSanitizer a child of a multi-threaded process may not start
 * threads (TSan aborts it), so there the child skips that one step.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "strata/malloc.h"
#include "test.h"
#include "theap.h"

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

#define KIB ((size_t)1024)
#define MIB ((size_t)1024 * 1024)

static inline uint64_t pat_word(uint64_t tag, size_t i)
{
    uint64_t z = tag * 0x9e3779b97f4a7c15ull + i * 0xbf58476d1ce4e5b9ull;
    return z ^ (z >> 29);
}

static void fill(void *p, size_t n, uint64_t tag)
{
    uint64_t *w = p;
    size_t words = n / 8;
    for (size_t i = 0; i < words; i++)
        w[i] = pat_word(tag, i);
    uint64_t last = pat_word(tag, words);
    memcpy((char *)p + words * 8, &last, n % 8);
}

static bool verify(const void *p, size_t n, uint64_t tag)
{
    const uint64_t *w = p;
    size_t words = n / 8;
    for (size_t i = 0; i < words; i++)
        if (w[i] != pat_word(tag, i)) return false;
    uint64_t last = pat_word(tag, words);
    return memcmp((const char *)p + words * 8, &last, n % 8) == 0;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

typedef struct item {
    void *p;
    size_t size;
    uint64_t tag;
} item;

/* Sizes of every regime: small, medium, large. */
static const size_t regime_sizes[] = {1,        16,       48,        200,     1000,   4000,
                                      16 * KIB, 40 * KIB, 300 * KIB, MIB + 1, 5 * MIB};
#define NREGIMES (sizeof(regime_sizes) / sizeof(regime_sizes[0]))

/* ---- the parent's busy threads --------------------------------------------------- */

#define SHARED 64

/* Blocks the busy threads publish; the child frees the ones it finds. The
 * lock is held across fork() (pthread_atfork) so the child gets it free. */
static struct {
    pthread_mutex_t lock;
    item items[SHARED];
} shared = {.lock = PTHREAD_MUTEX_INITIALIZER};

static atomic_int stop;
static atomic_long busy_errors;

static void atfork_prepare(void)
{
    pthread_mutex_lock(&shared.lock);
}
static void atfork_release(void)
{
    pthread_mutex_unlock(&shared.lock);
}

/* Publish a block in slot k; the block that was there is verified and freed. */
static void publish(unsigned k, item it)
{
    pthread_mutex_lock(&shared.lock);
    item old = shared.items[k];
    shared.items[k] = it;
    pthread_mutex_unlock(&shared.lock);
    if (old.p != NULL) {
        if (!verify(old.p, old.size, old.tag)) {
            fprintf(stderr, "  busy thread: shared block of %zu overwritten\n", old.size);
            atomic_fetch_add(&busy_errors, 1);
        }
        strata_free(old.p);
    }
}

static void *busy_main(void *arg)
{
    uint64_t rng = (uint64_t)(uintptr_t)arg;
    item local[32];
    memset(local, 0, sizeof(local));
    for (unsigned long step = 0; !atomic_load(&stop); step++) {
        if (step % 64 == 0) { /* busy, but leave the 2 cores some room for the children */
            struct timespec pause = {0, 100000};
            nanosleep(&pause, NULL);
        }
        unsigned k = (unsigned)(rng_next(&rng) % 32);
        if (local[k].p != NULL) {
            if (!verify(local[k].p, local[k].size, local[k].tag)) {
                fprintf(stderr, "  busy thread: block of %zu overwritten\n", local[k].size);
                atomic_fetch_add(&busy_errors, 1);
            }
            if (rng_next(&rng) % 4 == 0)
                publish((unsigned)(rng_next(&rng) % SHARED), local[k]);
            else
                strata_free(local[k].p);
            local[k].p = NULL;
            continue;
        }
        size_t n = rng_next(&rng) % 64 == 0 ? regime_sizes[rng_next(&rng) % NREGIMES]
                                            : 1 + rng_next(&rng) % 2048;
        local[k] = (item){strata_malloc(n), n, rng_next(&rng)};
        if (local[k].p == NULL) {
            atomic_fetch_add(&busy_errors, 1);
            continue;
        }
        fill(local[k].p, n, local[k].tag);
    }
    for (unsigned k = 0; k < 32; k++)
        strata_free(local[k].p);
    return NULL;
}

/* ---- the child ------------------------------------------------------------------ */

static void *child_thread_main(void *arg)
{
    long *bad = arg;
    for (int r = 0; r < 10; r++)
        for (size_t k = 0; k < NREGIMES; k++) {
            void *p = strata_malloc(regime_sizes[k]);
            if (p == NULL) {
                ++*bad;
                continue;
            }
            size_t n = regime_sizes[k] < 64 * KIB ? regime_sizes[k] : 64 * KIB;
            fill(p, n, (uint64_t)r);
            if (!verify(p, n, (uint64_t)r)) ++*bad;
            strata_free(p);
        }
    return NULL;
}

/* Everything the child does; returns its exit code (0: all well). */
static int child_work(item *mine, size_t nmine, uint64_t seed)
{
    int bad = 0;
    /* The parent's blocks: intact; free half of them. */
    for (size_t i = 0; i < nmine; i++) {
        if (!verify(mine[i].p, mine[i].size, mine[i].tag)) {
            fprintf(stderr, "  child: parent's block of %zu overwritten\n", mine[i].size);
            bad |= 1;
        }
        if (i % 2 == 0) strata_free(mine[i].p);
    }
    /* Blocks of the parent's other threads (no longer running here). */
    for (unsigned k = 0; k < SHARED; k++) {
        pthread_mutex_lock(&shared.lock);
        item it = shared.items[k];
        shared.items[k].p = NULL;
        pthread_mutex_unlock(&shared.lock);
        if (it.p == NULL) continue;
        if (!verify(it.p, it.size, it.tag)) {
            fprintf(stderr, "  child: busy thread's block of %zu overwritten\n", it.size);
            bad |= 2;
        }
        strata_free(it.p);
    }
    /* New blocks of every regime, calloc'ed and realloc'ed. */
    item fresh[NREGIMES * 4];
    for (size_t i = 0; i < NREGIMES * 4; i++) {
        size_t n = regime_sizes[i % NREGIMES];
        void *p = i % 3 == 0 ? strata_calloc(1, n) : strata_malloc(n);
        if (p == NULL) {
            fprintf(stderr, "  child: allocation of %zu failed (errno %d)\n", n, errno);
            return bad | 4;
        }
        fresh[i] = (item){p, n, seed + i};
        fill(p, n, fresh[i].tag);
    }
    for (size_t i = 0; i < NREGIMES * 4; i += 2) {
        size_t n = fresh[i].size * 2 + 1;
        void *p = strata_realloc(fresh[i].p, n);
        if (p == NULL || !verify(p, fresh[i].size, fresh[i].tag)) {
            fprintf(stderr, "  child: realloc of %zu failed or lost contents\n", fresh[i].size);
            return bad | 8;
        }
        fresh[i].p = p;
    }
    /* A thread of its own (not under TSan: see the file comment). */
    if (!UNDER_TSAN) {
        long tbad = 0;
        pthread_t t;
        if (pthread_create(&t, NULL, child_thread_main, &tbad) != 0) return bad | 16;
        pthread_join(t, NULL);
        if (tbad) fprintf(stderr, "  child's thread: %ld failures\n", tbad);
        bad |= tbad ? 32 : 0;
    } else {
        long tbad = 0;
        child_thread_main(&tbad);
        bad |= tbad ? 32 : 0;
    }
    for (size_t i = 0; i < NREGIMES * 4; i++)
        strata_free(fresh[i].p);
    for (size_t i = 1; i < nmine; i += 2)
        strata_free(mine[i].p);
    return bad;
}

/* ---- the test --------------------------------------------------------------------- */

TEST(fork_from_multithreaded_parent)
{
    uint64_t seed = test_seed("fork");
    enum { BUSY = 4, MINE = 3 * (int)NREGIMES };
    long forks = test_steps(20);
    if (forks < 5) forks = 5;
    static bool atfork_done;
    if (!atfork_done) REQUIRE(pthread_atfork(atfork_prepare, atfork_release, atfork_release) == 0);
    atfork_done = true;
    atomic_store(&stop, 0);
    atomic_store(&busy_errors, 0);
    pthread_t busy[BUSY];
    for (int i = 0; i < BUSY; i++)
        REQUIRE(pthread_create(&busy[i], NULL, busy_main, (void *)(uintptr_t)(seed + 1 + i)) == 0);
    item mine[MINE];
    for (int i = 0; i < MINE; i++) {
        size_t n = regime_sizes[i % NREGIMES];
        mine[i] = (item){strata_malloc(n), n, seed ^ (uint64_t)i};
        REQUIRE(mine[i].p != NULL);
        fill(mine[i].p, n, mine[i].tag);
    }
    for (long f = 0; f < forks; f++) {
        /* Let the threads get going between forks. */
        struct timespec pause = {0, 2000000};
        nanosleep(&pause, NULL);
        fflush(NULL);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            alarm(20); /* a deadlock becomes SIGALRM */
            _exit(child_work(mine, MINE, seed + (uint64_t)f));
        }
        int status = 0;
        REQUIRE(waitpid(pid, &status, 0) == pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "  fork %ld: child %s %d\n", f,
                    WIFSIGNALED(status) ? "killed by signal" : "exited with",
                    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            CHECK(false);
        }
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < BUSY; i++)
        pthread_join(busy[i], NULL);
    for (unsigned k = 0; k < SHARED; k++)
        publish(k, (item){0});
    for (int i = 0; i < MINE; i++) {
        CHECK(verify(mine[i].p, mine[i].size, mine[i].tag));
        strata_free(mine[i].p);
    }
    CHECK_EQ(atomic_load(&busy_errors), 0);
}

/* A child of a single-threaded parent, and a grandchild: the heap works at
 * every level, including frees of the ancestors' blocks. */
static int nested(int depth, item *blocks, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!verify(blocks[i].p, blocks[i].size, blocks[i].tag)) return 1;
    void *p = strata_malloc(100 * (size_t)(depth + 1));
    if (p == NULL) return 2;
    strata_free(p);
    if (depth == 0) return 0;
    pid_t pid = fork();
    if (pid == 0) {
        alarm(20);
        for (size_t i = 0; i < n; i++)
            strata_free(blocks[i].p);
        _exit(nested(depth - 1, blocks, 0));
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) return 3;
    return WIFEXITED(status) ? WEXITSTATUS(status)
                             : 100 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

TEST(nested_forks)
{
    item blocks[NREGIMES];
    for (size_t i = 0; i < NREGIMES; i++) {
        blocks[i] = (item){strata_malloc(regime_sizes[i]), regime_sizes[i], i * 77};
        REQUIRE(blocks[i].p != NULL);
        fill(blocks[i].p, blocks[i].size, blocks[i].tag);
    }
    CHECK_EQ(nested(3, blocks, NREGIMES), 0);
    for (size_t i = 0; i < NREGIMES; i++) {
        CHECK(verify(blocks[i].p, blocks[i].size, blocks[i].tag));
        strata_free(blocks[i].p);
    }
}

/* ---- the heap of exiting threads stays theirs in a child --------------------------- */

static pthread_key_t late_key;

/* Runs after strata's own destructor of the thread (its key came first):
 * the thread's heap is gone, so this allocates from the shared heap. */
static void allocate_late(void *unused)
{
    (void)unused;
    strata_free(strata_malloc(100));
}

static void *allocate_then_exit(void *unused)
{
    (void)unused;
    strata_free(strata_malloc(100)); /* a heap, and strata's exit destructor */
    pthread_setspecific(late_key, &late_key);
    return NULL;
}

TEST(shared_heap_stays_shared_in_a_child)
{
    strata_free(strata_malloc(1)); /* strata's key is made before ours */
    REQUIRE(pthread_key_create(&late_key, allocate_late) == 0);
    int before = (int)st_theap_count_in_state(ST_HEAP_ACTIVE);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, allocate_then_exit, NULL) == 0);
    pthread_join(t, NULL);
    int after = (int)st_theap_count_in_state(ST_HEAP_ACTIVE);
    printf("  active heaps %d, %d once an exiting thread allocated\n", before, after);
    REQUIRE(after >= 2); /* the main thread's and the shared one (made now or earlier) */
    pid_t pid = fork();
    if (pid == 0) /* both still active: the shared heap is nobody's to adopt */
        _exit((int)st_theap_count_in_state(ST_HEAP_ACTIVE) == after ? 0 : 1);
    int status = 0;
    REQUIRE(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    pthread_key_delete(late_key);
}

/* ---- fork while other threads are inside malloc and free --------------------------- */

static atomic_int stop_busy;

static void *busy_worker(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    void *p[64] = {0};
    while (!atomic_load(&stop_busy)) {
        unsigned i = (unsigned)rand_r(&seed) % 64, kind = (unsigned)rand_r(&seed) % 3;
        strata_free(p[i]);
        size_t n = kind == 0   ? 20000 + (size_t)rand_r(&seed) % 300000 /* medium */
                   : kind == 1 ? 1 + (size_t)rand_r(&seed) % 16000
                               : 1 + (size_t)rand_r(&seed) % 256;
        p[i] = strata_malloc(n);
    }
    for (int i = 0; i < 64; i++)
        strata_free(p[i]);
    return NULL;
}

static atomic_int child_violations;

/* In the child: a new thread's heap must be a sound one. */
static void *child_heap_user(void *unused)
{
    (void)unused;
    void *first = strata_malloc(20000), *keep[64] = {0};
    st_theap *h = st_segment_of(first)->owner;
    atomic_fetch_add(&child_violations, st_theap_check(h));
    for (int i = 0; i < 4000; i++) {
        strata_free(keep[i % 64]);
        keep[i % 64] = strata_malloc(1 + (size_t)(i * 7919) % 300000);
    }
    atomic_fetch_add(&child_violations, st_theap_check(h));
    for (int i = 0; i < 64; i++)
        strata_free(keep[i]);
    strata_free(first);
    return NULL;
}

TEST(fork_while_other_threads_allocate)
{
    enum { WORKERS = 3, FORKS = 40, CHILD_THREADS = 4 };
    atomic_store(&stop_busy, 0);
    pthread_t w[WORKERS];
    for (uintptr_t i = 0; i < WORKERS; i++)
        REQUIRE(pthread_create(&w[i], NULL, busy_worker, (void *)(i + 1)) == 0);
    int failed = 0;
    for (int f = 0; f < FORKS; f++) {
        usleep(1000);
        pid_t pid = fork();
        if (pid == 0) {
            alarm(20);
            if (!UNDER_TSAN) { /* TSan aborts a child of a threaded parent that starts threads */
                pthread_t c[CHILD_THREADS];
                for (int i = 0; i < CHILD_THREADS; i++)
                    if (pthread_create(&c[i], NULL, child_heap_user, NULL) != 0)
                        _exit(2);
                for (int i = 0; i < CHILD_THREADS; i++)
                    pthread_join(c[i], NULL);
            } else {
                child_heap_user(NULL);
            }
            _exit(atomic_load(&child_violations) == 0 ? 0 : 1);
        }
        int status = 0;
        REQUIRE(pid > 0 && waitpid(pid, &status, 0) == pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            if (failed++ < 3)
                fprintf(stderr, "  fork %d: child status %#x\n", f, status);
        }
    }
    atomic_store(&stop_busy, 1);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(w[i], NULL);
    printf("  %d of %d children failed\n", failed, FORKS);
    CHECK_EQ(failed, 0);
}
