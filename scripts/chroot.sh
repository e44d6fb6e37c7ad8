#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# chroot.sh: a Debian unstable (sid) chroot with Python 3.14 and 3.15, built
# once per machine and kept outside the clone, so `make check` can build and
# test pyshm on the Pythons users run now.
#
#   chroot.sh build                 build the chroot unless cached; print its folder
#   chroot.sh path                  print the folder it is (or would be) in
#   chroot.sh run [-b DIR]... [-r DIR]... [-w DIR] [--] CMD [ARG...]
#                                   run CMD in it (building it first if needed),
#                                   with each -b DIR bound read-write and each
#                                   -r DIR read-only at its own path, in the
#                                   folder -w DIR (default /)
#
# The chroot lives in $PYSHM_CHROOT_CACHE (default /var/cache/pyshm/chroot)
# under a name keyed by a hash of what it installs: changing CHROOT_PKGS
# builds a new one (about two minutes, 800 MB) and removes the old. A build
# happens in a temporary folder renamed into place only when complete, so an
# interrupted build is never used (the next build removes what it left).
#
# Everything mounted for the chroot (/proc, /sys, /dev, a /tmp, the DIRs) is
# mounted in a private mount namespace (unshare -m) that ends with the
# command: nothing stays mounted on the host, even when the command is
# killed, so removing a chroot folder can never reach the host's /dev. Runs
# see the chroot itself read-only, and so never change the cache.
set -euo pipefail

# What the chroot holds. Changing this list (or RECIPE, for a change in how
# it is built) makes a new chroot.
CHROOT_PKGS="ca-certificates gcc make libc6-dev pkgconf liburing-dev
python3.14-dev python3.15-dev python3.14-venv python3.15-venv
python3-numpy python3-cloudpickle python3-distributed python3-dask
python3-pytest python3-setuptools python3-pip"
SUITE=sid
RECIPE=1

CACHE=${PYSHM_CHROOT_CACHE:-/var/cache/pyshm/chroot}

die() {
	echo "chroot.sh: $*" >&2
	exit 1
}

key() {
	printf '%s\n' "$RECIPE" "$SUITE" $CHROOT_PKGS | sha256sum | cut -c1-16
}

root_dir() {
	echo "$CACHE/$SUITE-$(key)"
}

# The Debian mirror the host's apt already uses (not security, not another
# vendor's repository), unless PYSHM_CHROOT_MIRROR says otherwise.
mirror() {
	if [ -n "${PYSHM_CHROOT_MIRROR:-}" ]; then
		echo "$PYSHM_CHROOT_MIRROR"
		return
	fi
	local f uri
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' "$f" |
			grep -E '/debian/?$' | head -n1) || true
		[ -n "$uri" ] && { echo "${uri%/}"; return; }
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' "$f" |
			grep -E '/debian/?$' | head -n1) || true
		[ -n "$uri" ] && { echo "${uri%/}"; return; }
	done
	die "no Debian mirror in the host's apt sources (set PYSHM_CHROOT_MIRROR)"
}

# Refuse to remove a folder that has anything mounted inside it in our
# mount namespace (a bound /dev would take the host's device nodes with it).
remove_tree() {
	local dir=$1
	[ -e "$dir" ] || return 0
	if awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { found = 1 } END { exit !found }' \
		/proc/self/mountinfo; then
		die "not removing $dir: something is mounted in it"
	fi
	rm -rf --one-file-system "$dir"
}

# in_root ROOT ro|rw WORKDIR BINDS CMD...: run CMD chrooted in ROOT, in
# WORKDIR, in a private mount namespace with /proc, /sys, /dev, a fresh /tmp
# and the folders in BINDS (lines "PATH ro|rw") bound at their own paths.
in_root() {
	local root=$1 mode=$2 wd=$3 binds=$4
	shift 4
	unshare -m --propagation private /bin/sh -euc '
		root=$1 mode=$2 wd=$3 binds=$4
		shift 4
		mount --bind "$root" "$root"
		for d in proc sys dev; do mount --rbind "/$d" "$root/$d"; done
		mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
		# Parents before the folders inside them ("/a ro" sorts before "/a/b rw").
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
	[ -d "$root" ] && { echo "$root"; return; }

	mkdir -p "$CACHE"
	exec 8>>"$CACHE/.lock"
	flock 8
	if [ -d "$root" ]; then
		exec 8>&-
		echo "$root"
		return
	fi
	# What interrupted builds left.
	local old
	for old in "$CACHE"/.tmp-*; do
		[ -e "$old" ] && remove_tree "$old"
	done

	local tmp m t0 log
	tmp=$CACHE/.tmp-$SUITE-$(key)-$$
	m=$(mirror)
	t0=$(date +%s)
	log=$CACHE/build.log
	echo "chroot.sh: building the $SUITE chroot in $root from $m (log: $log)" >&2
	: >"$log"
	mkdir -p "$tmp"
	# debootstrap mounts /proc and /sys in the new root itself: keep those
	# mounts in a namespace of their own too.
	if ! unshare -m --propagation private \
		debootstrap --variant=minbase --include=ca-certificates \
		"$SUITE" "$tmp" "$m" >>"$log" 2>&1; then
		tail -n 20 "$log" >&2
		remove_tree "$tmp"
		die "debootstrap failed"
	fi
	# The Debian registry's unstable suite is a snapshot whose Release file
	# may have expired: apt must not refuse it for that.
	printf '%s\n' 'Acquire::Check-Valid-Until "false";' \
		'APT::Install-Recommends "false";' 'Dpkg::Use-Pty "false";' \
		>"$tmp/etc/apt/apt.conf.d/99pyshm"
	cp /etc/resolv.conf "$tmp/etc/resolv.conf" 2>/dev/null || true
	if ! in_root "$tmp" rw / "" /bin/sh -ec '
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq "$@"
		apt-get clean
		rm -rf /var/lib/apt/lists/*
	' sh $CHROOT_PKGS >>"$log" 2>&1 </dev/null; then
		tail -n 20 "$log" >&2
		remove_tree "$tmp"
		die "installing the packages failed"
	fi
	{
		echo "key: $(key)"
		echo "built: $(date -u +%FT%TZ) from $m in $(($(date +%s) - t0)) s"
		echo "packages: $(echo $CHROOT_PKGS)"
	} >"$tmp/etc/pyshm-chroot"
	mv -T "$tmp" "$root"
	echo "chroot.sh: built $root in $(($(date +%s) - t0)) s" >&2
	# Chroots of other package lists are not used any more.
	for old in "$CACHE"/"$SUITE"-*; do
		[ "$old" = "$root" ] || remove_tree "$old"
	done
	exec 8>&-
	echo "$root"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
path)
	root_dir
	;;
build)
	build >/dev/null
	root_dir
	;;
run)
	binds='' wd=/
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
	# Runs share the lock a build takes alone: no chroot is built or
	# removed under a run. They see it read-only.
	mkdir -p "$CACHE"
	exec 9>>"$CACHE/.lock"
	root=$(root_dir)
	flock -s 9
	if [ ! -d "$root" ]; then
		flock -u 9
		build >/dev/null
		flock -s 9
		[ -d "$root" ] || die "$root went away"
	fi
	in_root "$root" ro "$wd" "$binds" "$@" 9>&-
	;;
*)
	sed -n '3,13s/^# \{0,1\}//p' "$0" >&2
	exit 2
	;;
esac
