/* SPDX-License-Identifier: MIT */
/*
 * Out of memory: in a child process whose address space is capped
 * (RLIMIT_AS at its current size plus a little), strata's malloc is
 * driven until it fails, for small, medium and large blocks in turn. Each
 * failure must be NULL with errno ENOMEM (posix_memalign: ENOMEM and *out
 * untouched; realloc: NULL and the old block intact) and nothing else may
 * break: blocks keep their contents, the statistics can be read, freeing
 * half makes allocation work again, and freeing everything lets the next
 * kind of block use the same memory. The child reports through its exit
 * status; the parent checks it.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "strata/malloc.h"
#include "test.h"

#define KIB ((size_t)1024)
#define MIB ((size_t)1024 * 1024)
#define HEADROOM (96 * MIB)
#define CAP ((size_t)1 << 18) /* pointers the child can track */

/* Bits of the child's exit status: what went wrong. */
enum {
    BAD_SETUP = 1,
    BAD_ERRNO = 2, /* a failure without ENOMEM, or a NULL expected */
    BAD_NEVER_FAILS = 4,
    BAD_TOO_EARLY = 8, /* failed long before the cap */
    BAD_CONTENTS = 16,
    BAD_NO_RECOVERY = 32,
    BAD_OTHER_API = 64,
};

/* Virtual size of this process in bytes, read without stdio. */
static size_t vm_size(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    return (size_t)strtoull(buf, NULL, 10) * (size_t)sysconf(_SC_PAGESIZE);
}

/* A block is marked in its first and last 8 bytes. */
static void mark(void *p, size_t n, uint64_t v)
{
    memcpy(p, &v, 8);
    memcpy((char *)p + n - 8, &v, 8);
}

static bool marked(const void *p, size_t n, uint64_t v)
{
    uint64_t a, b;
    memcpy(&a, p, 8);
    memcpy(&b, (const char *)p + n - 8, 8);
    return a == v && b == v;
}

/* Allocate blocks of `size` into ptrs[from..] until NULL; returns the new
 * count, or CAP if it never failed. Sets *err to the errno of the NULL. */
static size_t fill_up(void **ptrs, size_t from, size_t size, int *err)
{
    size_t n = from;
    for (; n < CAP; n++) {
        errno = 0;
        void *p = strata_malloc(size);
        if (p == NULL) {
            *err = errno;
            return n;
        }
        mark(p, size, (uint64_t)n * 2654435761u);
        ptrs[n] = p;
    }
    return n;
}

/* With memory exhausted for blocks of `size`: the other entry points
 * fail cleanly too. */
static int other_apis_fail(void *some_block, size_t block_size, size_t size)
{
    int bad = 0;
    errno = 0;
    if (strata_calloc(1, size) != NULL || errno != ENOMEM) bad |= BAD_OTHER_API;
    /* Aligned requests may take another path: ask for more than is left. */
    void *out = (void *)0x99;
    if (strata_posix_memalign(&out, 64, HEADROOM) != ENOMEM || out != (void *)0x99)
        bad |= BAD_OTHER_API;
    errno = 0;
    if (strata_aligned_alloc(4096, HEADROOM) != NULL || errno != ENOMEM) bad |= BAD_OTHER_API;
    /* A realloc that would need far more than is left. */
    errno = 0;
    if (strata_realloc(some_block, 2 * HEADROOM) != NULL || errno != ENOMEM) bad |= BAD_OTHER_API;
    if (!marked(some_block, block_size, 0)) bad |= BAD_CONTENTS;
    if (bad) fprintf(stderr, "  size %zu: another entry point did not fail cleanly\n", size);
    return bad;
}

