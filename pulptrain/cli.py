"""The ``pulptrain`` command line: one ``_add_<cmd>`` / ``_cmd_<cmd>`` pair per subcommand.

Every subcommand takes ``--json`` (machine-readable result on stdout) or
``--out DIR`` (files in DIR)."""
from __future__ import annotations

import argparse
import json
import sys


def _add_output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--out", metavar="DIR", default=None, help="write result files into DIR")
    # also accepted after the subcommand; SUPPRESS keeps a value given before it
    p.add_argument("--threads", type=int, default=argparse.SUPPRESS, help="cores to use (default: all)")


def _add_experiment_options(p: argparse.ArgumentParser) -> None:
    from pulptrain.runner import DEFAULT_BATCHES, DEFAULT_SCENARIO

    g = p.add_argument_group("experiment")
    g.add_argument("--scenario", default=DEFAULT_SCENARIO,
                   help="core50-standin (alias standin, generated offline), core50 (needs --root), "
                        "fashion-mnist; a protocol may follow a slash, e.g. core50/nicv2_79")
    g.add_argument("--root", default=None, help="dataset folder (CORe50) or cache folder")
    g.add_argument("--scenario-option", action="append", default=[], metavar="KEY=VALUE",
                   help="passed to the scenario builder, e.g. frames_per_session=20 (repeatable)")
    g.add_argument("--level", default="object", choices=["object", "category"],
                   help="labels: 50 objects or 10 categories (CORe50 and stand-in)")
    g.add_argument("--batches", type=int, default=DEFAULT_BATCHES,
                   help=f"training batches to stream (default {DEFAULT_BATCHES})")
    g.add_argument("--full", action="store_true", help="stream the whole protocol (overrides --batches)")
    g.add_argument("--lr-layer", default="conv5_4/dw", help="latent-replay layer (Caffe name)")
    g.add_argument("--frozen", default="int8", choices=["int8", "fp32"], help="frozen-stage arithmetic")
    g.add_argument("--eval-every", type=int, default=1, help="evaluate every k batches")
    g.add_argument("--seed", type=int, default=0)
    t = p.add_argument_group("training (defaults: the paper's)")
    t.add_argument("--epochs", type=int, default=4, help="epochs per later batch")
    t.add_argument("--epochs-first", type=int, default=4, help="epochs on the first batch")
    t.add_argument("--lr", type=float, default=1e-4, help="learning rate after the first batch")
    t.add_argument("--lr-first", type=float, default=1e-3, help="learning rate on the first batch")
    t.add_argument("--minibatch", type=int, default=128)
    t.add_argument("--quantize-new", action="store_true",
                   help="train on new latents quantized like the stored ones")
    t.add_argument("--joint-epochs", type=int, default=8,
                   help="epochs of joint training for the cumulative upper bound")


def _trainer_config(args, replay: bool = True, cumulative: bool = False):
    from pulptrain.cl import TrainerConfig

    return TrainerConfig(minibatch=args.minibatch, epochs_first=args.epochs_first, epochs=args.epochs,
                         lr_first=args.lr_first, lr=args.lr, replay=replay and not cumulative,
                         cumulative=cumulative, joint_epochs=args.joint_epochs,
                         quantize_new=args.quantize_new, seed=args.seed)


def _scenario_options(pairs: list[str]) -> dict:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--scenario-option must be KEY=VALUE, got {pair!r}")
        try:
            options[key.strip()] = json.loads(value)
        except ValueError:
            options[key.strip()] = value
    return options


def _run_config(args, bits, lr_count, lr_layer=None, replay=True, seed=None, cumulative=False):
    from pulptrain.runner import RunConfig

    cfg = RunConfig(scenario=args.scenario, level=args.level, root=args.root,
                    scenario_options=_scenario_options(args.scenario_option),
                    batches=None if args.full else args.batches,
                    lr_layer=lr_layer or args.lr_layer, lr_count=lr_count, bits=bits,
                    frozen=args.frozen, eval_every=args.eval_every,
                    seed=args.seed if seed is None else seed,
                    trainer=_trainer_config(args, replay, cumulative))
    cfg.trainer.seed = cfg.seed
    return cfg


