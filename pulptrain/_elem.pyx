# Bindings of the non-GEMM FP32 kernels: depthwise convolution, average
# pooling, channel affine, softmax cross-entropy and SGD. Arrays arrive
# validated (pulptrain.ops), C-contiguous float32, flattened; shapes come as
# ints. Optional arrays are passed as None.
from libc.stdint cimport int32_t

from pulptrain._common cimport pt_status, pt_ctx, pt_dims, pt_conv_params, pt_pool_params, check_status, make_ctx

cdef extern from "pulptrain/pulptrain.h" nogil:
    ctypedef struct pt_sgd_params:
        float lr
        float momentum
        float weight_decay

    pt_status pt_depthwise_f32_fwd_act(const pt_ctx *ctx, const pt_conv_params *p, int act,
                                       const float *x, const float *w, const float *b, float *y)
    pt_status pt_depthwise_f32_fwd(const pt_ctx *ctx, const pt_conv_params *p, const float *x,
                                   const float *w, const float *b, float *y)
    pt_status pt_depthwise_f32_bwd_input(const pt_ctx *ctx, const pt_conv_params *p, const float *w,
                                         const float *grad_y, float *grad_x)
    pt_status pt_depthwise_f32_bwd_weight(const pt_ctx *ctx, const pt_conv_params *p, const float *x,
                                          const float *grad_y, float *grad_w, float *grad_b)
    pt_status pt_depthwise_f32_bwd(const pt_ctx *ctx, const pt_conv_params *p, int act, const float *w,
                                   const float *x, const float *grad_y, float *grad_x, float *grad_w,
                                   float *grad_b)
    pt_status pt_depthwise_f32_fwd_ref(const pt_conv_params *p, const float *x, const float *w,
                                       const float *b, float *y)
    pt_status pt_depthwise_f32_bwd_input_ref(const pt_conv_params *p, const float *w,
                                             const float *grad_y, float *grad_x)
    pt_status pt_depthwise_f32_bwd_weight_ref(const pt_conv_params *p, const float *x,
                                              const float *grad_y, float *grad_w, float *grad_b)

    pt_status pt_avgpool_f32_fwd(const pt_ctx *ctx, const pt_pool_params *p, const float *x, float *y)
    pt_status pt_avgpool_f32_bwd(const pt_ctx *ctx, const pt_pool_params *p, const float *grad_y, float *grad_x)
    pt_status pt_global_avgpool_f32_fwd(const pt_ctx *ctx, pt_dims d, const float *x, float *y)
    pt_status pt_global_avgpool_f32_bwd(const pt_ctx *ctx, pt_dims d, const float *grad_y, float *grad_x)
    pt_status pt_global_avgpool_f32_bwd_input_act(const pt_ctx *ctx, pt_dims d, int act, const float *grad_y,
                                                  const float *x, float *grad_x)
    pt_status pt_avgpool_f32_fwd_ref(const pt_pool_params *p, const float *x, float *y)
    pt_status pt_avgpool_f32_bwd_ref(const pt_pool_params *p, const float *grad_y, float *grad_x)
    pt_status pt_global_avgpool_f32_fwd_ref(pt_dims d, const float *x, float *y)
    pt_status pt_global_avgpool_f32_bwd_ref(pt_dims d, const float *grad_y, float *grad_x)

    pt_status pt_channel_affine_f32_fwd(const pt_ctx *ctx, pt_dims d, const float *x, const float *scale,
                                        const float *shift, float *y)
    pt_status pt_channel_affine_f32_bwd_input(const pt_ctx *ctx, pt_dims d, const float *scale,
                                              const float *grad_y, float *grad_x)
    pt_status pt_channel_affine_f32_bwd_param(const pt_ctx *ctx, pt_dims d, const float *x,
                                              const float *grad_y, float *grad_scale, float *grad_shift)
    pt_status pt_channel_affine_f32_fwd_ref(pt_dims d, const float *x, const float *scale,
                                            const float *shift, float *y)
    pt_status pt_channel_affine_f32_bwd_input_ref(pt_dims d, const float *scale, const float *grad_y,
                                                  float *grad_x)
    pt_status pt_channel_affine_f32_bwd_param_ref(pt_dims d, const float *x, const float *grad_y,
                                                  float *grad_scale, float *grad_shift)

    pt_status pt_softmax_xent_f32_fwd(const pt_ctx *ctx, int n, int k, const float *logits,
                                      const int32_t *labels, float *loss)
    pt_status pt_softmax_xent_f32_bwd(const pt_ctx *ctx, int n, int k, const float *logits,
                                      const int32_t *labels, float *grad_logits)
    pt_status pt_softmax_xent_f32_fwd_ref(int n, int k, const float *logits, const int32_t *labels,
                                          float *loss)
    pt_status pt_softmax_xent_f32_bwd_ref(int n, int k, const float *logits, const int32_t *labels,
                                          float *grad_logits)

    pt_status pt_sgd_f32_step(const pt_ctx *ctx, const pt_sgd_params *p, size_t count, float *param,
                              const float *grad, float *velocity)
    pt_status pt_sgd_f32_step_ref(const pt_sgd_params *p, size_t count, float *param, const float *grad,
                                  float *velocity)


