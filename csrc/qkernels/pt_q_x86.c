/* x86-64 fast paths of the INT8 kernels: AVX-512 VNNI u8 x s8 dot products
 * (vpdpbusd) and a vectorised requantization. Compiled with target
 * attributes (no -march flag), called only after pt_q_isa.c has checked the
 * CPU. The integer arithmetic is exactly that of pt_requantize(): same bits. */
#include "q_internal.h"

#ifdef PT_Q_HAVE_X86
#include <immintrin.h>
#include <string.h>

#define PT_Q_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

/* Pixels per register block: MR x 32 channels = 12 zmm accumulators, plus two
 * weight vectors and one broadcast input, within the 32 zmm registers. */
#define MR 6

/* requantize 16 int32 accumulators of 16 consecutive channels: the rounding
 * right shift is done in 64-bit lanes, even and odd channels apart. */
PT_Q_TARGET static inline __m128i requant16(__m512i acc, __m512i mult, __m512i shift, __m512i act_max)
{
    const __m512i one = _mm512_set1_epi64(1), zero = _mm512_setzero_si512();
    const __m512i low32 = _mm512_set1_epi64(0xFFFFFFFFLL);
    __m512i shift_even = _mm512_and_si512(shift, low32);
    __m512i shift_odd = _mm512_srli_epi64(shift, 32);
    __m512i prod_even = _mm512_mul_epi32(acc, mult);
    __m512i prod_odd = _mm512_mul_epi32(_mm512_srli_epi64(acc, 32), _mm512_srli_epi64(mult, 32));
    prod_even = _mm512_add_epi64(prod_even, _mm512_sllv_epi64(one, _mm512_sub_epi64(shift_even, one)));
    prod_odd = _mm512_add_epi64(prod_odd, _mm512_sllv_epi64(one, _mm512_sub_epi64(shift_odd, one)));
    __m512i even = _mm512_srav_epi64(prod_even, shift_even);
    __m512i odd = _mm512_srav_epi64(prod_odd, shift_odd);
    even = _mm512_min_epi64(_mm512_max_epi64(even, zero), act_max);
    odd = _mm512_min_epi64(_mm512_max_epi64(odd, zero), act_max);
    return _mm512_cvtepi32_epi8(_mm512_or_si512(even, _mm512_slli_epi64(odd, 32)));
}

PT_Q_TARGET static inline __mmask16 lanes(int count)
{
    return count >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << count) - 1u);
}

PT_Q_TARGET static inline __m512i broadcast4(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* The last, partial group of inputs, zero-filled to 4 bytes. */
PT_Q_TARGET static inline __m512i broadcast_tail(const uint8_t *p, int n)
{
    uint8_t b[4] = {0, 0, 0, 0};
    for (int i = 0; i < n; ++i) b[i] = p[i];
    return broadcast4(b);
}

/* The patch of an output pixel whose window lies inside the input: kh runs
 * of span bytes (span <= 32; rows[ky] is the first), widened to int16
 * (pixels as 2p - 255), one after another. The scalar gather spent more
 * time per pixel than the dot products. */
PT_Q_TARGET void pt_q_gather_inside_avx512(const uint8_t *const *rows, int kh, int span, int pixel_input,
                                           int16_t *patch)
{
    const __mmask32 m = span >= 32 ? 0xffffffffu : (__mmask32)((1u << span) - 1u);
    const __m512i off = _mm512_set1_epi16(255);
    for (int ky = 0; ky < kh; ++ky) {
        __m512i v = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, rows[ky]));
        if (pixel_input) v = _mm512_sub_epi16(_mm512_add_epi16(v, v), off);
        _mm512_mask_storeu_epi16(patch + (size_t)ky * (size_t)span, m, v);
    }
}

