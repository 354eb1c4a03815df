# Bindings of the runtime basics (parallel seam, status) and the elementwise
# activation kernels. Arrays arrive validated, C-contiguous float32, flattened.
from pulptrain._common cimport pt_status, pt_ctx, check_status, make_ctx

cdef extern from "pulptrain/pulptrain.h" nogil:
    const char *PULPTRAIN_VERSION
    int PT_MAX_THREADS
    int pt_parallel_max_cores()
    pt_status pt_relu_f32_fwd(const pt_ctx *ctx, size_t count, const float *x, float *y)
    pt_status pt_relu_f32_bwd(const pt_ctx *ctx, size_t count, const float *v, const float *gy, float *gx)
    pt_status pt_relu6_f32_fwd(const pt_ctx *ctx, size_t count, const float *x, float *y)
    pt_status pt_relu6_f32_bwd(const pt_ctx *ctx, size_t count, const float *v, const float *gy, float *gx)
    pt_status pt_relu_f32_fwd_ref(size_t count, const float *x, float *y)
    pt_status pt_relu_f32_bwd_ref(size_t count, const float *v, const float *gy, float *gx)
    pt_status pt_relu6_f32_fwd_ref(size_t count, const float *x, float *y)
    pt_status pt_relu6_f32_bwd_ref(size_t count, const float *v, const float *gy, float *gx)

C_VERSION = PULPTRAIN_VERSION.decode()
MAX_THREADS = PT_MAX_THREADS


def max_cores():
    """Cores the native backend can run at once."""
    return pt_parallel_max_cores()


def relu_fwd(const float[::1] x, float[::1] y, int num_threads, bint six, bint ref=False):
    cdef pt_ctx ctx = make_ctx(num_threads, NULL, 0)
    cdef pt_status st
    cdef size_t n = x.shape[0]
    with nogil:
        if ref:
            st = pt_relu6_f32_fwd_ref(n, &x[0], &y[0]) if six else pt_relu_f32_fwd_ref(n, &x[0], &y[0])
        else:
            st = pt_relu6_f32_fwd(&ctx, n, &x[0], &y[0]) if six else pt_relu_f32_fwd(&ctx, n, &x[0], &y[0])
    check_status(st, "pt_relu6_f32_fwd" if six else "pt_relu_f32_fwd")


def relu_bwd(const float[::1] v, const float[::1] gy, float[::1] gx, int num_threads, bint six, bint ref=False):
    cdef pt_ctx ctx = make_ctx(num_threads, NULL, 0)
    cdef pt_status st
    cdef size_t n = v.shape[0]
    with nogil:
        if ref:
            st = (pt_relu6_f32_bwd_ref(n, &v[0], &gy[0], &gx[0]) if six
                  else pt_relu_f32_bwd_ref(n, &v[0], &gy[0], &gx[0]))
        else:
            st = (pt_relu6_f32_bwd(&ctx, n, &v[0], &gy[0], &gx[0]) if six
                  else pt_relu_f32_bwd(&ctx, n, &v[0], &gy[0], &gx[0]))
    check_status(st, "pt_relu6_f32_bwd" if six else "pt_relu_f32_bwd")
