"""The latent-replay store: packing, quantization, requantization, memory,
policies, bad input. Persistence is in test_replay_persist.py, the stateful
policy model in test_replay_state.py."""
import numpy as np
import pytest

import pulptrain
from pulptrain import _replay
from pulptrain.replay import LatentReplayStore
from helpers import THREAD_COUNTS, bitwise_equal


def bit_stream(codes: np.ndarray, bits: int) -> np.ndarray:
    """The format's definition: code i's bit j is stream bit i*Q + j, bytes filled LSB first."""
    stream_bits = ((codes.astype(np.uint32)[:, None] >> np.arange(bits)) & 1).astype(np.uint8).reshape(-1)
    return np.packbits(stream_bits, bitorder="little")


@pytest.mark.parametrize("bits", range(1, 9))
def test_pack_unpack_every_position(bits, rng):
    for first in range(17):
        for count in (1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 72, 129):
            nbytes = ((first + count) * bits + 7) // 8 + 2
            stream = rng.integers(0, 256, nbytes, dtype=np.uint8)
            codes = rng.integers(0, 1 << bits, count, dtype=np.uint8)
            fast, ref = stream.copy(), stream.copy()
            _replay.pack(bits, first, codes, fast)
            _replay.pack(bits, first, codes, ref, ref=True)
            assert bitwise_equal(fast, ref), (bits, first, count)
            # the bits of every other code (before, after, in shared bytes) are untouched
            back = np.empty(first + count + (nbytes * 8 - (first + count) * bits) // bits, np.uint8)
            _replay.unpack(bits, 0, fast, back)
            before = np.empty_like(back)
            _replay.unpack(bits, 0, stream, before, ref=True)
            assert bitwise_equal(back[first:first + count], codes)
            assert bitwise_equal(back[:first], before[:first])
            assert bitwise_equal(back[first + count:], before[first + count:])
    codes = rng.integers(0, 1 << bits, 64, dtype=np.uint8)
    stream = np.zeros(bits * 8, np.uint8)
    _replay.pack(bits, 0, codes, stream)
    assert bitwise_equal(stream, bit_stream(codes, bits))


def test_worked_example():
    stream = np.zeros(7, np.uint8)
    _replay.pack(7, 0, np.array([0x01, 0x7F, 0x00, 0x55, 0x2A, 0x40, 0x03, 0x7E], np.uint8), stream)
    assert stream.tobytes() == bytes([0x81, 0x3F, 0xA0, 0xAA, 0x02, 0x0E, 0xFC])


def model_codes(x, scale, zero_point, bits):
    """The quantizer in float32 numpy, operation by operation as in C."""
    v = x / scale + zero_point.astype(np.float32)
    v = np.minimum(np.maximum(v, np.float32(0)), np.float32((1 << bits) - 1))
    return np.floor(v + np.float32(0.5)).astype(np.int32)


@pytest.mark.parametrize("granularity", ["tensor", "channel"])
@pytest.mark.parametrize("bits", range(1, 9))
def test_dequantization_error(bits, granularity, rng):
    shape = (3, 5, 6)
    lo = rng.uniform(-2, 0, 6) if granularity == "channel" else -1.0
    hi = rng.uniform(0.5, 3, 6) if granularity == "channel" else 2.0
    store = LatentReplayStore(7, shape, bits, granularity=granularity, value_range=(lo, hi))
    scale, zero_point = store.quant_params
    qmax = (1 << bits) - 1
    lo_s = ((0 - zero_point) * scale.astype(np.float64))
    hi_s = ((qmax - zero_point) * scale.astype(np.float64))
    x = rng.uniform(-4, 4, (7,) + shape).astype(np.float32)
    x[0, 0, 0, :] = 0.0
    store.insert(x, np.arange(7))
    y, labels = store.gather(np.arange(7))
    assert (labels == np.arange(7)).all()
    clamped = np.clip(x.astype(np.float64), lo_s, hi_s)
    err = np.abs(y - clamped)
    assert (err <= scale * 0.5 * (1 + 1e-5) + 1e-7).all(), err.max()
    assert (y[0, 0, 0, :] == 0.0).all(), "0.0 is exact"
    assert (y >= lo_s - 1e-6).all() and (y <= hi_s + 1e-6).all(), "out-of-range values clamped"
    codes = model_codes(x, scale, zero_point, bits)
    expect = (codes - zero_point).astype(np.float32) * scale
    assert bitwise_equal(y, expect)
    assert bitwise_equal(store.quantize_roundtrip(x), expect)


@pytest.mark.parametrize("bits", [1, 3, 4, 7, 8, "fp16", "fp32"])
@pytest.mark.parametrize("shape", [(4, 4, 8), (3, 5), (13,)])
def test_threads_and_reference_agree(bits, shape, rng):
    n = 40
    x = rng.normal(0, 1.5, (n,) + shape).astype(np.float32)
    kwargs = {} if isinstance(bits, str) else {"calibration": x, "granularity": "channel"}
    slots = rng.permutation(64)[:n].astype(np.int64)
    results = []
    for t in THREAD_COUNTS:
        pulptrain.set_num_threads(t)
        store = LatentReplayStore(64, shape, bits, **kwargs)
        store.insert(x, np.zeros(n, np.int64), slots)
        out = np.empty_like(x)
        store.gather_into(slots[::-1], out)
        results.append((store._payload.copy(), out))
    ref_store = LatentReplayStore(64, shape, bits, **kwargs)
    scale, zero_point = ref_store._quant_arrays()
    _replay.insert_f32(ref_store._layout, scale, zero_point, slots, x.reshape(-1), ref_store._payload, 1, ref=True)
    out_ref = np.empty_like(x)
    _replay.gather_f32(ref_store._layout, scale, zero_point, slots[::-1].copy(), ref_store._payload,
                       out_ref.reshape(-1), 1, ref=True)
    for payload, out in results:
        assert bitwise_equal(payload, ref_store._payload)
        assert bitwise_equal(out, out_ref)


def test_float_modes(rng):
    x = (rng.standard_normal((5, 2, 3, 4)) * np.float32(1e3)).astype(np.float32)
    x[0, 0, 0, 0], x[0, 0, 0, 1] = 1e6, -7e4   # beyond binary16: saturates
    x[1, 0, 0, :] = [1e-7, -3e-8, 6.1e-5, 2.0 ** -24]   # subnormal halves
    s16 = LatentReplayStore(5, (2, 3, 4), "fp16")
    s16.insert(x, np.arange(5))
    expect = np.clip(x, -65504, 65504).astype(np.float16).astype(np.float32)
    assert bitwise_equal(s16.gather(np.arange(5))[0], expect)
    s32 = LatentReplayStore(5, (2, 3, 4), "fp32")
    s32.insert(x, np.arange(5))
    assert bitwise_equal(s32.gather(np.arange(5))[0], x)
    assert s16.payload_nbytes == 5 * 24 * 2 and s32.payload_nbytes == 5 * 24 * 4
    assert s16.bits == 16 and s32.bits == 32


def rshift_round(v: np.ndarray, shift: int) -> np.ndarray:
    mag = (np.abs(v) + (1 << (shift - 1))) >> shift
    return np.where(v < 0, -mag, mag)


@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize("granularity", ["tensor", "channel"])
def test_insert_codes_from_int8_stage(bits, granularity, rng):
    shape = (2, 3, 4)
    if granularity == "channel":
        scale_in = rng.uniform(0.01, 0.1, 4).astype(np.float32)
        zp_in = rng.integers(0, 256, 4)
    else:
        scale_in, zp_in = np.float32(0.047), np.int64(133)
    store = LatentReplayStore(6, shape, bits, granularity=granularity, int8_params=(scale_in, zp_in))
    scale, zero_point = store.quant_params
    s = 8 - bits
    assert bitwise_equal(scale, (np.broadcast_to(scale_in, scale.shape) * np.float32(2 ** s)).astype(np.float32))
    q = rng.integers(0, 256, (6,) + shape).astype(np.uint8)
    q[0, 0, 0, :] = zp_in   # the real value 0
    store.insert_codes(q, scale_in, zp_in, np.arange(6))
    codes = np.clip(zero_point + (rshift_round(q.astype(np.int64) - zp_in, s) if s else q.astype(np.int64) - zp_in),
                    0, (1 << bits) - 1)
    expect = (codes - zero_point).astype(np.float32) * scale
    got, _ = store.gather(np.arange(6))
    assert bitwise_equal(got, expect)
    zero_exact = np.broadcast_to((zp_in + ((1 << s) >> 1)) >> s, (4,)) <= (1 << bits) - 1
    assert (got[0, 0, 0, :][zero_exact] == 0).all()
    # inside the representable range the error is at most half a Q-bit step
    real = (q.astype(np.float64) - zp_in) * scale_in
    inside = (real >= (0 - zero_point) * scale.astype(np.float64)) & (real <= ((1 << bits) - 1 - zero_point) * scale.astype(np.float64))
    bound = scale.astype(np.float64).max() / 2 * (1 + 1e-6) + 1e-6 * np.abs(real)
    assert (np.abs(got - real) <= bound)[inside].all()
    # int8 codes with a signed zero point give the same store
    other = LatentReplayStore(6, shape, bits, granularity=granularity, int8_params=(scale_in, zp_in))
    other.insert_codes((q.astype(np.int16) - 128).astype(np.int8), scale_in, np.asarray(zp_in) - 128, np.arange(6))
    assert bitwise_equal(other._payload, store._payload)
    # fast kernels vs reference twin, every thread count
    for t in THREAD_COUNTS:
        pulptrain.set_num_threads(t)
        again = LatentReplayStore(6, shape, bits, granularity=granularity, int8_params=(scale_in, zp_in))
        again.insert_codes(q, scale_in, zp_in, np.arange(6))
        assert bitwise_equal(again._payload, store._payload)


def test_insert_codes_general_ratio(rng):
    """Codes with another scale than the store's: fixed-point multiplier."""
    store = LatentReplayStore(4, (16,), 6, value_range=(-1.0, 2.0))
    scale, zero_point = store.quant_params
    q = rng.integers(0, 256, (4, 16)).astype(np.uint8)
    store.insert_codes(q, 0.013, 100, np.zeros(4, np.int64))
    got, _ = store.gather(np.arange(4))
    real = np.clip((q.astype(np.float64) - 100) * np.float64(np.float32(0.013)),
                   (0 - zero_point) * scale[0].astype(np.float64), (63 - zero_point) * scale[0].astype(np.float64))
    assert (np.abs(got - real) <= scale[0] / 2 * (1 + 1e-6) + 1e-6 * np.abs(real)).all()


def test_memory_at_the_paper_setting():
    """1500 LRs of 8x8x512 (conv5_4/dw): payload = ceil(M * elems * Q / 8) bytes."""
    shape, capacity = (8, 8, 512), 1500
    stores = {bits: LatentReplayStore(capacity, shape, bits, value_range=(0.0, 6.0) if isinstance(bits, int) else None)
              for bits in ("fp32", "fp16", 8, 7, 6, 4, 2, 1)}
    for bits, store in stores.items():
        q = store.bits
        assert store.payload_nbytes == -(-capacity * 8 * 8 * 512 * q // 8)
        assert store.nbytes - store.payload_nbytes <= 16 * 1024, "metadata within a few KiB"
    fp32 = stores["fp32"].payload_nbytes
    assert fp32 / stores[8].payload_nbytes == 4.0
    assert fp32 / stores[7].payload_nbytes == pytest.approx(32 / 7, rel=1e-12)
    assert round(fp32 / stores[7].payload_nbytes, 2) == 4.57
    assert stores["fp32"].nbytes / stores[8].nbytes == pytest.approx(4.0, rel=1e-3)
    assert stores["fp32"].nbytes / stores[7].nbytes == pytest.approx(32 / 7, rel=1e-3)
    # dense packing also when slots do not start on a byte boundary
    odd = LatentReplayStore(3, (5,), 7, value_range=(0, 1))
    assert odd.payload_nbytes == 14   # ceil(3 * 5 * 7 / 8)


# ---------------------------------------------------------------- bad input
def snapshot(store):
    return (store._payload.copy(), store._labels.copy(), store._batch.copy(), store._rng.state,
            repr(store._policy_state), len(store))


def same(a, b):
    return all(np.array_equal(u, v) if isinstance(u, np.ndarray) else u == v for u, v in zip(a, b))


def test_bad_arguments_refused_and_store_unchanged(rng):
    store = LatentReplayStore(10, (2, 4), 5, value_range=(-1, 1), policy="reservoir", num_classes=3)
    x = rng.uniform(-1, 1, (4, 2, 4)).astype(np.float32)
    store.insert(x, np.array([0, 1, 2, 0]))
    store.update(x, np.array([0, 1, 2, 0]), 0)
    before = snapshot(store)
    nan = x.copy()
    nan[2, 1, 3] = np.nan
    inf = x.copy()
    inf[0, 0, 0] = -np.inf
    cases = [
        (TypeError, "latents", lambda: store.insert(x.astype(np.float64), np.zeros(4, int))),
        (TypeError, "latents", lambda: store.insert(x.tolist(), np.zeros(4, int))),
        (ValueError, "latents", lambda: store.insert(x.reshape(4, 8), np.zeros(4, int))),
        (ValueError, "latents", lambda: store.insert(nan, np.zeros(4, int), [5, 6, 7, 8])),
        (ValueError, "latents", lambda: store.insert(inf, np.zeros(4, int))),
        (ValueError, "latents", lambda: store.update(nan, np.zeros(4, int), 1)),
        (TypeError, "labels", lambda: store.insert(x, np.zeros(4, np.float32))),
        (ValueError, "labels", lambda: store.insert(x, np.zeros(3, int))),
        (ValueError, "labels", lambda: store.insert(x, np.array([0, 1, 3, 0]))),
        (ValueError, "labels", lambda: store.update(x, np.array([0, -1, 2, 0]), 1)),
        (ValueError, "slots", lambda: store.insert(x, np.zeros(4, int), [0, 1, 2, 10])),
        (ValueError, "slots", lambda: store.insert(x, np.zeros(4, int), [0, 1, 2, -1])),
        (ValueError, "slots", lambda: store.insert(x, np.zeros(4, int), [0, 1, 1, 2])),
        (TypeError, "slots", lambda: store.insert(x, np.zeros(4, int), np.array([0., 1, 2, 3]))),
        (ValueError, "slots", lambda: store.gather([0, 10])),
        (ValueError, "batch_index", lambda: store.update(x, np.zeros(4, int), -1)),
        (TypeError, "rng", lambda: store.update(x, np.zeros(4, int), 1, rng=42)),
        (ValueError, "k", lambda: store.sample(100)),
        (ValueError, "free slots", lambda: store.insert(np.zeros((20, 2, 4), np.float32), np.zeros(20, int))),
        (ValueError, "quantization", lambda: store.calibrate(value_range=(0, 1))),
        (TypeError, "out", lambda: store.gather_into([0], np.zeros((1, 2, 4)))),
        (ValueError, "out", lambda: store.gather_into([0], np.zeros((2, 2, 4), np.float32))),
    ]
    for exc, word, call in cases:
        with pytest.raises(exc, match=word):
            call()
        assert same(snapshot(store), before), word


@pytest.mark.parametrize("kwargs, exc, word", [
    ({"capacity": 0}, ValueError, "capacity"),
    ({"capacity": 2.5}, TypeError, "capacity"),
    ({"bits": 0}, ValueError, "bits"),
    ({"bits": 9}, ValueError, "bits"),
    ({"bits": "fp8"}, ValueError, "bits"),
    ({"bits": True}, TypeError, "bits"),
    ({"shape": (8, 0)}, ValueError, "shape"),
    ({"shape": ()}, ValueError, "shape"),
    ({"granularity": "row"}, ValueError, "granularity"),
    ({"policy": "fifo"}, ValueError, "policy"),
    ({"seed": -1}, ValueError, "seed"),
    ({"value_range": (1.0, 1.0)}, ValueError, "value_range"),
    ({"value_range": (0.0, np.nan)}, ValueError, "value_range"),
    ({"value_range": (0, 1), "calibration": np.zeros((1, 4), np.float32)}, ValueError, "at most one"),
    ({"int8_params": (0.0, 3)}, ValueError, "scale"),
    ({"int8_params": ("a", 3)}, ValueError, "scale"),
    ({"int8_params": (0.1, 3.5)}, TypeError, "zero_point"),
    ({"value_range": ("a", 1)}, ValueError, "value_range"),
    ({"value_range": (0, [1, 2])}, ValueError, "value_range"),
    ({"bits": "fp32", "value_range": (0, 1)}, ValueError, "quantized"),
])
def test_bad_construction(kwargs, exc, word):
    args = {"capacity": 4, "shape": (4,), "bits": 8}
    args.update(kwargs)
    with pytest.raises(exc, match=word):
        LatentReplayStore(args.pop("capacity"), args.pop("shape"), args.pop("bits"), **args)


def test_uncalibrated_and_empty_slots(rng):
    store = LatentReplayStore(4, (3,), 4)
    with pytest.raises(ValueError, match="quantization range"):
        store.insert(np.zeros((1, 3), np.float32), np.zeros(1, int))
    store.calibrate(rng.uniform(-1, 1, (10, 3)).astype(np.float32))
    store.insert(np.zeros((1, 3), np.float32), np.zeros(1, int))
    with pytest.raises(ValueError, match="empty slot 1"):
        store.gather([0, 1])
    x, y = store.gather([0, 0, 0])   # repeats are fine (a mini-batch may wrap around)
    assert x.shape == (3, 3) and (y == 0).all()


# ---------------------------------------------------------------- policies
def test_ar1_rule_fills_then_replaces(rng):
    """NICv2 shape: M = 1500, batches of 300: five batches fill the store, then
    h = M // (i + 1) latents of batch i replace random slots."""
    store = LatentReplayStore(1500, (2,), 8, value_range=(0, 255), seed=7)
    for i in range(8):
        x = np.full((300, 2), i, np.float32)
        written = store.update(x, np.full(300, i), i)
        assert len(written) == min(1500 // (i + 1), 300)
        assert len(store) == min(300 * (i + 1), 1500)
    counts = np.bincount(store.batch_indices, minlength=8)
    assert counts[7] == 187 and counts[6] <= 214 and counts[5] <= 250 and counts.sum() == 1500
    _, labels = store.gather(np.arange(1500))
    assert (labels == store.batch_indices).all()


@pytest.mark.parametrize("policy", ["ar1", "reservoir", "class_balanced"])
def test_policies_reproducible(policy, rng):
    x = rng.uniform(0, 6, (24, 4)).astype(np.float32)
    y = rng.integers(0, 5, 24)
    runs = []
    for _ in range(2):
        store = LatentReplayStore(16, (4,), 6, value_range=(0, 6), policy=policy, seed=123)
        for i in range(6):
            store.update(np.roll(x, i, axis=0), np.roll(y, i), i)
        runs.append(snapshot(store))
        # a caller's numpy generator gives reproducible runs too
        other = LatentReplayStore(16, (4,), 6, value_range=(0, 6), policy=policy)
        gen = np.random.default_rng(5)
        for i in range(6):
            other.update(np.roll(x, i, axis=0), np.roll(y, i), i, rng=gen)
        runs.append(snapshot(other))
    assert same(runs[0], runs[2]) and same(runs[1], runs[3])


def test_class_balanced_keeps_classes_balanced(rng):
    store = LatentReplayStore(40, (2,), 8, value_range=(0, 1), policy="class_balanced", seed=1)
    # a stream dominated by class 0
    for i in range(20):
        y = np.where(rng.random(30) < 0.8, 0, rng.integers(1, 4, 30))
        store.update(rng.random((30, 2)).astype(np.float32), y, i)
    counts = np.bincount(store.labels[store.labels >= 0], minlength=4)
    assert counts.max() - counts.min() <= 2, counts


def test_sample(rng):
    store = LatentReplayStore(50, (2,), 8, value_range=(0, 1))
    store.insert(rng.random((30, 2)).astype(np.float32), np.zeros(30, int))
    s = store.sample(30)
    assert sorted(s.tolist()) == list(range(30))
    assert len(set(store.sample(10, np.random.default_rng(0)).tolist())) == 10
    assert store.sample(0).shape == (0,)
