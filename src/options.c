/* SPDX-License-Identifier: MIT */
/*
 * options.c — parse the STRATA_* environment variables (options.h).
 * Messages go straight to file descriptor 2 (st_write_stderr): stdio may
 * allocate, and this runs inside the first malloc.
 */
#include "options.h"

#include <stdlib.h>
#include <string.h>

#include "debug.h"

/* One line: "strata: NAME=VALUE is not a number in LO..HI; using DEF". */
static void complain(const char *name, const char *value, unsigned lo, unsigned hi, unsigned def)
{
    char a[21], b[21], c[21];
    const char *parts[] = {"strata: ", name, "=", value, " is not a number in ",
                           st_fmt_dec(a, lo), "..", st_fmt_dec(b, hi), "; using ",
                           st_fmt_dec(c, def), "\n"};
    for (size_t i = 0; i < ST_ARRAY_LEN(parts); i++)
        st_write_stderr(parts[i]);
}

/* An unsigned decimal in [lo, hi], or def (said once) when malformed. */
static unsigned number(const char *name, unsigned def, unsigned lo, unsigned hi)
{
    const char *v = getenv(name);
    if (v == NULL || *v == 0)
        return def;
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    if (*end != 0 || *v == '-' || n < lo || n > hi) {
        complain(name, v, lo, hi, def);
        return def;
    }
    return (unsigned)n;
}

st_options st_opts;

static bool flag(const char *name) { return number(name, 0, 0, 1) == 1; }

void st_options_read(st_options *o)
{
    o->show_stats = flag("STRATA_SHOW_STATS");
    o->stats_file = getenv("STRATA_STATS_FILE");
    if (o->stats_file != NULL && *o->stats_file == 0)
        o->stats_file = NULL;
    o->verbose = flag("STRATA_VERBOSE");
    o->decay_ms = number("STRATA_DECAY_MS", 1000, 0, 60000);
    o->retain_kb = number("STRATA_RETAIN_KB", 4096, 0, 1u << 22);
    o->huge_pages = flag("STRATA_HUGE_PAGES");
}
