"""pulptrain.tile: the planner's reports and the tiled executor, which must be
bitwise equal to the untiled kernels (pulptrain.ops) for every supported
layer kind and step, from the smallest budget that fits to everything-fits,
without writing outside its L1 budget (canary-fenced by tile.run)."""
import dataclasses

import numpy as np
import pytest

from pulptrain import ops, tile
from pulptrain.errors import StatusError

GEMM_LAYERS = [
    tile.Layer.linear(37, 45, 29, name="linear odd"),
    tile.Layer.linear(70, 530, 17, name="linear K>KC"),
    tile.Layer.linear(3, 11, 530, bias=False, name="linear wide, no bias"),
    tile.Layer.pointwise(3, 5, 7, 19, 13, name="pointwise odd"),
    tile.Layer.pointwise(2, 23, 12, 6, 10, bias=False, name="pointwise 552 pixels"),
]

DEPTHWISE_LAYERS = [
    tile.Layer.depthwise(2, 7, 9, 20, 3, 1, 1, name="dw k3 s1 p1"),
    tile.Layer.depthwise(3, 8, 8, 19, 3, 2, "same", name="dw k3 s2 same"),
    tile.Layer.depthwise(2, 8, 7, 5, 3, 2, 0, bias=False, name="dw k3 s2 valid"),
    tile.Layer.depthwise(2, 6, 5, 3, 2, 3, (2, 0, 1, 1), name="dw stride > kernel"),
]

ACTIVATION_LAYERS = [    # the forward applies it to each finished tile in L1
    tile.Layer.pointwise(3, 5, 7, 19, 13, activation="relu6", name="pointwise relu6"),
    tile.Layer.linear(70, 530, 17, activation="relu", name="linear K>KC relu"),
    tile.Layer.depthwise(3, 8, 8, 19, 3, 2, "same", activation="relu6", name="dw s2 same relu6"),
    tile.Layer.depthwise(4, 1, 2, 9, 3, 3, (3, 0, 3, 2), activation="relu6", name="dw padding-only windows relu6"),
    tile.Layer.conv2d(3, 9, 7, 3, 10, 3, 2, "same", activation="relu6", name="conv relu6"),
    # grad_input through the activation that made x, masked in L1
    tile.Layer("linear", 3, 1, 1, 11, 530, bias=False, input_activation="relu6", name="linear input relu6"),
    tile.Layer("pointwise", 2, 23, 12, 6, 10, activation="relu", input_activation="relu",
               name="pointwise relu both"),
    tile.Layer("depthwise", 2, 7, 9, 20, 20, 3, 1, 1, input_activation="relu6", name="dw input relu6"),
    tile.Layer("depthwise", 2, 8, 7, 5, 5, 3, 2, 0, input_activation="relu6", name="dw s2 valid input relu6"),
]

AFFINE_LAYERS = [
    tile.Layer.channel_affine(3, 5, 7, 21, name="affine 3x5x7x21"),
    tile.Layer.channel_affine(70, 1, 1, 33, name="affine [N, C]"),
]

POOL_LAYERS = [
    tile.Layer.avg_pool(2, 7, 9, 20, 2, name="avg_pool k2 s2, last row in no window"),
    tile.Layer.avg_pool(3, 8, 8, 19, 3, 1, name="avg_pool k3 s1 overlapping"),
    tile.Layer.avg_pool(2, 6, 5, 3, 2, 3, name="avg_pool stride > kernel"),
    tile.Layer.global_avg_pool(3, 5, 3, 37, name="global_avg_pool 5x3"),
    tile.Layer.global_avg_pool(6, 4, 4, 1024, name="global_avg_pool pool6"),
    # grad_input through the activation that made x (pool6 after conv6/sep's ReLU6)
    dataclasses.replace(tile.Layer.global_avg_pool(5, 4, 4, 70), input_activation="relu6",
                        name="global_avg_pool input relu6"),
    dataclasses.replace(tile.Layer.avg_pool(3, 8, 8, 19, 3, 1), input_activation="relu",
                        name="avg_pool k3 s1 input relu"),
]

