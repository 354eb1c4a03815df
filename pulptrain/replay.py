"""The quantized latent-replay (LR) store.

``LatentReplayStore(capacity, shape, bits)`` keeps ``capacity`` latents of
``shape`` (NHWC without the batch axis, channels last) with a label and the
index of the batch it came from. Values are stored as densely packed Q-bit
codes (``bits`` 1..8: the payload is exactly ceil(capacity * prod(shape) * Q / 8)
bytes) under a uniform affine quantization with a scale and a zero point per
tensor or per channel, or as binary16 / binary32 baselines (``bits`` "fp16" /
"fp32"). The C kernels (csrc/replay, pt_replay.h) pack, unpack and
(de)quantize; this class owns the memory, labels, policies and persistence.

The quantization range comes from one of: ``value_range=(lo, hi)`` (e.g.
(0, 6) after ReLU6; per channel: two arrays of C values), ``calibration=``
latents (their min / max), or ``int8_params=(scale, zero_point)`` of the INT8
frozen stage's output (the store then uses scale * 2^(8-Q) and takes that
stage's uint8 / int8 codes directly with ``insert_codes``, in integer
arithmetic). The range is widened to include 0 so that 0.0 is exact.

Bad input policy: wrong types or dtypes raise TypeError, wrong shapes or
values (bits, capacity, slot indices, labels, NaN / Inf latents, ...) raise
ValueError naming the argument; in every such case the store (payload,
labels, policy and generator state) is left exactly as it was.
"""
from __future__ import annotations

import copy
import math
import numbers

import numpy as np

from pulptrain import _alloc, _replay
from pulptrain import _replay_format as fmt
from pulptrain import _replay_policy as pol
from pulptrain._threads import get_num_threads
from pulptrain._validate import as_f32, positive_int
from pulptrain.errors import StatusError

__all__ = ["LatentReplayStore"]

_FLOAT_MODES = {"fp16": 16, "float16": 16, "fp32": 32, "float32": 32}
_STATUS_NONFINITE = 7
_ONE = np.ones(1, np.float32)
_ZERO = np.zeros(1, np.int32)


def _parse_bits(bits) -> int:
    if isinstance(bits, str):
        if bits.lower() not in _FLOAT_MODES:
            raise ValueError(f"bits must be 1..8, 'fp16' or 'fp32', got {bits!r}")
        return _FLOAT_MODES[bits.lower()]
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral):
        raise TypeError(f"bits must be an int or 'fp16' / 'fp32', got {type(bits).__name__}")
    if not (1 <= bits <= 8 or bits in (16, 32)):
        raise ValueError(f"bits must be 1..8, 16 ('fp16') or 32 ('fp32'), got {bits}")
    return int(bits)


def _int_array(name: str, a, shape: tuple) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        if isinstance(a, (list, tuple)) and all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                                                for v in a):
            a = np.asarray(a, dtype=np.int64).reshape(len(a))
        else:
            raise TypeError(f"{name} must be a numpy.ndarray of integers, got {type(a).__name__}")
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must have an integer dtype, got {a.dtype}")
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    return a


