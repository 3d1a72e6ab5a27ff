/* SPDX-License-Identifier: MIT */
/*
 * buddy.c — the binary buddy allocator (include/strata/buddy.h).
 *
 * The region is a row of units of min_block bytes. A block of order k is
 * 2^k units and starts at an address that is a multiple of its own size,
 * so the two halves of a block of order k+1 are "buddies": each finds the
 * other by flipping bit (shift + k) of its address. Allocation takes the
 * smallest free block of at least the asked order (a bitmap of non-empty
 * orders makes that one bit scan) and splits it, pushing the unused upper
 * halves onto the free lists. Freeing looks at the buddy: if it is a free
 * block of the same order, the two merge and the search repeats one order
 * up. Both directions take at most max_order steps: O(log n).
 *
 * State is one byte per unit (the kernel keeps a struct page per frame):
 *   bits 0-4  order of the block that starts at this unit
 *   bit  5    CONT: the allocation continues in the next block (exact-size
 *             allocations are a run of blocks of falling order)
 *   bits 6-7  kind: 0 not the start of a block, FREE, USED (first block of
 *             an allocation), USED_CONT (a later block of one)
 * Only block heads carry a kind; a unit inside a block reads 0, which is
 * how a pointer into the middle of a block is told apart in O(1).
 *
 * Free lists are doubly linked through 32-bit unit indices. The links sit
 * in the free blocks themselves when the metadata is inside the region,
 * and in a metadata array when the caller gave a buffer (then the region
 * is never touched: it may be device memory or purged pages).
 *
 * Not thread-safe; the caller holds a lock. Invariants: docs/INVARIANTS.md.
 */
#include <errno.h>
#include <stdio.h>

#include "bits.h"
#include "debug.h"
#include "strata/buddy.h"

#define NIL UINT32_MAX
#define ORDER_MASK 0x1fu
#define CONT 0x20u
#define KIND_MASK 0xc0u
#define KIND_FREE 0x40u
#define KIND_USED 0x80u
#define KIND_USED_CONT 0xc0u
#define MAX_UNITS ((size_t)UINT32_MAX - 1)

struct link {
    uint32_t next, prev;
};

struct strata_buddy {
    uintptr_t base;       /* address of unit 0, aligned to min_block */
    size_t units;         /* managed units */
    unsigned shift;       /* log2(min_block) */
    unsigned max_order;
    uint32_t nonempty;    /* bit k set iff free_head[k] != NIL */
    size_t free_units;
    size_t meta_bytes;
    uint8_t *state;       /* [units] */
    struct link *links;   /* [units] when the metadata is outside, else NULL */
    uint32_t free_head[STRATA_BUDDY_MAX_ORDER + 1];
    size_t free_count[STRATA_BUDDY_MAX_ORDER + 1];
};

/* The free counts are the owner's; a statistics reader in another thread
 * may read them meanwhile (the malloc's buddyinfo lines), so they change
 * with relaxed atomic stores and are read with relaxed loads: plain moves
 * on the CPU, and no data race. */
static inline void count_add(size_t *count, size_t delta)
{
    __atomic_store_n(count, *count + delta, __ATOMIC_RELAXED);
}

static inline size_t count_read(const size_t *count)
{
    return __atomic_load_n(count, __ATOMIC_RELAXED);
}

/* ---- addresses, units and state ---------------------------------------- */

static inline uintptr_t addr_of(const strata_buddy *b, size_t u) { return b->base + (u << b->shift); }
static inline unsigned kind(uint8_t s) { return s & KIND_MASK; }
static inline unsigned order_of(uint8_t s) { return s & ORDER_MASK; }

static inline struct link *link_at(const strata_buddy *b, uint32_t u)
{
    return b->links != NULL ? &b->links[u] : (struct link *)addr_of(b, u);
}

