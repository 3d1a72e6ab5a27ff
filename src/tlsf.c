/* SPDX-License-Identifier: MIT */
/*
 * tlsf.c — two-level segregated fit over caller pools (include/strata/tlsf.h).
 *
 * What this layer does: it keeps every free block on one of FL_COUNT x
 * SL_COUNT doubly linked lists, chosen by its size (first level: the power
 * of two; second level: which of 32 equal slices of that power), with one
 * bitmap word per level saying which lists are non-empty. A request is
 * rounded up to the next class boundary, so the head of any non-empty list
 * at or above that class fits; finding one is two bit scans. Blocks carry
 * boundary tags so that free merges with both physical neighbours in O(1).
 *
 * Block layout (every header 16-aligned, every size a multiple of 16):
 *
 *   header:  check word | size | FREE | PREV_FREE     (16 bytes)
 *   payload: free block: next_free, prev_free, ..., back pointer to header
 *            used block: the caller's bytes
 *
 * The check word is a hash of the header's address and size word; a free
 * of a pointer whose "header" does not hash right is not a block start.
 * A pool ends with a 16-byte sentinel header of size 0, always used.
 *
 * What it does not do: it never loops over blocks in malloc/free/realloc/
 * memalign (only check, walk and get_info do), never reads outside its
 * pools when validating a pointer, never grows a pool by itself, and does
 * no locking.
 */
#include "strata/tlsf.h"

#include <errno.h>
#include <string.h>

#include "bits.h"
#include "debug.h"
#include "tlsf.h"

#define TLSF_MAGIC 0x73666c74617274ull
#define HDR ((size_t)16)
#define ALIGN ((size_t)STRATA_TLSF_ALIGN)
#define BLOCK_MIN ((size_t)STRATA_TLSF_BLOCK_MIN)
#define BLOCK_MAX STRATA_TLSF_BLOCK_MAX /* payloads are below this */
#define SL_LOG2 5
#define SL_COUNT STRATA_TLSF_SL_INDEX_COUNT
#define FL_SHIFT (SL_LOG2 + 4)           /* below 2^9 = 512: one linear first level */
#define FL_MAX 40                        /* log2(BLOCK_MAX) */
#define FL_COUNT (FL_MAX - FL_SHIFT + 1) /* 32: fits the 32-bit first-level bitmap */
#define SMALL_BLOCK ((size_t)1 << FL_SHIFT)
#define MAX_POOLS STRATA_TLSF_MAX_POOLS

#define FREE_BIT ((size_t)1)
#define PREV_FREE_BIT ((size_t)2)
#define FLAG_MASK ((size_t)3)

_Static_assert(SL_COUNT == 1 << SL_LOG2, "SL_INDEX_COUNT must be 2^SL_LOG2");
_Static_assert(FL_COUNT <= 32 && SL_COUNT <= 32, "bitmaps are 32-bit words");
_Static_assert(BLOCK_MAX == (size_t)1 << FL_MAX, "BLOCK_MAX must be 2^FL_MAX");

typedef struct tblock {
    uintptr_t check;          /* tag(header address, size word) */
    size_t size;              /* payload bytes | FREE_BIT | PREV_FREE_BIT */
    struct tblock *next_free; /* free blocks only: payload word 0 */
    struct tblock *prev_free; /* free blocks only: payload word 1 */
} tblock;

typedef struct tlsf_pool {
    uintptr_t start; /* first block header (the pool's handle) */
    uintptr_t end;   /* one past the sentinel header */
} tlsf_pool;

struct strata_tlsf {
    uint64_t magic;
    uint32_t fl_bitmap;
    uint32_t sl_bitmap[FL_COUNT];
    tblock *heads[FL_COUNT][SL_COUNT];
    tlsf_pool pools[MAX_POOLS];
    unsigned npools;
    size_t free_bytes, free_count; /* over the free lists */
    size_t used_bytes, used_count;
    unsigned last_search_steps, last_merges;
};

/* ---- blocks ----------------------------------------------------------- */

static inline uintptr_t tag(const tblock *b, size_t word)
{
    uint64_t h = ((uint64_t)(uintptr_t)b ^ 0x5bd1e9955bd1e995ull) * 0x9e3779b97f4a7c15ull;
    return (uintptr_t)(h ^ (h >> 29) ^ word);
}

