/* SPDX-License-Identifier: MIT */
/*
 * Bad-input tests of the fixed-size pool, one per case: foreign pointers
 * (including ones into unreadable memory, which must not be touched),
 * interior pointers, metadata addresses, double frees (also across a
 * reset and of never-handed-out slots), bad sizes and alignments, regions
 * too small, and a free list overwritten after free.
 */
#include <errno.h>
#include <sys/mman.h>

#include "strata/pool.h"
#include "test.h"

static strata_pool *make_pool(size_t size)
{
    strata_pool_config cfg = {.object_size = size};
    return strata_pool_create(&cfg);
}

static void *dummy_alloc(void *ctx, size_t size, size_t align)
{
    (void)ctx, (void)size, (void)align;
    return NULL;
}

TEST(free_foreign_stack_and_static_pointers)
{
    strata_pool *p = make_pool(32);
    REQUIRE(p != NULL);
    int local;
    static int global;
    CHECK_EQ(strata_pool_free(p, &local), STRATA_ERR_FOREIGN);
    CHECK_EQ(strata_pool_free(p, &global), STRATA_ERR_FOREIGN);
    CHECK_EQ(strata_pool_free(p, (void *)16), STRATA_ERR_FOREIGN);
    CHECK_EQ(strata_pool_free(p, (void *)UINTPTR_MAX), STRATA_ERR_FOREIGN);
    CHECK(!strata_pool_owns(p, &local));
    CHECK_EQ(strata_pool_check(p), 0);
    strata_pool_destroy(p);
}

/* A pointer into memory that cannot be read, aligned like a chunk: the
 * pool must decide from its index alone (a read would crash the test). */
TEST(free_foreign_unreadable_memory_is_not_touched)
{
    strata_pool *p = make_pool(64);
    REQUIRE(p != NULL);
    strata_pool_info info;
    strata_pool_get_info(p, &info);
    size_t span = info.chunk_bytes * 2;
    unsigned char *m = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(m != MAP_FAILED);
    uintptr_t chunk = ((uintptr_t)m + info.chunk_bytes - 1) & ~(uintptr_t)(info.chunk_bytes - 1);
    CHECK_EQ(strata_pool_free(p, (void *)chunk), STRATA_ERR_FOREIGN);
    CHECK_EQ(strata_pool_free(p, (void *)(chunk + 64 * 7)), STRATA_ERR_FOREIGN);
    CHECK(!strata_pool_owns(p, (void *)(chunk + 100)));
    munmap(m, span);
    strata_pool_destroy(p);
}

TEST(free_pointer_of_another_pool)
{
    strata_pool *a = make_pool(48), *b = make_pool(48);
    REQUIRE(a && b);
    void *o = strata_pool_alloc(b);
    REQUIRE(o != NULL);
    CHECK_EQ(strata_pool_free(a, o), STRATA_ERR_FOREIGN);
    CHECK_EQ(strata_pool_free(b, o), 0);
    CHECK_EQ(strata_pool_check(a), 0);
    CHECK_EQ(strata_pool_check(b), 0);
    strata_pool_destroy(a);
    strata_pool_destroy(b);
}

TEST(free_interior_pointer)
{
    strata_pool *p = make_pool(100);
    REQUIRE(p != NULL);
    unsigned char *o = strata_pool_alloc(p);
    REQUIRE(o != NULL);
    CHECK_EQ(strata_pool_free(p, o + 1), STRATA_ERR_NOT_BLOCK);
    CHECK_EQ(strata_pool_free(p, o + 16), STRATA_ERR_NOT_BLOCK);
    CHECK_EQ(strata_pool_free(p, o + 99), STRATA_ERR_NOT_BLOCK);
    CHECK_EQ(strata_pool_check(p), 0);
    CHECK_EQ(strata_pool_free(p, o), 0);
    strata_pool_destroy(p);
}

TEST(free_chunk_metadata_address)
{
    strata_pool *p = make_pool(64);
    REQUIRE(p != NULL);
    strata_pool_info info;
    strata_pool_get_info(p, &info);
    unsigned char *o = strata_pool_alloc(p);
    REQUIRE(o != NULL);
    unsigned char *chunk = (unsigned char *)((uintptr_t)o & ~(uintptr_t)(info.chunk_bytes - 1));
    CHECK_EQ(strata_pool_free(p, chunk), STRATA_ERR_NOT_BLOCK);
    CHECK_EQ(strata_pool_free(p, p), STRATA_ERR_NOT_BLOCK); /* the descriptor itself */
    CHECK_EQ(strata_pool_free(p, chunk + info.chunk_bytes - 8), STRATA_ERR_NOT_BLOCK);
    CHECK_EQ(strata_pool_check(p), 0);
    strata_pool_destroy(p);
}

