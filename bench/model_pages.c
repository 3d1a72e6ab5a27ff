/* SPDX-License-Identifier: MIT */
/*
 * model_pages.c — how few pages any allocator that places objects in size
 * classes, in allocation order, and returns memory a page at a time can
 * keep for the phases workload (wl_phases.c: same sizes, same random
 * sequence, same survivors), counted, not measured: no allocator runs.
 *
 * Objects of a class are laid out one after another in --slab-byte slabs
 * (an object never straddles two slabs), as a fresh heap lays them out
 * when nothing is freed in between. After the short-lived objects are
 * freed, a page stays resident if any survivor touches it. Reports those
 * pages' bytes over the survivors' requested bytes: the `ratio_after_free`
 * of such an allocator had it no metadata at all.
 */
#include "workload.h"

enum { O_SMALL, O_KEEP, O_MIN, O_MAX, O_SLAB, O_SEED, O_N };

static struct wl_opt opts[O_N] = {
    [O_SMALL] = {"small", 1000000, "short-lived small objects"},
    [O_KEEP] = {"keep-every", 64, "one long-lived object after this many short-lived"},
    [O_MIN] = {"min", 16, "smallest small object, bytes"},
    [O_MAX] = {"max", 256, "largest small object, bytes"},
    [O_SLAB] = {"slab", 65536, "bytes of a slab (a multiple of the page)"},
    [O_SEED] = {"seed", 1, "random seed"},
};

#define PAGE 4096
#define CLASSES 64 /* 16, 32, ... 1024: the classes of 16-byte steps */

/* Per class: objects placed so far and the pages survivors touch. */
struct class_area {
    size_t objects;
    uint8_t *pinned; /* one flag per page of the class's area */
    size_t pages;    /* room in pinned */
};

static void pin(struct class_area *a, size_t first, size_t last)
{
    if (last >= a->pages) {
        size_t more = 2 * a->pages > last + 1 ? 2 * a->pages : last + 1;
        a->pinned = realloc(a->pinned, more);
        if (a->pinned == NULL) {
            perror("realloc");
            exit(1);
        }
        memset(a->pinned + a->pages, 0, more - a->pages);
        a->pages = more;
    }
    for (size_t p = first; p <= last; p++)
        a->pinned[p] = 1;
}

int main(int argc, char **argv)
{
    wl_parse(argc, argv, "The resident floor of page-granular purging for the phases workload.",
             opts, O_N);
    size_t ns = (size_t)opts[O_SMALL].value, every = (size_t)opts[O_KEEP].value;
    size_t lo = (size_t)opts[O_MIN].value, hi = (size_t)opts[O_MAX].value;
    size_t slab = (size_t)opts[O_SLAB].value;
    if (ns < 1 || every < 1 || lo < 1 || hi < lo || hi > 16 * CLASSES || slab < PAGE ||
        slab % PAGE != 0 || slab < hi) {
        fprintf(stderr, "%s: need small, keep-every >= 1, 1 <= min <= max <= 1024, slab a "
                        "multiple of 4096 holding max\n",
                argv[0]);
        return 2;
    }
    struct class_area area[CLASSES] = {{0}};
    size_t nk = ns / every, kept = 0, survivor_bytes = 0;
    uint64_t rng = (uint64_t)opts[O_SEED].value; /* the same sequence as wl_phases */
    for (size_t j = 0; j < ns + nk; j++) {
        bool is_keep = j % (every + 1) == every && kept < nk;
        size_t n = wl_range(&rng, lo, hi);
        unsigned c = (unsigned)((n - 1) / 16);
        size_t size = (size_t)(c + 1) * 16, per_slab = slab / size;
        size_t k = area[c].objects++;
        size_t start = k / per_slab * slab + k % per_slab * size;
        if (is_keep) {
            kept++;
            survivor_bytes += n;
            pin(&area[c], start / PAGE, (start + size - 1) / PAGE);
        }
    }
    size_t pinned = 0;
    for (unsigned c = 0; c < CLASSES; c++) {
        for (size_t p = 0; p < area[c].pages; p++)
            pinned += area[c].pinned[p];
        free(area[c].pinned);
    }
    wl_put_str("model", "pages");
    for (int i = 0; i < O_N; i++)
        wl_put_int(opts[i].name, opts[i].value);
    wl_put_int("survivors", (long long)kept);
    wl_put_int("pinned_bytes", (long long)pinned * PAGE);
    wl_put_num("ratio_after_free", survivor_bytes ? (double)pinned * PAGE / (double)survivor_bytes : 0);
    printf("\n");
    return 0;
}
