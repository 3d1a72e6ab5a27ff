/* SPDX-License-Identifier: MIT */
/*
 * procfs.c — parsers for /proc/buddyinfo, pagetypeinfo, zoneinfo, meminfo,
 * vmstat, slabinfo, /proc/PID/status and smaps_rollup, the one-value files
 * of /proc/sys/vm and /sys/kernel/mm, and the loader of a whole machine.
 *
 * Each parser walks the text line by line, splits a line into
 * whitespace-separated tokens and checks each token; a line that does not
 * fit adds one diagnostic naming the file and line and is skipped. What the
 * parsers do not do: interpret the figures (fragindex.c does), or trust that
 * two files were read at the same instant (they never are).
 */
#include "procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ST_XSTR(x) #x
#define ST_STR(x) ST_XSTR(x)

/* ------------------------------------------------------------------ */
/* diagnostics and growable arrays                                     */

void st_diags_add(struct st_diags *d, const char *file, unsigned line, const char *fmt, ...)
{
    char msg[512], full[800];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (line)
        snprintf(full, sizeof(full), "%s:%u: %s", file, line, msg);
    else
        snprintf(full, sizeof(full), "%s: %s", file, msg);
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        char **v = realloc(d->msgs, cap * sizeof(*v));
        if (!v) return;
        d->msgs = v;
        d->cap = cap;
    }
    char *copy = strdup(full);
    if (copy) d->msgs[d->n++] = copy;
}

void st_diags_free(struct st_diags *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->msgs[i]);
    free(d->msgs);
    memset(d, 0, sizeof(*d));
}

/* Make room for one more element of size el in *v (count n, capacity *cap);
 * returns a pointer to the new, zeroed slot, or NULL when out of memory. */
static void *grow(void **v, size_t n, size_t *cap, size_t el)
{
    if (n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        void *nv = realloc(*v, ncap * el);
        if (!nv) return NULL;
        *v = nv;
        *cap = ncap;
    }
    void *slot = (char *)*v + n * el;
    memset(slot, 0, el);
    return slot;
}

/* ------------------------------------------------------------------ */
/* lines and tokens                                                    */

struct lines {
    const char *p, *end;
    unsigned no;
};

struct line {
    const char *s;
    size_t len;
    bool terminated; /* ended with '\n' (false only for a cut last line) */
};

static void lines_init(struct lines *it, const char *text)
{
    it->p = text;
    it->end = text + strlen(text);
    it->no = 0;
}

static bool lines_next(struct lines *it, struct line *l)
{
    if (it->p >= it->end) return false;
    const char *nl = memchr(it->p, '\n', (size_t)(it->end - it->p));
    l->s = it->p;
    l->len = nl ? (size_t)(nl - it->p) : (size_t)(it->end - it->p);
    l->terminated = nl != NULL;
    it->p = nl ? nl + 1 : it->end;
    it->no++;
    return true;
}

struct tok {
    const char *s;
    size_t n;
};

#define MAX_TOKS (8 + ST_PROCFS_MAX_ORDERS)

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v';
}

/* Split a line on whitespace; stores at most max tokens but returns how
 * many there are, so callers can tell when a line has too many. */
static size_t split(const struct line *l, struct tok *t, size_t max)
{
    size_t count = 0, i = 0;
    while (i < l->len) {
        while (i < l->len && is_space(l->s[i]))
            i++;
        if (i == l->len) break;
        size_t start = i;
        while (i < l->len && !is_space(l->s[i]))
            i++;
        if (count < max) t[count] = (struct tok){l->s + start, i - start};
        count++;
    }
    return count;
}

static bool tok_is(struct tok t, const char *word)
{
    return t.n == strlen(word) && memcmp(t.s, word, t.n) == 0;
}

/* A decimal unsigned number filling the whole token, without overflow. */
static bool tok_u64(struct tok t, uint64_t *v)
{
    uint64_t x = 0;
    if (t.n == 0) return false;
    for (size_t i = 0; i < t.n; i++) {
        if (t.s[i] < '0' || t.s[i] > '9') return false;
        if (__builtin_mul_overflow(x, 10, &x) || __builtin_add_overflow(x, t.s[i] - '0', &x))
            return false;
    }
    *v = x;
    return true;
}

/* Drop one trailing character c from the token, if present. */
static struct tok tok_chop(struct tok t, char c)
{
    if (t.n > 0 && t.s[t.n - 1] == c) t.n--;
    return t;
}

static bool tok_int(struct tok t, int *v)
{
    uint64_t x;
    if (!tok_u64(t, &x) || x > 1000000) return false;
    *v = (int)x;
    return true;
}

/* Copy a token into a name buffer; false when it does not fit. */
static bool tok_name(struct tok t, char *out, size_t cap)
{
    if (t.n == 0 || t.n >= cap) return false;
    memcpy(out, t.s, t.n);
    out[t.n] = '\0';
    return true;
}

#define CUT_LINE "line cut short: no newline at its end (truncated file?); ignored"

