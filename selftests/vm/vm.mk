# SPDX-License-Identifier: GPL-2.0
# make vm-check: one QEMU (TCG) boot per kernel in VM_KERNELS that runs the
# module-dependent suites against pyshm.ko built for that kernel, each suite
# counted in `make check` per kernel ($(O)/results/vm-check-<series>-*.log).
# The kernels are the ones users run: Debian 12's 6.1, the 6.12 LTS (Debian
# 12's linux-image-6.12-amd64, Debian 13's kernel) and the newest Debian
# ships (the unstable suite's, built and booted from the kernel chroot of
# scripts/kernel-chroot.sh); selftests/vm/kernels.sh finds each.
#
#   make vm-check                    every kernel, one after the other
#   make vm-check VM_KVER=6.12       one (a series, or a release it has)
#   make vm-check-7.2                the same, as a target
#
# A suite is a script in selftests/vm/suites/ (TAP and "# Totals:" lines on
# stdout); add one there, or pick some with
#   make vm-check VM_SUITES="selftests/vm/suites/kmod.sh"
# The Python suite (py.sh: the suites whose objects live in regions) runs on
# the kernels of VM_PY_KERNELS only: the rest does not depend on the kernel, which the
# kselftests and the library's kmod-backend and wakeup tests cover on each.
# selftests/vm/boot.sh lists the other knobs (VM_KERNEL, VM_KO, VM_MEM,
# VM_APPEND, VM_CHECKS, ...), for reuse with other kernels.
#
# make bench-kmod: the same boot running bench/kmod/ instead, on the
# kernels of VM_BENCH_KERNELS (or VM_KVER).

include $(TOP)/selftests/kmod/kmod.mk

VM_BOOT := $(TOP)/selftests/vm/boot.sh
VM_KERNELS := 6.1 6.12 7.2
VM_PY_KERNELS ?= 6.12
VM_BENCH_KERNELS ?= 6.1 6.12
VM_SUITES ?= $(patsubst $(TOP)/%,%,$(sort $(wildcard $(TOP)/selftests/vm/suites/*.sh)))
# What the suites run, built on the host before the boot (the module is
# built per kernel by the boot's own target).
VM_DEPS ?= kmodtests libtests pymod
CHECK_TARGETS += $(addprefix vm-check-,$(VM_KERNELS))

# The series VM_KVER names (a series of VM_KERNELS, or a release of one).
vm_series = $(or $(firstword $(foreach k,$(VM_KERNELS),$(if $(filter $(k) $(k).% $(k)-% $(k)+%,$(1)),$(k)))),$(error VM_KVER=$(1) is none of VM_KERNELS ($(VM_KERNELS))))
VM_PICKED = $(if $(VM_KVER),$(call vm_series,$(VM_KVER)),$(VM_KERNELS))

# vm_kernel SERIES NAME SUITES: build pyshm.ko for the kernel of SERIES
# (selftests/vm/kernels.sh) in $(O)/kmod/<release>/, then boot that kernel
# as VM_NAME=NAME running SUITES.
vm_kernel = eval "$$(TOP=$(TOP) O=$(O) $(TOP)/selftests/vm/kernels.sh env $(1) \
		$(filter $(1).% $(1)-% $(1)+%,$(VM_KVER)))" || exit 1; \
	echo "$(2): pyshm.ko for $$KVER"; \
	$(MAKE) --no-print-directory kmod DEPS_GROUPS=none KVER=$$KVER KDIR=$$KDIR \
		KMOD_OUT=$(O)/kmod/$$KVER KMOD_RUN="$$KRUN" >$(O)/kmod/$$KVER.log 2>&1 || \
		{ cat $(O)/kmod/$$KVER.log; exit 1; }; \
	TOP=$(TOP) O=$(O) B=$(B) VM_NAME=$(2) VM_KVER=$$KVER VM_ROOT=$$VM_ROOT \
		VM_KO=$(O)/kmod/$$KVER/pyshm.ko VM_KERNEL= VM_SUITES="$(3)" $(VM_BOOT)

.PHONY: vm-check bench-kmod bench $(addprefix vm-check-,$(VM_KERNELS)) \
	$(addprefix bench-kmod-,$(VM_KERNELS))
vm-check: $(addprefix vm-check-,$(VM_PICKED))

$(addprefix vm-check-,$(VM_KERNELS)): vm-check-%: $(VM_DEPS) | $(DEPS_STAMP)
	@mkdir -p $(O)/kmod
	@$(call vm_kernel,$*,vm-check-$*,$(if $(filter $*,$(VM_PY_KERNELS)),$(VM_SUITES),$(filter-out %/py.sh,$(VM_SUITES))))

BENCH_KMOD := $(B)/bench/kmod/bench_kmod

$(BENCH_KMOD): $(TOP)/bench/kmod/bench_kmod.c $(TOP)/bench/bench.h \
		$(TOP)/include/uapi/linux/pyshm.h | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -I$(TOP)/bench -o $@ $<

# Each kernel's table goes to stdout; the boot's log to
# $(O)/bench/bench-kmod-<series>.out.
bench-kmod: $(addprefix bench-kmod-,$(if $(VM_KVER),$(call vm_series,$(VM_KVER)),$(VM_BENCH_KERNELS)))

$(addprefix bench-kmod-,$(VM_KERNELS)): bench-kmod-%: $(BENCH_KMOD) | $(DEPS_STAMP)
	@mkdir -p $(O)/bench $(O)/kmod
	@echo "bench-kmod: booting the $* guest (about 30 s)"
	@( export VM_RESULTS=$(O)/bench; $(call vm_kernel,$*,bench-kmod-$*,bench/kmod/bench.sh) ) \
		>$(O)/bench/bench-kmod-$*.out 2>&1 || { cat $(O)/bench/bench-kmod-$*.out; exit 1; }
	@echo "bench-kmod: $$(sed -n 's/^guest: \([^,]*\),.*/\1/p' $(O)/vm/bench-kmod-$*/serial.log | tr -d '\r')"
	@grep -av '^# Totals' $(O)/bench/bench-kmod-$*-bench.log

bench: bench-kmod

# make check-dkms: dkms.conf builds and installs pyshm.ko for each kernel of
# VM_KERNELS (selftests/vm/dkms.sh; into $(O)/dkms, never the system's trees).
CHECK_TARGETS += check-dkms
.PHONY: check-dkms
check-dkms: | $(DEPS_STAMP)
	@O=$(O) $(TOP)/scripts/suite.sh check-dkms env TOP=$(TOP) O=$(O) \
		$(TOP)/selftests/vm/dkms.sh $(VM_KERNELS)

# make vm-check-debug (the same on a kernel with KASAN, lockdep, kmemleak...).
include $(TOP)/selftests/vm/debug.mk
