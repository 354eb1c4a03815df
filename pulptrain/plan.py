"""Memory, latency and energy of a continual-learning configuration.

``plan(PlanConfig(...))`` answers, for a latent-replay (LR) layer, an LR count
and a bit width, how many bytes each buffer takes and where it lives on VEGA,
how long one learning event takes on VEGA and on an STM32L4, how much energy
it costs and how long a battery lasts. Every constant comes from
``pulptrain/data/plan_params.json`` with its source; the model is:

- memory: the buffers the runtime allocates, item by item (stable keys in
  ``Plan.memory``, so a runtime can compare its real allocations in one loop);
- cycles: MACs per kernel (``pulptrain.netspec``) / MAC-per-cycle per kernel
  kind and phase, plus elementwise work and the SGD update;
- DMA (VEGA only): bytes each kernel moves into L1 / bandwidth of the memory
  the operand lives in; added to compute time, or overlapped per kernel;
- energy: active power x time; lifetime: battery energy / average power.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from pulptrain import netspec
from pulptrain.netspec import Layer

PARAMS_PATH = Path(__file__).parent / "data" / "plan_params.json"
FP32 = 4
TARGETS = ("vega", "stm32l4")
UPDATE_RULES = ("minibatch", "minibatch_fused", "per_sample")
LIFETIME_EVENTS = ("minibatch", "learning_event")
# VEGA FP32 kernel tables: PULP-TrainLib-class kernels with the Xpulp
# extensions, or portable plain C (pulptrain's own kernels, measured on GVSoC).
VEGA_KERNELS = {"xpulp": "fp32_mac_per_cycle", "plain_c": "fp32_mac_per_cycle_plain_c"}
LEVELS = ("L1", "L2", "MRAM", "external")
# The order in which buffers claim L2: the most often touched first.
L2_PRIORITY = ("activation_grads", "activations", "frozen_activations", "adaptive_weights",
               "adaptive_grads", "momentum", "lr_store")
MIB = 1 << 20
CLUSTER_CORES = 8   # VEGA's compute cores; the MAC/cycle tables are for all 8


@dataclass(frozen=True)
class PlanConfig:
    """A continual-learning configuration. Defaults: the paper's workload
    (LR layer, LR count, bits, schedule) trained with the reference
    algorithm's mini-batch SGD with momentum.

    update_rule: "minibatch" keeps one FP32 gradient accumulator per parameter
    and steps once per mini-batch (the reference algorithm); "minibatch_fused"
    accumulates the gradients straight into the momentum buffer (same
    arithmetic, one buffer fewer); "per_sample" steps after every sample, one
    layer at a time, as PULP-TrainLib (batch size 1) does, so only the largest
    layer's gradient is ever held. micro_batch: samples that go through
    forward/backward together (activations are kept for that many); the
    host trainer (``pulptrain.cl``) runs whole mini-batches, i.e.
    micro_batch = batch_size, while a 1.6 MB-L2 device streams one sample."""
    backbone: str = "mobilenet_v1_1.0"
    input_size: int = 128
    num_classes: int = 50
    lr_layer: str = "conv5_4/dw"
    lr_count: int = 1500
    bits: int = 8
    batch_size: int = 128
    new_samples: int = 300
    epochs: int = 4
    micro_batch: int = 1
    update_rule: str = "minibatch"
    momentum: float = 0.9
    l1_bytes: int | None = None        # None: the parameter file's VEGA sizes and clocks
    l2_bytes: int | None = None
    mram_bytes: int | None = None
    external_bytes: int | None = None
    dma_overlap: bool = False
    lifetime_event: str = "minibatch"
    vega_kernels: str = "xpulp"
    vega_mhz: float | None = None
    stm32_mhz: float | None = None


# The configuration of the paper's own runtime (PULP-TrainLib: batch size 1,
# plain gradient descent), for the comparison with its figures.
PAPER_RUNTIME = dict(update_rule="per_sample", momentum=0.0, micro_batch=1)


@dataclass
class MemoryItem:
    key: str
    bytes: int
    level: str
    note: str


@dataclass
class Kernel:
    """Cost of one kernel per ``unit`` ("frame" through the frozen stage,
    "sample" or "replay" through the adaptive stage, SGD "step"): compute
    cycles per target and the bytes it moves into L1 by memory level, plus the
    bytes moved once per micro-batch (the weights, shared by its samples)."""
    stage: str          # "frozen" or "adaptive"
    layer: str
    kind: str
    phase: str          # forward / grad_input / grad_weight / quantize / ... / sgd_step
    unit: str
    work: int           # MACs (elements for elementwise kernels, parameters for the step)
    cycles: dict[str, float]
    dma_bytes: dict[str, int] = field(default_factory=dict)
    dma_bytes_per_micro_batch: dict[str, int] = field(default_factory=dict)


@dataclass
class TargetCost:
    """One target's time (s), energy (J) and power (mW active, uW asleep) for
    a learning event, and for the event repeated once per battery period."""
    target: str
    mhz: float
    active_mw: float
    sleep_uw: float
    compute_s: float
    dma_s: float
    seconds: float
    joules: float
    lifetime_event_s: float
    lifetime_event_j: float
    lifetime_h: float | None
    lifetime_note: str
    compute_breakdown_s: dict[str, float]   # learning event compute time by "stage phase"


@dataclass
class Plan:
    """The result of ``plan``; sizes in bytes, ``to_dict()`` for JSON."""
    config: PlanConfig
    layers: list[dict]
    schedule: dict
    memory: dict[str, MemoryItem]
    memory_total_bytes: int
    memory_by_level: dict[str, int]
    capacity_by_level: dict[str, int]
    kernels: list[Kernel]
    targets: dict[str, TargetCost]
    comparison: dict

    @property
    def fits(self) -> bool:
        return all(self.memory_by_level[lv] <= self.capacity_by_level[lv] for lv in LEVELS)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["fits"] = self.fits
        return d


# ---------------------------------------------------------------- parameters
def load_params(path: str | Path | None = None) -> dict:
    """The parameter file, with ``path`` (same layout, any subset) overriding it."""
    params = json.loads(PARAMS_PATH.read_text())
    if path is not None:
        _merge(params, json.loads(Path(path).read_text()))
    return params


def _merge(base: dict, update: dict) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def _v(entry):
    """Value of a parameter entry ({"value": ...} or a bare number)."""
    return entry["value"] if isinstance(entry, dict) else entry


# ---------------------------------------------------------------- validation
def _check_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")


def resolve(config: PlanConfig, params: dict) -> PlanConfig:
    """``config`` with the memory sizes and clocks left as None taken from ``params``."""
    defaults = {name: params["vega"][name] for name in ("l1_bytes", "l2_bytes", "mram_bytes", "external_bytes")}
    defaults.update(vega_mhz=params["vega"]["cluster_mhz"], stm32_mhz=params["stm32l4"]["mhz"])
    return dataclasses.replace(config, **{name: _v(entry) for name, entry in defaults.items()
                                          if getattr(config, name) is None})


def validate(config: PlanConfig) -> None:
    """Raise ValueError / TypeError naming the first bad field of a resolved ``config``."""
    for name in ("backbone", "lr_layer"):
        if not isinstance(getattr(config, name), str):
            raise TypeError(f"{name} must be a str, got {type(getattr(config, name)).__name__}")
    for name in ("input_size", "num_classes", "batch_size", "new_samples", "epochs",
                 "micro_batch", "l1_bytes", "l2_bytes"):
        _check_int(name, getattr(config, name))
    for name in ("lr_count", "mram_bytes", "external_bytes"):
        _check_int(name, getattr(config, name), minimum=0)
    _check_int("bits", config.bits)
    if not (1 <= config.bits <= 8 or config.bits == 32):
        raise ValueError(f"bits must be in 1..8 (quantized LRs) or 32 (FP32 LRs), got {config.bits}")
    if config.input_size < 32:
        raise ValueError(f"input_size must be >= 32 for MobileNetV1, got {config.input_size}")
    _check_choice("update_rule", config.update_rule, UPDATE_RULES)
    _check_choice("lifetime_event", config.lifetime_event, LIFETIME_EVENTS)
    _check_choice("vega_kernels", config.vega_kernels, tuple(VEGA_KERNELS))
    if config.update_rule == "per_sample" and config.micro_batch != 1:
        raise ValueError(f"micro_batch must be 1 with update_rule='per_sample', got {config.micro_batch}")
    if config.micro_batch > config.batch_size:
        raise ValueError(f"micro_batch ({config.micro_batch}) must be <= batch_size ({config.batch_size})")
    if isinstance(config.momentum, bool) or not isinstance(config.momentum, (int, float)):
        raise TypeError(f"momentum must be a number, got {type(config.momentum).__name__}")
    if not (0.0 <= config.momentum < 1.0):
        raise ValueError(f"momentum must be in [0, 1), got {config.momentum}")
    for name in ("vega_mhz", "stm32_mhz"):
        value = getattr(config, name)
        if isinstance(value, bool) or not (isinstance(value, (int, float)) and 0 < value < math.inf):
            raise ValueError(f"{name} must be a positive number of MHz, got {value!r}")


# ---------------------------------------------------------------- schedule
def schedule(config: PlanConfig) -> dict:
    """Mini-batches of one learning event, cut by the trainer's own rule
    (``pulptrain.cl.mixing_plan``: N // ((N + M) // B) new samples per
    mini-batch, topped up with replays)."""
    from pulptrain.cl import mixing_plan

    mix = mixing_plan(config.new_samples, config.lr_count, config.batch_size)
    samples = mix.new_per_minibatch + mix.replays_per_minibatch
    steps = samples if config.update_rule == "per_sample" else 1
    return {"minibatches_per_epoch": mix.iterations, "new_per_minibatch": mix.new_per_minibatch,
            "replays_per_minibatch": mix.replays_per_minibatch, "samples_per_minibatch": samples,
            "minibatches_per_event": mix.iterations * config.epochs,
            "updates_per_minibatch": steps,
            "micro_batches_per_minibatch": math.ceil(samples / config.micro_batch)}


# ---------------------------------------------------------------- memory
def lr_store_bytes(count: int, elements: int, bits: int, params: dict | None = None) -> dict:
    """Bytes of the LR store: densely packed payload ceil(M * elements * Q / 8)
    plus per-entry metadata (label, batch index) and the quantization
    parameters (scale, zero point)."""
    _check_int("count", count, minimum=0)
    _check_int("elements", elements)
    _check_int("bits", bits)
    if not (1 <= bits <= 8 or bits == 32):
        raise ValueError(f"bits must be in 1..8 (quantized LRs) or 32 (FP32 LRs), got {bits}")
    mem = (params or load_params())["memory"]
    payload = math.ceil(count * elements * bits / 8)
    # An FP32 store keeps raw floats: no scale or zero point.
    quant_params = 0 if bits == 32 else _v(mem["lr_metadata_fixed_bytes"])
    metadata = count * _v(mem["lr_metadata_bytes_per_entry"]) + quant_params
    return {"payload": payload, "metadata": metadata, "total": payload + metadata}


def adaptive_memory(adaptive: list[Layer], micro_batch: int, update_rule: str,
                    momentum: float) -> dict[str, int]:
    """FP32 bytes of the adaptive stage's training buffers, keyed like Plan.memory.

    For a trainer to compare with its real allocations: weights and biases,
    gradient accumulators, momentum, the activations kept for backward (the
    input of every adaptive layer plus the logits, for ``micro_batch``
    samples) and two ping-pong buffers for the activation gradients."""
    params = sum(layer.params for layer in adaptive)
    if update_rule == "per_sample":
        grads = max(layer.params for layer in adaptive)
    elif update_rule == "minibatch_fused" and momentum > 0:
        grads = 0
    else:
        grads = params
    kept = sum(layer.in_elements for layer in adaptive) + adaptive[-1].out_elements
    widest_grad = max(layer.out_elements for layer in adaptive)
    return {"adaptive_weights": FP32 * params,
            "adaptive_grads": FP32 * grads,
            "momentum": FP32 * params if momentum > 0 else 0,
            "activations": FP32 * micro_batch * kept,
            "activation_grads": FP32 * micro_batch * 2 * widest_grad}


def _frozen_layer_bytes(layer: Layer, params: dict) -> int:
    """INT8 weights, then per output channel an int32 bias and the requantization."""
    return layer.weights + (FP32 + _v(params["memory"]["requant_bytes_per_channel"])) * layer.bias


def _memory(config, frozen, adaptive, params) -> tuple[dict[str, MemoryItem], dict[str, int]]:
    mem = params["memory"]
    lr_elements = frozen[-1].out_elements
    store = lr_store_bytes(config.lr_count, lr_elements, config.bits, params)
    sizes = adaptive_memory(adaptive, config.micro_batch, config.update_rule, config.momentum)
    sizes["frozen_weights"] = sum(_frozen_layer_bytes(layer, params) for layer in frozen)
    # INT8 ping-pong, one frame at a time (the image and every frozen output).
    widest = max([frozen[0].in_elements] + [layer.out_elements for layer in frozen])
    sizes["frozen_activations"] = 2 * widest
    sizes["lr_store"] = store["total"]
    # im2col rows of the full convolutions, one per core (FP32 if trained, INT8 if frozen).
    im2col = [layer.kernel ** 2 * layer.in_shape[2] * (1 if layer in frozen else FP32)
              for layer in frozen + adaptive if layer.kind == "conv"]
    sizes["scratch"] = CLUSTER_CORES * max(im2col, default=0)
    sizes["tile_buffers"] = max(0, config.l1_bytes - _v(mem["l1_reserved_bytes"]) - sizes["scratch"])

    notes = {
        "frozen_weights": "INT8 weights + int32 bias + requantization per channel",
        "adaptive_weights": "FP32 weights and biases above the LR layer",
        "adaptive_grads": {"minibatch": "FP32 gradient accumulators, one per parameter",
                           "minibatch_fused": "accumulated into the momentum buffer" if config.momentum > 0
                           else "FP32 gradient accumulators, one per parameter",
                           "per_sample": "largest layer's gradient, applied layer by layer"}[config.update_rule],
        "momentum": "FP32 SGD momentum" if config.momentum > 0 else "none (plain SGD)",
        "activations": f"FP32 inputs of the adaptive layers + logits, {config.micro_batch} sample(s)",
        "activation_grads": "two FP32 ping-pong buffers of the widest activation gradient",
        "frozen_activations": "INT8 ping-pong for the frozen stage, one frame at a time",
        "lr_store": f"{config.lr_count} LRs x {lr_elements} x {config.bits} bit packed "
                    f"({store['payload']} B) + labels and header ({store['metadata']} B)",
        "scratch": "im2col rows, one per core",
        "tile_buffers": "double-buffered tiles: the rest of L1",
    }
    levels = _place(config, sizes, params)
    items = {key: MemoryItem(key, int(sizes[key]), levels[key], notes[key]) for key in notes}
    return items, store


def _place(config, sizes: dict[str, int], params: dict) -> dict[str, str]:
    """Placement rule: tiles and scratch in L1; the other buffers claim L2 in
    the order of L2_PRIORITY while they fit; frozen weights (written once)
    go to the non-volatile MRAM if they fit; the rest to external RAM."""
    levels = {"tile_buffers": "L1", "scratch": "L1"}
    l2_free = config.l2_bytes - _v(params["memory"]["l2_reserved_bytes"])
    for key in L2_PRIORITY:
        if sizes[key] <= l2_free:
            levels[key] = "L2"
            l2_free -= sizes[key]
        else:
            levels[key] = "external"
    levels["frozen_weights"] = "MRAM" if sizes["frozen_weights"] <= config.mram_bytes else "external"
    return levels


# ---------------------------------------------------------------- cycles
def _kernels(config, frozen, adaptive, memory, params) -> list[Kernel]:
    """Per-sample cycles of every kernel on every target, with its DMA bytes."""
    loc = {key: item.level for key, item in memory.items()}
    kernels = []

    def rate(target, precision, kind, phase):
        table = f"{precision}_mac_per_cycle"
        if target == "vega" and precision == "fp32":
            table = VEGA_KERNELS[config.vega_kernels]
        return params[target][table][kind][phase]

    def elementwise(target):
        return _v(params[target]["elementwise_per_cycle"])

    def add(stage, layer, kind, phase, work, cyc, per_sample=None, per_micro=None, unit="sample"):
        kernels.append(Kernel(stage, layer, kind, phase, unit, int(work), cyc,
                              {k: int(v) for k, v in (per_sample or {}).items() if v},
                              {k: int(v) for k, v in (per_micro or {}).items() if v}))

    def traffic(pairs):
        out = {}
        for level, nbytes in pairs:
            if level != "L1":
                out[level] = out.get(level, 0) + nbytes
        return out

    # Frozen stage, INT8, one frame at a time: weights re-read for every frame.
    act = loc["frozen_activations"]
    for layer in frozen:
        cyc = {t: layer.macs_forward / rate(t, "int8", layer.kind, "forward") for t in TARGETS}
        w_bytes = _frozen_layer_bytes(layer, params)
        add("frozen", layer.name, layer.kind, "forward", layer.macs_forward, cyc,
            traffic([(act, layer.in_elements + layer.out_elements), (loc["frozen_weights"], w_bytes)]),
            unit="frame")
    lr_elems = frozen[-1].out_elements
    store_bytes = math.ceil(lr_elems * config.bits / 8)
    add("frozen", "lr_store", "elementwise", "quantize", lr_elems,
        {t: lr_elems / elementwise(t) for t in TARGETS}, traffic([(loc["lr_store"], store_bytes)]),
        unit="frame")

    # Adaptive stage, FP32, per sample. Traffic is the compulsory one: each
    # operand crosses into L1 once per kernel, weights once per micro-batch
    # (a lower bound: it assumes the tile schedule reuses every byte it loads).
    a, g, w = loc["activations"], loc["activation_grads"], loc["adaptive_weights"]
    acc = loc["momentum"] if config.update_rule == "minibatch_fused" and config.momentum > 0 \
        else loc["adaptive_grads"]
    add("adaptive", "lr_store", "elementwise", "dequantize", lr_elems,
        {t: lr_elems / elementwise(t) for t in TARGETS}, traffic([(loc["lr_store"], store_bytes)]),
        unit="replay")
    for i, layer in enumerate(adaptive):
        w_bytes = FP32 * layer.params
        act_in, act_out = FP32 * layer.in_elements, FP32 * layer.out_elements
        stream = [(w, w_bytes)]
        work = [("forward", [(a, act_in), (a, act_out)], stream)]
        if i > 0:
            work.append(("grad_input", [(g, act_out), (a, act_out), (g, act_in)], stream))
        if layer.kind != "pool":
            work.append(("grad_weight", [(a, act_in), (g, act_out)], [(acc, 2 * w_bytes)]))
        for phase, per_sample, per_micro in work:
            macs = getattr(layer, f"macs_{phase}")
            cyc = {t: macs / rate(t, "fp32", layer.kind, phase) for t in TARGETS}
            add("adaptive", layer.name, layer.kind, phase, macs, cyc, traffic(per_sample), traffic(per_micro))
        if layer.relu6 or layer.kind != "pool":
            elems = (2 if layer.relu6 else 0) * layer.out_elements + layer.out_elements
            add("adaptive", layer.name, "elementwise", "relu6_bias_grad", elems,
                {t: elems / elementwise(t) for t in TARGETS})
    return kernels


def _update_kernel(adaptive, memory, params) -> Kernel:
    """One SGD step over all adaptive parameters: read/write weights and
    momentum, read (and clear) the gradient accumulators."""
    n = sum(layer.params for layer in adaptive)
    cyc = {t: n / _v(params[t]["sgd_params_per_cycle"]) for t in TARGETS}
    traffic = {}
    for key, factor in (("adaptive_weights", 2), ("momentum", 2), ("adaptive_grads", 2)):
        item = memory[key]
        if item.bytes and item.level != "L1":
            traffic[item.level] = traffic.get(item.level, 0) + factor * FP32 * n
    return Kernel("adaptive", "all", "update", "sgd_step", "step", n, cyc, traffic)


# ---------------------------------------------------------------- time and energy
def _bandwidth(level: str, target_mhz: float, params: dict) -> float:
    vega = params["vega"]
    if level == "L2":
        return _v(vega["dma_l2_bytes_per_cycle"]) * target_mhz * 1e6
    if level == "MRAM":
        return _v(vega["mram_bytes_per_s"])
    return _v(vega["external_bytes_per_s"])


def _event_time(config, target, mhz, kernels, sched, params, frames, minibatches):
    """(compute seconds, DMA seconds, total seconds, compute seconds by
    "stage phase") for ``frames`` new frames through the frozen stage and
    ``minibatches`` adaptive mini-batches."""
    hz = mhz * 1e6
    counts = {"frame": frames,
              "sample": sched["samples_per_minibatch"] * minibatches,
              "replay": sched["replays_per_minibatch"] * minibatches,
              "step": sched["updates_per_minibatch"] * minibatches}
    micro_batches = sched["micro_batches_per_minibatch"] * minibatches
    compute = dma = total = 0.0
    breakdown: dict[str, float] = {}
    for k in kernels:
        count = counts[k.unit]
        c = count * k.cycles[target] / hz
        d = 0.0
        if target == "vega":  # the STM32L4 reads its operands in place, without DMA
            d = sum(count * b / _bandwidth(lv, mhz, params) for lv, b in k.dma_bytes.items())
            d += sum(micro_batches * b / _bandwidth(lv, mhz, params)
                     for lv, b in k.dma_bytes_per_micro_batch.items())
        compute += c
        group = f"{k.stage} {k.phase}"
        breakdown[group] = breakdown.get(group, 0.0) + c
        dma += d
        total += max(c, d) if config.dma_overlap else c + d
    return compute, dma, total, breakdown


def _target_cost(config, target, kernels, sched, params) -> TargetCost:
    p = params[target]
    mhz = config.vega_mhz if target == "vega" else config.stm32_mhz
    # Dynamic power at a fixed supply: linear in the clock.
    active_w = _v(p["active_mw"]) * 1e-3 * mhz / _v(p["active_mw_at_mhz"])
    sleep_w = _v(p["sleep_uw"]) * 1e-6
    if target == "vega":
        sleep_w += _v(p["external_ram_standby_uw"]) * 1e-6
    compute, dma, seconds, breakdown = _event_time(config, target, mhz, kernels, sched, params,
                                                   config.new_samples, sched["minibatches_per_event"])
    if config.lifetime_event == "minibatch":
        life_s = _event_time(config, target, mhz, kernels, sched, params, sched["new_per_minibatch"], 1)[2]
    else:
        life_s = seconds
    battery = params["battery"]
    period = _v(battery["period_s"])
    battery_j = _v(battery["capacity_mah"]) * 1e-3 * 3600 * _v(battery["voltage_v"])
    if life_s > period:
        lifetime, note = None, f"one {config.lifetime_event} takes {life_s:.1f} s, longer than the {period} s period"
    else:
        avg_w = (active_w * life_s + sleep_w * (period - life_s)) / period
        lifetime, note = battery_j / avg_w / 3600, f"one {config.lifetime_event} every {period} s"
    return TargetCost(target, mhz, active_w * 1e3, sleep_w * 1e6, compute, dma, seconds,
                      active_w * seconds, life_s, active_w * life_s, lifetime, note, breakdown)


# ---------------------------------------------------------------- entry point
def plan(config: PlanConfig | None = None, params: dict | str | Path | None = None, **fields) -> Plan:
    """Plan ``config`` (a PlanConfig, or its fields as keywords)."""
    if not isinstance(params, dict):
        params = load_params(params)
    config = resolve(dataclasses.replace(config or PlanConfig(), **fields), params)
    validate(config)
    layers = netspec.build(config.backbone, config.input_size, config.num_classes)
    frozen, adaptive = netspec.split(layers, config.lr_layer)
    sched = schedule(config)
    memory, store = _memory(config, frozen, adaptive, params)
    kernels = _kernels(config, frozen, adaptive, memory, params)
    kernels.append(_update_kernel(adaptive, memory, params))
    targets = {t: _target_cost(config, t, kernels, sched, params) for t in TARGETS}
    by_level = {lv: sum(item.bytes for item in memory.values() if item.level == lv) for lv in LEVELS}
    capacity = {"L1": config.l1_bytes, "L2": config.l2_bytes, "MRAM": config.mram_bytes,
                "external": config.external_bytes}
    vega, stm = targets["vega"], targets["stm32l4"]
    total = sum(item.bytes for item in memory.values())
    claims = {k: _v(v) for k, v in params["paper_claims"].items()}
    comparison = {
        "speedup_vs_stm32l4": stm.seconds / vega.seconds,
        "energy_ratio_vs_stm32l4": stm.joules / vega.joules,
        # Without DMA time: the ratio of the kernels alone, data already in L1.
        "speedup_compute_only": stm.compute_s / vega.compute_s,
        "energy_ratio_compute_only": stm.compute_s * stm.active_mw / (vega.compute_s * vega.active_mw),
        "lifetime_h": vega.lifetime_h,
        "memory_mib": total / MIB,
        "memory_within_64_mib": total <= 64 * MIB,
        "paper": claims,
        "lr_store": dict(store, elements=frozen[-1].out_elements, count=config.lr_count, bits=config.bits),
    }
    table = [dict(name=layer.name, kind=layer.kind, stage="frozen" if layer in frozen else "adaptive",
                  in_shape=layer.in_shape, out_shape=layer.out_shape, params=layer.params,
                  macs_forward=layer.macs_forward, macs_grad_input=layer.macs_grad_input,
                  macs_grad_weight=layer.macs_grad_weight) for layer in layers]
    return Plan(config, table, sched, memory, total, by_level, capacity, kernels, targets, comparison)


def compare_allocations(planned: Plan, actual: dict[str, int], tolerance: float = 0.05) -> dict[str, tuple]:
    """Items of ``actual`` (key -> bytes the runtime allocated) that differ from
    the plan by more than ``tolerance`` (relative): key -> (planned, actual)."""
    bad = {}
    for key, nbytes in actual.items():
        if key not in planned.memory:
            raise KeyError(f"actual has an unknown memory key {key!r}; plan keys: {', '.join(planned.memory)}")
        want = planned.memory[key].bytes
        if abs(nbytes - want) > tolerance * max(want, 1):
            bad[key] = (want, nbytes)
    return bad


def sweep_lr_layers(config: PlanConfig | None = None, lr_layers=None, params=None, **fields) -> list[Plan]:
    """One plan per LR layer (default: conv5_4/dw and every later layer, the
    range the paper sweeps)."""
    config = dataclasses.replace(config or PlanConfig(), **fields)
    if lr_layers is None:
        names = netspec.lr_layer_names(netspec.build(config.backbone, config.input_size, config.num_classes))
        lr_layers = names[names.index("conv5_4/dw"):]
    params = params if isinstance(params, dict) else load_params(params)
    return [plan(config, params, lr_layer=name) for name in lr_layers]