static bool line_blank(const struct line *l)
{
    for (size_t i = 0; i < l->len; i++)
        if (!is_space(l->s[i])) return false;
    return true;
}

static bool line_starts(const struct line *l, const char *prefix)
{
    size_t n = strlen(prefix);
    return l->len >= n && memcmp(l->s, prefix, n) == 0;
}

/* "Node N," (the comma optional) followed by "zone NAME" with NAME's comma
 * optional: the prefix shared by buddyinfo, pagetypeinfo and zoneinfo. */
static bool parse_node_zone(const struct tok *t, size_t nt, int *node, char *zone)
{
    if (nt < 4 || !tok_is(t[0], "Node") || !tok_is(t[2], "zone")) return false;
    return tok_int(tok_chop(t[1], ','), node) &&
           tok_name(tok_chop(t[3], ','), zone, ST_PROCFS_NAME_LEN);
}

/* Parse tokens t[0..n) as counts; a leading '>' (pagetypeinfo's "at least")
 * is accepted when capped is not NULL. Returns the index of the first bad
 * token, or n. */
static size_t parse_counts(const struct tok *t, size_t n, uint64_t *out, uint32_t *capped)
{
    for (size_t i = 0; i < n; i++) {
        struct tok x = t[i];
        if (capped && x.n > 1 && x.s[0] == '>') {
            x.s++;
            x.n--;
            *capped |= 1u << i;
        }
        if (!tok_u64(x, &out[i])) return i;
    }
    return n;
}

/* ------------------------------------------------------------------ */
/* buddyinfo                                                           */

static bool same_zone(int n1, const char *z1, int n2, const char *z2)
{
    return n1 == n2 && strcmp(z1, z2) == 0;
}

const struct st_buddy_zone *st_procfs_find_buddy(const struct st_buddyinfo *b, int node,
                                                 const char *zone)
{
    for (size_t i = 0; i < b->n; i++)
        if (same_zone(b->zones[i].node, b->zones[i].zone, node, zone)) return &b->zones[i];
    return NULL;
}

/* One "Node N, zone NAME c0 c1 ..." line; returns the problem or NULL. */
static const char *buddy_line(const struct tok *t, size_t nt, struct st_buddy_zone *z)
{
    if (!parse_node_zone(t, nt, &z->node, z->zone))
        return "expected 'Node N, zone NAME' followed by free block counts";
    if (nt == 4) return "no free block counts after the zone name";
    if (nt - 4 > ST_PROCFS_MAX_ORDERS)
        return "more orders than this tool supports (" ST_STR(ST_PROCFS_MAX_ORDERS) ")";
    z->norders = (int)(nt - 4);
    if (parse_counts(t + 4, nt - 4, z->nr_free, NULL) != nt - 4)
        return "a free block count is not a number";
    return NULL;
}

static void buddy_add(struct st_buddyinfo *out, const struct st_buddy_zone *z, const char *file,
                      unsigned no, struct st_diags *d, int *errors)
{
    if (st_procfs_find_buddy(out, z->node, z->zone)) {
        st_diags_add(d, file, no, "zone %s of node %d listed twice", z->zone, z->node);
        ++*errors;
        return;
    }
    struct st_buddy_zone *slot = grow((void **)&out->zones, out->n, &out->cap, sizeof(*slot));
    if (!slot) return;
    *slot = *z;
    out->n++;
    if (z->norders > out->max_orders) out->max_orders = z->norders;
}

int st_procfs_parse_buddyinfo(const char *text, const char *file, struct st_buddyinfo *out,
                              struct st_diags *d)
{
    struct lines it;
    struct line l;
    struct tok t[MAX_TOKS];
    int errors = 0;
    lines_init(&it, text);
    while (lines_next(&it, &l)) {
        if (line_blank(&l)) continue;
        struct st_buddy_zone z = {0};
        size_t nt = split(&l, t, MAX_TOKS);
        const char *why = buddy_line(t, nt, &z);
        if (why) {
            st_diags_add(d, file, it.no, "%s", why);
            errors++;
            continue;
        }
        if (!l.terminated) {
            z.partial = true;
            st_diags_add(d, file, it.no,
                         "line cut short: no newline at its end, %d orders read"
                         " (truncated file?)",
                         z.norders);
            errors++;
        }
        buddy_add(out, &z, file, it.no, d, &errors);
    }
    if (out->n == 0 && errors == 0) {
        st_diags_add(d, file, 0, "no zones found (empty or truncated file?)");
        errors++;
    }
    return errors;
}

void st_procfs_free_buddyinfo(struct st_buddyinfo *b)
{
    free(b->zones);
    memset(b, 0, sizeof(*b));
}

/* ------------------------------------------------------------------ */
/* pagetypeinfo                                                        */

enum pti_mode { PTI_NONE, PTI_FREE, PTI_BLOCKS, PTI_SKIP };

