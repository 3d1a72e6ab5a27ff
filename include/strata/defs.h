/* SPDX-License-Identifier: MIT */
/*
 * strata/defs.h — what every public strata header shares: the export
 * macro, the version, and the error codes that the embeddable allocators
 * return from their free and check functions.
 *
 * Convention of the whole API: functions that hand out memory return NULL
 * and set errno (ENOMEM, EINVAL) like malloc; functions that take memory
 * back or verify a structure return 0 or a negative strata_error.
 */
#ifndef STRATA_DEFS_H
#define STRATA_DEFS_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define STRATA_VERSION_MAJOR 0
#define STRATA_VERSION_MINOR 1
#define STRATA_VERSION_PATCH 0
#define STRATA_VERSION_STRING "0.1.0"

#if defined(__GNUC__)
#define STRATA_API __attribute__((visibility("default")))
#define STRATA_NODISCARD __attribute__((warn_unused_result))
#else
#define STRATA_API
#define STRATA_NODISCARD
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Errors returned (negated) by free/check functions. Stable numbers. */
enum strata_error {
    STRATA_OK = 0,
    STRATA_ERR_INVALID = -1,     /* bad argument: NULL, zero or overflowing size, bad alignment */
    STRATA_ERR_NOMEM = -2,       /* nothing left to give */
    STRATA_ERR_FOREIGN = -3,     /* address not managed by this allocator */
    STRATA_ERR_NOT_BLOCK = -4,   /* address inside managed memory but not the start of a block */
    STRATA_ERR_DOUBLE_FREE = -5, /* block is already free */
    STRATA_ERR_TOO_SMALL = -6,   /* region too small to hold the metadata */
    STRATA_ERR_CORRUPT = -7,     /* metadata found damaged (a check failed) */
    STRATA_ERR_BUSY = -8,        /* objects still live (destroying a cache in use) */
};

/* A short, static description of an error code ("double free"). */
STRATA_API const char *strata_strerror(int err);

/* The library version as "MAJOR.MINOR.PATCH". */
STRATA_API const char *strata_version(void);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_DEFS_H */