# ------------------------------------------------------------------- run
def _add_run(sub) -> None:
    p = sub.add_parser("run", help="the main job: one latent-replay continual-learning run",
                       description="Stream a benchmark through the frozen stage, train the adaptive "
                                   "stage on new latents mixed with quantized latent replays, and "
                                   "evaluate after every batch.")
    _add_experiment_options(p)
    p.add_argument("--lr-count", type=int, default=1500, help="latent replays kept in memory")
    p.add_argument("--bits", default="8", help="LR precision: 1..8, fp16 or fp32 (default 8)")
    bound = p.add_mutually_exclusive_group()
    bound.add_argument("--no-replay", action="store_true", help="the no-replay lower bound")
    bound.add_argument("--cumulative", action="store_true",
                       help="the cumulative upper bound: joint training on the whole stream")
    p.add_argument("--checkpoint", metavar="DIR", default=None,
                   help="save a crash-safe checkpoint after every batch into DIR")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--l1-kib", type=int, default=None, metavar="KIB",
                   help="train the adaptive stage tiled into an L1 of KIB KiB with double-buffered DMA "
                        "(pulptrain.tile; bitwise the same results, e.g. 128 for VEGA)")
    _add_output_options(p)


def _cmd_run(args) -> int:
    from pulptrain import runner, tile
    from pulptrain._malloc import keep_freed_memory
    from pulptrain._validate import positive_int

    keep_freed_memory()   # every step reuses the last one's activations' memory

    cfg = _run_config(args, args.bits, args.lr_count, replay=not args.no_replay, cumulative=args.cumulative)
    if args.resume and not args.checkpoint:
        raise ValueError("--resume needs --checkpoint DIR")
    budget = None if args.l1_kib is None else positive_int("--l1-kib", args.l1_kib) * 1024
    log = (lambda *a, **k: print(*a, file=sys.stderr, **k)) if args.json else print
    if budget is not None:
        log(f"adaptive stage tiled into an L1 of {args.l1_kib} KiB")
    with tile.l1_budget(budget):
        report = runner.run(cfg, out_dir=args.out, progress=not args.quiet, log=log,
                            checkpoint_dir=args.checkpoint, resume=args.resume)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(runner.summary_table(report))
        if args.out:
            print(f"wrote {args.out}/report.json and {args.out}/accuracy.png")
    return 0


# ----------------------------------------------------------------- sweep
def _add_sweep(sub) -> None:
    p = sub.add_parser("sweep", help="grid over LR bits, LR counts and LR layers",
                       description="Runs every combination, reusing the frozen-stage latents, and "
                                   "writes sweep.csv, sweep.md (the paper's table shape) and sweep.png.")
    _add_experiment_options(p)
    p.add_argument("--bits", default="fp32,8,7,6,5,4,3,2,1", help="comma-separated LR precisions")
    p.add_argument("--lr-counts", default="1500", help="comma-separated LR counts")
    p.add_argument("--lr-layers", default=None, help="comma-separated LR layers (default: --lr-layer)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds")
    p.add_argument("--bounds", action="store_true",
                   help="add the no-replay lower bound and the cumulative upper bound per seed")
    p.add_argument("--resume", action="store_true",
                   help="keep the runs already in --out and run only the missing ones")
    p.add_argument("--quiet", action="store_true")
    _add_output_options(p)


