/* SPDX-License-Identifier: MIT */
/*
 * strata/malloc.h — the general-purpose malloc of strata, under its own
 * names. libstrata.so also exports every function here under the standard
 * name (malloc, free, …), so a program that links it, or is started with
 * LD_PRELOAD=libstrata.so, uses it for every allocation; libstrata.a only
 * has the strata_ names, so a program can link it beside the C library's
 * malloc.
 *
 * Semantics are glibc's: NULL with errno ENOMEM when memory runs out,
 * EINVAL for a bad alignment, every block aligned to 16 bytes, alignments
 * up to 1 GiB honoured. A bad free (a pointer strata does not own, the
 * middle of a block, a block already free) aborts with one line on stderr
 * naming the fault and the pointer. Thread-safe; a block may be freed by
 * any thread. Design and costs: docs/malloc.md.
 */
#ifndef STRATA_MALLOC_H
#define STRATA_MALLOC_H

#include <malloc.h> /* struct mallinfo2 */
#include <stdio.h>

#include "strata/defs.h"

#ifdef __cplusplus
extern "C" {
#endif

STRATA_API void *strata_malloc(size_t size);
STRATA_API void strata_free(void *ptr);
STRATA_API void *strata_calloc(size_t count, size_t size);
STRATA_API void *strata_realloc(void *ptr, size_t size);
/* realloc(ptr, count * size) with an overflow check (ENOMEM). */
STRATA_API void *strata_reallocarray(void *ptr, size_t count, size_t size);
/* 0, EINVAL (alignment not a power of two multiple of sizeof(void *)) or ENOMEM. */
STRATA_API int strata_posix_memalign(void **out, size_t alignment, size_t size);
STRATA_API void *strata_aligned_alloc(size_t alignment, size_t size);
STRATA_API void *strata_memalign(size_t alignment, size_t size);
STRATA_API void *strata_valloc(size_t size);  /* page aligned */
STRATA_API void *strata_pvalloc(size_t size); /* page aligned, size rounded up to pages */
/* Bytes usable in the block (at least what was asked); 0 for NULL. */
STRATA_API size_t strata_malloc_usable_size(const void *ptr);
/* C23: free with the size (and alignment) the block was asked with. */
STRATA_API void strata_free_sized(void *ptr, size_t size);
STRATA_API void strata_free_aligned_sized(void *ptr, size_t alignment, size_t size);
/* Give every free page of the calling thread's heap, of the heaps of
 * exited threads and of threads waiting in pthread_join, and every cached
 * segment back to the OS now; 1 if something was returned, else 0. */
STRATA_API int strata_malloc_trim(size_t pad);
/* Accepted for compatibility and ignored: returns 1. */
STRATA_API int strata_mallopt(int param, int value);
/* arena = bytes mapped, uordblks = bytes in live blocks, fordblks = the
 * rest, hblks/hblkhd = large blocks and their bytes, keepcost = bytes of
 * free pages not yet returned to the OS. */
STRATA_API struct mallinfo2 strata_mallinfo2(void);
/* The same in the old struct of ints, each at most INT_MAX. */
STRATA_API struct mallinfo strata_mallinfo(void);
/* strata_stats_print to stderr, where glibc's malloc_stats writes. */
STRATA_API void strata_malloc_stats_print(void);

/* Process-wide figures, summed over every heap (a snapshot: other threads
 * keep running while it is taken). */
typedef struct strata_malloc_stats {
    size_t live_bytes;      /* bytes of live blocks (usable sizes) */
    size_t mapped_bytes;    /* bytes of segments and large blocks mapped */
    size_t resident_bytes;  /* of those, bytes resident in RAM (mincore) */
    size_t segments;        /* 4 MiB segments mapped (in heaps or cached) */
    size_t large_blocks;    /* blocks with a mapping of their own */
    size_t large_bytes;     /* their mapped bytes */
    size_t heaps;           /* thread heaps ever made (never freed) */
    size_t heaps_abandoned; /* of those, waiting for a thread to adopt them */
    uint64_t remote_frees;  /* blocks freed by a thread other than their owner */
    uint64_t abandoned;     /* heaps left by an exiting thread */
    uint64_t adopted;       /* heaps taken over by a new thread */
    uint64_t purges;        /* ranges of free pages queued for return to the OS */
    uint64_t purged_bytes;  /* bytes they returned */
} strata_malloc_stats;

STRATA_API void strata_malloc_stats_get(strata_malloc_stats *out);
/* The figures above, then one /proc/slabinfo 2.1 line per size class in
 * use, then one /proc/buddyinfo line per segment. */
STRATA_API void strata_stats_print(FILE *out);
/* The same as one JSON object. */
STRATA_API void strata_stats_print_json(FILE *out);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_MALLOC_H */
