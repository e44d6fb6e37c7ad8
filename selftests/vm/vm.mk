# SPDX-License-Identifier: GPL-2.0
# make vm-check: one boot of Debian's kernel in QEMU (TCG) that runs the
# module-dependent suites against the real pyshm.ko, each suite counted in
# `make check`. A suite is a script in selftests/vm/suites/ (TAP and
# "# Totals:" lines on stdout); add one there, or pick some with
#   make vm-check VM_SUITES="selftests/vm/suites/kmod.sh"
# selftests/vm/boot.sh lists the other knobs (VM_KERNEL, VM_KO, VM_MEM,
# VM_APPEND, VM_CHECKS, ...), for reuse with other kernels.
#
# make bench-kmod: the same boot running bench/kmod/ instead.

include $(TOP)/selftests/kmod/kmod.mk

VM_BOOT := $(TOP)/selftests/vm/boot.sh
VM_SUITES ?= $(patsubst $(TOP)/%,%,$(sort $(wildcard $(TOP)/selftests/vm/suites/*.sh)))
# What the suites run, built on the host before the boot.
VM_DEPS ?= kmod kmodtests libtests pymod
CHECK_TARGETS += vm-check

BENCH_KMOD := $(B)/bench/kmod/bench_kmod

.PHONY: vm-check bench-kmod bench
vm-check: $(VM_DEPS) | $(DEPS_STAMP)
	@TOP=$(TOP) O=$(O) B=$(B) VM_KVER=$(KVER) VM_KO=$(KMOD_KO) \
		VM_SUITES="$(VM_SUITES)" $(VM_BOOT)

$(BENCH_KMOD): $(TOP)/bench/kmod/bench_kmod.c $(TOP)/bench/bench.h \
		$(TOP)/include/uapi/linux/pyshm.h | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -I$(TOP)/bench -o $@ $<

# The table goes to stdout; the boot's log to $(O)/bench/bench-kmod.out.
bench-kmod: kmod $(BENCH_KMOD) | $(DEPS_STAMP)
	@mkdir -p $(O)/bench
	@echo "bench-kmod: booting the guest (about 30 s)"
	@TOP=$(TOP) O=$(O) B=$(B) VM_KVER=$(KVER) VM_KO=$(KMOD_KO) \
		VM_NAME=bench-kmod VM_RESULTS=$(O)/bench \
		VM_SUITES=bench/kmod/bench.sh $(VM_BOOT) >$(O)/bench/bench-kmod.out 2>&1 || \
		{ cat $(O)/bench/bench-kmod.out; exit 1; }
	@grep -av '^# Totals' $(O)/bench/bench-kmod-bench.log

bench: bench-kmod

# make vm-check-debug (the same on a kernel with KASAN, lockdep, kmemleak...).
include $(TOP)/selftests/vm/debug.mk
