# SPDX-License-Identifier: GPL-2.0
# `make demo`: the main job, workers sharing a SharedArrayBuffer, on the
# newest Python present (the embedded memfd backend unless /dev/pyshm).

# The newest pyenv Python, else Debian's own (a machine without pyenv).
DEMO_TAG := $(or $(lastword $(sort $(filter 3.%,$(PY_TAGS)))),$(lastword $(PY_TAGS)))

.PHONY: demo
ifeq ($(DEMO_TAG),)
# No Python 3.11+ yet: the packages of the demo bring Debian's; look again.
demo: | $(DEPS_STAMP)
ifeq ($(DEMO_RETRY),)
	@$(MAKE) --no-print-directory DEMO_RETRY=1 demo
else
	@echo "demo: no Python 3.11 or later found" >&2; exit 1
endif
else
# Only the extension of that Python is built: the demo needs no more.
demo: pymod-$(DEMO_TAG)
	PYTHONPATH=$(B)/py/$(DEMO_TAG) $(call PY_BIN,$(DEMO_TAG)) $(TOP)/examples/primes.py
endif
