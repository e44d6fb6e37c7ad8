#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# kernels.sh env SERIES [KVER]: where the kernel of a series that
# `make vm-check` boots comes from, as shell assignments for the Makefile:
#
#   KVER=...     its release (the newest of the series, or KVER when given)
#   KDIR=...     its kbuild folder, as the build sees it
#   VM_ROOT=...  the root its /boot and /lib/modules are under
#   KRUN=...     the command prefix that runs its kbuild ("" on the host)
#
# A series with headers on the host (Debian 12's 6.1 and 6.12) is built and
# booted from the host. Any other is the newest kernel Debian ships, in the
# kernel chroot (scripts/kernel-chroot.sh, built on first use): its kbuild
# needs the compiler it was built with (gcc-16), which runs only there.
#
# Environment: TOP, O (required).
set -euo pipefail
: "${TOP:?}" "${O:?}"

die() {
	echo "kernels.sh: $*" >&2
	exit 1
}

[ "${1:-}" = env ] && [ $# -ge 2 ] || die "usage: kernels.sh env SERIES [KVER]"
series=$2
want=${3:-}

# match RELEASE: is it of the series (6.1 is not 6.12)?
match() {
	case $1 in "$series" | "$series".* | "$series"-* | "$series"+*) return 0 ;; esac
	return 1
}

kver=
for d in $(ls -d /lib/modules/*/build 2>/dev/null | sort -V -r); do
	k=$(basename "$(dirname "$d")")
	match "$k" || continue
	[ -z "$want" ] || [ "$k" = "$want" ] || continue
	kver=$k
	break
done
if [ -n "$kver" ]; then
	printf 'KVER=%q\nKDIR=%q\nVM_ROOT=/\nKRUN=\n' "$kver" "/lib/modules/$kver/build"
	exit 0
fi

chroot_sh=$TOP/scripts/kernel-chroot.sh
kver=$("$chroot_sh" kver) || die "no kernel chroot"
match "$kver" || die "no $series kernel on the host, and the kernel chroot has $kver (update VM_KERNELS)"
[ -z "$want" ] || [ "$kver" = "$want" ] || die "the kernel chroot has $kver, not $want"
mkdir -p "$O"
printf 'KVER=%q\nKDIR=%q\nVM_ROOT=%q\nKRUN=%q\n' "$kver" "/lib/modules/$kver/build" \
	"$("$chroot_sh" path)" "$chroot_sh run -r $TOP -b $O --"
