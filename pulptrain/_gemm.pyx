# Bindings of the GEMM-family kernels (conv2d, pointwise conv, linear) and of
# the GEMM ISA dispatch. Arrays arrive validated, C-contiguous float32,
# flattened; shapes come as plain ints. Scratch is allocated here, per call.
import os
import threading

from libc.stdlib cimport malloc, free
from pulptrain._common cimport pt_status, pt_ctx, pt_conv_params, check_status, make_ctx

cdef extern from "pulptrain/pulptrain.h" nogil:
    ctypedef struct pt_linear_params:
        int batch, in_features, out_features
    ctypedef int pt_gemm_isa
    int PT_GEMM_ISA_COUNT
    int pt_gemm_isa_supported(pt_gemm_isa isa)
    pt_status pt_gemm_set_isa(pt_gemm_isa isa)
    pt_gemm_isa pt_gemm_get_isa()
    const char *pt_gemm_isa_name(pt_gemm_isa isa)

    size_t pt_conv2d_f32_fwd_scratch_bytes(const pt_conv_params *p, int num_threads)
    size_t pt_conv2d_f32_bwd_input_scratch_bytes(const pt_conv_params *p, int num_threads)
    size_t pt_conv2d_f32_bwd_weight_scratch_bytes(const pt_conv_params *p, int num_threads)
    pt_status pt_conv2d_f32_fwd(const pt_ctx *ctx, const pt_conv_params *p, const float *x,
                                const float *w, const float *b, float *y)
    pt_status pt_conv2d_f32_bwd_input(const pt_ctx *ctx, const pt_conv_params *p, const float *w,
                                      const float *grad_y, float *grad_x)
    pt_status pt_conv2d_f32_bwd_weight(const pt_ctx *ctx, const pt_conv_params *p, const float *x,
                                       const float *grad_y, float *grad_w, float *grad_b)
    pt_status pt_conv2d_f32_fwd_ref(const pt_conv_params *p, const float *x, const float *w,
                                    const float *b, float *y)
    pt_status pt_conv2d_f32_bwd_input_ref(const pt_conv_params *p, const float *w,
                                          const float *grad_y, float *grad_x)
    pt_status pt_conv2d_f32_bwd_weight_ref(const pt_conv_params *p, const float *x,
                                           const float *grad_y, float *grad_w, float *grad_b)

    size_t pt_pointwise_f32_fwd_scratch_bytes(const pt_conv_params *p, int num_threads)
    size_t pt_pointwise_f32_bwd_input_scratch_bytes(const pt_conv_params *p, int num_threads)
    size_t pt_pointwise_f32_bwd_weight_scratch_bytes(const pt_conv_params *p, int num_threads)
    pt_status pt_pointwise_f32_bwd_input_act(const pt_ctx *ctx, const pt_conv_params *p, int act,
                                             const float *w, const float *grad_y, const float *x,
                                             float *grad_x)
    pt_status pt_pointwise_f32_fwd_act(const pt_ctx *ctx, const pt_conv_params *p, int act, const float *x,
                                       const float *w, const float *b, float *y)
    pt_status pt_pointwise_f32_fwd(const pt_ctx *ctx, const pt_conv_params *p, const float *x,
                                   const float *w, const float *b, float *y)
    pt_status pt_pointwise_f32_bwd_input(const pt_ctx *ctx, const pt_conv_params *p, const float *w,
                                         const float *grad_y, float *grad_x)
    pt_status pt_pointwise_f32_bwd_weight(const pt_ctx *ctx, const pt_conv_params *p, const float *x,
                                          const float *grad_y, float *grad_w, float *grad_b)
    pt_status pt_pointwise_f32_fwd_ref(const pt_conv_params *p, const float *x, const float *w,
                                       const float *b, float *y)
    pt_status pt_pointwise_f32_bwd_input_ref(const pt_conv_params *p, const float *w,
                                             const float *grad_y, float *grad_x)
    pt_status pt_pointwise_f32_bwd_weight_ref(const pt_conv_params *p, const float *x,
                                              const float *grad_y, float *grad_w, float *grad_b)

    size_t pt_linear_f32_fwd_scratch_bytes(const pt_linear_params *p, int num_threads)
    size_t pt_linear_f32_bwd_input_scratch_bytes(const pt_linear_params *p, int num_threads)
    size_t pt_linear_f32_bwd_weight_scratch_bytes(const pt_linear_params *p, int num_threads)
    pt_status pt_linear_f32_fwd(const pt_ctx *ctx, const pt_linear_params *p, const float *x,
                                const float *w, const float *b, float *y)
    pt_status pt_linear_f32_bwd_input(const pt_ctx *ctx, const pt_linear_params *p, const float *w,
                                      const float *grad_y, float *grad_x)
    pt_status pt_linear_f32_bwd_weight(const pt_ctx *ctx, const pt_linear_params *p, const float *x,
                                       const float *grad_y, float *grad_w, float *grad_b)
    pt_status pt_linear_f32_fwd_ref(const pt_linear_params *p, const float *x, const float *w,
                                    const float *b, float *y)
    pt_status pt_linear_f32_bwd_input_ref(const pt_linear_params *p, const float *w,
                                          const float *grad_y, float *grad_x)
    pt_status pt_linear_f32_bwd_weight_ref(const pt_linear_params *p, const float *x,
                                           const float *grad_y, float *grad_w, float *grad_b)


