/* SPDX-License-Identifier: MIT */
/*
 * Bad input and damaged metadata against the slab caches: one test per
 * bad-input case (each must be refused with its error code and leave the
 * cache as it was), then corruption injected into slab descriptors, lists
 * and poisoned objects, each of which strata_slab_cache_check() must
 * report (and, where the next operation would hand out a live object or a
 * damaged one, that operation must abort with a message).
 */
#include <errno.h>
#include <sys/mman.h>

#include "slab.h"
#include "strata/slab.h"
#include "test.h"

static strata_slab_info info_of(const strata_slab_cache *c)
{
    strata_slab_info i;
    strata_slab_cache_get_info(c, &i);
    return i;
}

static bool same_info(const strata_slab_info *a, const strata_slab_info *b)
{
    return memcmp(a, b, sizeof(*a)) == 0;
}

/* A cache of 64-byte objects in 4 KiB slabs with `live` objects out. */
static strata_slab_cache *cache_with(size_t live, void **objs, unsigned flags)
{
    strata_slab_cache *c = strata_slab_cache_create("victim", 64, 0, NULL, NULL, flags);
    for (size_t i = 0; c != NULL && i < live; i++)
        if ((objs[i] = strata_slab_alloc(c)) == NULL)
            return NULL;
    return c;
}

static void release_all(strata_slab_cache *c, void **objs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        strata_slab_free(c, objs[i]);
    CHECK_EQ(strata_slab_cache_destroy(c), 0);
}

static st_slab *slab_of(const strata_slab_cache *c, const void *p)
{
    return (st_slab *)((uintptr_t)p & ~(uintptr_t)(info_of(c).slab_bytes - 1));
}

static uint16_t *stack_of(st_slab *s) { return (uint16_t *)(s->bits + (s->capacity + 63) / 64); }

/* ---- bad input ------------------------------------------------------------ */

TEST(free_null_is_a_no_op)
{
    void *objs[3];
    strata_slab_cache *c = cache_with(3, objs, 0);
    REQUIRE(c != NULL);
    strata_slab_info before = info_of(c);
    CHECK_EQ(strata_slab_free(c, NULL), 0);
    strata_slab_info after = info_of(c);
    CHECK(same_info(&before, &after));
    release_all(c, objs, 3);
}

TEST(free_foreign_pointers)
{
    void *objs[3], *other_objs[1];
    strata_slab_cache *c = cache_with(3, objs, 0);
    strata_slab_cache *other = cache_with(1, other_objs, 0);
    REQUIRE(c != NULL && other != NULL);
    strata_slab_info before = info_of(c);
    int on_stack = 0;
    void *heap = malloc(64);
    CHECK_EQ(strata_slab_free(c, other_objs[0]), STRATA_ERR_FOREIGN); /* same slab size */
    CHECK_EQ(strata_slab_free(c, &on_stack), STRATA_ERR_FOREIGN);
    CHECK_EQ(strata_slab_free(c, heap), STRATA_ERR_FOREIGN);
    CHECK_EQ(strata_slab_free(c, (char *)slab_of(c, objs[0]) + 4096), STRATA_ERR_FOREIGN);
    CHECK_EQ(strata_slab_free(c, (void *)(uintptr_t)8), STRATA_ERR_FOREIGN);
    CHECK_EQ(strata_slab_free(c, (void *)UINTPTR_MAX), STRATA_ERR_FOREIGN);
    strata_slab_info after = info_of(c);
    CHECK(same_info(&before, &after));
    CHECK_EQ(strata_slab_cache_check(c), 0);
    CHECK_EQ(strata_slab_cache_check(other), 0);
    free(heap);
    release_all(c, objs, 3);
    release_all(other, other_objs, 1);
}

/* The pointer and its would-be slab lie in memory that cannot be read:
 * free must answer from the address set alone. */
