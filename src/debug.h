/* SPDX-License-Identifier: MIT */
/*
 * debug.h — assertions in three levels and the fatal-error path.
 *
 * ST_ASSERT(level, cond): compiled in when STRATA_DEBUG >= level
 *   1 cheap (O(1), on in Debug builds), 2 internal, 3 expensive (walks).
 * Bad input from a caller is never an assertion: it goes through
 * st_fatal(), always on, which writes one line naming the component, the
 * fault and the pointer, then aborts. Neither path allocates memory.
 */
#ifndef ST_DEBUG_H
#define ST_DEBUG_H

#include "bits.h"

#ifndef STRATA_DEBUG
#define STRATA_DEBUG 0
#endif

ST_HIDDEN __attribute__((noreturn)) ST_COLD void st_fatal(const char *component, const char *fault,
                                                         const void *ptr);
ST_HIDDEN __attribute__((noreturn)) ST_COLD void st_assert_fail(const char *expr, const char *file,
                                                               int line);

#define ST_ASSERT(level, cond)                                                                     \
    do {                                                                                           \
        if (STRATA_DEBUG >= (level) && ST_UNLIKELY(!(cond)))                                       \
            st_assert_fail(#cond, __FILE__, __LINE__);                                             \
    } while (0)

/* Write a string to stderr with write(2): safe where stdio may allocate. */
ST_HIDDEN void st_write_stderr(const char *s);

/* Format an unsigned value as hex into buf (at least 19 bytes). */
ST_HIDDEN char *st_fmt_hex(char *buf, uintptr_t v);

/* Format an unsigned value in decimal into buf (at least 21 bytes). */
ST_HIDDEN char *st_fmt_dec(char *buf, uintptr_t v);

#endif /* ST_DEBUG_H */
