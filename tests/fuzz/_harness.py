"""Shared plumbing of the atheris fuzz targets in this folder.

Each target defines ``one_input(data: bytes)`` that feeds the bytes to one
parser. A documented exception for bad data (``ALLOWED``, normally
pulptrain.errors.FormatError) is a pass; anything else propagates and
atheris reports it as a crash with the input that caused it.

Run one target (new corpus entries go to the first folder, so the seed
folder in the repository stays as committed):

    python tests/fuzz/fuzz_idx.py build/fuzz/idx tests/fuzz/corpus/idx -max_total_time=600
"""
from __future__ import annotations

import os
import sys

import atheris

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def run(one_input, allowed: tuple[type[BaseException], ...]) -> None:
    """Fuzz one_input; exceptions in ``allowed`` count as handled bad input."""
    def test_one_input(data: bytes) -> None:
        try:
            one_input(data)
        except allowed:
            pass

    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