static inline size_t bsize(const tblock *b) { return b->size & ~FLAG_MASK; }
static inline bool is_free(const tblock *b) { return (b->size & FREE_BIT) != 0; }
static inline bool prev_is_free(const tblock *b) { return (b->size & PREV_FREE_BIT) != 0; }
static inline bool hdr_valid(const tblock *b) { return b->check == tag(b, b->size); }
static inline void *payload(const tblock *b) { return (char *)b + HDR; }
static inline tblock *next_phys(const tblock *b) { return (tblock *)((char *)b + HDR + bsize(b)); }
static inline tblock *prev_phys(const tblock *b) { return ((tblock *const *)b)[-1]; }

static inline void hdr_set(tblock *b, size_t word)
{
    b->size = word;
    b->check = tag(b, word);
}

static inline void set_prev_free(tblock *b, bool v)
{
    hdr_set(b, (b->size & ~PREV_FREE_BIT) | (v ? PREV_FREE_BIT : 0));
}

/* The back pointer in a free block's last payload word, read by the next
 * block to find its free predecessor. */
static inline void set_footer(tblock *b) { ((tblock **)next_phys(b))[-1] = b; }

/* ---- the index -------------------------------------------------------- */

void st_tlsf_mapping(size_t size, unsigned *fl, unsigned *sl)
{
    if (size < SMALL_BLOCK) {
        *fl = 0;
        *sl = (unsigned)(size / (SMALL_BLOCK / SL_COUNT));
        return;
    }
    unsigned f = st_log2_floor(size);
    *sl = (unsigned)(size >> (f - SL_LOG2)) ^ SL_COUNT;
    *fl = f - (FL_SHIFT - 1);
}

/* Round a request up to the next class boundary, so that every block of
 * the class it maps to is large enough. size < BLOCK_MAX: no overflow. */
static inline size_t round_for_search(size_t size)
{
    if (size >= SMALL_BLOCK)
        size += ((size_t)1 << (st_log2_floor(size) - SL_LOG2)) - 1;
    return size;
}

static void list_insert(strata_tlsf *t, tblock *b)
{
    unsigned fl, sl;
    st_tlsf_mapping(bsize(b), &fl, &sl);
    tblock *head = t->heads[fl][sl];
    b->next_free = head;
    b->prev_free = NULL;
    if (head != NULL)
        head->prev_free = b;
    t->heads[fl][sl] = b;
    t->fl_bitmap |= 1u << fl;
    t->sl_bitmap[fl] |= 1u << sl;
    t->free_bytes += bsize(b);
    t->free_count++;
}

static void list_remove(strata_tlsf *t, tblock *b)
{
    ST_ASSERT(2, hdr_valid(b) && is_free(b));
    ST_ASSERT(2, b->next_free == NULL || b->next_free->prev_free == b);
    unsigned fl, sl;
    st_tlsf_mapping(bsize(b), &fl, &sl);
    if (b->prev_free != NULL)
        b->prev_free->next_free = b->next_free;
    else
        t->heads[fl][sl] = b->next_free;
    if (b->next_free != NULL)
        b->next_free->prev_free = b->prev_free;
    if (t->heads[fl][sl] == NULL) {
        t->sl_bitmap[fl] &= ~(1u << sl);
        if (t->sl_bitmap[fl] == 0)
            t->fl_bitmap &= ~(1u << fl);
    }
    t->free_bytes -= bsize(b);
    t->free_count--;
}

/* The fallback of find_free: the head of size's own class. */
static tblock *exact_head(strata_tlsf *t, size_t size)
{
    unsigned fl, sl;
    st_tlsf_mapping(size, &fl, &sl);
    if (fl >= FL_COUNT)
        return NULL;
    t->last_search_steps++;
    tblock *b = t->heads[fl][sl];
    return b != NULL && bsize(b) >= size ? b : NULL;
}

/* The head of the first non-empty list whose blocks all hold `size`:
 * this class or the next larger one found by two bit scans. When there is
 * none, the head of the (unrounded) class of `size` itself, if it happens
 * to be large enough. No loop; counts the index words read. */
