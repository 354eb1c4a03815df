/* pt_tile.h - running a layer through a small scratchpad (L1) with DMA tiling
 * and double buffering.
 *
 * A PULP cluster computes only on its L1 (TCDM: 128 KiB on VEGA, 64 KiB in
 * the pulp-open model); activations and weights live in L2. For one layer,
 * one training step and an L1 budget, pt_tile_plan_layer() picks tile sizes
 * whose buffers fit the budget (every streamed operand twice: one buffer is
 * computed on while the DMA fills the other) and that cost the least: bytes
 * moved L2 <-> L1 plus PT_TILE_CALL_BYTES per tile (below). The pt_tile_*
 * executors then run the step tile by tile, calling the untiled kernels on
 * contiguous L1 tiles, with every copy going through pt_dma.h.
 *
 * Results are bitwise equal to the untiled kernels:
 *   linear / pointwise (GEMM C[m,n] = op(A)[m,k] op(B)[k,n]):
 *     M and N are tiled freely; K only at multiples of PT_GEMM_KC (or not at
 *     all), later K tiles adding into C with accumulate = 1 - the same block
 *     sums, added in the same order, as inside pt_sgemm_f32. The bias is
 *     added by the first K tile; grad_b sums grad_y's rows in row order.
 *       fwd:        A = x [batch, in],       B = w^T,  C = y      [batch, out]
 *       bwd_input:  A = grad_y [batch, out], B = w,    C = grad_x [batch, in]
 *       bwd_weight: A = grad_y^T,            B = x,    C = grad_w [out, in]
 *                   (K = batch: the reduction is cut only at KC multiples)
 *   depthwise: tiles are (images, rows, channels). Channels are independent;
 *     row tiles carry the halo rows their windows need and adjusted padding
 *     (fwd), or the grad_y rows that reach them (bwd_input, which needs
 *     stride <= kernel size to cut rows). bwd_weight keeps whole images and
 *     adds the per-image sums in batch order, as the kernel does.
 *   conv2d (im2col + GEMM, see pt_conv2d.h): the im2col matrix is built in
 *     L1 from the input rows a tile's windows read, so each input pixel
 *     crosses once per tile (plus halo rows), not KH*KW times.
 *       fwd:        tiles of tile_m consecutive output pixels (any count
 *                   when the pads are smaller than the kernel, else whole
 *                   images) times tile_n filters, pixel tiles outermost
 *                   (order M, N, K: a tile's im2col serves every filter
 *                   block) or filter blocks outermost (N, M, K: a block's
 *                   filters are fetched once). The patch (K) is never cut.
 *       bwd_input:  (images, input rows) tiles as for depthwise; the
 *                   grad_y rows that reach a tile times tile_n columns of w
 *                   at a time (all of w, whole taps, or when tile_n < Cin a
 *                   channel slice of one tap) give those columns of the
 *                   tile's grad-cols, and col2im adds their taps, in kh, kw
 *                   order, to the tile's grad_x.
 *       bwd_weight: tiles of tile_k pixels stream through while the sums
 *                   of tile_m filters (order M, K, N) or of all of grad_w
 *                   (order K, M, N) stay in L1; tile_k is a multiple of
 *                   PT_GEMM_KC or a whole chunk of the untiled kernel, and
 *                   no tile crosses a chunk, so the GEMM adds the same
 *                   K-block sums in the same order. The patch's columns go
 *                   tile_n at a time (whole taps, or a channel slice of one
 *                   tap, the input then fetched one slice at a time).
 *     Plans report the GEMM view of the step in gemm_m/n/k and tile_m/n/k.
 *   average pooling (pt_pool.h; fwd and bwd_input, there are no weights):
 *     tiled as depthwise without weights - (images, rows, channels) tiles,
 *     a row tile reading the input rows its windows cover (fwd) or the
 *     grad_y rows that reach it (bwd_input; rows cut only when stride <=
 *     kernel). The kernel sums each output's window, or each input pixel's
 *     windows, in the untiled order and divides by the same count. A global
 *     average pool is the layer whose window is the whole map (kh = H, kw =
 *     W; y is [N, C]); it tiles by whole images and channel blocks and runs
 *     pt_global_avgpool_f32_*.
 *   channel affine (pt_affine.h): a depthwise 1x1 layer to the tiling - w
 *     is scale [C], the bias shift [C]; fwd and bwd_input tile rows
 *     freely, bwd_weight (grad_scale, grad_shift) keeps whole images and
 *     adds the per-image sums in batch order, as the kernel does.
 *
 * Buffering: an operand tile that stays in L1 for fewer than
 * PT_TILE_STATIONARY_RUN consecutive tiles gets two buffers (the DMA fills one
 * while the kernel reads the other); one that stays longer (a weight tile
 * reused across many activation tiles, a C tile accumulating over many K
 * tiles) gets one: refetching it stalls once per run, and the L1 it frees
 * buys larger tiles, i.e. fewer bytes moved.
 *
 * Layer descriptions: pointwise, depthwise and conv2d use the kernels'
 * pt_conv_params; linear uses in = {batch, 1, 1, in_features} and out_c =
 * out_features; the pools use in, kh, kw and the strides, with out_c = C,
 * no padding and has_bias = 0; the affine map uses in, out_c = C, kh = kw =
 * 1, unit strides, no padding and has_bias = 1 (its shift).
 *
 * The budget covers the tile buffers (operands, bias / grad-bias, conv2d's
 * im2col and grad-cols; a conv2d stream with one tile gets one buffer). The
 * kernels' own scratch (GEMM packing, pt_tile_scratch_bytes()) comes from
 * ctx->scratch as for the untiled calls. The executor issues DMA from the
 * calling core only and forks the kernels on ctx->num_threads cores. */
