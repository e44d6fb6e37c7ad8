# SPDX-License-Identifier: GPL-2.0
# make vm-check-debug: the vm-check boot on a kernel of our own with the
# kernel's bug detectors (KASAN, lockdep, kmemleak, UBSAN, atomic-sleep and
# list debugging; selftests/vm/debug.config), built from Debian's
# linux-source by selftests/vm/debug-kernel.sh and cached in
# $(O)/debug-kernel/. One boot runs the kselftests, the library's kmod-backend
# tests, a longer stress run and the ioctl fuzzer, then scans for leaks and
# fails on any detector report. Part of `make check`.
#
#   make vm-check-debug VM_FUZZ_SECS=300 VM_FUZZ_SEED=0x...   fuzz longer, replay a seed
#   make vm-check-debug-selftest    (by hand) three boots of a test-only
#                                   module with deliberate bugs, each of
#                                   which must be caught
# Included by selftests/vm/vm.mk.

DEBUG_KERNEL := $(O)/debug-kernel/current
DEBUG_KDIR := $(DEBUG_KERNEL)/build
DEBUG_KMOD_OUT := $(O)/kmod/debug
DEBUG_SELFTEST_OUT := $(O)/kmod/debug-selftest
VM_FUZZ_SECS ?= 30
VM_FUZZ_SEED ?=
VM_STRESS_SECS ?= 20
CHECK_TARGETS += vm-check-debug

# What every debug boot shares: the kernel (virtio and 9p built in), two
# CPUs (sockets=2: without ACPI the guest counts CPUs in SeaBIOS's MP table,
# which lists one per package), and a leak scan before rmmod. The whole boot
# takes about 2 minutes; the time limits (about 3x that) end a hung guest as
# a failure.
DEBUG_VM_ENV = TOP=$(TOP) O=$(O) B=$(B) VM_KERNEL=$(DEBUG_KERNEL)/bzImage \
	VM_KVER=$$(cat $(DEBUG_KERNEL)/release) VM_MODULES= VM_MEM=1G VM_SMP=2,sockets=2,cores=1,threads=1 \
	VM_CHECKS=selftests/vm/debug-kmemleak.sh

.PHONY: debug-kernel vm-check-debug vm-check-debug-selftest
debug-kernel: | $(DEPS_STAMP)
	@TOP=$(TOP) O=$(O) $(TOP)/selftests/vm/debug-kernel.sh

vm-check-debug: debug-kernel kmodtests libtests | $(DEPS_STAMP)
	@mkdir -p $(O)/kmod
	@$(MAKE) --no-print-directory kmod KDIR=$(DEBUG_KDIR) KMOD_OUT=$(DEBUG_KMOD_OUT) \
		>$(O)/kmod/debug.log 2>&1 || { cat $(O)/kmod/debug.log; exit 1; }
	@$(DEBUG_VM_ENV) VM_NAME=vm-check-debug VM_KO=$(DEBUG_KMOD_OUT)/pyshm.ko \
		VM_SUITES="selftests/vm/suites/kmod.sh selftests/vm/suites/lib.sh \
			selftests/vm/debug-suites/stress.sh selftests/vm/debug-suites/fuzz.sh" \
		VM_APPEND="vm.fuzz_secs=$(VM_FUZZ_SECS) vm.stress_secs=$(VM_STRESS_SECS) \
			$(if $(VM_FUZZ_SEED),vm.fuzz_seed=$(VM_FUZZ_SEED))" \
		VM_SUITE_TIMEOUT=$$(($(VM_FUZZ_SECS) + $(VM_STRESS_SECS) + 240)) \
		VM_TIMEOUT=$$(($(VM_FUZZ_SECS) + $(VM_STRESS_SECS) + 400)) \
		$(VM_BOOT)

# The test-only module: the real one plus kmod/selftest/bugs.c, built with its
# own Kbuild in a folder of its own (the shipped Kbuild never names it).
vm-check-debug-selftest: debug-kernel | $(DEPS_STAMP)
	@rm -rf $(DEBUG_SELFTEST_OUT)
	@mkdir -p $(DEBUG_SELFTEST_OUT)/kmod
	@ln -s $(TOP)/Kbuild $(DEBUG_SELFTEST_OUT)/Kbuild.pyshm
	@ln -s $(TOP)/kmod/selftest/Kbuild $(DEBUG_SELFTEST_OUT)/Kbuild
	@ln -s $(TOP)/include $(DEBUG_SELFTEST_OUT)/include
	@ln -s $(KMOD_SRCS) $(wildcard $(TOP)/kmod/selftest/*.c) $(DEBUG_SELFTEST_OUT)/kmod/
	@env -u MAKEFLAGS -u MFLAGS -u MAKEOVERRIDES -u O \
		$(MAKE) -j2 -C $(DEBUG_KDIR) M=$(DEBUG_SELFTEST_OUT) PYSHM_WERROR=y modules \
		>$(DEBUG_SELFTEST_OUT)/build.log 2>&1 || { cat $(DEBUG_SELFTEST_OUT)/build.log; exit 1; }
	@$(DEBUG_VM_ENV) VM_KO=$(DEBUG_SELFTEST_OUT)/pyshm.ko \
		$(TOP)/selftests/vm/debug-selftest.sh
