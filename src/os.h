/* SPDX-License-Identifier: MIT */
/*
 * os.h — the one contract with the operating system. Only os.c calls
 * mmap, munmap, mremap and madvise.
 *
 * Preconditions for every function: sizes are multiples of the page size
 * (4096), addresses are page aligned. Failures return NULL or false with
 * errno as the kernel set it; nothing aborts.
 */
#ifndef ST_OS_H
#define ST_OS_H

#include <sys/uio.h>

#include "bits.h"

#define ST_PAGE_SIZE ((size_t)4096)

/* Fresh zeroed memory, read-write, aligned to `align` (a power of two). */
ST_HIDDEN void *st_os_map_aligned(size_t size, size_t align);
ST_HIDDEN bool st_os_unmap(void *addr, size_t size);
/* Give the pages back to the OS; they read as zero when touched again. */
ST_HIDDEN bool st_os_purge(void *addr, size_t size);
/* Ranges of pages to give back together. Each madvise pays a fixed cost
 * besides its pages, a TLB flush above all (on every CPU the process runs
 * on); where the kernel takes a vector of ranges for the process itself
 * (process_madvise on PIDFD_SELF_THREAD, Linux 6.15) a batch pays it
 * once, and elsewhere it falls back to one madvise a range. */
#define ST_OS_BATCH 32
typedef struct st_os_batch {
    unsigned count;
    size_t bytes; /* in all ranges */
    struct iovec range[ST_OS_BATCH];
} st_os_batch;

/* Add pages to the batch (the batch goes out first if it is full). They
 * are given back by st_os_batch_flush: until then nothing may write them. */
ST_HIDDEN void st_os_batch_add(st_os_batch *b, void *addr, size_t size);
ST_HIDDEN void st_os_batch_flush(st_os_batch *b);
/* Whether flushes may use the vector call (tests turn it off to take the
 * fallback); returns the previous setting. */
ST_HIDDEN bool st_os_batch_vectors(bool on);
/* Fault the pages in now, writable: one call instead of a fault each (a
 * hint: false where the kernel cannot, before Linux 5.14, or is out of
 * memory; errno is left alone). */
ST_HIDDEN bool st_os_populate(void *addr, size_t size);
/* Ask for transparent huge pages over the range (a hint; false if refused). */
ST_HIDDEN bool st_os_huge_pages(void *addr, size_t size);
/* Grow or shrink a mapping where it is: false (errno) if it cannot. */
ST_HIDDEN bool st_os_resize_in_place(void *addr, size_t old_size, size_t new_size);
/* Move a mapping (its pages, not copies) onto [to, to + new_size), which
 * replaces whatever was mapped there. NULL with errno on failure. */
ST_HIDDEN void *st_os_move(void *addr, size_t old_size, size_t new_size, void *to);

#endif /* ST_OS_H */
