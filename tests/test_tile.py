"""pulptrain.tile: the planner's reports and the tiled executor, which must be
bitwise equal to the untiled kernels (pulptrain.ops) for every supported
layer kind and step, from the smallest budget that fits to everything-fits,
without writing outside its L1 budget (canary-fenced by tile.run)."""
import numpy as np
import pytest

from pulptrain import ops, tile
from pulptrain.errors import StatusError

GEMM_LAYERS = [
    tile.Layer.linear(37, 45, 29, name="linear odd"),
    tile.Layer.linear(300, 263, 17, name="linear K>KC"),
    tile.Layer.linear(3, 11, 530, bias=False, name="linear wide, no bias"),
    tile.Layer.pointwise(3, 5, 7, 19, 13, name="pointwise odd"),
    tile.Layer.pointwise(2, 17, 9, 6, 10, bias=False, name="pointwise 306 pixels"),
]

DEPTHWISE_LAYERS = [
    tile.Layer.depthwise(2, 7, 9, 20, 3, 1, 1, name="dw k3 s1 p1"),
    tile.Layer.depthwise(3, 8, 8, 19, 3, 2, "same", name="dw k3 s2 same"),
    tile.Layer.depthwise(2, 8, 7, 5, 3, 2, 0, bias=False, name="dw k3 s2 valid"),
    tile.Layer.depthwise(2, 6, 5, 3, 2, 3, (2, 0, 1, 1), name="dw stride > kernel"),
]


def _arrays(layer, rng):
    s = layer.shapes()
    make = lambda shape: rng.uniform(-1, 1, shape).astype(np.float32)  # noqa: E731
    return make(s["x"]), make(s["w"]), (make(s["b"]) if layer.bias else None), make(s["y"])


def _untiled(layer, x, w, b, gy):
    if layer.kind == "linear":
        y = ops.linear_forward(x, w, b)
        gx, gw, gb = ops.linear_backward(x, w, gy)
    elif layer.kind == "pointwise":
        y = ops.pointwise_conv2d_forward(x, w, b)
        gx, gw, gb = ops.pointwise_conv2d_backward(x, w, gy)
    else:
        y = ops.depthwise_conv2d_forward(x, w, b, layer.stride, layer.pads)
        gx, gw, gb = ops.depthwise_conv2d_backward(x, w, gy, layer.stride, layer.pads)
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


def _check_layer(layer, rng):
    x, w, b, gy = _arrays(layer, rng)
    want = _untiled(layer, x, w, b, gy)
    inputs = {"forward": (x, w, b), "grad_input": (w, gy), "grad_weight": (x, gy)}
    for step in tile.STEPS:
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


@pytest.mark.parametrize("layer", GEMM_LAYERS, ids=lambda l: l.name)
def test_gemm_layers_bitwise_equal_untiled(layer, rng):
    _check_layer(layer, rng)


@pytest.mark.parametrize("layer", DEPTHWISE_LAYERS, ids=lambda l: l.name)
def test_depthwise_layers_bitwise_equal_untiled(layer, rng):
    _check_layer(layer, rng)


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
