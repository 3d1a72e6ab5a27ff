/* SPDX-License-Identifier: MIT */
/*
 * Bad frees: each case runs in a child process and must end in abort()
 * with one line on stderr that names the fault and the pointer, as
 * "strata: malloc: <fault> at 0x<hex>": a pointer strata does not own (the
 * stack, a global, a block of the C library's malloc, memory just past a
 * large block), the middle of a small, medium or large block, a double
 * free of a small, medium and large block, double frees in which one of
 * the frees came from another thread, double frees of blocks the owner
 * keeps (its last freed one, its stack of kept ones) and of a block freed
 * past them, and realloc / malloc_usable_size / free_sized of a bad
 * pointer. A last test shows that a good free in a child does not abort
 * (the harness can tell the difference).
 */
#include <pthread.h>
#include <sys/mman.h>

#include "strata/malloc.h"
#include "test.h"

#define KIB ((size_t)1024)
#define MIB ((size_t)1024 * 1024)

static char global_buffer[256] __attribute__((aligned(64)));

/* The end of the message of a fault at p: "<fault> at 0x<hex>", as
 * st_fatal writes it (lowercase hex, no padding) after "strata: malloc: ". */
static const char *needle(char *buf, size_t len, const char *fault, const void *p)
{
    snprintf(buf, len, "%s at 0x%lx", fault, (unsigned long)(uintptr_t)p);
    return buf;
}

/* Expect fn(arg) to abort naming `fault` and the pointer p. */
static bool aborts_with(void (*fn)(void *), void *arg, const char *fault, const void *p)
{
    char buf[256];
    return test_expect_abort(fn, arg, needle(buf, sizeof(buf), fault, p));
}

/* Run fn(arg) in a child; its stderr in out, its wait status returned. For
 * the cases where more than one fault name is right. */
