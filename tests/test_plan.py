"""pulptrain.plan: layer table, memory items, latency/energy model and the CLI."""
import json
import math

import pytest
import torch
from torch import nn

from pulptrain import netspec
from pulptrain.cli import main
from pulptrain.plan import (MIB, PAPER_RUNTIME, PlanConfig, adaptive_memory, compare_allocations,
                            load_params, lr_store_bytes, plan, sweep_lr_layers)


def torch_mobilenet_v1(num_classes):
    """An independent PyTorch MobileNetV1 (3x3 windows, padding 1 gives the
    same output sizes as TF 'SAME' for even inputs), module names = Caffe names."""
    mods = [("conv1", nn.Conv2d(3, 32, 3, 2, 1))]
    cin = 32
    for block, stride, cout in netspec.MOBILENET_V1_BLOCKS:
        mods.append((f"{block}/dw", nn.Conv2d(cin, cin, 3, stride, 1, groups=cin)))
        mods.append((f"{block}/pw", nn.Conv2d(cin, cout, 1)))
        cin = cout
    return mods, nn.Linear(cin, num_classes)


def torch_macs(input_size, num_classes):
    """MACs and output shapes per layer, counted by forward hooks."""
    mods, fc = torch_mobilenet_v1(num_classes)
    counts = {}

    def hook(name):
        def record(module, inputs, output):
            if isinstance(module, nn.Conv2d):
                per_out = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            else:
                per_out = module.in_features
            counts[name] = (output[0].numel() * per_out, tuple(output.shape[1:]))
        return record

    x = torch.zeros(1, 3, input_size, input_size)
    with torch.no_grad():
        for name, module in mods:
            module.register_forward_hook(hook(name))
            x = module(x)
        fc.register_forward_hook(hook(netspec.CLASSIFIER_NAME))
        fc(x.mean(dim=(2, 3)))
    return counts


@pytest.mark.parametrize("input_size", [128, 224])
def test_mac_counts_match_torch_forward_hooks(input_size):
    layers = {layer.name: layer for layer in netspec.mobilenet_v1(input_size, 50)}
    counts = torch_macs(input_size, 50)
    assert len(counts) == len(layers) - 1  # every layer but pool6
    for name, (macs, shape) in counts.items():
        assert layers[name].macs_forward == macs, name
        if name != netspec.CLASSIFIER_NAME:
            c, h, w = shape
            assert layers[name].out_shape == (h, w, c), name