TEST(free_foreign_pointer_is_never_read)
{
    void *objs[1];
    strata_slab_cache *c = cache_with(1, objs, 0);
    REQUIRE(c != NULL);
    size_t span = 4 * 4096;
    char *guard = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(guard != MAP_FAILED);
    CHECK_EQ(strata_slab_free(c, guard + 4096 + 64), STRATA_ERR_FOREIGN);
    CHECK_EQ(strata_slab_free(c, guard + 2 * 4096), STRATA_ERR_FOREIGN);
    munmap(guard, span);
    CHECK_EQ(strata_slab_cache_check(c), 0);
    release_all(c, objs, 1);
}

TEST(free_not_an_object_start)
{
    void *objs[3];
    strata_slab_cache *c = cache_with(3, objs, 0);
    REQUIRE(c != NULL);
    strata_slab_info before = info_of(c);
    char *slab = (char *)slab_of(c, objs[0]);
    char *last_end = (char *)objs[0] + (size_t)before.objects_per_slab * before.object_stride;
    CHECK_EQ(strata_slab_free(c, (char *)objs[1] + 1), STRATA_ERR_NOT_BLOCK);
    CHECK_EQ(strata_slab_free(c, (char *)objs[1] + 32), STRATA_ERR_NOT_BLOCK);
    CHECK_EQ(strata_slab_free(c, (char *)objs[0] - 1), STRATA_ERR_NOT_BLOCK);
    CHECK_EQ(strata_slab_free(c, slab), STRATA_ERR_NOT_BLOCK); /* the descriptor */
    CHECK_EQ(strata_slab_free(c, slab + 64), STRATA_ERR_NOT_BLOCK);
    CHECK_EQ(strata_slab_free(c, last_end), STRATA_ERR_NOT_BLOCK); /* the unused tail */
    CHECK_EQ(strata_slab_free(c, slab + 4095), STRATA_ERR_NOT_BLOCK);
    strata_slab_info after = info_of(c);
    CHECK(same_info(&before, &after));
    CHECK_EQ(strata_slab_cache_check(c), 0);
    release_all(c, objs, 3);
}

TEST(double_free)
{
    void *objs[3];
    strata_slab_cache *c = cache_with(3, objs, 0);
    REQUIRE(c != NULL);
    CHECK_EQ(strata_slab_free(c, objs[1]), 0);
    strata_slab_info before = info_of(c);
    CHECK_EQ(strata_slab_free(c, objs[1]), STRATA_ERR_DOUBLE_FREE);
    strata_slab_info after = info_of(c);
    CHECK(same_info(&before, &after));
    CHECK_EQ(strata_slab_cache_check(c), 0);
    /* an object never handed out is free too */
    char *never = (char *)objs[2] + 5 * before.object_stride;
    CHECK_EQ(strata_slab_free(c, never), STRATA_ERR_DOUBLE_FREE);
    void *again = strata_slab_alloc(c);
    CHECK(again == objs[1]);
    CHECK_EQ(strata_slab_cache_check(c), 0);
    release_all(c, objs, 3);
}

TEST(destroy_with_live_objects)
{
    void *objs[2];
    strata_slab_cache *c = cache_with(2, objs, 0);
    REQUIRE(c != NULL);
    CHECK_EQ(strata_slab_free(c, objs[0]), 0);
    strata_slab_info before = info_of(c);
    CHECK_EQ(strata_slab_cache_destroy(c), STRATA_ERR_BUSY);
    strata_slab_info after = info_of(c);
    CHECK(same_info(&before, &after));
    memset(objs[1], 0x5a, 64); /* still usable */
    CHECK_EQ(strata_slab_cache_check(c), 0);
    CHECK_EQ(strata_slab_free(c, objs[1]), 0);
    CHECK_EQ(strata_slab_cache_destroy(c), 0);
}

static void noop(void *obj) { (void)obj; }

static bool create_fails(const strata_slab_config *cfg)
{
    errno = 0;
    strata_slab_cache *c = strata_slab_cache_create_ex(cfg);
    if (c != NULL)
        strata_slab_cache_destroy(c);
    return c == NULL && errno == EINVAL;
}

