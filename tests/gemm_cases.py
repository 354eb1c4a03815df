"""Shapes and float64 PyTorch references for the GEMM-family kernel tests
(shared by tests/test_ops_gemm.py and bench/gemm_accuracy.py)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from helpers import nchw_to_nhwc, nhwc_to_nchw
from pulptrain._validate import conv_output_hw, conv_padding, pair

# (N, H, W, Cin, Cout, KH, KW, stride, padding): odd sizes, 1x1 kernels and
# 1-pixel maps, stride 2, asymmetric and "same" padding, N = 1 and N > 1,
# channel counts off the vector widths (8, 16) and tile sizes.
CONV_CASES = [
    (1, 5, 5, 3, 4, 3, 3, 1, 0),
    (2, 7, 6, 3, 5, 3, 3, 1, 1),
    (3, 9, 8, 17, 33, 3, 3, 2, (0, 1, 0, 1)),
    (1, 5, 5, 4, 6, 5, 3, (1, 2), (2, 1, 0, 3)),
    (2, 8, 7, 5, 9, 3, 3, 2, "same"),
    (2, 1, 1, 7, 9, 1, 1, 1, 0),
    (2, 1, 1, 3, 4, 3, 3, 1, 1),
    (4, 4, 3, 40, 13, 1, 1, 2, 0),
    (1, 6, 6, 31, 3, 2, 2, 2, "valid"),
    (5, 10, 10, 16, 32, 3, 3, 1, "same"),
]

# (N, H, W, Cin, Cout)
POINTWISE_CASES = [(1, 1, 1, 1, 1), (2, 3, 5, 7, 11), (3, 8, 8, 35, 70), (1, 4, 4, 64, 17), (4, 1, 1, 33, 16)]

# (N, In, Out)
LINEAR_CASES = [(1, 1, 1), (7, 19, 5), (128, 64, 50), (3, 300, 33), (16, 1024, 50)]


def conv_torch(x, w, b, gy, stride, padding):
    """float64 (y, grad_x, grad_w, grad_b) of an NHWC conv via NCHW PyTorch."""
    n, h, wd, c = x.shape
    cout, kh, kw, _ = w.shape
    strides = pair("stride", stride)
    t, bo, l, r = conv_padding(padding, (h, wd), (kh, kw), strides)
    xt = torch.tensor(nhwc_to_nchw(x), dtype=torch.float64, requires_grad=True)
    wt = torch.tensor(nhwc_to_nchw(w), dtype=torch.float64, requires_grad=True)
    bt = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    yt = F.conv2d(F.pad(xt, (l, r, t, bo)), wt, bt, stride=strides)
    yt.backward(torch.tensor(nhwc_to_nchw(gy), dtype=torch.float64))
    return (nchw_to_nhwc(yt.detach().numpy()), nchw_to_nhwc(xt.grad.numpy()),
            nchw_to_nhwc(wt.grad.numpy()), bt.grad.numpy())


def conv_out_shape(case):
    n, h, wd, cin, cout, kh, kw, stride, padding = case
    strides = pair("stride", stride)
    pads = conv_padding(padding, (h, wd), (kh, kw), strides)
    oh, ow = conv_output_hw((h, wd), (kh, kw), strides, pads)
    return (n, oh, ow, cout)


def linear_torch(x, w, b, gy):
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    wt = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    bt = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    yt = F.linear(xt, wt, bt)
    yt.backward(torch.tensor(gy, dtype=torch.float64))
    return yt.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


def conv_data(rng, case):
    n, h, wd, cin, cout, kh, kw, _, _ = case
    x = rng.standard_normal((n, h, wd, cin)).astype(np.float32)
    w = rng.standard_normal((cout, kh, kw, cin)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    gy = rng.standard_normal(conv_out_shape(case)).astype(np.float32)
    return x, w, b, gy


def depths_conv(case):
    """Lengths of the sums behind y, grad_x, grad_w, grad_b."""
    n, h, wd, cin, cout, kh, kw, _, _ = case
    _, oh, ow, _ = conv_out_shape(case)
    return kh * kw * cin, kh * kw * cout, n * oh * ow, n * oh * ow


def tolerance(depth: int) -> tuple[float, float]:
    """(atol, rtol) for float32 sums of `depth` products of standard normals
    against float64: the measured max error is <= 2e-6 * sqrt(depth) for every
    ISA variant, so this leaves a 5x margin."""
    return 1e-5 * float(np.sqrt(depth)), 1e-5
