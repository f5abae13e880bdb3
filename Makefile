# SPDX-License-Identifier: MIT
#
# ipcx top-level Makefile: non-recursive, Kbuild style. Each folder lists its
# objects in a Kbuild file (lib: obj-y, tests: test-y, tools: <tool>-y);
# this file includes them all and builds everything in one make instance.
#
#   make [V=1] [O=dir] [CC=clang] [SANITIZE=address,undefined|thread]
#   make help

VERSION := 0.1.0
SOVERSION := 0

comma := ,
ifneq ($(SANITIZE),)
O ?= build-$(subst $(comma),-,$(SANITIZE))
else
O ?= build
endif
override O := $(patsubst %/,%,$(O))

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DESTDIR ?=

CC ?= cc
CXX ?= c++
AR ?= ar
LD ?= ld
OBJCOPY ?= objcopy
NM ?= nm

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wno-missing-field-initializers
BASE_CFLAGS := -std=gnu11 -O2 -g $(WARN) -D_GNU_SOURCE -fPIC -fvisibility=hidden \
	-fno-strict-aliasing -pthread
CPPFLAGS_ALL := -Iuapi -Ilib
LDLIBS := -pthread

ifneq ($(SANITIZE),)
SAN_FLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
BASE_CFLAGS += $(SAN_FLAGS)
# gcc warns that TSan does not model standalone fences (the seqlock readers
# use them); the warning is about TSan's reach, not about the code.
ifneq ($(filter thread,$(subst $(comma), ,$(SANITIZE))),)
BASE_CFLAGS += $(shell $(CC) -Werror -Wno-tsan -E -x c /dev/null >/dev/null 2>&1 && echo -Wno-tsan)
endif
LDFLAGS += $(SAN_FLAGS)
endif

# Test programs: the kselftest harness needs some warnings relaxed, and
# static functions of a test are allowed without prototypes.
TEST_CFLAGS := $(filter-out -fvisibility=hidden -Wmissing-prototypes,$(BASE_CFLAGS)) \
	-Wno-unused-parameter -Wno-sign-compare -I$(O)/include -Itests

# C++ in tools only (the Boost.Interprocess benchmark peers): same warnings
# minus the C-only ones; Boost's headers sit in a system directory, so their
# own warnings are not ours. With CC=clang, CXX follows (clang++).
ifeq ($(origin CXX),default)
ifneq ($(findstring clang,$(CC)),)
CXX := $(subst clang,clang++,$(CC))
else
CXX := g++
endif
endif
BASE_CXXFLAGS := -std=gnu++17 $(filter-out -std=% -Wstrict-prototypes \
	-Wmissing-prototypes,$(BASE_CFLAGS)) -Wno-unused-parameter

CFLAGS ?=
ALL_CFLAGS = $(BASE_CFLAGS) $(CPPFLAGS_ALL) $(CFLAGS)
ALL_TEST_CFLAGS = $(TEST_CFLAGS) $(CPPFLAGS_ALL) $(CFLAGS)
CXXFLAGS ?=
ALL_CXXFLAGS = $(BASE_CXXFLAGS) $(CPPFLAGS_ALL) $(CXXFLAGS)

# Quiet output: "  CC      lib/sys/features.o"; V=1 prints commands.
ifeq ($(V),1)
quiet =
Q =
else
quiet = @printf '  %-7s %s\n' '$(1)' '$(2)';
Q = @
endif

.DELETE_ON_ERROR:
.SUFFIXES:
.SECONDARY:
.DEFAULT_GOAL := all

# ---- library -------------------------------------------------------------
LIB_DIRS := $(sort $(patsubst %/Kbuild,%,$(wildcard lib/*/Kbuild)))
LIB_OBJS :=
define include_lib
obj-y :=
include $(1)/Kbuild
LIB_OBJS += $$(addprefix $(O)/$(1)/,$$(obj-y))
endef
$(foreach d,$(LIB_DIRS),$(eval $(call include_lib,$(d))))

LIBA := $(O)/libipcx.a
LIBSO := $(O)/libipcx.so.$(VERSION)
LIBO := $(O)/libipcx.o

# ---- tests ---------------------------------------------------------------
TEST_DIRS := $(sort $(patsubst %/Kbuild,%,$(wildcard tests/*/Kbuild)))
TESTS :=
define include_tests
test-y :=
include $(1)/Kbuild
TESTS += $$(addprefix $(O)/$(1)/,$$(test-y))
endef
$(foreach d,$(TEST_DIRS),$(eval $(call include_tests,$(d))))