static tblock *find_free(strata_tlsf *t, size_t size)
{
    unsigned fl, sl;
    st_tlsf_mapping(round_for_search(size), &fl, &sl);
    t->last_search_steps = 0;
    uint32_t slmap = 0;
    if (fl < FL_COUNT) {
        t->last_search_steps++;
        slmap = t->sl_bitmap[fl] & (~0u << sl);
    }
    if (slmap == 0) {
        t->last_search_steps++;
        uint32_t flmap = fl + 1 < FL_COUNT ? (uint32_t)(t->fl_bitmap & (~0ull << (fl + 1))) : 0;
        if (flmap == 0)
            return exact_head(t, size);
        fl = st_ctz(flmap);
        t->last_search_steps++;
        slmap = t->sl_bitmap[fl];
    }
    t->last_search_steps++;
    ST_ASSERT(1, slmap != 0);
    return t->heads[fl][st_ctz(slmap)];
}

/* ---- splitting and merging -------------------------------------------- */

/* Cut b down to `need` bytes when the tail can form a block of its own;
 * the tail goes on its list, merged with a free next block. b is off the
 * lists and about to be (or stay) used. */
static void split_tail(strata_tlsf *t, tblock *b, size_t need)
{
    size_t have = bsize(b);
    if (have < need + HDR + BLOCK_MIN)
        return;
    hdr_set(b, need | (b->size & FLAG_MASK));
    tblock *r = next_phys(b);
    hdr_set(r, (have - need - HDR) | FREE_BIT);
    tblock *n = next_phys(r);
    if (is_free(n)) {
        list_remove(t, n);
        hdr_set(r, (bsize(r) + HDR + bsize(n)) | FREE_BIT);
        n = next_phys(r);
    }
    set_footer(r);
    set_prev_free(n, true);
    list_insert(t, r);
}

/* Cut the first `gap` bytes of b (off the lists) into a free block of
 * their own; returns the block after the gap. b's predecessor is used. */
static tblock *split_head(strata_tlsf *t, tblock *b, size_t gap)
{
    tblock *h = (tblock *)((char *)b + gap);
    hdr_set(h, (bsize(b) - gap) | FREE_BIT | PREV_FREE_BIT);
    hdr_set(b, (gap - HDR) | FREE_BIT);
    set_footer(b);
    list_insert(t, b);
    return h;
}

/* Hand out b (off the lists): trim it to `need`, mark it used. */
static void *use_block(strata_tlsf *t, tblock *b, size_t need)
{
    split_tail(t, b, need);
    hdr_set(b, bsize(b) | (b->size & PREV_FREE_BIT));
    set_prev_free(next_phys(b), false);
    t->used_bytes += bsize(b);
    t->used_count++;
    return payload(b);
}

/* Free a validated used block, merging with free neighbours. The absorbed
 * headers keep FREE set, so a second free of them reads as a double free
 * for as long as nobody overwrites them. */
static void release(strata_tlsf *t, tblock *b)
{
    unsigned merges = 0;
    t->used_bytes -= bsize(b);
    t->used_count--;
    hdr_set(b, b->size | FREE_BIT);
    if (prev_is_free(b)) {
        tblock *p = prev_phys(b);
        list_remove(t, p);
        hdr_set(p, (bsize(p) + HDR + bsize(b)) | (p->size & FLAG_MASK));
        b = p;
        merges++;
    }
    tblock *n = next_phys(b);
    if (is_free(n)) {
        list_remove(t, n);
        hdr_set(b, (bsize(b) + HDR + bsize(n)) | (b->size & FLAG_MASK));
        n = next_phys(b);
        merges++;
    }
    set_footer(b);
    set_prev_free(n, true);
    list_insert(t, b);
    t->last_merges = merges;
}

/* ---- validating caller pointers (O(1), reads only pool memory) ------- */

static const tlsf_pool *pool_of(const strata_tlsf *t, uintptr_t a)
{
    for (unsigned i = 0; i < t->npools; i++) /* at most MAX_POOLS */
        if (a - t->pools[i].start < t->pools[i].end - t->pools[i].start)
            return &t->pools[i];
    return NULL;
}

/* Is there room for a header at b and its payload inside the pool, before
 * the sentinel? Reads nothing when b itself is out of range. */