CONV2D_LAYERS = [
    tile.Layer.conv2d(3, 9, 7, 3, 10, 3, 2, "same", name="conv k3 s2 same (MobileNet conv1)"),
    tile.Layer.conv2d(2, 6, 5, 4, 6, 3, 1, 1, bias=False, name="conv k3 s1 p1"),
    tile.Layer.conv2d(3, 24, 24, 2, 5, 3, 1, 1, name="conv 1728 pixels: K tiles across images"),
    tile.Layer.conv2d(2, 7, 8, 3, 5, 2, 3, (2, 0, 1, 1), name="conv pads >= kernel"),
]


def _arrays(layer, rng):
    s = layer.shapes()
    make = lambda shape: rng.uniform(-1, 1, shape).astype(np.float32)  # noqa: E731
    w = make(s["w"]) if "w" in s else None
    return make(s["x"]), w, (make(s["b"]) if layer.bias else None), make(s["y"])


def _untiled(layer, x, w, b, gy):
    if layer.kind == "linear":
        y = ops.linear_forward(x, w, b)
        gx, gw, gb = ops.linear_backward(x, w, gy)
    elif layer.kind == "pointwise":
        y = ops.pointwise_conv2d_forward(x, w, b)
        gx, gw, gb = ops.pointwise_conv2d_backward(x, w, gy)
    elif layer.kind == "avg_pool":
        y = ops.avg_pool2d_forward(x, layer.k, layer.stride)
        gx = ops.avg_pool2d_backward(x.shape, gy, layer.k, layer.stride)
    elif layer.kind == "global_avg_pool":
        y, gx = ops.global_avg_pool_forward(x), ops.global_avg_pool_backward(x.shape, gy)
    elif layer.kind == "channel_affine":
        y = ops.channel_affine_forward(x, w, b)
        gx, gw, gb = ops.channel_affine_backward(x, w, gy)
    elif layer.kind == "conv2d":
        y = ops.conv2d_forward(x, w, b, layer.stride, layer.pads)
        gx, gw, gb = ops.conv2d_backward(x, w, gy, layer.stride, layer.pads)
    else:
        y = ops.depthwise_conv2d_forward(x, w, b, layer.stride, layer.pads)
        gx, gw, gb = ops.depthwise_conv2d_backward(x, w, gy, layer.stride, layer.pads)
    if layer.activation is not None:     # a pass of its own: bitwise the fused kernels
        y = (ops.relu6_forward if layer.activation == "relu6" else ops.relu_forward)(y)
    if layer.input_activation is not None:
        gx = (ops.relu6_backward if layer.input_activation == "relu6" else ops.relu_backward)(x, gx)
    if layer.kind in ("avg_pool", "global_avg_pool"):
        return {"forward": y, "grad_input": gx}
    return {"forward": y, "grad_input": gx, "grad_weight": (gw, gb if layer.bias else None)}


def _budgets(layer, step):
    lo = tile.min_l1_bytes(layer, step)
    hi = tile.plan(layer, step, 1 << 30).l1_bytes
    budgets, b = [], lo
    while b < hi:
        budgets.append(b)
        b = b * 2 + 52  # odd steps, not powers of two
    return budgets + [hi]


def _bitwise_equal(a, b, what):
    assert a.shape == b.shape, what
    diff = np.flatnonzero(a.view(np.uint32) != b.view(np.uint32))
    assert diff.size == 0, f"{what}: {diff.size} elements differ, first at {diff[0]}: " \
                           f"{a.reshape(-1)[diff[0]]!r} vs {b.reshape(-1)[diff[0]]!r}"


def _inputs(layer, x, w, b, gy):
    if layer.kind in ("avg_pool", "global_avg_pool"):
        return {"forward": (x,), "grad_input": (gy, x) if layer.input_activation is not None else (gy,)}
    grad_input = (w, gy, x) if layer.input_activation is not None else (w, gy)
    return {"forward": (x, w, b), "grad_input": grad_input, "grad_weight": (x, gy)}


def _check_layer(layer, rng):
    x, w, b, gy = _arrays(layer, rng)
    want = _untiled(layer, x, w, b, gy)
    inputs = _inputs(layer, x, w, b, gy)
    for step in layer.steps:
        for budget in _budgets(layer, step):
            stats = {}
            got = tile.run(layer, step, budget, *inputs[step], stats=stats)
            p = stats["plan"]
            assert p.l1_bytes <= budget
            assert stats["bytes_moved"] == p.bytes_moved, (layer, step, budget)
            what = f"{layer.name} {step} budget {budget} tile {p.tile}"
            if step == "grad_weight":
                _bitwise_equal(got[0], want[step][0], what + " grad_w")
                if layer.bias:
                    _bitwise_equal(got[1], want[step][1], what + " grad_b")
                else:
                    assert got[1] is None
            else:
                _bitwise_equal(got, want[step], what)