@pytest.mark.parametrize("name", ["conv1", "conv3_2/pw", "conv5_4/pw", "conv6/pw", "mid_fc7"])
def test_backward_macs_match_torch_flop_counter(name):
    """grad-input + grad-weight MACs against torch's FlopCounterMode (which
    does not handle grouped convolutions in backward, so no depthwise here)."""
    from torch.utils.flop_counter import FlopCounterMode

    layer = {layer.name: layer for layer in netspec.mobilenet_v1(128, 50)}[name]
    h, w, cin = layer.in_shape
    if layer.kind == "linear":
        module, x = nn.Linear(cin, layer.out_shape[2], bias=False), torch.zeros(1, cin)
    else:
        module = nn.Conv2d(cin, layer.out_shape[2], layer.kernel, layer.stride, layer.kernel // 2, bias=False)
        x = torch.zeros(1, cin, h, w)
    y = module(x.requires_grad_(True))
    with FlopCounterMode(display=False) as counter:
        y.sum().backward()
    assert counter.get_total_flops() == 2 * (layer.macs_grad_input + layer.macs_grad_weight)


def test_layer_table_by_hand():
    layers = {layer.name: layer for layer in netspec.mobilenet_v1(128, 50)}
    dw = layers["conv5_4/dw"]
    assert dw.out_shape == (8, 8, 512)
    assert dw.macs_forward == 8 * 8 * 512 * 9 == dw.macs_grad_weight == dw.macs_grad_input
    # Stride 2: each of the 4x4 outputs per channel takes 9 products, in every phase.
    dw2 = layers["conv5_6/dw"]
    assert dw2.in_shape == (8, 8, 512) and dw2.out_shape == (4, 4, 512)
    assert dw2.macs_grad_input == dw2.macs_grad_weight == 4 * 4 * 512 * 9
    pw = layers["conv5_6/pw"]
    assert pw.in_shape == (4, 4, 512) and pw.out_shape == (4, 4, 1024)
    assert pw.macs_forward == 4 * 4 * 512 * 1024 and pw.params == 512 * 1024 + 1024
    assert layers["pool6"].macs_grad_weight == 0 and layers["pool6"].params == 0
    assert layers["mid_fc7"].params == 1024 * 50 + 50


def test_layer_table_matches_published_mobilenet_totals():
    """Howard et al. 2017 (MobileNetV1 1.0, 224): 569 M mult-adds, 4.2 M parameters,
    of which 3,206,976 below the classifier (conv weights + BatchNorm gamma and beta)."""
    layers = netspec.mobilenet_v1(224, 1000)
    convs = [layer for layer in layers if layer.kind in ("conv", "dw", "pw")]
    assert sum(layer.weights + 2 * layer.bias for layer in convs) == 3_206_976
    total_macs = sum(layer.macs_forward for layer in layers if layer.kind != "pool")
    assert round(total_macs / 1e6) == 569


def test_schedule_of_the_reference_code():
    s = plan().schedule
    assert s["minibatches_per_epoch"] == 14
    assert (s["new_per_minibatch"], s["replays_per_minibatch"]) == (21, 107)
    assert s["minibatches_per_event"] == 56


def test_paper_setting_fits_in_64_mib():
    p = plan(lr_layer="conv5_4/dw", lr_count=1500, bits=8, batch_size=128, **PAPER_RUNTIME)
    assert p.memory_total_bytes < 64 * MIB
    assert p.fits
    assert p.memory["lr_store"].bytes == 1500 * 8 * 8 * 512 + p.comparison["lr_store"]["metadata"]


def test_minibatch_sgd_with_momentum_fits_the_external_ram_when_fused():
    fused = plan(update_rule="minibatch_fused")
    separate = plan(update_rule="minibatch")
    assert fused.memory["adaptive_grads"].bytes == 0
    assert separate.memory["adaptive_grads"].bytes == separate.memory["adaptive_weights"].bytes
    assert fused.memory_by_level["external"] <= 64 * MIB
    assert separate.memory_total_bytes - fused.memory_total_bytes == separate.memory["adaptive_grads"].bytes


@pytest.mark.parametrize("count,elements,bits", [(1500, 32768, 8), (1500, 32768, 7), (3, 5, 3), (7, 1024, 1),
                                                 (10, 100, 32)])
def test_lr_store_bytes(count, elements, bits):
    mem = load_params()["memory"]
    quant_params = 0 if bits == 32 else mem["lr_metadata_fixed_bytes"]["value"]
    metadata = count * mem["lr_metadata_bytes_per_entry"]["value"] + quant_params
    store = lr_store_bytes(count, elements, bits)
    assert store["payload"] == math.ceil(count * elements * bits / 8)
    assert store["total"] == store["payload"] + metadata


@pytest.mark.parametrize("lr_layer,count,bits", [("conv5_4/dw", 1500, 8), ("conv5_4/dw", 300, 7),
                                                 ("conv5_6/dw", 200, 3), ("pool6", 50, 32)])
def test_lr_store_equals_the_real_replay_store(lr_layer, count, bits):
    """The planned LR store against the bytes pulptrain.replay actually holds."""
    from pulptrain.replay import LatentReplayStore

    p = plan(lr_layer=lr_layer, lr_count=count, bits=bits)
    shape = next(layer["out_shape"] for layer in p.layers if layer["name"] == lr_layer)
    store = LatentReplayStore(count, shape, "fp32" if bits == 32 else bits,
                              value_range=None if bits == 32 else (0.0, 6.0))
    assert compare_allocations(p, {"lr_store": store.nbytes}, tolerance=0.0) == {}
    assert p.comparison["lr_store"]["payload"] == store.payload_nbytes


def test_lr_store_in_plan_scales_with_bits():
    p8, p7 = plan(bits=8), plan(bits=7)
    assert p8.memory["lr_store"].bytes - p7.memory["lr_store"].bytes == 1500 * 32768 // 8
    assert plan(bits=32).memory["lr_store"].bytes > 4 * p7.memory["lr_store"].bytes


def test_memory_keys_are_stable_and_runtime_comparison_is_one_loop():
    p = plan(micro_batch=4)
    frozen, adaptive = netspec.split(netspec.mobilenet_v1(128, 50), "conv5_4/dw")
    actual = adaptive_memory(adaptive, 4, "minibatch", 0.9)
    assert set(actual) <= set(p.memory)
    assert compare_allocations(p, actual) == {}
    actual["momentum"] = int(actual["momentum"] * 1.1)
    assert set(compare_allocations(p, actual)) == {"momentum"}
    with pytest.raises(KeyError, match="grads"):
        compare_allocations(p, {"grads": 1})


def test_adaptive_memory_by_hand_for_pool6():
    _, adaptive = netspec.split(netspec.mobilenet_v1(128, 10), "pool6")
    sizes = adaptive_memory(adaptive, 2, "minibatch", 0.9)
    params = 1024 * 10 + 10
    assert sizes["adaptive_weights"] == sizes["adaptive_grads"] == sizes["momentum"] == 4 * params
    assert sizes["activations"] == 4 * 2 * (1024 + 10)
    assert sizes["activation_grads"] == 4 * 2 * 2 * 10


def test_latency_and_energy_respond_to_parameters():
    base = plan()
    vega = base.targets["vega"]
    assert vega.seconds == pytest.approx(vega.compute_s + vega.dma_s)
    assert plan(dma_overlap=True).targets["vega"].seconds < vega.seconds
    assert plan(vega_mhz=750).targets["vega"].compute_s == pytest.approx(vega.compute_s / 2)
    assert plan(epochs=8).targets["stm32l4"].seconds > 1.9 * base.targets["stm32l4"].seconds - 1
    assert base.targets["stm32l4"].dma_s == 0
    assert vega.joules == pytest.approx(vega.seconds * vega.active_mw * 1e-3)
    assert 1 < base.comparison["speedup_vs_stm32l4"] < base.comparison["speedup_compute_only"]
    assert sum(vega.compute_breakdown_s.values()) == pytest.approx(vega.compute_s)
    assert plan(vega_kernels="plain_c").targets["vega"].compute_s > vega.compute_s
    # A later LR layer trains fewer layers: faster and smaller.
    late = plan(lr_layer="conv6/dw")
    assert late.targets["vega"].seconds < vega.seconds
    assert late.memory["adaptive_weights"].bytes < base.memory["adaptive_weights"].bytes


def test_lifetime_is_none_when_an_event_exceeds_the_period():
    p = plan(lifetime_event="learning_event")
    assert p.targets["vega"].lifetime_h is None
    assert "longer than" in p.targets["vega"].lifetime_note
    assert plan(lr_layer="pool6").targets["vega"].lifetime_h > 0


def test_parameter_file_documents_every_value():
    def walk(node, path):
        if isinstance(node, dict) and "value" in node:
            assert node.get("source") and node.get("confidence") in ("cited", "derived", "estimate"), path
        elif isinstance(node, dict):
            if any(not k.startswith("_") and isinstance(v, dict) and "forward" in v for k, v in node.items()):
                assert node.get("_source") and node.get("_confidence"), path
            for key, value in node.items():
                if not key.startswith("_"):
                    walk(value, f"{path}/{key}")
    walk(load_params(), "")


def test_parameter_override_file(tmp_path):
    override = tmp_path / "p.json"
    override.write_text(json.dumps({"vega": {"external_bytes_per_s": {"value": 4e8}}}))
    assert plan(params=override).targets["vega"].dma_s < plan().targets["vega"].dma_s


@pytest.mark.parametrize("fields,name", [
    (dict(lr_layer="conv7/dw"), "lr_layer"),
    (dict(lr_layer="mid_fc7"), "lr_layer"),
    (dict(bits=0), "bits"), (dict(bits=9), "bits"), (dict(bits=16), "bits"),
    (dict(lr_count=-1), "lr_count"), (dict(batch_size=0), "batch_size"),
    (dict(backbone="resnet18"), "backbone"), (dict(update_rule="adam"), "update_rule"),
    (dict(update_rule="per_sample", micro_batch=4), "micro_batch"),
    (dict(micro_batch=256), "micro_batch"), (dict(momentum=1.0), "momentum"),
    (dict(vega_mhz=-5), "vega_mhz"), (dict(vega_kernels="fast"), "vega_kernels"), (dict(lifetime_event="hourly"), "lifetime_event"),
])
def test_bad_configs_name_the_argument(fields, name):
    with pytest.raises(ValueError, match=name):
        plan(**fields)


def test_wrong_types_raise_type_error():
    with pytest.raises(TypeError, match="bits"):
        plan(bits=8.0)
    with pytest.raises(TypeError, match="lr_count"):
        plan(lr_count="1500")


def test_sweep_covers_conv5_4_dw_and_later():
    plans = sweep_lr_layers(PlanConfig(), **PAPER_RUNTIME)
    assert plans[0].config.lr_layer == "conv5_4/dw" and plans[-1].config.lr_layer == "pool6"
    assert all(p.config.update_rule == "per_sample" for p in plans)


def test_cli_json_parses(capsys):
    assert main(["plan", "--lr-layer", "conv5_4/dw", "--lr-count", "1500", "--bits", "8", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["config"]["lr_layer"] == "conv5_4/dw"
    assert data["memory"]["lr_store"]["bytes"] == lr_store_bytes(1500, 32768, 8)["total"]
    assert data["comparison"]["lr_store"]["payload"] == 1500 * 32768
    assert set(data["targets"]) == {"vega", "stm32l4"}
    assert main(["plan", "--sweep", "--paper-runtime", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["plans"]) == 9


def test_cli_text_out_dir_and_errors(tmp_path, capsys):
    assert main(["plan", "--out", str(tmp_path)]) == 0
    assert "VEGA vs STM32L4" in capsys.readouterr().out
    assert json.loads((tmp_path / "plan.json").read_text())["config"]["bits"] == 8
    assert (tmp_path / "memory.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["plan", "--lr-layer", "conv9/dw"]) == 2
    assert "lr_layer" in capsys.readouterr().err


def test_placement_rule():
    p = plan(**PAPER_RUNTIME)
    levels = {key: item.level for key, item in p.memory.items()}
    assert levels["tile_buffers"] == levels["scratch"] == "L1"
    assert levels["frozen_weights"] == "MRAM"
    assert levels["activations"] == levels["activation_grads"] == "L2"
    assert levels["lr_store"] == levels["adaptive_weights"] == "external"
    assert p.memory_by_level["L1"] <= 128 * 1024
    # Everything small enough lives on chip: LR layer pool6 with few, narrow LRs.
    small = plan(lr_layer="pool6", lr_count=100)
    assert small.memory_by_level["external"] == 0 and small.memory["lr_store"].level == "L2"
    # A tiny external RAM is reported as not fitting.
    assert not plan(external_bytes=1 << 20).fits


@pytest.mark.parametrize("input_size,num_classes", [(32, 10), (96, 2), (224, 1000), (130, 50)])
def test_other_input_sizes_and_class_counts(input_size, num_classes):
    p = plan(input_size=input_size, num_classes=num_classes, lr_layer="conv5_6/pw")
    assert p.layers[-1]["params"] == 1024 * num_classes + num_classes
    assert p.targets["vega"].seconds > 0 and p.memory_total_bytes > 0