struct pti_state {
    enum pti_mode mode;
    int norders; /* columns announced by the free-count header */
    const char *file;
    struct st_diags *d;
    int errors;
};

static void pti_error(struct pti_state *s, unsigned no, const char *why)
{
    st_diags_add(s->d, s->file, no, "%s", why);
    s->errors++;
}

/* "Free pages count per migrate type at order 0 1 2 ...": the orders must
 * be 0, 1, 2, ... in sequence. */
static const char *pti_free_header(const struct tok *t, size_t nt, struct pti_state *s)
{
    size_t first = 8; /* tokens before the order numbers */
    if (nt <= first) return "free-count header without order numbers";
    if (nt - first > ST_PROCFS_MAX_ORDERS)
        return "more orders than this tool supports (" ST_STR(ST_PROCFS_MAX_ORDERS) ")";
    for (size_t i = first; i < nt; i++) {
        uint64_t o;
        if (!tok_u64(t[i], &o) || o != i - first)
            return "free-count header: orders are not 0, 1, 2, ...";
    }
    s->norders = (int)(nt - first);
    s->mode = PTI_FREE;
    return NULL;
}

/* "Number of blocks type Unmovable Movable ...": remember the type names. */
static const char *pti_blocks_header(const struct tok *t, size_t nt, struct st_pagetypeinfo *p,
                                     struct pti_state *s)
{
    size_t first = 4;
    if (nt <= first) return "block-count header without migrate type names";
    if (nt - first > ST_PROCFS_MAX_TYPES)
        return "more migrate types than this tool supports (" ST_STR(ST_PROCFS_MAX_TYPES) ")";
    for (size_t i = first; i < nt; i++)
        if (!tok_name(t[i], p->type_names[i - first], ST_PROCFS_NAME_LEN))
            return "migrate type name too long";
    p->ntypes = (int)(nt - first);
    s->mode = PTI_BLOCKS;
    return NULL;
}

static const char *pti_free_row(const struct tok *t, size_t nt, const struct line *l,
                                struct st_pagetypeinfo *p, struct pti_state *s)
{
    struct st_pti_free r = {0};
    if (!parse_node_zone(t, nt, &r.node, r.zone) || nt < 6 || !tok_is(t[4], "type") ||
        !tok_name(t[5], r.type, sizeof(r.type)))
        return "expected 'Node N, zone NAME, type TYPE' followed by counts";
    size_t n = nt - 6;
    bool cut = !l->terminated && (int)n < s->norders;
    if (n > ST_PROCFS_MAX_ORDERS || (!cut && (int)n != s->norders))
        return "the number of counts differs from the header's number of orders";
    r.norders = (int)n;
    if (parse_counts(t + 6, n, r.nr_free, &r.capped) != n)
        return "a free block count is not a number";
    struct st_pti_free *slot = grow((void **)&p->free, p->nfree, &p->capfree, sizeof(*slot));
    if (slot) {
        *slot = r;
        p->nfree++;
    }
    return cut ? "line cut short (truncated file?)" : NULL;
}

static const char *pti_blocks_row(const struct tok *t, size_t nt, struct st_pagetypeinfo *p)
{
    struct st_pti_blocks r = {0};
    if (!parse_node_zone(t, nt, &r.node, r.zone))
        return "expected 'Node N, zone NAME' followed by pageblock counts";
    size_t n = nt - 4;
    if ((int)n != p->ntypes)
        return "the number of pageblock counts differs from the number of types";
    r.ntypes = (int)n;
    if (parse_counts(t + 4, n, r.count, NULL) != n) return "a pageblock count is not a number";
    struct st_pti_blocks *slot =
        grow((void **)&p->blocks, p->nblocks, &p->capblocks, sizeof(*slot));
    if (slot) {
        *slot = r;
        p->nblocks++;
    }
    return NULL;
}

static const char *pti_header_value(const struct tok *t, size_t nt, size_t at, uint64_t *v)
{
    if (nt != at + 1 || !tok_u64(t[at], v)) return "expected a number after the colon";
    return NULL;
}

/* One line of pagetypeinfo in the current section; returns the problem. */
static const char *pti_line(const struct line *l, struct st_pagetypeinfo *p, struct pti_state *s)
{
    struct tok t[MAX_TOKS];
    size_t nt = split(l, t, MAX_TOKS);
    uint64_t v;
    const char *why;
    if (nt > MAX_TOKS) return "more columns than this tool supports";
    if (line_starts(l, "Page block order:")) {
        if ((why = pti_header_value(t, nt, 3, &v)) == NULL)
            p->pageblock_order = (int)(v > 64 ? -1 : (int)v);
        return why;
    }
    if (line_starts(l, "Pages per block:")) return pti_header_value(t, nt, 3, &p->pages_per_block);
    if (line_starts(l, "Free pages count per migrate type at order"))
        return pti_free_header(t, nt, s);
    if (line_starts(l, "Number of blocks type")) return pti_blocks_header(t, nt, p, s);
    if (!tok_is(t[0], "Node")) {
        s->mode = PTI_SKIP; /* a section this tool does not know: skip it */
        return NULL;
    }
    if (s->mode == PTI_FREE) return pti_free_row(t, nt, l, p, s);
    if (s->mode == PTI_BLOCKS) return pti_blocks_row(t, nt, p);
    if (s->mode == PTI_NONE) return "a 'Node' line before any table header";
    return NULL;
}

