# SPDX-License-Identifier: GPL-2.0
# pyshm_workers: the C core (pymod/*.c, linked with libpyshm.a) and the
# Python files of the package, built for every Python >= 3.11 present into
# $(B)/py/<tag>/pyshm_workers/.

PYTHONS := $(shell $(TOP)/scripts/pythons.sh)
PY_TAGS := $(foreach p,$(PYTHONS),$(firstword $(subst =, ,$(p))))
PY_BIN = $(word 2,$(subst =, ,$(filter $(1)=%,$(PYTHONS))))
PYMOD_SRCS := $(sort $(wildcard $(TOP)/pymod/*.c))
PYMOD_HDRS := $(wildcard $(TOP)/pymod/*.h $(TOP)/include/pyshm/*.h)
PYMOD_PY := $(sort $(wildcard $(TOP)/pymod/pyshm_workers/*.py))
# Python's callback signatures fix parameters we don't use, and its
# sentinel entries leave fields out: CPython builds with the same two.
PYMOD_CFLAGS := $(BASE_CFLAGS) -fvisibility=hidden -fno-strict-aliasing \
	-Wno-unused-parameter -Wno-missing-field-initializers
# The tree used by tests, benchmarks and examples: PYTHONPATH=$(call PY_PATH,tag)
PY_PATH = $(B)/py/$(1)

define PYMOD_template
PY_INC_$(1) := $$(shell $(call PY_BIN,$(1)) -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
PY_SUFFIX_$(1) := $$(shell $(call PY_BIN,$(1)) -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
PY_EXT_$(1) := $(B)/py/$(1)/pyshm_workers/_core$$(PY_SUFFIX_$(1))
PY_FILES_$(1) := $(patsubst $(TOP)/pymod/%,$(B)/py/$(1)/%,$(PYMOD_PY))

$$(PY_EXT_$(1)): $(PYMOD_SRCS) $(PYMOD_HDRS) $(LIB_A)
	@mkdir -p $$(@D)
	$(CC) $(PYMOD_CFLAGS) -I$$(PY_INC_$(1)) -shared -o $$@ $(PYMOD_SRCS) $(LIB_A) $(LIB_LDLIBS)

# Byte-compiled at build time: workers import these at every start, and
# PYTHONDONTWRITEBYTECODE would otherwise make each of them compile again.
$(B)/py/$(1)/%.py: $(TOP)/pymod/%.py
	@mkdir -p $$(@D)
	cp $$< $$@
	@$(call PY_BIN,$(1)) -m py_compile $$@

.PHONY: pymod-$(1)
pymod-$(1): $$(PY_EXT_$(1)) $$(PY_FILES_$(1))
pymod: pymod-$(1)
endef

.PHONY: pymod
all: pymod
$(foreach t,$(PY_TAGS),$(eval $(call PYMOD_template,$(t))))