/* Dense conv, up to PT_Q_CONV_PIXELS output pixels at once (independent
 * accumulator chains): acc = bias + patch . w over pairs of taps with
 * vpdpwssd (int16 pairs; |v| <= 255 and |w| <= 127 fit), 32 output channels
 * per pass. patches [npix][2*kpairs] int16; wt_pairs [kpairs][cout][2] int16;
 * out [npix][cout]. */
PT_Q_TARGET void pt_q_conv_pixels_avx512(const int16_t *patches, int npix, size_t kpairs,
                                         const int16_t *wt_pairs, int cout, const pt_requant *rq,
                                         uint8_t *out)
{
    const __m512i act_max = _mm512_set1_epi64(rq->act_max);
    const size_t patch_len = 2 * kpairs;
    const int16_t *pp[PT_Q_CONV_PIXELS];
    for (int i = 0; i < PT_Q_CONV_PIXELS; ++i) pp[i] = patches + (size_t)(i < npix ? i : npix - 1) * patch_len;
    for (int c0 = 0; c0 < cout; c0 += 32) {
        const __mmask16 m0 = lanes(cout - c0);
        const __mmask16 m1 = cout - c0 > 16 ? lanes(cout - c0 - 16) : 0;
        const __m512i bias0 = _mm512_maskz_loadu_epi32(m0, rq->bias + c0);
        const __m512i bias1 = _mm512_maskz_loadu_epi32(m1, rq->bias + c0 + 16);
        __m512i acc0[PT_Q_CONV_PIXELS], acc1[PT_Q_CONV_PIXELS];
        for (int i = 0; i < PT_Q_CONV_PIXELS; ++i) { acc0[i] = bias0; acc1[i] = bias1; }
        const int16_t *wk = wt_pairs + (size_t)c0 * 2;
        for (size_t kp = 0; kp < kpairs; ++kp, wk += (size_t)cout * 2) {
            const __m512i w0 = _mm512_maskz_loadu_epi32(m0, wk);
            const __m512i w1 = _mm512_maskz_loadu_epi32(m1, wk + 32);
            for (int i = 0; i < PT_Q_CONV_PIXELS; ++i) {
                int32_t pair;
                memcpy(&pair, pp[i] + 2 * kp, 4);
                const __m512i a = _mm512_set1_epi32(pair);
                acc0[i] = _mm512_dpwssd_epi32(acc0[i], a, w0);
                acc1[i] = _mm512_dpwssd_epi32(acc1[i], a, w1);
            }
        }
        const __m512i mult0 = _mm512_maskz_loadu_epi32(m0, rq->multiplier + c0);
        const __m512i shift0 = _mm512_mask_loadu_epi32(_mm512_set1_epi32(1), m0, rq->shift + c0);
        const __m512i mult1 = _mm512_maskz_loadu_epi32(m1, rq->multiplier + c0 + 16);
        const __m512i shift1 = _mm512_mask_loadu_epi32(_mm512_set1_epi32(1), m1, rq->shift + c0 + 16);
        for (int i = 0; i < npix; ++i) {
            uint8_t *o = out + (size_t)i * cout + c0;
            _mm_mask_storeu_epi8(o, m0, requant16(acc0[i], mult0, shift0, act_max));
            if (m1) _mm_mask_storeu_epi8(o + 16, m1, requant16(acc1[i], mult1, shift1, act_max));
        }
    }
}

/* acc + x * w, lane by lane, for x in [0, 255] (zero-extended) and w in
 * [-128, 127] (sign-extended): vpdpwssd multiplies the lanes' 16-bit halves
 * pairwise and adds both products, and x's high half is 0, so the sum is
 * x * w exactly. One instruction where vpmulld + vpaddd took three uops, two
 * of them on the one port that multiplies 512-bit integers. */
PT_Q_TARGET static inline __m512i tap_mac(__m512i acc, __m512i x, __m512i w)
{
    return _mm512_dpwssd_epi32(acc, x, w);
}