static int run_child(void (*fn)(void *), void *arg, char *out, size_t len)
{
    int fds[2];
    if (pipe(fds) != 0) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        alarm(20);
        fn(arg);
        _exit(0);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t r;
    while ((r = read(fds[0], out + n, len - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

/* Aborts naming p and one of the faults of a NULL-terminated list. */
static bool aborts_with_one_of(void (*fn)(void *), void *arg, const char *const *faults,
                               const void *p)
{
    char out[4096], buf[256];
    int status = run_child(fn, arg, out, sizeof(out));
    bool aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT &&
                   strstr(out, "strata: malloc: ") != NULL;
    for (int i = 0; aborted && faults[i] != NULL; i++)
        if (strstr(out, needle(buf, sizeof(buf), faults[i], p)) != NULL) return true;
    fprintf(stderr, "  expected an abort naming %p, got status %d, stderr \"%s\"\n", p, status,
            out);
    return false;
}

static void do_free(void *p)
{
    strata_free(p);
}
static void do_double_free(void *p)
{
    strata_free(p);
    strata_free(p);
}
static void do_realloc(void *p)
{
    (void)strata_realloc(p, 100);
}
static void do_usable_size(void *p)
{
    (void)strata_malloc_usable_size(p);
}
static void do_free_sized(void *p)
{
    strata_free_sized(p, 32);
}

/* ---- pointers strata does not own -------------------------------------------------- */

TEST(free_of_stack_global_and_libc_pointers)
{
    char stack_buffer[64] __attribute__((aligned(16)));
    memset(stack_buffer, 0, sizeof(stack_buffer));
    CHECK(
        aborts_with(do_free, stack_buffer, "free of a pointer strata does not own", stack_buffer));
    CHECK(aborts_with(do_free, global_buffer, "free of a pointer strata does not own",
                      global_buffer));
    void *libc_small = malloc(32), *libc_big = malloc(4 * MIB);
    CHECK(aborts_with(do_free, libc_small, "free of a pointer strata does not own", libc_small));
    CHECK(aborts_with(do_free, libc_big, "free of a pointer strata does not own", libc_big));
    free(libc_small);
    free(libc_big);
    /* An odd address and the highest one. */
    void *odd = (void *)((uintptr_t)global_buffer + 3);
    CHECK(aborts_with(do_free, odd, "free of a pointer strata does not own", odd));
    void *top = (void *)(uintptr_t)-16;
    CHECK(aborts_with(do_free, top, "free of a pointer strata does not own", top));
}

TEST(free_of_an_address_near_strata_memory)
{
    /* Memory just past a large block's mapping: not strata's (a mapping of
     * our own there keeps the address from being reused by strata). */
    void *big = strata_malloc(6 * MIB);
    REQUIRE(big != NULL);
    size_t us = strata_malloc_usable_size(big);
    void *after = (char *)big + ((us + 4 * MIB) & ~(4 * MIB - 1)) + 4 * MIB;
    const char *const faults[] = {"free of a pointer strata does not own",
                                  "free of a pointer inside a block", NULL};
    CHECK(aborts_with_one_of(do_free, after, faults, after));
    /* The start of a segment (its header), found from a small block. */
    void *small = strata_malloc(40);
    REQUIRE(small != NULL);
    void *seg = (void *)((uintptr_t)small & ~(uintptr_t)(4 * MIB - 1));
    if (seg != small) CHECK(aborts_with_one_of(do_free, seg, faults, seg));
    strata_free(small);
    strata_free(big);
}

/* ---- the middle of a block --------------------------------------------------------- */

TEST(free_inside_a_block)
{
    static const size_t sizes[] = {16, 32, 100, 1024, 5000, 16 * KIB};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char *p = strata_malloc(sizes[i]);
        REQUIRE(p != NULL);
        CHECK(aborts_with(do_free, p + 8, "free of a pointer inside a block", p + 8));
        if (strata_malloc_usable_size(p) > 16) /* else p + 16 is the next object */
            CHECK(aborts_with(do_free, p + 16, "free of a pointer inside a block", p + 16));
        CHECK(aborts_with(do_free, p + sizes[i] - 1, "free of a pointer inside a block",
                          p + sizes[i] - 1));
        strata_free(p);
    }
    /* Medium: the page after the start, and an unaligned address. */
    char *m = strata_malloc(100 * KIB);
    REQUIRE(m != NULL);
    CHECK(aborts_with(do_free, m + 4096, "free of a pointer inside a block", m + 4096));
    CHECK(aborts_with(do_free, m + 24, "free of a pointer inside a block", m + 24));
    strata_free(m);
    /* Large: the middle, a page in, and just past the header. */
    char *l = strata_malloc(16 * MIB);
    REQUIRE(l != NULL);
    CHECK(aborts_with(do_free, l + 8 * MIB, "free of a pointer inside a block", l + 8 * MIB));
    CHECK(aborts_with(do_free, l + 4096, "free of a pointer inside a block", l + 4096));
    CHECK(aborts_with(do_free, l + 16, "free of a pointer inside a block", l + 16));
    strata_free(l);
}

/* ---- double frees ------------------------------------------------------------------ */

/* The faults a double free may be reported as: a large block has no
 * mapping once freed, so strata may only see a pointer it does not own. */
static const char *const double_free_faults[] = {"double free", NULL};
static const char *const large_double_free_faults[] = {
    "double free", "free of a pointer strata does not own", NULL};

static const char *const *double_faults_for(size_t size)
{
    return size > 4 * MIB ? large_double_free_faults : double_free_faults;
}

TEST(double_free_small_medium_large)
{
    static const size_t sizes[] = {1, 48, 1000, 16 * KIB, 64 * KIB, 900 * KIB, 8 * MIB};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        void *p = strata_malloc(sizes[i]);
        REQUIRE(p != NULL);
        if (!aborts_with_one_of(do_double_free, p, double_faults_for(sizes[i]), p)) {
            fprintf(stderr, "  (a double free of a block of %zu bytes)\n", sizes[i]);
            CHECK(false);
        }
        strata_free(p);
    }
}

/* A double free after other blocks of the slab came and went. */
static void double_free_later(void *arg)
{
    void *p = arg, *others[64];
    strata_free(p);
    for (int i = 0; i < 64; i++)
        others[i] = strata_malloc(48);
    for (int i = 0; i < 64; i += 2)
        strata_free(others[i]);
    /* p may have been handed out again by now; if so, the second free is
     * a valid free of the new block: free something surely free instead. */
    for (int i = 0; i < 64; i++)
        if (others[i] == p) p = others[0];
    strata_free(p);
}

TEST(double_free_after_other_activity)
{
    void *p = strata_malloc(48);
    REQUIRE(p != NULL);
    char out[4096];
    int status = run_child(double_free_later, p, out, sizeof(out));
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    CHECK(strstr(out, "strata: malloc: double free at 0x") != NULL);
    strata_free(p);
}

/* ---- double frees across threads --------------------------------------------------- */

static void *thread_free(void *p)
{
    strata_free(p);
    return NULL;
}

static void free_in_thread(void *p)
{
    pthread_t t;
    if (pthread_create(&t, NULL, thread_free, p) == 0) pthread_join(t, NULL);
}

/* After a double free that was not caught at once, the owner keeps
 * allocating the block's class, so a late detection (when the remote
 * frees are merged) still shows up; if instead one block is handed out
 * twice, say so and exit 3 (the worst outcome: silent corruption). */
static void allocate_and_look_for_twins(void *p)
{
    size_t size = strata_malloc_usable_size(p), hits = 0;
    for (int i = 0; i < 20000; i++) {
        void *q = strata_malloc(size);
        if (q == NULL) break;
        if (q == p && ++hits == 2) {
            fprintf(stderr, "block %p handed out twice after an undetected double free\n", p);
            _exit(3);
        }
    }
}

/* First free from another thread (remote), then the owner frees again. */
static void remote_then_owner(void *p)
{
    free_in_thread(p);
    strata_free(p);
    allocate_and_look_for_twins(p);
}

/* Two frees, both from threads that do not own the block. */
static void remote_then_remote(void *p)
{
    free_in_thread(p);
    free_in_thread(p);
    allocate_and_look_for_twins(p);
}

/* The owner frees, then another thread frees again. */
static void owner_then_remote(void *p)
{
    strata_free(p);
    free_in_thread(p);
    allocate_and_look_for_twins(p);
}

/* A block allocated by a thread that has exited: freed twice by main. */
static void *alloc_in_thread(void *arg)
{
    (void)arg;
    return strata_malloc(48);
}

static void dead_owner_double_free(void *unused)
{
    (void)unused;
    pthread_t t;
    void *p = NULL;
    if (pthread_create(&t, NULL, alloc_in_thread, NULL) != 0) return;
    pthread_join(t, &p);
    /* Tell the parent which pointer to expect, on stderr first. */
    fprintf(stderr, "pointer %p\n", p);
    strata_free(p);
    strata_free(p);
}

TEST(double_free_across_threads)
{
    static const size_t sizes[] = {48, 64 * KIB, 8 * MIB};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        void *p = strata_malloc(sizes[i]);
        REQUIRE(p != NULL);
        const char *const *faults = double_faults_for(sizes[i]);
        if (!aborts_with_one_of(remote_then_owner, p, faults, p)) {
            fprintf(stderr, "  (remote free, then owner free, of %zu bytes)\n", sizes[i]);
            CHECK(false);
        }
        if (!aborts_with_one_of(remote_then_remote, p, faults, p)) {
            fprintf(stderr, "  (two remote frees of %zu bytes)\n", sizes[i]);
            CHECK(false);
        }
        if (!aborts_with_one_of(owner_then_remote, p, faults, p)) {
            fprintf(stderr, "  (owner free, then remote free, of %zu bytes)\n", sizes[i]);
            CHECK(false);
        }
        strata_free(p);
    }
    /* The owner is gone. */
    char out[4096];
    int status = run_child(dead_owner_double_free, NULL, out, sizeof(out));
    void *p = NULL;
    CHECK(sscanf(out, "pointer %p", &p) == 1);
    char buf[128];
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    if (strstr(out, needle(buf, sizeof(buf), "double free", p)) == NULL) {
        fprintf(stderr, "  double free of a dead thread's block: \"%s\"\n", out);
        CHECK(false);
    }
}

/* A block another thread freed waits on its owner's list until the owner
 * takes the list in; a batch of one is its own carrier, its first word
 * the list's link. A program that writes to the block meanwhile (a use
 * after free) overwrites the link: the owner must stop at a link that is
 * not a block freed to it, naming it, instead of freeing whatever it
 * points to. */
static void *overwrite_link_with;

static void link_overwritten(void *p)
{
    free_in_thread(p); /* the thread's exit hands p to us, its owner */
    *(void **)p = overwrite_link_with;
    strata_malloc_trim(0); /* takes the list in */
}

TEST(write_to_a_block_on_the_remote_list)
{
    void *live = strata_malloc(48), *p = strata_malloc(48);
    REQUIRE(live != NULL && p != NULL);
    overwrite_link_with = global_buffer; /* not strata's */
    CHECK(aborts_with(link_overwritten, p, "remote-freed block overwritten", global_buffer));
    overwrite_link_with = live; /* strata's, but not freed */
    CHECK(aborts_with(link_overwritten, p, "remote-freed block overwritten", live));
    strata_free(p);
    strata_free(live);
}

/* The owner keeps the blocks it frees in a class instead of clearing
 * their live bits: up to 15 on a stack, each with its kept bit. A second
 * free must be caught wherever the first one left the block. Each case
 * starts from malloc_trim, which gives every kept block back, then frees
 * `others` fresh blocks of p's class, so that p's free lands on top of
 * an empty stack (0), on top of another block (1) or clears its bit
 * (more than the heap keeps). */
#define MORE_THAN_KEPT 64

static void free_others(void *p, size_t others)
{
    void *held[MORE_THAN_KEPT];
    strata_malloc_trim(0);
    for (size_t i = 0; i < others; i++)
        held[i] = strata_malloc(strata_malloc_usable_size(p));
    for (size_t i = 0; i < others; i++)
        strata_free(held[i]);
}

static void owner_twice(void *p, size_t others)
{
    free_others(p, others);
    strata_free(p);
    strata_free(p);
}

static void owner_then_remote_after(void *p, size_t others)
{
    free_others(p, others);
    strata_free(p);
    free_in_thread(p);
    allocate_and_look_for_twins(p);
}

static void kept_then_owner(void *p)
{
    owner_twice(p, 0);
}
static void stacked_then_owner(void *p)
{
    owner_twice(p, 1);
}
static void cleared_then_owner(void *p)
{
    owner_twice(p, MORE_THAN_KEPT);
}
static void kept_then_remote(void *p)
{
    owner_then_remote_after(p, 0);
}
static void stacked_then_remote(void *p)
{
    owner_then_remote_after(p, 1);
}
static void cleared_then_remote(void *p)
{
    owner_then_remote_after(p, MORE_THAN_KEPT);
}

/* 48 bytes: the malloc fast path; 2000: a class above it. */
TEST(double_free_of_kept_stacked_and_cleared_blocks)
{
    static const char *const faults[] = {"double free", NULL};
    static const size_t sizes[] = {48, 2000};
    void (*const cases[])(void *) = {kept_then_owner,  stacked_then_owner,  cleared_then_owner,
                                     kept_then_remote, stacked_then_remote, cleared_then_remote};
    static const char *const names[] = {"kept, then owner",     "stacked, then owner",
                                        "cleared, then owner",  "kept, then remote",
                                        "stacked, then remote", "cleared, then remote"};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        void *p = strata_malloc(sizes[s]);
        REQUIRE(p != NULL);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
            if (!aborts_with_one_of(cases[i], p, faults, p)) {
                fprintf(stderr, "  (case %s, %zu bytes)\n", names[i], sizes[s]);
                CHECK(false);
            }
        strata_free(p);
    }
}

