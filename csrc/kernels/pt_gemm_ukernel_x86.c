/* x86-64 GEMM micro-kernels (AVX2+FMA 6 x 16, AVX-512F 12 x 32), compiled with
 * per-function target attributes so the library itself needs no -m flags;
 * pt_gemm_f32.c picks one at run time from the CPU's features. Each output
 * element is one fused multiply-add chain over k, like the generic kernel's
 * chain but with a single rounding per step. */
#include "pt_gemm_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define AVX2_MR 6
#define AVX2_NR 16

/* All ones where 0 < m < cap (pt_act_grad_select keeps g there), else 0. */
__attribute__((target("avx2")))
static inline __m256 avx2_mask_keep(__m256 m, float cap)
{
    return _mm256_and_ps(_mm256_cmp_ps(m, _mm256_setzero_ps(), _CMP_GT_OQ),
                         _mm256_cmp_ps(m, _mm256_set1_ps(cap), _CMP_LT_OQ));
}

__attribute__((target("avx2,fma")))
static void ukernel_avx2(size_t kc, const float *a, size_t a_rs, const float *b, float *c,
                         size_t ldc, const float *bias, int accumulate, const pt_gemm_epilogue *ep,
                         int m_valid, int n_valid)
{
    const size_t row_step = a_rs ? a_rs : 1, k_step = a_rs ? 1 : AVX2_MR;
    __m256 acc[AVX2_MR][2];
#pragma GCC unroll 8
    for (int i = 0; i < AVX2_MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (size_t k = 0; k < kc; ++k) {
        const __m256 b0 = _mm256_loadu_ps(b + k * AVX2_NR);
        const __m256 b1 = _mm256_loadu_ps(b + k * AVX2_NR + 8);
#pragma GCC unroll 8
        for (int i = 0; i < AVX2_MR; ++i) {
            const __m256 ai = _mm256_broadcast_ss(a + k * k_step + i * row_step);
            acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
        }
    }
    __m256 bias0 = _mm256_setzero_ps(), bias1 = _mm256_setzero_ps();
    float bias_tail[AVX2_NR];
    if (!accumulate && bias) {
        if (n_valid == AVX2_NR) {
            bias0 = _mm256_loadu_ps(bias);
            bias1 = _mm256_loadu_ps(bias + 8);
        } else {
            for (int j = 0; j < AVX2_NR; ++j) bias_tail[j] = j < n_valid ? bias[j] : 0.0f;
            bias0 = _mm256_loadu_ps(bias_tail);
            bias1 = _mm256_loadu_ps(bias_tail + 8);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < AVX2_MR; ++i) {
        if (i >= m_valid) break;
        float *ci = c + (size_t)i * ldc;
        __m256 r0 = acc[i][0], r1 = acc[i][1];
        if (n_valid == AVX2_NR) {
            if (accumulate) {
                r0 = _mm256_add_ps(_mm256_loadu_ps(ci), r0);
                r1 = _mm256_add_ps(_mm256_loadu_ps(ci + 8), r1);
            } else if (bias) {
                r0 = _mm256_add_ps(r0, bias0);
                r1 = _mm256_add_ps(r1, bias1);
            }
            if (ep && ep->clamp_cap > 0.0f) {   /* max_ps / min_ps: pt_act_clamp's selects */
                const __m256 cap = _mm256_set1_ps(ep->clamp_cap), zero = _mm256_setzero_ps();
                r0 = _mm256_min_ps(_mm256_max_ps(r0, zero), cap);
                r1 = _mm256_min_ps(_mm256_max_ps(r1, zero), cap);
            }
            if (ep && ep->mask) {
                const float *mi = ep->mask + (size_t)i * ldc;
                r0 = _mm256_and_ps(r0, avx2_mask_keep(_mm256_loadu_ps(mi), ep->mask_cap));
                r1 = _mm256_and_ps(r1, avx2_mask_keep(_mm256_loadu_ps(mi + 8), ep->mask_cap));
            }
            _mm256_storeu_ps(ci, r0);
            _mm256_storeu_ps(ci + 8, r1);
        } else {
            float row[AVX2_NR];
            _mm256_storeu_ps(row, r0);
            _mm256_storeu_ps(row + 8, r1);
            for (int j = 0; j < n_valid; ++j) {
                float v = accumulate ? ci[j] + row[j] : (bias ? row[j] + bias[j] : row[j]);
                if (ep && ep->clamp_cap > 0.0f) v = pt_act_clamp(v, ep->clamp_cap);
                if (ep && ep->mask) v = pt_act_grad_select(ep->mask[(size_t)i * ldc + j], v, ep->mask_cap);
                ci[j] = v;
            }
        }
    }
}

const pt_gemm_ukernel pt_gemm_ukernel_avx2 = {AVX2_MR, AVX2_NR, ukernel_avx2, NULL, NULL, NULL};

#define AVX512_MR 12
#define AVX512_NR 32

/* One k step of the 12 x 32 tile: row i of A is broadcast from A_AT(i). */
#define AVX512_STEP(A_AT)                                                    \
    do {                                                                     \
        const __m512 b0 = _mm512_loadu_ps(b);                                \
        const __m512 b1 = _mm512_loadu_ps(b + 16);                           \
        _Pragma("GCC unroll 16")                                             \
        for (int i = 0; i < AVX512_MR; ++i) {                                \
            const __m512 ai = _mm512_set1_ps(A_AT(i));                       \
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);                  \
            acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);                  \
        }                                                                    \
        b += AVX512_NR;                                                      \
    } while (0)

