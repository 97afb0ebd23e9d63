# SPDX-License-Identifier: LGPL-2.1-or-later
# keyscope — plain GNU make. `make`, `make check`, `make install`, `make bench`, `make demo`.

PREFIX ?= /usr
SBINDIR ?= $(PREFIX)/sbin
BINDIR ?= $(PREFIX)/bin
LIBEXECDIR ?= $(PREFIX)/libexec/keyscope
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR ?= /lib/systemd/system
UDEVDIR ?= /lib/udev
DESTDIR ?=
CC ?= cc
PKG_CONFIG ?= pkg-config
BUILDDIR ?= build/out
CFLAGS ?= -O2 -g
V ?= 0

PKGS := libkeyutils json-c libsystemd libcrypto libcryptsetup devmapper blkid libkmod libcurl
CFLAGS += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wshadow -Wformat=2 \
	-Wstrict-prototypes -Wmissing-prototypes -Wvla -fno-strict-aliasing \
	-fstack-protector-strong -D_FORTIFY_SOURCE=2 -D_GNU_SOURCE -MMD -MP \
	-Ilib $(addprefix -I,$(DAEMON_DIRS)) -Icli $(shell $(PKG_CONFIG) --cflags $(PKGS))
LDLIBS += $(shell $(PKG_CONFIG) --libs $(PKGS))
ifeq ($(SANITIZE),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -U_FORTIFY_SOURCE
LDFLAGS += -fsanitize=address,undefined
endif

ifeq ($(V),1)
Q :=
E := @:
else
Q := @
E := @printf '  %-8s %s\n'
endif

# Sources are found in every folder below lib/, daemon/ and cli/; each daemon folder is on the
# include path (daemon/rpc, daemon/keys, daemon/sources, daemon/sources/barbican, daemon/volumes).
rwildcard = $(foreach d,$(wildcard $(1:=/*)),$(call rwildcard,$(d),$(2)) $(filter $(subst *,%,$(2)),$(d)))
LIB_SRC := $(sort $(call rwildcard,lib,*.c))
DAEMON_SRC := $(sort $(filter-out daemon/main.c,$(call rwildcard,daemon,*.c)))
DAEMON_DIRS := daemon $(sort $(patsubst %/,%,$(dir $(DAEMON_SRC))))
CLI_SRC := $(wildcard cli/*.c)
HELPER_SRC := $(wildcard kmod-helpers/*.c)
UNIT_SRC := $(wildcard tests/unit/test-*.c)
BENCH_SRC := $(wildcard bench/*.c)
TOOL_SRC := $(wildcard tests/tools/*.c)

obj = $(patsubst %.c,$(BUILDDIR)/%.o,$(1))
LIB_A := $(BUILDDIR)/libkeyscope.a
DAEMON_A := $(BUILDDIR)/libkeyscoped.a
KEYSCOPED := $(BUILDDIR)/keyscoped
KEYSCOPECTL := $(BUILDDIR)/keyscopectl
HELPER := $(BUILDDIR)/keyscope-request-key
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILDDIR)/tests/%,$(UNIT_SRC))
BENCH_BIN := $(patsubst bench/%.c,$(BUILDDIR)/bench/%,$(BENCH_SRC))
TOOL_BIN := $(patsubst tests/tools/%.c,$(BUILDDIR)/tools/%,$(TOOL_SRC))
PROGRAMS := $(KEYSCOPED) $(KEYSCOPECTL) $(if $(HELPER_SRC),$(HELPER))

all: $(PROGRAMS)

$(BUILDDIR)/%.o: %.c
	@mkdir -p $(dir $@)
	$(E) CC $<
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(LIB_A): $(call obj,$(LIB_SRC))
	$(E) AR $@
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(DAEMON_A): $(call obj,$(DAEMON_SRC))
	$(E) AR $@
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(KEYSCOPED): $(call obj,daemon/main.c) $(DAEMON_A) $(LIB_A)
	$(E) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(DAEMON_LDLIBS)

$(KEYSCOPECTL): $(call obj,$(CLI_SRC)) $(DAEMON_A) $(LIB_A)
	$(E) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(HELPER): $(call obj,$(HELPER_SRC)) $(LIB_A)
	$(E) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILDDIR)/tests/%: $(call obj,tests/unit/%.c) $(DAEMON_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(E) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(DAEMON_LDLIBS) $(shell $(PKG_CONFIG) --libs cmocka)

$(BUILDDIR)/tools/%: $(call obj,tests/tools/%.c) $(LIB_A)
	@mkdir -p $(dir $@)
	$(E) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILDDIR)/bench/%: $(call obj,bench/%.c) $(DAEMON_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(E) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# ---- tests -------------------------------------------------------------------------------

export KEYSCOPE_BUILDDIR := $(abspath $(BUILDDIR))

check-unit: $(UNIT_BIN)
	$(Q)tests/run-unit $(UNIT_BIN)

check-host: all $(TOOL_BIN)
	$(Q)tests/host/run

check-vm: all
	$(Q)tests/vm/setup
	$(Q)tests/vm/check

# Unit and host tests, then the VM guest; a summary line at the end of each stage and in all.
check: all $(UNIT_BIN) $(TOOL_BIN)
	$(Q)tests/run-all $(if $(NO_VM),--no-vm)

asan: export ASAN_OPTIONS := detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=1
asan: export UBSAN_OPTIONS := halt_on_error=1:print_stacktrace=1
asan:
	$(Q)$(MAKE) --no-print-directory SANITIZE=1 BUILDDIR=build/asan CC=$(CC) NO_VM=1 check

# The VM tests that drive keyscoped through device-mapper, with the ASan/UBSan build: the
# guest's ks_stop fails on a sanitizer report or a non-zero exit.
ASAN_VM_TESTS ?= t-volume t-volume-errors t-osbrick t-barbican-volume
asan-vm:
	$(Q)$(MAKE) --no-print-directory SANITIZE=1 BUILDDIR=build/asan CC=$(CC) all
	$(Q)tests/vm/setup >/dev/null
	$(Q)KEYSCOPE_BUILDDIR=$(abspath build/asan) tests/vm/check $(ASAN_VM_TESTS)

fuzz:
	$(Q)tests/fuzz/run

bench: all $(BENCH_BIN)
	$(Q)bench/run

# The VM stage of make bench alone: volume opens in the test guest (bench/vm-attach.sh).
bench-vm: all
	$(Q)bench/run --vm

demo: all
	$(Q)./demo.sh

deps:
	$(Q)./tools/install-deps

# ---- install -----------------------------------------------------------------------------

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR) \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(SYSCONFDIR)/keyscope
	install -m 0755 $(KEYSCOPED) $(DESTDIR)$(SBINDIR)/keyscoped
	install -m 0755 $(KEYSCOPECTL) $(DESTDIR)$(BINDIR)/keyscopectl
	$(if $(HELPER_SRC),install -m 0755 $(HELPER) $(DESTDIR)$(LIBEXECDIR)/keyscope-request-key)
	install -d $(DESTDIR)$(SYSCONFDIR)/request-key.d
	test -e $(DESTDIR)$(SYSCONFDIR)/request-key.d/keyscope.conf || \
		sed 's|/usr/libexec/keyscope/|$(LIBEXECDIR)/|' kmod-helpers/keyscope.conf | \
		install -m 0644 /dev/stdin $(DESTDIR)$(SYSCONFDIR)/request-key.d/keyscope.conf
	install -m 0644 docs/keyscoped.8 docs/keyscopectl.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 docs/keyscoped.conf.5 $(DESTDIR)$(MANDIR)/man5/
	test -e $(DESTDIR)$(SYSCONFDIR)/keyscope/keyscoped.conf || \
		install -m 0644 daemon/keyscoped.conf $(DESTDIR)$(SYSCONFDIR)/keyscope/keyscoped.conf
# Units and udev rules name /usr/sbin/keyscoped and /usr/bin/keyscopectl: written as installed.
	set -e; for f in $(wildcard systemd/*.service systemd/*.socket); do \
		sed -e 's|/usr/sbin/keyscoped|$(SBINDIR)/keyscoped|g' \
		    -e 's|/usr/bin/keyscopectl|$(BINDIR)/keyscopectl|g' $$f | \
		install -D -m 0644 /dev/stdin $(DESTDIR)$(UNITDIR)/$$(basename $$f); done
	set -e; for f in $(wildcard udev/*.rules); do \
		sed 's|/usr/bin/keyscopectl|$(BINDIR)/keyscopectl|g' $$f | \
		install -D -m 0644 /dev/stdin $(DESTDIR)$(UDEVDIR)/rules.d/$$(basename $$f); done

clean:
	rm -rf build/out build/asan build/fuzz

.PHONY: all check check-unit check-host check-vm asan asan-vm fuzz bench bench-vm demo deps install clean
.DELETE_ON_ERROR:

-include $(shell find $(BUILDDIR) -name '*.d' 2>/dev/null)

# ---- the os-brick encryptor (contrib/os-brick, docs/openstack.md) ---------------------------
PYTHONDIR ?= $(PREFIX)/lib/python3/dist-packages
install: install-os-brick
install-os-brick:
	install -d $(DESTDIR)$(PYTHONDIR)/keyscope_os_brick
	install -m 0644 contrib/os-brick/keyscope_os_brick/*.py $(DESTDIR)$(PYTHONDIR)/keyscope_os_brick/
.PHONY: install-os-brick
