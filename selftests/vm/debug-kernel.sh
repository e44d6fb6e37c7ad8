#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# debug-kernel.sh: build, or reuse, the kernel `make vm-check-debug` boots:
# Debian's linux-source with KASAN, lockdep, kmemleak, UBSAN and friends, as
# asked by selftests/vm/debug.config.
#
# The kernel is cached per machine, outside the clone (like the chroots of
# scripts/), in $PYSHM_DEBUG_KERNEL_CACHE (default
# /var/cache/pyshm/debug-kernel)/<key>/, the key being a hash of the
# linux-source package version, the compiler version, the config fragment and
# this script; $O/debug-kernel/current points at the one in use, and the two
# most recently used are kept. A cached kernel costs nothing, also to a clean
# clone; a new one 8-13 minutes on 2 cores (6.12). What is kept is small
# (about 80 MB): the bzImage, the build folder after `make clean` (.config,
# Module.symvers, the host tools: enough for `make -C build M=...`) and the
# part of the source tree external modules build against.
#
# Environment: TOP, O (required); DEBUG_KERNEL_SERIES (the linux-source-X
# package, default 6.12: the LTS users run, held to the strictest checks;
# debug.config is written for it); DEBUG_KERNEL_JOBS (make -j, default 2).
# Prints one line about what it did; on failure, the end of the build log.
set -u
shopt -s nullglob
: "${TOP:?}" "${O:?}"
frag=$TOP/selftests/vm/debug.config
jobs=${DEBUG_KERNEL_JOBS:-2}
root=${PYSHM_DEBUG_KERNEL_CACHE:-/var/cache/pyshm/debug-kernel}

die() {
	echo "debug-kernel: $*" >&2
	exit 1
}

series=${DEBUG_KERNEL_SERIES:-6.12}
tarball=/usr/src/linux-source-$series.tar.xz
[ -r "$tarball" ] || die "no $tarball (scripts/install-deps.sh)"
pkg=$(basename "$tarball" .tar.xz)
srcver=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null) || die "$pkg is not installed"
ccver=$(gcc --version | head -n 1)
key=$srcver-$({
	echo "$srcver"
	echo "$ccver"
	cat "$frag" "$0"
} | sha256sum | cut -c 1-12)
dir=$root/$key

mkdir -p "$root" "$O/debug-kernel"
# One build at a time; a second make waits and then finds it cached.
exec 9>"$root/.lock"
flock 9

# use: point $O/debug-kernel/current at it and mark it used (for eviction).
use() {
	touch "$dir/ok"
	ln -sfn "$dir" "$O/debug-kernel/current"
}

if [ -e "$dir/ok" ]; then
	use
	echo "debug-kernel: cached $key ($(cat "$dir/release"))"
	exit 0
fi

# Under the lock, a kernel without "ok" is an interrupted build: junk. Of
# the others, keep the most recently used (another clone may be at another
# revision) and make room for this one.
for d in "$root"/*/; do
	[ -e "$d/ok" ] || rm -rf "$d"
done
ls -dt "$root"/*/ok 2>/dev/null | tail -n +2 | while read -r ok; do
	rm -rf "$(dirname "$ok")"
done
mkdir -p "$dir"
log=$dir/build.log
t0=$(date +%s)
fail() {
	echo "debug-kernel: $* (log: $log)" >&2
	tail -n 40 "$log" >&2
	exit 1
}
# A make above us must not leak its flags, jobserver or O= into kbuild.
kmake() {
	env -u MAKEFLAGS -u MFLAGS -u MAKEOVERRIDES -u O -u CC -u CFLAGS \
		make -C "$dir/src" O="$dir/build" "$@" >>"$log" 2>&1
}

echo "debug-kernel: building $key ($pkg $srcver, $ccver); 8-13 minutes on 2 cores"
{
	echo "key: $key"
	echo "source: $pkg $srcver"
	echo "compiler: $ccver"
	echo "fragment: $(sha256sum <"$frag" | cut -c 1-12)"
} >"$dir/KEY"
mkdir -p "$dir/src" "$dir/build"
tar -xJf "$tarball" -C "$dir/src" --strip-components=1 >>"$log" 2>&1 ||
	fail "cannot extract $tarball"

# tinyconfig, then the fragment's lines through scripts/config, then
# olddefconfig to settle what they imply.
kmake tinyconfig || fail "make tinyconfig failed"
args=()
while read -r line; do
	case $line in
	CONFIG_*=y) opt=${line%%=*}; args+=(-e "${opt#CONFIG_}") ;;
	"# CONFIG_"*" is not set") opt=${line#\# CONFIG_}; args+=(-d "${opt%% *}") ;;
	"" | "#"*) ;;
	*) die "debug.config: cannot apply '$line' (only =y and 'is not set')" ;;
	esac
done <"$frag"
"$dir/src/scripts/config" --file "$dir/build/.config" "${args[@]}" >>"$log" 2>&1 ||
	fail "scripts/config failed"
kmake olddefconfig || fail "make olddefconfig failed"

# Kconfig silently drops what it can't satisfy: every line must have stuck.
bad=
while read -r line; do
	case $line in
	CONFIG_*=y)
		grep -qx "$line" "$dir/build/.config" || bad="$bad ${line%%=*}(wanted y)" ;;
	"# CONFIG_"*" is not set")
		opt=${line#\# }
		opt=${opt%% *}
		grep -q "^$opt=" "$dir/build/.config" && bad="$bad $opt(wanted n)" ;;
	esac
done <"$frag"
[ -z "$bad" ] || {
	rm -rf "$dir/src"
	die "these options of debug.config did not end up as asked:$bad (see $dir/build/.config)"
}

kmake -j"$jobs" all || fail "kernel build failed"
release=$(cat "$dir/build/include/config/kernel.release")
cp "$dir/build/arch/x86/boot/bzImage" "$dir/bzImage"

# Shrink: `make clean` keeps .config, Module.symvers and the host tools that
# external modules need; the source tree keeps only what their build reads.
kmake clean || fail "make clean failed"
keep=$dir/src.keep
mkdir -p "$keep/arch/x86"
for p in Makefile include scripts arch/x86/Makefile arch/x86/Makefile_32.cpu \
	arch/x86/include; do
	mv "$dir/src/$p" "$keep/$p" || fail "source tree has no $p"
done
rm -rf "$dir/src"
mv "$keep" "$dir/src"

echo "$release" >"$dir/release"
use
echo "debug-kernel: built $key ($release) in $(($(date +%s) - t0)) s, $(du -sh "$dir" | cut -f 1) kept"
