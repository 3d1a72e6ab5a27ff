/* SPDX-License-Identifier: MIT */
/*
 * pthread_join parks the caller's heap (st_malloc_parked_join, which is
 * libstrata.so's pthread_join): other threads may take in blocks for it
 * meanwhile, so the thread itself must leave it alone while it waits (the
 * C library allocates and frees inside pthread_join), and a thread
 * cancelled while it waits must find its heap unparked when its cleanup
 * handlers run. Apart from tests/malloc/threads.c because
 * ThreadSanitizer, which runs that file, cannot follow a cancellation out
 * of its own pthread_join.
 */
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "strata/malloc.h"
#include "test.h"
#include "theap.h"

/* pthread_join is a cancellation point: a thread cancelled while it
 * waits runs its cleanup handlers, which may allocate, with its heap its
 * own again. */
static int parked_in_cleanup = -1;
static int pipe_fds[2];

static void count_parked(void *arg)
{
    (void)arg;
    parked_in_cleanup = (int)st_theap_count_in_state(ST_HEAP_PARKED);
    strata_free(strata_malloc(100));
}

static void *wait_on_pipe(void *arg)
{
    char c;
    ssize_t got = read(pipe_fds[0], &c, 1); /* until the test writes */
    (void)got;
    return arg;
}

static void *join_and_get_cancelled(void *arg)
{
    strata_free(strata_malloc(64)); /* a heap of its own */
    pthread_cleanup_push(count_parked, NULL);
    st_malloc_parked_join(*(pthread_t *)arg, NULL);
    pthread_cleanup_pop(0);
    return NULL;
}

/* While the main thread waits in the join, a signal makes it allocate and
 * free (as the C library does inside pthread_join): the block must not
 * come from its parked heap, and freeing one of its own blocks must go
 * through the heap's list. */
static pthread_t main_thread;
static void *own_block, *block_in_handler;
static int parked_seen;

static void allocate_in_handler(int sig)
{
    (void)sig;
    block_in_handler = strata_malloc(48);
    strata_free(own_block);
}

static void *signal_the_joiner(void *arg)
{
    struct timespec pause = {0, 50 * 1000 * 1000};
    nanosleep(&pause, NULL); /* let it park */
    parked_seen = (int)st_theap_count_in_state(ST_HEAP_PARKED);
    pthread_kill(main_thread, SIGUSR1);
    nanosleep(&pause, NULL);
    return arg;
}

TEST(a_parked_thread_leaves_its_heap_alone)
{
    own_block = strata_malloc(48);
    REQUIRE(own_block != NULL);
    st_theap *mine = st_segment_of(own_block)->owner;
    main_thread = pthread_self();
    struct sigaction sa = {.sa_handler = allocate_in_handler};
    sigemptyset(&sa.sa_mask);
    REQUIRE(sigaction(SIGUSR1, &sa, NULL) == 0);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, signal_the_joiner, NULL) == 0);
    REQUIRE(st_malloc_parked_join(t, NULL) == 0);
    signal(SIGUSR1, SIG_DFL);
    CHECK_EQ(parked_seen, 1);
    REQUIRE(block_in_handler != NULL);
    CHECK(st_segment_of(block_in_handler)->owner != mine);
    strata_free(block_in_handler);
    CHECK_EQ((int)st_theap_count_in_state(ST_HEAP_PARKED), 0);
    CHECK_EQ(st_theap_check(mine), 0);
}

TEST(a_join_cancelled_while_parked_unparks)
{
    REQUIRE(pipe(pipe_fds) == 0);
    pthread_t sleeper, joiner;
    REQUIRE(pthread_create(&sleeper, NULL, wait_on_pipe, NULL) == 0);
    REQUIRE(pthread_create(&joiner, NULL, join_and_get_cancelled, &sleeper) == 0);
    struct timespec pause = {0, 50 * 1000 * 1000};
    nanosleep(&pause, NULL); /* let it park */
    CHECK_EQ((int)st_theap_count_in_state(ST_HEAP_PARKED), 1);
    pthread_cancel(joiner);
    void *result = NULL;
    pthread_join(joiner, &result);
    CHECK(result == PTHREAD_CANCELED);
    CHECK_EQ(parked_in_cleanup, 0);
    REQUIRE(write(pipe_fds[1], "x", 1) == 1);
    pthread_join(sleeper, NULL);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
}


