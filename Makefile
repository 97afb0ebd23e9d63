# SPDX-License-Identifier: LGPL-2.1-or-later
# keyscope — plain GNU make. `make`, `make check`, `make install`, `make bench`, `make demo`.

VERSION := 0.1

PREFIX ?= /usr
SBINDIR ?= $(PREFIX)/sbin
BINDIR ?= $(PREFIX)/bin
LIBEXECDIR ?= $(PREFIX)/libexec/keyscope
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/keyscope
SYSCONFDIR ?= /etc
RUNSTATEDIR ?= /run
LOCALSTATEDIR ?= /var/lib
UNITDIR ?= /lib/systemd/system
UDEVDIR ?= /lib/udev
CATALOGDIR ?= /usr/lib/systemd/catalog
GENERATORDIR ?= /lib/systemd/system-generators
DESTDIR ?=
CC ?= cc
PKG_CONFIG ?= pkg-config
BUILDDIR ?= build/out
CFLAGS ?= -O2 -g
V ?= 0

# Every package any part uses (for the include path); each program links only its own list below.
PKGS := libkeyutils json-c libsystemd libcrypto libcryptsetup devmapper blkid libkmod libcurl
# The installed paths and the version reach the code as defines (lib/paths.h).
DEFINES := -DKEYSCOPE_VERSION='"$(VERSION)"' -DKEYSCOPE_SYSCONFDIR='"$(SYSCONFDIR)"' \
	-DKEYSCOPE_RUNSTATEDIR='"$(RUNSTATEDIR)"' -DKEYSCOPE_LOCALSTATEDIR='"$(LOCALSTATEDIR)"' \
	-DKEYSCOPE_LIBEXECDIR='"$(LIBEXECDIR)"'
# Objects are rebuilt when one of them changes: the stamp is rewritten only then.
DEFINES_STAMP := $(BUILDDIR)/defines
ifneq ($(file <$(DEFINES_STAMP)),$(DEFINES))
$(shell mkdir -p $(BUILDDIR))
$(file >$(DEFINES_STAMP),$(DEFINES))
endif
CFLAGS += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wshadow -Wformat=2 \
	-Wstrict-prototypes -Wmissing-prototypes -Wvla -fno-strict-aliasing \
	-fstack-protector-strong -D_FORTIFY_SOURCE=2 -D_GNU_SOURCE -MMD -MP $(DEFINES) \
	-Ilib $(addprefix -I,$(DAEMON_DIRS)) -Icli $(shell $(PKG_CONFIG) --cflags $(PKGS))