def _cmd_sweep(args) -> int:
    from pulptrain import sweep
    from pulptrain._malloc import keep_freed_memory

    keep_freed_memory()   # every step reuses the last one's activations' memory

    layers = args.lr_layers.split(",") if args.lr_layers else [args.lr_layer]
    seeds = [int(s) for s in args.seeds.split(",")]
    counts = [int(c) for c in args.lr_counts.split(",")]
    configs = [_run_config(args, bits, count, layer, seed=seed)
               for layer in layers for count in counts for bits in args.bits.split(",") for seed in seeds]
    if args.bounds:
        configs += [_run_config(args, "fp32", counts[0], layer, replay=False, seed=seed, cumulative=cumulative)
                    for layer in layers for cumulative in (False, True) for seed in seeds]
    if args.resume and not args.out:
        raise ValueError("--resume needs --out: the folder of the sweep to continue")
    result = sweep.run_sweep(configs, out_dir=args.out, progress=not args.quiet, resume=args.resume)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(result["table_md"])
    return 0


# ---------------------------------------------------------------- plan
def _add_plan(subparsers) -> None:
    from pulptrain.plan import LIFETIME_EVENTS, UPDATE_RULES, VEGA_KERNELS, PlanConfig

    d = PlanConfig()
    p = subparsers.add_parser(
        "plan", help="memory, latency and energy of a configuration on VEGA and an STM32L4",
        description="Predict memory (item by item, with its place on VEGA), latency and energy per "
                    "learning event on VEGA and an STM32L4, and the battery lifetime. Parameters and "
                    "their sources: pulptrain/data/plan_params.json.")
    p.add_argument("--backbone", default=d.backbone)
    p.add_argument("--input-size", type=int, default=d.input_size)
    p.add_argument("--num-classes", type=int, default=d.num_classes)
    p.add_argument("--lr-layer", default=d.lr_layer, help="Caffe layer name, e.g. conv5_4/dw (default %(default)s)")
    p.add_argument("--lr-count", type=int, default=d.lr_count, help="latent replays stored (default %(default)s)")
    p.add_argument("--bits", type=int, default=d.bits, help="LR bit width, 1..8 or 32 (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--new-samples", type=int, default=d.new_samples, help="new frames per learning event")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--micro-batch", type=int, default=d.micro_batch,
                   help="samples through forward/backward together (default %(default)s)")
    p.add_argument("--update-rule", choices=UPDATE_RULES, default=d.update_rule)
    p.add_argument("--momentum", type=float, default=d.momentum)
    p.add_argument("--paper-runtime", action="store_true",
                   help="the paper's runtime: per-sample plain SGD (overrides --update-rule/--momentum/--micro-batch)")
    sizes = "(default: parameter file, VEGA)"
    p.add_argument("--l1-kib", type=int, help=f"cluster L1 {sizes}")
    p.add_argument("--l2-kib", type=int, help=f"L2 {sizes}")
    p.add_argument("--mram-kib", type=int, help=f"MRAM {sizes}")
    p.add_argument("--external-mib", type=int, help=f"external RAM {sizes}")
    p.add_argument("--vega-mhz", type=float, default=None, help="VEGA cluster clock (default: parameter file)")
    p.add_argument("--stm32-mhz", type=float, default=None, help="STM32L4 clock (default: parameter file)")
    p.add_argument("--vega-kernels", choices=tuple(VEGA_KERNELS), default=d.vega_kernels,
                   help="VEGA FP32 kernel throughputs: with Xpulp, or portable plain C (default %(default)s)")
    p.add_argument("--dma-overlap", action="store_true", help="DMA overlaps compute (double buffering)")
    p.add_argument("--lifetime-event", choices=LIFETIME_EVENTS, default=d.lifetime_event,
                   help="what is learned once per period (default %(default)s)")
    p.add_argument("--params", metavar="FILE", help="JSON overriding entries of the parameter file")
    p.add_argument("--sweep", action="store_true", help="plan conv5_4/dw and every later LR layer")
    _add_output_options(p)


def _scaled(value, unit):
    return None if value is None else value * unit


