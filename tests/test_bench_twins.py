"""The PyTorch twins that `pulptrain bench --vs-torch` times compute what
pulptrain computes: same weights, same TF "same" padding (inside the conv
when it is symmetric, as a PyTorch user writes it; F.pad only when not)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pulptrain import bench, models  # noqa: E402


@pytest.mark.parametrize("lr_layer", ["conv5_4/dw", "conv5_5/sep"])   # above: stride 1 only / conv5_6/dw, stride 2
def test_adaptive_twin_matches(lr_layer):
    frozen, adaptive = models.mobilenet_v1(lr_layer, 128, 10)
    shape = models.output_shape(lr_layer, 128)
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 6, (3,) + tuple(shape)).astype(np.float32)
    twin = bench._torch_adaptive(adaptive, shape[:2]).double()
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).astype(np.float64))
    with torch.no_grad():
        want = twin(xt).numpy()
    np.testing.assert_allclose(adaptive.forward(x), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("hw, s, conv_pad, f_pad", [
    ((8, 8), 1, (1, 1), None), ((8, 8), 2, (0, 0), (0, 1, 0, 1)), ((7, 9), 2, (1, 1), None),
    ((128, 128), 2, (0, 0), (0, 1, 0, 1))])
def test_same_pads(hw, s, conv_pad, f_pad):
    assert bench._same_pads(hw, 3, s) == (conv_pad, f_pad)


def test_frozen_twin_matches(tmp_path):
    frozen, _ = models.mobilenet_v1("conv2_1/sep", 128, 10)
    images = np.random.default_rng(2).integers(0, 256, (2, 128, 128, 3), dtype=np.uint8)
    img = torch.from_numpy(images.transpose(0, 3, 1, 2).astype(np.float32)).div(127.5).sub(1.0)
    with torch.no_grad():
        want = bench._torch_frozen(frozen)(img).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(frozen.forward(images), want, rtol=1e-3, atol=1e-3)
