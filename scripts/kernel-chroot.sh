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
# Same recipe as scripts/chroot.sh (the Python one; separate, so neither
# list of packages rebuilds the other): debootstrap --variant=minbase of sid
# from the host's Debian mirror, in a temporary folder renamed into place when
# complete, under $PYSHM_KERNEL_CHROOT_CACHE (default
# /var/cache/pyshm/kernel-chroot) with a name keyed by a hash of what it
# installs. Every mount is made in a private mount namespace (unshare -m)
# that ends with the command, so nothing stays mounted on the host and
# removing a chroot folder can never reach the host's /dev. Runs see the
# chroot read-only.
set -euo pipefail

# The kernel packages pull in gcc-16 (for kbuild) and initramfs-tools (whose
# hook is skipped: INITRD=No); dkms for `make check-dkms`.
KCHROOT_PKGS="linux-image-amd64 linux-headers-amd64 make kmod dkms xz-utils"
SUITE=sid
RECIPE=1

CACHE=${PYSHM_KERNEL_CHROOT_CACHE:-/var/cache/pyshm/kernel-chroot}

die() {
	echo "kernel-chroot.sh: $*" >&2
	exit 1
}

key() {
	printf '%s\n' "$RECIPE" "$SUITE" $KCHROOT_PKGS | sha256sum | cut -c1-16
}

root_dir() {
	echo "$CACHE/$SUITE-$(key)"
}

# The Debian mirror of the host's apt sources, unless PYSHM_CHROOT_MIRROR
# says otherwise (not security, not another vendor's repository).
mirror() {
	if [ -n "${PYSHM_CHROOT_MIRROR:-}" ]; then
		echo "$PYSHM_CHROOT_MIRROR"
		return
	fi
	local uri
	uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
		awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' |
		grep -E '/debian/?$' | head -n1) || true
	[ -n "$uri" ] || uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' |
		grep -E '/debian/?$' | head -n1) || true
	[ -n "$uri" ] || die "no Debian mirror in the host's apt sources (set PYSHM_CHROOT_MIRROR)"
	echo "${uri%/}"
}

# Never remove a folder with anything mounted inside it (in our namespace).
remove_tree() {
	local dir=$1
	[ -e "$dir" ] || return 0
	if awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { found = 1 } END { exit !found }' \
		/proc/self/mountinfo; then
		die "not removing $dir: something is mounted in it"
	fi
	rm -rf --one-file-system "$dir"
}

# in_root ROOT ro|rw WORKDIR BINDS CMD...: CMD chrooted in ROOT, in a private
# mount namespace with /proc, /sys, /dev, a fresh /tmp and BINDS (lines
# "PATH ro|rw") at their own paths.
in_root() {
	local root=$1 mode=$2 wd=$3 binds=$4
	shift 4
	unshare -m --propagation private /bin/sh -euc '
		root=$1 mode=$2 wd=$3 binds=$4
		shift 4
		mount --bind "$root" "$root"
		for d in proc sys dev; do mount --rbind "/$d" "$root/$d"; done
		mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
		echo "$binds" | sort | while read -r d m; do
			[ -n "$d" ] || continue
			mkdir -p "$root$d"
			mount --bind "$d" "$root$d"
			if [ "$m" = ro ]; then mount -o remount,bind,ro "$root$d"; fi
		done
		if [ "$mode" = ro ]; then mount -o remount,bind,ro "$root"; fi
		exec chroot "$root" /usr/bin/env -i \
			PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" \
			/bin/sh -c '"'"'cd "$0" && exec "$@"'"'"' "$wd" "$@"
	' sh "$root" "$mode" "$wd" "$binds" "$@"
}

build() {
	local root
	root=$(root_dir)
	[ -d "$root" ] && return
	mkdir -p "$CACHE"
	exec 8>>"$CACHE/.lock"
	flock 8
	if [ -d "$root" ]; then
		exec 8>&-
		return
	fi
	local old
	for old in "$CACHE"/.tmp-*; do
		[ -e "$old" ] && remove_tree "$old"
	done

	local tmp=$CACHE/.tmp-$SUITE-$(key)-$$ m t0 log
	m=$(mirror)
	t0=$(date +%s)
	log=$CACHE/build.log
	echo "kernel-chroot.sh: building the $SUITE kernel chroot in $root from $m (log: $log)" >&2
	: >"$log"
	mkdir -p "$tmp"
	if ! unshare -m --propagation private \
		debootstrap --variant=minbase "$SUITE" "$tmp" "$m" >>"$log" 2>&1; then
		tail -n 20 "$log" >&2
		remove_tree "$tmp"
		die "debootstrap failed"
	fi
	# The registry's unstable suite is a snapshot whose Release file may
	# have expired.
	printf '%s\n' 'Acquire::Check-Valid-Until "false";' \
		'APT::Install-Recommends "false";' 'Dpkg::Use-Pty "false";' \
		>"$tmp/etc/apt/apt.conf.d/99pyshm"
	cp /etc/resolv.conf "$tmp/etc/resolv.conf" 2>/dev/null || true
	if ! in_root "$tmp" rw / "" /bin/sh -ec '
		export DEBIAN_FRONTEND=noninteractive INITRD=No
		apt-get update -qq
		apt-get install -y -qq "$@"
		apt-get clean
		rm -rf /var/lib/apt/lists/*
	' sh $KCHROOT_PKGS >>"$log" 2>&1 </dev/null; then
		tail -n 20 "$log" >&2
		remove_tree "$tmp"
		die "installing the packages failed"
	fi
	{
		echo "key: $(key)"
		echo "built: $(date -u +%FT%TZ) from $m in $(($(date +%s) - t0)) s"
		echo "packages: $(echo $KCHROOT_PKGS)"
	} >"$tmp/etc/pyshm-kernel-chroot"
	mv -T "$tmp" "$root"
	echo "kernel-chroot.sh: built $root in $(($(date +%s) - t0)) s" >&2
	for old in "$CACHE"/"$SUITE"-*; do
		[ "$old" = "$root" ] || remove_tree "$old"
	done
	exec 8>&-
}

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

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
path)
	root_dir
	;;
build)
	build
	root_dir
	;;
kver)
	build
	kver
	;;
run)
	binds= wd=/
	while [ $# -gt 0 ]; do
		case $1 in
		-b | -r | -w)
			[ $# -ge 2 ] || die "$1 needs a folder"
			d=$(realpath -e "$2") || die "no folder $2"
			case $d in *[[:space:]]*) die "cannot bind a path with spaces: $d" ;; esac
			case $1 in
			-b) binds+="$d rw"$'\n' ;;
			-r) binds+="$d ro"$'\n' ;;
			-w) wd=$d ;;
			esac
			shift 2
			;;
		--)
			shift
			break
			;;
		*)
			break
			;;
		esac
	done
	[ $# -gt 0 ] || die "run: no command"
	# Runs share the lock a build takes alone: nothing is built or removed
	# under a run.
	mkdir -p "$CACHE"
	exec 9>>"$CACHE/.lock"
	root=$(root_dir)
	flock -s 9
	if [ ! -d "$root" ]; then
		flock -u 9
		build
		flock -s 9
		[ -d "$root" ] || die "$root went away"
	fi
	in_root "$root" ro "$wd" "$binds" "$@" 9>&-
	;;
*)
	sed -n '3,16s/^# \{0,1\}//p' "$0" >&2
	exit 2
	;;
esac