static bool fits(const tlsf_pool *pl, const tblock *b)
{
    uintptr_t a = (uintptr_t)b;
    if (a < pl->start || a + 2 * HDR > pl->end || !st_is_aligned(a, ALIGN))
        return false;
    return bsize(b) <= pl->end - 2 * HDR - a;
}

/* The header of the allocated block whose payload is ptr, or NULL with
 * *err: FOREIGN, NOT_BLOCK (bad alignment or check word), DOUBLE_FREE. */
static tblock *block_of(const strata_tlsf *t, const void *ptr, const tlsf_pool **out, int *err)
{
    uintptr_t a = (uintptr_t)ptr;
    const tlsf_pool *pl = pool_of(t, a);
    *err = STRATA_ERR_FOREIGN;
    if (pl == NULL)
        return NULL;
    *err = STRATA_ERR_NOT_BLOCK;
    if (!st_is_aligned(a, ALIGN) || a < pl->start + HDR || a + HDR >= pl->end)
        return NULL;
    tblock *b = (tblock *)(a - HDR);
    if (!hdr_valid(b) || (uintptr_t)b == pl->end - HDR)
        return NULL;
    *err = STRATA_ERR_DOUBLE_FREE;
    if (is_free(b))
        return NULL;
    *err = STRATA_ERR_CORRUPT;
    if (!fits(pl, b))
        return NULL;
    *out = pl;
    return b;
}

/* The neighbours that free would touch are sound: the next header (and,
 * if free, the one after it), and the free predecessor with its size. */
static bool neighbours_ok(const tlsf_pool *pl, const tblock *b)
{
    const tblock *n = next_phys(b);
    if (!hdr_valid(n) || prev_is_free(n))
        return false;
    if (is_free(n) && (!fits(pl, n) || !hdr_valid(next_phys(n)) || !prev_is_free(next_phys(n))))
        return false;
    if (!prev_is_free(b))
        return true;
    if ((uintptr_t)b == pl->start)
        return false;
    const tblock *p = prev_phys(b);
    return (uintptr_t)p < (uintptr_t)b && fits(pl, p) && hdr_valid(p) && is_free(p) &&
           next_phys(p) == b;
}

/* block_of plus neighbours_ok: what free and realloc need. */
static tblock *validate(const strata_tlsf *t, const void *ptr, int *err)
{
    const tlsf_pool *pl;
    tblock *b = block_of(t, ptr, &pl, err);
    if (b != NULL && !neighbours_ok(pl, b)) {
        *err = STRATA_ERR_CORRUPT;
        return NULL;
    }
    return b;
}

static inline bool valid(const strata_tlsf *t) { return t != NULL && t->magic == TLSF_MAGIC; }

/* A request's payload size: a multiple of 16, at least BLOCK_MIN. */
static bool adjust(size_t size, size_t *need)
{
    if (size == 0 || size >= BLOCK_MAX)
        return false;
    *need = ST_MAX(st_align_up(size, ALIGN), BLOCK_MIN);
    return true;
}

/* ---- creation and pools ----------------------------------------------- */

size_t strata_tlsf_size(void) { return st_align_up(sizeof(strata_tlsf), ALIGN) + ALIGN - 1; }
size_t strata_tlsf_pool_overhead(void) { return STRATA_TLSF_POOL_OVERHEAD; }
size_t strata_tlsf_overhead(void) { return HDR; }

static strata_tlsf *init_control(void *mem, size_t bytes)
{
    uintptr_t lo = (uintptr_t)mem, hi;
    if (mem == NULL || !st_add_ok(lo, bytes, &hi)) {
        errno = EINVAL;
        return NULL;
    }
    uintptr_t at = st_align_up(lo, ALIGN);
    if (at < lo || at >= hi || hi - at < sizeof(strata_tlsf)) {
        errno = ERANGE;
        return NULL;
    }
    strata_tlsf *t = (strata_tlsf *)at;
    memset(t, 0, sizeof(*t));
    t->magic = TLSF_MAGIC;
    return t;
}

