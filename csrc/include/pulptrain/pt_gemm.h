/* pt_gemm.h - the FP32 matrix product behind conv2d, pointwise conv and linear.
 *
 *   C[M, N] = op(A)[M, K] * op(B)[K, N]  (+ bias[N] broadcast over rows)
 *   or, with accumulate = 1,  C += op(A) * op(B)  (bias must be NULL)
 *
 * All matrices are row-major. op(A) = A when trans_a == 0 (A stored [M, K],
 * element (m, k) at a[m*lda + k]); op(A) = A^T when trans_a == 1 (A stored
 * [K, M], element (m, k) at a[k*lda + m]). Likewise for B ([K, N] or [N, K]).
 *
 * Blocking: the K dimension is cut into fixed PT_GEMM_KC-long blocks; each
 * output element sums its products in k order inside a block, and the block
 * sums are added to C in block order. Cores own disjoint rectangles of C, so
 * the result is bitwise identical for any thread count (for a given ISA
 * variant; variants differ in rounding, e.g. fused multiply-add).
 *
 * ISA variants: generic C (always), and on x86-64 with GCC/Clang avx2+fma
 * and avx512f; on RISC-V with F or Zfinx, "riscv" (scalar fmadd.s). The best
 * one the CPU supports is chosen on first use; pt_gemm_set_isa() forces one
 * (tests, benchmarks). */
#ifndef PULPTRAIN_PT_GEMM_H
#define PULPTRAIN_PT_GEMM_H

#include "pt_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* K-block length: part of the numerical definition (see above). */
#define PT_GEMM_KC 512

typedef struct pt_gemm_params {
    int m, n, k;          /* op(A) is [m, k], op(B) is [k, n], C is [m, n] */
    int trans_a, trans_b; /* 0 or 1, see above */
    int lda, ldb, ldc;    /* row strides in elements */
    int accumulate;       /* 0: C = op(A) op(B) (+ bias); 1: C += op(A) op(B) */
    int act;              /* pt_act applied to the final C (0: none); not with accumulate */
} pt_gemm_params;

/* The micro-kernel families; X-macro so lists stay in sync. */
#define PT_GEMM_ISA_LIST(X) X(GENERIC, "generic") X(AVX2, "avx2") X(AVX512, "avx512") X(RISCV, "riscv")

typedef enum pt_gemm_isa {
#define PT_GEMM_ISA_ENUM(id, name) PT_GEMM_ISA_##id,
    PT_GEMM_ISA_LIST(PT_GEMM_ISA_ENUM)
#undef PT_GEMM_ISA_ENUM
    PT_GEMM_ISA_COUNT
} pt_gemm_isa;

/* 1 when this build and CPU can run the variant. */
int pt_gemm_isa_supported(pt_gemm_isa isa);

/* Force a variant for every following call (PT_ERR_UNSUPPORTED if the CPU or
 * build lacks it, PT_ERR_PARAM if out of range). Not thread-safe: call it
 * while no kernel runs. */
pt_status pt_gemm_set_isa(pt_gemm_isa isa);

/* The variant in use (the best supported one unless forced). */
pt_gemm_isa pt_gemm_get_isa(void);

/* Lower-case name of a variant ("generic", "avx2", "avx512"), or "?". */
const char *pt_gemm_isa_name(pt_gemm_isa isa);

/* Scratch needed by pt_sgemm_f32 on num_threads cores (any ISA variant). */
size_t pt_sgemm_f32_scratch_bytes(const pt_gemm_params *p, int num_threads);

/* C = op(A) op(B) (+ bias) or C += op(A) op(B). bias may be NULL. C must not
 * alias A, B or bias. */
pt_status pt_sgemm_f32(const pt_ctx *ctx, const pt_gemm_params *p, const float *a,
                       const float *b, const float *bias, float *c);

/* Reusing a packed op(B) across calls (e.g. one weight tile for many row
 * tiles): pt_sgemm_f32_pack_b() packs the whole op(B) of p into `packed`
 * (pt_sgemm_f32_packed_b_bytes(p) bytes, in the layout of the variant in use
 * at the time), and pt_sgemm_f32_packed() computes what pt_sgemm_f32() would,
 * bitwise, reading B from it instead of packing it again. Pass the same p to
 * both, and call them while the same variant is in use. */
size_t pt_sgemm_f32_packed_b_bytes(const pt_gemm_params *p);
pt_status pt_sgemm_f32_pack_b(const pt_gemm_params *p, const float *b, float *packed);
pt_status pt_sgemm_f32_packed(const pt_ctx *ctx, const pt_gemm_params *p, const float *a,
                              const float *packed_b, const float *bias, float *c);

/* Likewise for op(A) (e.g. a transposed grad_y tile reused over many weight
 * column tiles): pt_sgemm_f32_pack_a() packs the whole op(A) of p
 * (pt_sgemm_f32_packed_a_bytes(p) bytes), and pt_sgemm_f32_packed_ab()
 * multiplies a packed A by a packed B, bitwise as pt_sgemm_f32(). */
size_t pt_sgemm_f32_packed_a_bytes(const pt_gemm_params *p);
pt_status pt_sgemm_f32_pack_a(const pt_gemm_params *p, const float *a, float *packed);
pt_status pt_sgemm_f32_packed_ab(const pt_ctx *ctx, const pt_gemm_params *p, const float *packed_a,
                                 const float *packed_b, const float *bias, float *c);

/* Plain triple loop twin (one core, no scratch): sums in plain k order. */
pt_status pt_sgemm_f32_ref(const pt_gemm_params *p, const float *a, const float *b,
                           const float *bias, float *c);

#ifdef __cplusplus
}
#endif
#endif