/* The buddy's unit, or NIL when the buddy lies (partly) outside the region. */
static uint32_t buddy_of(const strata_buddy *b, uint32_t u, unsigned order)
{
    uintptr_t a = addr_of(b, u) ^ ((uintptr_t)1 << (b->shift + order));
    if (a < b->base)
        return NIL;
    size_t bu = (a - b->base) >> b->shift;
    return bu + ((size_t)1 << order) <= b->units ? (uint32_t)bu : NIL;
}

/* ---- free lists ---------------------------------------------------------- */

static void list_push(strata_buddy *b, uint32_t u, unsigned order)
{
    struct link *l = link_at(b, u);
    l->prev = NIL;
    l->next = b->free_head[order];
    if (l->next != NIL)
        link_at(b, l->next)->prev = u;
    b->free_head[order] = u;
    count_add(&b->free_count[order], 1);
    b->nonempty |= 1u << order;
    b->state[u] = (uint8_t)(KIND_FREE | order);
    count_add(&b->free_units, (size_t)1 << order);
}

static void list_remove(strata_buddy *b, uint32_t u, unsigned order)
{
    struct link *l = link_at(b, u);
    if (l->prev != NIL)
        link_at(b, l->prev)->next = l->next;
    else
        b->free_head[order] = l->next;
    if (l->next != NIL)
        link_at(b, l->next)->prev = l->prev;
    count_add(&b->free_count[order], (size_t)-1);
    if (b->free_count[order] == 0)
        b->nonempty &= ~(1u << order);
    b->state[u] = 0;
    count_add(&b->free_units, -((size_t)1 << order));
}

/* The largest order of an aligned block that starts at unit u and ends at
 * or before unit end. */
static unsigned max_fit_order(const strata_buddy *b, size_t u, size_t end)
{
    uintptr_t a = addr_of(b, u);
    unsigned align = st_ctz(a) - b->shift;
    unsigned fit = st_log2_floor(end - u);
    return ST_MIN(ST_MIN(align, fit), b->max_order);
}

/* Make [u, end) free as maximal aligned blocks. Used at creation and for the
 * tail of an exact allocation, where no block can have a free buddy. */
static void free_range(strata_buddy *b, size_t u, size_t end)
{
    while (u < end) {
        unsigned k = max_fit_order(b, u, end);
        list_push(b, (uint32_t)u, k);
        u += (size_t)1 << k;
    }
}

/* Free one block and merge it with its buddy as long as the buddy is free. */
static void free_block(strata_buddy *b, uint32_t u, unsigned order)
{
    while (order < b->max_order) {
        uint32_t bu = buddy_of(b, u, order);
        if (bu == NIL || b->state[bu] != (KIND_FREE | order))
            break;
        list_remove(b, bu, order);
        b->state[ST_MAX(u, bu)] = 0; /* the upper half is no longer a head */
        u = ST_MIN(u, bu);
        order++;
    }
    list_push(b, u, order);
}

/* ---- creation ------------------------------------------------------------ */

static size_t header_bytes(void) { return st_align_up(sizeof(strata_buddy), 16); }

size_t strata_buddy_meta_size(size_t region_size, size_t min_block)
{
    if (!st_is_pow2(min_block) || min_block < 16)
        return 0;
    size_t units = region_size / min_block + 1; /* +1: an unaligned start may add one */
    return header_bytes() + st_align_up(units, 8) + units * sizeof(struct link) + 8;
}

static bool config_valid(const void *region, const strata_buddy_config *c)
{
    return region != NULL && st_is_pow2(c->min_block) && c->min_block >= 16 &&
           c->max_order <= STRATA_BUDDY_MAX_ORDER;
}

/* Place the descriptor and state array at `meta` (8-aligned); links too when
 * the metadata is outside the region. Returns bytes used. */
static size_t layout_meta(strata_buddy **out, void *meta, size_t units, bool outside)
{
    uintptr_t m = st_align_up((uintptr_t)meta, 16);
    strata_buddy *b = (strata_buddy *)m;
    b->state = (uint8_t *)(m + header_bytes());
    b->links = outside ? (struct link *)(m + header_bytes() + st_align_up(units, 8)) : NULL;
    *out = b;
    uintptr_t end = outside ? (uintptr_t)(b->links + units) : (uintptr_t)(b->state + units);
    return end - (uintptr_t)meta;
}

