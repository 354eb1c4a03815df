/* pt_test.h - a tiny test harness for the C runners (no Python, no malloc
 * needed by the harness itself). Each tests/c/test_*.c is one executable
 * whose exit status is the verdict; it closes with "N passed, N failed". */
#ifndef PT_TEST_H
#define PT_TEST_H

#include <stdio.h>
#include <string.h>
#include <math.h>
#include <stdint.h>

static int pt_test_passed = 0;
static int pt_test_failed = 0;

#define PT_CHECK(cond, ...)                                                   \
    do {                                                                      \
        if (cond) {                                                           \
            pt_test_passed++;                                                 \
        } else {                                                              \
            pt_test_failed++;                                                 \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);           \
            printf(__VA_ARGS__);                                              \
            printf("\n");                                                     \
        }                                                                     \
    } while (0)

/* Returns the process exit status: 0 when every check passed. */
static inline int pt_test_finish(const char *suite)
{
    printf("%s: %d passed, %d failed\n", suite, pt_test_passed, pt_test_failed);
    return pt_test_failed == 0 ? 0 : 1;
}

/* Deterministic xorshift32 generator: the same data on every target. */
typedef struct { uint32_t s; } pt_rng;

static inline uint32_t pt_rng_next(pt_rng *r)
{
    uint32_t x = r->s ? r->s : 0x9e3779b9u;
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    r->s = x;
    return x;
}

/* Uniform in [lo, hi). */
static inline float pt_rng_uniform(pt_rng *r, float lo, float hi)
{
    return lo + (hi - lo) * (float)(pt_rng_next(r) >> 8) * (1.0f / 16777216.0f);
}

static inline void pt_fill_uniform(pt_rng *r, float *a, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; ++i) a[i] = pt_rng_uniform(r, lo, hi);
}

/* Index of the first differing float (bitwise), or -1. */
static inline long pt_first_bit_diff(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; ++i)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0) return (long)i;
    return -1;
}

/* Largest |a-b| / (atol + rtol*|b|); <= 1 means within tolerance. */
static inline double pt_tol_ratio(const float *a, const float *b, size_t n, double atol, double rtol,
                                  size_t *worst)
{
    double r = 0.0;
    *worst = 0;
    for (size_t i = 0; i < n; ++i) {
        double d = fabs((double)a[i] - (double)b[i]) / (atol + rtol * fabs((double)b[i]));
        if (!(d <= r)) { r = d; *worst = i; }
    }
    return r;
}

/* Thread counts every determinism check uses. */
static const int pt_test_threads[] = {1, 2, 3, 8};
#define PT_TEST_NUM_THREADS ((int)(sizeof(pt_test_threads) / sizeof(pt_test_threads[0])))

#endif
