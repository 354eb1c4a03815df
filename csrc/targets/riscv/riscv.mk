# Bare-metal RISC-V builds of the runtime (included by the top Makefile).
#
# Profiles (each compiles $(RT_SRCS) unchanged plus this folder's backend):
#   rv32f     riscv64-unknown-elf-gcc, rv32imafc/ilp32f, QEMU virt (8 harts)
#   zfinx     clang-19, rv32imc_zfinx/ilp32 (floats in integer registers, as
#             on the PULP cores), QEMU virt with -cpu ...,zfinx=true
#   pulpopen  the zfinx compile linked at pulp-open's L2 addresses with the
#             cluster backend (builds only: GVSoC is not available here)
#
#   make test-riscv    every tests/c/test_*.c on QEMU, 1 and 8 harts, rv32f + zfinx
#   make riscv-bench   instruction counts -> bench/results/riscv_bench.json
#   make pulp-open     build the pulp-open ELFs
RV_DIR := csrc/targets/riscv
RV_BUILD := build/riscv
RV_GCC ?= riscv64-unknown-elf-gcc
RV_CLANG ?= clang-19
RV_AR ?= riscv64-unknown-elf-ar
RV_PICOLIBC_INC ?= /usr/lib/picolibc/riscv64-unknown-elf/include
RV_QEMU ?= qemu-system-riscv32
RV_TIMEOUT ?= 300
RV_HARTS := 8

