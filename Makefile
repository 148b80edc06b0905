# SPDX-License-Identifier: GPL-2.0
#
# pvballoon top-level Makefile: a wrapper around kbuild.
#
#   make                      build for the running kernel
#   make KVER=<release>       build for another installed kernel
#   make KDIR=<build tree>    build against any kernel build tree
#   make W=1                  extra compiler warnings
#   make install              install the module (runs depmod) and the
#                             modprobe.d snippet
#   make dkms-src             copy what ships to /usr/src/pvballoon-<version>
#                             (DESTDIR= to stage it elsewhere), for dkms add
#   make check                the test suite in QEMU guests (CI; < 60 min cold)
#   make check-long           make check plus the long runs: parity and
#                             fragmentation comparisons on the debug kernel
#   make check-cold           make check with every cache ignored and one
#                             core kept busy: CI's worst case, timed
#   make check-loaded         make check with one core kept busy, timed
#   make check-rt-debug       the tests on a PREEMPT_RT debug kernel (lockdep,
#                             DEBUG_ATOMIC_SLEEP); builds it the first time
#   make check-arm64          the tests on Debian's arm64 kernel, cross-built
#                             and booted under qemu-system-aarch64 (TCG);
#                             make check only builds for arm64
#   make matrix               W=1 builds against every Debian kernel flavour
#                             the archive serves, amd64 and arm64 (chroots)
#   make demo                 boot a VM and show the balloon at work
#   make bench                pvballoon against the in-tree virtio_balloon
#   make deb                  dist/pvballoon-dkms_<version>_all.deb (dh-dkms)
#   make fuzz                 the control-write fuzzer for FUZZ_SECONDS (600)
#   make soak                 everything at once on the debug kernel for
#                             SOAK_SECONDS (1800); make check runs one phase
#
# The kbuild side lives in Kbuild, so the build still works when DKMS
# appends KERNELRELEASE= to the make command line.

KVER ?= $(shell uname -r)
KDIR ?= /lib/modules/$(KVER)/build
SRC := $(CURDIR)
CONFTEST := $(SRC)/generated/pvb_conftest.h
VERSION := $(shell sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' $(SRC)/dkms.conf)
# What ships: what DKMS (or make) needs to build and install the module on a
# user's machine.  Everything else here is the developers' (tests, bench,
# kernel builders).  make dkms-src and the Debian package copy only these.
# Sources only: a tree built in place holds objects for its own kernel,
# which must not reach /usr/src (DKMS builds for other kernels there).
SHIP := Makefile Kbuild dkms.conf $(wildcard $(SRC)/src/*.c) $(wildcard $(SRC)/include/*.h) \
	scripts/conftest.sh $(wildcard $(SRC)/scripts/probes/*.c) \
	scripts/pvballoon-modprobe.conf scripts/dkms-post-install scripts/dkms-post-remove
SHIP := $(patsubst $(SRC)/%,%,$(SHIP))

.PHONY: all modules conftest install clean check check-long check-cold check-loaded check-rt-debug check-arm64 matrix \
	demo bench deps deb dkms-src fuzz soak

all: modules

# The probes are cheap when nothing changed: conftest.sh keeps a key of the
# kernel tree and the probe sources in the generated header.
conftest:
	@$(SRC)/scripts/conftest.sh "$(KDIR)" "$(SRC)"

modules: conftest
	$(MAKE) -C "$(KDIR)" M="$(SRC)" modules

install: modules
	$(MAKE) -C "$(KDIR)" M="$(SRC)" INSTALL_MOD_DIR=updates modules_install
	install -D -m 0644 $(SRC)/scripts/pvballoon-modprobe.conf \
		$(DESTDIR)/etc/modprobe.d/pvballoon.conf
	depmod -a $(KVER)

dkms-src:
	rm -rf $(DESTDIR)/usr/src/pvballoon-$(VERSION)
	install -d $(DESTDIR)/usr/src/pvballoon-$(VERSION)
	cd $(SRC) && cp -a --parents $(SHIP) $(DESTDIR)/usr/src/pvballoon-$(VERSION)/

clean:
	-[ ! -d "$(KDIR)" ] || $(MAKE) -C "$(KDIR)" M="$(SRC)" clean
	rm -rf $(SRC)/generated $(SRC)/.conftest
	rm -f $(SRC)/src/*.o $(SRC)/src/.*.cmd $(SRC)/*.ko $(SRC)/*.mod* \
		$(SRC)/.*.cmd $(SRC)/Module.symvers $(SRC)/modules.order

deps:
	$(SRC)/scripts/install-deps

check:
	$(SRC)/tests/run

check-long:
	$(SRC)/tests/run --long

check-cold:
	$(SRC)/scripts/check-timed --cold --hog

check-loaded:
	$(SRC)/scripts/check-timed --hog

check-rt-debug:
	$(SRC)/tests/run -t debug-rt-6.12

# --long: stress (60 s) and the in-tree driver's runs of the virtio
# scenarios on arm64 too; trixie-arm64-mmio: the balloon on virtio-mmio.
check-arm64:
	$(SRC)/scripts/install-deps arm64
	$(SRC)/tests/run --no-deps --long -t trixie-arm64 -t trixie-arm64-mmio

matrix:
	$(SRC)/scripts/install-deps
	$(SRC)/scripts/matrix

demo:
	$(SRC)/scripts/demo

bench:
	$(SRC)/scripts/install-deps
	$(SRC)/scripts/bench

fuzz:
	$(SRC)/scripts/install-deps
	$(SRC)/tests/fuzz/run $(or $(FUZZ_SECONDS),600)

soak:
	PVB_SOAK_SECONDS=$(or $(SOAK_SECONDS),1800) $(SRC)/tests/run --long -t debug-6.12 -k soak

deb:
	$(SRC)/scripts/install-deps deb
	$(SRC)/scripts/make-deb
