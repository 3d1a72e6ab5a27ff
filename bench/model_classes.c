/* SPDX-License-Identifier: MIT */
/*
 * model_classes.c — how little memory any allocator that keeps size
 * classes apart can hold for the churn workload (wl_churn.c: same sizes,
 * same random sequence), counted, not measured: no allocator runs.
 *
 * Each class (16-byte steps up to 1024 B) has slots, free or live. A
 * request takes a free slot of its class; with --lend K, else one of the
 * next K classes up (at most half as large again, as the malloc does);
 * else its class grows by one slab of --slab bytes (0: by one slot, a
 * perfect packer). Slots never go back (no slab of churn ever empties).
 * Reports the bytes of slots (of slabs, tails included) over the peak of
 * the live (requested) bytes, − 1:
 * the fragmentation of that allocator had it no other overhead.
 */
#include "workload.h"

enum { O_BLOCKS, O_OPS, O_MIN, O_MAX, O_SLAB, O_LEND, O_SEED, O_N };

static struct wl_opt opts[O_N] = {
    [O_BLOCKS] = {"blocks", 100000, "live blocks"},
    [O_OPS] = {"ops", 5000000, "replacements (one free + one malloc each)"},
    [O_MIN] = {"min", 16, "smallest block, bytes"},
    [O_MAX] = {"max", 1024, "largest block, bytes"},
    [O_SLAB] = {"slab", 65536, "bytes a class grows by (0: one slot)"},
    [O_LEND] = {"lend", 0, "classes up a request may take a free slot of"},
    [O_SEED] = {"seed", 1, "random seed"},
};

#define CLASSES 64 /* 16, 32, ... 1024 */

struct model {
    size_t free_slots[CLASSES];
    double slot_bytes;
};

static size_t class_size(unsigned c) { return (size_t)(c + 1) * 16; }

/* The class a block of n bytes ends up in: its own, a lender, or its own
 * grown by a slab. */
static unsigned place(struct model *m, size_t n)
{
    unsigned c = (unsigned)((n - 1) / 16);
    for (unsigned d = c; d < CLASSES && d <= c + (unsigned)opts[O_LEND].value; d++) {
        if (class_size(d) > class_size(c) + class_size(c) / 2)
            break;
        if (m->free_slots[d] > 0) {
            m->free_slots[d]--;
            return d;
        }
    }
    size_t slab = (size_t)opts[O_SLAB].value, grow = slab > 0 ? slab / class_size(c) : 1;
    m->free_slots[c] += grow - 1;
    m->slot_bytes += (double)(slab > 0 ? slab : class_size(c)); /* a slab's tail counts too */
    return c;
}

int main(int argc, char **argv)
{
    wl_parse(argc, argv, "The fragmentation floor of size classes for the churn workload.", opts,
             O_N);
    size_t nb = (size_t)opts[O_BLOCKS].value, lo = (size_t)opts[O_MIN].value;
    size_t hi = (size_t)opts[O_MAX].value;
    if (nb < 1 || lo < 1 || hi < lo || hi > class_size(CLASSES - 1) || opts[O_SLAB].value < 0 ||
        opts[O_SLAB].value % 16 != 0 || opts[O_LEND].value < 0) {
        fprintf(stderr, "%s: need blocks >= 1, 1 <= min <= max <= 1024, slab >= 0 in 16s, lend >= 0\n",
                argv[0]);
        return 2;
    }
    struct model m = {{0}, 0};
    size_t *n = wl_map(nb * sizeof(*n));
    unsigned char *cls = wl_map(nb);
    uint64_t rng = (uint64_t)opts[O_SEED].value; /* the same sequence as wl_churn_run */
    size_t live = 0, peak = 0;
    for (size_t i = 0; i < nb; i++) {
        n[i] = wl_range(&rng, lo, hi);
        cls[i] = (unsigned char)place(&m, n[i]);
        live += n[i];
    }
    peak = live;
    for (long long op = 0; op < opts[O_OPS].value; op++) {
        size_t i = wl_range(&rng, 0, nb - 1);
        m.free_slots[cls[i]]++;
        live -= n[i];
        n[i] = wl_range(&rng, lo, hi);
        cls[i] = (unsigned char)place(&m, n[i]);
        live += n[i];
        if (live > peak) peak = live;
    }
    wl_put_str("model", "classes");
    for (int i = 0; i < O_N; i++)
        wl_put_int(opts[i].name, opts[i].value);
    wl_put_int("peak_live", (long long)peak);
    wl_put_num("frag", m.slot_bytes / (double)peak - 1);
    printf("\n");
    wl_unmap(n, nb * sizeof(*n));
    wl_unmap(cls, nb);
    return 0;
}
