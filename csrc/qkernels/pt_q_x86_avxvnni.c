/* x86-64 path for CPUs with AVX-VNNI but no AVX-512 (256-bit vpdpbusd):
 * the pointwise conv, the heaviest layer kind, with an AVX2 requantization
 * of exactly pt_requantize()'s arithmetic. The dense and depthwise convs take
 * the portable C path on such CPUs. Compiled with target attributes, called
 * only after pt_q_isa.c has checked the CPU. */
#include "q_internal.h"

#ifdef PT_Q_HAVE_X86
#include <immintrin.h>
#include <string.h>

#define PT_Q_TARGET __attribute__((target("avx2,avxvnni")))

/* Pixels per register block: MR x 16 channels = 8 ymm accumulators, plus
 * two weight vectors and the broadcast inputs, within the 16 ymm registers. */
#define MR 4

/* Round-half-up arithmetic right shift of 64-bit lanes by shift (1..62)
 * without AVX-512's vpsravq: add 2^62 so that the sum is a non-negative
 * uint64 (|prod| < 2^62, round <= 2^61), shift it logically, take 2^(62 -
 * shift) back off; then clamp to [0, act_max]. */
PT_Q_TARGET static inline __m256i round_shift_clamp(__m256i prod, __m256i shift, __m256i act_max)
{
    const __m256i one = _mm256_set1_epi64x(1), offset = _mm256_set1_epi64x((int64_t)1 << 62);
    const __m256i zero = _mm256_setzero_si256();
    __m256i sum = _mm256_add_epi64(_mm256_add_epi64(prod, offset),
                                   _mm256_sllv_epi64(one, _mm256_sub_epi64(shift, one)));
    __m256i v = _mm256_sub_epi64(_mm256_srlv_epi64(sum, shift),
                                 _mm256_sllv_epi64(one, _mm256_sub_epi64(_mm256_set1_epi64x(62), shift)));
    v = _mm256_blendv_epi8(v, zero, _mm256_cmpgt_epi64(zero, v));
    return _mm256_blendv_epi8(v, act_max, _mm256_cmpgt_epi64(v, act_max));
}

/* requantize 8 accumulators of 8 consecutive channels; returns the 8 codes
 * in the low 8 bytes. */
PT_Q_TARGET static inline __m128i requant8(__m256i acc, __m256i mult, __m256i shift, __m256i act_max)
{
    const __m256i low32 = _mm256_set1_epi64x(0xFFFFFFFFLL);
    __m256i even = round_shift_clamp(_mm256_mul_epi32(acc, mult), _mm256_and_si256(shift, low32), act_max);
    __m256i odd = round_shift_clamp(_mm256_mul_epi32(_mm256_srli_epi64(acc, 32), _mm256_srli_epi64(mult, 32)),
                                    _mm256_srli_epi64(shift, 32), act_max);
    __m256i codes = _mm256_or_si256(even, _mm256_slli_epi64(odd, 32));   /* int32 lanes, 0..255 */
    __m128i words = _mm_packus_epi32(_mm256_castsi256_si128(codes), _mm256_extracti128_si256(codes, 1));
    return _mm_packus_epi16(words, words);
}

/* The first n (<= 8) int32 of p, zero beyond (or ones for shifts). */
PT_Q_TARGET static inline __m256i load_partial(const int32_t *p, int n, int32_t fill)
{
    int32_t tmp[8];
    for (int i = 0; i < 8; ++i) tmp[i] = i < n ? p[i] : fill;
    return _mm256_loadu_si256((const __m256i *)tmp);
}

PT_Q_TARGET static inline void store_codes(uint8_t *out, __m128i codes, int n)
{
    if (n >= 8) {
        _mm_storel_epi64((__m128i *)out, codes);
    } else {
        uint8_t tmp[16];
        _mm_storeu_si128((__m128i *)tmp, codes);
        memcpy(out, tmp, (size_t)n);
    }
}

