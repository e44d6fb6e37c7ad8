# SPDX-License-Identifier: GPL-2.0
# bench-clone: the structured clone, atomics in a Python loop and SAB
# sharing against their peers (bench/clone_bench.py), on the newest
# Python >= 3.12 present.

BENCH_PY_TAG := $(lastword $(sort $(filter 3.1%,$(filter-out 3.10% 3.11%,$(PY_TAGS)))))

.PHONY: bench-clone
bench: bench-clone

ifneq ($(BENCH_PY_TAG),)
bench-clone: pymod-$(BENCH_PY_TAG)
	PYTHONPATH=$(B)/py/$(BENCH_PY_TAG) $(call PY_BIN,$(BENCH_PY_TAG)) $(TOP)/bench/clone_bench.py
else
bench-clone:
	@echo "bench-clone: no Python >= 3.12 here, skipped"
endif
