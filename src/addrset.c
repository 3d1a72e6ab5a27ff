/* SPDX-License-Identifier: MIT */
/*
 * addrset.c — open-addressing hash set of aligned addresses. Used by the
 * slab caches and pools to validate a pointer before touching it.
 */
#include "addrset.h"

#include <errno.h>

#include "debug.h"
#include "os.h"

#define ADDRSET_MIN_BYTES ST_PAGE_SIZE

static size_t slot_of(const st_addrset *s, uintptr_t addr)
{
    uint64_t h = (uint64_t)(addr >> s->shift) * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 32) & (s->capacity - 1);
}

void st_addrset_init(st_addrset *s, unsigned shift, strata_page_source source)
{
    s->slots = NULL;
    s->capacity = 0;
    s->count = 0;
    s->shift = shift;
    s->source = source;
}

static void put(st_addrset *s, uintptr_t addr)
{
    size_t i = slot_of(s, addr);
    while (s->slots[i] != 0)
        i = (i + 1) & (s->capacity - 1);
    s->slots[i] = addr;
}

/* Double the table (or make the first one) and rehash every address. */
static bool grow(st_addrset *s)
{
    size_t old_capacity = s->capacity;
    uintptr_t *old = s->slots;
    size_t bytes = old_capacity ? old_capacity * 2 * sizeof(uintptr_t) : ADDRSET_MIN_BYTES;
    uintptr_t *fresh = s->source.alloc(s->source.ctx, bytes, ST_PAGE_SIZE);
    if (fresh == NULL) {
        errno = ENOMEM;
        return false;
    }
    for (size_t i = 0; i < bytes / sizeof(uintptr_t); i++)
        fresh[i] = 0;
    s->slots = fresh;
    s->capacity = bytes / sizeof(uintptr_t);
    for (size_t i = 0; i < old_capacity; i++)
        if (old[i] != 0)
            put(s, old[i]);
    if (old != NULL)
        s->source.free(s->source.ctx, old, old_capacity * sizeof(uintptr_t));
    return true;
}

bool st_addrset_insert(st_addrset *s, uintptr_t addr)
{
    ST_ASSERT(1, addr != 0);
    if ((s->count + 1) * 2 > s->capacity && !grow(s))
        return false;
    put(s, addr);
    s->count++;
    return true;
}

bool st_addrset_contains(const st_addrset *s, uintptr_t addr)
{
    if (s->count == 0 || addr == 0)
        return false;
    for (size_t i = slot_of(s, addr); s->slots[i] != 0; i = (i + 1) & (s->capacity - 1))
        if (s->slots[i] == addr)
            return true;
    return false;
}

/* Backward-shift deletion: pull later entries of the probe run into the
 * hole so that lookups never need tombstones. */
void st_addrset_remove(st_addrset *s, uintptr_t addr)
{
    size_t mask = s->capacity - 1;
    size_t i = slot_of(s, addr);
    while (s->slots[i] != addr) {
        if (s->slots[i] == 0)
            return;
        i = (i + 1) & mask;
    }
    size_t hole = i;
    for (size_t j = (i + 1) & mask; s->slots[j] != 0; j = (j + 1) & mask) {
        size_t home = slot_of(s, s->slots[j]);
        /* entry j may move to the hole if its home is not in (hole, j] */
        bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            s->slots[hole] = s->slots[j];
            hole = j;
        }
    }
    s->slots[hole] = 0;
    s->count--;
}

void st_addrset_destroy(st_addrset *s)
{
    if (s->slots != NULL)
        s->source.free(s->source.ctx, s->slots, s->capacity * sizeof(uintptr_t));
    s->slots = NULL;
    s->capacity = 0;
    s->count = 0;
}
