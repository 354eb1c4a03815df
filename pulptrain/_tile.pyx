# Bindings of the tile planner (pt_tile.h) and the tiled executors. Layers come
# as a tuple (kind, n, h, w, c, out_c, kh, kw, sh, sw, pt, pb, pl, pr, bias, act, input_act);
# arrays arrive validated, C-contiguous float32, flattened. The L1 region is a
# caller-owned uint8 array (so tests can fence it with canary bytes).
from libc.stdint cimport uint64_t, uint8_t
from libc.stdlib cimport malloc, free
from pulptrain._common cimport pt_status, pt_ctx, pt_conv_params, check_status, make_ctx

cdef extern from "pulptrain/pt_tile.h" nogil:
    ctypedef int pt_tile_kind
    ctypedef int pt_tile_step
    ctypedef struct pt_tile_layer:
        pt_tile_kind kind
        pt_conv_params conv
        int has_bias
        int act
        int input_act
    ctypedef struct pt_tile_plan:
        pt_tile_layer layer
        pt_tile_step step
        int gemm_m, gemm_n, gemm_k
        int tile_m, tile_n, tile_k
        int order[3]
        int tile_images, tile_rows, tile_channels
        uint64_t num_tiles
        size_t l1_bytes
        uint64_t bytes_in, bytes_out, lower_bound_bytes, macs
    int PT_TILE_ALIGN
    pt_status pt_tile_plan_layer(const pt_tile_layer *layer, pt_tile_step step, size_t l1_budget,
                                 pt_tile_plan *plan)
    size_t pt_tile_min_l1_bytes(const pt_tile_layer *layer, pt_tile_step step)
    size_t pt_tile_scratch_bytes(const pt_tile_plan *plan, int num_threads)
    pt_status pt_tile_fwd(const pt_ctx *ctx, const pt_tile_plan *plan, void *l1, size_t l1_bytes,
                          const float *x, const float *w, const float *b, float *y)
    pt_status pt_tile_bwd_input_act(const pt_ctx *ctx, const pt_tile_plan *plan, void *l1, size_t l1_bytes,
                                    const float *w, const float *grad_y, const float *x, float *grad_x)
    pt_status pt_tile_bwd_weight(const pt_ctx *ctx, const pt_tile_plan *plan, void *l1, size_t l1_bytes,
                                 const float *x, const float *grad_y, float *grad_w, float *grad_b)

cdef extern from "pulptrain/pt_status.h" nogil:
    int PT_ERR_BUDGET

cdef extern from "pulptrain/pt_dma.h" nogil:
    uint64_t pt_dma_bytes_issued()
    void pt_dma_reset_bytes_issued()
    pt_status pt_dma_thread_start()
    pt_status pt_dma_thread_stop()
    int pt_dma_thread_running()

ALIGN = PT_TILE_ALIGN
ERR_BUDGET = PT_ERR_BUDGET
KINDS = {"linear": 0, "pointwise": 1, "depthwise": 2, "conv2d": 3, "avg_pool": 4, "global_avg_pool": 5,
         "channel_affine": 6}
STEPS = {"forward": 0, "grad_input": 1, "grad_weight": 2}
_DIMS = "mnk"


cdef pt_tile_layer _layer(tuple d):
    cdef pt_tile_layer l
    l.kind = KINDS[d[0]]
    l.conv.in_.n, l.conv.in_.h, l.conv.in_.w, l.conv.in_.c = d[1], d[2], d[3], d[4]
    l.conv.out_c = d[5]
    l.conv.kh, l.conv.kw, l.conv.stride_h, l.conv.stride_w = d[6], d[7], d[8], d[9]
    l.conv.pad_top, l.conv.pad_bottom, l.conv.pad_left, l.conv.pad_right = d[10], d[11], d[12], d[13]
    l.has_bias = 1 if d[14] else 0
    l.act = d[15]
    l.input_act = d[16]
    return l


cdef pt_tile_plan _plan(tuple layer, str step, size_t budget) except *:
    cdef pt_tile_layer l = _layer(layer)
    cdef pt_tile_plan p
    cdef pt_status st = pt_tile_plan_layer(&l, STEPS[step], budget, &p)
    check_status(st, "pt_tile_plan_layer")
    return p