def _cmd_plan(args) -> int:
    from pulptrain import plan_report
    from pulptrain.plan import PAPER_RUNTIME, PlanConfig, load_params, plan, sweep_lr_layers

    fields = dict(backbone=args.backbone, input_size=args.input_size, num_classes=args.num_classes,
                  lr_layer=args.lr_layer, lr_count=args.lr_count, bits=args.bits,
                  batch_size=args.batch_size, new_samples=args.new_samples, epochs=args.epochs,
                  micro_batch=args.micro_batch, update_rule=args.update_rule, momentum=args.momentum,
                  l1_bytes=_scaled(args.l1_kib, 1024), l2_bytes=_scaled(args.l2_kib, 1024),
                  mram_bytes=_scaled(args.mram_kib, 1024), external_bytes=_scaled(args.external_mib, 1 << 20),
                  vega_mhz=args.vega_mhz, stm32_mhz=args.stm32_mhz, dma_overlap=args.dma_overlap,
                  lifetime_event=args.lifetime_event, vega_kernels=args.vega_kernels)
    if args.paper_runtime:
        fields.update(PAPER_RUNTIME)
    params = load_params(args.params)
    if args.sweep:
        result = sweep_lr_layers(PlanConfig(**fields), params=params)
        data, text = plan_report.sweep_dict(result), plan_report.format_sweep(result)
    else:
        result = plan(PlanConfig(**fields), params)
        data, text = result.to_dict(), plan_report.format_text(result)
    written = plan_report.write_outputs(result, args.out) if args.out else []
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(text)
        for path in written:
            print(f"wrote {path}")
    return 0


# ----------------------------------------------------------------- bench
def _add_bench(sub) -> None:
    from pulptrain.bench import WORKLOADS

    p = sub.add_parser("bench", help="time the latent-replay workloads (optionally against PyTorch)",
                       description="Median times of the adaptive-stage training step and its hot "
                                   "kernels, and of the INT8 frozen stage; --vs-torch runs the same "
                                   "computation in PyTorch in the same process and reports ratios.")
    p.add_argument("--vs-torch", action="store_true", help="compare with PyTorch (needs torch)")
    p.add_argument("--lr-layer", default="conv5_4/dw")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated subset")
    _add_output_options(p)


def _cmd_bench(args) -> int:
    from pulptrain import bench
    from pulptrain._validate import positive_int

    positive_int("batch", args.batch)
    positive_int("repeats", args.repeats)
    log = (lambda *a, **k: print(*a, file=sys.stderr, **k)) if args.json else print
    result = bench.run_bench(args.lr_layer, args.batch, args.repeats, args.vs_torch,
                             args.workloads.split(","), log=log)
    if args.out:
        import os

        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "bench.json"), "w") as f:
            json.dump(result, f, indent=2)
        bench.plot(result, os.path.join(args.out, "bench.png"))
    print(json.dumps(result, indent=2) if args.json else bench.table(result))
    return 0


COMMANDS = {"run": (_add_run, _cmd_run), "sweep": (_add_sweep, _cmd_sweep),
            "bench": (_add_bench, _cmd_bench), "plan": (_add_plan, _cmd_plan)}


def _thread_count(text: str) -> int:
    from pulptrain._core import MAX_THREADS

    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if not 1 <= n <= MAX_THREADS:
        raise argparse.ArgumentTypeError(f"must be 1..{MAX_THREADS}, got {n}")
    return n


def build_parser() -> argparse.ArgumentParser:
    import pulptrain

    parser = argparse.ArgumentParser(
        prog="pulptrain",
        description="On-device continual learning with quantized latent replays.")
    parser.add_argument("--version", action="version", version=f"pulptrain {pulptrain.__version__}")
    parser.add_argument("--threads", type=_thread_count, default=None, help="cores to use (default: all)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add, _ in COMMANDS.values():
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    import pulptrain

    try:
        if args.threads is not None:
            pulptrain.set_num_threads(args.threads)
        return COMMANDS[args.command][1](args)
    except (ValueError, TypeError, FileNotFoundError, pulptrain.PulptrainError) as exc:
        print(f"pulptrain {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except FloatingPointError as exc:       # training diverged; the last checkpoint is intact
        print(f"pulptrain {args.command}: stopped: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
