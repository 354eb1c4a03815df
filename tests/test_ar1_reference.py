"""The PyTorch AR1-style reference loop of bench/ (the speed reference of `pulptrain run`)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
_PATH = Path(__file__).resolve().parents[1] / "bench" / "ar1_torch_reference.py"
_spec = importlib.util.spec_from_file_location("ar1_torch_reference", _PATH)
ar1 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ar1)


def test_mixing_rule_matches_the_paper():
    assert ar1.new_per_minibatch(300, 1500) == 21  # 21 new + 107 replays
    assert ar1.new_per_minibatch(300, 3000) == 12  # 3300 // 128 = 25 steps
    assert ar1.new_per_minibatch(5, 1500) == 1


def test_memory_rule_fills_then_replaces(rng):
    def batch(n, tag):
        return torch.full((n, 1), float(tag)), torch.full((n,), tag, dtype=torch.int64)

    memory_x, memory_y = ar1.update_memory(None, None, *batch(4, 0), 10, 0, rng)
    assert memory_y.tolist() == [0] * 4
    memory_x, memory_y = ar1.update_memory(memory_x, memory_y, *batch(8, 1), 10, 1, rng)
    assert sorted(memory_y.tolist()) == [0] * 4 + [1] * 5  # h = min(10 // 2, 8) = 5, free slots first
    memory_x, memory_y = ar1.update_memory(memory_x, memory_y, *batch(8, 2), 10, 2, rng)
    assert memory_y.shape == (10,) and (memory_y == 2).sum() == 3  # h = 3: one free slot, two replaced
    assert torch.equal(memory_x[:, 0].long(), memory_y)


def test_pulptrain_layout_weights_load(rng):
    model = ar1.AdaptiveStage(5)
    params = {}
    for name, kind, cin, cout, _ in ar1.LAYERS:
        shape = (cout, cin) if kind == "pw" else (3, 3, cin)
        params[f"{name}/weight"] = rng.standard_normal(shape).astype(np.float32)
        params[f"{name}/bias"] = rng.standard_normal(cout).astype(np.float32)
    params["fc/weight"] = rng.standard_normal((5, 1024)).astype(np.float32)
    params["fc/bias"] = np.zeros(5, np.float32)
    model.load_pulptrain_params(params)
    depthwise = params["conv5_5/dw/weight"]
    assert np.array_equal(model.convs[1].weight[7, 0].detach().numpy(), depthwise[:, :, 7])
    assert np.array_equal(model.convs[0].weight[3, :, 0, 0].detach().numpy(), params["conv5_4/pw/weight"][3])
    out = model(ar1.to_torch(rng.random((2, 8, 8, 512), dtype=np.float32)))
    assert out.shape == (2, 5)


def test_run_reference_counts_and_reports():
    batches, (test_x, test_y) = ar1.synthetic_stream(3, first=16, new=12, test=8, num_classes=4, seed=1)
    result = ar1.run_reference(batches, test_x, test_y, num_classes=4, memory_size=20, minibatch=8,
                               epochs_first=2, epochs_later=1, threads=1)
    # first batch: 2 epochs x 2 steps x 8, then 16 latents stored;
    # batch 1: (12 + 16) // 8 = 3 -> 4 new + 4 replays, 3 steps; memory grows to 20;
    # batch 2: (12 + 20) // 8 = 4 -> 3 new + 5 replays, 4 steps
    assert result["samples_trained"] == 2 * 2 * 8 + 3 * 8 + 4 * 8
    assert [i for i, _ in result["accuracy"]] == [0, 1, 2]
    assert all(0.0 <= a <= 1.0 for _, a in result["accuracy"])
    assert len(result["batch_train_times"]) == 3 and result["wall_time"] > 0
