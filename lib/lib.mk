# SPDX-License-Identifier: GPL-2.0
# libpyshm: static and shared library, one set of objects per VARIANT.

LIB_SRCS := $(sort $(wildcard $(TOP)/lib/*.c))
LIB_OBJS := $(patsubst $(TOP)/lib/%.c,$(B)/lib/%.o,$(LIB_SRCS))
LIB_A := $(B)/lib/libpyshm.a
LIB_SONAME := libpyshm.so.0
LIB_SO := $(B)/lib/libpyshm.so
LIB_LDLIBS := -luring -pthread
LIB_CFLAGS := $(BASE_CFLAGS) -fvisibility=hidden -MMD -MP

.PHONY: lib
lib: $(LIB_A) $(LIB_SO)
all: lib

$(B)/lib/%.o: $(TOP)/lib/%.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

$(LIB_A): $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

# The file carries the soname, the plain name links to it (-lpyshm). The
# build fails if anything but the public pyshm_* API is exported.
$(B)/lib/$(LIB_SONAME): $(LIB_OBJS) $(TOP)/lib/libpyshm.map
	$(CC) $(BASE_CFLAGS) -shared -Wl,--version-script=$(TOP)/lib/libpyshm.map \
		-Wl,-soname,$(LIB_SONAME) -o $@ $(LIB_OBJS) $(LIB_LDLIBS)
	@bad=$$(nm -D --defined-only $@ | awk '$$2 ~ /^[A-Z]$$/ && $$3 !~ /^pyshm_|^PYSHM_/ {print $$3}'); \
	if [ -n "$$bad" ]; then echo "$@ exports non-API symbols: $$bad" >&2; rm -f $@; exit 1; fi

$(LIB_SO): $(B)/lib/$(LIB_SONAME)
	ln -sf $(LIB_SONAME) $@

-include $(LIB_OBJS:.o=.d)
