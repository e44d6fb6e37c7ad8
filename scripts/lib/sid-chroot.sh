# SPDX-License-Identifier: GPL-2.0
# Sourced by scripts/chroot.sh (Python 3.14/3.15) and scripts/kernel-chroot.sh
# (the newest kernel): a Debian sid chroot built once per machine outside the
# clone, and commands run in it. The caller sets:
#   NAME       its name, for messages
#   PKGS       what the chroot holds (with RECIPE and SUITE, the cache key)
#   SUITE RECIPE CACHE
#   INCLUDE    debootstrap's --include (or empty)
#   INSTALL_ENV  extra VAR=value for the package install
#   STAMP      the file in /etc that says how it was built
#   USAGE_END  the last line of the caller's usage comment
#
# A build happens in a temporary folder renamed into place only when
# complete, so an interrupted build is never used (the next build removes
# what it left); building with another package list removes the old chroot.
# Everything mounted for the chroot (/proc, /sys, /dev, a /tmp, the bound
# folders) is mounted in a private mount namespace (unshare -m) that ends
# with the command: nothing stays mounted on the host, even when the command
# is killed, so removing a chroot folder can never reach the host's /dev.
# Runs see the chroot itself read-only, and so never change the cache.

die() {
	echo "$NAME: $*" >&2
	exit 1
}

key() {
	printf '%s\n' "$RECIPE" "$SUITE" $PKGS | sha256sum | cut -c1-16
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
	[ -d "$root" ] && return

	mkdir -p "$CACHE"
	exec 8>>"$CACHE/.lock"
	flock 8
	if [ -d "$root" ]; then
		exec 8>&-
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
	echo "$NAME: building the $SUITE chroot in $root from $m (log: $log)" >&2
	: >"$log"
	mkdir -p "$tmp"
	# debootstrap mounts /proc and /sys in the new root itself: keep those
	# mounts in a namespace of their own too.
	if ! unshare -m --propagation private \
		debootstrap --variant=minbase ${INCLUDE:+--include=$INCLUDE} \
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
		export DEBIAN_FRONTEND=noninteractive $INSTALL_ENV
		apt-get update -qq
		apt-get install -y -qq "$@"
		apt-get clean
		rm -rf /var/lib/apt/lists/*
	' sh $PKGS >>"$log" 2>&1 </dev/null; then
		tail -n 20 "$log" >&2
		remove_tree "$tmp"
		die "installing the packages failed"
	fi
	{
		echo "key: $(key)"
		echo "built: $(date -u +%FT%TZ) from $m in $(($(date +%s) - t0)) s"
		echo "packages: $(echo $PKGS)"
	} >"$tmp/etc/$STAMP"
	mv -T "$tmp" "$root"
	echo "$NAME: built $root in $(($(date +%s) - t0)) s" >&2
	# Chroots of other package lists are not used any more.
	for old in "$CACHE"/"$SUITE"-*; do
		[ "$old" = "$root" ] || remove_tree "$old"
	done
	exec 8>&-
}

# sid_chroot_main CMD [ARG...]: the commands both scripts take.
sid_chroot_main() {
	local cmd=${1:-} binds wd d root
	[ $# -gt 0 ] && shift
	case $cmd in
	path)
		root_dir
		;;
	build)
		build
		root_dir
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
		# Runs share the lock a build takes alone: no chroot is built or
		# removed under a run. They see it read-only.
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
		sed -n "3,${USAGE_END}s/^# \\{0,1\\}//p" "$0" >&2
		exit 2
		;;
	esac
}