LDFLAGS += -Wl,--as-needed
pkg_libs = $(shell $(PKG_CONFIG) --libs $(1))
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
UNIT_SRC := $(wildcard tests/unit/test-*.c)
BENCH_SRC := $(wildcard bench/*.c)
TOOL_SRC := $(wildcard tests/tools/*.c)

obj = $(patsubst %.c,$(BUILDDIR)/%.o,$(1))
LIB_A := $(BUILDDIR)/libkeyscope.a
DAEMON_A := $(BUILDDIR)/libkeyscoped.a

# The programs. Each has its sources (NAME_SRC), the archives it links (NAME_A: lib/ alone
# unless it is the daemon), the pkg-config packages it calls (NAME_PKGS, linked --as-needed)
# and where it is installed (NAME_DIR). A new program adds its name and these four lines.
# libkmod is in no list: lib/kmod-dl.c dlopen()s it for the one check that loads modules.
# Nor is libcurl: daemon/sources/barbican/curl-dl.c dlopen()s it when Barbican is configured.
PROGRAMS := keyscoped keyscopectl keyscope-request-key keyscope-unlock

keyscoped_SRC := daemon/main.c
keyscoped_A := $(DAEMON_A) $(LIB_A)
keyscoped_PKGS := libsystemd json-c libkeyutils libcrypto libcryptsetup devmapper blkid
keyscoped_DIR := $(SBINDIR)

keyscopectl_SRC := $(wildcard cli/*.c)
keyscopectl_A := $(LIB_A)
keyscopectl_PKGS := json-c libkeyutils
keyscopectl_DIR := $(BINDIR)

keyscope-request-key_SRC := kmod-helpers/request-key.c
keyscope-request-key_A := $(LIB_A)
keyscope-request-key_PKGS := json-c libkeyutils libsystemd
keyscope-request-key_DIR := $(LIBEXECDIR)

# The keyslot unlock helper keyscoped execs (daemon/volumes/unlock.c): found next to keyscoped
# in the build folder, in LIBEXECDIR once installed.
keyscope-unlock_SRC := helpers/keyscope-unlock.c
keyscope-unlock_A := $(LIB_A)
keyscope-unlock_PKGS := libcryptsetup json-c libkeyutils libcrypto libsystemd devmapper blkid
keyscope-unlock_DIR := $(LIBEXECDIR)

# keyscopectl probe's LUKS header reader (helpers/keyscope-probe.c), exec'd by keyscopectl
# (cli/probe.c) from next to it or LIBEXECDIR: keyscopectl itself links no libcryptsetup.
PROGRAMS += keyscope-probe
keyscope-probe_SRC := helpers/keyscope-probe.c
keyscope-probe_A := $(LIB_A)
keyscope-probe_PKGS := libcryptsetup json-c libkeyutils libcrypto devmapper blkid
keyscope-probe_DIR := $(LIBEXECDIR)

# keyscope-generator (systemd/generator/): /etc/keyscope/volumes -> units, run by systemd before
# any unit; the units it writes name keyscopectl by its installed path (KEYSCOPECTL_PATH).
PROGRAMS += keyscope-generator
keyscope-generator_SRC := $(wildcard systemd/generator/*.c)
keyscope-generator_A := $(LIB_A)
keyscope-generator_PKGS := json-c libkeyutils libsystemd devmapper
keyscope-generator_DIR := $(GENERATORDIR)

PROGRAM_BIN := $(addprefix $(BUILDDIR)/,$(PROGRAMS))
# Test programs link everything the daemon does.
ALL_LIBS := $(call pkg_libs,$(sort $(foreach p,$(PROGRAMS),$($(p)_PKGS))))
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILDDIR)/tests/%,$(UNIT_SRC))
BENCH_BIN := $(patsubst bench/%.c,$(BUILDDIR)/bench/%,$(BENCH_SRC))
TOOL_BIN := $(patsubst tests/tools/%.c,$(BUILDDIR)/tools/%,$(TOOL_SRC))
# Kept for scripts and older make command lines.
KEYSCOPED := $(BUILDDIR)/keyscoped
KEYSCOPECTL := $(BUILDDIR)/keyscopectl
HELPER := $(BUILDDIR)/keyscope-request-key

all: $(PROGRAM_BIN)

# Every output is written under a temporary name and renamed into place: a make killed half
# way, or a second make on the same BUILDDIR (make asan and make asan-vm at once, a test run
# while a build links), never leaves or reads a truncated object or archive.
$(BUILDDIR)/%.o: %.c $(DEFINES_STAMP)
	@mkdir -p $(dir $@)
	$(E) CC $<
	$(Q)$(CC) $(CFLAGS) -MF $(@:.o=.d) -MT $@ -c -o $@.$$$$.tmp $< && mv -f $@.$$$$.tmp $@

archive = rm -f $@.$$$$.tmp && $(AR) rcs $@.$$$$.tmp $^ && mv -f $@.$$$$.tmp $@
link = $(CC) $(LDFLAGS) -o $@.$$$$.tmp $(filter %.o %.a,$^) $(1) && mv -f $@.$$$$.tmp $@

$(LIB_A): $(call obj,$(LIB_SRC))
	$(E) AR $@
	$(Q)$(archive)

$(DAEMON_A): $(call obj,$(DAEMON_SRC))
	$(E) AR $@
	$(Q)$(archive)

define program_rule
$(BUILDDIR)/$(1): $(call obj,$($(1)_SRC)) $($(1)_A)
	$$(E) LD $$@
	$$(Q)$$(call link,$$(call pkg_libs,$($(1)_PKGS)) $$(LDLIBS))
endef
$(foreach p,$(PROGRAMS),$(eval $(call program_rule,$(p))))

$(call obj,$(keyscope-generator_SRC)): CFLAGS += -DKEYSCOPECTL_PATH='"$(BINDIR)/keyscopectl"'

$(BUILDDIR)/tests/%: $(call obj,tests/unit/%.c) $(DAEMON_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(E) LD $@
	$(Q)$(call link,$(ALL_LIBS) $(call pkg_libs,cmocka) $(LDLIBS))

$(BUILDDIR)/tools/%: $(call obj,tests/tools/%.c) $(LIB_A)
	@mkdir -p $(dir $@)
	$(E) LD $@
	$(Q)$(call link,$(ALL_LIBS) $(LDLIBS))

$(BUILDDIR)/bench/%: $(call obj,bench/%.c) $(DAEMON_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(E) LD $@
	$(Q)$(call link,$(ALL_LIBS) $(LDLIBS))

# ---- tests -------------------------------------------------------------------------------

export KEYSCOPE_BUILDDIR := $(abspath $(BUILDDIR))

check-unit: $(UNIT_BIN)
	$(Q)tests/run-unit $(UNIT_BIN)

check-host: all $(TOOL_BIN)
	$(Q)tests/host/run

check-vm: all $(TOOL_BIN)
	$(Q)tests/vm/setup
	$(Q)tests/vm/check

# Unit and host tests, then the VM guest; a summary line at the end of each stage and in all.
check: check-build
	$(Q)tests/run-all $(if $(NO_VM),--no-vm)

# What the tests run, built (make -j2 check-build, then the test stages build nothing).
check-build: all $(UNIT_BIN) $(TOOL_BIN)

# Test objects are intermediate files to make: kept, so that the next make does not
# compile them again.
.SECONDARY: $(call obj,$(UNIT_SRC) $(TOOL_SRC) $(BENCH_SRC))

asan: export ASAN_OPTIONS := detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=1
asan: export UBSAN_OPTIONS := halt_on_error=1:print_stacktrace=1
asan:
	$(Q)$(MAKE) --no-print-directory SANITIZE=1 BUILDDIR=build/asan CC=$(CC) NO_VM=1 check

# The ASan/UBSan build of what make asan and make asan-vm run, alone (CI builds it with -j2).
asan-build:
	$(Q)$(MAKE) --no-print-directory SANITIZE=1 BUILDDIR=build/asan CC=$(CC) check-build

# The VM tests that drive keyscoped through device-mapper, with the ASan/UBSan build: the
# guest's ks_stop fails on a sanitizer report or a non-zero exit.
ASAN_VM_TESTS ?= t-volume t-volume-errors t-osbrick t-barbican-volume
asan-vm:
	$(Q)$(MAKE) --no-print-directory SANITIZE=1 BUILDDIR=build/asan CC=$(CC) all \
		$(TOOL_BIN:$(BUILDDIR)/%=build/asan/%)
	$(Q)tests/vm/setup >/dev/null
	$(Q)KEYSCOPE_BUILDDIR=$(abspath build/asan) tests/vm/check $(ASAN_VM_TESTS)

fuzz:
	$(Q)tests/fuzz/run

bench: all $(BENCH_BIN)
	$(Q)bench/run

# The VM stage of make bench alone: volume opens in the test guest (bench/vm-attach.sh,
# bench/vm-unlock.sh, bench/vm-osbrick.sh) and issue 12's P6 boots (bench/vm-p6.sh: 200
# declared volumes against /etc/crypttab, about 20 min; P6_VOLUMES=N for fewer).
bench-vm: all
	$(Q)bench/run --vm

# P6 alone: real boots of the --systemd guest, keyscope against systemd-cryptsetup.
bench-p6: all
	$(Q)bench/vm-p6.sh

demo: all
	$(Q)./demo.sh

deps:
	$(Q)./tools/install-deps

# ---- install -----------------------------------------------------------------------------

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR) \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man7 \
		$(DESTDIR)$(SYSCONFDIR)/keyscope \
		$(DESTDIR)$(DOCDIR)
	$(foreach p,$(PROGRAMS),install -D -m 0755 $(BUILDDIR)/$(p) $(DESTDIR)$($(p)_DIR)/$(p) &&) true
	install -d $(DESTDIR)$(SYSCONFDIR)/request-key.d
	test -e $(DESTDIR)$(SYSCONFDIR)/request-key.d/keyscope.conf || \
		sed 's|/usr/libexec/keyscope/|$(LIBEXECDIR)/|' kmod-helpers/keyscope.conf | \
		install -m 0644 /dev/stdin $(DESTDIR)$(SYSCONFDIR)/request-key.d/keyscope.conf
	install -m 0644 $(wildcard docs/*.8) $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 README.md $(wildcard docs/*.md) $(DESTDIR)$(DOCDIR)/
	install -m 0644 $(wildcard docs/*.5) $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 $(wildcard docs/*.7) $(DESTDIR)$(MANDIR)/man7/
	install -D -m 0644 docs/keyscope.catalog $(DESTDIR)$(CATALOGDIR)/keyscope.catalog
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

.PHONY: all check check-build check-unit check-host check-vm asan asan-build asan-vm fuzz bench \
	bench-vm bench-p6 demo deps install clean
.DELETE_ON_ERROR:

-include $(shell find $(BUILDDIR) -name '*.d' 2>/dev/null)

# ---- the os-brick encryptor (contrib/os-brick, docs/openstack.md) ---------------------------
PYTHONDIR ?= $(PREFIX)/lib/python3/dist-packages
install: install-os-brick
install-os-brick:
	install -d $(DESTDIR)$(PYTHONDIR)/keyscope_os_brick
	install -m 0644 contrib/os-brick/keyscope_os_brick/*.py $(DESTDIR)$(PYTHONDIR)/keyscope_os_brick/
.PHONY: install-os-brick
