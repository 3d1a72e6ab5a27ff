/* SPDX-License-Identifier: MIT */
/*
 * pthread_join parks the caller's heap (st_malloc_parked_join, which is
 * libstrata.so's pthread_join); a thread cancelled while it waits there
 * must find its heap unparked when its cleanup handlers run. Apart from
 * tests/malloc/threads.c because ThreadSanitizer, which runs that file,
 * cannot follow a cancellation out of its own pthread_join.
 */
#include <pthread.h>
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
    int n = 0;
    st_theap_lock_all();
    for (st_theap *h = st_theap_first(); h != NULL; h = h->next_all)
        n += h->state == ST_HEAP_PARKED;
    st_theap_unlock_all();
    parked_in_cleanup = n;
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

TEST(a_join_cancelled_while_parked_unparks)
{
    REQUIRE(pipe(pipe_fds) == 0);
    pthread_t sleeper, joiner;
    REQUIRE(pthread_create(&sleeper, NULL, wait_on_pipe, NULL) == 0);
    REQUIRE(pthread_create(&joiner, NULL, join_and_get_cancelled, &sleeper) == 0);
    struct timespec pause = {0, 50 * 1000 * 1000};
    nanosleep(&pause, NULL); /* let it park */
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


