"""INT8 frozen stage: kernels bit-exact against an int64 numpy simulation of
the same arithmetic (random odd shapes, stride 2, TF SAME padding, every
thread count and instruction-set path), the quantized MobileNet against FP32,
and bad input."""
from __future__ import annotations

import numpy as np
import pytest

import pulptrain
from pulptrain import _quant
from pulptrain._validate import conv_padding
from pulptrain.quant import quantize_frozen_stage, quantize_multiplier



def _runnable_isas():
    names = []
    for name in ("generic", "avx-vnni", "avx512-vnni"):
        try:
            _quant.select_isa(name)
            names.append(name)
        except pulptrain.StatusError:
            pass
    _quant.select_isa("auto")
    return names


ISAS = _runnable_isas()


@pytest.fixture(autouse=True)
def _restore_isa():
    yield
    _quant.select_isa("auto")


def simulate(kind, x, w, bias, mult, shift, act_max, stride, pads, pixel_input):
    """int64 numpy model of pt_qkernels.h: kind 0 conv [Cout,KH,KW,Cin],
    1 depthwise [KH,KW,C], 2 pointwise [Cout,Cin]."""
    v = x.astype(np.int64)
    if pixel_input:
        v = 2 * v - 255
    if kind == 2:
        acc = v @ w.astype(np.int64).T + bias
    else:
        top, bottom, left, right = pads
        v = np.pad(v, ((0, 0), (top, bottom), (left, right), (0, 0)))
        kh, kw = (w.shape[1:3] if kind == 0 else w.shape[:2])
        n, hp, wp, c = v.shape
        oh, ow = (hp - kh) // stride + 1, (wp - kw) // stride + 1
        cout = w.shape[0] if kind == 0 else c
        acc = np.broadcast_to(bias.astype(np.int64), (n, oh, ow, cout)).copy()
        for ky in range(kh):
            for kx in range(kw):
                tap = v[:, ky:ky + stride * (oh - 1) + 1:stride, kx:kx + stride * (ow - 1) + 1:stride]
                if kind == 0:
                    acc += tap @ w[:, ky, kx, :].astype(np.int64).T
                else:
                    acc += tap * w[ky, kx].astype(np.int64)
    assert np.abs(acc).max() < 2**31
    prod = acc * mult.astype(np.int64)
    out = (prod + (np.int64(1) << (shift.astype(np.int64) - 1))) >> shift.astype(np.int64)
    return np.clip(out, 0, act_max).astype(np.uint8)


def random_layer(rng, kind):
    n = int(rng.integers(1, 4))
    h, w = int(rng.integers(1, 14)), int(rng.integers(1, 14))
    k = 1 if kind == 2 else int(rng.choice([1, 2, 3, 3]))
    stride = 1 if kind == 2 else int(rng.integers(1, 3))
    cin = int(rng.integers(1, 6)) if kind == 0 else int(rng.integers(1, 140))
    cout = cin if kind == 1 else int(rng.integers(1, 70))
    x = rng.integers(0, 256, (n, h, w, cin), dtype=np.uint8)
    x[rng.random(x.shape) < 0.3] = 0
    wshape = {0: (cout, k, k, cin), 1: (k, k, cin), 2: (cout, cin)}[kind]
    weight = rng.integers(-127, 128, wshape).astype(np.int8)
    bias = rng.integers(-20000, 20000, cout).astype(np.int32)
    real = rng.uniform(1e-4, 5e-2, cout) / (k * k * (1 if kind == 1 else cin))
    mult, shift = quantize_multiplier(real)
    pads = conv_padding("same", (h, w), (k, k), (stride, stride)) if kind != 2 else (0, 0, 0, 0)
    return dict(x=x, w=weight, bias=bias, mult=mult, shift=shift, act_max=int(rng.integers(1, 256)),
                stride=stride, pads=pads, k=k, cout=cout, pixel_input=kind == 0 and bool(rng.integers(2)))


def run_kernel(kind, L, threads, ref):
    n, h, w, c = L["x"].shape
    oh = (h + L["pads"][0] + L["pads"][1] - L["k"]) // L["stride"] + 1
    ow = (w + L["pads"][2] + L["pads"][3] - L["k"]) // L["stride"] + 1
    y = np.full((n, oh, ow, L["cout"]), 0xAB, np.uint8)
    weights = L["w"].reshape(-1)
    if kind == 2 and not ref:
        weights = _quant.pointwise_pack(weights, c, L["cout"])
    _quant.conv_forward(kind, L["x"].reshape(-1), (n, h, w, c), L["cout"], (L["k"], L["k"]),
                        (L["stride"], L["stride"]), L["pads"], weights, L["bias"], L["mult"], L["shift"],
                        L["act_max"], L["pixel_input"], y.reshape(-1), threads, ref)
    return y


