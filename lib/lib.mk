# SPDX-License-Identifier: GPL-2.0
# libpyshm: static and shared library, one set of objects per VARIANT.

LIB_SRCS := $(sort $(wildcard $(TOP)/lib/*.c))
LIB_OBJS := $(patsubst $(TOP)/lib/%.c,$(B)/lib/%.o,$(LIB_SRCS))
LIB_A := $(B)/lib/libpyshm.a
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

$(LIB_SO): $(LIB_OBJS) $(TOP)/lib/libpyshm.map
	$(CC) $(BASE_CFLAGS) -shared -Wl,--version-script=$(TOP)/lib/libpyshm.map \
		-Wl,-soname,libpyshm.so.0 -o $@ $(LIB_OBJS) $(LIB_LDLIBS)

-include $(LIB_OBJS:.o=.d)