int st_procfs_parse_pagetypeinfo(const char *text, const char *file, struct st_pagetypeinfo *out,
                                 struct st_diags *d)
{
    struct pti_state s = {PTI_NONE, 0, file, d, 0};
    struct lines it;
    struct line l;
    out->pageblock_order = -1;
    lines_init(&it, text);
    while (lines_next(&it, &l)) {
        if (line_blank(&l)) continue;
        /* "Number of mixed blocks" and other unknown tables: skipped */
        const char *why = pti_line(&l, out, &s);
        if (why) pti_error(&s, it.no, why);
    }
    if (out->nfree == 0 && out->nblocks == 0 && s.errors == 0)
        pti_error(&s, 0, "no free-count table found (empty or truncated file?)");
    return s.errors;
}

void st_procfs_free_pagetypeinfo(struct st_pagetypeinfo *p)
{
    free(p->free);
    free(p->blocks);
    memset(p, 0, sizeof(*p));
}

/* ------------------------------------------------------------------ */
/* zoneinfo                                                            */

struct zi_key {
    const char *name;
    unsigned bit;
    size_t offset;
};

static const struct zi_key zi_keys[] = {
    {"min", ST_ZI_MIN, offsetof(struct st_zi_zone, min)},
    {"low", ST_ZI_LOW, offsetof(struct st_zi_zone, low)},
    {"high", ST_ZI_HIGH, offsetof(struct st_zi_zone, high)},
    {"spanned", ST_ZI_SPANNED, offsetof(struct st_zi_zone, spanned)},
    {"present", ST_ZI_PRESENT, offsetof(struct st_zi_zone, present)},
    {"managed", ST_ZI_MANAGED, offsetof(struct st_zi_zone, managed)},
    {"boost", ST_ZI_BOOST, offsetof(struct st_zi_zone, boost)},
    {"promo", ST_ZI_PROMO, offsetof(struct st_zi_zone, promo)},
    {"cma", ST_ZI_CMA, offsetof(struct st_zi_zone, cma)},
};

const struct st_zi_zone *st_procfs_find_zi(const struct st_zoneinfo *z, int node, const char *zone)
{
    for (size_t i = 0; i < z->n; i++)
        if (same_zone(z->zones[i].node, z->zones[i].zone, node, zone)) return &z->zones[i];
    return NULL;
}

/* "protection: (0, 2929, 3882)": the numbers between the parentheses. */
static const char *zi_protection(const struct tok *t, size_t nt, struct st_zi_zone *z)
{
    if (nt - 1 > ST_PROCFS_MAX_PROT) return "protection array longer than this tool supports";
    z->nprotection = 0;
    for (size_t i = 1; i < nt; i++) {
        struct tok x = tok_chop(tok_chop(t[i], ','), ')');
        if (i == 1 && x.n > 0 && x.s[0] == '(') {
            x.s++;
            x.n--;
        }
        if (!tok_u64(x, &z->protection[z->nprotection++]))
            return "protection: a value is not a number";
    }
    z->seen |= ST_ZI_PROTECTION;
    return NULL;
}

static const char *zi_value(struct tok v, struct st_zi_zone *z, unsigned bit, uint64_t *field)
{
    if (!tok_u64(v, field)) return "value is not a number";
    z->seen |= bit;
    return NULL;
}

/* A line inside a zone's section; unknown lines are fine (per-node stats,
 * counters, pagesets, per-cpu figures all pass through here). */
static const char *zi_field(const struct tok *t, size_t nt, struct st_zi_zone *z)
{
    if (nt == 3 && tok_is(t[0], "pages") && tok_is(t[1], "free"))
        return zi_value(t[2], z, ST_ZI_FREE, &z->free);
    if (nt >= 2 && tok_is(t[0], "protection:")) return zi_protection(t, nt, z);
    if (nt != 2) return NULL;
    for (size_t i = 0; i < sizeof(zi_keys) / sizeof(zi_keys[0]); i++)
        if (tok_is(t[0], zi_keys[i].name))
            return zi_value(t[1], z, zi_keys[i].bit, (uint64_t *)((char *)z + zi_keys[i].offset));
    return NULL;
}

static bool zi_is_field(const struct tok *t, size_t nt)
{
    struct st_zi_zone scratch = {0};
    return nt > 0 && (zi_field(t, nt, &scratch) != NULL || scratch.seen != 0);
}