@pytest.mark.parametrize("layer", GEMM_LAYERS + DEPTHWISE_LAYERS + CONV2D_LAYERS + ACTIVATION_LAYERS + AFFINE_LAYERS
                         + POOL_LAYERS, ids=lambda l: f"{l.kind}: {l.name}")
def test_layers_bitwise_equal_untiled(layer, rng):
    _check_layer(layer, rng)


def test_activation_is_checked():
    with pytest.raises(ValueError, match="activation must be one of"):
        tile.Layer.pointwise(1, 2, 2, 3, 4, activation="gelu")
    with pytest.raises(ValueError, match="input_activation must be one of"):
        tile.Layer("pointwise", 1, 2, 2, 3, 4, input_activation="tanh")
    with pytest.raises(ValueError, match="takes no input_activation"):
        tile.Layer("conv2d", 1, 4, 4, 3, 4, 3, 1, 1, input_activation="relu6")
    layer = tile.Layer("pointwise", 1, 2, 2, 3, 4, input_activation="relu6")
    with pytest.raises(TypeError, match="grad_input takes 3 arrays"):
        tile.run(layer, "grad_input", 1 << 16, np.ones((4, 3), np.float32), np.ones((1, 2, 2, 4), np.float32))
    for layer in (lambda: tile.Layer("avg_pool", 1, 4, 4, 3, 3, 2, 2, 0, False, "relu"),
                  lambda: tile.Layer("channel_affine", 1, 4, 4, 3, 3, activation="relu6")):
        with pytest.raises(ValueError, match="takes no activation"):
            layer()


def test_pools_have_no_grad_weight_step():
    for layer in POOL_LAYERS[:1] + POOL_LAYERS[3:4]:
        assert layer.steps == ("forward", "grad_input")
        assert [p.step for p in tile.training_step(layer, 4096)] == ["forward", "grad_input"]
        for call in (lambda: tile.plan(layer, "grad_weight", 4096), lambda: tile.min_l1_bytes(layer, "grad_weight")):
            with pytest.raises(ValueError, match="no weights, so no grad_weight step"):
                call()
    with pytest.raises(ValueError, match="no bias and no padding"):
        tile.Layer("avg_pool", 1, 4, 4, 3, 3, 2, 2, 1, False)
    with pytest.raises(ValueError, match="cout == cin"):
        tile.Layer("avg_pool", 1, 4, 4, 3, 5, 2, 2, 0, False)


def test_conv2d_report():
    """MobileNetV1's conv1 at batch 128 in VEGA's L1: the im2col is built in
    L1, so forward and grad_weight move within 5 % of their simple bound
    (halo rows; the filters once per pixel tile). grad_input's tiles of input
    rows fetch the grad_y rows that reach them, one more than their share at
    stride 2 (1.24x at 6 rows)."""
    layer = tile.Layer.conv2d(128, 128, 128, 3, 32, 3, 2, "same", name="conv1")
    for step, most in (("forward", 1.05), ("grad_input", 1.3), ("grad_weight", 1.05)):
        p = tile.plan(layer, step, tile.VEGA_L1_BYTES)
        assert p.l1_bytes <= tile.VEGA_L1_BYTES
        assert p.macs == 128 * 64 * 64 * 32 * 27
        assert p.lower_bound_bytes <= p.bytes_moved <= most * p.lower_bound_bytes, (step, p.ratio_to_bound)
    fwd = tile.plan(layer, "forward", tile.VEGA_L1_BYTES)
    assert fwd.tile["gemm"] == (128 * 64 * 64, 32, 27) and fwd.tile["k"] == 27
    assert tile.plan(layer, "grad_weight", tile.VEGA_L1_BYTES).tile["order"] == "kmn"
    assert set(tile.plan(layer, "grad_input", tile.VEGA_L1_BYTES).tile) == {"images", "rows", "channels", "columns"}
    big = tile.Layer.conv2d(1, 4, 2048, 4, 512, 3, 1, 1)      # one row of grad_y alone: 4 MiB
    with pytest.raises(StatusError, match="budget"):
        tile.plan(big, "grad_input", tile.VEGA_L1_BYTES)
    assert tile.min_l1_bytes(big, "grad_input") > tile.VEGA_L1_BYTES