/* Lanes where 0 < m < cap (pt_act_grad_select keeps g there). */
__attribute__((target("avx512f")))
static inline __mmask16 avx512_mask_keep(__m512 m, float cap)
{
    return _mm512_cmp_ps_mask(m, _mm512_setzero_ps(), _CMP_GT_OQ) &
           _mm512_cmp_ps_mask(m, _mm512_set1_ps(cap), _CMP_LT_OQ);
}

__attribute__((target("avx512f,fma")))
static void ukernel_avx512(size_t kc, const float *a, size_t a_rs, const float *b, float *c,
                           size_t ldc, const float *bias, int accumulate, const pt_gemm_epilogue *ep,
                           int m_valid, int n_valid)
{
    __m512 acc[AVX512_MR][2];
#pragma GCC unroll 16
    for (int i = 0; i < AVX512_MR; ++i) {
        acc[i][0] = acc[i][1] = _mm512_setzero_ps();
        if (accumulate) {   /* C is read after the k loop: start fetching it now */
            _mm_prefetch((const char *)(c + (size_t)i * ldc), _MM_HINT_T0);
            _mm_prefetch((const char *)(c + (size_t)i * ldc + 16), _MM_HINT_T0);
        }
    }
    if (a_rs == 0) {
#define PACKED_AT(i) a[i]
        for (size_t k = 0; k < kc; ++k, a += AVX512_MR) AVX512_STEP(PACKED_AT);
#undef PACKED_AT
    } else {
        /* rows of A in place: four base pointers three rows apart, so every
         * row is base + 0, 1 or 2 strides (x86 scaled-index addressing) */
        const float *r0 = a, *r3 = a + 3 * a_rs, *r6 = a + 6 * a_rs, *r9 = a + 9 * a_rs;
#define ROWS_AT(i) ((i) < 3 ? r0 : (i) < 6 ? r3 : (i) < 9 ? r6 : r9)[((i) % 3) * a_rs]
        for (size_t k = 0; k < kc; ++k, ++r0, ++r3, ++r6, ++r9) AVX512_STEP(ROWS_AT);
#undef ROWS_AT
    }
    const __mmask16 mask0 = n_valid >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n_valid) - 1u);
    const __mmask16 mask1 = n_valid >= 32 ? (__mmask16)0xffff
                          : n_valid <= 16 ? (__mmask16)0 : (__mmask16)((1u << (n_valid - 16)) - 1u);
    __m512 bias0 = _mm512_setzero_ps(), bias1 = _mm512_setzero_ps();
    if (!accumulate && bias) {
        bias0 = _mm512_maskz_loadu_ps(mask0, bias);
        bias1 = _mm512_maskz_loadu_ps(mask1, bias + 16);
    }