cdef pt_dims make_dims(tuple nhwc):
    cdef pt_dims d
    d.n, d.h, d.w, d.c = nhwc
    return d


cdef pt_conv_params depthwise_params(tuple nhwc, tuple kernel, tuple stride, tuple pads):
    cdef pt_conv_params p
    p.in_ = make_dims(nhwc)
    p.out_c = p.in_.c
    p.kh, p.kw = kernel
    p.stride_h, p.stride_w = stride
    p.pad_top, p.pad_bottom, p.pad_left, p.pad_right = pads
    return p


cdef pt_pool_params pool_params(tuple nhwc, tuple kernel, tuple stride):
    cdef pt_pool_params p
    p.in_ = make_dims(nhwc)
    p.kh, p.kw = kernel
    p.stride_h, p.stride_w = stride
    return p


cdef const float *optional(object a) except? NULL:
    """Pointer to a float32 memoryview's data, or NULL for None."""
    cdef const float[::1] view
    if a is None:
        return NULL
    view = a
    return &view[0]


cdef float *optional_out(object a) except? NULL:
    cdef float[::1] view
    if a is None:
        return NULL
    view = a
    return &view[0]


# ------------------------------------------------------------- depthwise
def depthwise_fwd(const float[::1] x, const float[::1] w, object b, float[::1] y, tuple nhwc,
                  tuple kernel, tuple stride, tuple pads, int num_threads, bint ref=False, int act=0):
    """act (not with ref): 0 none, 1 ReLU, 2 ReLU6 fused into the output."""
    cdef pt_conv_params p = depthwise_params(nhwc, kernel, stride, pads)
    cdef pt_ctx ctx = make_ctx(num_threads, NULL, 0)
    cdef const float *bp = optional(b)
    cdef pt_status st
    with nogil:
        if ref:
            st = pt_depthwise_f32_fwd_ref(&p, &x[0], &w[0], bp, &y[0])
        else:
            st = pt_depthwise_f32_fwd_act(&ctx, &p, act, &x[0], &w[0], bp, &y[0])
    check_status(st, "pt_depthwise_f32_fwd")


def depthwise_bwd_input(const float[::1] w, const float[::1] grad_y, float[::1] grad_x, tuple nhwc,
                        tuple kernel, tuple stride, tuple pads, int num_threads, bint ref=False):
    """grad_x alone (depthwise_bwd gives it with grad_w, and through an activation)."""
    cdef pt_conv_params p = depthwise_params(nhwc, kernel, stride, pads)
    cdef pt_ctx ctx = make_ctx(num_threads, NULL, 0)
    cdef pt_status st
    with nogil:
        if ref:
            st = pt_depthwise_f32_bwd_input_ref(&p, &w[0], &grad_y[0], &grad_x[0])
        else:
            st = pt_depthwise_f32_bwd_input(&ctx, &p, &w[0], &grad_y[0], &grad_x[0])
    check_status(st, "pt_depthwise_f32_bwd_input")