static void init_state(strata_buddy *b, uintptr_t base, size_t units, const strata_buddy_config *c)
{
    b->base = base;
    b->units = units;
    b->shift = st_log2_floor(c->min_block);
    b->max_order = c->max_order ? c->max_order : ST_MIN(st_log2_floor(units), STRATA_BUDDY_MAX_ORDER);
    b->nonempty = 0;
    b->free_units = 0;
    for (unsigned k = 0; k <= STRATA_BUDDY_MAX_ORDER; k++) {
        b->free_head[k] = NIL;
        b->free_count[k] = 0;
    }
    for (size_t u = 0; u < units; u++)
        b->state[u] = 0;
    free_range(b, 0, units);
}

static strata_buddy *fail(int err)
{
    errno = err;
    return NULL;
}

strata_buddy *strata_buddy_create_ex(void *region, size_t size, const strata_buddy_config *config)
{
    if (config == NULL || !config_valid(region, config))
        return fail(EINVAL);
    size_t min_block = config->min_block;
    uintptr_t limit;
    if (!st_add_ok((uintptr_t)region, size, &limit))
        return fail(EINVAL);
    uintptr_t start = st_align_up((uintptr_t)region, min_block);
    uintptr_t end = st_align_down(limit, min_block);
    if (end <= start)
        return fail(ERANGE);
    size_t units = (end - start) / min_block;
    strata_buddy *b;
    size_t meta_bytes;
    if (config->meta != NULL) {
        if (config->meta_size < strata_buddy_meta_size(size, min_block))
            return fail(ERANGE);
        meta_bytes = layout_meta(&b, config->meta, units, true);
    } else {
        /* The metadata takes the first units of the region itself. */
        size_t need = 16 + header_bytes() + units;
        size_t reserved = (need + min_block - 1) / min_block;
        if (reserved >= units)
            return fail(ERANGE);
        units -= reserved;
        layout_meta(&b, region, units, false);
        meta_bytes = start + reserved * min_block - (uintptr_t)region;
        start += reserved * min_block;
    }
    if (units > MAX_UNITS)
        return fail(EINVAL);
    init_state(b, start, units, config);
    b->meta_bytes = meta_bytes;
    return b;
}

strata_buddy *strata_buddy_create(void *region, size_t size, size_t min_block)
{
    strata_buddy_config c = {.min_block = min_block};
    return strata_buddy_create_ex(region, size, &c);
}

/* ---- allocation ---------------------------------------------------------- */

/* Take a free block of `order`, splitting a larger one if needed. */
static uint32_t take_block(strata_buddy *b, unsigned order)
{
    uint32_t candidates = b->nonempty & ~((1u << order) - 1);
    if (candidates == 0)
        return NIL;
    unsigned k = st_ctz(candidates);
    uint32_t u = b->free_head[k];
    list_remove(b, u, k);
    while (k > order) {
        k--;
        list_push(b, u + (1u << k), k);
    }
    return u;
}

/* The order of a block holding `bytes`, or max_order + 1 if none can. */
static unsigned order_for(const strata_buddy *b, size_t bytes)
{
    size_t units = (bytes - 1) / ((size_t)1 << b->shift) + 1;
    unsigned k = st_log2_ceil(units);
    return k <= b->max_order ? k : b->max_order + 1;
}

void *strata_buddy_alloc_order(strata_buddy *b, unsigned order)
{
    if (order > b->max_order) {
        errno = EINVAL;
        return NULL;
    }
    uint32_t u = take_block(b, order);
    if (u == NIL) {
        errno = ENOMEM;
        return NULL;
    }
    b->state[u] = (uint8_t)(KIND_USED | order);
    return (void *)addr_of(b, u);
}

/* The order for a request of `bytes`, or -1 with errno set (EINVAL for 0
 * bytes, ENOMEM when no block of the allocator could hold it). */
