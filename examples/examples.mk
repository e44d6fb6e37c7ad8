# SPDX-License-Identifier: GPL-2.0
# `make demo`: the main job, workers sharing a SharedArrayBuffer, on the
# newest Python present (the embedded memfd backend unless /dev/pyshm).

DEMO_TAG := $(lastword $(sort $(filter 3.%,$(PY_TAGS))))

.PHONY: demo
demo: pymod
	PYTHONPATH=$(B)/py/$(DEMO_TAG) $(call PY_BIN,$(DEMO_TAG)) $(TOP)/examples/primes.py
