#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Install every Debian package pyshm needs to build, test and benchmark.
# Idempotent and quiet: it only calls apt-get when a package is missing.
set -eu

PKGS="gcc make libc6-dev pkgconf liburing-dev python3-dev python3-numpy
clang libclang-rt-14-dev valgrind kmod cpio gzip xz-utils
linux-headers-amd64 linux-image-amd64 linux-source
bc bison flex libelf-dev
qemu-system-x86 busybox-static"

missing=
for p in $PKGS; do
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