static const char *zi_missing(unsigned seen)
{
    static const struct {
        unsigned bit;
        const char *name;
    } core[] = {{ST_ZI_FREE, "pages free"},
                {ST_ZI_MIN, "min"},
                {ST_ZI_LOW, "low"},
                {ST_ZI_HIGH, "high"},
                {ST_ZI_MANAGED, "managed"}};
    for (size_t i = 0; i < sizeof(core) / sizeof(core[0]); i++)
        if (!(seen & core[i].bit)) return core[i].name;
    return NULL;
}

/* At the end of a zone's section: report core fields that never came. */
static void zi_close(const struct st_zi_zone *z, unsigned start, const char *file,
                     struct st_diags *d, int *errors)
{
    const char *missing = zi_missing(z->seen);
    if (!missing) return;
    st_diags_add(d, file, start, "node %d zone %s has no '%s' line (truncated file?)", z->node,
                 z->zone, missing);
    ++*errors;
}

int st_procfs_parse_zoneinfo(const char *text, const char *file, struct st_zoneinfo *out,
                             struct st_diags *d)
{
    struct lines it;
    struct line l;
    struct tok t[MAX_TOKS];
    struct st_zi_zone *cur = NULL;
    unsigned start = 0;
    int errors = 0;
    lines_init(&it, text);
    while (lines_next(&it, &l)) {
        size_t nt = split(&l, t, MAX_TOKS);
        if (nt == 0) continue;
        const char *why = NULL;
        if (tok_is(t[0], "Node")) {
            struct st_zi_zone z = {0};
            if (nt != 4 || !parse_node_zone(t, nt, &z.node, z.zone)) {
                why = "expected 'Node N, zone NAME'";
            } else {
                if (cur) zi_close(cur, start, file, d, &errors);
                cur = grow((void **)&out->zones, out->n, &out->cap, sizeof(*cur));
                if (cur) {
                    *cur = z;
                    out->n++;
                }
                start = it.no;
            }
        } else if (!l.terminated) {
            why = CUT_LINE;
        } else if (cur) {
            why = zi_field(t, nt > MAX_TOKS ? MAX_TOKS : nt, cur);
        } else if (zi_is_field(t, nt > MAX_TOKS ? MAX_TOKS : nt)) {
            why = "zone figures before any 'Node N, zone NAME' line";
        }
        if (why) {
            st_diags_add(d, file, it.no, "%s", why);
            errors++;
        }
    }
    if (cur) zi_close(cur, start, file, d, &errors);
    if (out->n == 0 && errors == 0) {
        st_diags_add(d, file, 0, "no 'Node N, zone NAME' line found (empty or truncated file?)");
        errors++;
    }
    return errors;
}

void st_procfs_free_zoneinfo(struct st_zoneinfo *z)
{
    free(z->zones);
    memset(z, 0, sizeof(*z));
}

/* ------------------------------------------------------------------ */
/* key/value files                                                     */

static bool kv_put(struct st_kvlist *l, struct tok key, uint64_t value)
{
    struct st_kv *slot = grow((void **)&l->v, l->n, &l->cap, sizeof(*slot));
    if (!slot || !tok_name(key, slot->key, sizeof(slot->key))) return false;
    slot->value = value;
    l->n++;
    return true;
}

/* "Key: 123 [kB]". With lenient set, lines whose value is text are skipped
 * instead of reported (as /proc/PID/status has). */
static const char *colon_line(const struct line *l, struct st_kvlist *out, bool lenient)
{
    const char *colon = memchr(l->s, ':', l->len);
    if (!colon) return "expected 'Key: value'";
    struct tok key = {l->s, (size_t)(colon - l->s)};
    struct line rest = {colon + 1, l->len - (size_t)(colon + 1 - l->s), true};
    struct tok t[4];
    size_t nt = split(&rest, t, 4);
    uint64_t v;
    bool ok = (nt == 1 || (nt == 2 && tok_is(t[1], "kB"))) && tok_u64(t[0], &v);
    if (!ok) return lenient ? NULL : "expected a number, optionally followed by 'kB'";
    if (key.n == 0 || key.n >= ST_PROCFS_NAME_LEN) return "key empty or too long";
    kv_put(out, key, v);
    return NULL;
}

static int parse_colon_file(const char *text, const char *file, struct st_kvlist *out,
                            struct st_diags *d, bool lenient, unsigned skip_lines)
{
    struct lines it;
    struct line l;
    int errors = 0;
    lines_init(&it, text);
    while (lines_next(&it, &l)) {
        if (it.no <= skip_lines || line_blank(&l)) continue;
        const char *why = l.terminated ? colon_line(&l, out, lenient) : CUT_LINE;
        if (why) {
            st_diags_add(d, file, it.no, "%s", why);
            errors++;
        }
    }
    if (it.no == 0) {
        st_diags_add(d, file, 0, "empty file");
        errors++;
    }
    return errors;
}

int st_procfs_parse_meminfo(const char *text, const char *file, struct st_kvlist *out,
                            struct st_diags *d)
{
    return parse_colon_file(text, file, out, d, false, 0);
}