# ------------------------------------------------------------- ISA dispatch
def isa_names():
    """Every GEMM micro-kernel variant, supported here or not."""
    return [pt_gemm_isa_name(i).decode() for i in range(PT_GEMM_ISA_COUNT)]


def supported_isas():
    """The variants this CPU and build can run."""
    return [pt_gemm_isa_name(i).decode() for i in range(PT_GEMM_ISA_COUNT) if pt_gemm_isa_supported(i)]


def get_isa():
    """The variant in use: the best supported one unless set_isa() forced one."""
    return pt_gemm_isa_name(pt_gemm_get_isa()).decode()


def set_isa(name):
    """Force the GEMM variant ("generic", "avx2", "avx512") for every following
    call; ValueError if unknown or not supported here. Not thread-safe."""
    names = isa_names()
    if name not in names:
        raise ValueError(f"isa must be one of {names}, got {name!r}")
    if not pt_gemm_isa_supported(names.index(name)):
        raise ValueError(f"isa {name!r} is not supported on this CPU/build (supported: {supported_isas()})")
    check_status(pt_gemm_set_isa(names.index(name)), "pt_gemm_set_isa")


if os.environ.get("PULPTRAIN_ISA"):
    set_isa(os.environ["PULPTRAIN_ISA"])


# ---------------------------------------------------------------- helpers
cdef pt_conv_params conv_params(tuple shape) except *:
    """(n, h, w, c, out_c, kh, kw, stride_h, stride_w, top, bottom, left, right)"""
    cdef pt_conv_params p
    (p.in_.n, p.in_.h, p.in_.w, p.in_.c, p.out_c, p.kh, p.kw, p.stride_h, p.stride_w,
     p.pad_top, p.pad_bottom, p.pad_left, p.pad_right) = shape
    return p


cdef class _Scratch:
    """A malloc'd scratch buffer freed with the object."""
    cdef void *mem
    cdef size_t size

    def __cinit__(self, size_t size):
        self.size = size
        self.mem = malloc(size) if size else NULL
        if size and self.mem == NULL:
            raise MemoryError(f"cannot allocate {size} bytes of kernel scratch")

    def __dealloc__(self):
        free(self.mem)


# One growing scratch buffer per Python thread: kernels run without the GIL,
# so threads must not share one, and reusing it spares the page faults of a
# fresh allocation on every call.
_thread_scratch = threading.local()


cdef _Scratch scratch_of(size_t size):
    cdef _Scratch s = getattr(_thread_scratch, "buf", None)
    if s is None or s.size < size:
        s = _Scratch(size)
        _thread_scratch.buf = s
    return s


cdef inline const float *opt_ptr(const float[::1] a) noexcept nogil:
    return &a[0] if a is not None else NULL


cdef inline float *opt_out(float[::1] a) noexcept nogil:
    return &a[0] if a is not None else NULL


# ------------------------------------------------------------------ conv2d
# kind: "conv2d" or "pointwise" (same parameter struct, same signatures)
def conv_fwd(str kind, tuple shape, const float[::1] x, const float[::1] w, const float[::1] b,
             float[::1] y, int num_threads, bint ref=False, int act=0):
    """act (pointwise only, not with ref): 0 none, 1 ReLU, 2 ReLU6 fused into the output."""
    cdef pt_conv_params p = conv_params(shape)
    cdef bint pw = kind == "pointwise"
    cdef _Scratch s = scratch_of(0 if ref else (pt_pointwise_f32_fwd_scratch_bytes(&p, num_threads) if pw
                                              else pt_conv2d_f32_fwd_scratch_bytes(&p, num_threads)))
    cdef pt_ctx ctx = make_ctx(num_threads, s.mem, s.size)
    cdef pt_status st
    with nogil:
        if pw:
            st = (pt_pointwise_f32_fwd_ref(&p, &x[0], &w[0], opt_ptr(b), &y[0]) if ref
                  else pt_pointwise_f32_fwd_act(&ctx, &p, act, &x[0], &w[0], opt_ptr(b), &y[0]))
        else:
            st = (pt_conv2d_f32_fwd_ref(&p, &x[0], &w[0], opt_ptr(b), &y[0]) if ref
                  else pt_conv2d_f32_fwd(&ctx, &p, &x[0], &w[0], opt_ptr(b), &y[0]))
    check_status(st, f"pt_{kind}_f32_fwd")


