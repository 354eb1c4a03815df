"""The ``pulptrain`` command line.

One pair of functions per subcommand: ``_add_<name>(subparsers)`` registers
its parser, ``_cmd_<name>(args)`` runs it and returns the exit status. Every
subcommand takes ``--json`` (print machine-readable results) or ``--out DIR``
(write them, and any plots, under DIR)."""
from __future__ import annotations

import argparse
import json
import sys


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true", help="print the results as JSON")
    group.add_argument("--out", metavar="DIR", help="write the results (JSON, plots) under DIR")


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
    p.set_defaults(func=_cmd_plan)


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
    try:
        params = load_params(args.params)
        if args.sweep:
            result = sweep_lr_layers(PlanConfig(**fields), params=params)
            data, text = plan_report.sweep_dict(result), plan_report.format_sweep(result)
        else:
            result = plan(PlanConfig(**fields), params)
            data, text = result.to_dict(), plan_report.format_text(result)
    except (ValueError, TypeError, OSError) as exc:  # a bad configuration or parameter file
        print(f"pulptrain plan: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(text)
    if args.out:
        for path in plan_report.write_outputs(result, args.out):
            print(f"wrote {path}")
    return 0


# ---------------------------------------------------------------- entry point
SUBCOMMANDS = (_add_plan,)


def build_parser() -> argparse.ArgumentParser:
    import pulptrain

    parser = argparse.ArgumentParser(
        prog="pulptrain",
        description="On-device continual learning with quantized latent replays.")
    parser.add_argument("--version", action="version", version=f"pulptrain {pulptrain.__version__}")
    parser.add_argument("--threads", type=int, default=None, help="cores to use (default: all)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.threads is not None:
        import pulptrain
        pulptrain.set_num_threads(args.threads)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