/* smaps_rollup starts with a mapping line ("5586...-7ffd... ---p ...
 * [rollup]") whose colons are not key separators. */
int st_procfs_parse_smaps_rollup(const char *text, const char *file, struct st_kvlist *out,
                                 struct st_diags *d)
{
    /* keys start with a capital letter, the mapping line with lowercase hex */
    bool header = (text[0] >= '0' && text[0] <= '9') || (text[0] >= 'a' && text[0] <= 'f');
    return parse_colon_file(text, file, out, d, false, header ? 1 : 0);
}

int st_procfs_parse_status(const char *text, const char *file, struct st_kvlist *out, char *name,
                           size_t name_len, struct st_diags *d)
{
    if (name_len) name[0] = '\0';
    if (strncmp(text, "Name:", 5) == 0 && name_len) {
        const char *s = text + 5;
        while (*s == ' ' || *s == '\t')
            s++;
        size_t n = strcspn(s, "\n");
        if (n >= name_len) n = name_len - 1;
        memcpy(name, s, n);
        name[n] = '\0';
    }
    return parse_colon_file(text, file, out, d, true, 0);
}

int st_procfs_parse_vmstat(const char *text, const char *file, struct st_kvlist *out,
                           struct st_diags *d)
{
    struct lines it;
    struct line l;
    struct tok t[4];
    int errors = 0;
    lines_init(&it, text);
    while (lines_next(&it, &l)) {
        size_t nt = split(&l, t, 4);
        uint64_t v;
        if (nt == 0) continue;
        if (nt != 2 || !tok_u64(t[1], &v) || t[0].n >= ST_PROCFS_NAME_LEN || !l.terminated) {
            st_diags_add(d, file, it.no, "%s", l.terminated ? "expected 'name number'" : CUT_LINE);
            errors++;
            continue;
        }
        kv_put(out, t[0], v);
    }
    if (it.no == 0) {
        st_diags_add(d, file, 0, "empty file");
        errors++;
    }
    return errors;
}

bool st_kv_get(const struct st_kvlist *l, const char *key, uint64_t *value)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].key, key) == 0) {
            *value = l->v[i].value;
            return true;
        }
    return false;
}

uint64_t st_kv_get_or(const struct st_kvlist *l, const char *key, uint64_t def)
{
    uint64_t v;
    return st_kv_get(l, key, &v) ? v : def;
}

bool st_kv_sum_prefix(const struct st_kvlist *l, const char *prefix, uint64_t *sum)
{
    size_t n = strlen(prefix);
    bool found = false;
    *sum = 0;
    for (size_t i = 0; i < l->n; i++)
        if (strncmp(l->v[i].key, prefix, n) == 0) {
            *sum += l->v[i].value;
            found = true;
        }
    return found;
}

void st_kv_free(struct st_kvlist *l)
{
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* ------------------------------------------------------------------ */
/* slabinfo                                                            */

static size_t find_tok(const struct tok *t, size_t nt, const char *word)
{
    for (size_t i = 0; i < nt; i++)
        if (tok_is(t[i], word)) return i;
    return nt;
}

/* "name active num size perslab pages : tunables ... : slabdata as ns sa" */
static const char *slab_row(const struct tok *t, size_t nt, struct st_slabinfo_cache *s)
{
    uint64_t v[5];
    if (nt < 6 || !tok_name(t[0], s->name, sizeof(s->name)))
        return "expected a cache name and five numbers";
    if (parse_counts(t + 1, 5, v, NULL) != 5) return "expected five numbers after the cache name";
    s->active_objs = v[0];
    s->num_objs = v[1];
    s->objsize = v[2];
    s->objperslab = v[3];
    s->pagesperslab = v[4];
    size_t k = find_tok(t, nt, "slabdata");
    if (k + 2 >= nt || !tok_u64(t[k + 1], &s->active_slabs) || !tok_u64(t[k + 2], &s->num_slabs))
        return "no ': slabdata <active_slabs> <num_slabs>' section";
    return NULL;
}

/* "slabinfo - version: 2.1" (possibly followed by " (statistics)"). */
static bool slab_version_ok(const struct line *l)
{
    const char *p = "slabinfo - version: 2.";
    return line_starts(l, p);
}

int st_procfs_parse_slabinfo(const char *text, const char *file, struct st_slabinfo *out,
                             struct st_diags *d)
{
    struct lines it;
    struct line l;
    struct tok t[MAX_TOKS];
    int errors = 0;
    lines_init(&it, text);
    while (lines_next(&it, &l)) {
        if (line_blank(&l) || (l.len > 0 && l.s[0] == '#')) continue;
        if (it.no == 1 || line_starts(&l, "slabinfo ")) {
            if (slab_version_ok(&l)) continue;
            st_diags_add(d, file, it.no, "not slabinfo version 2.x: not read");
            return errors + 1;
        }
        struct st_slabinfo_cache s = {0};
        size_t nt = split(&l, t, MAX_TOKS);
        const char *why = l.terminated ? slab_row(t, nt > MAX_TOKS ? MAX_TOKS : nt, &s) : CUT_LINE;
        if (why) {
            st_diags_add(d, file, it.no, "%s", why);
            errors++;
            continue;
        }
        struct st_slabinfo_cache *slot = grow((void **)&out->v, out->n, &out->cap, sizeof(*slot));
        if (slot) {
            *slot = s;
            out->n++;
        }
    }
    return errors;
}

void st_procfs_free_slabinfo(struct st_slabinfo *s)
{
    free(s->v);
    memset(s, 0, sizeof(*s));
}

/* ------------------------------------------------------------------ */
/* one-value files                                                     */

int st_procfs_parse_long(const char *text, const char *file, long *value, struct st_diags *d)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    while (*end == ' ' || *end == '\t' || *end == '\n')
        end++;
    if (end == text || *end != '\0' || errno) {
        st_diags_add(d, file, 1, "expected one integer");
        return 1;
    }
    *value = v;
    return 0;
}