static strata_slab_config good_config(void)
{
    strata_slab_config cfg;
    strata_slab_config_init(&cfg, "good", 64);
    return cfg;
}

TEST(create_rejects_bad_names)
{
    strata_slab_config cfg = good_config();
    REQUIRE(!create_fails(&cfg));
    static const char *bad[] = {NULL, "", "abcdefghijklmnopqrstuvwxyz012345", "with space",
                                "tab\there", "new\nline"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cfg.name = bad[i];
        CHECK(create_fails(&cfg));
    }
    errno = 0;
    CHECK(strata_slab_cache_create(NULL, 64, 0, NULL, NULL, 0) == NULL && errno == EINVAL);
}

TEST(create_rejects_bad_sizes)
{
    strata_slab_config cfg = good_config();
    cfg.object_size = 0;
    CHECK(create_fails(&cfg));
    cfg.object_size = STRATA_SLAB_MAX_OBJECT_SIZE + 1;
    CHECK(create_fails(&cfg));
    cfg.object_size = SIZE_MAX;
    CHECK(create_fails(&cfg));
    cfg.object_size = STRATA_SLAB_MAX_OBJECT_SIZE;
    CHECK(!create_fails(&cfg));
}

TEST(create_rejects_bad_alignment)
{
    strata_slab_config cfg = good_config();
    static const size_t bad[] = {3, 24, 100, 8192, (size_t)1 << 40};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cfg.align = bad[i];
        CHECK(create_fails(&cfg));
    }
    cfg.align = 4096;
    CHECK(!create_fails(&cfg));
}

TEST(create_rejects_bad_flags)
{
    strata_slab_config cfg = good_config();
    cfg.flags = 0x100;
    CHECK(create_fails(&cfg));
    cfg.flags = STRATA_SLAB_POISON;
    cfg.ctor = noop;
    CHECK(create_fails(&cfg)); /* poison would overwrite constructed objects */
    cfg.ctor = NULL;
    cfg.dtor = noop;
    CHECK(create_fails(&cfg));
    cfg.dtor = NULL;
    CHECK(!create_fails(&cfg));
}

TEST(create_rejects_bad_slab_size)
{
    strata_slab_config cfg = good_config();
    static const size_t bad[] = {1000, 2048, 12288, (size_t)8 << 20};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cfg.slab_size = bad[i];
        CHECK(create_fails(&cfg));
    }
    cfg.slab_size = 4096;
    cfg.object_size = 5000; /* not one object fits */
    CHECK(create_fails(&cfg));
    cfg.object_size = 4096; /* nor here: the descriptor takes room */
    CHECK(create_fails(&cfg));
    cfg.slab_size = 8192;
    CHECK(!create_fails(&cfg));
}

TEST(create_rejects_half_a_page_source)
{
    strata_slab_config cfg = good_config();
    cfg.source = strata_page_source_os();
    cfg.source.free = NULL;
    CHECK(create_fails(&cfg));
    CHECK(create_fails(NULL));
}

TEST(bad_cache_handles)
{
    errno = 0;
    CHECK(strata_slab_alloc(NULL) == NULL && errno == EINVAL);
    int x = 0;
    CHECK_EQ(strata_slab_free(NULL, &x), STRATA_ERR_INVALID);
    CHECK(strata_slab_cache_check(NULL) > 0);
    CHECK_EQ(strata_slab_shrink(NULL), 0);
    char buf[64];
    CHECK(strata_slab_cache_format(NULL, buf, sizeof(buf)) < 0);
    strata_slab_info i;
    memset(&i, 0xff, sizeof(i));
    strata_slab_cache_get_info(NULL, &i);
    CHECK_EQ(i.total_slabs, 0);
    /* a pointer that is not a cache descriptor */
    uint64_t fake[512] = {0};
    CHECK(strata_slab_alloc((strata_slab_cache *)fake) == NULL);
    CHECK_EQ(strata_slab_cache_destroy((strata_slab_cache *)fake), STRATA_ERR_INVALID);
}

/* ---- page-source failures ----------------------------------------------------- */

