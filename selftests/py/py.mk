# SPDX-License-Identifier: GPL-2.0
# Python tests: every Python >= 3.11 present, against the extension built
# for it; then one pass of one Python under ASan+UBSan.

PY_TEST_RUN := $(TOP)/selftests/py/run.py
# The Python that gets the sanitizer pass: the newest one.
PY_ASAN_TAG := $(lastword $(sort $(filter 3.%,$(PY_TAGS))))

.PHONY: check-py check-py-asan
CHECK_TARGETS += check-py check-py-asan

check-py: pymod
	@status=0; for t in $(PY_TAGS); do \
		O=$(O) PYTHONPATH=$(B)/py/$$t $(TOP)/scripts/suite.sh check-py-$$t \
			$$(echo "$(PYTHONS)" | tr ' ' '\n' | sed -n "s/^$$t=//p") \
			$(PY_TEST_RUN) || status=1; \
	done; exit $$status

# The interpreter is not instrumented, so ASan's runtime is preloaded; its
# leak checker would report the interpreter's own allocations at exit.
check-py-asan:
	@$(MAKE) --no-print-directory VARIANT=asan pymod-$(PY_ASAN_TAG)
	@O=$(O) PYTHONPATH=$(O)/asan/py/$(PY_ASAN_TAG) \
		LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
		ASAN_OPTIONS=detect_leaks=0:handle_segv=0:handle_sigbus=0 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		PYSHM_TEST_TIMEOUT=600 \
		$(TOP)/scripts/suite.sh check-py-asan $(call PY_BIN,$(PY_ASAN_TAG)) $(PY_TEST_RUN)