int st_procfs_parse_choice(const char *text, const char *file, char *out, size_t out_len,
                           struct st_diags *d)
{
    const char *open = strchr(text, '['), *close = open ? strchr(open, ']') : NULL;
    size_t n = close ? (size_t)(close - open - 1) : 0;
    if (!close || n == 0 || n >= out_len) {
        st_diags_add(d, file, 1, "expected choices with the current one in [brackets]");
        return 1;
    }
    memcpy(out, open + 1, n);
    out[n] = '\0';
    return 0;
}

/* ------------------------------------------------------------------ */
/* reading files                                                       */

void st_procfs_path(char *buf, size_t n, const char *root, const char *rel)
{
    size_t rl = strlen(root);
    bool slash = rl > 0 && root[rl - 1] == '/';
    snprintf(buf, n, "%s%s%s", root, slash ? "" : "/", rel);
}

/* Files under /proc report size 0: read until end of file, growing. */
static int read_all(int fd, char **text, size_t *len)
{
    size_t cap = 16384, n = 0;
    char *buf = malloc(cap);
    if (!buf) return ENOMEM;
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) return free(buf), ENOMEM;
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            return e;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

int st_procfs_read(const char *root, const char *rel, char **text, size_t *len)
{
    char path[4096];
    size_t dummy;
    st_procfs_path(path, sizeof(path), root, rel);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    int e = read_all(fd, text, len ? len : &dummy);
    close(fd);
    return e;
}

/* ------------------------------------------------------------------ */
/* a whole machine                                                     */

static const char *const machine_rel[ST_F_COUNT] = {
    [ST_F_BUDDYINFO] = "proc/buddyinfo",
    [ST_F_PAGETYPEINFO] = "proc/pagetypeinfo",
    [ST_F_ZONEINFO] = "proc/zoneinfo",
    [ST_F_MEMINFO] = "proc/meminfo",
    [ST_F_VMSTAT] = "proc/vmstat",
    [ST_F_SLABINFO] = "proc/slabinfo",
    [ST_F_MIN_FREE_KBYTES] = "proc/sys/vm/min_free_kbytes",
    [ST_F_EXTFRAG_THRESHOLD] = "proc/sys/vm/extfrag_threshold",
    [ST_F_PROACTIVENESS] = "proc/sys/vm/compaction_proactiveness",
    [ST_F_WSF] = "proc/sys/vm/watermark_scale_factor",
    [ST_F_THP_ENABLED] = "sys/kernel/mm/transparent_hugepage/enabled",
    [ST_F_THP_DEFRAG] = "sys/kernel/mm/transparent_hugepage/defrag",
};

/* Hand one file's text to its parser. */
static int machine_parse(struct st_machine *m, int which, const char *text, const char *name,
                         struct st_diags *d)
{
    switch (which) {
    case ST_F_BUDDYINFO:
        return st_procfs_parse_buddyinfo(text, name, &m->buddy, d);
    case ST_F_PAGETYPEINFO:
        return st_procfs_parse_pagetypeinfo(text, name, &m->pti, d);
    case ST_F_ZONEINFO:
        return st_procfs_parse_zoneinfo(text, name, &m->zi, d);
    case ST_F_MEMINFO:
        return st_procfs_parse_meminfo(text, name, &m->meminfo, d);
    case ST_F_VMSTAT:
        return st_procfs_parse_vmstat(text, name, &m->vmstat, d);
    case ST_F_SLABINFO:
        return st_procfs_parse_slabinfo(text, name, &m->slab, d);
    case ST_F_MIN_FREE_KBYTES:
        return st_procfs_parse_long(text, name, &m->min_free_kbytes, d);
    case ST_F_EXTFRAG_THRESHOLD:
        return st_procfs_parse_long(text, name, &m->extfrag_threshold, d);
    case ST_F_PROACTIVENESS:
        return st_procfs_parse_long(text, name, &m->proactiveness, d);
    case ST_F_WSF:
        return st_procfs_parse_long(text, name, &m->wsf, d);
    case ST_F_THP_ENABLED:
        return st_procfs_parse_choice(text, name, m->thp_enabled, sizeof(m->thp_enabled), d);
    case ST_F_THP_DEFRAG:
        return st_procfs_parse_choice(text, name, m->thp_defrag, sizeof(m->thp_defrag), d);
    }
    return 0;
}

