/* pt_tile_internal.h - geometry and L1 layouts shared by the tile planner and
 * the tiled executors (one definition, so the planner's byte counts and
 * budgets are exactly what the executors use). Not public API. */
#ifndef PULPTRAIN_PT_TILE_INTERNAL_H
#define PULPTRAIN_PT_TILE_INTERNAL_H

#include "pulptrain/pt_tile.h"
#include "pulptrain/pt_gemm.h"

static inline size_t pt_tile_align(size_t bytes)
{
    return (bytes + PT_TILE_ALIGN - 1) / PT_TILE_ALIGN * PT_TILE_ALIGN;
}

static inline int pt_tile_min_int(int a, int b) { return a < b ? a : b; }
static inline int pt_tile_max_int(int a, int b) { return a > b ? a : b; }
static inline int pt_tile_ceil_div(int a, int b) { return (a + b - 1) / b; }

/* ------------------------------------------------------------ GEMM view */
/* How one step of a linear / pointwise layer reads as C = op(A) op(B) over
 * the full L2 arrays (leading dimensions in elements). */
typedef struct pt_tile_gemm_view {
    int m, n, k;
    int trans_a, trans_b;
    int lda, ldb, ldc;
    int bias_n;      /* fwd with bias: C's columns get b */
    int grad_bias_m; /* bwd_weight with grad_b: column sums of grad_y over M */
    int mask;        /* bwd_input with an input_act: x's tile masks each final C tile */
} pt_tile_gemm_view;

/* PT_OK and *v for a linear or pointwise layer; the layer's status otherwise. */
pt_status pt_tile_gemm_view_of(const pt_tile_layer *layer, pt_tile_step step, pt_tile_gemm_view *v);

/* Byte offsets of the GEMM executor's buffers inside L1. */
typedef struct pt_tile_gemm_layout {
    size_t a[2], b[2], c[2]; /* ping-pong tiles of op(A), op(B), C */
    size_t mask;             /* bwd_input with an input_act: x's tile of the final C tile */
    size_t bias;             /* whole bias (fwd) or grad_b accumulator (bwd_weight) */
    size_t total;
} pt_tile_gemm_layout;

/* Buffers per operand (A, B, C) for tile sizes and a loop order. */
void pt_tile_gemm_buffers(const pt_tile_gemm_view *v, int tm, int tn, int tk, const int order[3],
                          int buffers[3]);

/* buffers: from pt_tile_gemm_buffers(); a second buffer of an operand with
 * one sits at the same offset as its first. */
pt_tile_gemm_layout pt_tile_gemm_layout_of(const pt_tile_gemm_view *v, int tm, int tn, int tk,
                                           const int buffers[3]);

/* ------------------------------------------------------ depthwise geometry */
typedef struct pt_tile_dw_geom {
    int n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr;
    int oh, ow;
    int rows_cuttable; /* stride <= kernel and pads < kernel: row tiles allowed */
    int weights;       /* 1: depthwise / conv2d; 0: the pools (no w, no b, no bwd_weight) */
    pt_act input_act;  /* the layer's input_act (depthwise; bwd_input fetches a mask tile) */
} pt_tile_dw_geom;

/* Depthwise, the channel affine map (a 1x1 window) and the pools (their
 * windows' geometry; weights says which have w). */
pt_status pt_tile_dw_geom_of(const pt_tile_layer *layer, pt_tile_dw_geom *g);

static inline int pt_tile_is_pool(pt_tile_kind kind)
{
    return kind == PT_TILE_AVGPOOL || kind == PT_TILE_GLOBAL_AVGPOOL;
}

/* Rows a row tile reads and how the kernel sees it. fwd: output rows
 * [r0, r1) read input rows [src_lo, src_hi) with pads pad_lo / pad_hi.
 * bwd_input: input rows [r0, r1) need grad_y rows [src_lo, src_hi); the
 * kernel then produces grad_x rows [ext_lo, ext_hi) (pads pad_lo / pad_hi);
 * rows of [r0, r1) at or past ext_hi are reached by no window (zero). */
typedef struct pt_tile_dw_rows {
    int src_lo, src_hi;
    int ext_lo, ext_hi;
    int pad_lo, pad_hi;
} pt_tile_dw_rows;

pt_tile_dw_rows pt_tile_dw_rows_of(const pt_tile_dw_geom *g, pt_tile_step step, int r0, int r1);

/* Over the row tiles of `rows` rows (output rows for fwd, input rows for
 * bwd_input): the most source rows one tile reads, the most L1 output rows
 * one tile holds, and the source rows summed over the tiles of one image. */
void pt_tile_dw_row_extents(const pt_tile_dw_geom *g, pt_tile_step step, int rows, int *src_max,
                            int *buf_max, uint64_t *src_sum);

/* 1 when a tile of several whole images reads and writes whole images (its
 * copies are then one contiguous run of pixels). */
int pt_tile_dw_whole_images(const pt_tile_dw_geom *g, pt_tile_step step);

/* Byte offsets of the depthwise executor's buffers inside L1. */
typedef struct pt_tile_dw_layout {
    size_t in[2], out[2];    /* streamed input / output tiles */
    size_t in2[2];           /* bwd_weight: grad_y tiles (x goes to in) */
    size_t w[2], b[2];       /* weights and bias of a channel block */
    size_t mask;             /* bwd_input with an input_act: x over the tile's rows */
    size_t total;
} pt_tile_dw_layout;