class LatentReplayStore:
    """A fixed-capacity memory of quantized latents (see the module doc)."""

    def __init__(self, capacity: int, shape, bits=8, *, granularity: str = "tensor",
                 value_range=None, calibration=None, int8_params=None, policy: str = "ar1",
                 seed: int = 0, num_classes: int | None = None):
        capacity = positive_int("capacity", capacity)
        if capacity > 1 << 40:
            raise ValueError(f"capacity must be <= 2**40, got {capacity}")
        if isinstance(shape, numbers.Integral):
            shape = (shape,)
        if not isinstance(shape, (tuple, list)) or not 1 <= len(shape) <= 8:
            raise ValueError(f"shape must be a tuple of 1 to 8 positive ints, got {shape!r}")
        shape = tuple(positive_int(f"shape[{i}]", d) for i, d in enumerate(shape))
        self._bits = _parse_bits(bits)
        if granularity not in ("tensor", "channel"):
            raise ValueError(f"granularity must be 'tensor' or 'channel', got {granularity!r}")
        if policy not in pol.POLICIES:
            raise ValueError(f"policy must be one of {pol.POLICIES}, got {policy!r}")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 1 << 64:
            raise ValueError(f"seed must be an int in [0, 2**64), got {seed!r}")
        if num_classes is not None:
            num_classes = positive_int("num_classes", num_classes)
        sources = [n for n, v in (("value_range", value_range), ("calibration", calibration),
                                  ("int8_params", int8_params)) if v is not None]
        if len(sources) > 1:
            raise ValueError(f"give at most one of value_range, calibration, int8_params (got {sources})")
        if sources and self._bits > 8:
            raise ValueError(f"{sources[0]} needs a quantized store (bits 1..8), not bits={bits!r}")

        self._capacity = capacity
        self._shape = shape
        self._elems = math.prod(shape)
        self._channels = shape[-1]
        self._per_channel = granularity == "channel"
        self._layout = (capacity, self._elems, self._channels, self._bits, int(self._per_channel))
        self._policy = policy
        self._policy_state = pol.initial_state(policy)
        self._rng = pol.SplitMix64(seed)
        self._num_classes = num_classes
        self._scale: np.ndarray | None = None
        self._zero_point: np.ndarray | None = None
        self._int8_source: tuple[np.ndarray, np.ndarray] | None = None
        self._payload = np.zeros(_replay.payload_bytes(self._layout), np.uint8)
        self._labels = np.full(capacity, -1, np.int32)
        self._batch = np.full(capacity, -1, np.int32)
        self._count = 0
        if value_range is not None or calibration is not None:
            self.calibrate(calibration, value_range=value_range)
        elif int8_params is not None:
            self._set_int8_source(*self._int8_pair("int8_params", int8_params))

    # ---------------------------------------------------------- quantization
    @property
    def quantized(self) -> bool:
        return self._bits <= 8

    @property
    def is_calibrated(self) -> bool:
        return not self.quantized or self._scale is not None

    @property
    def quant_params(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(scale float32[P], zero_point int32[P]), P = C per channel else 1; None
        for fp16 / fp32 stores and before calibration."""
        if self._scale is None:
            return None
        return self._scale.copy(), self._zero_point.copy()

    def _param_count(self) -> int:
        return self._channels if self._per_channel else 1

    def calibrate(self, data=None, *, value_range=None) -> None:
        """Set the quantization range from data [..., *shape] (its min / max per
        tensor or per channel) or from value_range=(lo, hi) (scalars or, per
        channel, arrays of C values). Only while the store is empty."""
        if not self.quantized:
            raise ValueError(f"a bits={self._bits} store has no quantization range to calibrate")
        if self._count:
            raise ValueError("cannot change the quantization of a store that holds latents")
        if (data is None) == (value_range is None):
            raise ValueError("give exactly one of data or value_range")
        p = self._param_count()
        if data is not None:
            data = as_f32("data", data)
            if data.shape[data.ndim - len(self._shape):] != self._shape:
                raise ValueError(f"data must have shape (..., {', '.join(map(str, self._shape))}), got {data.shape}")
            if not np.isfinite(data).all():
                raise ValueError("data must be finite (found NaN or Inf)")
            flat = data.reshape(-1, p)
            lo, hi = flat.min(axis=0).astype(np.float64), flat.max(axis=0).astype(np.float64)
        else:
            if not isinstance(value_range, (tuple, list)) or len(value_range) != 2:
                raise ValueError(f"value_range must be a pair (lo, hi), got {value_range!r}")
            try:
                lo, hi = (np.broadcast_to(np.asarray(v, np.float64), (p,)) if np.ndim(v) == 0
                          else np.asarray(v, np.float64) for v in value_range)
            except (TypeError, ValueError):
                raise ValueError(f"value_range must hold numbers, got {value_range!r}") from None
            if lo.shape != (p,) or hi.shape != (p,):
                raise ValueError(f"value_range entries must be scalars or have shape ({p},), "
                                 f"got {lo.shape} and {hi.shape}")
            if not (np.isfinite(lo).all() and np.isfinite(hi).all()) or (lo >= hi).any():
                raise ValueError(f"value_range must be finite with lo < hi, got {value_range!r}")
        lo, hi = np.minimum(lo, 0.0), np.maximum(hi, 0.0)
        qmax = (1 << self._bits) - 1
        scale = np.where(hi > lo, (hi - lo) / qmax, 1.0).astype(np.float32)
        scale = np.maximum(scale, np.float32(np.finfo(np.float32).tiny))
        zero_point = np.clip(np.floor(-lo / scale.astype(np.float64) + 0.5), 0, qmax).astype(np.int32)
        self._scale, self._zero_point, self._int8_source = scale, zero_point, None

    def _int8_pair(self, name: str, params) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(params, (tuple, list)) or len(params) != 2:
            raise ValueError(f"{name} must be a pair (scale, zero_point), got {params!r}")
        p = self._param_count()
        try:
            scale = np.asarray(params[0], np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} scale must be numbers, got {params[0]!r}") from None
        zero_point = np.asarray(params[1])
        if zero_point.dtype.kind not in "iu" and not (zero_point.dtype.kind == "f" and
                                                       np.all(zero_point == np.round(zero_point))):
            raise TypeError(f"{name} zero_point must be integer, got {zero_point.dtype}")
        scale = np.broadcast_to(scale, (p,)) if scale.ndim == 0 else scale
        zero_point = np.broadcast_to(zero_point, (p,)) if zero_point.ndim == 0 else zero_point
        if scale.shape != (p,) or zero_point.shape != (p,):
            raise ValueError(f"{name} must hold scalars or arrays of shape ({p},) for "
                             f"granularity={'channel' if self._per_channel else 'tensor'}")
        if not np.isfinite(scale).all() or (scale <= 0).any():
            raise ValueError(f"{name} scale must be finite and > 0")
        zero_point = zero_point.astype(np.int64)
        if (zero_point < -128).any() or (zero_point > 255).any():
            raise ValueError(f"{name} zero_point must lie in [-128, 255]")
        return scale.astype(np.float32), zero_point

    def _set_int8_source(self, scale_in: np.ndarray, zero_point_in: np.ndarray) -> None:
        """Store params derived from the INT8 stage's: scale * 2^(8-Q), zero
        point rounded to the Q-bit grid (integer arithmetic, at most 2^Q - 1)."""
        if (zero_point_in < 0).any():
            raise ValueError("int8_params zero_point must be a uint8 zero point in [0, 255] "
                             "(for int8 codes add 128 to it)")
        shift = 8 - self._bits
        self._scale = (scale_in * np.float32(1 << shift)).astype(np.float32)
        rounded = (zero_point_in + ((1 << shift) >> 1)) >> shift
        self._zero_point = np.minimum(rounded, (1 << self._bits) - 1).astype(np.int32)
        self._int8_source = (scale_in, zero_point_in.astype(np.int32))

    def _require_calibrated(self) -> None:
        if not self.is_calibrated:
            raise ValueError("the store has no quantization range yet: pass value_range=, "
                             "calibration= or int8_params= to the constructor, or call calibrate()")

    def _quant_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return (self._scale, self._zero_point) if self.quantized else (_ONE, _ZERO)

    # ---------------------------------------------------------- validation
    def _check_latents(self, latents, name: str = "latents") -> np.ndarray:
        latents = as_f32(name, latents)
        if latents.ndim != 1 + len(self._shape) or latents.shape[1:] != self._shape:
            raise ValueError(f"{name} must have shape (n, {', '.join(map(str, self._shape))}), got {latents.shape}")
        return latents

    def _check_labels(self, labels, n: int) -> np.ndarray:
        labels = _int_array("labels", labels, (n,))
        hi = self._num_classes if self._num_classes is not None else 1 << 31
        if n and (labels.min() < 0 or labels.max() >= hi):
            bad = labels[(labels < 0) | (labels >= hi)][0]
            raise ValueError(f"labels must lie in [0, {hi}), found {bad}")
        return labels.astype(np.int32)

    def _check_slots(self, slots, n: int | None, distinct: bool, filled: bool) -> np.ndarray:
        if isinstance(slots, numbers.Integral) and not isinstance(slots, bool):
            slots = np.array([slots])
        slots = _int_array("slots", slots, (n,) if n is not None else (len(slots),) if hasattr(slots, "__len__") else ())
        if slots.ndim != 1:
            raise ValueError(f"slots must be one-dimensional, got shape {slots.shape}")
        if len(slots) and (slots.min() < 0 or slots.max() >= self._capacity):
            bad = slots[(slots < 0) | (slots >= self._capacity)][0]
            raise ValueError(f"slots must lie in [0, {self._capacity}), found {bad}")
        slots = np.ascontiguousarray(slots, dtype=np.int64)
        if distinct and len(np.unique(slots)) != len(slots):
            raise ValueError("slots must be distinct")
        if filled and len(slots) and (self._labels[slots] < 0).any():
            raise ValueError(f"slots refers to empty slot {int(slots[self._labels[slots] < 0][0])}")
        return slots

    def _free_slots(self, n: int) -> np.ndarray:
        free = np.flatnonzero(self._labels < 0)
        if len(free) < n:
            raise ValueError(f"the store has {len(free)} free slots, cannot insert {n} latents "
                             f"without slots=")
        return free[:n].astype(np.int64)

    # ---------------------------------------------------------- insert / gather
    def _commit(self, slots: np.ndarray, labels: np.ndarray, batch_index: int) -> None:
        self._count += int((self._labels[slots] < 0).sum())
        self._labels[slots] = labels
        self._batch[slots] = batch_index

    def insert(self, latents, labels, slots=None, *, batch_index: int = -1) -> np.ndarray:
        """Quantize latents [n, *shape] into slots (None: the n lowest free
        slots); returns the slots written."""
        latents = self._check_latents(latents)
        n = latents.shape[0]
        labels = self._check_labels(labels, n)
        batch_index = self._check_batch_index(batch_index, allow_none=True)
        self._require_calibrated()
        slots = self._free_slots(n) if slots is None else self._check_slots(slots, n, True, False)
        if n == 0:
            return slots
        scale, zero_point = self._quant_arrays()
        try:
            _replay.insert_f32(self._layout, scale, zero_point, slots, latents.reshape(-1),
                               self._payload, get_num_threads())
        except StatusError as exc:
            if exc.status == _STATUS_NONFINITE:
                raise ValueError("latents must be finite (found NaN or Inf); the store is unchanged") from None
            raise
        self._commit(slots, labels, batch_index)
        return slots

    def insert_codes(self, codes, scale, zero_point, labels, slots=None, *, batch_index: int = -1) -> np.ndarray:
        """Store 8-bit codes [n, *shape] (uint8, or int8 with zero_point in
        [-128, 127]) of the INT8 frozen stage with their (scale, zero_point),
        per tensor or per channel like the store. Requantized to Q bits in
        integer arithmetic: code = zp + round((q - zp_in) * scale_in / scale)."""
        if not self.quantized:
            raise ValueError(f"insert_codes needs a quantized store (bits 1..8), this one has bits={self._bits}")
        if not isinstance(codes, np.ndarray) or codes.dtype not in (np.uint8, np.int8):
            raise TypeError(f"codes must be a numpy.ndarray of uint8 or int8, got "
                            f"{getattr(codes, 'dtype', type(codes).__name__)}")
        if codes.ndim != 1 + len(self._shape) or codes.shape[1:] != self._shape:
            raise ValueError(f"codes must have shape (n, {', '.join(map(str, self._shape))}), got {codes.shape}")
        n = codes.shape[0]
        labels = self._check_labels(labels, n)
        batch_index = self._check_batch_index(batch_index, allow_none=True)
        scale_in, zero_point_in = self._int8_pair("(scale, zero_point)", (scale, zero_point))
        if codes.dtype == np.int8:
            if (zero_point_in > 127).any():
                raise ValueError("zero_point of int8 codes must lie in [-128, 127]")
            codes = (codes.view(np.uint8) ^ np.uint8(0x80))   # q + 128, exact
            zero_point_in = zero_point_in + 128
        elif (zero_point_in < 0).any():
            raise ValueError("zero_point of uint8 codes must lie in [0, 255]")
        if self._scale is None:
            self._require_calibrated()
        multiplier, shift = self._requant_params(scale_in)
        slots = self._free_slots(n) if slots is None else self._check_slots(slots, n, True, False)
        if n == 0:
            return slots
        _replay.insert_codes_u8(self._layout, self._scale, self._zero_point, multiplier, shift,
                                zero_point_in.astype(np.int32), slots,
                                np.ascontiguousarray(codes).reshape(-1), self._payload, get_num_threads())
        self._commit(slots, labels, batch_index)
        return slots

    def _requant_params(self, scale_in: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """scale_in / scale as a Q31 multiplier and a right shift, per entry."""
        multiplier = np.empty(len(scale_in), np.int32)
        shift = np.empty(len(scale_in), np.int32)
        for i, (s_in, s_out) in enumerate(zip(scale_in.astype(np.float64), self._scale.astype(np.float64))):
            mantissa, exponent = math.frexp(s_in / s_out)
            m = round(mantissa * (1 << 31))
            if m == 1 << 31:
                m, exponent = m >> 1, exponent + 1
            if not 1 <= 31 - exponent <= 62:
                raise ValueError(f"scale ratio {s_in / s_out:g} between the codes and the store is out of range")
            multiplier[i], shift[i] = m, 31 - exponent
        return multiplier, shift

    def gather_into(self, slots, out: np.ndarray) -> np.ndarray:
        """Dequantize slots (may repeat) into out [k, *shape] (C-contiguous
        float32, written in place); returns their labels int32 [k]."""
        return self._gather_into(self._check_slots(slots, None, False, True), out)

    def _gather_into(self, slots: np.ndarray, out) -> np.ndarray:
        if not isinstance(out, np.ndarray) or out.dtype != np.float32:
            raise TypeError(f"out must be a numpy.ndarray of float32, got {getattr(out, 'dtype', type(out).__name__)}")
        if out.shape != (len(slots),) + self._shape:
            raise ValueError(f"out must have shape {(len(slots),) + self._shape}, got {out.shape}")
        if not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError("out must be C-contiguous and writeable")
        if len(slots):
            scale, zero_point = self._quant_arrays()
            _replay.gather_f32(self._layout, scale, zero_point, slots, self._payload, out.reshape(-1),
                               get_num_threads())
        return self._labels[slots].copy()

    def gather(self, slots) -> tuple[np.ndarray, np.ndarray]:
        """(latents float32 [k, *shape], labels int32 [k]) of filled slots."""
        slots = self._check_slots(slots, None, False, True)
        out = _alloc.empty((len(slots),) + self._shape, np.float32)
        return out, self._gather_into(slots, out)

    def quantize_roundtrip(self, x) -> np.ndarray:
        """What latents x [n, *shape] (or one latent [*shape]) look like after
        storage; the store is not touched."""
        single = isinstance(x, np.ndarray) and x.shape == self._shape
        x = self._check_latents(x[None] if single else x, "x")
        self._require_calibrated()
        if x.shape[0] == 0:
            return x.copy()
        layout = (x.shape[0],) + self._layout[1:]
        payload = np.empty(_replay.payload_bytes(layout), np.uint8)
        slots = np.arange(x.shape[0], dtype=np.int64)
        scale, zero_point = self._quant_arrays()
        try:
            _replay.insert_f32(layout, scale, zero_point, slots, x.reshape(-1), payload, get_num_threads())
        except StatusError as exc:
            if exc.status == _STATUS_NONFINITE:
                raise ValueError("x must be finite (found NaN or Inf)") from None
            raise
        out = _alloc.empty_like(x)
        _replay.gather_f32(layout, scale, zero_point, slots, payload, out.reshape(-1), get_num_threads())
        return out[0] if single else out

    # ---------------------------------------------------------- policies
    @staticmethod
    def _check_batch_index(batch_index, allow_none: bool = False) -> int:
        if isinstance(batch_index, bool) or not isinstance(batch_index, numbers.Integral):
            raise TypeError(f"batch_index must be an int, got {type(batch_index).__name__}")
        lo = -1 if allow_none else 0
        if not lo <= batch_index < 1 << 31:
            raise ValueError(f"batch_index must lie in [{lo}, 2**31), got {batch_index}")
        return int(batch_index)

    def _draws(self, rng):
        if rng is None:
            return self._rng
        if isinstance(rng, np.random.Generator):
            return pol.NumpyDraws(rng)
        raise TypeError(f"rng must be None or a numpy.random.Generator, got {type(rng).__name__}")

    def update(self, latents, labels, batch_index: int, rng=None) -> np.ndarray:
        """Apply the replacement policy to a new batch (latents [n, *shape],
        labels [n]) that is the batch_index-th (0-based) of the stream; rng:
        None for the store's own seeded generator (saved with it) or a numpy
        Generator. Returns the slots written."""
        latents = self._check_latents(latents)
        n = latents.shape[0]
        labels = self._check_labels(labels, n)
        batch_index = self._check_batch_index(batch_index)
        draws = self._draws(rng)
        self._require_calibrated()
        if not np.isfinite(latents).all():
            raise ValueError("latents must be finite (found NaN or Inf); the store is unchanged")
        saved = (self._rng.state, copy.deepcopy(self._policy_state))
        try:
            if self._policy == "ar1":
                plan = pol.ar1_plan(draws, self._labels, n, batch_index)
            elif self._policy == "reservoir":
                plan = pol.reservoir_plan(draws, self._labels, labels, self._policy_state)
            else:
                plan = pol.class_balanced_plan(draws, self._labels, labels, self._policy_state)
            rows, slots = pol.dedupe_plan(plan)
            if len(slots):
                self.insert(latents[rows], labels[rows], slots, batch_index=batch_index)
        except BaseException:
            self._rng.state, self._policy_state = saved
            raise
        return slots

    def sample(self, k: int, rng=None) -> np.ndarray:
        """k distinct filled slots drawn uniformly (int64), from rng or the
        store's own generator."""
        k = positive_int("k", k, minimum=0)
        if k > self._count:
            raise ValueError(f"k must be <= the {self._count} filled slots, got {k}")
        filled = np.flatnonzero(self._labels >= 0)
        return filled[np.asarray(self._draws(rng).sample(len(filled), k), dtype=np.int64)].astype(np.int64)

    # ---------------------------------------------------------- introspection
    def __len__(self) -> int:
        return self._count

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def bits(self) -> int:
        """Bits per stored value: 1..8 (packed codes), 16 (fp16) or 32 (fp32)."""
        return self._bits

    @property
    def granularity(self) -> str:
        return "channel" if self._per_channel else "tensor"

    @property
    def policy(self) -> str:
        return self._policy

    @property
    def labels(self) -> np.ndarray:
        """Label of every slot (read-only int32 [capacity]; -1 = empty)."""
        view = self._labels.view()
        view.flags.writeable = False
        return view

    @property
    def batch_indices(self) -> np.ndarray:
        """Batch each slot's latent came from (read-only int32 [capacity]; -1 = none)."""
        view = self._batch.view()
        view.flags.writeable = False
        return view

    @property
    def payload_nbytes(self) -> int:
        """Bytes of the packed values: ceil(capacity * prod(shape) * bits / 8)."""
        return self._payload.nbytes

    @property
    def nbytes(self) -> int:
        """True memory of the store: payload + per-slot label and batch index
        (4 + 4 bytes) + quantization parameters."""
        params = 0 if self._scale is None else self._scale.nbytes + self._zero_point.nbytes
        if self._int8_source is not None:
            params += self._int8_source[0].nbytes + self._int8_source[1].nbytes
        return self._payload.nbytes + self._labels.nbytes + self._batch.nbytes + params

    def __repr__(self) -> str:
        return (f"LatentReplayStore(capacity={self._capacity}, shape={self._shape}, bits={self._bits}, "
                f"granularity={self.granularity!r}, policy={self._policy!r}, filled={self._count}, "
                f"nbytes={self.nbytes})")

    # ---------------------------------------------------------- persistence
    def save(self, path) -> None:
        """Write the store atomically (temporary file, fsync, rename, fsync of
        the directory): a crash leaves the old file or the new one."""
        header = {
            "capacity": self._capacity, "shape": list(self._shape), "bits": self._bits,
            "granularity": self.granularity, "policy": self._policy,
            "policy_state": self._policy_state, "rng_state": self._rng.state,
            "num_classes": self._num_classes, "payload_bytes": int(self._payload.nbytes),
            "param_count": 0 if self._scale is None else len(self._scale),
            "int8_source": None if self._int8_source is None else {
                "scale": [float(v) for v in self._int8_source[0]],
                "zero_point": [int(v) for v in self._int8_source[1]]},
        }
        scale = self._scale if self._scale is not None else np.zeros(0, np.float32)
        zero_point = self._zero_point if self._zero_point is not None else np.zeros(0, np.int32)
        arrays = [scale.astype("<f4"), zero_point.astype("<i4"), self._labels.astype("<i4"),
                  self._batch.astype("<i4"), self._payload]
        fmt.write_atomic(path, fmt.encode(header, arrays))

    @classmethod
    def load(cls, path) -> "LatentReplayStore":
        """Read a store written by save(); FormatError if the file is
        truncated, corrupted or not a replay store."""
        return fmt.load_store(cls, path)