static void *failing_alloc(void *ctx, size_t size, size_t align)
{
    size_t *left = ctx;
    if (*left == 0)
        return NULL;
    (*left)--;
    return strata_page_source_os().alloc(NULL, size, align);
}

static void os_free(void *ctx, void *block, size_t size)
{
    (void)ctx;
    strata_page_source_os().free(NULL, block, size);
}

TEST(page_source_failure_is_enomem)
{
    size_t left = 1; /* the descriptor, then nothing */
    strata_slab_config cfg = good_config();
    cfg.source = (strata_page_source){.alloc = failing_alloc, .free = os_free, .ctx = &left};
    strata_slab_cache *c = strata_slab_cache_create_ex(&cfg);
    REQUIRE(c != NULL);
    for (int k = 0; k < 3; k++) {
        errno = 0;
        CHECK(strata_slab_alloc(c) == NULL);
        CHECK_EQ(errno, ENOMEM);
        CHECK_EQ(strata_slab_cache_check(c), 0);
        CHECK_EQ(info_of(c).total_slabs, 0);
    }
    left = 2; /* a slab and the address table */
    void *p = strata_slab_alloc(c);
    CHECK(p != NULL);
    CHECK_EQ(strata_slab_free(c, p), 0);
    CHECK_EQ(strata_slab_cache_destroy(c), 0);
}

static size_t misaligned_out;

/* Hands out blocks one page past a slab-size boundary. */
static void *misaligned_alloc(void *ctx, size_t size, size_t align)
{
    (void)ctx;
    char *p = strata_page_source_os().alloc(NULL, size + align, align);
    if (p != NULL && size == align && size > 4096) {
        strata_page_source_os().free(NULL, p + 4096 + size, align - 4096);
        strata_page_source_os().free(NULL, p, 4096);
        misaligned_out++;
        return p + 4096;
    }
    if (p != NULL)
        strata_page_source_os().free(NULL, p + size, align);
    return p;
}

static void misaligned_free(void *ctx, void *block, size_t size)
{
    (void)ctx;
    if (size > 4096)
        misaligned_out--;
    strata_page_source_os().free(NULL, block, size);
}

TEST(misaligned_page_source_is_refused)
{
    strata_slab_config cfg = good_config();
    cfg.slab_size = 16384;
    cfg.source = (strata_page_source){.alloc = misaligned_alloc, .free = misaligned_free};
    strata_slab_cache *c = strata_slab_cache_create_ex(&cfg);
    REQUIRE(c != NULL);
    errno = 0;
    CHECK(strata_slab_alloc(c) == NULL);
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(misaligned_out, 0); /* the block went back */
    CHECK_EQ(strata_slab_cache_check(c), 0);
    CHECK_EQ(strata_slab_cache_destroy(c), 0);
}

/* ---- corruption injection --------------------------------------------------------- */

TEST(corrupt_bitmap_is_reported)
{
    void *objs[10];
    strata_slab_cache *c = cache_with(10, objs, 0);
    REQUIRE(c != NULL);
    st_slab *s = slab_of(c, objs[0]);
    REQUIRE(strata_slab_cache_check(c) == 0);
    s->bits[0] &= ~(uint64_t)(1u << 3); /* a live object looks free */
    CHECK(strata_slab_cache_check(c) > 0);
    s->bits[0] |= (uint64_t)1 << 3;
    REQUIRE(strata_slab_cache_check(c) == 0);
    s->bits[0] |= (uint64_t)1 << 20; /* a free object looks live */
    CHECK(strata_slab_cache_check(c) > 0);
    s->bits[0] &= ~((uint64_t)1 << 20);
    REQUIRE(strata_slab_cache_check(c) == 0);
    s->bits[0] ^= (uint64_t)3 << 9; /* live 9 and free 10 swap: counts still agree */
    CHECK(strata_slab_cache_check(c) > 0);
    s->bits[0] ^= (uint64_t)3 << 9;
    REQUIRE(strata_slab_cache_check(c) == 0);
    REQUIRE(s->capacity == 60);
    s->bits[0] |= (uint64_t)1 << 62; /* a bit beyond the last object */
    CHECK(strata_slab_cache_check(c) > 0);
    s->bits[0] &= ~((uint64_t)1 << 62);
    CHECK_EQ(strata_slab_cache_check(c), 0);
    release_all(c, objs, 10);
}

