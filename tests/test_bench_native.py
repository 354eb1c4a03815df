"""`make bench`'s native training-step benchmark and `make bench-gemm`'s GEMM
benchmark build, run and print the JSON they document (a tiny batch: this
checks the plumbing, not the speed), and refuse bad arguments."""
import json
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _build(target):
    if shutil.which("make") is None or shutil.which(os.environ.get("CC", "gcc")) is None:
        pytest.skip("needs make and a C compiler")
    res = subprocess.run(["make", "-s", target], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    return os.path.join(ROOT, target)


@pytest.fixture(scope="module")
def binary():
    return _build("build/bench/train_step")


@pytest.fixture(scope="module")
def gemm_binary():
    return _build("build/bench/gemm_native")


@pytest.mark.parametrize("lr_layer, layers", [("conv6/dw", 2), ("conv5_4/dw", 8)])
def test_prints_every_primitive_and_the_step(binary, lr_layer, layers):
    res = subprocess.run([binary, "--lr-layer", lr_layer, "--batch", "2", "--repeats", "1", "--threads", "2"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["threads"] == 2 and out["batch"] == 2 and out["peak_gflops"] > 0
    assert out["step"]["ms_median"] > 0 and out["step"]["gflop"] > 0
    names = {p["layer"] for p in out["primitives"] if p["layer"] != "-"}
    assert len(names) == layers            # the convolutions above the LR layer and fc7
    # the first adaptive layer computes no grad-input: nothing below it trains
    first = [p for p in out["primitives"] if p["layer"] == out["primitives"][0]["layer"]]
    assert "grad_input" not in {p["step"] for p in first}


@pytest.mark.parametrize("args, message", [
    (["--lr-layer", "conv7"], "unknown or untrainable LR layer"),
    (["--lr-layer", "conv6/sep"], "unknown or untrainable LR layer"),
    (["--threads", "0"], "--threads must be an integer in [1, 64]"),
    (["--batch", "x"], "--batch must be an integer"),
    (["--bogus"], "usage"),
])
def test_bad_arguments(binary, args, message):
    res = subprocess.run([binary, *args], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and message in res.stderr


def test_scaling_rounds(binary):
    """--scaling times 1 and N threads in alternating rounds and reports both
    medians and the median of the per-round speed-ups."""
    res = subprocess.run([binary, "--lr-layer", "conv6/dw", "--batch", "2", "--repeats", "3", "--threads", "2",
                          "--scaling"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)["scaling"]
    assert s["rounds"] == 3 and s["ms_median_1_thread"] > 0 and s["ms_median"] > 0
    assert s["speedup_median_of_rounds"] > 0


@pytest.mark.parametrize("args, message", [
    (["0"], "threads must be an integer in [1, 64], got 0"),
    (["--help"], "threads must be an integer"),
    (["2", "x"], "reps must be an integer in [1, 1000], got x"),
    (["2", "0"], "reps must be an integer"),
    (["1", "1", "1"], "usage"),
])
def test_gemm_bad_arguments(gemm_binary, args, message):
    res = subprocess.run([gemm_binary, *args], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and message in res.stderr and res.stdout == ""
