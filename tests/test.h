/* SPDX-License-Identifier: MIT */
/*
 * test.h — the whole test framework: one executable per test file, each
 * TEST() registered before main, CHECK() macros that report file:line and
 * keep going, a seeded PRNG whose seed is printed (replay with
 * STRATA_SEED=N), and a helper that runs a function in a child process and
 * expects it to abort with a given message (for bad-input tests of APIs
 * whose only error channel is abort).
 *
 * STRATA_TEST_SCALE (default 1.0) scales the step counts of randomized
 * tests, so sanitizer builds can run fewer steps.
 */
#ifndef STRATA_TEST_H
#define STRATA_TEST_H

#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef void (*test_fn)(void);

static struct {
    const char *names[512];
    test_fn fns[512];
    int count;
    int failures_in_test;
    uint64_t seed;
} test_state;

#define TEST(name)                                                                                 \
    static void test_##name(void);                                                                 \
    __attribute__((constructor)) static void test_register_##name(void)                            \
    {                                                                                              \
        test_state.names[test_state.count] = #name;                                                \
        test_state.fns[test_state.count++] = test_##name;                                          \
    }                                                                                              \
    static void test_##name(void)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);             \
            test_state.failures_in_test++;                                                         \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        if (va_ != vb_) {                                                                          \
            fprintf(stderr, "  %s:%d: CHECK_EQ failed: %s == %s (%lld != %lld)\n", __FILE__,       \
                    __LINE__, #a, #b, va_, vb_);                                                   \
            test_state.failures_in_test++;                                                         \
        }                                                                                          \
    } while (0)

/* Stop the current test at the first failure (for loops of thousands of
 * steps). The condition is evaluated exactly once. */
#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  %s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond);           \
            test_state.failures_in_test++;                                                         \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* A 64-bit PRNG (splitmix64): small, fast, good enough for test traces. */
static uint64_t test_rng_state;
static inline uint64_t test_rand(void)
{
    uint64_t z = (test_rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
/* Uniform in [lo, hi]. */
static inline uint64_t test_rand_range(uint64_t lo, uint64_t hi)
{
    return lo + test_rand() % (hi - lo + 1);
}

/* Seed the PRNG for a randomized test and print the seed. */
static inline uint64_t test_seed(const char *what)
{
    const char *env = getenv("STRATA_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 0)
                        : ((uint64_t)time(NULL) * 2654435761u) ^ (uint64_t)getpid();
    test_rng_state = seed;
    printf("  %s: seed %" PRIu64 " (replay with STRATA_SEED=%" PRIu64 ")\n", what, seed, seed);
    fflush(stdout);
    return seed;
}

/* n scaled by STRATA_TEST_SCALE, at least 1. */
static inline long test_steps(long n)
{
    const char *env = getenv("STRATA_TEST_SCALE");
    double scale = env ? strtod(env, NULL) : 1.0;
    long r = (long)((double)n * scale);
    return r < 1 ? 1 : r;
}

/* Run fn(arg) in a child; true if it died of SIGABRT and its stderr
 * contains `needle`. The child's stderr is captured, not shown. */
static inline int test_expect_abort(void (*fn)(void *), void *arg, const char *needle)
{
    int fds[2];
    if (pipe(fds) != 0)
        return 0;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        signal(SIGABRT, SIG_DFL);
        fn(arg);
        _exit(0);
    }
    close(fds[1]);
    char buf[4096];
    size_t len = 0;
    ssize_t n;
    while ((n = read(fds[0], buf + len, sizeof(buf) - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    int ok = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT && strstr(buf, needle) != NULL;
    if (!ok)
        fprintf(stderr, "  expected abort with \"%s\", got status %d, stderr \"%s\"\n", needle,
                status, buf);
    return ok;
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;
    for (int i = 0; i < test_state.count; i++) {
        if (argc > 1 && strstr(test_state.names[i], argv[1]) == NULL)
            continue;
        test_state.failures_in_test = 0;
        printf("- %s\n", test_state.names[i]);
        fflush(stdout);
        test_state.fns[i]();
        if (test_state.failures_in_test == 0) {
            passed++;
        } else {
            failed++;
            printf("  FAILED: %s\n", test_state.names[i]);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}

#endif /* STRATA_TEST_H */
