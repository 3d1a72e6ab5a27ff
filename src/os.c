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
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif
/* Linux 6.15: the calling thread, no descriptor needed. Its memory is the
 * process's; the thread group's leader would not do, since a main thread
 * that called pthread_exit has none left. */
#define PIDFD_SELF_THREAD (-10000)

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

/* 0 once the kernel refused a vector (too old, or a filter forbids the
 * call): one madvise a range from then on. */
static int vector_purge = 1; /* atomic */

void st_os_batch_flush(st_os_batch *b)
{
    int saved = errno; /* free() leaves errno alone */
    if (b->count > 1 && __atomic_load_n(&vector_purge, __ATOMIC_RELAXED)) {
        long done = syscall(SYS_process_madvise, PIDFD_SELF_THREAD, b->range, (size_t)b->count,
                            MADV_DONTNEED, 0u);
        if (done < 0)
            __atomic_store_n(&vector_purge, 0, __ATOMIC_RELAXED);
        if (done == (long)b->bytes)
            b->count = 0; /* else (an error part-way) again range by range: harmless */
    }
    for (unsigned i = 0; i < b->count; i++)
        madvise(b->range[i].iov_base, b->range[i].iov_len, MADV_DONTNEED);
    b->count = 0;
    b->bytes = 0;
    errno = saved;
}

bool st_os_batch_vectors(bool on)
{
    return __atomic_exchange_n(&vector_purge, on, __ATOMIC_RELAXED) != 0;
}

void st_os_batch_add(st_os_batch *b, void *addr, size_t size)
{
    struct iovec *last = b->count > 0 ? &b->range[b->count - 1] : NULL;
    if (last != NULL && (char *)last->iov_base + last->iov_len == addr) {
        last->iov_len += size;
    } else {
        if (b->count == ST_OS_BATCH)
            st_os_batch_flush(b);
        b->range[b->count++] = (struct iovec){addr, size};
    }
    b->bytes += size;
}

static int can_populate = 1; /* atomic: 0 once the kernel did not know the advice */

bool st_os_populate(void *addr, size_t size)
{
    if (!__atomic_load_n(&can_populate, __ATOMIC_RELAXED))
        return false;
    int saved = errno;
    bool done = madvise(addr, size, MADV_POPULATE_WRITE) == 0;
    if (!done && errno == EINVAL)
        __atomic_store_n(&can_populate, 0, __ATOMIC_RELAXED);
    errno = saved;
    return done;
}

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
