# SPDX-License-Identifier: GPL-2.0
# pyshm.ko (its selftests: selftests/kmod/kmod.mk).
#
# The module is built out of tree against $(KDIR) in $(KMOD_OUT), a folder of
# symlinks to the sources plus the Kbuild file, so kbuild writes nothing into
# the source tree. Another kernel goes to another folder:
#   make kmod KDIR=/path/to/kernel/build KMOD_OUT=$(O)/kmod/debug
# KMOD_RUN prefixes the kbuild commands: a kernel whose kbuild runs only in
# the kernel chroot (selftests/vm/kernels.sh) is built through it.

KMOD_OUT ?= $(O)/kmod/$(KVER)
KMOD_KO := $(KMOD_OUT)/pyshm.ko
KMOD_SRCS := $(sort $(wildcard $(TOP)/kmod/*.c $(TOP)/kmod/*.h))

.PHONY: kmod
all: kmod

# kbuild tracks its own dependencies, so it always runs (about 1 s when
# nothing changed). It gets a clean environment: a command-line O= or CC=
# meant for us must not reach the kernel's Makefile.
kmod: | $(DEPS_STAMP)
ifeq ($(KVER),)
ifeq ($(KMOD_RETRY),)
	@# The headers were only just installed: look for them again.
	@$(MAKE) --no-print-directory KMOD_RETRY=1 kmod
else
	@echo "kmod: no kernel headers under /lib/modules/*/build" >&2; exit 1
endif
else
	@$(KMOD_RUN) test -f "$(KDIR)/Makefile" || { echo "kmod: no kernel build dir $(KDIR)" >&2; exit 1; }
	@mkdir -p $(KMOD_OUT)/kmod
	@ln -sfn $(TOP)/Kbuild $(KMOD_OUT)/Kbuild
	@ln -sfn $(TOP)/include $(KMOD_OUT)/include
	@for f in $(KMOD_SRCS); do ln -sfn $$f $(KMOD_OUT)/kmod/; done
	@find $(KMOD_OUT)/kmod -xtype l -delete
	@$(KMOD_RUN) env -u MAKEFLAGS -u MFLAGS -u MAKEOVERRIDES -u O \
		$(MAKE) -j2 -C $(KDIR) M=$(KMOD_OUT) PYSHM_WERROR=y modules
endif