PT_Q_TARGET static inline __m256i broadcast4(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* The last, partial group of inputs, zero-filled to 4 bytes. */
PT_Q_TARGET static inline __m256i broadcast_tail(const uint8_t *p, int n)
{
    uint8_t b[4] = {0, 0, 0, 0};
    for (int i = 0; i < n; ++i) b[i] = p[i];
    return broadcast4(b);
}

/* y[rows, cout] = requant(x[rows, cin] . w^T + bias), w packed as for the
 * AVX-512 path: each 64-byte block is two 8-channel halves here. */
PT_Q_TARGET void pt_q_pointwise_rows_avxvnni(const uint8_t *x, size_t rows, int cin, int cout,
                                             const int8_t *w_packed, const pt_requant *rq, uint8_t *y)
{
    const size_t kblocks = pt_q_pw_kblocks(cin);
    const size_t full_k = (size_t)cin / PT_Q_PW_KB;
    const size_t block_bytes = kblocks * PT_Q_PW_NB * PT_Q_PW_KB;
    const __m256i act_max = _mm256_set1_epi64x(rq->act_max);
    for (size_t r0 = 0; r0 < rows; r0 += MR) {
        const size_t nr = rows - r0 < MR ? rows - r0 : MR;
        const uint8_t *xr[MR];
        for (int r = 0; r < MR; ++r) xr[r] = x + (r0 + ((size_t)r < nr ? (size_t)r : nr - 1)) * (size_t)cin;
        for (int c0 = 0; c0 < cout; c0 += PT_Q_PW_NB) {
            const int8_t *wb = w_packed + (size_t)(c0 / PT_Q_PW_NB) * block_bytes;
            const int n0 = cout - c0 < 8 ? cout - c0 : 8;
            const int n1 = cout - c0 - 8 < 0 ? 0 : (cout - c0 - 8 < 8 ? cout - c0 - 8 : 8);
            const __m256i bias0 = load_partial(rq->bias + c0, n0, 0);
            const __m256i bias1 = n1 ? load_partial(rq->bias + c0 + 8, n1, 0) : _mm256_setzero_si256();
            __m256i acc0[MR], acc1[MR];
            for (int r = 0; r < MR; ++r) { acc0[r] = bias0; acc1[r] = bias1; }
            for (size_t kb = 0; kb < full_k; ++kb) {
                const __m256i b0 = _mm256_loadu_si256((const __m256i *)(wb + kb * 64));
                const __m256i b1 = _mm256_loadu_si256((const __m256i *)(wb + kb * 64 + 32));
                for (int r = 0; r < MR; ++r) {
                    const __m256i a = broadcast4(xr[r] + kb * 4);
                    acc0[r] = _mm256_dpbusd_avx_epi32(acc0[r], a, b0);
                    acc1[r] = _mm256_dpbusd_avx_epi32(acc1[r], a, b1);
                }
            }
            if (full_k < kblocks) {
                const __m256i b0 = _mm256_loadu_si256((const __m256i *)(wb + full_k * 64));
                const __m256i b1 = _mm256_loadu_si256((const __m256i *)(wb + full_k * 64 + 32));
                for (int r = 0; r < MR; ++r) {
                    const __m256i a = broadcast_tail(xr[r] + full_k * 4, cin % PT_Q_PW_KB);
                    acc0[r] = _mm256_dpbusd_avx_epi32(acc0[r], a, b0);
                    acc1[r] = _mm256_dpbusd_avx_epi32(acc1[r], a, b1);
                }
            }
            const __m256i mult0 = load_partial(rq->multiplier + c0, n0, 0);
            const __m256i shift0 = load_partial(rq->shift + c0, n0, 1);
            const __m256i mult1 = n1 ? load_partial(rq->multiplier + c0 + 8, n1, 0) : mult0;
            const __m256i shift1 = n1 ? load_partial(rq->shift + c0 + 8, n1, 1) : shift0;
            for (size_t r = 0; r < nr; ++r) {
                uint8_t *out = y + (r0 + r) * (size_t)cout + c0;
                store_codes(out, requant8(acc0[r], mult0, shift0, act_max), n0);
                if (n1) store_codes(out + 8, requant8(acc1[r], mult1, shift1, act_max), n1);
            }
        }
    }
}
#endif
