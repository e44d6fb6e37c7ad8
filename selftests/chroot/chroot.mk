# SPDX-License-Identifier: GPL-2.0
# Python 3.14 and 3.15, from Debian's unstable suite, in the chroot that
# scripts/chroot.sh keeps outside the clone (built on first use: about two
# minutes and 800 MB). check-py-chroot builds the extension there for each
# and runs the Python suites as check-py does on the host; check-pip (in
# selftests/install/install.mk) runs its pip test there too. The chroot
# sees the source tree read-only and $(O) read-write, at their own paths.
#
#   make chroot                  build the chroot now (a no-op when cached)
#   scripts/chroot.sh run ...    a shell or any command in it

CHROOT := $(TOP)/scripts/chroot.sh
CHROOT_RUN = mkdir -p $(O) && $(CHROOT) run -r $(TOP) -b $(O) -w $(TOP) -- \
	env TOP=$(TOP) O=$(O) PYSHM_TEST_TIMEOUT=$${PYSHM_TEST_TIMEOUT:-300}

.PHONY: chroot check-py-chroot
CHECK_TARGETS += check-py-chroot

chroot: | $(DEPS_STAMP)
	@$(CHROOT) build

check-py-chroot: | $(DEPS_STAMP)
	@$(CHROOT_RUN) $(TOP)/selftests/chroot/run.sh py