def conv_bwd_input(str kind, tuple shape, const float[::1] w, const float[::1] gy, float[::1] gx,
                   int num_threads, bint ref=False, int act=0, const float[::1] x_act=None):
    """act (pointwise only, not with ref): grad_x through the activation that produced x_act."""
    cdef pt_conv_params p = conv_params(shape)
    cdef bint pw = kind == "pointwise"
    if act and (not pw or ref or x_act is None):
        raise ValueError("a fused activation backward needs the pointwise kernel, ref=False and x_act")
    cdef _Scratch s = scratch_of(0 if ref else (pt_pointwise_f32_bwd_input_scratch_bytes(&p, num_threads) if pw
                                              else pt_conv2d_f32_bwd_input_scratch_bytes(&p, num_threads)))
    cdef pt_ctx ctx = make_ctx(num_threads, s.mem, s.size)
    cdef pt_status st
    with nogil:
        if pw:
            st = (pt_pointwise_f32_bwd_input_ref(&p, &w[0], &gy[0], &gx[0]) if ref
                  else pt_pointwise_f32_bwd_input_act(&ctx, &p, act, &w[0], &gy[0],
                                                      &x_act[0] if act else NULL, &gx[0]))
        else:
            st = (pt_conv2d_f32_bwd_input_ref(&p, &w[0], &gy[0], &gx[0]) if ref
                  else pt_conv2d_f32_bwd_input(&ctx, &p, &w[0], &gy[0], &gx[0]))
    check_status(st, f"pt_{kind}_f32_bwd_input")


def conv_bwd_weight(str kind, tuple shape, const float[::1] x, const float[::1] gy, float[::1] gw,
                    float[::1] gb, int num_threads, bint ref=False):
    cdef pt_conv_params p = conv_params(shape)
    cdef bint pw = kind == "pointwise"
    cdef _Scratch s = scratch_of(0 if ref else (pt_pointwise_f32_bwd_weight_scratch_bytes(&p, num_threads) if pw
                                              else pt_conv2d_f32_bwd_weight_scratch_bytes(&p, num_threads)))
    cdef pt_ctx ctx = make_ctx(num_threads, s.mem, s.size)
    cdef pt_status st
    with nogil:
        if pw:
            st = (pt_pointwise_f32_bwd_weight_ref(&p, &x[0], &gy[0], &gw[0], opt_out(gb)) if ref
                  else pt_pointwise_f32_bwd_weight(&ctx, &p, &x[0], &gy[0], &gw[0], opt_out(gb)))
        else:
            st = (pt_conv2d_f32_bwd_weight_ref(&p, &x[0], &gy[0], &gw[0], opt_out(gb)) if ref
                  else pt_conv2d_f32_bwd_weight(&ctx, &p, &x[0], &gy[0], &gw[0], opt_out(gb)))
    check_status(st, f"pt_{kind}_f32_bwd_weight")


# ------------------------------------------------------------------ linear
cdef pt_linear_params linear_params(int batch, int in_features, int out_features) noexcept:
    cdef pt_linear_params p
    p.batch = batch
    p.in_features = in_features
    p.out_features = out_features
    return p


def linear_fwd(int batch, int in_features, int out_features, const float[::1] x, const float[::1] w,
               const float[::1] b, float[::1] y, int num_threads, bint ref=False):
    cdef pt_linear_params p = linear_params(batch, in_features, out_features)
    cdef _Scratch s = scratch_of(0 if ref else pt_linear_f32_fwd_scratch_bytes(&p, num_threads))
    cdef pt_ctx ctx = make_ctx(num_threads, s.mem, s.size)
    cdef pt_status st
    with nogil:
        st = (pt_linear_f32_fwd_ref(&p, &x[0], &w[0], opt_ptr(b), &y[0]) if ref
              else pt_linear_f32_fwd(&ctx, &p, &x[0], &w[0], opt_ptr(b), &y[0]))
    check_status(st, "pt_linear_f32_fwd")


def linear_bwd_input(int batch, int in_features, int out_features, const float[::1] w,
                     const float[::1] gy, float[::1] gx, int num_threads, bint ref=False):
    cdef pt_linear_params p = linear_params(batch, in_features, out_features)
    cdef _Scratch s = scratch_of(0 if ref else pt_linear_f32_bwd_input_scratch_bytes(&p, num_threads))
    cdef pt_ctx ctx = make_ctx(num_threads, s.mem, s.size)
    cdef pt_status st
    with nogil:
        st = (pt_linear_f32_bwd_input_ref(&p, &w[0], &gy[0], &gx[0]) if ref
              else pt_linear_f32_bwd_input(&ctx, &p, &w[0], &gy[0], &gx[0]))
    check_status(st, "pt_linear_f32_bwd_input")


def linear_bwd_weight(int batch, int in_features, int out_features, const float[::1] x,
                      const float[::1] gy, float[::1] gw, float[::1] gb, int num_threads, bint ref=False):
    cdef pt_linear_params p = linear_params(batch, in_features, out_features)
    cdef _Scratch s = scratch_of(0 if ref else pt_linear_f32_bwd_weight_scratch_bytes(&p, num_threads))
    cdef pt_ctx ctx = make_ctx(num_threads, s.mem, s.size)
    cdef pt_status st
    with nogil:
        st = (pt_linear_f32_bwd_weight_ref(&p, &x[0], &gy[0], &gw[0], opt_out(gb)) if ref
              else pt_linear_f32_bwd_weight(&ctx, &p, &x[0], &gy[0], &gw[0], opt_out(gb)))
    check_status(st, "pt_linear_f32_bwd_weight")