/* Three stack entries name one free object and the two objects they
 * should name look live: every entry has its bit clear an odd number of
 * times, so only the count (live bits == capacity - free_count) sees it. */
TEST(corrupt_bitmap_and_stack_together_are_reported)
{
    void *objs[10];
    strata_slab_cache *c = cache_with(10, objs, 0);
    REQUIRE(c != NULL);
    st_slab *s = slab_of(c, objs[0]);
    uint16_t *stack = stack_of(s);
    uint16_t n = (uint16_t)s->free_count;
    REQUIRE(n >= 3);
    uint16_t a = stack[n - 1], b = stack[n - 2], d = stack[n - 3];
    stack[n - 2] = stack[n - 3] = a;
    s->bits[b >> 6] |= (uint64_t)1 << (b & 63);
    s->bits[d >> 6] |= (uint64_t)1 << (d & 63);
    CHECK(strata_slab_cache_check(c) > 0);
    stack[n - 2] = b;
    stack[n - 3] = d;
    s->bits[b >> 6] &= ~((uint64_t)1 << (b & 63));
    s->bits[d >> 6] &= ~((uint64_t)1 << (d & 63));
    CHECK_EQ(strata_slab_cache_check(c), 0);
    release_all(c, objs, 10);
}

TEST(corrupt_free_stack_is_reported)
{
    void *objs[10];
    strata_slab_cache *c = cache_with(10, objs, 0);
    REQUIRE(c != NULL);
    st_slab *s = slab_of(c, objs[0]);
    uint16_t *stack = stack_of(s);
    REQUIRE(s->free_count >= 2);
    uint16_t saved = stack[0];
    stack[0] = stack[1]; /* one index twice, one missing */
    CHECK(strata_slab_cache_check(c) > 0);
    stack[0] = 4; /* a live object on the free stack */
    CHECK(strata_slab_cache_check(c) > 0);
    stack[0] = 65535; /* out of range */
    CHECK(strata_slab_cache_check(c) > 0);
    stack[0] = saved;
    REQUIRE(strata_slab_cache_check(c) == 0);
    s->free_count--; /* the stack loses an entry */
    CHECK(strata_slab_cache_check(c) > 0);
    s->free_count++;
    CHECK_EQ(strata_slab_cache_check(c), 0);
    release_all(c, objs, 10);
}

TEST(corrupt_descriptor_header_is_reported)
{
    void *objs[10];
    strata_slab_cache *c = cache_with(10, objs, 0);
    REQUIRE(c != NULL);
    st_slab *s = slab_of(c, objs[0]);
    st_slab saved = *s;
    s->magic ^= 1;
    CHECK(strata_slab_cache_check(c) > 0);
    *s = saved;
    s->capacity = 0;
    CHECK(strata_slab_cache_check(c) > 0);
    *s = saved;
    s->capacity += 1;
    CHECK(strata_slab_cache_check(c) > 0);
    *s = saved;
    s->size = 48;
    CHECK(strata_slab_cache_check(c) > 0);
    *s = saved;
    s->recip += 1;
    CHECK(strata_slab_cache_check(c) > 0);
    *s = saved;
    s->first = 8; /* objects over the descriptor */
    CHECK(strata_slab_cache_check(c) > 0);
    *s = saved;
    s->free_count = s->capacity + 1;
    CHECK(strata_slab_cache_check(c) > 0);
    *s = saved;
    s->owner_tag = (s->owner_tag + 1) % 3; /* on one list, tagged for another */
    CHECK(strata_slab_cache_check(c) > 0);
    *s = saved;
    CHECK_EQ(strata_slab_cache_check(c), 0);
    release_all(c, objs, 10);
}

