/* SPDX-License-Identifier: MIT */
/*
 * bt_heap.c — the boundary-tag heap (include/strata/heap.h).
 *
 * The region after the control structure is a row of blocks that tile it
 * exactly. Each block has a 16-byte header (size|flags, the slack that
 * encodes the requested size, a check word) and an 8-byte footer that
 * repeats size|used, so from any block both neighbours are one read away:
 * the right one at block + size, the left one through the footer just
 * below the header. Freeing merges with free neighbours at once, so no two
 * free blocks are ever adjacent; allocating carves the low part of a free
 * block and leaves the high remainder free when it can hold a minimum
 * block (an aligned request may also leave a free block below it).
 *
 * The free index is policy dependent. The four list policies share one
 * doubly-linked list kept in ADDRESS order, not LIFO: address-ordered
 * first fit fragments least of the simple policies (it keeps reusing low
 * addresses and lets the top of the heap grow into one large block), it
 * makes next fit the classic roving scan over the address space, and it
 * gives best and worst fit a deterministic tie-break (lowest address).
 * The price is that freeing a block with no free neighbour walks the list
 * to its place, O(free blocks), the same order as the search itself; a
 * block that merges takes its neighbour's place in O(1). SEGREGATED keeps
 * one LIFO list per size class and a bitmap of the non-empty classes.
 *
 * Flags in the low bits of the size: USED, PREV_FREE (a redundant copy of
 * the left neighbour's state, cross-checked by free and check) and DEAD,
 * written over the header of a block swallowed by a merge so that a stale
 * pointer to it reads as a double free rather than as garbage.
 *
 * Every entry point validates its pointer in O(1) (range, alignment,
 * check word, footer, used bit, and the neighbours' tags before a merge)
 * and changes nothing when it rejects. Not thread-safe. This file does not
 * map memory or grow the region: the caller owns both. Invariants:
 * docs/INVARIANTS.md (HEAP-n, cited in the check functions below).
 */
#include <errno.h>
#include <string.h>

#include "bits.h"
#include "debug.h"
#include "strata/heap.h"

#define GRAIN ((size_t)STRATA_HEAP_ALIGN)
#define HDR ((size_t)16)
#define FTR ((size_t)8)
#define OVERHEAD ((size_t)STRATA_HEAP_OVERHEAD)
#define MIN_BLOCK ((size_t)STRATA_HEAP_MIN_BLOCK)

#define F_USED ((size_t)1)
#define F_PREV_FREE ((size_t)2)
#define F_DEAD ((size_t)4)
#define FLAG_MASK ((size_t)15)
#define TAG_MASK (~F_PREV_FREE) /* the bits the check word and the footer cover */

#define HEAP_MAGIC 0x7374686561703031ull /* "sthap01" */
#define LINEAR_CLASSES 13u               /* 48..240 bytes: one class per 16-byte size */
#define MAX_CLASSES 256u
#define BITMAP_WORDS (MAX_CLASSES / 64u)
#define SEG STRATA_HEAP_SEGREGATED

/* Headers, links and footers overlay one another and the caller's bytes
 * as blocks split and merge (a new block's links land on a header killed
 * a moment before): exempt them from type-based alias analysis so the
 * compiler cannot reorder those stores. */
typedef struct __attribute__((may_alias)) blk {
    size_t sf;      /* size | flags */
    uint32_t slack; /* used: usable - requested; free: 0 */
    uint32_t check; /* tag_of(address, sf & TAG_MASK) */
} blk;

typedef struct __attribute__((may_alias)) links {
    blk *next, *prev;
} links;

typedef size_t __attribute__((may_alias)) tag_word; /* a footer */

_Static_assert(sizeof(blk) == 16, "the header is 16 bytes");
_Static_assert(HDR + sizeof(links) + FTR <= MIN_BLOCK, "a free block holds its links");

struct strata_heap {
    uint64_t magic;
    strata_heap_policy policy;
    unsigned nheads; /* 1, or the number of size classes */
    uint64_t salt;   /* mixed into every check word */
    uintptr_t region, region_end;
    blk *first; /* first block; blocks tile [first, end) */
    uintptr_t end;
    size_t block_count, free_count, free_bytes, requested;
    blk *rover; /* next fit: where the next search starts (NULL: the head) */
    uint64_t bitmap[BITMAP_WORDS];
    blk *heads[]; /* [nheads] */
};