pt_tile_dw_layout pt_tile_dw_layout_of(const pt_tile_dw_geom *g, pt_tile_step step, int has_bias,
                                       int images, int rows, int channels);

/* --------------------------------------------------------- conv2d geometry */
typedef struct pt_tile_conv_geom {
    pt_tile_dw_geom g;     /* the window geometry, c = Cin */
    int oc;                /* Cout */
    int patch;             /* KH * KW * Cin */
    size_t img_px;         /* output pixels per image, OH * OW */
    size_t pixels;         /* N * OH * OW */
    size_t chunk_px;       /* pixels per chunk of the untiled grad-weight */
    int spans_cuttable;    /* pads < kernel: every output row reads a real input row */
} pt_tile_conv_geom;

pt_status pt_tile_conv_geom_of(const pt_tile_layer *layer, pt_tile_conv_geom *g);

/* The pixel span a fwd / bwd_weight tile that starts at pixel q0 covers:
 * up to `len` pixels, and for bwd_weight never past the end of q0's chunk. */
size_t pt_tile_conv_span_end(const pt_tile_conv_geom *g, pt_tile_step step, size_t q0, size_t len);

/* The part of span [q0, q1) in image n: its pixels [a, b) of the image, the
 * output rows [oa, ob) they lie in and the input rows those read
 * (pt_tile_dw_rows_of, fwd). */
typedef struct pt_tile_conv_piece {
    size_t a, b;
    int oa, ob;
    pt_tile_dw_rows rows;
} pt_tile_conv_piece;

pt_tile_conv_piece pt_tile_conv_piece_of(const pt_tile_conv_geom *g, int n, size_t q0, size_t q1);

/* Byte offsets of the conv2d executor's buffers inside L1. */
typedef struct pt_tile_conv_layout {
    size_t src[2];  /* x rows of a span (fwd, bwd_weight) or grad_y rows (bwd_input) */
    size_t gy[2];   /* bwd_weight: the grad_y tile */
    size_t w[2];    /* fwd: a block of tile_n filters; bwd_input: all of w (one buffer) */
    size_t b[2];    /* fwd: the bias block */
    size_t cols;    /* im2col (fwd, bwd_weight) or grad-cols (bwd_input) */
    size_t out[2];  /* y tile (fwd) or grad_x rows (bwd_input) */
    size_t acc;     /* bwd_weight: the grad_w block, then its grad_b */
    size_t total;
} pt_tile_conv_layout;

/* Layout of a conv2d plan's tile shape (its step, tile_m / n / k and
 * tile_images / rows); *src_rows_sum, if not NULL, receives the input (fwd,
 * bwd_weight) or grad_y (bwd_input) rows all tiles fetch, summed. */
pt_tile_conv_layout pt_tile_conv_layout_of(const pt_tile_conv_geom *g, const pt_tile_plan *shape,
                                           uint64_t *src_rows_sum);

/* -------------------------------------------------------- the executors */
size_t pt_tile_gemm_scratch_bytes(const pt_tile_plan *plan, int num_threads);
pt_status pt_tile_gemm_fwd(const pt_ctx *ctx, const pt_tile_plan *plan, void *l1, size_t l1_bytes,
                           const float *x, const float *w, const float *b, float *y);
pt_status pt_tile_gemm_bwd_input(const pt_ctx *ctx, const pt_tile_plan *plan, void *l1,
                                 size_t l1_bytes, const float *w, const float *grad_y, const float *x,
                                 float *grad_x);
pt_status pt_tile_gemm_bwd_weight(const pt_ctx *ctx, const pt_tile_plan *plan, void *l1,
                                  size_t l1_bytes, const float *x, const float *grad_y,
                                  float *grad_w, float *grad_b);
size_t pt_tile_conv_scratch_bytes(const pt_tile_plan *plan, int num_threads);
pt_status pt_tile_conv_fwd(const pt_ctx *ctx, const pt_tile_plan *plan, void *l1, size_t l1_bytes,
                           const float *x, const float *w, const float *b, float *y);
pt_status pt_tile_conv_bwd_input(const pt_ctx *ctx, const pt_tile_plan *plan, void *l1,
                                 size_t l1_bytes, const float *w, const float *grad_y, float *grad_x);
pt_status pt_tile_conv_bwd_weight(const pt_ctx *ctx, const pt_tile_plan *plan, void *l1,
                                  size_t l1_bytes, const float *x, const float *grad_y,
                                  float *grad_w, float *grad_b);
pt_status pt_tile_dw_fwd(const pt_ctx *ctx, const pt_tile_plan *plan, void *l1, size_t l1_bytes,
                         const float *x, const float *w, const float *b, float *y);
pt_status pt_tile_dw_bwd_input(const pt_ctx *ctx, const pt_tile_plan *plan, void *l1,
                               size_t l1_bytes, const float *w, const float *grad_y, const float *x,
                               float *grad_x);
pt_status pt_tile_dw_bwd_weight(const pt_ctx *ctx, const pt_tile_plan *plan, void *l1,
                                size_t l1_bytes, const float *x, const float *grad_y,
                                float *grad_w, float *grad_b);

#endif