TEST(corrupt_list_links_are_reported)
{
    void *objs[10];
    strata_slab_cache *c = cache_with(10, objs, 0);
    REQUIRE(c != NULL);
    st_slab *s = slab_of(c, objs[0]);
    st_slab_link saved = s->link;
    st_slab_link stranger = {&stranger, &stranger};
    s->link.next = &stranger; /* off into memory that is no slab */
    CHECK(strata_slab_cache_check(c) > 0);
    s->link = saved;
    s->link.next = &s->link; /* a cycle */
    CHECK(strata_slab_cache_check(c) > 0);
    s->link = saved;
    CHECK_EQ(strata_slab_cache_check(c), 0);
    release_all(c, objs, 10);
}

/* A slab emptied behind the cache's back: its counts and the cache's
 * totals (and the list it should be on) disagree. */
TEST(totals_that_disagree_are_reported)
{
    void *objs[10];
    strata_slab_cache *c = cache_with(10, objs, 0);
    REQUIRE(c != NULL);
    st_slab *s = slab_of(c, objs[0]);
    REQUIRE(st_slab_push(s, objs[9]) == 0);
    CHECK(strata_slab_cache_check(c) > 0);
    REQUIRE(st_slab_pop(s) == objs[9]);
    CHECK_EQ(strata_slab_cache_check(c), 0);
    for (int i = 0; i < 10; i++) /* the slab is empty but on the partial list */
        REQUIRE(st_slab_push(s, objs[i]) == 0);
    CHECK(strata_slab_cache_check(c) > 0);
    for (int i = 9; i >= 0; i--)
        REQUIRE(st_slab_pop(s) == objs[i]);
    CHECK_EQ(strata_slab_cache_check(c), 0);
    release_all(c, objs, 10);
}

TEST(write_after_free_is_reported_by_check)
{
    void *objs[4];
    strata_slab_cache *c = cache_with(4, objs, STRATA_SLAB_POISON);
    REQUIRE(c != NULL);
    CHECK_EQ(strata_slab_free(c, objs[2]), 0);
    CHECK_EQ(strata_slab_cache_check(c), 0);
    ((unsigned char *)objs[2])[17] = 0; /* a write after free */
    CHECK(strata_slab_cache_check(c) > 0);
    ((unsigned char *)objs[2])[17] = STRATA_SLAB_POISON_BYTE;
    CHECK_EQ(strata_slab_cache_check(c), 0);
    /* a never-used object is poisoned as well */
    ((unsigned char *)objs[3])[64 + 63] = 1;
    CHECK(strata_slab_cache_check(c) > 0);
    ((unsigned char *)objs[3])[64 + 63] = STRATA_SLAB_POISON_BYTE;
    CHECK_EQ(strata_slab_cache_check(c), 0);
    objs[2] = strata_slab_alloc(c);
    release_all(c, objs, 4);
}

static void alloc_after_write_after_free(void *arg)
{
    (void)arg;
    void *objs[4];
    strata_slab_cache *c = cache_with(4, objs, STRATA_SLAB_POISON);
    if (c == NULL)
        return;
    strata_slab_free(c, objs[1]);
    ((unsigned char *)objs[1])[8] = 0x42;
    strata_slab_alloc(c); /* hands out objs[1] again: must abort */
}

TEST(write_after_free_aborts_the_next_alloc)
{
    CHECK(test_expect_abort(alloc_after_write_after_free, NULL, "write after free"));
}

static void alloc_from_corrupt_stack(void *arg)
{
    (void)arg;
    void *objs[4];
    strata_slab_cache *c = cache_with(4, objs, 0);
    if (c == NULL)
        return;
    st_slab *s = slab_of(c, objs[0]);
    stack_of(s)[s->free_count - 1] = 2; /* the next pop names a live object */
    strata_slab_alloc(c);
}

TEST(alloc_from_a_corrupt_free_stack_aborts)
{
    CHECK(test_expect_abort(alloc_from_corrupt_stack, NULL, "free index stack corrupt"));
}