static int checked_order(const strata_buddy *b, size_t bytes)
{
    if (bytes == 0) {
        errno = EINVAL;
        return -1;
    }
    unsigned k = order_for(b, bytes);
    if (k > b->max_order) {
        errno = ENOMEM;
        return -1;
    }
    return (int)k;
}

void *strata_buddy_alloc(strata_buddy *b, size_t bytes)
{
    int k = checked_order(b, bytes);
    return k < 0 ? NULL : strata_buddy_alloc_order(b, (unsigned)k);
}

/* An exact allocation of n units inside a block of 2^k units at u is the
 * run of blocks given by the set bits of n, largest first (each then lands
 * on a multiple of its own size); the rest of the block is freed. */
void *strata_buddy_alloc_exact(strata_buddy *b, size_t bytes)
{
    int order = checked_order(b, bytes);
    if (order < 0)
        return NULL;
    unsigned k = (unsigned)order;
    size_t n = (bytes - 1) / ((size_t)1 << b->shift) + 1;
    uint32_t u = take_block(b, k);
    if (u == NIL) {
        errno = ENOMEM;
        return NULL;
    }
    size_t at = u;
    unsigned first = KIND_USED;
    for (size_t rest = n; rest != 0;) {
        unsigned j = st_log2_floor(rest);
        rest -= (size_t)1 << j;
        b->state[at] = (uint8_t)(first | j | (rest != 0 ? CONT : 0));
        first = KIND_USED_CONT;
        at += (size_t)1 << j;
    }
    free_range(b, u + n, u + ((size_t)1 << k));
    return (void *)addr_of(b, u);
}

/* ---- free ---------------------------------------------------------------- */

/* The unit of an address the allocator handed out, or a negative error. */
static int64_t unit_of_allocation(const strata_buddy *b, const void *p)
{
    uintptr_t a = (uintptr_t)p;
    if (a < b->base || a >= addr_of(b, b->units))
        return STRATA_ERR_FOREIGN;
    if (!st_is_aligned(a - b->base, (size_t)1 << b->shift))
        return STRATA_ERR_NOT_BLOCK;
    size_t u = (a - b->base) >> b->shift;
    switch (kind(b->state[u])) {
    case KIND_USED: return (int64_t)u;
    case KIND_FREE: return STRATA_ERR_DOUBLE_FREE;
    default: return STRATA_ERR_NOT_BLOCK; /* inside a block, or a later block of a run */
    }
}

int strata_buddy_free(strata_buddy *b, void *block)
{
    int64_t r = unit_of_allocation(b, block);
    if (r < 0)
        return (int)r;
    uint32_t u = (uint32_t)r;
    for (;;) {
        uint8_t s = b->state[u];
        unsigned k = order_of(s);
        b->state[u] = 0;
        free_block(b, u, k);
        if (!(s & CONT))
            return STRATA_OK;
        u += 1u << k;
    }
}

size_t strata_buddy_usable_size(const strata_buddy *b, const void *block)
{
    int64_t r = unit_of_allocation(b, block);
    if (r < 0)
        return 0;
    size_t u = (size_t)r, units = 0;
    for (;;) {
        uint8_t s = b->state[u];
        units += (size_t)1 << order_of(s);
        if (!(s & CONT))
            return units << b->shift;
        u += (size_t)1 << order_of(s);
    }
}

bool strata_buddy_owns(const strata_buddy *b, const void *addr)
{
    uintptr_t a = (uintptr_t)addr;
    return a >= b->base && a < addr_of(b, b->units);
}

/* ---- introspection ------------------------------------------------------- */

void strata_buddy_get_info(const strata_buddy *b, strata_buddy_info *info)
{
    info->min_block_shift = b->shift;
    info->max_order = b->max_order;
    info->largest_free = 0;
    for (unsigned k = 0; k <= STRATA_BUDDY_MAX_ORDER; k++) {
        info->free_blocks[k] = count_read(&b->free_count[k]);
        if (info->free_blocks[k] != 0)
            info->largest_free = ((size_t)1 << k) << b->shift;
    }
    info->managed_bytes = b->units << b->shift;
    info->free_bytes = count_read(&b->free_units) << b->shift;
    info->used_bytes = info->managed_bytes - info->free_bytes;
    info->meta_bytes = b->meta_bytes;
}

