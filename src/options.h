/* SPDX-License-Identifier: MIT */
/*
 * options.h — the malloc's settings from the environment, read once at
 * start with getenv (which does not allocate). A bad value is reported
 * once on stderr and the default is used. docs/malloc.md lists them.
 */
#ifndef ST_OPTIONS_H
#define ST_OPTIONS_H

#include "bits.h"

typedef struct st_options {
    bool show_stats;        /* STRATA_SHOW_STATS: print the stats at exit */
    const char *stats_file; /* STRATA_STATS_FILE: … to this file (appended) */
    bool verbose;           /* STRATA_VERBOSE: say what the allocator does */
    unsigned decay_ms;      /* STRATA_DECAY_MS: free pages kept this long */
    unsigned retain_kb;     /* STRATA_RETAIN_KB: free pages a heap keeps past that */
    bool huge_pages;        /* STRATA_HUGE_PAGES: transparent huge pages on segments */
} st_options;

/* The process's options: zero until st_options_read fills them. */
ST_HIDDEN extern st_options st_opts;
ST_HIDDEN void st_options_read(st_options *o);

#endif /* ST_OPTIONS_H */