def depthwise_bwd_weight(const float[::1] x, const float[::1] grad_y, float[::1] grad_w, object grad_b,
                         tuple nhwc, tuple kernel, tuple stride, tuple pads, int num_threads, bint ref=False):
    cdef pt_conv_params p = depthwise_params(nhwc, kernel, stride, pads)
    cdef pt_ctx ctx = make_ctx(num_threads, NULL, 0)
    cdef float *gb = optional_out(grad_b)
    cdef pt_status st
    with nogil:
        if ref:
            st = pt_depthwise_f32_bwd_weight_ref(&p, &x[0], &grad_y[0], &grad_w[0], gb)
        else:
            st = pt_depthwise_f32_bwd_weight(&ctx, &p, &x[0], &grad_y[0], &grad_w[0], gb)
    check_status(st, "pt_depthwise_f32_bwd_weight")


def depthwise_bwd(const float[::1] w, const float[::1] x, const float[::1] grad_y, float[::1] grad_x,
                  float[::1] grad_w, object grad_b, tuple nhwc, tuple kernel, tuple stride, tuple pads,
                  int num_threads, int act=0):
    """grad_x (through the activation that produced x when act) and grad_w /
    grad_b in one call: bitwise depthwise_bwd_input then depthwise_bwd_weight."""
    cdef pt_conv_params p = depthwise_params(nhwc, kernel, stride, pads)
    cdef pt_ctx ctx = make_ctx(num_threads, NULL, 0)
    cdef float *gb = optional_out(grad_b)
    cdef pt_status st
    with nogil:
        st = pt_depthwise_f32_bwd(&ctx, &p, act, &w[0], &x[0], &grad_y[0], &grad_x[0], &grad_w[0], gb)
    check_status(st, "pt_depthwise_f32_bwd")


# ---------------------------------------------------------------- pooling
def avgpool_fwd(const float[::1] x, float[::1] y, tuple nhwc, tuple kernel, tuple stride,
                int num_threads, bint ref=False):
    cdef pt_pool_params p = pool_params(nhwc, kernel, stride)
    cdef pt_ctx ctx = make_ctx(num_threads, NULL, 0)
    cdef pt_status st
    with nogil:
        st = pt_avgpool_f32_fwd_ref(&p, &x[0], &y[0]) if ref else pt_avgpool_f32_fwd(&ctx, &p, &x[0], &y[0])
    check_status(st, "pt_avgpool_f32_fwd")


def avgpool_bwd(const float[::1] grad_y, float[::1] grad_x, tuple nhwc, tuple kernel, tuple stride,
                int num_threads, bint ref=False):
    cdef pt_pool_params p = pool_params(nhwc, kernel, stride)
    cdef pt_ctx ctx = make_ctx(num_threads, NULL, 0)
    cdef pt_status st
    with nogil:
        if ref:
            st = pt_avgpool_f32_bwd_ref(&p, &grad_y[0], &grad_x[0])
        else:
            st = pt_avgpool_f32_bwd(&ctx, &p, &grad_y[0], &grad_x[0])
    check_status(st, "pt_avgpool_f32_bwd")


def global_avgpool_fwd(const float[::1] x, float[::1] y, tuple nhwc, int num_threads, bint ref=False):
    cdef pt_dims d = make_dims(nhwc)
    cdef pt_ctx ctx = make_ctx(num_threads, NULL, 0)
    cdef pt_status st
    with nogil:
        if ref:
            st = pt_global_avgpool_f32_fwd_ref(d, &x[0], &y[0])
        else:
            st = pt_global_avgpool_f32_fwd(&ctx, d, &x[0], &y[0])
    check_status(st, "pt_global_avgpool_f32_fwd")


def global_avgpool_bwd(const float[::1] grad_y, float[::1] grad_x, tuple nhwc, int num_threads, bint ref=False,
                       int act=0, const float[::1] x=None):
    """act (pt_act) != 0: through the activation whose output is x, masked
    as stored (not with ref: the reference twin has no mask)."""
    cdef pt_dims d = make_dims(nhwc)
    cdef pt_ctx ctx = make_ctx(num_threads, NULL, 0)
    cdef pt_status st
    cdef const float *xp = NULL
    if act:
        if ref or x is None or x.shape[0] != grad_x.shape[0]:
            raise ValueError("a masked global pool backward needs x shaped like grad_x, and no ref")
        xp = &x[0]
    with nogil:
        if ref:
            st = pt_global_avgpool_f32_bwd_ref(d, &grad_y[0], &grad_x[0])
        else:
            st = pt_global_avgpool_f32_bwd_input_act(&ctx, d, act, &grad_y[0], xp, &grad_x[0])
    check_status(st, "pt_global_avgpool_f32_bwd")