static int machine_file(struct st_machine *m, int which, struct st_diags *d)
{
    struct st_file *f = &m->files[which];
    char name[4096], *text;
    f->rel = machine_rel[which];
    st_procfs_path(name, sizeof(name), m->root, f->rel);
    f->err = st_procfs_read(m->root, f->rel, &text, NULL);
    if (f->err) return 0;
    f->loaded = true;
    f->nerrors = machine_parse(m, which, text, name, d);
    free(text);
    return f->nerrors;
}

/* The first line of a small text file, without its newline. */
static bool read_first_line(const char *root, const char *rel, char *out, size_t n)
{
    char *text;
    if (st_procfs_read(root, rel, &text, NULL) != 0) return false;
    size_t len = strcspn(text, "\n");
    if (len >= n) len = n - 1;
    memcpy(out, text, len);
    out[len] = '\0';
    free(text);
    return len > 0;
}

/* A value of the strata-snapshot file ("key: value" lines) that
 * `strata frag snapshot` writes next to proc/ and sys/. */
static bool snapshot_value(const char *root, const char *key, char *out, size_t n)
{
    char *text;
    bool found = false;
    if (st_procfs_read(root, "strata-snapshot", &text, NULL) != 0) return false;
    size_t kl = strlen(key);
    for (char *p = text; p && *p && !found; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, kl) != 0 || p[kl] != ':') continue;
        const char *v = p + kl + 1;
        while (*v == ' ')
            v++;
        size_t len = strcspn(v, "\n");
        snprintf(out, n, "%.*s", (int)len, v);
        found = true;
    }
    free(text);
    return found;
}

static bool is_this_machine(const char *root)
{
    return strcmp(root, "/") == 0;
}

static void machine_page_size(struct st_machine *m, long page_size)
{
    char buf[32];
    m->page_size = 4096;
    m->page_size_from = "assumed";
    if (page_size > 0) {
        m->page_size = page_size;
        m->page_size_from = "--page-size";
    } else if (snapshot_value(m->root, "page_size", buf, sizeof(buf)) && atol(buf) > 0) {
        m->page_size = atol(buf);
        m->page_size_from = "snapshot";
    } else if (is_this_machine(m->root)) {
        m->page_size = sysconf(_SC_PAGESIZE);
        m->page_size_from = "this machine";
    }
}

/* The date of the figures: the snapshot's, now for this machine, else the
 * time buddyinfo was last written. */
static void machine_date(struct st_machine *m)
{
    char path[4096];
    struct stat st;
    time_t t = time(NULL);
    if (snapshot_value(m->root, "date", m->date, sizeof(m->date))) return;
    st_procfs_path(path, sizeof(path), m->root, "proc/buddyinfo");
    bool from_file = !is_this_machine(m->root) && stat(path, &st) == 0;
    if (from_file) t = st.st_mtime;
    strftime(m->date, sizeof(m->date),
             from_file ? "%Y-%m-%d %H:%M:%S UTC (file time)" : "%Y-%m-%d %H:%M:%S UTC", gmtime(&t));
}

static void machine_identity(struct st_machine *m)
{
    if (!snapshot_value(m->root, "hostname", m->hostname, sizeof(m->hostname)) &&
        !read_first_line(m->root, "proc/sys/kernel/hostname", m->hostname, sizeof(m->hostname)))
        snprintf(m->hostname, sizeof(m->hostname), "unknown host");
    if (!snapshot_value(m->root, "kernel", m->kernel, sizeof(m->kernel)) &&
        !read_first_line(m->root, "proc/sys/kernel/osrelease", m->kernel, sizeof(m->kernel)))
        snprintf(m->kernel, sizeof(m->kernel), "unknown");
    machine_date(m);
}

int st_machine_load(struct st_machine *m, const char *root, long page_size, struct st_diags *d)
{
    int errors = 0;
    memset(m, 0, sizeof(*m));
    m->root = root;
    m->min_free_kbytes = m->extfrag_threshold = m->proactiveness = m->wsf = -1;
    for (int i = 0; i < ST_F_COUNT; i++)
        errors += machine_file(m, i, d);
    machine_page_size(m, page_size);
    machine_identity(m);
    return errors;
}

void st_machine_free(struct st_machine *m)
{
    st_procfs_free_buddyinfo(&m->buddy);
    st_procfs_free_pagetypeinfo(&m->pti);
    st_procfs_free_zoneinfo(&m->zi);
    st_kv_free(&m->meminfo);
    st_kv_free(&m->vmstat);
    st_procfs_free_slabinfo(&m->slab);
}
