# pulptrain: C builds, tests and the one-command entry points of the README.
#   make test      set up (Debian packages + pip) and run every test
#   make run       set up and run the main job (pulptrain run)
#   make test-c    C test runners, native        make test-c-asan   ... with ASan+UBSan
#   make bench     native benchmark binary
#   make test-riscv / riscv-bench / pulp-open   bare-metal RISC-V (README: RISC-V targets)
PYTHON ?= python3
CC ?= gcc
BUILD ?= build/c

RT_DIRS := csrc/common csrc/kernels csrc/kernels/ref csrc/qkernels csrc/replay csrc/tile
RT_SRCS := $(foreach d,$(RT_DIRS),$(wildcard $(d)/*.c))
NATIVE_BACKEND := csrc/platform/parallel_pthread.c
RT_HDRS := $(wildcard csrc/include/pulptrain/*.h)

WARN := -Wall -Wextra -Wno-unused-parameter
BASE_CFLAGS := -std=c99 -ffp-contract=off -fno-math-errno $(WARN) -Icsrc/include -Itests/c -pthread
OPT_CFLAGS := -O2
CFLAGS_EXTRA ?= $(OPT_CFLAGS)
SAN_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined

C_TESTS := $(patsubst tests/c/%.c,%,$(wildcard tests/c/test_*.c))

.PHONY: all setup test test-c test-c-asan test-py run bench clean

all: test-c

# ---- native C tests -------------------------------------------------------
$(BUILD)/%: tests/c/%.c $(RT_SRCS) $(NATIVE_BACKEND) $(RT_HDRS) tests/c/pt_test.h
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS_EXTRA) -o $@ $< $(RT_SRCS) $(NATIVE_BACKEND) -lm

test-c: $(addprefix $(BUILD)/,$(C_TESTS))
	@set -e; for t in $^; do echo "== $$t"; $$t; done

test-c-asan:
	$(MAKE) test-c BUILD=build/c-asan CFLAGS_EXTRA="$(SAN_CFLAGS)"

# ---- Python ----------------------------------------------------------------
setup:
	bash scripts/setup.sh

test-py:
	$(PYTHON) -m pytest -q

test: setup
	$(MAKE) test-c test-c-asan
	$(MAKE) test-riscv pulp-open
	$(MAKE) test-py

run: setup
	pulptrain run

clean:
	rm -rf build pulptrain/*.so pulptrain/_*.c

# ---- non-GEMM kernels once more with only their portable (non-AVX-512) loops
test-c: $(BUILD)/test_elem_portable
$(BUILD)/test_elem_portable: tests/c/test_elem.c $(RT_SRCS) $(NATIVE_BACKEND) $(RT_HDRS) tests/c/pt_test.h
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS_EXTRA) -DPT_NO_ISA_DISPATCH -o $@ $< $(RT_SRCS) $(NATIVE_BACKEND) -lm

# ---- bare-metal RISC-V (QEMU virt, pulp-open) -------------------------------
include csrc/targets/riscv/riscv.mk
