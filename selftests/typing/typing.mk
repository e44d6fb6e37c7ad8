# SPDX-License-Identifier: GPL-2.0
# Typing, with Debian's mypy: the examples pass `mypy --strict` against the
# package's stubs (pymod/pyshm_workers/*.pyi), the stubs pass it themselves,
# and stubtest finds them true to the extension and package as built for
# Debian's Python (the one mypy runs on).

TYPING_TAG := $(firstword $(filter debian-%,$(PY_TAGS)))

.PHONY: check-typing
CHECK_TARGETS += check-typing

check-typing: pymod-$(TYPING_TAG) | $(DEPS_STAMP)
	@O=$(O) TOP=$(TOP) PYTHONPATH=$(B)/py/$(TYPING_TAG) \
		$(TOP)/scripts/suite.sh check-typing $(TOP)/selftests/typing/run.sh