def test_layer_too_large_for_the_budget_names_what_it_needs(rng):
    x = rng.uniform(-1, 1, (2, 6, 5, 24)).astype(np.float32)
    w = rng.uniform(-1, 1, (10, 3, 3, 24)).astype(np.float32)
    gy = rng.uniform(-1, 1, (2, 3, 3, 10)).astype(np.float32)
    need = tile.min_l1_bytes(tile.Layer.conv2d(2, 6, 5, 24, 10, 3, 2, "same"), "grad_weight")
    with tile.l1_budget(need - 1), pytest.raises(StatusError, match=f"grad_weight does not fit .* needs {need} bytes"):
        tile.conv2d_backward(x, w, gy, 2, "same", need_grad_x=False)
    with tile.l1_budget(need):
        tile.conv2d_backward(x, w, gy, 2, "same", need_grad_x=False)


def test_thread_count_does_not_change_tiled_results(rng):
    import pulptrain
    layer = tile.Layer.pointwise(2, 9, 7, 33, 20)
    x, w, b, gy = _arrays(layer, rng)
    budget = 3 * tile.min_l1_bytes(layer, "grad_weight")
    pulptrain.set_num_threads(1)
    one = tile.run(layer, "grad_weight", budget, x, gy)
    pulptrain.set_num_threads(3)
    three = tile.run(layer, "grad_weight", budget, x, gy)
    _bitwise_equal(one[0], three[0], "grad_w 1 vs 3 threads")


def test_budget_too_small_is_a_clear_error():
    layer = tile.Layer.pointwise(2, 4, 4, 300, 8)
    lo = tile.min_l1_bytes(layer, "forward")
    tile.plan(layer, "forward", lo)
    with pytest.raises(StatusError, match="budget"):
        tile.plan(layer, "forward", lo - 1)


def test_report_fields_and_bounds():
    layer = tile.Layer.pointwise(128, 8, 8, 512, 512, name="pw")
    p = tile.plan(layer, "forward", 128 * 1024)
    assert p.l1_bytes <= 128 * 1024
    assert p.tile["gemm"] == (8192, 512, 512)
    assert p.lower_bound_bytes == 4 * (8192 * 512 * 2 + 512 * 512 + 512)
    assert p.lower_bound_bytes <= p.io_lower_bound_bytes <= p.bytes_moved
    assert p.macs == 8192 * 512 * 512
    assert p.arithmetic_intensity == pytest.approx(p.macs / p.bytes_moved)
    d = p.to_dict()
    assert d["bytes_moved"] == d["bytes_in"] + d["bytes_out"] and d["layer"] == "pw"
    # everything fits: one tile, every operand moved once
    big = tile.plan(layer, "forward", 1 << 30)
    assert big.num_tiles == 1 and big.bytes_moved == big.lower_bound_bytes


def test_more_budget_never_moves_more_bytes():
    layer = tile.Layer.linear(200, 300, 100)
    for step in tile.STEPS:
        moved = [tile.plan(layer, step, kib * 1024).bytes_moved for kib in (8, 16, 32, 64, 128, 512)]
        assert moved == sorted(moved, reverse=True), (step, moved)


def test_bad_arguments(rng):
    with pytest.raises(ValueError, match="kind"):
        tile.Layer("conv3d", 1, 1, 1, 1, 1)
    with pytest.raises(ValueError, match="step"):
        tile.plan(tile.Layer.linear(2, 3, 4), "backward", 4096)
    with pytest.raises(ValueError, match="l1_bytes"):
        tile.plan(tile.Layer.linear(2, 3, 4), "forward", 0)
    layer = tile.Layer.linear(2, 3, 4)
    with pytest.raises(ValueError, match="w has shape"):
        tile.run(layer, "forward", 4096, np.zeros((2, 3), np.float32), np.zeros((3, 3), np.float32), None)
    with pytest.raises(TypeError):
        tile.run(layer, "forward", 4096, np.zeros((2, 3)), np.zeros((4, 3), np.float32), None)
    with pytest.raises(TypeError, match="takes 2 arrays"):
        tile.run(layer, "grad_input", 4096, np.zeros((4, 3), np.float32))


