/* SPDX-License-Identifier: MIT */
/*
 * tlsf.h (internal; the public API is strata/tlsf.h) — the size-class
 * mapping and counters that let tests see how much work the last TLSF
 * operation did, so that the worst-case bound can be asserted without
 * timing anything. Updated on every call (a store or two), read only by
 * tests and diagnostics.
 */
#ifndef ST_TLSF_H
#define ST_TLSF_H

#include "bits.h"
#include "strata/tlsf.h"

/* Index words read by the last malloc/memalign search: second-level
 * bitmap, first-level bitmap, second-level bitmap, list head; at most 4. */
ST_HIDDEN unsigned st_tlsf_last_search_steps(const strata_tlsf *t);

/* Neighbours merged by the last free: 0, 1 or 2. */
ST_HIDDEN unsigned st_tlsf_last_merges(const strata_tlsf *t);

/* The (first level, second level) class of a free block of `size` bytes. */
ST_HIDDEN void st_tlsf_mapping(size_t size, unsigned *fl, unsigned *sl);

#endif /* ST_TLSF_H */
