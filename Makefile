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
#   make install    libpyshm, its headers and libpyshm.pc (PREFIX, DESTDIR)
#   make modules_install   pyshm.ko into /lib/modules/$(KVER)/updates

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

# The kernel pyshm.ko is built for: the running one when its headers are
# installed (a user's machine), else the one Debian's linux-headers-amd64
# points at (6.1 on Debian 12), else the newest with headers. Not plain
# `uname -r`: on the test machines that is the host's, which has no headers.
ifeq ($(origin KVER),undefined)
KVER := $(notdir $(patsubst %/build,%,$(firstword \
	$(wildcard /lib/modules/$(shell uname -r)/build) \
	$(wildcard /lib/modules/$(shell dpkg-query -W -f='$${Depends}' linux-headers-amd64 \
		2>/dev/null | sed -n 's/^linux-headers-\([^ ,]*\).*/\1/p')/build) \
	$(shell ls -d /lib/modules/*/build 2>/dev/null | sort -V | tail -n 1))))
endif
KDIR ?= /lib/modules/$(KVER)/build

# The one version of the project (the Python package, libpyshm.pc).
PYSHM_VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"$$/\1/p' $(TOP)/pymod/pyshm_workers/_version.py)

DEPS_STAMP := $(O)/.deps-checked

.PHONY: all deps check clean style
.DEFAULT_GOAL := all

all:

# The package groups of scripts/install-deps.sh each goal needs, so that
# `make demo` gets a compiler, liburing and Python headers only. Goals not
# listed (check, vm-check, bench, ...) get every group.
DEPS_GOAL_demo := demo
DEPS_GOAL_lib := demo
DEPS_GOAL_pymod := demo
DEPS_GOAL_install := demo
DEPS_GOAL_kmod := demo kmod
DEPS_GOAL_modules_install := demo kmod
DEPS_GOAL_all := demo kmod test
DEPS_GOAL_clean := none
DEPS_GROUPS ?= $(sort $(foreach g,$(or $(MAKECMDGOALS),all),$(or $(DEPS_GOAL_$(g)),demo kmod test vm)))

# Quiet and idempotent; run once per make invocation by the targets that
# need packages.
$(DEPS_STAMP): FORCE
	@mkdir -p $(O)
	@$(TOP)/scripts/install-deps.sh $(DEPS_GROUPS)
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
-include selftests/chroot/chroot.mk
-include selftests/install/install.mk
-include selftests/typing/typing.mk

check: deps
	@TOP=$(TOP) O=$(O) $(TOP)/scripts/check.sh $(CHECK_TARGETS)

style:
	@$(TOP)/scripts/style.sh

# Installing (Documentation/install.rst). The Python package installs with
# pip (pyproject.toml); this is the C side.
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
.PHONY: install uninstall modules_install
install: install-lib
uninstall: uninstall-lib

# kbuild's modules_install, into updates/ (which takes precedence over a
# module of the same name shipped with the kernel), unsigned: Debian's
# headers have no signing key (dkms signs with its own). kbuild skips depmod
# without System.map, which Debian's headers lack: it runs here for a live
# install.
modules_install: kmod
	@env -u MAKEFLAGS -u MFLAGS -u MAKEOVERRIDES -u O \
		$(MAKE) -C $(KDIR) M=$(KMOD_OUT) INSTALL_MOD_PATH=$(DESTDIR) \
		INSTALL_MOD_DIR=updates CONFIG_MODULE_SIG_ALL= modules_install
	@if [ -z "$(DESTDIR)" ]; then depmod $(KVER); fi

clean:
	rm -rf $(O)

FORCE:
.PHONY: FORCE