@pytest.mark.parametrize("budget", [6000, 64 * 1024, None])
def test_budget_aware_layer_functions_match_ops(budget, rng):
    """With an L1 budget set, the tile module's layer functions run tiled and
    stay bitwise equal to pulptrain.ops; without one they are ops."""
    x4 = rng.uniform(-1, 1, (2, 6, 5, 24)).astype(np.float32)
    wp = rng.uniform(-1, 1, (10, 24)).astype(np.float32)
    wd = rng.uniform(-1, 1, (3, 3, 24)).astype(np.float32)
    x2 = rng.uniform(-1, 1, (9, 24)).astype(np.float32)
    wc = rng.uniform(-1, 1, (10, 3, 3, 24)).astype(np.float32)
    b10, b24 = (rng.uniform(-1, 1, n).astype(np.float32) for n in (10, 24))
    gy_c = rng.uniform(-1, 1, (2, 3, 3, 10)).astype(np.float32)
    cases = [] if budget is not None and budget < 64 * 1024 else [   # conv2d grad-input needs 19 KB here
        (tile.conv2d_forward, ops.conv2d_forward, (x4, wc, b10, 2, "same"), {}),
        (tile.conv2d_forward, ops.conv2d_forward, (x4, wc, None, 1, 1), {}),
        (tile.conv2d_backward, ops.conv2d_backward, (x4, wc, gy_c, 2, "same"), {}),
        (tile.conv2d_backward, ops.conv2d_backward, (x4, wc, gy_c, 2, "same"), {"need_grad_x": False}),
    ]
    cases += [
        (tile.pointwise_conv2d_forward, ops.pointwise_conv2d_forward, (x4, wp, b10), {}),
        (tile.linear_forward, ops.linear_forward, (x2, wp, b10), {}),
        (tile.depthwise_conv2d_forward, ops.depthwise_conv2d_forward, (x4, wd, b24, 2, "same"), {}),
    ]
    gy_p = rng.uniform(-1, 1, (2, 6, 5, 10)).astype(np.float32)
    gy_l = rng.uniform(-1, 1, (9, 10)).astype(np.float32)
    gy_d = rng.uniform(-1, 1, (2, 3, 3, 24)).astype(np.float32)
    cases += [
        (tile.pointwise_conv2d_backward, ops.pointwise_conv2d_backward, (x4, wp, gy_p), {}),
        (tile.linear_backward, ops.linear_backward, (x2, wp, gy_l), {"need_grad_x": False}),
        (tile.depthwise_conv2d_backward, ops.depthwise_conv2d_backward, (x4, wd, gy_d, 2, "same"), {}),
        (tile.avg_pool2d_forward, ops.avg_pool2d_forward, (x4, 2), {}),
        (tile.avg_pool2d_forward, ops.avg_pool2d_forward, (x4, 3, 1), {}),
        (tile.avg_pool2d_backward, ops.avg_pool2d_backward, (x4.shape, gy_d[:, :, :2], 2), {}),
        (tile.avg_pool2d_backward, ops.avg_pool2d_backward, (x4, x4[:, :4, :3], 3, 1), {}),
        (tile.global_avg_pool_forward, ops.global_avg_pool_forward, (x4,), {}),
        (tile.global_avg_pool_backward, ops.global_avg_pool_backward, (x4.shape, x2[:2]), {}),
        (tile.channel_affine_forward, ops.channel_affine_forward, (x4, b24, b24[::-1]), {}),
        (tile.channel_affine_forward, ops.channel_affine_forward, (x2, b24, b24), {}),
        (tile.channel_affine_backward, ops.channel_affine_backward, (x4, b24, x4[::-1]), {}),
        (tile.channel_affine_backward, ops.channel_affine_backward, (x2, b24, x2), {"need_grad_x": False}),
    ]
    with tile.l1_budget(budget):
        assert tile.get_l1_budget() == budget
        for tiled_fn, ops_fn, args, kw in cases:
            got, want = tiled_fn(*args, **kw), ops_fn(*args, **kw)
            for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
                if w is None:
                    assert g is None
                else:
                    _bitwise_equal(g, w, tiled_fn.__name__)
    assert tile.get_l1_budget() is None