/* Depthwise conv, one output row, 16 channels at a time with the widened
 * weights of those channels held in registers (kernels up to
 * PT_Q_DW_MAX_TAPS taps). Pixels whose 3x3 window lies inside the input take
 * a fully unrolled path; the others skip their out-of-range taps. */
PT_Q_TARGET void pt_q_depthwise_row_avx512(const pt_conv_params *p, int n, int oy, int ow,
                                           const uint8_t *x, const int8_t *w, const pt_requant *rq,
                                           uint8_t *out_row)
{
    const int c = p->in.c, kh = p->kh, kw = p->kw, in_h = p->in.h, in_w = p->in.w;
    const int stride_w = p->stride_w, pad_left = p->pad_left;
    const __m512i act_max = _mm512_set1_epi64(rq->act_max);
    const uint8_t *rows[PT_Q_DW_MAX_TAPS];
    int all_rows = kh == 3 && kw == 3;
    for (int ky = 0; ky < kh; ++ky) {
        const int iy = oy * p->stride_h - p->pad_top + ky;
        rows[ky] = (iy >= 0 && iy < in_h) ? x + ((size_t)n * in_h + iy) * in_w * (size_t)c : NULL;
        all_rows &= rows[ky] != NULL;
    }
    /* ox range whose window is inside the row: ix0 = ox*stride - pad_left >= 0 and ix0 + kw <= in_w */
    int ox_lo = (pad_left + stride_w - 1) / stride_w, ox_hi = ox_lo - 1;
    if (all_rows && in_w >= kw) ox_hi = (in_w - kw + pad_left) / stride_w;
    if (ox_hi > ow - 1) ox_hi = ow - 1;
    for (int c0 = 0; c0 < c; c0 += 16) {
        const __mmask16 m = lanes(c - c0);
        __m512i wv[PT_Q_DW_MAX_TAPS];
        for (int t = 0; t < kh * kw; ++t)
            wv[t] = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, w + (size_t)t * c + c0));
        const __m512i bias = _mm512_maskz_loadu_epi32(m, rq->bias + c0);
        const __m512i mult = _mm512_maskz_loadu_epi32(m, rq->multiplier + c0);
        const __m512i shift = _mm512_mask_loadu_epi32(_mm512_set1_epi32(1), m, rq->shift + c0);
        for (int ox = 0; ox < ow; ++ox) {
            __m512i acc = bias;
            if (ox >= ox_lo && ox <= ox_hi) {
                const size_t at = (size_t)(ox * stride_w - pad_left) * c + c0;
#define PT_Q_TAP(ky, kx) \
    acc = tap_mac(acc, _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, rows[ky] + at + (size_t)(kx) * c)), \
                  wv[(ky) * 3 + (kx)])
                PT_Q_TAP(0, 0); PT_Q_TAP(0, 1); PT_Q_TAP(0, 2);
                PT_Q_TAP(1, 0); PT_Q_TAP(1, 1); PT_Q_TAP(1, 2);
                PT_Q_TAP(2, 0); PT_Q_TAP(2, 1); PT_Q_TAP(2, 2);
#undef PT_Q_TAP
            } else {
                for (int ky = 0; ky < kh; ++ky) {
                    if (!rows[ky]) continue;
                    for (int kx = 0; kx < kw; ++kx) {
                        const int ix = ox * stride_w - pad_left + kx;
                        if (ix < 0 || ix >= in_w) continue;
                        const __m512i xv = _mm512_cvtepu8_epi32(
                            _mm_maskz_loadu_epi8(m, rows[ky] + (size_t)ix * c + c0));
                        acc = tap_mac(acc, xv, wv[ky * kw + kx]);
                    }
                }
            }
            _mm_mask_storeu_epi8(out_row + (size_t)ox * c + c0, m, requant16(acc, mult, shift, act_max));
        }
    }
}

