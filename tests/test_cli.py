"""The command line: subcommands, machine-readable output, clear errors."""
import json
import subprocess
import sys

import pytest


def cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "pulptrain", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_version_and_help():
    res = cli("--version")
    assert res.returncode == 0 and res.stdout.startswith("pulptrain ")
    res = cli()
    assert res.returncode == 2 and "run" in res.stdout and "sweep" in res.stdout and "plan" in res.stdout


def test_bench_json_vs_torch(tmp_path):
    res = cli("bench", "--batch", "2", "--repeats", "1", "--workloads", "pointwise_fwd,depthwise_fwd_bwd",
              "--vs-torch", "--json", "--out", str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "bench.json").read_text())["rows"]
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = json.loads(res.stdout)
    assert [r["workload"] for r in out["rows"]] == ["pointwise_fwd", "depthwise_fwd_bwd"]
    assert isinstance(out["cpu"], str)
    assert all(r["ratio_pulptrain_over_torch"] > 0 for r in out["rows"])
    for r in out["rows"]:   # both libraries under both glibc settings; each at its best
        times = [r[f"{lib}_s_{m}_malloc"] for lib in ("pulptrain", "torch") for m in ("default", "kept")]
        assert all(t > 0 for t in times)
        assert r["pulptrain_s"] == min(times[:2]) and r["torch_best_s"] == min(times[2:])


@pytest.mark.parametrize("args, msg", [
    (["run", "--scenario", "nope"], "scenario"),
    (["run", "--bits", "9"], "bits must be 1..8"),
    (["run", "--lr-layer", "conv9/dw"], "conv9/dw"),
    (["run", "--lr-count", "0"], "lr_count must be >= 1"),
    (["run", "--threads", "0"], "n must be >= 1"),
    (["run", "--resume"], "--resume needs --checkpoint"),
    (["run", "--scenario-option", "oops"], "KEY=VALUE"),
    (["run", "--scenario", "core50", "--root", "/nonexistent/core50"], "/nonexistent/core50"),
    (["sweep", "--bits", "fp32,12"], "bits must be"),
    (["bench", "--workloads", "nope"], "workload must be one of"),
    (["bench", "--batch", "0"], "batch must be >= 1"),
])
def test_bad_options_fail_fast_with_a_clear_message(args, msg):
    res = cli(*args, timeout=120)
    assert res.returncode == 2, res.stdout + res.stderr
    assert msg in res.stderr, res.stderr