# ---- tools & examples ----------------------------------------------------
TOOL_DIRS := $(sort $(patsubst %/Kbuild,%,$(wildcard tools/*/Kbuild)))
TOOLS :=
define include_tool
tool-name :=
tool-y :=
tool-ldlibs :=
include $(1)/Kbuild
TOOLS += $(O)/$(1)/$$(tool-name)
$(O)/$(1)/$$(tool-name): $$(addprefix $(O)/$(1)/,$$(tool-y)) $$(LIBA)
$(O)/$(1)/$$(tool-name): EXTRA_LDLIBS := $$(tool-ldlibs)
# a tool with any .cc source links with the C++ driver (and its runtime)
$(O)/$(1)/$$(tool-name): TOOL_LD := $$(if $$(wildcard $$(patsubst %.o,$(1)/%.cc,$$(tool-y))),CXX,CC)
endef
$(foreach d,$(TOOL_DIRS),$(eval $(call include_tool,$(d))))

EXAMPLES := $(O)/examples/demo $(O)/examples/mq_uring
$(O)/examples/mq_uring: LDLIBS += -luring

KSFT_HDR := $(O)/include/kselftest_harness.h

# ---- rules ---------------------------------------------------------------
.PHONY: all lib tests tools examples check bench demo deps install uninstall clean help soak

all: lib tools examples tests

lib: $(LIBA) $(LIBSO) $(O)/ipcx.pc $(O)/uapi-cxx.stamp
tools: $(TOOLS)
examples: $(EXAMPLES)
tests: $(TESTS)

$(O)/lib/%.o: lib/%.c
	@mkdir -p $(@D)
	$(call quiet,CC,$(@:$(O)/%=%))$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

# One relocatable object; hidden symbols become local, so the archive
# exports only the ipcx_* API (checked by tests/build/symbols_test).
$(LIBO): $(LIB_OBJS)
	$(call quiet,LD,$(@:$(O)/%=%))$(LD) -r -o $@ $^ && $(OBJCOPY) --localize-hidden $@

$(LIBA): $(LIBO)
	@rm -f $@
	$(call quiet,AR,$(@:$(O)/%=%))$(AR) rcs $@ $^

$(LIBSO): $(LIB_OBJS)
	$(call quiet,LD,$(@:$(O)/%=%))$(CC) -shared -Wl,-soname,libipcx.so.$(SOVERSION) \
		-Wl,--no-undefined $(LDFLAGS) -o $@ $^ $(LDLIBS)
	$(Q)ln -sf libipcx.so.$(VERSION) $(O)/libipcx.so.$(SOVERSION)
	$(Q)ln -sf libipcx.so.$(SOVERSION) $(O)/libipcx.so

$(O)/ipcx.pc: ipcx.pc.in Makefile
	@mkdir -p $(@D)
	$(call quiet,GEN,$(@:$(O)/%=%))sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
		-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' $< > $@

# The public headers must compile as C++ too (trading engines are often C++).
$(O)/uapi-cxx.stamp: $(wildcard uapi/*.h uapi/ipcx/*.h)
	@mkdir -p $(@D)
	$(call quiet,CXXHDR,uapi/ipcx.h)$(CXX) -std=c++11 -Wall -Wextra -Werror -fsyntax-only \
		-x c++ -Iuapi uapi/ipcx.h && touch $@

$(KSFT_HDR):
	@mkdir -p $(@D)
	$(call quiet,GEN,$(@:$(O)/%=%) (from the linux-source package))scripts/kselftest-headers.sh $(@D)

# Tests link the library's objects directly (internals are reachable);
# the archive as shipped is proven by tests/build.
$(O)/tests/%.o: tests/%.c $(KSFT_HDR)
	@mkdir -p $(@D)
	$(call quiet,CC,$(@:$(O)/%=%))$(CC) $(ALL_TEST_CFLAGS) -MMD -MP -c -o $@ $<

$(O)/tests/%: $(O)/tests/%.o $(LIB_OBJS)
	$(call quiet,LD,$(@:$(O)/%=%))$(CC) $(LDFLAGS) -o $@ $< $(LIB_OBJS) -luring $(LDLIBS)

$(O)/tools/%.o: tools/%.c
	@mkdir -p $(@D)
	$(call quiet,CC,$(@:$(O)/%=%))$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(O)/tools/%.o: tools/%.cc
	@mkdir -p $(@D)
	$(call quiet,CXX,$(@:$(O)/%=%))$(CXX) $(ALL_CXXFLAGS) -MMD -MP -c -o $@ $<

$(TOOLS):
	$(call quiet,LD,$(@:$(O)/%=%))$($(TOOL_LD)) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBA) \
		$(EXTRA_LDLIBS) $(LDLIBS)

$(O)/examples/%.o: examples/%.c
	@mkdir -p $(@D)
	$(call quiet,CC,$(@:$(O)/%=%))$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(O)/examples/%: $(O)/examples/%.o $(LIBA)
	$(call quiet,LD,$(@:$(O)/%=%))$(CC) $(LDFLAGS) -o $@ $< $(LIBA) $(LDLIBS)

# The archive as a user links it: fully static, against libipcx.a only.
# (Sanitizer runtimes cannot be linked statically: that build links it
# dynamically and the test says so.)
STATIC_FLAG := $(if $(SANITIZE),,-static)
$(O)/tests/build/static_test: $(O)/tests/build/static_test.o $(LIBA)
	$(call quiet,LD,$(@:$(O)/%=%))$(CC) $(LDFLAGS) $(STATIC_FLAG) -o $@ $< $(LIBA) $(LDLIBS)
$(O)/tests/build/static_test.o: ALL_TEST_CFLAGS += $(if $(SANITIZE),-DIPCX_TEST_NOT_STATIC)
$(O)/tests/build/symbols_test.o: ALL_TEST_CFLAGS += -DIPCX_LIBA='"$(abspath $(LIBA))"' \
	-DIPCX_LIBSO='"$(abspath $(LIBSO))"' -DIPCX_NM='"$(NM)"'
$(O)/tests/build/symbols_test: $(LIBA) $(LIBSO)
$(O)/tests/bench/harness_test.o: ALL_TEST_CFLAGS += \
	-DIPCX_BENCH_BIN='"$(abspath $(O)/tools/bench/ipcx-bench)"'
$(O)/tests/bench/harness_test: $(O)/tools/bench/ipcx-bench

# ---- running -------------------------------------------------------------
deps:
	@scripts/deps.sh

check: deps
	@$(MAKE) --no-print-directory all
	@scripts/run-tests.sh $(TESTS)

BENCH := $(O)/tools/bench/ipcx-bench
BENCH_ARGS ?=
bench: deps
	@$(MAKE) --no-print-directory $(BENCH)
	@$(BENCH) $(BENCH_ARGS)

# A long kill-torture of the queues (make check runs a bounded one).
soak: deps
	@$(MAKE) --no-print-directory all
	IPCX_MQ_TORTURE_KILLS=100000 IPCX_TEST_TIMEOUT=7200 scripts/run-tests.sh $(O)/tests/mq/mq_crash_test

demo: deps
	@$(MAKE) --no-print-directory $(EXAMPLES)
	@$(O)/examples/demo

# ---- install -------------------------------------------------------------
install: lib tools
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/ipcx $(DESTDIR)$(BINDIR) \
		$(DESTDIR)$(PKGCONFIGDIR)
	install -m 0644 $(LIBA) $(DESTDIR)$(LIBDIR)/
	install -m 0755 $(LIBSO) $(DESTDIR)$(LIBDIR)/
	ln -sf libipcx.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libipcx.so.$(SOVERSION)
	ln -sf libipcx.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libipcx.so
	install -m 0644 uapi/ipcx.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 0644 uapi/ipcx/*.h $(DESTDIR)$(INCLUDEDIR)/ipcx/
	install -m 0644 $(O)/ipcx.pc $(DESTDIR)$(PKGCONFIGDIR)/
	$(if $(TOOLS),install -m 0755 $(TOOLS) $(DESTDIR)$(BINDIR)/)

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libipcx.a $(DESTDIR)$(LIBDIR)/libipcx.so*
	rm -f $(DESTDIR)$(INCLUDEDIR)/ipcx.h $(DESTDIR)$(PKGCONFIGDIR)/ipcx.pc
	rm -rf $(DESTDIR)$(INCLUDEDIR)/ipcx
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(TOOLS)))

clean:
	rm -rf $(O)

help:
	@echo 'Targets:'
	@echo '  all        library (libipcx.a, libipcx.so, ipcx.pc), tools, examples, tests'
	@echo '  check      build and run every kselftest program; ends with a check: line'
	@echo '  bench      build and run the benchmarks: ipcx beside Boost, POSIX and the floors'
	@echo '             BENCH_ARGS="--quick --only NAME,.. --json FILE --plot DIR --list"'
	@echo '  demo       run the queue showcase: ipcx beside POSIX mq across processes'
	@echo '  soak       long kill-torture of the message queues (about an hour)'
	@echo '  deps       install the Debian packages the build needs (root), or print the command'
	@echo '  install    install to $$(DESTDIR)$$(PREFIX) (PREFIX LIBDIR INCLUDEDIR BINDIR)'
	@echo '  uninstall  remove what install put there'
	@echo '  clean      remove the build folder $$(O)'
	@echo 'Variables:'
	@echo '  V=1        print full commands        O=dir   build folder (default build)'
	@echo '  CC=clang   another compiler           SANITIZE=address,undefined | thread'
	@echo '  CXX=g++    C++ compiler of the Boost peers in tools/bench (default follows CC)'

-include $(LIB_OBJS:.o=.d) $(TESTS:=.d) $(wildcard $(O)/tools/*/*.d $(O)/examples/*.d)
