# Bindings of the INT8 frozen-stage kernels (csrc/qkernels). Arrays arrive
# validated and C-contiguous from pulptrain/quant.py; shapes travel as ints.
from libc.stdint cimport uint8_t, int8_t, int32_t
from libc.stdlib cimport malloc, free
from pulptrain._common cimport pt_status, pt_ctx, pt_conv_params, check_status, make_ctx

import numpy as np

cdef extern from "pulptrain/pt_qkernels.h" nogil:
    ctypedef struct pt_requant:
        const int32_t *bias
        const int32_t *multiplier
        const int32_t *shift
        int32_t act_max
    pt_status pt_q_conv2d_fwd(const pt_ctx *ctx, const pt_conv_params *p, int pixel_input,
                              const uint8_t *x, const int8_t *w, const pt_requant *rq, uint8_t *y)
    pt_status pt_q_depthwise_fwd(const pt_ctx *ctx, const pt_conv_params *p, const uint8_t *x,
                                 const int8_t *w, const pt_requant *rq, uint8_t *y)
    pt_status pt_q_pointwise_fwd(const pt_ctx *ctx, const pt_conv_params *p, const uint8_t *x,
                                 const int8_t *w_packed, const pt_requant *rq, uint8_t *y)
    size_t pt_q_pointwise_packed_bytes(int cin, int cout)
    pt_status pt_q_pointwise_pack(int cin, int cout, const int8_t *w, int8_t *w_packed, size_t packed_bytes)
    size_t pt_q_conv2d_scratch_bytes(const pt_conv_params *p, int num_threads)
    const char *pt_q_isa()
    pt_status pt_q_select_isa(const char *name)
    pt_status pt_q_conv2d_fwd_ref(const pt_conv_params *p, int pixel_input, const uint8_t *x,
                                  const int8_t *w, const pt_requant *rq, uint8_t *y)
    pt_status pt_q_depthwise_fwd_ref(const pt_conv_params *p, const uint8_t *x, const int8_t *w,
                                     const pt_requant *rq, uint8_t *y)
    pt_status pt_q_pointwise_fwd_ref(const pt_conv_params *p, const uint8_t *x, const int8_t *w,
                                     const pt_requant *rq, uint8_t *y)

cdef enum:
    KIND_CONV = 0
    KIND_DEPTHWISE = 1
    KIND_POINTWISE = 2


def isa():
    """The instruction-set path of the INT8 kernels on this machine."""
    return pt_q_isa().decode()


def select_isa(str name):
    check_status(pt_q_select_isa(name.encode()), "pt_q_select_isa")


def pointwise_pack(const int8_t[::1] w, int cin, int cout):
    cdef size_t nbytes = pt_q_pointwise_packed_bytes(cin, cout)
    packed = np.empty(nbytes, dtype=np.int8)
    cdef int8_t[::1] out = packed
    check_status(pt_q_pointwise_pack(cin, cout, &w[0], &out[0], nbytes), "pt_q_pointwise_pack")
    return packed


def conv_forward(int kind, const uint8_t[::1] x, tuple in_shape, int out_c, tuple kernel,
                 tuple stride, tuple pads, const int8_t[::1] w, const int32_t[::1] bias,
                 const int32_t[::1] multiplier, const int32_t[::1] shift, int act_max,
                 bint pixel_input, uint8_t[::1] y, int num_threads, bint ref=False):
    """One INT8 layer: kind 0 dense conv, 1 depthwise, 2 pointwise (w packed
    unless ref). Writes y."""
    cdef pt_conv_params p
    p.in_.n, p.in_.h, p.in_.w, p.in_.c = in_shape
    p.out_c = out_c
    p.kh, p.kw = kernel
    p.stride_h, p.stride_w = stride
    p.pad_top, p.pad_bottom, p.pad_left, p.pad_right = pads
    cdef pt_requant rq
    rq.bias = &bias[0]
    rq.multiplier = &multiplier[0]
    rq.shift = &shift[0]
    rq.act_max = act_max
    cdef size_t scratch_bytes = pt_q_conv2d_scratch_bytes(&p, num_threads) if kind == KIND_CONV and not ref else 0
    cdef void *scratch = malloc(scratch_bytes) if scratch_bytes else NULL
    if scratch_bytes and scratch == NULL:
        raise MemoryError()
    cdef pt_ctx ctx = make_ctx(num_threads, scratch, scratch_bytes)
    cdef pt_status st
    cdef int pix = pixel_input
    try:
        with nogil:
            if kind == KIND_CONV:
                st = (pt_q_conv2d_fwd_ref(&p, pix, &x[0], &w[0], &rq, &y[0]) if ref
                      else pt_q_conv2d_fwd(&ctx, &p, pix, &x[0], &w[0], &rq, &y[0]))
            elif kind == KIND_DEPTHWISE:
                st = (pt_q_depthwise_fwd_ref(&p, &x[0], &w[0], &rq, &y[0]) if ref
                      else pt_q_depthwise_fwd(&ctx, &p, &x[0], &w[0], &rq, &y[0]))
            else:
                st = (pt_q_pointwise_fwd_ref(&p, &x[0], &w[0], &rq, &y[0]) if ref
                      else pt_q_pointwise_fwd(&ctx, &p, &x[0], &w[0], &rq, &y[0]))
    finally:
        free(scratch)
    check_status(st, ("pt_q_conv2d_fwd", "pt_q_depthwise_fwd", "pt_q_pointwise_fwd")[kind])