/* One kind of block: exhaust, check, free half, refill, free all. */
static int exhaust(void **ptrs, size_t size)
{
    int err = 0, bad = 0;
    size_t n = fill_up(ptrs, 0, size, &err);
    if (n == CAP) {
        fprintf(stderr, "  size %zu: %zu blocks and no failure\n", size, n);
        return BAD_NEVER_FAILS;
    }
    if (err != ENOMEM) {
        fprintf(stderr, "  size %zu: NULL with errno %d, not ENOMEM\n", size, err);
        bad |= BAD_ERRNO;
    }
    /* The cap left HEADROOM: at least a third of it must have been usable. */
    if (n * size < HEADROOM / 3) {
        fprintf(stderr, "  size %zu: failed after %zu blocks (%zu KiB)\n", size, n,
                n * size / 1024);
        bad |= BAD_TOO_EARLY;
    }
    if (n > 0) {
        mark(ptrs[0], size, 0);
        bad |= other_apis_fail(ptrs[0], size, size);
        mark(ptrs[0], size, 0);
    }
    strata_malloc_stats st;
    strata_malloc_stats_get(&st);
    if (st.live_bytes < n * size) bad |= BAD_OTHER_API;
    /* Every block intact; free every other one. */
    for (size_t i = 1; i < n; i++)
        if (!marked(ptrs[i], size, (uint64_t)i * 2654435761u)) {
            fprintf(stderr, "  size %zu: block %zu overwritten\n", size, i);
            bad |= BAD_CONTENTS;
            break;
        }
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (i % 2)
            strata_free(ptrs[i]);
        else
            ptrs[kept++] = ptrs[i];
    }
    /* Allocation works again, for about the half freed. */
    size_t again = fill_up(ptrs, kept, size, &err) - kept;
    fprintf(stderr, "  size %zu: %zu blocks, then %zu more after freeing %zu\n", size, n, again,
            n - kept);
    if (again == 0 || again < (n - kept) / 4) {
        fprintf(stderr, "  size %zu: allocation did not recover after frees\n", size);
        bad |= BAD_NO_RECOVERY;
    }
    for (size_t i = 0; i < kept + again; i++)
        strata_free(ptrs[i]);
    strata_malloc_stats_get(&st);
    fprintf(stderr, "  size %zu: all freed, %zu KiB mapped in %zu segments, %zu KiB live\n", size,
            st.mapped_bytes / 1024, st.segments, st.live_bytes / 1024);
    return bad;
}

static int child_main(void)
{
    /* Warm every regime up first, so strata is initialized. */
    static const size_t warm[] = {24, 1000, 64 * KIB, 8 * MIB};
    for (size_t i = 0; i < sizeof(warm) / sizeof(warm[0]); i++)
        strata_free(strata_malloc(warm[i]));
    void **ptrs = mmap(NULL, CAP * sizeof(void *), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (ptrs == MAP_FAILED) return BAD_SETUP;
    size_t vm = vm_size();
    struct rlimit rl;
    if (vm == 0 || getrlimit(RLIMIT_AS, &rl) != 0) return BAD_SETUP;
    rl.rlim_cur = vm + HEADROOM;
    if (setrlimit(RLIMIT_AS, &rl) != 0) return BAD_SETUP;
    int bad = 0;
    static const size_t sizes[] = {512, 64 * KIB, 8 * MIB, 512};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        bad |= exhaust(ptrs, sizes[i]);
    /* Everything freed: every regime works again. */
    for (size_t i = 0; i < sizeof(warm) / sizeof(warm[0]); i++) {
        void *p = strata_malloc(warm[i]);
        if (p == NULL) {
            fprintf(stderr, "  malloc(%zu) fails after everything was freed\n", warm[i]);
            bad |= BAD_NO_RECOVERY;
        }
        strata_free(p);
    }
    return bad;
}

TEST(out_of_memory_under_rlimit_as)
{
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        alarm(60);
        _exit(child_main());
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    if (WIFSIGNALED(status))
        fprintf(stderr, "  child killed by signal %d\n", WTERMSIG(status));
    else if (WEXITSTATUS(status) != 0)
        fprintf(stderr, "  child's failures: 0x%x (see the bits in oom.c)\n", WEXITSTATUS(status));
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
}
