/* pt_qkernels.h - INT8 inference kernels of the frozen stage (integer only).
 *
 * Arithmetic (the same in every kernel, optimised or reference, so results are
 * bit-exact across paths, thread counts and machines):
 *   activations  uint8 codes q, real value = q * scale (zero point 0: every
 *                frozen-stage activation follows a ReLU6, so it is >= 0 and
 *                the TF "SAME" zero padding is the code 0)
 *   pixels       (first conv only) uint8 p, used as the integer v = 2p - 255,
 *                i.e. the TF-slim input (p / 255) * 2 - 1 in units of 1/255,
 *                exactly, with zero padding v = 0
 *   weights      int8, symmetric per output channel (real = w * w_scale[c])
 *   accumulator  int32: acc = bias[c] + sum(v * w)
 *   requantize   y = clamp(round_half_up(acc * multiplier[c] / 2^shift[c]), 0, act_max)
 *                with multiplier[c] in [2^30, 2^31) and shift[c] in [1, 62]
 *                (the real factor in_scale * w_scale[c] / out_scale); act_max
 *                is the code of min(6, top of the range): ReLU6 as a clamp.
 *
 * Layouts: NHWC activations; conv weights [Cout, KH, KW, Cin]; depthwise
 * [KH, KW, C]; pointwise [Cout, Cin] (the fast kernel takes them packed by
 * pt_q_pointwise_pack). Work is split over output rows / pixels: integer sums
 * make any split bit-identical. Only the dense conv needs scratch. */
#ifndef PULPTRAIN_PT_QKERNELS_H
#define PULPTRAIN_PT_QKERNELS_H

#include "pt_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Per-output-channel requantization of one layer. */
typedef struct pt_requant {
    const int32_t *bias;        /* [Cout], in units of in_scale * w_scale[c] */
    const int32_t *multiplier;  /* [Cout], in [2^30, 2^31) */
    const int32_t *shift;       /* [Cout], in [1, 62] */
    int32_t act_max;            /* upper clamp of the output code, 1..255 */
} pt_requant;

/* The one rounding rule of every kernel (exposed for tests and bindings). */
static inline uint8_t pt_requantize(int32_t acc, int32_t multiplier, int32_t shift, int32_t act_max)
{
    int64_t prod = (int64_t)acc * (int64_t)multiplier;
    int64_t rounded = (prod + ((int64_t)1 << (shift - 1))) >> shift;  /* arithmetic shift: floor */
    if (rounded < 0) rounded = 0;
    if (rounded > act_max) rounded = act_max;
    return (uint8_t)rounded;
}

/* Dense conv (any kernel size, stride, padding). pixel_input != 0: x holds
 * 8-bit pixels, mapped to 2p - 255 (the first layer); else activation codes.
 * x [N, H, W, Cin] uint8, w [Cout, KH, KW, Cin] int8, y [N, OH, OW, Cout]. */
pt_status pt_q_conv2d_fwd(const pt_ctx *ctx, const pt_conv_params *p, int pixel_input,
                          const uint8_t *x, const int8_t *w, const pt_requant *rq, uint8_t *y);

/* Depthwise conv: p->out_c == p->in.c; w [KH, KW, C]. */
pt_status pt_q_depthwise_fwd(const pt_ctx *ctx, const pt_conv_params *p,
                             const uint8_t *x, const int8_t *w, const pt_requant *rq, uint8_t *y);

/* Pointwise conv as a GEMM over the N*H*W pixels: p->kh == p->kw == 1,
 * stride 1, no padding. w_packed from pt_q_pointwise_pack. */
pt_status pt_q_pointwise_fwd(const pt_ctx *ctx, const pt_conv_params *p,
                             const uint8_t *x, const int8_t *w_packed, const pt_requant *rq,
                             uint8_t *y);

/* Packed pointwise weights: [ceil(Cout/16)][ceil(Cin/4)][16][4] int8,
 * zero-filled past Cout and Cin (16 output channels x 4 inputs per block:
 * the operand of one 512-bit u8 x s8 dot-product instruction). */
size_t pt_q_pointwise_packed_bytes(int cin, int cout);
pt_status pt_q_pointwise_pack(int cin, int cout, const int8_t *w, int8_t *w_packed,
                              size_t packed_bytes);

/* Scratch of pt_q_conv2d_fwd for num_threads cores (transposed weights and
 * one patch + accumulator row per core). */
size_t pt_q_conv2d_scratch_bytes(const pt_conv_params *p, int num_threads);

/* The instruction-set path the kernels run, chosen at run time: "avx512-vnni"
 * (x86-64 with AVX-512 VNNI/BW/VL/DQ: every kernel), "avx-vnni" (x86-64 with
 * AVX-VNNI and AVX2: the pointwise conv; the others in plain C) or "generic"
 * (plain C, any target). pt_q_select_isa("auto" | one of those) overrides the
 * choice process-wide (tests compare the paths); PT_ERR_UNSUPPORTED when this
 * CPU or build cannot run it. Every path gives the same bits. */
const char *pt_q_isa(void);
pt_status pt_q_select_isa(const char *name);

/* Plain single-core reference twins (always compiled, used by the tests). */
pt_status pt_q_conv2d_fwd_ref(const pt_conv_params *p, int pixel_input, const uint8_t *x,
                              const int8_t *w, const pt_requant *rq, uint8_t *y);
pt_status pt_q_depthwise_fwd_ref(const pt_conv_params *p, const uint8_t *x, const int8_t *w,
                                 const pt_requant *rq, uint8_t *y);
pt_status pt_q_pointwise_fwd_ref(const pt_conv_params *p, const uint8_t *x, const int8_t *w,
                                 const pt_requant *rq, uint8_t *y);

#ifdef __cplusplus
}
#endif
#endif
