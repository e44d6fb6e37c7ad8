# SPDX-License-Identifier: GPL-2.0
# pyshm_example: an extension using pyshm_workers' C API (shared payloads),
# built for every Python next to pyshm_workers, so `make pymod` (and with it
# check-py) has it. Uses the PY_* variables of pymod/pymod.mk.

CAPI_EXAMPLE_SRC := $(TOP)/examples/capi/pyshm_example.c

define CAPI_EXAMPLE_template
CAPI_EXAMPLE_$(1) := $(B)/py/$(1)/pyshm_example$$(PY_SUFFIX_$(1))

$$(CAPI_EXAMPLE_$(1)): $(CAPI_EXAMPLE_SRC) $(TOP)/include/pyshm/capi.h
	@mkdir -p $$(@D)
	$(CC) $(PYMOD_CFLAGS) -I$$(PY_INC_$(1)) -shared -o $$@ $(CAPI_EXAMPLE_SRC)

pymod-$(1): $$(CAPI_EXAMPLE_$(1))
endef

$(foreach t,$(PY_TAGS),$(eval $(call CAPI_EXAMPLE_template,$(t))))
