/* Reference twins of pt_affine_f32.c: one core, one element at a time. */
#include "pulptrain/pt_affine.h"
#include "../elem_common.h"

pt_status pt_channel_affine_f32_fwd_ref(pt_dims in, const float *x, const float *scale,
                                        const float *shift, float *y)
{
    pt_status st = pt_check_dims(in);
    if (st != PT_OK) return st;
    if (!x || !scale || !shift || !y) return PT_ERR_NULL;
    size_t count = pt_dims_count(in);
    for (size_t i = 0; i < count; ++i) y[i] = x[i] * scale[i % (size_t)in.c] + shift[i % (size_t)in.c];
    return PT_OK;
}

pt_status pt_channel_affine_f32_bwd_input_ref(pt_dims in, const float *scale, const float *grad_y,
                                              float *grad_x)
{
    pt_status st = pt_check_dims(in);
    if (st != PT_OK) return st;
    if (!scale || !grad_y || !grad_x) return PT_ERR_NULL;
    size_t count = pt_dims_count(in);
    for (size_t i = 0; i < count; ++i) grad_x[i] = grad_y[i] * scale[i % (size_t)in.c];
    return PT_OK;
}

pt_status pt_channel_affine_f32_bwd_param_ref(pt_dims in, const float *x, const float *grad_y,
                                              float *grad_scale, float *grad_shift)
{
    pt_status st = pt_check_dims(in);
    if (st != PT_OK) return st;
    if (!grad_y || (!grad_scale && !grad_shift) || (grad_scale && !x)) return PT_ERR_NULL;
    const size_t pixels = (size_t)in.h * (size_t)in.w, C = (size_t)in.c;
    for (size_t c = 0; c < C; ++c) {
        float total_scale = 0.0f, total_shift = 0.0f;
        for (int n = 0; n < in.n; ++n) {
            float image_scale = 0.0f, image_shift = 0.0f;
            for (size_t px = 0; px < pixels; ++px) {
                size_t i = ((size_t)n * pixels + px) * C + c;
                if (grad_scale) image_scale += grad_y[i] * x[i];
                image_shift += grad_y[i];
            }
            total_scale = n == 0 ? image_scale : total_scale + image_scale;
            total_shift = n == 0 ? image_shift : total_shift + image_shift;
        }
        if (grad_scale) grad_scale[c] = total_scale;
        if (grad_shift) grad_shift[c] = total_shift;
    }
    return PT_OK;
}