#ifndef PULPTRAIN_PT_TILE_H
#define PULPTRAIN_PT_TILE_H

#include <stdint.h>
#include "pt_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pt_tile_kind {
    PT_TILE_LINEAR = 0,
    PT_TILE_POINTWISE = 1,
    PT_TILE_DEPTHWISE = 2,
    PT_TILE_CONV2D = 3,
    PT_TILE_AVGPOOL = 4,        /* pt_avgpool_f32_*: no weights, no padding */
    PT_TILE_GLOBAL_AVGPOOL = 5, /* pt_global_avgpool_f32_*: kh = H, kw = W */
    PT_TILE_AFFINE = 6          /* pt_channel_affine_f32_*: w = scale, b = shift */
} pt_tile_kind;

typedef enum pt_tile_step {
    PT_TILE_FWD = 0,
    PT_TILE_BWD_INPUT = 1,
    PT_TILE_BWD_WEIGHT = 2
} pt_tile_step;

typedef struct pt_tile_layer {
    pt_tile_kind kind;
    pt_conv_params conv; /* see above for linear */
    int has_bias;        /* fwd adds b; bwd_weight also produces grad_b */
    pt_act act;          /* fwd: y = act(...) on each finished tile in L1, as
                            the fused kernels do (PT_ACT_NONE for the pools and
                            the affine map); the backward steps ignore it */
    pt_act input_act;    /* bwd_input: grad_x through the activation whose
                            output is this layer's input x (0 where x is not
                            in (0, cap)), applied to each finished tile in L1
                            with x's tile fetched beside it, as the
                            *_bwd_input_act kernels do (not for conv2d and
                            the affine map; run with pt_tile_bwd_input_act) */
} pt_tile_layer;

/* Loop dimensions of the GEMM view, for pt_tile_plan.order. */
enum { PT_TILE_DIM_M = 0, PT_TILE_DIM_N = 1, PT_TILE_DIM_K = 2 };

/* Every L1 buffer is aligned to this many bytes inside the L1 region (whose
 * start must be aligned to it too): a cache line, so natively no 64-byte
 * vector load of a tile straddles two lines (at 16 the depthwise kernels ran
 * up to 1.8x slower on tiles); on a scratchpad it costs at most 48 bytes per
 * buffer. */
#define PT_TILE_ALIGN 64

/* Consecutive tiles an operand must stay for to get a single buffer. */
#define PT_TILE_STATIONARY_RUN 16