strata_tlsf *strata_tlsf_create(void *mem, size_t bytes)
{
    strata_tlsf *t = init_control(mem, bytes);
    if (t == NULL)
        return NULL;
    uintptr_t rest = (uintptr_t)t + st_align_up(sizeof(*t), ALIGN);
    if (rest >= (uintptr_t)mem + bytes) {
        t->magic = 0;
        errno = ERANGE;
        return NULL;
    }
    if (strata_tlsf_add_pool(t, (void *)rest, bytes - (rest - (uintptr_t)mem)) == NULL) {
        t->magic = 0;
        return NULL;
    }
    return t;
}

strata_tlsf *strata_tlsf_create_with_pool(void *mem, size_t bytes, void *pool, size_t pool_bytes)
{
    strata_tlsf *t = init_control(mem, bytes);
    if (t == NULL || pool == NULL)
        return t;
    if (strata_tlsf_add_pool(t, pool, pool_bytes) == NULL) {
        t->magic = 0;
        return NULL;
    }
    return t;
}

static bool overlaps(uintptr_t a0, uintptr_t a1, uintptr_t b0, uintptr_t b1)
{
    return a0 < b1 && b0 < a1;
}

/* errno for a pool that may not be added, or 0. */
static int pool_refused(const strata_tlsf *t, uintptr_t lo, uintptr_t hi)
{
    if (hi <= lo || hi - lo < STRATA_TLSF_POOL_OVERHEAD + BLOCK_MIN)
        return ERANGE;
    if (hi - lo - STRATA_TLSF_POOL_OVERHEAD >= BLOCK_MAX)
        return EINVAL;
    if (overlaps(lo, hi, (uintptr_t)t, (uintptr_t)(t + 1)))
        return EINVAL;
    for (unsigned i = 0; i < t->npools; i++)
        if (overlaps(lo, hi, t->pools[i].start, t->pools[i].end))
            return EINVAL;
    return t->npools == MAX_POOLS ? ENOMEM : 0;
}

void *strata_tlsf_add_pool(strata_tlsf *t, void *mem, size_t bytes)
{
    uintptr_t raw = (uintptr_t)mem, top;
    if (!valid(t) || mem == NULL || !st_add_ok(raw, bytes, &top)) {
        errno = EINVAL;
        return NULL;
    }
    uintptr_t lo = st_align_up(raw, ALIGN), hi = st_align_down(top, ALIGN);
    int err = lo < raw ? ERANGE : pool_refused(t, lo, hi);
    if (err != 0) {
        errno = err;
        return NULL;
    }
    tblock *b = (tblock *)lo;
    hdr_set(b, (hi - lo - STRATA_TLSF_POOL_OVERHEAD) | FREE_BIT);
    hdr_set(next_phys(b), PREV_FREE_BIT); /* the sentinel: size 0, used */
    set_footer(b);
    list_insert(t, b);
    t->pools[t->npools++] = (tlsf_pool){lo, hi};
    return b;
}

int strata_tlsf_remove_pool(strata_tlsf *t, void *pool)
{
    if (!valid(t))
        return STRATA_ERR_INVALID;
    for (unsigned i = 0; i < t->npools; i++) {
        if (t->pools[i].start != (uintptr_t)pool)
            continue;
        tblock *b = pool;
        if (!is_free(b) || (uintptr_t)next_phys(b) != t->pools[i].end - HDR)
            return STRATA_ERR_BUSY;
        list_remove(t, b);
        for (unsigned j = i + 1; j < t->npools; j++)
            t->pools[j - 1] = t->pools[j];
        t->npools--;
        return STRATA_OK;
    }
    return STRATA_ERR_FOREIGN;
}

void *strata_tlsf_get_pool(const strata_tlsf *t, unsigned index)
{
    if (!valid(t) || index >= t->npools)
        return NULL;
    return (void *)t->pools[index].start;
}

/* ---- allocation ------------------------------------------------------- */

