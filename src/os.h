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

#include "bits.h"

#define ST_PAGE_SIZE ((size_t)4096)

/* Fresh zeroed memory, read-write, aligned to `align` (a power of two). */
ST_HIDDEN void *st_os_map_aligned(size_t size, size_t align);
ST_HIDDEN bool st_os_unmap(void *addr, size_t size);
/* Give the pages back to the OS; they read as zero when touched again. */
ST_HIDDEN bool st_os_purge(void *addr, size_t size);
/* Ask for transparent huge pages over the range (a hint; false if refused). */
ST_HIDDEN bool st_os_huge_pages(void *addr, size_t size);
/* Grow or shrink a mapping where it is: false (errno) if it cannot. */
ST_HIDDEN bool st_os_resize_in_place(void *addr, size_t old_size, size_t new_size);
/* Move a mapping (its pages, not copies) onto [to, to + new_size), which
 * replaces whatever was mapped there. NULL with errno on failure. */
ST_HIDDEN void *st_os_move(void *addr, size_t old_size, size_t new_size, void *to);

#endif /* ST_OS_H */