typedef struct pt_tile_plan {
    pt_tile_layer layer;
    pt_tile_step step;
    /* GEMM view (linear, pointwise, conv2d: see above) */
    int gemm_m, gemm_n, gemm_k;
    int tile_m, tile_n, tile_k;
    int order[3];          /* loop order, outermost first (PT_TILE_DIM_*) */
    int buffers[3];        /* L1 buffers of the op(A), op(B) and C tiles (1 or 2) */
    /* depthwise: images, rows (output rows; input rows for bwd_input) and
     * channels per tile; loops run channels outermost. conv2d bwd_input:
     * images and input rows per tile, channels = Cin */
    int tile_images, tile_rows, tile_channels;
    /* outcome */
    uint64_t num_tiles;    /* kernel calls (GEMM tiles or depthwise tiles) */
    size_t l1_bytes;       /* size of the L1 region the executor uses (<= budget) */
    uint64_t bytes_in;     /* L2 -> L1 */
    uint64_t bytes_out;    /* L1 -> L2 */
    uint64_t lower_bound_bytes; /* every operand of the step moved once */
    uint64_t macs;         /* multiply-adds of the step */
} pt_tile_plan;

/* What a tile costs beyond its bytes, in bytes of transfer: the planner
 * minimises bytes moved + PT_TILE_CALL_BYTES x tiles. Each tile programs a
 * few DMA transfers and calls a kernel, which forks the cores and meets them
 * at a barrier: on a PULP cluster some hundreds of cycles, about the time
 * its DMA takes to move 1 KiB (8 bytes per cycle from L2). Without it the
 * planner would take, to save a few bytes, tiles of two GEMM rows, which
 * leave most of a register block empty. A build may set it (0: bytes only). */
#ifndef PT_TILE_CALL_BYTES
#define PT_TILE_CALL_BYTES 1024u
#endif

/* Plan `step` of `layer` for an L1 region of l1_budget bytes.
 * PT_ERR_SHAPE / PT_ERR_PARAM for a bad layer, PT_ERR_UNSUPPORTED for a
 * kind/step this planner does not cover, PT_ERR_BUDGET when even the
 * smallest tile (one output row of one channel block, one K block) does not
 * fit; *plan is written only on PT_OK. */
pt_status pt_tile_plan_layer(const pt_tile_layer *layer, pt_tile_step step, size_t l1_budget,
                             pt_tile_plan *plan);

/* Smallest budget for which pt_tile_plan_layer() succeeds (0 on a bad layer). */
size_t pt_tile_min_l1_bytes(const pt_tile_layer *layer, pt_tile_step step);

/* ctx->scratch the executor needs on num_threads cores (the kernels' own). */
size_t pt_tile_scratch_bytes(const pt_tile_plan *plan, int num_threads);

/* The steps, tiled. l1 is the scratchpad region (PT_TILE_ALIGN-aligned,
 * l1_bytes >= plan->l1_bytes, else PT_ERR_SCRATCH); nothing outside
 * [l1, l1 + plan->l1_bytes) is touched. Arrays are the untiled kernels'
 * (same shapes and layouts), in L2. b / grad_b may be NULL; so may w for the
 * pools, which have none (their bwd_weight is PT_ERR_UNSUPPORTED). */
pt_status pt_tile_fwd(const pt_ctx *ctx, const pt_tile_plan *plan, void *l1, size_t l1_bytes,
                      const float *x, const float *w, const float *b, float *y);
pt_status pt_tile_bwd_input(const pt_ctx *ctx, const pt_tile_plan *plan, void *l1, size_t l1_bytes,
                            const float *w, const float *grad_y, float *grad_x);
/* bwd_input of a layer with an input_act: x is the layer's input (the
 * activation's output), [same shape as grad_x]; pt_tile_bwd_input is this
 * with x = NULL (PT_ERR_NULL when the layer has an input_act). */
pt_status pt_tile_bwd_input_act(const pt_ctx *ctx, const pt_tile_plan *plan, void *l1, size_t l1_bytes,
                                const float *w, const float *grad_y, const float *x, float *grad_x);
pt_status pt_tile_bwd_weight(const pt_ctx *ctx, const pt_tile_plan *plan, void *l1, size_t l1_bytes,
                             const float *x, const float *grad_y, float *grad_w, float *grad_b);

#ifdef __cplusplus
}
#endif
#endif
