"""The ``pulptrain`` command line."""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    import pulptrain

    parser = argparse.ArgumentParser(
        prog="pulptrain",
        description="On-device continual learning with quantized latent replays.")
    parser.add_argument("--version", action="version", version=f"pulptrain {pulptrain.__version__}")
    parser.add_argument("--threads", type=int, default=None, help="cores to use (default: all)")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