int strata_buddy_format(const strata_buddy *b, const char *zone, char *buf, size_t len)
{
    int n = snprintf(buf, len, "Node 0, zone %8s ", zone ? zone : "buddy");
    for (unsigned k = 0; k <= b->max_order && n >= 0; k++) {
        size_t room = (size_t)n < len ? len - (size_t)n : 0;
        n += snprintf(room ? buf + n : NULL, room, "%6zu ", count_read(&b->free_count[k]));
    }
    size_t room = (size_t)n < len ? len - (size_t)n : 0;
    return n + snprintf(room ? buf + n : NULL, room, "\n");
}

void strata_buddy_walk(const strata_buddy *b, strata_buddy_walker fn, void *user)
{
    for (size_t u = 0; u < b->units;) {
        uint8_t s = b->state[u];
        size_t n = (size_t)1 << order_of(s);
        if (kind(s) == 0)
            return; /* corrupt: check() reports it */
        fn((void *)addr_of(b, u), n << b->shift, kind(s) != KIND_FREE, user);
        u += n;
    }
}

/* ---- check --------------------------------------------------------------- */

/* The physical side: walk the blocks in address order (BUDDY-1..4), count
 * free blocks per order into `free_found`. Returns violations. */
static int check_blocks(const strata_buddy *b, size_t *free_found)
{
    int bad = 0;
    bool cont_pending = false;
    size_t u = 0;
    while (u < b->units) {
        uint8_t s = b->state[u];
        unsigned k = order_of(s);
        size_t n = (size_t)1 << k;
        bool is_cont = kind(s) == KIND_USED_CONT;
        if (kind(s) == 0 || k > b->max_order || u + n > b->units ||
            !st_is_aligned(addr_of(b, u), n << b->shift))
            return bad + 1; /* BUDDY-1: a head of a valid, aligned block; no way on */
        bad += cont_pending != is_cont; /* BUDDY-4: runs of an exact allocation */
        cont_pending = kind(s) != KIND_FREE && (s & CONT);
        for (size_t i = 1; i < n; i++)
            bad += b->state[u + i] != 0; /* BUDDY-2: interiors carry no state */
        if (kind(s) == KIND_FREE) {
            free_found[k]++;
            uint32_t bu = k < b->max_order ? buddy_of(b, (uint32_t)u, k) : NIL;
            bad += bu != NIL && b->state[bu] == (KIND_FREE | k); /* BUDDY-3: merged */
        }
        u += n;
    }
    return bad + cont_pending;
}

/* The index side: every free list (BUDDY-5, BUDDY-6). */
static int check_lists(const strata_buddy *b, const size_t *free_found)
{
    int bad = 0;
    size_t free_units = 0;
    for (unsigned k = 0; k <= STRATA_BUDDY_MAX_ORDER; k++) {
        size_t count = 0;
        uint32_t prev = NIL;
        for (uint32_t u = b->free_head[k]; u != NIL; u = link_at(b, u)->next) {
            if (u >= b->units || count > b->units || b->state[u] != (KIND_FREE | k))
                return bad + 1; /* a list entry that is no free block of order k */
            bad += link_at(b, u)->prev != prev;
            prev = u;
            count++;
        }
        bad += count != b->free_count[k] || count != free_found[k];
        bad += ((b->nonempty >> k) & 1) != (count != 0);
        free_units += count << k;
    }
    return bad + (free_units != b->free_units); /* BUDDY-7 */
}

int strata_buddy_check(const strata_buddy *b)
{
    size_t free_found[STRATA_BUDDY_MAX_ORDER + 1] = {0};
    int bad = check_blocks(b, free_found);
    return bad + check_lists(b, free_found);
}
