/* SPDX-License-Identifier: MIT */
/*
 * os.c — mmap, munmap and madvise behind the contract of os.h.
 * Aligned mappings are made by over-mapping and trimming both ends, so
 * no address hint is needed and nothing is wasted once trimmed.
 */
#define _GNU_SOURCE /* mremap */
#include "os.h"

#include <errno.h>
#include <sys/mman.h>

void *st_os_map_aligned(size_t size, size_t align)
{
    if (size == 0 || !st_is_aligned(size, ST_PAGE_SIZE) || !st_is_pow2(align)) {
        errno = EINVAL;
        return NULL;
    }
    if (align < ST_PAGE_SIZE)
        align = ST_PAGE_SIZE;
    size_t span;
    if (!st_add_ok(size, align - ST_PAGE_SIZE, &span)) {
        errno = ENOMEM;
        return NULL;
    }
    void *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    uintptr_t start = (uintptr_t)raw;
    uintptr_t aligned = st_align_up(start, align);
    size_t head = aligned - start;
    size_t tail = span - head - size;
    if (head != 0)
        munmap(raw, head);
    if (tail != 0)
        munmap((void *)(aligned + size), tail);
    return (void *)aligned;
}

bool st_os_unmap(void *addr, size_t size) { return munmap(addr, size) == 0; }

bool st_os_purge(void *addr, size_t size) { return madvise(addr, size, MADV_DONTNEED) == 0; }

bool st_os_huge_pages(void *addr, size_t size) { return madvise(addr, size, MADV_HUGEPAGE) == 0; }

bool st_os_resize_in_place(void *addr, size_t old_size, size_t new_size)
{
    return mremap(addr, old_size, new_size, 0) != MAP_FAILED;
}

void *st_os_move(void *addr, size_t old_size, size_t new_size, void *to)
{
    void *p = mremap(addr, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, to);
    return p == MAP_FAILED ? NULL : p;
}