/* malloc_usable_size and realloc of a block freed by its owner (kept, or
 * cleared) or by another thread: "use of a freed block", before anything
 * else happens. (realloc used to allocate the new block first: if that
 * ran the decay, which gave the kept block back, released its empty slab
 * and made a new one of the same pages, the new block was the freed one,
 * and the free that ended the realloc freed it.) */
/* Free p as its owner (after `others` blocks of its class) or from
 * another thread. */
static void free_as(void *p, size_t others, bool remote)
{
    free_others(p, others);
    if (remote)
        free_in_thread(p);
    else
        strata_free(p);
}
static void usable_size_after(void *p, size_t others, bool remote)
{
    free_as(p, others, remote);
    (void)strata_malloc_usable_size(p);
}
static void realloc_after(void *p, size_t others, bool remote)
{
    size_t larger = 4 * strata_malloc_usable_size(p) + 16; /* asked while p is live */
    free_as(p, others, remote);
    (void)strata_realloc(p, larger);
}
static void usable_size_of_kept(void *p) { usable_size_after(p, 0, false); }
static void usable_size_of_cleared(void *p) { usable_size_after(p, MORE_THAN_KEPT, false); }
static void usable_size_of_remote(void *p) { usable_size_after(p, 0, true); }
static void realloc_of_kept(void *p) { realloc_after(p, 0, false); }
static void realloc_of_cleared(void *p) { realloc_after(p, MORE_THAN_KEPT, false); }
static void realloc_of_remote(void *p) { realloc_after(p, 0, true); }

