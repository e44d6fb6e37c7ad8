# SPDX-License-Identifier: GPL-2.0
# Installing as users do (Documentation/install.rst):
#   check-install  `make install` into a DESTDIR, and a C program built
#                  against it with pkg-config (install.sh)
#   check-pip      `pip install .` and `pip wheel .` into fresh venvs, offline
#                  (pip.sh): Debian's python3 here, 3.14 and 3.15 in the chroot
#                  (selftests/chroot/chroot.mk)

PIP_TAG := $(firstword $(filter debian-%,$(PY_TAGS)))

.PHONY: check-install check-pip
CHECK_TARGETS += check-install check-pip

check-install: | $(DEPS_STAMP)
	@O=$(O) TOP=$(TOP) $(TOP)/scripts/suite.sh check-install $(TOP)/selftests/install/install.sh

check-pip: | $(DEPS_STAMP)
	@status=0; \
	O=$(O) TOP=$(TOP) $(TOP)/scripts/suite.sh check-pip-$(PIP_TAG) \
		$(TOP)/selftests/install/pip.sh $(call PY_BIN,$(PIP_TAG)) $(O)/pip/$(PIP_TAG) || status=1; \
	$(CHROOT_RUN) $(TOP)/selftests/chroot/run.sh pip || status=1; \
	exit $$status