# ---------------------------------------------------------- channel affine
def affine_fwd(const float[::1] x, const float[::1] scale, const float[::1] shift, float[::1] y,
               tuple nhwc, int num_threads, bint ref=False):
    cdef pt_dims d = make_dims(nhwc)
    cdef pt_ctx ctx = make_ctx(num_threads, NULL, 0)
    cdef pt_status st
    with nogil:
        if ref:
            st = pt_channel_affine_f32_fwd_ref(d, &x[0], &scale[0], &shift[0], &y[0])
        else:
            st = pt_channel_affine_f32_fwd(&ctx, d, &x[0], &scale[0], &shift[0], &y[0])
    check_status(st, "pt_channel_affine_f32_fwd")


def affine_bwd_input(const float[::1] scale, const float[::1] grad_y, float[::1] grad_x, tuple nhwc,
                     int num_threads, bint ref=False):
    cdef pt_dims d = make_dims(nhwc)
    cdef pt_ctx ctx = make_ctx(num_threads, NULL, 0)
    cdef pt_status st
    with nogil:
        if ref:
            st = pt_channel_affine_f32_bwd_input_ref(d, &scale[0], &grad_y[0], &grad_x[0])
        else:
            st = pt_channel_affine_f32_bwd_input(&ctx, d, &scale[0], &grad_y[0], &grad_x[0])
    check_status(st, "pt_channel_affine_f32_bwd_input")


def affine_bwd_param(const float[::1] x, const float[::1] grad_y, float[::1] grad_scale,
                     float[::1] grad_shift, tuple nhwc, int num_threads, bint ref=False):
    cdef pt_dims d = make_dims(nhwc)
    cdef pt_ctx ctx = make_ctx(num_threads, NULL, 0)
    cdef pt_status st
    with nogil:
        if ref:
            st = pt_channel_affine_f32_bwd_param_ref(d, &x[0], &grad_y[0], &grad_scale[0], &grad_shift[0])
        else:
            st = pt_channel_affine_f32_bwd_param(&ctx, d, &x[0], &grad_y[0], &grad_scale[0], &grad_shift[0])
    check_status(st, "pt_channel_affine_f32_bwd_param")


# ------------------------------------------------------------------ loss
def softmax_xent_fwd(const float[::1] logits, const int32_t[::1] labels, int n, int k,
                     int num_threads, bint ref=False):
    cdef pt_ctx ctx = make_ctx(num_threads, NULL, 0)
    cdef float loss = 0.0
    cdef pt_status st
    with nogil:
        if ref:
            st = pt_softmax_xent_f32_fwd_ref(n, k, &logits[0], &labels[0], &loss)
        else:
            st = pt_softmax_xent_f32_fwd(&ctx, n, k, &logits[0], &labels[0], &loss)
    check_status(st, "pt_softmax_xent_f32_fwd")
    return loss


def softmax_xent_bwd(const float[::1] logits, const int32_t[::1] labels, float[::1] grad, int n, int k,
                     int num_threads, bint ref=False):
    cdef pt_ctx ctx = make_ctx(num_threads, NULL, 0)
    cdef pt_status st
    with nogil:
        if ref:
            st = pt_softmax_xent_f32_bwd_ref(n, k, &logits[0], &labels[0], &grad[0])
        else:
            st = pt_softmax_xent_f32_bwd(&ctx, n, k, &logits[0], &labels[0], &grad[0])
    check_status(st, "pt_softmax_xent_f32_bwd")


# ------------------------------------------------------------------- SGD
def sgd_step(float[::1] param, const float[::1] grad, float[::1] velocity, float lr, float momentum,
             float weight_decay, int num_threads, bint ref=False):
    cdef pt_ctx ctx = make_ctx(num_threads, NULL, 0)
    cdef pt_sgd_params p
    cdef size_t count = param.shape[0]
    cdef pt_status st
    p.lr = lr
    p.momentum = momentum
    p.weight_decay = weight_decay
    with nogil:
        if ref:
            st = pt_sgd_f32_step_ref(&p, count, &param[0], &grad[0], &velocity[0])
        else:
            st = pt_sgd_f32_step(&ctx, &p, count, &param[0], &grad[0], &velocity[0])
    check_status(st, "pt_sgd_f32_step")