TEST(usable_size_and_realloc_of_freed_blocks)
{
    void (*const cases[])(void *) = {usable_size_of_kept, usable_size_of_cleared,
                                     usable_size_of_remote, realloc_of_kept,
                                     realloc_of_cleared,  realloc_of_remote};
    static const char *const names[] = {"usable size, kept",    "usable size, cleared",
                                        "usable size, remote",  "realloc, kept",
                                        "realloc, cleared",     "realloc, remote"};
    static const size_t sizes[] = {48, 2000};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        void *p = strata_malloc(sizes[s]);
        REQUIRE(p != NULL);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
            if (!aborts_with(cases[i], p, "use of a freed block", p)) {
                fprintf(stderr, "  (case %s, %zu bytes)\n", names[i], sizes[s]);
                CHECK(false);
            }
        strata_free(p);
    }
}

/* ---- other entry points with a bad pointer ------------------------------------------ */

TEST(realloc_usable_size_free_sized_of_bad_pointers)
{
    char stack_buffer[64] __attribute__((aligned(16)));
    memset(stack_buffer, 0, sizeof(stack_buffer));
    /* realloc: the same faults as free, or those of malloc_usable_size. */
    const char *const foreign[] = {"does not own", "not a block strata owns", NULL};
    CHECK(aborts_with_one_of(do_realloc, stack_buffer, foreign, stack_buffer));
    char *p = strata_malloc(64);
    REQUIRE(p != NULL);
    const char *const inside[] = {"inside a block", NULL};
    CHECK(aborts_with_one_of(do_realloc, p + 16, inside, p + 16));
    char *l = strata_malloc(6 * MIB);
    REQUIRE(l != NULL);
    CHECK(aborts_with_one_of(do_realloc, l + 4096, inside, l + 4096));
    /* malloc_usable_size names the pointer too (glibc would read garbage). */
    CHECK(aborts_with_one_of(do_usable_size, stack_buffer, foreign, stack_buffer));
    CHECK(aborts_with_one_of(do_usable_size, global_buffer, foreign, global_buffer));
    CHECK(aborts_with_one_of(do_usable_size, p + 16, inside, p + 16));
    CHECK(aborts_with_one_of(do_usable_size, l + 4096, inside, l + 4096));
    /* free_sized: as free. */
    CHECK(aborts_with(do_free_sized, stack_buffer, "free of a pointer strata does not own",
                      stack_buffer));
    CHECK(aborts_with(do_free_sized, p + 16, "free of a pointer inside a block", p + 16));
    strata_free(l);
    strata_free(p);
}

