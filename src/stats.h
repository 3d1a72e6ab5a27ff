/* SPDX-License-Identifier: MIT */
/*
 * stats.h — the malloc's figures, computed on demand (stats.c); the
 * public side is strata_malloc_stats_get and strata_stats_print in
 * include/strata/malloc.h.
 */
#ifndef ST_STATS_H
#define ST_STATS_H

#include "bits.h"

/* Print the stats where the options say (STRATA_STATS_FILE or stderr);
 * registered with atexit when STRATA_SHOW_STATS or STRATA_STATS_FILE is set. */
ST_HIDDEN void st_stats_at_exit(void);

/* Hand the calling thread's batch of remote frees to their owners and
 * its kept blocks back to their slabs (in malloc.c), so that a snapshot
 * taken after a thread's frees counts them. */
ST_HIDDEN void st_malloc_flush_thread(void);

#endif /* ST_STATS_H */