def _random_layer(rng):
    kind = tile.KINDS[rng.integers(len(tile.KINDS))]
    bias = bool(rng.integers(2))
    if kind == "linear":
        return tile.Layer.linear(int(rng.integers(1, 300)), int(rng.integers(1, 600)), int(rng.integers(1, 70)),
                                 bias=bias, name="random linear")
    n, h, w = (int(v) for v in rng.integers(1, [4, 12, 12]))
    if kind == "pointwise":
        return tile.Layer.pointwise(n, h, w, int(rng.integers(1, 40)), int(rng.integers(1, 40)), bias=bias,
                                    name="random pointwise")
    c = int(rng.integers(1, 40))
    if kind == "channel_affine":
        return tile.Layer.channel_affine(n, h, w, c, name="random channel_affine")
    if kind == "global_avg_pool":
        return tile.Layer.global_avg_pool(n, h, w, c, name="random global_avg_pool")
    k, stride = int(rng.integers(1, 5)), int(rng.integers(1, 4))
    if kind == "avg_pool":
        k = min(k, h, w)
        return tile.Layer.avg_pool(n, h, w, c, k, stride, name="random avg_pool")
    pads = tuple(int(p) for p in rng.integers(0, k + 1, 4))   # up to k: windows that read only padding
    if h + pads[0] + pads[1] < k or w + pads[2] + pads[3] < k:
        pads = (k, k, k, k)
    if kind == "conv2d":
        return tile.Layer.conv2d(n, h, w, int(rng.integers(1, 12)), int(rng.integers(1, 20)), k, stride, pads,
                                 bias=bias, name="random conv2d")
    return tile.Layer.depthwise(n, h, w, int(rng.integers(1, 40)), k, stride, pads, bias=bias,
                                name="random depthwise")


def test_random_layers_and_budgets_bitwise_equal_untiled(rng):
    """Random odd shapes, strides, paddings, activations, input activations
    and budgets (seeded; the seed is printed on failure)."""
    import dataclasses
    for _ in range(24):
        layer = _random_layer(rng)
        acts = (None, "relu", "relu6")
        if layer.kind in ("linear", "pointwise", "depthwise", "conv2d"):
            layer = dataclasses.replace(layer, activation=acts[rng.integers(3)])
        if layer.kind not in ("conv2d", "channel_affine"):
            layer = dataclasses.replace(layer, input_activation=acts[rng.integers(3)])
        x, w, b, gy = _arrays(layer, rng)
        want = _untiled(layer, x, w, b, gy)
        inputs = _inputs(layer, x, w, b, gy)
        for step in layer.steps:
            lo = tile.min_l1_bytes(layer, step)
            hi = tile.plan(layer, step, 1 << 30).l1_bytes
            budget = int(lo + (hi - lo) * rng.uniform() ** 3)
            stats = {}
            got = tile.run(layer, step, budget, *inputs[step], stats=stats)
            assert stats["bytes_moved"] == stats["plan"].bytes_moved
            what = f"{layer} {step} budget {budget} tile {stats['plan'].tile}"
            if step == "grad_weight":
                _bitwise_equal(got[0], want[step][0], what)
                if layer.bias:
                    _bitwise_equal(got[1], want[step][1], what)
            else:
                _bitwise_equal(got, want[step], what)