void *strata_tlsf_malloc(strata_tlsf *t, size_t size)
{
    size_t need;
    if (!valid(t) || !adjust(size, &need)) {
        errno = EINVAL;
        return NULL;
    }
    tblock *b = find_free(t, need);
    if (b == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    list_remove(t, b);
    return use_block(t, b, need);
}

/* Ask for enough to cut an aligned payload out of the block found, with a
 * leading gap of at least one minimal free block (or none at all). */
void *strata_tlsf_memalign(strata_tlsf *t, size_t align, size_t size)
{
    size_t need, want;
    const size_t gap_min = HDR + BLOCK_MIN;
    if (!valid(t) || !st_is_pow2(align) || align >= BLOCK_MAX || !adjust(size, &need) ||
        !st_add_ok(need, align + gap_min, &want) || want >= BLOCK_MAX) {
        errno = EINVAL;
        return NULL;
    }
    if (align <= ALIGN)
        return strata_tlsf_malloc(t, size);
    tblock *b = find_free(t, want);
    if (b == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    list_remove(t, b);
    uintptr_t pay = (uintptr_t)payload(b), at = st_align_up(pay, align);
    if (at != pay && at - pay < gap_min)
        at = st_align_up(pay + gap_min, align);
    if (at != pay)
        b = split_head(t, b, at - pay);
    ST_ASSERT(1, bsize(b) >= need);
    return use_block(t, b, need);
}

int strata_tlsf_free(strata_tlsf *t, void *ptr)
{
    if (!valid(t))
        return STRATA_ERR_INVALID;
    if (ptr == NULL)
        return STRATA_OK;
    int err;
    tblock *b = validate(t, ptr, &err);
    if (b == NULL)
        return err;
    release(t, b);
    return STRATA_OK;
}

/* Grow b in place by absorbing its free successor, if that is enough. */
static bool grow_in_place(strata_tlsf *t, tblock *b, size_t need)
{
    tblock *n = next_phys(b);
    size_t have = bsize(b);
    if (!is_free(n) || have + HDR + bsize(n) < need)
        return false;
    list_remove(t, n);
    hdr_set(b, (have + HDR + bsize(n)) | (b->size & PREV_FREE_BIT));
    set_prev_free(next_phys(b), false);
    split_tail(t, b, need);
    t->used_bytes += bsize(b) - have;
    return true;
}

void *strata_tlsf_realloc(strata_tlsf *t, void *ptr, size_t size)
{
    if (!valid(t)) {
        errno = EINVAL;
        return NULL;
    }
    if (ptr == NULL)
        return strata_tlsf_malloc(t, size);
    int err;
    size_t need;
    tblock *b = validate(t, ptr, &err);
    if (b == NULL || (size != 0 && !adjust(size, &need))) {
        errno = EINVAL;
        return NULL;
    }
    if (size == 0) {
        release(t, b);
        return NULL;
    }
    size_t have = bsize(b);
    if (need <= have) {
        split_tail(t, b, need);
        t->used_bytes -= have - bsize(b);
        return ptr;
    }
    if (grow_in_place(t, b, need))
        return ptr;
    void *q = strata_tlsf_malloc(t, size);
    if (q == NULL)
        return NULL;
    memcpy(q, ptr, have);
    release(t, b);
    return q;
}

size_t strata_tlsf_usable_size(const strata_tlsf *t, const void *ptr)
{
    const tlsf_pool *pl;
    int err;
    if (!valid(t) || ptr == NULL)
        return 0;
    const tblock *b = block_of(t, ptr, &pl, &err);
    return b != NULL ? bsize(b) : 0;
}

/* ---- walking and statistics ------------------------------------------- */

static const tlsf_pool *pool_by_handle(const strata_tlsf *t, const void *pool)
{
    for (unsigned i = 0; i < t->npools; i++)
        if (t->pools[i].start == (uintptr_t)pool)
            return &t->pools[i];
    return NULL;
}

/* Stops early at a damaged header rather than follow a wild size. */
static void walk_range(const tlsf_pool *pl, strata_tlsf_walker fn, void *user)
{
    const tblock *b = (const tblock *)pl->start;
    while ((uintptr_t)b < pl->end - HDR && fits(pl, b) && hdr_valid(b)) {
        fn(payload(b), bsize(b), !is_free(b), user);
        b = next_phys(b);
    }
}

void strata_tlsf_walk_pool(const strata_tlsf *t, const void *pool, strata_tlsf_walker fn,
                           void *user)
{
    const tlsf_pool *pl = valid(t) && fn != NULL ? pool_by_handle(t, pool) : NULL;
    if (pl != NULL)
        walk_range(pl, fn, user);
}

void strata_tlsf_walk(const strata_tlsf *t, strata_tlsf_walker fn, void *user)
{
    if (!valid(t) || fn == NULL)
        return;
    uintptr_t prev = 0;
    for (unsigned k = 0; k < t->npools; k++) { /* pools in address order */
        const tlsf_pool *best = NULL;
        for (unsigned i = 0; i < t->npools; i++)
            if (t->pools[i].start > prev && (best == NULL || t->pools[i].start < best->start))
                best = &t->pools[i];
        walk_range(best, fn, user);
        prev = best->start;
    }
}

/* The largest free block is in the highest non-empty list; its blocks
 * differ by less than one class width, so that one list is scanned. */
static size_t largest_free(const strata_tlsf *t)
{
    if (t->fl_bitmap == 0)
        return 0;
    unsigned fl = st_log2_floor(t->fl_bitmap);
    unsigned sl = st_log2_floor(t->sl_bitmap[fl]);
    size_t best = 0;
    for (const tblock *b = t->heads[fl][sl]; b != NULL; b = b->next_free)
        best = ST_MAX(best, bsize(b));
    return best;
}

void strata_tlsf_get_info(const strata_tlsf *t, strata_tlsf_info *info)
{
    memset(info, 0, sizeof(*info));
    if (!valid(t))
        return;
    info->pools = t->npools;
    for (unsigned i = 0; i < t->npools; i++)
        info->pool_bytes += t->pools[i].end - t->pools[i].start;
    info->free_bytes = t->free_bytes;
    info->used_bytes = t->used_bytes;
    info->free_blocks = t->free_count;
    info->used_blocks = t->used_count;
    info->largest_free = largest_free(t);
    info->overhead_bytes = info->pool_bytes - info->free_bytes - info->used_bytes;
}

unsigned st_tlsf_last_search_steps(const strata_tlsf *t) { return t->last_search_steps; }
unsigned st_tlsf_last_merges(const strata_tlsf *t) { return t->last_merges; }

/* ---- check ------------------------------------------------------------ */

typedef struct tlsf_totals {
    size_t free_count, free_bytes, used_count, used_bytes;
} tlsf_totals;

/* A header that check may read: inside some pool, aligned, hashing right. */
static bool header_sound(const strata_tlsf *t, const tblock *b)
{
    const tlsf_pool *pl = pool_of(t, (uintptr_t)b);
    return pl != NULL && fits(pl, b) && hdr_valid(b);
}

/* TLSF-3, TLSF-4: one free list. Stops at a link it cannot follow. */
static int check_list(const strata_tlsf *t, unsigned fl, unsigned sl, size_t limit,
                      tlsf_totals *sum)
{
    int bad = 0;
    const tblock *prev = NULL;
    for (const tblock *b = t->heads[fl][sl]; b != NULL; prev = b, b = b->next_free) {
        if (!header_sound(t, b) || sum->free_count++ > limit)
            return bad + 1;
        unsigned f, s;
        st_tlsf_mapping(bsize(b), &f, &s);
        bad += !is_free(b) || f != fl || s != sl;                       /* TLSF-3 */
        bad += bsize(b) < BLOCK_MIN || !st_is_aligned(bsize(b), ALIGN); /* TLSF-3 */
        bad += b->prev_free != prev;                                    /* TLSF-4 */
        sum->free_bytes += bsize(b);
    }
    return bad;
}

/* TLSF-1..5: bitmaps, lists and the free counters. */
static int check_index(const strata_tlsf *t, size_t limit)
{
    tlsf_totals sum = {0};
    int bad = 0;
    for (unsigned fl = 0; fl < FL_COUNT; fl++) {
        bad += ((t->fl_bitmap >> fl) & 1) != (t->sl_bitmap[fl] != 0); /* TLSF-1 */
        for (unsigned sl = 0; sl < SL_COUNT; sl++) {
            bad += ((t->sl_bitmap[fl] >> sl) & 1) != (t->heads[fl][sl] != NULL); /* TLSF-2 */
            bad += check_list(t, fl, sl, limit, &sum);                           /* TLSF-3, 4 */
        }
    }
    bad += sum.free_count != t->free_count || sum.free_bytes != t->free_bytes; /* TLSF-5 */
    return bad;
}

/* TLSF-10: b is on the list of its class. */
static bool on_list(const strata_tlsf *t, const tblock *b, size_t limit)
{
    unsigned fl, sl;
    st_tlsf_mapping(bsize(b), &fl, &sl);
    if (fl >= FL_COUNT)
        return false;
    size_t n = 0;
    for (const tblock *x = t->heads[fl][sl]; x != NULL && n++ <= limit; x = x->next_free) {
        if (x == b)
            return true;
        if (!header_sound(t, x))
            return false;
    }
    return false;
}

/* TLSF-6..10 over one pool, adding its blocks to *sum. */
static int check_range(const strata_tlsf *t, const tlsf_pool *pl, size_t limit, tlsf_totals *sum)
{
    int bad = 0;
    bool prev_free = false;
    const tblock *b = (const tblock *)pl->start;
    for (; (uintptr_t)b != pl->end - HDR; b = next_phys(b)) {
        if (!fits(pl, b) || !hdr_valid(b))
            return bad + 1; /* TLSF-6: the chain is broken here */
        bad += bsize(b) < BLOCK_MIN || !st_is_aligned(bsize(b), ALIGN); /* TLSF-6 */
        bad += prev_is_free(b) != prev_free;                            /* TLSF-7 */
        if (is_free(b)) {
            bad += prev_free;                                /* TLSF-8 */
            bad += ((tblock *const *)next_phys(b))[-1] != b; /* TLSF-7 */
            bad += !on_list(t, b, limit);                    /* TLSF-10 */
            sum->free_count++;
            sum->free_bytes += bsize(b);
        } else {
            sum->used_count++;
            sum->used_bytes += bsize(b);
        }
        prev_free = is_free(b);
    }
    bad += !hdr_valid(b) || b->size != (prev_free ? PREV_FREE_BIT : 0); /* TLSF-9 */
    return bad;
}

/* TLSF-12: pool table sane. */
static int check_pools(const strata_tlsf *t)
{
    int bad = t->npools > MAX_POOLS;
    for (unsigned i = 0; i < t->npools && i < MAX_POOLS; i++) {
        const tlsf_pool *p = &t->pools[i];
        bad += !st_is_aligned(p->start, ALIGN) || !st_is_aligned(p->end, ALIGN);
        bad += p->end <= p->start || p->end - p->start < STRATA_TLSF_POOL_OVERHEAD + BLOCK_MIN;
        bad += overlaps(p->start, p->end, (uintptr_t)t, (uintptr_t)(t + 1));
        for (unsigned j = 0; j < i; j++)
            bad += overlaps(p->start, p->end, t->pools[j].start, t->pools[j].end);
    }
    return bad;
}

static size_t block_limit(const strata_tlsf *t)
{
    size_t bytes = 0;
    for (unsigned i = 0; i < t->npools && i < MAX_POOLS; i++)
        bytes += t->pools[i].end - t->pools[i].start;
    return bytes / (HDR + BLOCK_MIN) + 1;
}

int strata_tlsf_check_pool(const strata_tlsf *t, const void *pool)
{
    if (!valid(t))
        return 1;
    const tlsf_pool *pl = pool_by_handle(t, pool);
    tlsf_totals sum = {0};
    return pl == NULL ? 1 : check_range(t, pl, block_limit(t), &sum);
}

/* TLSF-12 first (the pool table must be sane to walk anything), then the
 * index (TLSF-1..5), every pool (TLSF-6..10) and the totals (TLSF-11). */
int strata_tlsf_check(const strata_tlsf *t)
{
    if (!valid(t))
        return 1;
    int bad = check_pools(t);
    if (bad != 0)
        return bad;
    size_t limit = block_limit(t);
    bad += check_index(t, limit);
    tlsf_totals sum = {0};
    for (unsigned i = 0; i < t->npools; i++)
        bad += check_range(t, &t->pools[i], limit, &sum);
    /* TLSF-11: physical totals equal the counters (and so the lists) */
    bad += sum.free_count != t->free_count || sum.free_bytes != t->free_bytes;
    bad += sum.used_count != t->used_count || sum.used_bytes != t->used_bytes;
    return bad;
}
