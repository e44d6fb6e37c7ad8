#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# dkms.sh SERIES...: `make check-dkms`. dkms.conf, used as a user would
# (Documentation/install.rst: Kbuild, dkms.conf, kmod/ and include/ copied
# into a source folder), builds and installs pyshm.ko for the kernel of each
# series, found by selftests/vm/kernels.sh: on the host for Debian 12's
# kernels, in the kernel chroot (its own dkms, kbuild and gcc-16) for the
# newest. The dkms tree, source tree and install tree are folders of
# $O/dkms, so nothing is written to /usr/src, /var/lib/dkms or /lib/modules.
# TAP, with one Totals line.
#
# Environment: TOP, O (required).
set -u
: "${TOP:?}" "${O:?}"
# dkms runs kbuild: a make above us must not leak its flags, jobserver or
# O= into it.
unset MAKEFLAGS MFLAGS MAKEOVERRIDES MAKELEVEL
export -n O TOP B CC CFLAGS 2>/dev/null

name=pyshm
ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$TOP/dkms.conf")
d=$O/dkms
rm -rf "$d"
mkdir -p "$d/src/$name-$ver" "$d/tree" "$d/install"
(cd "$TOP" && cp -r Kbuild dkms.conf kmod include "$d/src/$name-$ver/")

n=0
fail=0
# result RC NAME: one TAP line.
result() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n $2"
	else
		echo "not ok $n $2"
		fail=$((fail + 1))
	fi
}

echo "TAP version 13"
echo "1..$((2 * $#))"
for series in "$@"; do
	if ! vars=$(TOP=$TOP O=$O "$TOP/selftests/vm/kernels.sh" env "$series" 2>&1); then
		echo "# $series: $vars"
		result 1 "dkms_builds_for_$series"
		result 1 "dkms_installs_for_$series"
		continue
	fi
	eval "$vars"
	log=$d/$series.log
	echo "# $series: $KVER"
	# The same --installtree for build and install: newer dkms looks for
	# the headers there (hence --kernelsourcedir) and picks the module's
	# compression from what that tree already holds.
	mkdir -p "$d/install/$KVER"
	args=(-m "$name" -v "$ver" -k "$KVER" --dkmstree "$d/tree" --sourcetree "$d/src"
		--kernelsourcedir "$KDIR" --installtree "$d/install")
	t0=$(date +%s)
	# shellcheck disable=SC2086 # KRUN is a command prefix
	$KRUN dkms build "${args[@]}" >"$log" 2>&1
	rc=$?
	echo "# dkms build: $(($(date +%s) - t0)) s"
	[ $rc = 0 ] || sed 's/^/#   /' "$log"
	result $rc "dkms_builds_for_$series"

	# shellcheck disable=SC2086
	$KRUN dkms install "${args[@]}" --no-depmod >>"$log" 2>&1
	rc=$?
	ko=$(find "$d/install/$KVER" -name "$name.ko*" 2>/dev/null | head -n 1)
	if [ $rc = 0 ] && [ -n "$ko" ]; then
		vermagic=$(modinfo -F vermagic "$ko" 2>/dev/null)
		echo "# installed ${ko#"$d"/install/}: vermagic $vermagic"
		case $vermagic in "$KVER "*) ;; *) rc=1 ;; esac
	else
		[ $rc != 0 ] || rc=1
		sed 's/^/#   /' "$log"
	fi
	result $rc "dkms_installs_for_$series"
done
echo "# Totals: pass:$((n - fail)) fail:$fail xfail:0 xpass:0 skip:0 error:0"
[ $fail = 0 ]
