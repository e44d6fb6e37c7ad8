# SPDX-License-Identifier: GPL-2.0
# The pyshm.ko selftests, built like the library's (selftests.mk) and run in
# the vm-check guest. Included by selftests/vm/vm.mk, after selftests.mk.

KMODTEST_SRCS := $(sort $(wildcard $(TOP)/selftests/kmod/*.c))
KMODTEST_BINS := $(patsubst $(TOP)/selftests/kmod/%.c,$(B)/selftests/kmod/%,$(KMODTEST_SRCS))

.PHONY: kmodtests
kmodtests: $(KMODTEST_BINS)
all: kmodtests

$(B)/selftests/kmod/%: $(TOP)/selftests/kmod/%.c $(KSFT_H)
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -o $@ $< -pthread


# The kmod backend of the library, tested where it differs from memfd.
$(B)/selftests/kmod/lib_kmod: $(TOP)/selftests/kmod/lib_kmod.c $(KSFT_H) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(LIB_A) $(LIB_LDLIBS)

-include $(KMODTEST_BINS:=.d)