/* ---- blocks and tags ---------------------------------------------------- */

static inline size_t bsize(const blk *b) { return b->sf & ~FLAG_MASK; }
static inline bool is_used(const blk *b) { return (b->sf & F_USED) != 0; }
static inline blk *at(const blk *b, size_t off) { return (blk *)((uintptr_t)b + off); }
static inline blk *next_of(const blk *b) { return at(b, bsize(b)); }
static inline links *lk(const blk *b) { return (links *)(uintptr_t)(b + 1); }
static inline void *payload(const blk *b) { return (void *)(uintptr_t)(b + 1); }
static inline size_t usable(size_t size) { return size - OVERHEAD; }
static inline bool heap_ok(const strata_heap *h) { return h != NULL && h->magic == HEAP_MAGIC; }

static inline tag_word *footer_of(const blk *b, size_t size)
{
    return (tag_word *)((uintptr_t)b + size - FTR);
}

/* The block that ends where b starts, found through its footer. */
static inline blk *left_of(const blk *b)
{
    size_t f = *(const tag_word *)((uintptr_t)b - FTR);
    return (blk *)((uintptr_t)b - (f & ~FLAG_MASK));
}

static inline size_t requested_of(const blk *b)
{
    return b->slack <= usable(bsize(b)) ? usable(bsize(b)) - b->slack : 0;
}

