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

# make install: both libraries, the public headers (the UAPI header as
# <linux/pyshm.h>) and libpyshm.pc. The directories are set in the top
# Makefile; ldconfig runs for a live install as root.
LIB_PC_IN := $(TOP)/lib/libpyshm.pc.in
.PHONY: install-lib uninstall-lib
install-lib: lib
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) \
		$(DESTDIR)$(INCLUDEDIR)/pyshm $(DESTDIR)$(INCLUDEDIR)/linux
	install -m 644 $(LIB_A) $(DESTDIR)$(LIBDIR)/libpyshm.a
	install -m 755 $(B)/lib/$(LIB_SONAME) $(DESTDIR)$(LIBDIR)/$(LIB_SONAME)
	ln -sfn $(LIB_SONAME) $(DESTDIR)$(LIBDIR)/libpyshm.so
	install -m 644 $(wildcard $(TOP)/include/pyshm/*.h) $(DESTDIR)$(INCLUDEDIR)/pyshm/
	install -m 644 $(TOP)/include/uapi/linux/pyshm.h $(DESTDIR)$(INCLUDEDIR)/linux/pyshm.h
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCLUDEDIR)|' \
		-e 's|@VERSION@|$(PYSHM_VERSION)|' $(LIB_PC_IN) >$(DESTDIR)$(PKGCONFIGDIR)/libpyshm.pc
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then ldconfig; fi

uninstall-lib:
	rm -f $(DESTDIR)$(LIBDIR)/libpyshm.a $(DESTDIR)$(LIBDIR)/$(LIB_SONAME) \
		$(DESTDIR)$(LIBDIR)/libpyshm.so $(DESTDIR)$(PKGCONFIGDIR)/libpyshm.pc \
		$(DESTDIR)$(INCLUDEDIR)/linux/pyshm.h \
		$(patsubst $(TOP)/include/%,$(DESTDIR)$(INCLUDEDIR)/%,$(wildcard $(TOP)/include/pyshm/*.h))
	-rmdir $(DESTDIR)$(INCLUDEDIR)/pyshm 2>/dev/null

-include $(LIB_OBJS:.o=.d)