#pragma GCC unroll 16
    for (int i = 0; i < AVX512_MR; ++i) {
        if (i >= m_valid) break;
        float *ci = c + (size_t)i * ldc;
        __m512 r0 = acc[i][0], r1 = acc[i][1];
        if (accumulate) {
            r0 = _mm512_add_ps(_mm512_maskz_loadu_ps(mask0, ci), r0);
            r1 = _mm512_add_ps(_mm512_maskz_loadu_ps(mask1, ci + 16), r1);
        } else if (bias) {
            r0 = _mm512_add_ps(r0, bias0);
            r1 = _mm512_add_ps(r1, bias1);
        }
        if (ep && ep->clamp_cap > 0.0f) {   /* max_ps / min_ps: pt_act_clamp's selects */
            const __m512 cap = _mm512_set1_ps(ep->clamp_cap), zero = _mm512_setzero_ps();
            r0 = _mm512_min_ps(_mm512_max_ps(r0, zero), cap);
            r1 = _mm512_min_ps(_mm512_max_ps(r1, zero), cap);
        }
        if (ep && ep->mask) {
            const float *mi = ep->mask + (size_t)i * ldc;
            r0 = _mm512_maskz_mov_ps(avx512_mask_keep(_mm512_maskz_loadu_ps(mask0, mi), ep->mask_cap), r0);
            r1 = _mm512_maskz_mov_ps(avx512_mask_keep(_mm512_maskz_loadu_ps(mask1, mi + 16), ep->mask_cap), r1);
        }
        _mm512_mask_storeu_ps(ci, mask0, r0);
        _mm512_mask_storeu_ps(ci + 16, mask1, r1);
    }
}

__attribute__((target("avx512f")))
static void pack_a_t_avx512(size_t kc, size_t panels, const float *a, size_t lda, float *out)
{
    const __mmask16 rows = (__mmask16)((1u << AVX512_MR) - 1u);
    const size_t panel = kc * AVX512_MR;
    for (size_t k = 0; k < kc; ++k, a += lda)
        for (size_t p = 0; p < panels; ++p)
            _mm512_mask_storeu_ps(out + p * panel + k * AVX512_MR, rows,
                                  _mm512_maskz_loadu_ps(rows, a + p * AVX512_MR));
}

__attribute__((target("avx512f")))
static void pack_b_n_avx512(size_t kc, size_t panels, const float *b, size_t ldb, float *out)
{
    const size_t panel = kc * AVX512_NR;
    for (size_t k = 0; k < kc; ++k, b += ldb)
        for (size_t p = 0; p < panels; ++p) {
            float *dst = out + p * panel + k * AVX512_NR;
            _mm512_storeu_ps(dst, _mm512_loadu_ps(b + p * AVX512_NR));
            _mm512_storeu_ps(dst + 16, _mm512_loadu_ps(b + p * AVX512_NR + 16));
        }
}

/* One masked accumulator per panel: lane i adds row i's values in k order. */
__attribute__((target("avx512f")))
static void sum_a_avx512(size_t kc, size_t panels, const float *packed, float *sums, int first)
{
    const __mmask16 rows = (__mmask16)((1u << AVX512_MR) - 1u);
    for (size_t p = 0; p < panels; ++p, packed += kc * AVX512_MR) {
        __m512 acc = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(rows, sums + p * AVX512_MR);
        for (size_t k = 0; k < kc; ++k)
            acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(rows, packed + k * AVX512_MR));
        _mm512_mask_storeu_ps(sums + p * AVX512_MR, rows, acc);
    }
}

const pt_gemm_ukernel pt_gemm_ukernel_avx512 = {AVX512_MR, AVX512_NR, ukernel_avx512,
                                                pack_a_t_avx512, pack_b_n_avx512, sum_a_avx512};

#else

const pt_gemm_ukernel pt_gemm_ukernel_avx2 = {0, 0, NULL, NULL, NULL, NULL};
const pt_gemm_ukernel pt_gemm_ukernel_avx512 = {0, 0, NULL, NULL, NULL, NULL};

#endif
