#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# kernel-chroot.sh: the newest kernel Debian ships (the unstable suite's
# linux-image-amd64 and linux-headers-amd64, 7.2 when written) in a sid
# chroot of its own, so pyshm.ko is built with that kernel's kbuild and
# compiler (gcc-16-for-host), tested by dkms there, and its vmlinuz and 9p
# modules boot in `make vm-check`. Built once per machine, outside the clone.
#
#   kernel-chroot.sh build          build it unless cached; print its folder
#   kernel-chroot.sh path           print the folder it is (or would be) in
#   kernel-chroot.sh kver           print the release of its kernel
#   kernel-chroot.sh run [-b DIR]... [-r DIR]... [-w DIR] [--] CMD [ARG...]
#                                   run CMD in it (building it first if
#                                   needed): each -b DIR bound read-write,
#                                   each -r DIR read-only, at its own path,
#                                   in the folder -w DIR (default /)
#
# Built and run as scripts/chroot.sh's (scripts/lib/sid-chroot.sh), in a
# chroot of its own so neither list of packages rebuilds the other: under
# $PYSHM_KERNEL_CHROOT_CACHE (default /var/cache/pyshm/kernel-chroot) with a
# name keyed by a hash of what it installs.
set -euo pipefail

# The kernel packages pull in gcc-16 (for kbuild) and initramfs-tools (whose
# hook is skipped: INITRD=No); dkms for `make check-dkms`.
PKGS="linux-image-amd64 linux-headers-amd64 make kmod dkms xz-utils"
SUITE=sid
RECIPE=1

CACHE=${PYSHM_KERNEL_CHROOT_CACHE:-/var/cache/pyshm/kernel-chroot}

NAME=kernel-chroot.sh
INCLUDE=
INSTALL_ENV=INITRD=No
STAMP=pyshm-kernel-chroot
USAGE_END=16

. "$(dirname "$0")/lib/sid-chroot.sh"

# The release of the kernel inside: the one with headers (build) and image.
kver() {
	local root d k
	root=$(root_dir)
	for d in $(ls -d "$root"/usr/lib/modules/*/build 2>/dev/null | sort -V -r); do
		k=$(basename "$(dirname "$d")")
		[ -r "$root/boot/vmlinuz-$k" ] && { echo "$k"; return; }
	done
	die "no kernel with headers in $root"
}

if [ "${1:-}" = kver ]; then
	build
	kver
else
	sid_chroot_main "$@"
fi