/* y[rows, cout] = requant(x[rows, cin] . w^T + bias), w packed. */
PT_Q_TARGET void pt_q_pointwise_rows_avx512vnni(const uint8_t *x, size_t rows, int cin, int cout,
                                                const int8_t *w_packed, const pt_requant *rq,
                                                uint8_t *y)
{
    const size_t kblocks = pt_q_pw_kblocks(cin);
    const size_t full_k = (size_t)cin / PT_Q_PW_KB;
    const int tail_k = cin % PT_Q_PW_KB;
    const int nblocks = (cout + PT_Q_PW_NB - 1) / PT_Q_PW_NB;
    const size_t block_bytes = kblocks * PT_Q_PW_NB * PT_Q_PW_KB;
    const __m512i act_max = _mm512_set1_epi64(rq->act_max);
    for (size_t r0 = 0; r0 < rows; r0 += MR) {
        const size_t nr = rows - r0 < MR ? rows - r0 : MR;
        const uint8_t *xr[MR];
        for (int r = 0; r < MR; ++r) xr[r] = x + (r0 + ((size_t)r < nr ? (size_t)r : nr - 1)) * (size_t)cin;
        for (int nb = 0; nb < nblocks; nb += 2) {
            const int c0 = nb * PT_Q_PW_NB;
            const __mmask16 m0 = lanes(cout - c0);
            const __mmask16 m1 = c0 + 16 < cout ? lanes(cout - c0 - 16) : 0;
            const int8_t *w0 = w_packed + (size_t)nb * block_bytes;
            const int8_t *w1 = m1 ? w0 + block_bytes : w0;   /* unused lanes reread block 0 */
            const __m512i bias0 = _mm512_maskz_loadu_epi32(m0, rq->bias + c0);
            const __m512i bias1 = _mm512_maskz_loadu_epi32(m1, rq->bias + c0 + 16);
            __m512i acc0[MR], acc1[MR];
            for (int r = 0; r < MR; ++r) { acc0[r] = bias0; acc1[r] = bias1; }
            for (size_t kb = 0; kb < full_k; ++kb) {
                const __m512i b0 = _mm512_loadu_si512(w0 + kb * 64);
                const __m512i b1 = _mm512_loadu_si512(w1 + kb * 64);
                for (int r = 0; r < MR; ++r) {
                    const __m512i a = broadcast4(xr[r] + kb * 4);
                    acc0[r] = _mm512_dpbusd_epi32(acc0[r], a, b0);
                    acc1[r] = _mm512_dpbusd_epi32(acc1[r], a, b1);
                }
            }
            if (tail_k) {
                const __m512i b0 = _mm512_loadu_si512(w0 + full_k * 64);
                const __m512i b1 = _mm512_loadu_si512(w1 + full_k * 64);
                for (int r = 0; r < MR; ++r) {
                    const __m512i a = broadcast_tail(xr[r] + full_k * 4, tail_k);
                    acc0[r] = _mm512_dpbusd_epi32(acc0[r], a, b0);
                    acc1[r] = _mm512_dpbusd_epi32(acc1[r], a, b1);
                }
            }
            const __m512i mult0 = _mm512_maskz_loadu_epi32(m0, rq->multiplier + c0);
            const __m512i shift0 = _mm512_mask_loadu_epi32(_mm512_set1_epi32(1), m0, rq->shift + c0);
            const __m512i mult1 = _mm512_maskz_loadu_epi32(m1, rq->multiplier + c0 + 16);
            const __m512i shift1 = _mm512_mask_loadu_epi32(_mm512_set1_epi32(1), m1, rq->shift + c0 + 16);
            for (size_t r = 0; r < nr; ++r) {
                uint8_t *out = y + (r0 + r) * (size_t)cout + c0;
                _mm_mask_storeu_epi8(out, m0, requant16(acc0[r], mult0, shift0, act_max));
                if (m1) _mm_mask_storeu_epi8(out + 16, m1, requant16(acc1[r], mult1, shift1, act_max));
            }
        }
    }
}
#endif
