/* SPDX-License-Identifier: MIT */
/*
 * debug.c — the fatal-error and assertion-failure paths, and the error
 * strings. Writes with write(2) and formats by hand, because it may run
 * inside the malloc, where stdio could allocate and recurse.
 */
#include "debug.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "strata/defs.h"

void st_write_stderr(const char *s)
{
    size_t len = strlen(s);
    while (len > 0) {
        ssize_t n = write(2, s, len);
        if (n <= 0)
            return;
        s += n;
        len -= (size_t)n;
    }
}

char *st_fmt_hex(char *buf, uintptr_t v)
{
    static const char digits[] = "0123456789abcdef";
    char tmp[16];
    int n = 0;
    do {
        tmp[n++] = digits[v & 15];
        v >>= 4;
    } while (v != 0);
    char *p = buf;
    *p++ = '0';
    *p++ = 'x';
    while (n > 0)
        *p++ = tmp[--n];
    *p = '\0';
    return buf;
}

char *st_fmt_dec(char *buf, uintptr_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    char *p = buf;
    while (n > 0)
        *p++ = tmp[--n];
    *p = '\0';
    return buf;
}

void st_fatal(const char *component, const char *fault, const void *ptr)
{
    char hex[24];
    st_write_stderr("strata: ");
    st_write_stderr(component);
    st_write_stderr(": ");
    st_write_stderr(fault);
    st_write_stderr(" at ");
    st_write_stderr(st_fmt_hex(hex, (uintptr_t)ptr));
    st_write_stderr("\n");
    abort();
}

void st_assert_fail(const char *expr, const char *file, int line)
{
    char num[24];
    st_write_stderr("strata: assertion failed: ");
    st_write_stderr(expr);
    st_write_stderr(" (");
    st_write_stderr(file);
    st_write_stderr(":");
    st_write_stderr(st_fmt_dec(num, (uintptr_t)line));
    st_write_stderr(")\n");
    abort();
}

const char *strata_strerror(int err)
{
    switch (err) {
    case STRATA_OK: return "success";
    case STRATA_ERR_INVALID: return "invalid argument";
    case STRATA_ERR_NOMEM: return "out of memory";
    case STRATA_ERR_FOREIGN: return "address not managed by this allocator";
    case STRATA_ERR_NOT_BLOCK: return "address is not the start of a block";
    case STRATA_ERR_DOUBLE_FREE: return "double free";
    case STRATA_ERR_TOO_SMALL: return "region too small for the metadata";
    case STRATA_ERR_CORRUPT: return "metadata corrupted";
    case STRATA_ERR_BUSY: return "objects still in use";
    default: return "unknown error";
    }
}

const char *strata_version(void) { return STRATA_VERSION_STRING; }
