# SPDX-License-Identifier: GPL-2.0
#
# pyshm: one Makefile for the three layers. Flags are set here once; each
# layer adds its rules in a fragment next to its sources. Everything built
# lands under $(O) (default build/), never next to the sources.
#
#   make            library, Python extension (every Python >= 3.11), pyshm.ko
#   make demo       the main job: workers sharing a SharedArrayBuffer
#   make check      every test suite; ends with "N passed, N failed"
#   make bench      pyshm against its peers, as ratios measured in one run

TOP := $(CURDIR)
O ?= $(TOP)/build
override O := $(abspath $(O))

CC := gcc
WARN := -Wall -Wextra -Werror
# VARIANT selects a sanitizer build; each variant has its own output folder.
VARIANT ?= release
CFLAGS_release := -O2 -g
CFLAGS_asan := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=all
CFLAGS_tsan := -O1 -g -fsanitize=thread
BASE_CFLAGS := -std=gnu11 $(WARN) -D_GNU_SOURCE -fPIC -pthread \
	-I$(TOP)/include -I$(TOP)/include/uapi $(CFLAGS_$(VARIANT))
B := $(O)/$(VARIANT)

# The newest kernel with headers installed; never `uname -r` (the host's).
KVER ?= $(notdir $(patsubst %/build,%,$(lastword $(sort $(wildcard /lib/modules/*/build)))))
KDIR ?= /lib/modules/$(KVER)/build

DEPS_STAMP := $(O)/.deps-checked

.PHONY: all deps check clean style
.DEFAULT_GOAL := all

all:

# Quiet and idempotent; run once per make invocation by the targets that
# need packages.
$(DEPS_STAMP): FORCE
	@mkdir -p $(O)
	@$(TOP)/scripts/install-deps.sh
	@touch $@
deps: $(DEPS_STAMP)

include lib/lib.mk
-include kmod/kmod.mk
-include pymod/pymod.mk
include selftests/selftests.mk
-include selftests/py/py.mk
-include selftests/vm/vm.mk
-include bench/bench.mk
-include examples/examples.mk
-include examples/capi/capi.mk
-include selftests/fuzz/fuzz.mk

check: deps
	@TOP=$(TOP) O=$(O) $(TOP)/scripts/check.sh $(CHECK_TARGETS)

style:
	@$(TOP)/scripts/style.sh

clean:
	rm -rf $(O)

FORCE:
.PHONY: FORCE
