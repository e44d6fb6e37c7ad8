#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# install-deps.sh [GROUP...]: install the Debian packages pyshm needs, by
# group, so that a target gets only what it uses (the top Makefile picks the
# groups from its goals; no GROUP means all of them):
#
#   demo   build the library and the extension, run the examples
#   kmod   build pyshm.ko against Debian's kernel headers
#   test   the host test suites: the kselftest harness (from linux-source),
#          sanitizers, valgrind, numpy, pip and venv, mypy, debootstrap (the
#          Python 3.14/3.15 chroot of scripts/chroot.sh)
#   vm     boot guests: the kernel images, headers and sources (Debian 12's
#          6.1 and 6.12; the newest comes in scripts/kernel-chroot.sh's
#          chroot, made with debootstrap), QEMU, a debug kernel, dkms
#   none   nothing
#
# Idempotent and quiet: it only calls apt-get when a package is missing.
set -eu

group_pkgs() {
	case $1 in
	demo) echo "gcc make libc6-dev pkgconf liburing-dev python3-dev" ;;
	kmod) echo "linux-headers-amd64 kmod" ;;
	test) echo "linux-source xz-utils python3-numpy clang libclang-rt-14-dev valgrind
		python3-venv python3-pip python3-setuptools python3-wheel mypy debootstrap" ;;
	vm) echo "linux-image-amd64 linux-source kmod cpio gzip xz-utils
		bc bison flex libelf-dev qemu-system-x86 busybox-static
		linux-image-6.12-amd64 linux-headers-6.12-amd64 linux-source-6.12
		zstd debootstrap dkms" ;;
	none) ;;
	*) echo "install-deps: unknown group '$1' (demo kmod test vm none)" >&2; exit 2 ;;
	esac
}

[ $# -gt 0 ] || set -- demo kmod test vm
PKGS=
for g in "$@"; do
	PKGS="$PKGS $(group_pkgs "$g")" || exit 2
done

missing=
for p in $PKGS; do
	case " $missing " in *" $p "*) continue ;; esac
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: need root to install:$missing" >&2
	exit 1
fi
echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# The guest boots vmlinux with its own initramfs; skip Debian's initrd build.
export INITRD=No
log=$(mktemp)
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing; } >"$log" 2>&1; then
	cat "$log" >&2
	rm -f "$log"
	exit 1
fi
rm -f "$log"
