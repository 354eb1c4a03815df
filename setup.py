"""Build: the C runtime (csrc/) as one static library, linked into thin Cython
extension modules, one per area of the runtime.

Every C source under the runtime folders is compiled; a new kernel file needs
no change here. Only the native platform backend is used (the RISC-V backends
live under csrc/targets/ and are built by the Makefile)."""
import glob
import os
import sys

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

ROOT = os.path.dirname(os.path.abspath(__file__))
RUNTIME_DIRS = ["csrc/common", "csrc/kernels", "csrc/kernels/ref", "csrc/qkernels",
                "csrc/replay", "csrc/tile"]


def runtime_sources():
    srcs = []
    for d in RUNTIME_DIRS:
        srcs += sorted(glob.glob(os.path.join(d, "*.c")))
    srcs += ["csrc/platform/parallel_pthread.c", "csrc/platform/dma_pthread.c"]
    return srcs


# No -march=native: the wheel must run on any x86-64; fast paths are chosen at
# run time (target attributes + CPU feature dispatch inside csrc/).
CFLAGS = ["-std=c99", "-O3", "-fPIC", "-fno-math-errno", "-ffp-contract=off",
          "-Wall", "-Wextra", "-Wno-unused-parameter", "-pthread"]
if os.environ.get("PULPTRAIN_SANITIZE"):
    CFLAGS += ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-O1", "-g"]

LINK = ["-pthread", "-lm"]
if os.environ.get("PULPTRAIN_SANITIZE"):
    LINK += ["-fsanitize=address,undefined"]

MODULES = sorted(os.path.splitext(os.path.basename(p))[0]
                 for p in glob.glob(os.path.join(ROOT, "pulptrain", "_*.pyx")))

extensions = [
    Extension(
        f"pulptrain.{name}",
        [f"pulptrain/{name}.pyx"],
        include_dirs=["csrc/include", numpy.get_include()],
        libraries=["pulptrain_rt"],
        extra_compile_args=["-O2", "-Wno-unused-function"] + (
            ["-fsanitize=address,undefined"] if os.environ.get("PULPTRAIN_SANITIZE") else []),
        extra_link_args=LINK,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        # relink when the runtime changes (the static library itself is not tracked)
        depends=runtime_sources() + sorted(glob.glob("csrc/include/pulptrain/*.h")),
    )
    for name in MODULES
]

setup(
    libraries=[("pulptrain_rt", {
        "sources": runtime_sources(),
        "include_dirs": ["csrc/include"],
        "cflags": CFLAGS,
    })],
    ext_modules=cythonize(extensions, language_level=3, compiler_directives={
        "boundscheck": False, "wraparound": False, "cdivision": True,
        "initializedcheck": False, "embedsignature": True}),
)