cdef const float *_in_ptr(a) except? NULL:
    """The data of a C-contiguous float32 array, or NULL for None (the
    caller keeps the array alive)."""
    cdef const float[::1] v
    if a is None:
        return NULL
    v = a
    return &v[0]


cdef float *_out_ptr(a) except? NULL:
    cdef float[::1] v
    if a is None:
        return NULL
    v = a
    return &v[0]


def set_dma_thread(bint on):
    """Start (and install) or stop the DMA thread backend."""
    if on:
        check_status(pt_dma_thread_start(), "pt_dma_thread_start")
    else:
        check_status(pt_dma_thread_stop(), "pt_dma_thread_stop")


def dma_thread_running():
    return bool(pt_dma_thread_running())


def plan(tuple layer, str step, size_t budget):
    """The planner's choice as a dict (raises StatusError, e.g. PT_ERR_BUDGET)."""
    cdef pt_tile_plan p = _plan(layer, step, budget)
    return {
        "gemm": (p.gemm_m, p.gemm_n, p.gemm_k),
        "tile_gemm": (p.tile_m, p.tile_n, p.tile_k),
        "order": "".join(_DIMS[p.order[i]] for i in range(3)),
        "tile_depthwise": (p.tile_images, p.tile_rows, p.tile_channels),
        "num_tiles": p.num_tiles, "l1_bytes": p.l1_bytes, "bytes_in": p.bytes_in,
        "bytes_out": p.bytes_out, "lower_bound_bytes": p.lower_bound_bytes, "macs": p.macs,
    }


def min_l1_bytes(tuple layer, str step):
    cdef pt_tile_layer l = _layer(layer)
    return pt_tile_min_l1_bytes(&l, STEPS[step])


cdef class Executor:
    """One planned step of one layer, ready to run many times."""
    cdef pt_tile_plan plan
    cdef size_t budget
    cdef int which

    def __cinit__(self, tuple layer, str step, size_t budget):
        self.plan = _plan(layer, step, budget)
        self.budget = budget
        self.which = STEPS[step]

    def run(self, uint8_t[::1] l1, size_t l1_offset, a, b, bias, float[::1] out, out2, int num_threads,
            mask=None):
        """forward: a = x, b = w, bias = b or None, out = y; grad_input: a = w,
        b = grad_y, out = grad_x, mask = x for a layer with an input
        activation; grad_weight: a = x, b = grad_y, out = grad_w, out2 =
        grad_b or None. The pools have no w (None). The L1 region is
        l1[l1_offset : l1_offset + budget]. Returns the bytes the DMA moved."""
        if l1_offset + self.budget > <size_t>l1.shape[0]:
            raise ValueError("the L1 region does not fit in the l1 array")
        cdef const float *a_p = _in_ptr(a)
        cdef const float *b_p = _in_ptr(b)
        cdef const float *bias_p = _in_ptr(bias)
        cdef float *out2_p = _out_ptr(out2)
        cdef const float *mask_p = _in_ptr(mask)
        cdef size_t need = pt_tile_scratch_bytes(&self.plan, num_threads)
        cdef void *scratch = malloc(need) if need else NULL
        if need and scratch == NULL:
            raise MemoryError()
        cdef pt_ctx ctx = make_ctx(num_threads, scratch, need)
        cdef void *region = <void *>(&l1[0] + l1_offset)
        cdef pt_status st
        cdef uint64_t moved
        cdef size_t budget = self.budget
        with nogil:
            pt_dma_reset_bytes_issued()
            if self.which == 0:
                st = pt_tile_fwd(&ctx, &self.plan, region, budget, a_p, b_p, bias_p, &out[0])
            elif self.which == 1:
                st = pt_tile_bwd_input_act(&ctx, &self.plan, region, budget, a_p, b_p, mask_p, &out[0])
            else:
                st = pt_tile_bwd_weight(&ctx, &self.plan, region, budget, a_p, b_p, &out[0], out2_p)
            moved = pt_dma_bytes_issued()
        free(scratch)
        check_status(st, "pt_tile step")
        return moved
