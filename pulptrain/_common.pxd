# Shared by every binding module: the status enum and the status -> exception step.
cdef extern from "pulptrain/pt_status.h":
    ctypedef int pt_status
    const char *pt_status_str(pt_status status)

cdef extern from "pulptrain/pt_types.h":
    ctypedef struct pt_ctx:
        int num_threads
        void *scratch
        size_t scratch_bytes
    ctypedef struct pt_dims:
        int n, h, w, c
    ctypedef struct pt_conv_params:
        pt_dims in_ "in"
        int out_c
        int kh, kw
        int stride_h, stride_w
        int pad_top, pad_bottom, pad_left, pad_right
    ctypedef struct pt_pool_params:
        pt_dims in_ "in"
        int kh, kw
        int stride_h, stride_w


cdef inline int check_status(pt_status st, str where) except -1:
    """Raise pulptrain.errors.StatusError when a C call did not return PT_OK."""
    if st != 0:
        from pulptrain.errors import StatusError
        raise StatusError(int(st), where, pt_status_str(st).decode())
    return 0


cdef inline pt_ctx make_ctx(int num_threads, void *scratch, size_t scratch_bytes) noexcept:
    cdef pt_ctx ctx
    ctx.num_threads = num_threads
    ctx.scratch = scratch
    ctx.scratch_bytes = scratch_bytes
    return ctx
