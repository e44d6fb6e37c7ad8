#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# install.sh: `make install` into a DESTDIR, then a C program built with the
# flags `pkg-config --cflags --libs libpyshm` gives for that tree (through
# PKG_CONFIG_SYSROOT_DIR), linked with the shared and with the static
# library, and run; then `make uninstall`. TAP on stdout.
set -u
: "${TOP:?}" "${O:?}"
work=$O/install-test
root=$work/root
prefix=/usr/local
rm -rf "$work"
mkdir -p "$work"

n=0 pass=0 fail=0
out=$work/out
ok() { # NAME CMD...: one test
	local name=$1
	shift
	n=$((n + 1))
	if "$@" >"$out" 2>&1; then
		pass=$((pass + 1))
		echo "ok $n $name"
		grep -a '^# ' "$out"
	else
		fail=$((fail + 1))
		echo "not ok $n $name"
		tail -n 40 "$out" | sed 's/^/#   /'
	fi
}

pc() {
	PKG_CONFIG_PATH=$root$prefix/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$root pkg-config "$@" libpyshm
}

layout() {
	local lib=$root$prefix/lib inc=$root$prefix/include f
	for f in "$lib/libpyshm.a" "$lib/libpyshm.so.0" "$lib/pkgconfig/libpyshm.pc" \
		"$inc/linux/pyshm.h" "$TOP"/include/pyshm/*.h; do
		f=${f/#$TOP\/include/$inc}
		[ -f "$f" ] || { echo "missing $f"; return 1; }
	done
	[ "$(readlink "$lib/libpyshm.so")" = libpyshm.so.0 ] || { echo "libpyshm.so is not a link to libpyshm.so.0"; return 1; }
	objdump -p "$lib/libpyshm.so.0" | grep -q 'SONAME *libpyshm\.so\.0$' || { echo "no SONAME libpyshm.so.0"; return 1; }
	echo "# $(cd "$root" && find . -type f -o -type l | sort | tr '\n' ' ')"
}

version() {
	local want got
	want=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$TOP/pymod/pyshm_workers/_version.py")
	got=$(pc --modversion) || return 1
	echo "# pkg-config --modversion libpyshm: $got"
	[ "$got" = "$want" ] || { echo "want $want"; return 1; }
}

# runs [VAR=VALUE...] PROGRAM: it succeeds and says what pkgconfig.c says.
runs() {
	local got
	got=$(env "$@") || { echo "$got"; return 1; }
	echo "$got" | sed 's/^/# /'
	echo "$got" | grep -q '^hello from an installed libpyshm$'
}

# The C standard and warnings a strict user builds with: the public headers
# need no GNU extension.
CFLAGS="-std=c11 -Wall -Wextra -Wpedantic -Werror"

shared_program() {
	local flags
	flags=$(pc --cflags --libs) || return 1
	echo "# cc $CFLAGS pkgconfig.c $flags"
	cc $CFLAGS -o "$work/prog" "$TOP/selftests/install/pkgconfig.c" $flags || return 1
	objdump -p "$work/prog" | grep -q 'NEEDED *libpyshm\.so\.0$' || { echo "does not need libpyshm.so.0"; return 1; }
	runs LD_LIBRARY_PATH=$root$prefix/lib "$work/prog"
}

# --static adds Libs.private (liburing, pthread); -l:libpyshm.a picks the
# archive where -lpyshm would take the shared library.
static_program() {
	local flags
	flags=$(pc --cflags --libs --static) || return 1
	flags=${flags/-lpyshm/-l:libpyshm.a}
	echo "# cc $CFLAGS pkgconfig.c $flags"
	cc $CFLAGS -o "$work/prog-static" "$TOP/selftests/install/pkgconfig.c" $flags || return 1
	! objdump -p "$work/prog-static" | grep -q 'NEEDED *libpyshm' || { echo "needs libpyshm.so"; return 1; }
	runs "$work/prog-static"
}

uninstalled() {
	make --no-print-directory -C "$TOP" O="$O" uninstall DESTDIR="$root" PREFIX=$prefix || return 1
	local left
	left=$(find "$root" -type f -o -type l)
	[ -z "$left" ] || { echo "left: $left"; return 1; }
}

echo "1..6"
ok make_install_into_a_destdir make --no-print-directory -C "$TOP" O="$O" install \
	DESTDIR="$root" PREFIX=$prefix
ok the_files_are_where_they_belong layout
ok pkg_config_gives_the_version version
ok a_program_built_with_pkg_config_runs shared_program
ok a_static_program_built_with_pkg_config_static_runs static_program
ok make_uninstall_removes_it_all uninstalled
echo "# Totals: pass:$pass fail:$fail xfail:0 xpass:0 skip:0 error:0"
[ $fail = 0 ]
