# SPDX-License-Identifier: GPL-2.0
# `make demo`: the main job, workers sharing a SharedArrayBuffer, on the
# newest Python present (the embedded memfd backend unless /dev/pyshm).

# The newest pyenv Python, else Debian's own (a machine without pyenv).
DEMO_TAG := $(or $(lastword $(sort $(filter 3.%,$(PY_TAGS)))),$(lastword $(PY_TAGS)))

# Only the extension of that Python is built: the demo needs no more.
.PHONY: demo
demo: pymod-$(DEMO_TAG)
	PYTHONPATH=$(B)/py/$(DEMO_TAG) $(call PY_BIN,$(DEMO_TAG)) $(TOP)/examples/primes.py