TEST(double_free)
{
    strata_pool *p = make_pool(32);
    REQUIRE(p != NULL);
    void *o = strata_pool_alloc(p), *keep = strata_pool_alloc(p);
    REQUIRE(o && keep);
    CHECK_EQ(strata_pool_free(p, o), 0);
    CHECK_EQ(strata_pool_free(p, o), STRATA_ERR_DOUBLE_FREE);
    strata_pool_info info;
    strata_pool_get_info(p, &info);
    CHECK_EQ(info.objects_live, 1);
    CHECK_EQ(strata_pool_check(p), 0);
    /* the free list was not damaged: two allocations give two objects */
    void *x = strata_pool_alloc(p), *y = strata_pool_alloc(p);
    CHECK(x == o && y != o && y != keep);
    strata_pool_destroy(p);
}

TEST(double_free_after_reset)
{
    strata_pool *p = make_pool(32);
    REQUIRE(p != NULL);
    void *o = strata_pool_alloc(p);
    REQUIRE(o != NULL);
    strata_pool_reset(p);
    CHECK_EQ(strata_pool_free(p, o), STRATA_ERR_DOUBLE_FREE);
    strata_pool_info info;
    strata_pool_get_info(p, &info);
    CHECK_EQ(info.objects_live, 0);
    CHECK_EQ(strata_pool_check(p), 0);
    strata_pool_destroy(p);
}

TEST(free_slot_never_handed_out)
{
    strata_pool *p = make_pool(32);
    REQUIRE(p != NULL);
    unsigned char *o = strata_pool_alloc(p);
    REQUIRE(o != NULL);
    strata_pool_info info;
    strata_pool_get_info(p, &info);
    CHECK_EQ(strata_pool_free(p, o + info.stride * 5), STRATA_ERR_DOUBLE_FREE);
    CHECK_EQ(strata_pool_check(p), 0);
    strata_pool_destroy(p);
}

TEST(null_pool_and_destroyed_pool)
{
    errno = 0;
    CHECK(strata_pool_alloc(NULL) == NULL);
    CHECK_EQ(errno, EINVAL);
    int x;
    CHECK_EQ(strata_pool_free(NULL, &x), STRATA_ERR_INVALID);
    CHECK(strata_pool_check(NULL) > 0);
    strata_pool_destroy(NULL);
    strata_pool_reset(NULL);
    static _Alignas(16) unsigned char region[4096];
    strata_pool *p = strata_pool_create_in(region, sizeof(region), 32, 0);
    REQUIRE(p != NULL);
    void *o = strata_pool_alloc(p);
    strata_pool_destroy(p);
    CHECK_EQ(strata_pool_free(p, o), STRATA_ERR_INVALID);
    CHECK(strata_pool_alloc(p) == NULL);
}

TEST(create_bad_object_size)
{
    strata_pool_config cfg = {.object_size = 0};
    errno = 0;
    CHECK(strata_pool_create(&cfg) == NULL);
    CHECK_EQ(errno, EINVAL);
    cfg.object_size = SIZE_MAX;
    errno = 0;
    CHECK(strata_pool_create(&cfg) == NULL);
    CHECK_EQ(errno, EINVAL);
    cfg.object_size = SIZE_MAX - 8; /* overflows when rounded to the alignment */
    errno = 0;
    CHECK(strata_pool_create(&cfg) == NULL);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(strata_pool_create(NULL) == NULL);
    CHECK_EQ(errno, EINVAL);
}

TEST(create_bad_alignment)
{
    strata_pool_config cfg = {.object_size = 32, .align = 24};
    errno = 0;
    CHECK(strata_pool_create(&cfg) == NULL);
    CHECK_EQ(errno, EINVAL);
    cfg.align = (size_t)1 << 62;
    errno = 0;
    CHECK(strata_pool_create(&cfg) == NULL);
    CHECK_EQ(errno, EINVAL);
    static _Alignas(16) unsigned char region[4096];
    errno = 0;
    CHECK(strata_pool_create_in(region, sizeof(region), 32, 3) == NULL);
    CHECK_EQ(errno, EINVAL);
}

