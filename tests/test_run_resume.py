"""`pulptrain run` end to end on a tiny stream, killed with SIGKILL at random
moments and resumed each time: it must end bitwise where an uninterrupted
run ends (weights, optimizer state, replay store, accuracy curve)."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

BATCHES = 10
TINY = ["--scenario-option", "frames_per_session=2", "--batches", str(BATCHES), "--lr-count", "40",
        "--minibatch", "16", "--epochs", "1", "--epochs-first", "2", "--quiet", "--threads", "2"]
KILLS = 7
MIN_KILLS = 5


def _run(args, env, timeout=600):
    return subprocess.run([sys.executable, "-m", "pulptrain", "run", *TINY, *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def _final_state(ckpt_dir):
    with open(os.path.join(ckpt_dir, "LATEST")) as f:
        name = f.read().strip()
    with np.load(os.path.join(ckpt_dir, name, "state.npz")) as z:
        arrays = {k: z[k] for k in z.files}
    with open(os.path.join(ckpt_dir, name, "store.lrs"), "rb") as f:
        store = f.read()
    return name, arrays, store


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    e = dict(os.environ)
    e.setdefault("PULPTRAIN_CACHE", str(tmp_path_factory.mktemp("cache")))
    return e


def _latest(ckpt):
    try:
        with open(os.path.join(ckpt, "LATEST")) as f:
            return f.read().strip()
    except OSError:
        return None


def test_kill_and_resume_is_bitwise_identical(tmp_path, env):
    ref = _run(["--checkpoint", str(tmp_path / "ref"), "--out", str(tmp_path / "ref_out")], env)
    assert ref.returncode == 0, ref.stderr[-2000:]

    # Each attempt is killed a random moment (0..0.3 s) after it wrote a new
    # checkpoint: in the middle of training the next batch or of saving it.
    # On a fast machine an attempt may finish two batches before its kill, so
    # fewer than KILLS kills can land before the stream ends; MIN_KILLS must.
    seed = int(os.environ.get("PULPTRAIN_TEST_SEED", "7"))
    rng = np.random.default_rng(seed)
    ckpt = str(tmp_path / "killed")
    args = ["--checkpoint", ckpt, "--resume", "--out", str(tmp_path / "killed_out")]
    kills, seen = 0, []
    for attempt in range(BATCHES + 2):
        before = _latest(ckpt)
        proc = subprocess.Popen([sys.executable, "-m", "pulptrain", "run", *TINY, *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 600
        while proc.poll() is None and _latest(ckpt) == before and time.monotonic() < deadline:
            time.sleep(0.02)
        if proc.poll() is None and kills < KILLS:
            time.sleep(float(rng.uniform(0.0, 0.3)))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
                seen.append(_latest(ckpt))
                continue
        proc.wait(timeout=600)
        err = proc.stderr.read()
        assert proc.returncode == 0, f"attempt {attempt} failed (seed={seed}): {err[-2000:]}"
        break
    print(f"kills survived: {kills}; checkpoint after each kill: {seen}")
    assert kills >= MIN_KILLS, f"only {kills} kills landed (seed={seed})"
    ref_name, ref_arrays, ref_store = _final_state(str(tmp_path / "ref"))
    name, arrays, store = _final_state(ckpt)
    assert name == ref_name
    assert ref_arrays.keys() == arrays.keys()
    for k in ref_arrays:
        assert np.array_equal(ref_arrays[k], arrays[k]), f"{k} differs after resume (seed={seed})"
    assert store == ref_store, f"replay store differs after resume (seed={seed})"
    with open(tmp_path / "ref_out" / "report.json") as f:
        ref_report = json.load(f)
    with open(tmp_path / "killed_out" / "report.json") as f:
        report = json.load(f)
    assert report["accuracy_curve"] == ref_report["accuracy_curve"]


def test_resume_with_other_options_is_refused(tmp_path, env):
    ckpt = str(tmp_path / "ck")
    assert _run(["--checkpoint", ckpt], env).returncode == 0
    other = _run(["--checkpoint", ckpt, "--resume", "--seed", "5"], env)
    assert other.returncode == 2
    assert "different configuration" in other.stderr


def test_corrupt_checkpoint_is_refused(tmp_path, env):
    ckpt = tmp_path / "ck"
    assert _run(["--checkpoint", str(ckpt)], env).returncode == 0
    name = (ckpt / "LATEST").read_text().strip()
    state = ckpt / name / "state.npz"
    data = bytearray(state.read_bytes())
    data[len(data) // 2] ^= 0xFF
    state.write_bytes(bytes(data))
    res = _run(["--checkpoint", str(ckpt), "--resume"], env)
    assert res.returncode == 2
    assert "SHA-256" in res.stderr


def test_plan_predicts_the_runs_real_allocations(tmp_path, env):
    """The plan (host trainer: whole mini-batches, gradient accumulators,
    momentum) matches what `pulptrain run` actually allocated within 5 %."""
    from pulptrain import plan

    res = _run(["--out", str(tmp_path / "out")], env)
    assert res.returncode == 0, res.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    actual = report["memory"]
    assert set(actual) == {"adaptive_weights", "adaptive_grads", "momentum", "activations", "lr_store"}
    cfg = report["config"]
    predicted = plan.plan(plan.PlanConfig(lr_layer=cfg["lr_layer"], lr_count=cfg["lr_count"],
                                          bits=cfg["bits"], batch_size=cfg["trainer"]["minibatch"],
                                          micro_batch=cfg["trainer"]["minibatch"],
                                          num_classes=report["num_classes"]))
    assert plan.compare_allocations(predicted, actual, tolerance=0.05) == {}


def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path, env):
    from pulptrain import checkpoint

    ckpt = str(tmp_path / "ck")
    # the first batch trains at --lr-first; the second at a rate that blows the loss up
    res = _run(["--checkpoint", ckpt, "--lr", "1e30"], env)
    assert res.returncode == 3, res.stderr[-2000:]
    match = re.search(r"diverged on batch (\d+): loss became (nan|inf)", res.stderr)
    assert match, res.stderr
    state = checkpoint.load_latest(ckpt)
    assert state["batches_done"] == int(match.group(1)) >= 1   # the last good batch is kept
    assert all(np.isfinite(a).all() for a in state["model_state"].values())


def test_sweep_writes_its_table_csv_and_plot(tmp_path, env):
    res = subprocess.run([sys.executable, "-m", "pulptrain", "sweep", *TINY, "--batches", "3",
                          "--bits", "fp32,8,2", "--bounds", "--out", str(tmp_path / "sw")],
                         env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    out = tmp_path / "sw"
    rows = (out / "sweep.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 5                    # header, 3 precisions, the two bounds
    table = (out / "sweep.md").read_text()
    assert "| fp32 |" in table and "| 2 |" in table and "no (lower bound)" in table
    assert "joint training (upper bound)" in table
    summary = json.loads((out / "sweep.json").read_text())["summary"]
    by_bits = {s["bits"]: s for s in summary if s["replay"]}
    assert by_bits["fp32"]["delta_vs_fp32"] == 0.0
    assert by_bits["8"]["lr_store_bytes"] < by_bits["fp32"]["lr_store_bytes"] / 3.9
    assert (out / "sweep.png").stat().st_size > 10_000

    # --resume keeps those runs and adds only the missing one
    before = (out / "sweep.csv").read_text().strip().splitlines()
    res = subprocess.run([sys.executable, "-m", "pulptrain", "sweep", *TINY, "--batches", "3",
                          "--bits", "fp32,8,4", "--bounds", "--resume", "--out", str(out)],
                         env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    after = (out / "sweep.csv").read_text().strip().splitlines()
    assert after[:len(before)] == before and len(after) == 1 + 6 and ",4,40,0," in after[-1]
    # another schedule in the same folder is refused before any work
    res = subprocess.run([sys.executable, "-m", "pulptrain", "sweep", *TINY, "--batches", "3", "--lr", "0.5",
                          "--bits", "fp32", "--resume", "--out", str(out)],
                         env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 2 and "other options" in res.stderr


def test_cumulative_bound_run(tmp_path, env):
    res = _run(["--cumulative", "--joint-epochs", "2", "--out", str(tmp_path / "cu")], env)
    assert res.returncode == 0, res.stderr[-2000:]
    report = json.loads((tmp_path / "cu" / "report.json").read_text())
    assert report["label"] == "cumulative (upper bound)"
    assert len(report["accuracy_curve"]) == 1 and report["lr_store_bytes"] == 0
    assert report["config"]["trainer"]["cumulative"] is True


def test_tiled_run_matches_untiled(tmp_path, env):
    """`pulptrain run --l1-kib` trains the adaptive stage through the tiled
    executor and ends with the same accuracy curve, bit for bit."""
    args = ["--batches", "3", "--eval-every", "1"]
    plain = _run([*args, "--out", str(tmp_path / "plain")], env)
    tiled = _run([*args, "--l1-kib", "64", "--out", str(tmp_path / "tiled")], env)
    assert plain.returncode == 0, plain.stderr[-2000:]
    assert tiled.returncode == 0, tiled.stderr[-2000:]
    assert "tiled into an L1 of 64 KiB" in tiled.stdout
    curves = [json.loads((tmp_path / d / "report.json").read_text())["accuracy_curve"] for d in ("plain", "tiled")]
    assert curves[0] == curves[1]
    bad = _run([*args, "--l1-kib", "0"], env)
    assert bad.returncode != 0 and "--l1-kib" in bad.stderr
