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
NATIVE_BACKEND := csrc/platform/parallel_pthread.c csrc/platform/dma_pthread.c
RT_HDRS := $(wildcard csrc/include/pulptrain/*.h)

WARN := -Wall -Wextra -Wno-unused-parameter
BASE_CFLAGS := -std=c99 -ffp-contract=off -fno-math-errno $(WARN) -Icsrc/include -Itests/c -pthread
OPT_CFLAGS := -O2
CFLAGS_EXTRA ?= $(OPT_CFLAGS)
SAN_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined

C_TESTS := $(patsubst tests/c/%.c,%,$(wildcard tests/c/test_*.c))

.PHONY: all setup test test-c test-c-asan test-py run bench bench-gemm clean

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
	$(MAKE) test-c-tsan test-py-asan fuzz-ci

run: setup
	pulptrain run --out out/run

clean:
	rm -rf build pulptrain/*.so pulptrain/_*.c

# ---- non-GEMM kernels once more with only their portable (non-AVX-512) loops
test-c: $(BUILD)/test_elem_portable
$(BUILD)/test_elem_portable: tests/c/test_elem.c $(RT_SRCS) $(NATIVE_BACKEND) $(RT_HDRS) tests/c/pt_test.h
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS_EXTRA) -DPT_NO_ISA_DISPATCH -o $@ $< $(RT_SRCS) $(NATIVE_BACKEND) -lm

# ---- the tile runner once more with small im2col chunks, so conv2d's tiled
# grad-weight meets chunk boundaries (as on the RISC-V profiles), and with a
# planner that counts bytes only (PT_TILE_CALL_BYTES=0), so other tile shapes run
test-c: $(BUILD)/test_tile_chunked
$(BUILD)/test_tile_chunked: tests/c/test_tile.c $(RT_SRCS) $(NATIVE_BACKEND) $(RT_HDRS) tests/c/pt_test.h
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS_EXTRA) -DPT_CONV2D_COLS_BUDGET_FLOATS=4096 -DPT_TILE_CALL_BYTES=0 \
	    -o $@ $< $(RT_SRCS) $(NATIVE_BACKEND) -lm

# ---- reliability: ThreadSanitizer, sanitized Python extension, fuzzing -------
#   make test-c-tsan   C runners with -fsanitize=thread (pt_fork / pt_barrier at 1, 2, 3, 8 threads)
#   make test-py-asan  Python tests against an ASan+UBSan build of the runtime (copy in build/py-asan)
#   make fuzz-ci       every fuzz target for FUZZ_SECONDS each (make fuzz-ci FUZZ_SECONDS=3600 for longer)
#   (die_after_fork=0: test_parallel forks a child after the pool's threads
#   exist, on purpose; TSan refuses threads in such a child by default)
TSAN_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=thread
TSAN_TESTS ?= $(C_TESTS)
test-c-tsan:
	$(MAKE) $(addprefix build/c-tsan/,$(TSAN_TESTS)) BUILD=build/c-tsan CFLAGS_EXTRA="$(TSAN_CFLAGS)"
	@set -e; for t in $(TSAN_TESTS); do echo "== tsan $$t"; \
	    TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:die_after_fork=0 build/c-tsan/$$t; done

PY_ASAN_DIR := build/py-asan
PY_ASAN_TESTS ?= $(wildcard tests/test_ops_*.py tests/test_replay.py tests/test_nn.py tests/test_quant*.py tests/test_bad_inputs.py)
test-py-asan:
	@mkdir -p $(PY_ASAN_DIR)
	tar -cf - --exclude='*.so' --exclude='_*.c' --exclude=__pycache__ setup.py pyproject.toml README.md \
	    csrc pulptrain tests | tar -xf - -C $(PY_ASAN_DIR)
	cd $(PY_ASAN_DIR) && PULPTRAIN_SANITIZE=1 $(PYTHON) setup.py -q build_clib build_ext --inplace -j 2
	cd $(PY_ASAN_DIR) && libasan=$$(ldd pulptrain/_core*.so | awk '/libasan/ {print $$3}') && \
	    test -n "$$libasan" && echo "== pytest under $$libasan" && \
	    LD_PRELOAD=$$libasan ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	    $(PYTHON) -m pytest -q -p no:cacheprovider $(PY_ASAN_TESTS)

FUZZ_SECONDS ?= 20
# A fixed seed keeps CI repeatable; FUZZ_SEED=0 lets libFuzzer pick one (longer exploration).
FUZZ_SEED ?= 1
FUZZ_CC ?= clang-19
FUZZ_PY := $(patsubst tests/fuzz/fuzz_%.py,%,$(wildcard tests/fuzz/fuzz_*.py))
FUZZ_C := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(RT_SRCS) $(NATIVE_BACKEND) $(RT_HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=c99 -O1 -g -w -ffp-contract=off -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=undefined -Icsrc/include -pthread -o $@ $< $(RT_SRCS) $(NATIVE_BACKEND) -lm
fuzz-c: $(addprefix build/fuzz/fuzz_,$(FUZZ_C))
fuzz-ci: fuzz-c
	@set -e; for t in $(FUZZ_PY) $(FUZZ_C); do \
	    mkdir -p build/fuzz/$$t; \
	    if [ -f tests/fuzz/fuzz_$$t.py ]; then run="$(PYTHON) tests/fuzz/fuzz_$$t.py"; else run=build/fuzz/fuzz_$$t; fi; \
	    echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
	    if ! $$run build/fuzz/$$t tests/fuzz/corpus/$$t -max_total_time=$(FUZZ_SECONDS) -seed=$(FUZZ_SEED) \
	            -artifact_prefix=build/fuzz/$$t- > build/fuzz/$$t.log 2>&1; then \
	        grep -v '^#' build/fuzz/$$t.log | tail -40; echo "fuzz $$t FAILED (input saved as build/fuzz/$$t-*)"; exit 1; fi; \
	    grep '^Done' build/fuzz/$$t.log; done
.PHONY: test-c-tsan test-py-asan fuzz-c fuzz-ci

# ---- bare-metal RISC-V (QEMU virt, pulp-open) -------------------------------
include csrc/targets/riscv/riscv.mk

# ---- training-step benchmark (native, no Python): JSON on stdout
BENCH_ARGS ?=
build/bench/train_step: bench/train_step_native.c bench/bench_args.h bench/fma_peak.c $(RT_SRCS) $(NATIVE_BACKEND) $(RT_HDRS)
	@mkdir -p build/bench
	$(CC) $(BASE_CFLAGS) -O3 -o $@ bench/train_step_native.c bench/fma_peak.c $(RT_SRCS) $(NATIVE_BACKEND) -lm

bench: build/bench/train_step
	build/bench/train_step $(BENCH_ARGS)

# ---- GEMM benchmark (native, no Python): GFLOP/s and fraction of measured peak
build/bench/gemm_native: bench/gemm_native.c bench/bench_args.h bench/fma_peak.c $(RT_SRCS) $(NATIVE_BACKEND) $(RT_HDRS)
	@mkdir -p build/bench
	$(CC) $(BASE_CFLAGS) -O3 -o $@ bench/gemm_native.c bench/fma_peak.c $(RT_SRCS) $(NATIVE_BACKEND) -lm

bench-gemm: build/bench/gemm_native
	build/bench/gemm_native 1
	build/bench/gemm_native $$(nproc)