static void set_requested(blk *b, size_t req)
{
    ST_ASSERT(1, req <= usable(bsize(b)) && usable(bsize(b)) - req <= UINT32_MAX);
    b->slack = (uint32_t)(usable(bsize(b)) - req);
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* The check word: a hash of where the header is and what it says. */
static uint32_t tag_of(const strata_heap *h, const blk *b, size_t sf)
{
    return (uint32_t)(mix64((uint64_t)(uintptr_t)b ^ h->salt ^ mix64(sf & TAG_MASK)) >> 32);
}

static void write_tags(const strata_heap *h, blk *b, size_t size, size_t flags)
{
    b->sf = size | flags;
    b->slack = 0;
    b->check = tag_of(h, b, b->sf);
    *footer_of(b, size) = (size | flags) & TAG_MASK;
}

static void set_prev_free(const strata_heap *h, blk *b, bool on)
{
    if ((uintptr_t)b < h->end)
        b->sf = on ? (b->sf | F_PREV_FREE) : (b->sf & ~F_PREV_FREE);
}

/* A header swallowed by a merge: keeps a valid check word, so a stale
 * pointer to it is diagnosed as a double free. */
static void mark_dead(const strata_heap *h, blk *b)
{
    b->sf = bsize(b) | F_DEAD;
    b->check = tag_of(h, b, b->sf);
}

/* Are b's header and footer sound (check word, size inside the blocks)? */
static bool sound(const strata_heap *h, const blk *b)
{
    size_t size = bsize(b);
    return b->check == tag_of(h, b, b->sf) && (b->sf & F_DEAD) == 0 && size >= MIN_BLOCK &&
           size <= h->end - (uintptr_t)b && *footer_of(b, size) == (b->sf & TAG_MASK);
}

/* Block size for a request: n + tags, rounded to 16, at least MIN_BLOCK. */
static bool block_for(size_t n, size_t *need)
{
    if (n == 0 || n > SIZE_MAX - OVERHEAD - GRAIN)
        return false;
    *need = ST_MAX((size_t)st_align_up(n + OVERHEAD, GRAIN), MIN_BLOCK);
    return true;
}

/* ---- size classes (segregated policy) ----------------------------------- */

/* Exact classes for 48..240 bytes, then four per power of two. */
static unsigned class_of(size_t size)
{
    if (size < 256)
        return size < MIN_BLOCK ? 0 : (unsigned)(size / GRAIN) - 3u;
    unsigned fl = st_log2_floor(size);
    unsigned sl = (unsigned)(size >> (fl - 2)) & 3u;
    return LINEAR_CLASSES + (fl - 8u) * 4u + sl;
}

static unsigned heads_for(size_t region_size, strata_heap_policy policy)
{
    if (policy != SEG)
        return 1;
    return class_of(ST_MAX(region_size & ~(GRAIN - 1), MIN_BLOCK)) + 1;
}

static void bit_set(strata_heap *h, unsigned c) { h->bitmap[c / 64] |= 1ull << (c % 64); }
static void bit_clear(strata_heap *h, unsigned c) { h->bitmap[c / 64] &= ~(1ull << (c % 64)); }

/* The first non-empty class at or above c, or nheads: at most 4 word reads. */
static unsigned next_class(const strata_heap *h, unsigned c)
{
    if (c >= h->nheads)
        return h->nheads;
    unsigned w = c / 64;
    uint64_t bits = h->bitmap[w] & (~0ull << (c % 64));
    while (bits == 0 && ++w < BITMAP_WORDS)
        bits = h->bitmap[w];
    return bits == 0 ? h->nheads : w * 64 + st_ctz(bits);
}

/* ---- the free index ----------------------------------------------------- */

static blk **head_for(strata_heap *h, size_t size)
{
    return &h->heads[h->policy == SEG ? class_of(size) : 0];
}

/* Take a free block off its list (its header must still say its size);
 * returns its predecessor there, so a replacement can take its place. */
static blk *idx_unlink(strata_heap *h, blk *b)
{
    links *l = lk(b);
    blk **head = head_for(h, bsize(b));
    if (l->prev != NULL)
        lk(l->prev)->next = l->next;
    else
        *head = l->next;
    if (l->next != NULL)
        lk(l->next)->prev = l->prev;
    if (h->policy == SEG && *head == NULL)
        bit_clear(h, class_of(bsize(b)));
    if (h->rover == b)
        h->rover = l->next;
    h->free_count--;
    h->free_bytes -= bsize(b);
    return l->prev;
}

/* Put a free block after pos (NULL: at the head). The segregated lists
 * are LIFO and ignore pos. */
static void idx_link_after(strata_heap *h, blk *b, blk *pos)
{
    blk **head = head_for(h, bsize(b));
    if (h->policy == SEG) {
        pos = NULL;
        bit_set(h, class_of(bsize(b)));
    }
    blk *nx = pos != NULL ? lk(pos)->next : *head;
    lk(b)->prev = pos;
    lk(b)->next = nx;
    if (nx != NULL)
        lk(nx)->prev = b;
    if (pos != NULL)
        lk(pos)->next = b;
    else
        *head = b;
    h->free_count++;
    h->free_bytes += bsize(b);
}

/* Insert in address order: O(free blocks) for the list policies. */
static void idx_link_sorted(strata_heap *h, blk *b)
{
    blk *pos = NULL;
    if (h->policy != SEG)
        for (blk *x = h->heads[0]; x != NULL && x < b; x = lk(x)->next)
            pos = x;
    idx_link_after(h, b, pos);
}

/* Make [b, b+size) one free block, indexed at pos (or in address order),
 * and tell the block after it. */
static void put_free(strata_heap *h, blk *b, size_t size, blk *pos, bool sorted)
{
    write_tags(h, b, size, 0);
    if (sorted)
        idx_link_sorted(h, b);
    else
        idx_link_after(h, b, pos);
    set_prev_free(h, at(b, size), true);
}

/* ---- placement policies ------------------------------------------------- */

/* Can b hold `need` bytes at a payload aligned to align? The gap below
 * the aligned block is 0 or a whole free block (at least MIN_BLOCK). */
static bool fits(const blk *b, size_t need, size_t align, size_t *gap)
{
    uintptr_t pay = (uintptr_t)payload(b);
    size_t g = st_is_aligned(pay, align) ? 0 : st_align_up(pay + MIN_BLOCK, align) - pay;
    *gap = g;
    return bsize(b) >= g && bsize(b) - g >= need;
}

/* The first block from `from` up to (not including) `stop` that fits. */
static blk *scan_first(blk *from, const blk *stop, size_t need, size_t align, size_t *gap)
{
    for (blk *x = from; x != stop; x = lk(x)->next)
        if (fits(x, need, align, gap))
            return x;
    return NULL;
}

/* Next fit: from the rover to the end of the list, then from the head. */
static blk *find_next_fit(const strata_heap *h, size_t need, size_t align, size_t *gap)
{
    blk *start = h->rover != NULL ? h->rover : h->heads[0];
    blk *x = scan_first(start, NULL, need, align, gap);
    return x != NULL ? x : scan_first(h->heads[0], start, need, align, gap);
}

/* Best (smallest) or worst (largest) block that fits; ties go to the
 * lowest address. Best fit stops at an exact fit: nothing can beat it. */
static blk *scan_extreme(const strata_heap *h, size_t need, size_t align, size_t *gap, bool best)
{
    blk *pick = NULL;
    size_t pick_gap = 0, g;
    for (blk *x = h->heads[0]; x != NULL; x = lk(x)->next) {
        if (!fits(x, need, align, &g))
            continue;
        if (pick == NULL || (best ? bsize(x) < bsize(pick) : bsize(x) > bsize(pick))) {
            pick = x;
            pick_gap = g;
        }
        if (best && bsize(x) == need)
            break;
    }
    *gap = pick_gap;
    return pick;
}

/* Good fit: first fit in the request's class, then the next non-empty
 * classes, whose first block always fits an unaligned request. */
static blk *find_segregated(const strata_heap *h, size_t need, size_t align, size_t *gap)
{
    for (unsigned c = next_class(h, class_of(need)); c < h->nheads; c = next_class(h, c + 1)) {
        blk *x = scan_first(h->heads[c], NULL, need, align, gap);
        if (x != NULL)
            return x;
    }
    return NULL;
}

static blk *find(const strata_heap *h, size_t need, size_t align, size_t *gap)
{
    switch (h->policy) {
    case STRATA_HEAP_FIRST_FIT:
        return scan_first(h->heads[0], NULL, need, align, gap);
    case STRATA_HEAP_NEXT_FIT:
        return find_next_fit(h, need, align, gap);
    case STRATA_HEAP_BEST_FIT:
        return scan_extreme(h, need, align, gap, true);
    case STRATA_HEAP_WORST_FIT:
        return scan_extreme(h, need, align, gap, false);
    default:
        return find_segregated(h, need, align, gap);
    }
}

/* ---- carving and merging ------------------------------------------------ */

/* Allocate `need` bytes at offset gap of the free block b: the gap (if
 * any) stays a free block in b's place, the tail beyond `need` is split
 * off when it can hold a minimum block. Returns the used block. */
static blk *carve(strata_heap *h, blk *b, size_t gap, size_t need)
{
    size_t rest = bsize(b) - gap;
    blk *after = lk(b)->next, *pos = idx_unlink(h, b), *u = at(b, gap), *tail = NULL;
    ST_ASSERT(1, bsize(b) >= gap + need && (gap == 0 || gap >= MIN_BLOCK));
    if (gap != 0) {
        write_tags(h, b, gap, 0);
        idx_link_after(h, b, pos);
        pos = b;
        h->block_count++;
    }
    if (rest - need >= MIN_BLOCK) {
        tail = at(u, need);
        write_tags(h, tail, rest - need, 0);
        idx_link_after(h, tail, pos);
        h->block_count++;
        rest = need;
    } else {
        set_prev_free(h, at(u, rest), false);
    }
    write_tags(h, u, rest, F_USED | (gap != 0 ? F_PREV_FREE : 0));
    if (h->policy == STRATA_HEAP_NEXT_FIT)
        h->rover = tail != NULL ? tail : after;
    return u;
}

/* Free the used block b, merging with free neighbours (validated by the
 * caller). A merged block keeps its neighbour's place in the index. */
static void release(strata_heap *h, blk *b)
{
    size_t size = bsize(b);
    blk *start = b, *pos = NULL, *r = next_of(b);
    blk *l = (b->sf & F_PREV_FREE) != 0 ? left_of(b) : NULL;
    if ((uintptr_t)r >= h->end || is_used(r))
        r = NULL;
    bool rov = h->rover != NULL && (h->rover == l || h->rover == r);
    if (r != NULL) {
        pos = idx_unlink(h, r);
        size += bsize(r);
        mark_dead(h, r);
        h->block_count--;
    }
    if (l != NULL) {
        pos = idx_unlink(h, l);
        size += bsize(l);
        mark_dead(h, b);
        start = l;
        h->block_count--;
    }
    put_free(h, start, size, pos, l == NULL && r == NULL);
    if (rov)
        h->rover = start;
}

/* Shrink b to need bytes in place: the tail joins a free right neighbour,
 * or becomes a free block of its own when it can hold a minimum block. */
static void shrink(strata_heap *h, blk *b, size_t need)
{
    size_t rest = bsize(b) - need, pf = b->sf & F_PREV_FREE;
    blk *r = next_of(b), *pos = NULL;
    bool rfree = (uintptr_t)r < h->end && !is_used(r), rov = rfree && h->rover == r;
    if (rest == 0 || (!rfree && rest < MIN_BLOCK))
        return;
    if (rfree) {
        pos = idx_unlink(h, r);
        rest += bsize(r);
        mark_dead(h, r);
    } else {
        h->block_count++;
    }
    write_tags(h, b, need, F_USED | pf);
    put_free(h, at(b, need), rest, pos, !rfree);
    if (rov)
        h->rover = at(b, need);
}

/* Grow b to need bytes into a free right neighbour, if it is large enough. */
static bool grow(strata_heap *h, blk *b, size_t need)
{
    blk *r = next_of(b);
    if ((uintptr_t)r >= h->end || is_used(r) || bsize(b) + bsize(r) < need)
        return false;
    size_t total = bsize(b) + bsize(r), pf = b->sf & F_PREV_FREE;
    bool rov = h->rover == r;
    blk *pos = idx_unlink(h, r);
    mark_dead(h, r);
    if (total - need >= MIN_BLOCK) {
        write_tags(h, b, need, F_USED | pf);
        put_free(h, at(b, need), total - need, pos, false);
        if (rov)
            h->rover = at(b, need);
    } else {
        write_tags(h, b, total, F_USED | pf);
        set_prev_free(h, at(b, total), false);
        h->block_count--;
    }
    return true;
}

/* ---- pointer validation (all O(1)) -------------------------------------- */

/* The live block whose payload is ptr, or why there is none. */
static int lookup(const strata_heap *h, const void *ptr, blk **out)
{
    uintptr_t p = (uintptr_t)ptr;
    if (p < h->region || p >= h->region_end)
        return STRATA_ERR_FOREIGN;
    if (!st_is_aligned(p, GRAIN) || p < (uintptr_t)h->first + HDR || p > h->end - MIN_BLOCK + HDR)
        return STRATA_ERR_NOT_BLOCK;
    blk *b = (blk *)(p - HDR);
    size_t size = bsize(b);
    if (b->check != tag_of(h, b, b->sf))
        return STRATA_ERR_NOT_BLOCK;
    if ((b->sf & F_DEAD) != 0)
        return STRATA_ERR_DOUBLE_FREE;
    if (size < MIN_BLOCK || size > h->end - (uintptr_t)b)
        return STRATA_ERR_NOT_BLOCK;
    if (*footer_of(b, size) != (b->sf & TAG_MASK))
        return STRATA_ERR_CORRUPT; /* e.g. the caller wrote past the end */
    if (!is_used(b))
        return STRATA_ERR_DOUBLE_FREE;
    *out = b;
    return 0;
}

/* Before a merge trusts the neighbours' tags, verify them: the left
 * block's footer agrees with our PREV_FREE flag (and a free left block is
 * sound), and the right block is sound and knows we are used. */
static int neighbours_ok(const strata_heap *h, const blk *b)
{
    bool prev_free = (b->sf & F_PREV_FREE) != 0;
    if (b == h->first && prev_free)
        return STRATA_ERR_CORRUPT;
    if (b != h->first) {
        size_t f = *(const tag_word *)((uintptr_t)b - FTR), ls = f & ~FLAG_MASK;
        if (((f & F_USED) == 0) != prev_free)
            return STRATA_ERR_CORRUPT;
        if (prev_free && (ls < MIN_BLOCK || ls > (uintptr_t)b - (uintptr_t)h->first ||
                          !sound(h, left_of(b)) || is_used(left_of(b))))
            return STRATA_ERR_CORRUPT;
    }
    const blk *r = next_of(b);
    if ((uintptr_t)r < h->end && (!sound(h, r) || (r->sf & F_PREV_FREE) != 0))
        return STRATA_ERR_CORRUPT;
    return 0;
}

static int validate(const strata_heap *h, const void *ptr, blk **out)
{
    int rc = lookup(h, ptr, out);
    return rc != 0 ? rc : neighbours_ok(h, *out);
}

/* ---- public API --------------------------------------------------------- */

size_t strata_heap_control_size(size_t region_size, strata_heap_policy policy)
{
    if ((unsigned)policy > (unsigned)SEG)
        return 0;
    return st_align_up(sizeof(strata_heap) + heads_for(region_size, policy) * sizeof(blk *), GRAIN);
}

strata_heap *strata_heap_create(void *mem, size_t size, strata_heap_policy policy)
{
    uintptr_t lo = (uintptr_t)mem, hi;
    size_t ctl = strata_heap_control_size(size, policy);
    if (mem == NULL || ctl == 0 || !st_add_ok(lo, size, &hi) || st_align_up(lo, GRAIN) < lo) {
        errno = EINVAL;
        return NULL;
    }
    uintptr_t base = st_align_up(lo, GRAIN), end = st_align_down(hi, GRAIN);
    if (base > end || end - base < ctl + MIN_BLOCK) {
        errno = ERANGE;
        return NULL;
    }
    strata_heap *h = (strata_heap *)base;
    memset(h, 0, ctl);
    h->magic = HEAP_MAGIC;
    h->policy = policy;
    h->nheads = heads_for(size, policy);
    h->salt = mix64(base ^ 0x5bd1e9955bd1e995ull);
    h->region = lo;
    h->region_end = hi;
    h->first = (blk *)(base + ctl);
    h->end = end;
    h->block_count = 1;
    put_free(h, h->first, end - base - ctl, NULL, false);
    return h;
}

void *strata_heap_alloc_aligned(strata_heap *h, size_t align, size_t size)
{
    size_t need, gap = 0;
    if (!heap_ok(h) || !st_is_pow2(align) || !block_for(size, &need)) {
        errno = EINVAL;
        return NULL;
    }
    align = ST_MAX(align, GRAIN);
    blk *b = align <= h->end - (uintptr_t)h->first ? find(h, need, align, &gap) : NULL;
    if (b == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    blk *u = carve(h, b, gap, need);
    set_requested(u, size);
    h->requested += size;
    ST_ASSERT(3, strata_heap_check(h) == 0);
    return payload(u);
}

void *strata_heap_alloc(strata_heap *h, size_t size)
{
    return strata_heap_alloc_aligned(h, GRAIN, size);
}

void *strata_heap_calloc(strata_heap *h, size_t count, size_t size)
{
    size_t n;
    if (!st_mul_ok(count, size, &n)) {
        errno = EINVAL;
        return NULL;
    }
    void *p = strata_heap_alloc(h, n);
    if (p != NULL)
        memset(p, 0, n);
    return p;
}

/* realloc's last resort: a new block, the kept bytes copied, b freed. */
static void *move_block(strata_heap *h, blk *b, size_t size)
{
    void *q = strata_heap_alloc(h, size);
    if (q == NULL)
        return NULL;
    memcpy(q, payload(b), ST_MIN(requested_of(b), size));
    h->requested -= requested_of(b);
    release(h, b);
    return q;
}

void *strata_heap_realloc(strata_heap *h, void *ptr, size_t size)
{
    if (ptr == NULL)
        return strata_heap_alloc(h, size);
    blk *b = NULL;
    size_t need;
    if (!heap_ok(h) || !block_for(size, &need) || validate(h, ptr, &b) != 0) {
        errno = EINVAL;
        return NULL;
    }
    size_t old = requested_of(b);
    if (need <= bsize(b))
        shrink(h, b, need);
    else if (!grow(h, b, need))
        return move_block(h, b, size);
    h->requested = h->requested - old + size;
    set_requested(b, size);
    ST_ASSERT(3, strata_heap_check(h) == 0);
    return ptr;
}

int strata_heap_free(strata_heap *h, void *ptr)
{
    if (ptr == NULL)
        return 0;
    if (!heap_ok(h))
        return STRATA_ERR_INVALID;
    blk *b = NULL;
    int rc = validate(h, ptr, &b);
    if (rc != 0)
        return rc;
    h->requested -= requested_of(b);
    release(h, b);
    ST_ASSERT(3, strata_heap_check(h) == 0);
    return 0;
}

size_t strata_heap_usable_size(const strata_heap *h, const void *ptr)
{
    blk *b = NULL;
    if (ptr == NULL || !heap_ok(h) || lookup(h, ptr, &b) != 0)
        return 0;
    return usable(bsize(b));
}

bool strata_heap_owns(const strata_heap *h, const void *ptr)
{
    return heap_ok(h) && (uintptr_t)ptr >= h->region && (uintptr_t)ptr < h->region_end;
}

void strata_heap_walk(const strata_heap *h, strata_heap_walker fn, void *user)
{
    if (!heap_ok(h) || fn == NULL)
        return;
    for (uintptr_t a = (uintptr_t)h->first; a < h->end;) {
        const blk *b = (const blk *)a;
        size_t size = bsize(b);
        if (size < MIN_BLOCK || size > h->end - a)
            return;
        fn(payload(b), size, is_used(b), is_used(b) ? requested_of(b) : 0, user);
        a += size;
    }
}

/* The largest free block: a scan of the index, bounded by its count. */
static size_t largest_free(const strata_heap *h)
{
    size_t best = 0, seen = 0;
    for (unsigned c = 0; c < h->nheads; c++)
        for (const blk *x = h->heads[c]; x != NULL && seen++ < h->free_count; x = lk(x)->next)
            best = ST_MAX(best, bsize(x));
    return best;
}

void strata_heap_get_info(const strata_heap *h, strata_heap_info *info)
{
    memset(info, 0, sizeof(*info));
    if (!heap_ok(h))
        return;
    info->policy = h->policy;
    info->region_bytes = h->region_end - h->region;
    info->control_bytes = (uintptr_t)h->first - h->region;
    info->total_bytes = h->end - (uintptr_t)h->first;
    info->free_bytes = h->free_bytes;
    info->free_blocks = h->free_count;
    info->used_blocks = h->block_count - h->free_count;
    info->held_bytes = info->total_bytes - h->free_bytes;
    info->requested_bytes = h->requested;
    info->overhead_bytes = info->used_blocks * OVERHEAD;
    info->internal_fragmentation = info->held_bytes - h->requested;
    info->largest_free = largest_free(h);
    info->largest_alloc = info->largest_free != 0 ? usable(info->largest_free) : 0;
    if (h->free_bytes != 0)
        info->external_fragmentation =
            1.0 - (double)info->largest_free / (double)h->free_bytes;
}

const char *strata_heap_policy_name(strata_heap_policy policy)
{
    static const char *const names[] = {"first-fit", "next-fit", "best-fit", "worst-fit",
                                         "segregated"};
    return (unsigned)policy < ST_ARRAY_LEN(names) ? names[policy] : "unknown";
}

/* ---- check -------------------------------------------------------------- */

struct tally {
    size_t blocks, free_blocks, free_bytes, requested; /* from the chain */
    size_t listed;                                     /* nodes met on the free lists */
    bool chain_whole;                                  /* the chain reached end exactly */
    bool rover_seen;
};

/* HEAP-1: the control structure describes a plausible layout. */
static int check_control(const strata_heap *h)
{
    uintptr_t first = (uintptr_t)h->first;
    if ((unsigned)h->policy > (unsigned)SEG)
        return 1;
    size_t ctl = strata_heap_control_size(h->region_end - h->region, h->policy);
    int bad = h->nheads != heads_for(h->region_end - h->region, h->policy);
    bad += !st_is_aligned(first, GRAIN) || !st_is_aligned(h->end, GRAIN);
    bad += first < (uintptr_t)h + ctl || h->end > h->region_end || first > h->end ||
           h->end - first < MIN_BLOCK;
    return bad;
}

/* HEAP-3..7 for one block of the chain, whose size is already known sane. */
static int check_block(const strata_heap *h, const blk *b, bool prev_free)
{
    int bad = b->check != tag_of(h, b, b->sf);                             /* HEAP-3 */
    bad += (b->sf & FLAG_MASK & ~(F_USED | F_PREV_FREE)) != 0;              /* HEAP-3 */
    bad += *footer_of(b, bsize(b)) != (b->sf & TAG_MASK);                   /* HEAP-4 */
    bad += ((b->sf & F_PREV_FREE) != 0) != prev_free;                       /* HEAP-5 */
    bad += prev_free && !is_used(b);                                        /* HEAP-6 */
    bad += is_used(b) ? b->slack > usable(bsize(b)) - 1 : b->slack != 0;    /* HEAP-7 */
    return bad;
}

static void tally_block(struct tally *t, const blk *b)
{
    t->blocks++;
    if (is_used(b)) {
        t->requested += requested_of(b);
    } else {
        t->free_blocks++;
        t->free_bytes += bsize(b);
    }
}

/* HEAP-2..7: walk the physical chain from the first block to the end. */
static int check_chain(const strata_heap *h, struct tally *t)
{
    int bad = 0;
    bool prev_free = false;
    for (uintptr_t a = (uintptr_t)h->first; a < h->end;) {
        const blk *b = (const blk *)a;
        size_t size = bsize(b);
        if (size < MIN_BLOCK || size > h->end - a)
            return bad + 1; /* HEAP-2: the chain cannot be followed further */
        bad += check_block(h, b, prev_free);
        tally_block(t, b);
        prev_free = !is_used(b);
        a += size;
    }
    t->chain_whole = true;
    return bad;
}

/* HEAP-8: a list node is a sound free block of the chain, in its class. */
static bool node_ok(const strata_heap *h, const blk *x, unsigned c)
{
    uintptr_t a = (uintptr_t)x;
    if (a < (uintptr_t)h->first || a > h->end - MIN_BLOCK || !st_is_aligned(a, GRAIN))
        return false;
    return sound(h, x) && !is_used(x) && (h->policy != SEG || class_of(bsize(x)) == c);
}

/* HEAP-8..10 for list c. Stops at the first bad node or link, which
 * cannot be followed safely. */
static int check_list(const strata_heap *h, unsigned c, struct tally *t)
{
    size_t limit = (h->end - (uintptr_t)h->first) / MIN_BLOCK;
    const blk *prev = NULL;
    for (const blk *x = h->heads[c]; x != NULL; prev = x, x = lk(x)->next) {
        if (!node_ok(h, x, c)) /* HEAP-8 */
            return 1;
        if (lk(x)->prev != prev || t->listed >= limit) /* HEAP-9: back links, no cycle */
            return 1;
        if (h->policy != SEG && prev != NULL && x <= prev)
            return 1; /* HEAP-10 */
        t->listed++;
        t->rover_seen |= x == h->rover;
    }
    return 0;
}

/* HEAP-11: bit c set exactly when list c is non-empty (segregated only). */
static int check_bitmap(const strata_heap *h)
{
    int bad = 0;
    for (unsigned c = 0; c < MAX_CLASSES; c++) {
        bool bit = (h->bitmap[c / 64] >> (c % 64)) & 1u;
        bool want = h->policy == SEG && c < h->nheads && h->heads[c] != NULL;
        bad += bit != want;
    }
    return bad;
}

/* HEAP-8..12: the index side. */
static int check_index(const strata_heap *h, struct tally *t)
{
    int bad = check_bitmap(h);
    for (unsigned c = 0; c < h->nheads; c++)
        bad += check_list(h, c, t);
    if (h->policy == STRATA_HEAP_NEXT_FIT)
        bad += h->rover != NULL && !t->rover_seen; /* HEAP-12 */
    else
        bad += h->rover != NULL;
    return bad;
}

/* HEAP-8 (every free block listed once) and HEAP-13 (counters). */
static int check_totals(const strata_heap *h, const struct tally *t)
{
    if (!t->chain_whole)
        return 0;
    int bad = t->listed != t->free_blocks;
    bad += h->free_count != t->free_blocks;
    bad += h->free_bytes != t->free_bytes;
    bad += h->block_count != t->blocks;
    bad += h->requested != t->requested;
    return bad;
}

int strata_heap_check(const strata_heap *h)
{
    if (!heap_ok(h))
        return 1;
    int bad = check_control(h);
    if (bad != 0)
        return bad;
    struct tally t = {0};
    bad += check_chain(h, &t);
    bad += check_index(h, &t);
    bad += check_totals(h, &t);
    return bad;
}
