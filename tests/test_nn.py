"""pulptrain.nn: a composed net vs the same net in PyTorch float64, finite
differences through the float32 kernels, SGD vs torch.optim.SGD, training on
random data, and the Module / optimizer bookkeeping."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pulptrain import nn
from pulptrain._validate import conv_padding
from helpers import assert_close, nchw_to_nhwc, nhwc_to_nchw


def small_net(seed=0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        ("conv1", nn.Conv2d(3, 8, 3, stride=2, padding="same", rng=rng)),
        ("relu1", nn.ReLU6()),
        ("conv2/dw", nn.DepthwiseConv2d(8, 3, stride=1, padding=(1, 0, 1, 0), rng=rng)),
        ("conv2/bn", nn.ChannelAffine(8, trainable=True)),
        ("relu2", nn.ReLU6()),
        ("conv2/pw", nn.PointwiseConv2d(8, 16, rng=rng)),
        ("relu3", nn.ReLU()),
        ("pool", nn.AvgPool2d(2)),
        ("gap", nn.GlobalAvgPool()),
        ("fc", nn.Linear(16, 5, rng=rng)),
    )


def torch_loss(model, x, labels):
    """The same net in float64 PyTorch; leaves are kept in pulptrain's layouts
    so their .grad compares directly. Returns (loss, {name: leaf}, x leaf)."""
    leaves = {name: torch.tensor(p.data, dtype=torch.float64, requires_grad=True)
              for name, p in model.named_parameters()}
    xt = torch.tensor(nhwc_to_nchw(x), dtype=torch.float64, requires_grad=True)
    h = xt
    for name, layer in model.named_children():
        w, b = leaves.get(f"{name}.weight"), leaves.get(f"{name}.bias")
        if isinstance(layer, (nn.Conv2d, nn.DepthwiseConv2d)):
            kh, kw = (w.shape[1], w.shape[2]) if isinstance(layer, nn.Conv2d) else (w.shape[0], w.shape[1])
            top, bottom, left, right = conv_padding(layer.padding, h.shape[2:], (kh, kw), layer.stride)
            h = F.pad(h, (left, right, top, bottom))
            if isinstance(layer, nn.Conv2d):
                h = F.conv2d(h, w.permute(0, 3, 1, 2), b, stride=layer.stride)
            else:
                h = F.conv2d(h, w.permute(2, 0, 1).unsqueeze(1), b, stride=layer.stride, groups=w.shape[2])
        elif isinstance(layer, nn.PointwiseConv2d):
            h = F.conv2d(h, w[:, :, None, None], b)
        elif isinstance(layer, nn.ChannelAffine):
            h = h * leaves[f"{name}.scale"][None, :, None, None] + leaves[f"{name}.shift"][None, :, None, None]
        elif isinstance(layer, nn.ReLU6):
            h = F.relu6(h)
        elif isinstance(layer, nn.ReLU):
            h = F.relu(h)
        elif isinstance(layer, nn.AvgPool2d):
            h = F.avg_pool2d(h, layer.kernel_size, layer.stride)
        elif isinstance(layer, nn.GlobalAvgPool):
            h = h.mean(dim=(2, 3))
        elif isinstance(layer, nn.Linear):
            h = F.linear(h, w, b)
        else:
            raise AssertionError(f"no torch twin for {layer}")
    return F.cross_entropy(h, torch.tensor(labels, dtype=torch.long)), leaves, xt


def batch(rng, n=4, hw=12):
    x = rng.standard_normal((n, hw, hw, 3)).astype(np.float32) * 2
    return x, rng.integers(0, 5, size=n)


def test_composed_net_matches_torch(rng):
    model = small_net()
    # move the affine away from the identity so its gradients are exercised
    model["conv2/bn"].scale.data[:] = rng.uniform(0.5, 1.5, 8)
    model["conv2/bn"].shift.data[:] = rng.uniform(-0.3, 0.3, 8)
    x, labels = batch(rng)
    loss_fn = nn.SoftmaxCrossEntropy()
    loss = loss_fn(model.forward(x), labels)
    grad_x = model.backward(loss_fn.backward())
    loss_t, leaves, xt = torch_loss(model, x, labels)
    loss_t.backward()
    assert abs(loss - loss_t.item()) <= 1e-5 * abs(loss_t.item()), (loss, loss_t.item())
    for name, p in model.named_parameters():
        g = leaves[name].grad.numpy()
        assert_close(p.grad, g, atol=1e-5 * np.abs(g).max() + 1e-7, rtol=1e-4, name=name)
    g = nchw_to_nhwc(xt.grad.numpy())
    assert_close(grad_x, g, atol=1e-5 * np.abs(g).max(), rtol=1e-4, name="grad_x")


def test_finite_differences_along_random_directions(rng):
    """Directional derivatives from float64 central differences of the float32
    net agree with the analytic gradient. The step actually taken (after
    rounding the parameters to float32) is used on both sides."""
    model = small_net(seed=3)
    x, labels = batch(rng, n=6)
    loss_fn = nn.SoftmaxCrossEntropy()
    loss_fn(model.forward(x), labels)
    model.backward(loss_fn.backward())
    params = model.parameters()
    base = [p.data.copy() for p in params]
    grads = [p.grad.astype(np.float64) for p in params]

    def loss_at(step):
        for p, b, d in zip(params, base, step):
            p.data[...] = (b.astype(np.float64) + d).astype(np.float32)
        value = loss_fn(model.forward(x), labels)
        taken = [p.data.astype(np.float64) - b for p, b in zip(params, base)]
        return float(value), taken

    eps = 3e-3
    numeric, analytic = [], []
    for _ in range(4):
        direction = [rng.standard_normal(p.shape) for p in params]
        norm = np.sqrt(sum((d ** 2).sum() for d in direction))
        direction = [d * (eps / norm) for d in direction]
        up, taken_up = loss_at(direction)
        down, taken_down = loss_at([-d for d in direction])
        numeric.append(up - down)
        analytic.append(sum((g * (a - b)).sum() for g, a, b in zip(grads, taken_up, taken_down)))
    # compared as vectors over the directions: one direction nearly orthogonal
    # to the gradient cannot make the check meaningless
    numeric, analytic = np.array(numeric), np.array(analytic)
    assert np.linalg.norm(numeric - analytic) <= 2e-2 * np.linalg.norm(analytic) + 1e-6, (numeric, analytic)
    for p, b in zip(params, base):
        p.data[...] = b


def test_sgd_matches_torch_over_steps(rng):
    model = small_net(seed=1)
    tmodel = small_net(seed=1)
    lr, mu, wd = 0.05, 0.9, 5e-4
    opt = nn.SGD(model.parameters(), lr=lr, momentum=mu, weight_decay=wd)
    leaves = {name: torch.nn.Parameter(torch.tensor(p.data, dtype=torch.float64))
              for name, p in tmodel.named_parameters()}
    topt = torch.optim.SGD(list(leaves.values()), lr=lr, momentum=mu, weight_decay=wd)
    loss_fn = nn.SoftmaxCrossEntropy()
    for _ in range(4):
        x, labels = batch(rng)
        opt.zero_grad()
        loss_fn(model.forward(x), labels)
        model.backward(loss_fn.backward())
        opt.step()
        # torch: the same step on the float64 twin, fed the twin's current weights
        for name, p in tmodel.named_parameters():
            p.data[...] = leaves[name].detach().numpy()
        loss_t, tl, _ = torch_loss(tmodel, x, labels)
        loss_t.backward()
        topt.zero_grad()
        for name, leaf in leaves.items():
            leaf.grad = tl[name].grad
        topt.step()
    for name, p in model.named_parameters():
        want = leaves[name].detach().numpy()
        assert_close(p.data, want, atol=1e-4 * np.abs(want).max(), rtol=1e-4, name=name)


def test_tiny_conv_net_learns_random_data(rng):
    nn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.DepthwiseConv2d(8, 3, stride=2, padding=1),
                          nn.ReLU6(), nn.PointwiseConv2d(8, 16), nn.ReLU(), nn.GlobalAvgPool(), nn.Linear(16, 4))
    model.need_grad_x = False
    x = rng.standard_normal((32, 8, 8, 3)).astype(np.float32)
    labels = rng.integers(0, 4, size=32)
    opt = nn.SGD(model, lr=0.1, momentum=0.9, weight_decay=0.0)
    loss_fn = nn.SoftmaxCrossEntropy()
    losses = []
    for _ in range(60):
        opt.zero_grad()
        losses.append(loss_fn(model.forward(x), labels))
        assert model.backward(loss_fn.backward()) is None
        opt.step()
    assert losses[-1] < 0.5 * losses[0], losses[::10]


# ------------------------------------------------------------ bookkeeping
def test_gradients_accumulate_and_zero(rng):
    model = small_net()
    x, labels = batch(rng)
    loss_fn = nn.SoftmaxCrossEntropy()
    for _ in range(2):
        loss_fn(model.forward(x), labels)
        model.backward(loss_fn.backward())
    twice = {name: p.grad.copy() for name, p in model.named_parameters()}
    model.zero_grad()
    assert all(not p.grad.any() for p in model.parameters())
    loss_fn(model.forward(x), labels)
    model.backward(loss_fn.backward())
    for name, p in model.named_parameters():
        assert_close(twice[name], 2 * p.grad, atol=1e-7, rtol=1e-6, name=name)


def test_frozen_layers_and_need_grad_x(rng):
    model = small_net()
    model["conv1"].requires_grad = False
    assert model["conv1"].requires_grad is False and model.requires_grad
    x, labels = batch(rng)
    loss_fn = nn.SoftmaxCrossEntropy()
    loss_fn(model.forward(x), labels)
    assert model.backward(loss_fn.backward()).shape == x.shape
    assert not model["conv1"].weight.grad.any() and model["fc"].weight.grad.any()
    model.need_grad_x = False
    assert model["conv1"].need_grad_x is False
    assert model.backward(loss_fn.backward()) is None
    # the frozen affine still passes gradients through
    aff = nn.ChannelAffine(8)
    aff.scale.data[:] = 2.0
    h = rng.standard_normal((2, 3, 3, 8)).astype(np.float32)
    aff.forward(h)
    assert np.array_equal(aff.backward(np.ones_like(h)), np.full_like(h, 2.0))
    assert not aff.scale.grad.any()


def test_names_and_state_dict_round_trip():
    model = small_net(seed=0)
    names = [name for name, _ in model.named_parameters()]
    assert names[:4] == ["conv1.weight", "conv1.bias", "conv2/dw.weight", "conv2/dw.bias"]
    assert "conv2/bn.scale" in names and names[-1] == "fc.bias"
    assert model.parameters()[0].name == "conv1.weight"
    assert nn.Sequential(nn.ReLU(), nn.Linear(2, 3)).named_parameters()[0][0] == "1.weight"
    other = small_net(seed=7)
    assert not np.array_equal(other["conv1"].weight.data, model["conv1"].weight.data)
    other.load_state_dict(model.state_dict())
    for (n1, p1), (n2, p2) in zip(model.named_parameters(), other.named_parameters()):
        assert n1 == n2 and np.array_equal(p1.data, p2.data)
    state = model.state_dict()
    state["conv1.weight"][...] = 0  # a copy: the model is untouched
    assert model["conv1"].weight.data.any()
    with pytest.raises(KeyError, match="missing"):
        other.load_state_dict({"conv1.weight": state["conv1.weight"]})
    bad = model.state_dict()
    bad["fc.bias"] = np.zeros(6, np.float32)
    with pytest.raises(ValueError, match="fc.bias"):
        other.load_state_dict(bad)
    bad["fc.bias"] = np.zeros(5, np.float64)
    with pytest.raises(TypeError, match="float32"):
        other.load_state_dict(bad)


def test_seeded_initialisation():
    a, b = nn.Conv2d(3, 4, 3, rng=5), nn.Conv2d(3, 4, 3, rng=5)
    assert np.array_equal(a.weight.data, b.weight.data) and not a.bias.data.any()
    w = nn.Conv2d(64, 256, 3, rng=0).weight.data
    assert abs(w.std() - np.sqrt(2 / (64 * 9))) < 0.02 * np.sqrt(2 / (64 * 9))
    nn.manual_seed(3)
    first = nn.Linear(4, 4).weight.data
    nn.manual_seed(3)
    assert np.array_equal(first, nn.Linear(4, 4).weight.data)


def test_sgd_state_and_skips_frozen(rng):
    layer = nn.Linear(3, 2, rng=0)
    layer.bias.requires_grad = False
    opt = nn.SGD(layer, lr=0.1)
    layer.forward(rng.standard_normal((4, 3)).astype(np.float32))
    layer.backward(np.ones((4, 2), np.float32))
    bias_before = layer.bias.data.copy()
    weight_before = layer.weight.data.copy()
    opt.step()
    assert np.array_equal(layer.bias.data, bias_before) and not np.array_equal(layer.weight.data, weight_before)
    state = opt.state_dict()
    opt2 = nn.SGD(layer, lr=1.0)
    opt2.load_state_dict(state)
    assert opt2.lr == 0.1 and np.array_equal(opt2.velocity[0], opt.velocity[0])
    with pytest.raises(ValueError, match="velocity"):
        opt2.load_state_dict(dict(state, velocity=state["velocity"][:1]))


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: nn.Linear(2, 3).backward(np.zeros((1, 3), np.float32)), RuntimeError, "before forward"),
    (lambda: nn.SoftmaxCrossEntropy().backward(), RuntimeError, "before forward"),
    (lambda: nn.Sequential(), ValueError, "at least one layer"),
    (lambda: nn.Sequential(("a", nn.ReLU()), ("a", nn.ReLU())), ValueError, "unique"),
    (lambda: nn.Sequential(lambda x: x), TypeError, "Module"),
    (lambda: nn.Conv2d(0, 4, 3), ValueError, "in_c"),
    (lambda: nn.Conv2d(3, 4, 3, rng="seed"), TypeError, "rng"),
    (lambda: nn.SGD([], lr=0.1), TypeError, "params"),
    (lambda: nn.SGD(nn.Linear(2, 2), lr=-1.0), ValueError, "lr"),
    (lambda: nn.SoftmaxCrossEntropy().forward(np.zeros((2, 3), np.float32), np.array([0, 3])), ValueError, "labels"),
])
def test_bad_use(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


@pytest.mark.parametrize("activation", ["relu", "relu6"])
@pytest.mark.parametrize("kind", ["pointwise", "depthwise"])
@pytest.mark.parametrize("threads", [1, 3])
def test_fused_activation_is_bitwise_the_separate_layer(kind, activation, threads):
    """conv(activation=...) gives the same outputs and gradients, bit for bit,
    as the conv followed by its own ReLU / ReLU6 layer."""
    from pulptrain import set_num_threads, get_num_threads

    def make(fused):
        rng = np.random.default_rng(5)
        conv = (nn.PointwiseConv2d(24, 40, rng=rng, activation=activation if fused else None)
                if kind == "pointwise" else
                nn.DepthwiseConv2d(24, 3, stride=2, padding="same", rng=rng,
                                   activation=activation if fused else None))
        act = nn.ReLU6() if activation == "relu6" else nn.ReLU()
        return nn.Sequential(("conv", conv)) if fused else nn.Sequential(("conv", conv), ("act", act))

    rng = np.random.default_rng(11)
    x = (rng.standard_normal((3, 7, 9, 24)) * 3).astype(np.float32)
    old = get_num_threads()
    set_num_threads(threads)
    try:
        out = {}
        for fused in (False, True):
            model = make(fused)
            y = model.forward(x)
            grad_y = rng.standard_normal(y.shape).astype(np.float32) if not fused else out[False][3]
            grad_x = model.backward(grad_y)
            out[fused] = (y, grad_x, [p.grad.copy() for p in model.parameters()], grad_y)
    finally:
        set_num_threads(old)
    y0, gx0, g0, _ = out[False]
    y1, gx1, g1, _ = out[True]
    assert (y0 > 0).any() and (y0 == 0).any()
    if activation == "relu6":
        assert (y0 == 6).any(), "the inputs should reach the upper clamp"
    assert np.array_equal(y0.view(np.uint32), y1.view(np.uint32))
    assert np.array_equal(gx0.view(np.uint32), gx1.view(np.uint32))
    for a, b in zip(g0, g1):
        assert np.array_equal(a.view(np.uint32), b.view(np.uint32))


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="activation"):
        nn.PointwiseConv2d(4, 4, activation="gelu")
    from pulptrain import ops
    with pytest.raises(ValueError, match="activation"):
        ops.depthwise_conv2d_forward(np.zeros((1, 3, 3, 2), np.float32), np.zeros((3, 3, 2), np.float32),
                                     None, activation="tanh")


def test_inference_mode_keeps_no_activations():
    model = small_net()
    x = np.random.default_rng(3).standard_normal((2, 8, 8, 3)).astype(np.float32)
    y_train = model.forward(x)
    assert model["conv2/pw"]._x is not None
    with nn.inference():
        y_eval = model.forward(x)
    assert np.array_equal(y_train, y_eval)
    assert all(getattr(layer, attr, None) is None for layer in model for attr in ("_x", "_y", "_cache"))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        model.backward(np.ones_like(y_eval))
    model.forward(x)                                   # out of the block: caching again
    assert model["conv2/pw"]._x is not None


@pytest.mark.parametrize("threads", [1, 2])
def test_fused_activation_backward_across_layers_is_bitwise(threads):
    """In a Sequential, a conv or global pool after a fused-activation conv
    masks its own grad-input (the next layer does the previous layer's ReLU6
    backward): the
    gradients must be bitwise those of separate ReLU6 layers."""
    from pulptrain import get_num_threads, set_num_threads

    def make(fused):
        rng = np.random.default_rng(21)
        act = "relu6" if fused else None
        layers = [("pw1", nn.PointwiseConv2d(16, 32, rng=rng, activation=act)),
                  ("dw", nn.DepthwiseConv2d(32, 3, stride=2, padding="same", rng=rng, activation=act)),
                  ("pw2", nn.PointwiseConv2d(32, 24, rng=rng, activation=act))]
        if not fused:
            layers = [layers[0], ("r1", nn.ReLU6()), layers[1], ("r2", nn.ReLU6()), layers[2], ("r3", nn.ReLU6())]
        return nn.Sequential(*layers, ("gap", nn.GlobalAvgPool()), ("fc", nn.Linear(24, 5, rng=rng)))

    rng = np.random.default_rng(4)
    x = (rng.standard_normal((3, 9, 9, 16)) * 4).astype(np.float32)
    labels = np.array([0, 3, 4])
    old = get_num_threads()
    set_num_threads(threads)
    grads = {}
    try:
        for fused in (False, True):
            model, loss = make(fused), nn.SoftmaxCrossEntropy()
            model.need_grad_x = True
            loss.forward(model.forward(x), labels)
            grad_x = model.backward(loss.backward())
            grads[fused] = [grad_x] + [p.grad for p in model.parameters()]
    finally:
        set_num_threads(old)
    fused_model = make(True)
    assert fused_model["dw"].input_activation == "relu6" and fused_model["pw1"]._act_backward_done
    assert fused_model["pw1"].input_activation is None
    # the global pool masks its grad-input by pw2's ReLU6 too
    assert fused_model["gap"].input_activation == "relu6" and fused_model["pw2"]._act_backward_done
    for a, b in zip(grads[False], grads[True]):
        assert a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


@pytest.mark.parametrize("ref", [False, True])
def test_ops_backward_through_the_input_activation(ref):
    from pulptrain import ops
    rng = np.random.default_rng(8)
    x = np.clip(rng.standard_normal((2, 5, 5, 8)) * 4, 0, 6).astype(np.float32)   # a ReLU6 output
    w_pw = rng.standard_normal((6, 8)).astype(np.float32)
    gy = rng.standard_normal((2, 5, 5, 6)).astype(np.float32)
    plain = ops.pointwise_conv2d_backward(x, w_pw, gy, ref=ref)[0]
    fused = ops.pointwise_conv2d_backward(x, w_pw, gy, ref=ref, input_activation="relu6")[0]
    assert np.array_equal(fused, ops.relu6_backward(x, plain))
    w_dw = rng.standard_normal((3, 3, 8)).astype(np.float32)
    gy = rng.standard_normal((2, 5, 5, 8)).astype(np.float32)
    plain = ops.depthwise_conv2d_backward(x, w_dw, gy, 1, "same", ref=ref)[0]
    fused = ops.depthwise_conv2d_backward(x, w_dw, gy, 1, "same", ref=ref, input_activation="relu6")[0]
    assert np.array_equal(fused, ops.relu6_backward(x, plain))
