/* SPDX-License-Identifier: MIT */
/*
 * bits.h — power-of-two and alignment arithmetic shared by every layer.
 * Pure functions on integers; no state, no dependencies.
 */
#ifndef ST_BITS_H
#define ST_BITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ST_LIKELY(x) __builtin_expect(!!(x), 1)
#define ST_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define ST_HIDDEN __attribute__((visibility("hidden")))
#define ST_NOINLINE __attribute__((noinline))
#define ST_COLD __attribute__((cold))
#define ST_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define ST_MIN(a, b) ((a) < (b) ? (a) : (b))
#define ST_MAX(a, b) ((a) > (b) ? (a) : (b))

static inline bool st_is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

/* floor(log2(x)) for x > 0 */
static inline unsigned st_log2_floor(size_t x) { return 63u - (unsigned)__builtin_clzll(x); }

/* ceil(log2(x)) for x > 0 */
static inline unsigned st_log2_ceil(size_t x) { return x <= 1 ? 0 : st_log2_floor(x - 1) + 1; }

static inline unsigned st_ctz(uint64_t x) { return (unsigned)__builtin_ctzll(x); }

/* Round up/down to a multiple of a power of two. */
static inline uintptr_t st_align_up(uintptr_t x, size_t a) { return (x + a - 1) & ~(uintptr_t)(a - 1); }
static inline uintptr_t st_align_down(uintptr_t x, size_t a) { return x & ~(uintptr_t)(a - 1); }
static inline bool st_is_aligned(uintptr_t x, size_t a) { return (x & (a - 1)) == 0; }

/* a + b without wrapping: false (and *out untouched) on overflow. */
static inline bool st_add_ok(size_t a, size_t b, size_t *out) { return !__builtin_add_overflow(a, b, out); }
static inline bool st_mul_ok(size_t a, size_t b, size_t *out) { return !__builtin_mul_overflow(a, b, out); }

/* Exact division of 32-bit offsets by a fixed 32-bit divisor d through
 * the reciprocal m = ceil(2^64 / d) (Lemire, Kaser and Kurz, "Faster
 * remainder by direct computation", 2019): the quotient is the high half
 * of m·n, and n is a multiple of d iff the low half m·n ≤ m − 1. This is
 * how slabs and pools turn an object address into its index without a
 * division, and reject an address that is not at an object boundary. */
static inline uint64_t st_recip_of(size_t d) { return UINT64_MAX / d + 1; }
static inline uint32_t st_recip_quot(uint64_t m, uint32_t n)
{
    return (uint32_t)(((unsigned __int128)m * n) >> 64);
}
static inline bool st_recip_divides(uint64_t m, uint32_t n) { return n * m <= m - 1; }

/* w with bit i % 64 clear: one instruction on x86-64, where compilers
 * spell the shift-and-mask out in four (it matters on malloc's path). */
static inline uint64_t st_bit_clear(uint64_t w, uint64_t i)
{
#if defined(__x86_64__)
    __asm__("btr %1, %0" : "+r"(w) : "r"(i) : "cc");
    return w;
#else
    return w & ~((uint64_t)1 << (i & 63));
#endif
}

#endif /* ST_BITS_H */
