"""tests/c/golden_data.h (used by the C runner on every build, RISC-V included)
must match a fresh render from the PyTorch float64 reference."""
import pathlib
import subprocess
import sys

GEN = pathlib.Path(__file__).parent / "c" / "gen_golden.py"


def test_golden_header_is_current():
    run = subprocess.run([sys.executable, str(GEN), "--check"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