RV_COMMON_SRCS := $(RV_DIR)/entry.S $(RV_DIR)/boot.c $(RV_DIR)/parallel_riscv.c
RV_HDRS := $(RT_HDRS) $(foreach d,$(RT_DIRS),$(wildcard $(d)/*.h)) $(wildcard $(RV_DIR)/*.h) \
	$(wildcard tests/c/*.h)
# -O3: GCC 12 keeps the GEMM micro-kernel's accumulators in registers only
# when it unrolls fully. Sizes for a small memory: im2col chunks of at most
# 256 KiB, and the conv test's chunked case shrunk to match.
RV_CFLAGS := -std=c99 -O3 -ffp-contract=off -fno-math-errno $(WARN) -Icsrc/include -Itests/c \
	-I$(RV_DIR) -ffunction-sections -fdata-sections -DPT_RV_MAX_HARTS=$(RV_HARTS) \
	-DPT_CONV2D_COLS_BUDGET_FLOATS=65536 -DPT_TEST_CHUNKED_CONV_HW=8
RV_LINK := --specs=picolibc.specs --oslib=semihost -nostartfiles -Wl,--gc-sections

# Per-profile settings: compiler + flags, board source, memory map, QEMU cpu.
RV_rv32f_CC := $(RV_GCC) -march=rv32imafc -mabi=ilp32f --specs=picolibc.specs \
	-DPT_RV_PROFILE='"rv32imafc ilp32f gcc-12 -O3 -ffp-contract=off, QEMU virt"'
RV_rv32f_LD := $(RV_GCC) -march=rv32imafc -mabi=ilp32f
RV_ZFINX_CC := $(RV_CLANG) --target=riscv32-unknown-elf -march=rv32imc_zfinx -mabi=ilp32 \
	-isystem $(RV_PICOLIBC_INC) -ftls-model=local-exec -Wno-unused-command-line-argument
RV_zfinx_CC := $(RV_ZFINX_CC) -DPT_RV_PROFILE='"rv32imc_zfinx ilp32 clang-19 -O3 -ffp-contract=off, QEMU virt"'
RV_zfinx_LD := $(RV_GCC) -march=rv32imc -mabi=ilp32
# pulp-open's L2 holds 1 MiB of data: the benchmark runs a batch of 1.
RV_pulpopen_CC := $(RV_ZFINX_CC) -DPT_RV_PULP -DPT_RV_BENCH_BATCH=1 -DPT_RV_BENCH_LINEAR_BATCH=4 \
	-DPT_RV_BENCH_ARENA_FLOATS=0x20000 -DPT_RV_BENCH_SCRATCH_BYTES=0x20000
RV_pulpopen_LD := $(RV_zfinx_LD)

RV_rv32f_BOARD := $(RV_DIR)/board_virt.c
RV_zfinx_BOARD := $(RV_DIR)/board_virt.c
RV_pulpopen_BOARD := $(RV_DIR)/board_pulp.c

# QEMU virt: code + constants in the first 4 MiB of DRAM, then 28 MiB of RAM
# (static test data, heap and one 32 KiB stack per hart, plus one spare).
RV_VIRT_STACK_SHIFT := 15
RV_VIRT_MAP := -Wl,--defsym=__flash=0x80000000,--defsym=__flash_size=0x400000 \
	-Wl,--defsym=__ram=0x80400000,--defsym=__ram_size=0x1C00000 \
	-Wl,--defsym=__stack_size=$(shell echo $$(( ($(RV_HARTS) + 1) << $(RV_VIRT_STACK_SHIFT) )))
# pulp-open L2: code from 0x1C010000, data from 0x1C090000 to the end of L2
# (0x1C190000), 8 KiB stacks for the cluster cores and the fabric controller.
RV_PULP_STACK_SHIFT := 13
RV_PULP_MAP := -Wl,--defsym=__flash=0x1C010000,--defsym=__flash_size=0x80000 \
	-Wl,--defsym=__ram=0x1C090000,--defsym=__ram_size=0x100000 \
	-Wl,--defsym=__stack_size=$(shell echo $$(( ($(RV_HARTS) + 1) << $(RV_PULP_STACK_SHIFT) )))
RV_rv32f_MAP := $(RV_VIRT_MAP)
RV_zfinx_MAP := $(RV_VIRT_MAP)
RV_pulpopen_MAP := $(RV_PULP_MAP)
RV_rv32f_SHIFT := $(RV_VIRT_STACK_SHIFT)
RV_zfinx_SHIFT := $(RV_VIRT_STACK_SHIFT)
RV_pulpopen_SHIFT := $(RV_PULP_STACK_SHIFT)

RV_rv32f_QEMU_CPU :=
RV_zfinx_QEMU_CPU := -cpu rv32,f=false,d=false,zfinx=true

RV_QEMU_RUN = timeout $(RV_TIMEOUT) $(RV_QEMU) -M virt -m 128M -bios none -display none \
	-chardev stdio,id=sh0 -semihosting-config enable=on,target=native,chardev=sh0

# $(call rv_profile,name): object rules for the runtime and the backend, and
# an ELF rule for every test runner and the benchmark.
define rv_profile
RV_$(1)_OBJDIR := $(RV_BUILD)/$(1)/obj
RV_$(1)_SRCS := $(RT_SRCS) $(RV_COMMON_SRCS) $$(RV_$(1)_BOARD)
RV_$(1)_OBJS := $$(patsubst %,$$(RV_$(1)_OBJDIR)/%.o,$$(RV_$(1)_SRCS))

$$(RV_$(1)_OBJDIR)/%.o: % $(RV_HDRS)
	@mkdir -p $$(dir $$@)
	$$(RV_$(1)_CC) $(RV_CFLAGS) -DPT_RV_STACK_SHIFT=$$(RV_$(1)_SHIFT) -c -o $$@ $$<

$(RV_BUILD)/$(1)/%.elf: $$(RV_$(1)_OBJDIR)/tests/c/%.c.o $$(RV_$(1)_OBJS)
	$$(RV_$(1)_LD) $(RV_LINK) $$(RV_$(1)_MAP) -o $$@ $$^ -lm

$(RV_BUILD)/$(1)/riscv_bench.elf: $$(RV_$(1)_OBJDIR)/bench/riscv_bench.c.o $$(RV_$(1)_OBJS)
	$$(RV_$(1)_LD) $(RV_LINK) $$(RV_$(1)_MAP) -o $$@ $$^ -lm
endef
$(foreach p,rv32f zfinx pulpopen,$(eval $(call rv_profile,$(p))))

RV_TEST_ELFS = $(foreach t,$(C_TESTS),$(RV_BUILD)/$(1)/$(t).elf)

.PHONY: test-riscv riscv-bench pulp-open
test-riscv: $(call RV_TEST_ELFS,rv32f) $(call RV_TEST_ELFS,zfinx) $(BUILD)/test_golden
	@set -e; for p in rv32f zfinx; do \
	  if [ $$p = zfinx ]; then cpu="$(RV_zfinx_QEMU_CPU)"; else cpu=""; fi; \
	  for n in 1 $(RV_HARTS); do for t in $(C_TESTS); do \
	    echo "== riscv $$p smp=$$n $$t"; \
	    log=$(RV_BUILD)/$$p/$$t.smp$$n.log; \
	    if $(RV_QEMU_RUN) $$cpu -smp $$n -kernel $(RV_BUILD)/$$p/$$t.elf >$$log 2>&1; then cat $$log; \
	    else status=$$?; cat $$log; echo "FAILED: exit status $$status"; exit 1; fi; \
	  done; \
	  grep -q "parallel backend: $$n cores" $(RV_BUILD)/$$p/test_parallel.smp$$n.log \
	    || { echo "FAILED: the backend did not report $$n cores"; exit 1; }; \
	  done; done
	@$(BUILD)/test_golden | grep '^digest' > $(RV_BUILD)/native.digest
	@set -e; for log in $(RV_BUILD)/*/test_golden.smp*.log; do \
	  grep '^digest' $$log | diff -u $(RV_BUILD)/native.digest - \
	    || { echo "FAILED: $$log differs from the native build bit for bit"; exit 1; }; \
	done; echo "riscv: golden outputs bit-identical to the native build ($$(wc -l < $(RV_BUILD)/native.digest) digests)"

# test_elem's static arrays (2.7 MB) exceed pulp-open's 1 MiB of L2 data.
RV_PULP_SKIP := test_elem
RV_PULP_ELFS := $(foreach t,$(filter-out $(RV_PULP_SKIP),$(C_TESTS)),$(RV_BUILD)/pulpopen/$(t).elf) \
	$(RV_BUILD)/pulpopen/riscv_bench.elf

$(RV_BUILD)/pulpopen/libpulptrain.a: $(RV_pulpopen_OBJS)
	$(RV_AR) rcs $@ $^

pulp-open: $(RV_PULP_ELFS) $(RV_BUILD)/pulpopen/libpulptrain.a
	@echo "pulp-open (load at 0x1C010000, run on GVSoC's pulp-open model): $^"

# The runners' objects are intermediates of the ELF rules; keep them.
.SECONDARY: $(foreach p,rv32f zfinx pulpopen,$(RV_BUILD)/$(p)/obj/bench/riscv_bench.c.o \
	$(patsubst %,$(RV_BUILD)/$(p)/obj/tests/c/%.c.o,$(C_TESTS)))

# rv32f -> bench/results/riscv_bench.json, zfinx -> riscv_bench_zfinx.json
riscv-bench: $(RV_BUILD)/rv32f/riscv_bench.elf $(RV_BUILD)/zfinx/riscv_bench.elf
	@mkdir -p bench/results
	@set -e; for p in rv32f zfinx; do \
	  if [ $$p = zfinx ]; then cpu="$(RV_zfinx_QEMU_CPU)"; out=bench/results/riscv_bench_zfinx.json; \
	  else cpu=""; out=bench/results/riscv_bench.json; fi; \
	  $(RV_QEMU_RUN) $$cpu -icount shift=0 -smp $(RV_HARTS) -kernel $(RV_BUILD)/$$p/riscv_bench.elf > $$out.tmp; \
	  $(PYTHON) -m json.tool $$out.tmp > /dev/null; mv $$out.tmp $$out; \
	  $(PYTHON) bench/riscv_bench_table.py $$out; \
	done
