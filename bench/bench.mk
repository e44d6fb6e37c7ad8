# SPDX-License-Identifier: GPL-2.0
# `make bench`: pyshm against its peers, side by side in one run, as ratios.
# Never part of `make check`: tests do not time anything.

BENCH_CFLAGS := $(BASE_CFLAGS) -I$(TOP)/bench
BENCH_BINS := $(B)/bench/ring_bench

$(B)/bench/%: $(TOP)/bench/%.c $(TOP)/bench/bench.h $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) -o $@ $< $(LIB_A) $(LIB_LDLIBS)

.PHONY: bench bench-lib
bench: bench-lib

bench-lib: $(BENCH_BINS)
	$(B)/bench/ring_bench
-include $(TOP)/bench/clone.mk

# bench-workers: Worker, MessagePort, WorkerPool against multiprocessing,
# threads, CPython's subinterpreter queues and Node (bench/worker_bench.py),
# on the newest Python present.
BENCH_WORKERS_TAG := $(lastword $(sort $(filter 3.%,$(PY_TAGS))))
.PHONY: bench-workers
bench: bench-workers
bench-workers: pymod-$(BENCH_WORKERS_TAG)
	PYTHONPATH=$(B)/py/$(BENCH_WORKERS_TAG) $(call PY_BIN,$(BENCH_WORKERS_TAG)) \
		$(TOP)/bench/worker_bench.py

# bench-dask: Dask's local scheduler with a WorkerPool against its threaded
# and processes schedulers (bench/dask_bench.py), on Debian's Python, which
# has dask (python3-dask); it says so and skips where dask is missing.
BENCH_DASK_TAG := $(or $(firstword $(filter debian-%,$(PY_TAGS))),$(BENCH_WORKERS_TAG))
.PHONY: bench-dask
bench: bench-dask
bench-dask: pymod-$(BENCH_DASK_TAG)
	PYTHONPATH=$(B)/py/$(BENCH_DASK_TAG) $(call PY_BIN,$(BENCH_DASK_TAG)) \
		$(TOP)/bench/dask_bench.py

# bench-numpy: E10 of bench/worker_bench.py (numpy arrays) on Debian's
# Python, which has numpy (python3-numpy); bench-workers' Python may not.
.PHONY: bench-numpy
bench: bench-numpy
bench-numpy: pymod-$(BENCH_DASK_TAG)
	PYTHONPATH=$(B)/py/$(BENCH_DASK_TAG) $(call PY_BIN,$(BENCH_DASK_TAG)) \
		$(TOP)/bench/worker_bench.py --tables E10
