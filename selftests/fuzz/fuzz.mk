# SPDX-License-Identifier: GPL-2.0
# libFuzzer targets of the clone decoder, built with Debian's clang:
#   clone_walk    libpyshm's reader and walker (lib/clone.c)
#   clone_decode  pyshm_workers' decoder in an embedded CPython (restricted
#                 mode: no arbitrary callables), extension sources linked in
# and two hostile peers, random but not coverage-guided:
#   ring_peer     libpyshm's rings against a child process that scribbles,
#                 forges references, truncates and dies (ASan, UBSan)
#   py_peer.py    pyshm_workers against a process worker that does the same
#                 from Python
#
#   make fuzz                      both, FUZZ_SECONDS in all (default 600)
#   make fuzz FUZZ_SECONDS=3600    longer
#   make check-fuzz                a short run (FUZZ_CHECK_SECONDS each),
#                                  part of `make check`
# Corpora grow in $(O)/fuzz/corpus-*; crashes land in $(O)/fuzz/artifacts.

FUZZ_CC := clang
FUZZ_DIR := $(O)/fuzz
FUZZ_SECONDS ?= 600
FUZZ_CHECK_SECONDS ?= 12
# The newest Python with a shared libpython (pyenv builds have one; else
# Debian's, whose libpython3.X.so comes with python3-dev).
FUZZ_PY_TAG := $(or $(lastword $(sort $(filter 3.%,$(PY_TAGS)))),$(lastword $(PY_TAGS)))
FUZZ_PY := $(call PY_BIN,$(FUZZ_PY_TAG))
FUZZ_PY_CFG = $(shell $(FUZZ_PY) -c 'import sysconfig as s; print(s.get_config_var("$(1)"))')
FUZZ_CFLAGS := -std=gnu11 $(WARN) -Wno-unused-parameter -Wno-missing-field-initializers \
	-D_GNU_SOURCE -pthread -g -O1 -fno-omit-frame-pointer -fno-strict-aliasing \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-I$(TOP)/include -I$(TOP)/include/uapi
FUZZ_BINS := $(FUZZ_DIR)/clone_walk $(FUZZ_DIR)/clone_decode $(FUZZ_DIR)/ring_peer
PEER_CFLAGS := $(filter-out -fsanitize=fuzzer%,$(FUZZ_CFLAGS)) -fsanitize=address,undefined

$(FUZZ_DIR)/clone_walk: $(TOP)/selftests/fuzz/clone_walk.c $(TOP)/lib/clone.c \
		$(TOP)/include/pyshm/clone.h | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(TOP)/selftests/fuzz/clone_walk.c $(TOP)/lib/clone.c

$(FUZZ_DIR)/ring_peer: $(TOP)/selftests/fuzz/ring_peer.c $(LIB_SRCS) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(PEER_CFLAGS) -o $@ $< $(LIB_SRCS) $(LIB_LDLIBS)

$(FUZZ_DIR)/clone_decode: $(TOP)/selftests/fuzz/clone_decode.c $(PYMOD_SRCS) $(PYMOD_HDRS) \
		$(LIB_SRCS) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I$(PY_INC_$(FUZZ_PY_TAG)) \
		-DFUZZ_PYTHONHOME='"$(call FUZZ_PY_CFG,prefix)"' -o $@ \
		$(TOP)/selftests/fuzz/clone_decode.c $(PYMOD_SRCS) $(LIB_SRCS) \
		-L$(call FUZZ_PY_CFG,LIBDIR) -Wl,-rpath,$(call FUZZ_PY_CFG,LIBDIR) \
		-lpython$(call FUZZ_PY_CFG,LDVERSION) $(LIB_LDLIBS) -ldl -lm

.PHONY: fuzz-build fuzz check-fuzz
fuzz-build: $(FUZZ_BINS) pymod-$(FUZZ_PY_TAG)

fuzz: fuzz-build
	@FUZZ_PY=$(FUZZ_PY) PYTHONPATH=$(B)/py/$(FUZZ_PY_TAG) \
		$(TOP)/selftests/fuzz/run.sh $(FUZZ_DIR) $$(( $(FUZZ_SECONDS) / 2 ))

CHECK_TARGETS += check-fuzz
check-fuzz: fuzz-build
	@O=$(O) FUZZ_PY=$(FUZZ_PY) PYTHONPATH=$(B)/py/$(FUZZ_PY_TAG) \
		$(TOP)/scripts/suite.sh check-fuzz \
		$(TOP)/selftests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_CHECK_SECONDS)