TEST(create_too_many_objects_per_chunk)
{
    strata_pool_config cfg = {.object_size = 1 << 20, .objects_per_chunk = 1 << 20};
    errno = 0;
    CHECK(strata_pool_create(&cfg) == NULL);
    CHECK_EQ(errno, EINVAL);
}

TEST(create_source_without_free)
{
    strata_pool_config cfg = {.object_size = 32, .source = {.alloc = dummy_alloc}};
    errno = 0;
    CHECK(strata_pool_create(&cfg) == NULL);
    CHECK_EQ(errno, EINVAL);
}

TEST(create_in_region_too_small)
{
    static _Alignas(16) unsigned char region[4096];
    errno = 0;
    CHECK(strata_pool_create_in(region, 16, 32, 0) == NULL);
    CHECK_EQ(errno, ERANGE);
    size_t need = strata_pool_size_for(64, 0, 1);
    REQUIRE(need > 0 && need < sizeof(region));
    errno = 0;
    CHECK(strata_pool_create_in(region, strata_pool_overhead(), 64, 0) == NULL);
    CHECK_EQ(errno, ERANGE);
    errno = 0;
    CHECK(strata_pool_create_in(region, 0, 64, 0) == NULL);
    CHECK_EQ(errno, ERANGE);
    CHECK(strata_pool_create_in(region, need, 64, 0) != NULL);
}

TEST(create_in_bad_region)
{
    errno = 0;
    CHECK(strata_pool_create_in(NULL, 4096, 32, 0) == NULL);
    CHECK_EQ(errno, EINVAL);
    static _Alignas(16) unsigned char region[4096];
    errno = 0;
    CHECK(strata_pool_create_in(region, SIZE_MAX, 32, 0) == NULL); /* wraps the address space */
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(strata_pool_create_in(region, sizeof(region), 0, 0) == NULL);
    CHECK_EQ(errno, EINVAL);
}

TEST(fixed_pool_foreign_and_metadata_pointers)
{
    static _Alignas(16) unsigned char region[4096], other[64];
    strata_pool *p = strata_pool_create_in(region, sizeof(region), 32, 0);
    REQUIRE(p != NULL);
    unsigned char *o = strata_pool_alloc(p);
    REQUIRE(o != NULL);
    CHECK_EQ(strata_pool_free(p, other), STRATA_ERR_FOREIGN);
    CHECK_EQ(strata_pool_free(p, region + sizeof(region)), STRATA_ERR_FOREIGN);
    CHECK_EQ(strata_pool_free(p, region), STRATA_ERR_NOT_BLOCK);
    CHECK_EQ(strata_pool_free(p, o + 4), STRATA_ERR_NOT_BLOCK);
    CHECK_EQ(strata_pool_free(p, region + sizeof(region) - 1), STRATA_ERR_NOT_BLOCK);
    CHECK_EQ(strata_pool_free(p, o), 0);
    CHECK_EQ(strata_pool_free(p, o), STRATA_ERR_DOUBLE_FREE);
    CHECK_EQ(strata_pool_check(p), 0);
}

TEST(fixed_pool_full_is_enomem)
{
    static _Alignas(16) unsigned char region[2048];
    strata_pool *p = strata_pool_create_in(region, sizeof(region), 256, 0);
    REQUIRE(p != NULL);
    int n = 0;
    while (strata_pool_alloc(p) != NULL)
        n++;
    CHECK(n > 0);
    CHECK_EQ(errno, ENOMEM);
    CHECK_EQ(strata_pool_check(p), 0);
}

/* A write after free that makes the free list name a live object: alloc
 * would hand that object out twice, so it stops with a message. */
static void corrupt_then_alloc(void *arg)
{
    (void)arg;
    strata_pool *p = make_pool(32);
    void *a = strata_pool_alloc(p), *live = strata_pool_alloc(p);
    strata_pool_free(p, a);
    memcpy(a, &live, sizeof(live));
    strata_pool_alloc(p); /* takes a */
    strata_pool_alloc(p); /* would take live */
}

TEST(write_after_free_into_free_list_aborts)
{
    CHECK(test_expect_abort(corrupt_then_alloc, NULL, "pool: free list corrupted"));
}