@pytest.mark.parametrize("kind", [0, 1, 2], ids=["conv", "depthwise", "pointwise"])
def test_kernels_bit_exact_against_int64_simulation(rng, kind):
    for _ in range(8):
        L = random_layer(rng, kind)
        want = simulate(kind, L["x"], L["w"], L["bias"], L["mult"], L["shift"], L["act_max"],
                        L["stride"], L["pads"], L["pixel_input"])
        assert np.array_equal(run_kernel(kind, L, 1, True), want), "reference twin"
        for isa in ISAS:
            _quant.select_isa(isa)
            for threads in (1, 2, 3):
                got = run_kernel(kind, L, threads, False)
                assert np.array_equal(got, want), (isa, threads, L["x"].shape, L["cout"], L["k"], L["stride"])


def test_quantize_multiplier_represents_the_factor(rng):
    real = np.exp(rng.uniform(np.log(1e-9), np.log(0.9), 500))
    mult, shift = quantize_multiplier(real)
    assert (mult >= 2**30).all() and (shift >= 1).all() and (shift <= 62).all()
    np.testing.assert_allclose(mult / 2.0**shift.astype(np.float64), real, rtol=2**-30)
    with pytest.raises(ValueError):
        quantize_multiplier(np.array([0.0]))


def test_kernel_status_errors_are_exceptions():
    x = np.zeros(16, np.uint8)
    y = np.zeros(16, np.uint8)
    w = np.zeros(9 * 4, np.int8)
    ones = np.ones(4, np.int32)
    with pytest.raises(pulptrain.StatusError, match="pt_q_depthwise_fwd"):
        _quant.conv_forward(1, x, (1, 2, 2, 4), 4, (3, 3), (1, 1), (1, 1, 1, 1), w, ones,
                            ones, ones * 31, 255, False, y, 2)          # multiplier below 2^30


# ------------------------------------------------------------ the quantized MobileNet
@pytest.fixture(scope="module")
def model_and_data():
    from pulptrain.models import mobilenet_v1
    from pulptrain.models.photos import labelled_photos, photo_pool
    frozen, head = mobilenet_v1("conv5_4/dw", 128)
    calibration = photo_pool(128, 16, seed=1)
    _, photos = labelled_photos(128)
    return frozen, head, quantize_frozen_stage(frozen, calibration), photos


def _cosine(a, b):
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_int8_stage_tracks_fp32_and_keeps_the_classes(model_and_data):
    frozen, head, int8, photos = model_and_data
    codes, scale, zero_point = int8.forward_codes(photos)
    assert codes.dtype == np.uint8 and codes.shape == (4, 8, 8, 512) and zero_point == 0
    latents = int8.forward(photos)
    np.testing.assert_array_equal(latents, codes.astype(np.float32) * np.float32(scale))
    float_latents = frozen(photos)
    assert _cosine(latents, float_latents).min() > 0.99
    assert np.array_equal(head(latents).argmax(1), head(float_latents).argmax(1))


def test_int8_stage_is_deterministic_and_matches_reference_twins(model_and_data):
    _, _, int8, photos = model_and_data
    want, _, _ = int8.forward_codes(photos[:2], ref=True)
    for isa in ISAS:
        _quant.select_isa(isa)
        for threads in (1, 2, 3):
            pulptrain.set_num_threads(threads)
            got, _, _ = int8.forward_codes(photos[:2])
            assert np.array_equal(got, want), (isa, threads)
    floats = int8.forward_codes(photos[:2].astype(np.float32) / np.float32(255.0))[0]
    assert np.array_equal(floats, want)


def test_int8_layers_bit_exact_against_simulation(model_and_data):
    _, _, int8, photos = model_and_data
    x = photos[:1]
    for layer in int8.layers[:6]:
        kind = {"conv": 0, "depthwise": 1, "pointwise": 2}[layer.spec.kind]
        k = 1 if kind == 2 else 3
        pads = conv_padding("same", x.shape[1:3], (k, k), (layer.spec.stride,) * 2) if k > 1 else (0,) * 4
        want = simulate(kind, x, layer.weight, layer.bias, layer.multiplier, layer.shift, layer.act_max,
                        layer.spec.stride, pads, kind == 0)
        x = int8.run_layer(layer, x)
        assert np.array_equal(x, want), layer.spec.name


def test_bad_quantization_input(model_and_data):
    frozen, _, int8, photos = model_and_data
    with pytest.raises(ValueError, match="calibration_images"):
        quantize_frozen_stage(frozen, None)
    with pytest.raises(ValueError, match="calibration_images"):
        quantize_frozen_stage(frozen, np.zeros((0, 128, 128, 3), np.uint8))
    with pytest.raises(ValueError, match=r"\(N, 128, 128, 3\)"):
        quantize_frozen_stage(frozen, np.zeros((2, 64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="percentile"):
        quantize_frozen_stage(frozen, photos, percentile=10.0)
    with pytest.raises(TypeError, match="FloatFrozenStage"):
        quantize_frozen_stage(int8, photos)
    with pytest.raises(ValueError, match=r"\(N, 128, 128, 3\)"):
        int8.forward_codes(np.zeros((1, 96, 96, 3), np.uint8))
    with pytest.raises(TypeError):
        int8.forward([[0]])
