# SPDX-License-Identifier: GPL-2.0
# Test programs. C tests use the kernel's kselftest harness, taken at build
# time from Debian's linux-source tarball (never committed).

KSFT_INC := $(O)/ksft
KSFT_H := $(KSFT_INC)/kselftest_harness.h
# The harness compares ints with unsigned expectations throughout.
TEST_CFLAGS := $(BASE_CFLAGS) -I$(KSFT_INC) -Wno-unused-parameter -Wno-sign-compare -MMD -MP
# Tests that expect SIGSEGV/SIGBUS must get them, not ASan's report.
ASAN_OPTIONS := handle_segv=0:handle_sigbus=0:detect_leaks=1
# Suites run by `make check`, in order; fragments append theirs.
CHECK_TARGETS := check-lib check-lib-asan

# From Debian 12's linux-source (6.1), whatever other sources are installed
# beside it (6.12's harness trips -Wclobbered in TEST_F).
KSFT_TARBALL ?= /usr/src/linux-source-6.1.tar.xz

$(KSFT_H): | $(DEPS_STAMP)
	@mkdir -p $(KSFT_INC)
	tar -xJf $(KSFT_TARBALL) \
		-C $(KSFT_INC) --strip-components=4 --wildcards \
		'*/tools/testing/selftests/kselftest_harness.h' \
		'*/tools/testing/selftests/kselftest.h'
	@touch $@

LIBTEST_SRCS := $(sort $(wildcard $(TOP)/selftests/lib/*.c))
LIBTEST_BINS := $(patsubst $(TOP)/selftests/lib/%.c,$(B)/selftests/lib/%,$(LIBTEST_SRCS))

$(B)/selftests/lib/%: $(TOP)/selftests/lib/%.c $(LIB_A) $(KSFT_H)
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(LIB_A) $(LIB_LDLIBS)

# The ABI test links the shared library, as programs outside this tree do.
$(B)/selftests/lib/abi: $(TOP)/selftests/lib/abi.c $(LIB_SO) $(KSFT_H)
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -o $@ $< -L$(B)/lib -Wl,-rpath,$(B)/lib -lpyshm -ldl

.PHONY: libtests check-lib check-lib-asan tsan valgrind
libtests: $(LIBTEST_BINS)
all: libtests

# Library tests on the host: memfd backend, once per wakeup path.
check-lib: libtests
	@O=$(O) $(TOP)/scripts/suite.sh check-lib \
		$(TOP)/selftests/lib/run.sh $(B)/selftests/lib memfd

check-lib-asan:
	@$(MAKE) --no-print-directory VARIANT=asan libtests
	@O=$(O) $(TOP)/scripts/suite.sh check-lib-asan \
		env ASAN_OPTIONS=$(ASAN_OPTIONS) UBSAN_OPTIONS=print_stacktrace=1 \
		$(TOP)/selftests/lib/run.sh $(O)/asan/selftests/lib memfd

tsan:
	@$(MAKE) --no-print-directory VARIANT=tsan libtests
	@O=$(O) $(TOP)/scripts/suite.sh tsan \
		env TSAN_OPTIONS=halt_on_error=1:handle_segv=0:handle_sigbus=0 \
		$(TOP)/selftests/lib/run.sh $(O)/tsan/selftests/lib memfd

valgrind: libtests
	@O=$(O) $(TOP)/scripts/suite.sh valgrind \
		env PYSHM_VALGRIND=1 \
		$(TOP)/selftests/lib/run.sh $(B)/selftests/lib memfd

-include $(LIBTEST_BINS:=.d)