@pytest.mark.parametrize("l1", [tile.PULP_OPEN_L1_BYTES, tile.VEGA_L1_BYTES])
def test_mobilenet_adaptive_stage_plans_fit(l1):
    """Every layer and step of the adaptive stage at batch 128 has a plan
    within the pulp-open and VEGA L1 sizes, moving at least the simple bound
    and at most 3x the communication bound (the K tiles, PT_GEMM_KC long,
    cost the rest)."""
    import importlib.util
    import os
    path = os.path.join(os.path.dirname(__file__), os.pardir, "bench", "bench_tile.py")
    spec = importlib.util.spec_from_file_location("bench_tile", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    for layer in bench.adaptive_stage(128):
        for p in tile.training_step(layer, l1):
            assert p.l1_bytes <= l1
            assert p.lower_bound_bytes <= p.bytes_moved <= 3 * p.io_lower_bound_bytes, (layer.name, p.step)


@pytest.mark.parametrize("activation", ["relu6", "relu"])
def test_fused_activation_kwargs_match_ops(activation, rng):
    """With a budget, ``activation`` runs inside the tiled forward (on each
    finished tile) and ``input_activation`` as a pass after the tiled
    grad-input, bitwise the fused kernels."""
    x = rng.uniform(-2, 8, (2, 6, 5, 24)).astype(np.float32)
    wp = rng.uniform(-1, 1, (10, 24)).astype(np.float32)
    wd = rng.uniform(-1, 1, (3, 3, 24)).astype(np.float32)
    b10, b24 = (rng.uniform(-1, 1, n).astype(np.float32) for n in (10, 24))
    gy_p = rng.uniform(-1, 1, (2, 6, 5, 10)).astype(np.float32)
    gy_d = rng.uniform(-1, 1, (2, 6, 5, 24)).astype(np.float32)
    with tile.l1_budget(8 * 1024):
        pairs = [
            (tile.pointwise_conv2d_forward(x, wp, b10, activation=activation),
             ops.pointwise_conv2d_forward(x, wp, b10, activation=activation)),
            (tile.depthwise_conv2d_forward(x, wd, b24, 1, 1, activation=activation),
             ops.depthwise_conv2d_forward(x, wd, b24, 1, 1, activation=activation)),
            (tile.pointwise_conv2d_backward(x, wp, gy_p, input_activation=activation)[0],
             ops.pointwise_conv2d_backward(x, wp, gy_p, input_activation=activation)[0]),
            (tile.depthwise_conv2d_backward(x, wd, gy_d, 1, 1, input_activation=activation)[0],
             ops.depthwise_conv2d_backward(x, wd, gy_d, 1, 1, input_activation=activation)[0]),
            (tile.global_avg_pool_backward(x, b24[None].repeat(2, 0), input_activation=activation),
             ops.global_avg_pool_backward(x, b24[None].repeat(2, 0), input_activation=activation)),
        ]
    for i, (got, want) in enumerate(pairs):
        _bitwise_equal(got, want, f"case {i} {activation}")


def _small_model(seed):
    from pulptrain import nn
    nn.manual_seed(seed)
    return nn.Sequential(
        ("conv1", nn.Conv2d(3, 16, 3, 2, "same")),
        ("relu1", nn.ReLU6()),
        ("dw1", nn.DepthwiseConv2d(16, 3, 1, "same", activation="relu6")),
        ("pw1", nn.PointwiseConv2d(16, 24, activation="relu6")),
        ("avg", nn.AvgPool2d(2, 1)),
        ("dw2", nn.DepthwiseConv2d(24, 3, 2, "same", activation="relu6")),
        ("pw2", nn.PointwiseConv2d(24, 40, activation="relu6")),
        ("pool", nn.GlobalAvgPool()),
        ("bn", nn.ChannelAffine(40, trainable=True)),
        ("fc", nn.Linear(40, 7)),
    )


def _train(model, x, labels, steps=3):
    from pulptrain import nn
    loss_fn, opt = nn.SoftmaxCrossEntropy(), nn.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        losses.append(loss_fn.forward(model.forward(x), labels))
        model.backward(loss_fn.backward())
        opt.step()
    return losses


@pytest.mark.parametrize("dma", tile.DMA_BACKENDS)
@pytest.mark.parametrize("budget", [6 * 1024, 32 * 1024])
def test_nn_model_trains_bitwise_the_same_tiled(budget, dma, rng):
    """A pulptrain.nn model run under an L1 budget (every conv2d, pointwise,
    depthwise, linear and pooling step through the tiled executor) trains bitwise as
    untiled, with either DMA backend."""
    x = rng.uniform(0, 6, (3, 9, 7, 3)).astype(np.float32)    # conv1's steps fit in 6 KB
    labels = rng.integers(0, 7, 3).astype(np.int64)
    plain, tiled = _small_model(3), _small_model(3)
    want = _train(plain, x, labels)
    tile._prepared.clear()
    with tile.l1_budget(budget), tile.dma(dma):
        assert tile.get_dma() == dma
        got = _train(tiled, x, labels)
    assert tile.get_dma() == "memcpy"
    ran = {(layer.kind, step) for layer, step, b in tile._prepared if b == budget}
    assert ran == {(k, s) for k in tile.KINDS for s in tile.STEPS if s != "grad_weight" or "pool" not in k}
    assert got == want
    for (name, p), (_, q) in zip(plain.named_parameters(), tiled.named_parameters()):
        _bitwise_equal(q.data, p.data, name)


def test_dma_backend_names():
    with pytest.raises(ValueError, match="backend must be one of"):
        tile.set_dma("engine")
    tile.set_dma("thread")
    tile.set_dma("thread")                      # already running: nothing to do
    assert tile.get_dma() == "thread"
    tile.set_dma("memcpy")
    assert tile.get_dma() == "memcpy"