/* realloc of a block already freed: a double free. */
static void realloc_after_free(void *p)
{
    strata_free(p);
    (void)strata_realloc(p, 200);
}

TEST(realloc_of_freed_block)
{
    static const size_t sizes[] = {48, 64 * KIB, 8 * MIB};
    const char *const faults[] = {"double free", "freed block", NULL};
    const char *const large_faults[] = {"double free", "freed block", "does not own",
                                        "not a block strata owns", NULL};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        void *p = strata_malloc(sizes[i]);
        REQUIRE(p != NULL);
        if (!aborts_with_one_of(realloc_after_free, p, sizes[i] > 4 * MIB ? large_faults : faults,
                                p)) {
            fprintf(stderr, "  (realloc of a freed block of %zu)\n", sizes[i]);
            CHECK(false);
        }
        strata_free(p);
    }
}

/* ---- the harness can tell a good free from a bad one ------------------------------- */

static void good_frees(void *unused)
{
    (void)unused;
    static const size_t sizes[] = {0, 48, 64 * KIB, 8 * MIB};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        strata_free(strata_malloc(sizes[i]));
    strata_free(NULL);
}

TEST(good_frees_do_not_abort)
{
    char out[4096];
    int status = run_child(good_frees, NULL, out, sizeof(out));
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ(out[0], '\0');
}
