/* SPDX-License-Identifier: MIT */
/* strata.h — every public strata header. */
#ifndef STRATA_H
#define STRATA_H

#include "strata/defs.h"
#include "strata/page_source.h"
#include "strata/buddy.h"
#include "strata/slab.h"
#include "strata/pool.h"
#include "strata/heap.h"
#include "strata/tlsf.h"
#include "strata/malloc.h"

#endif /* STRATA_H */
