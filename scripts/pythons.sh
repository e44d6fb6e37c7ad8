#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# pythons.sh: print "TAG=PATH" for every Python >= 3.11 on this machine:
# pyenv's versions and Debian's /usr/bin/python3 (tag "debian-X.Y.Z").
for py in /root/.pyenv/versions/*/bin/python3 /usr/bin/python3; do
	[ -x "$py" ] || continue
	v=$("$py" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3]) if sys.version_info >= (3, 11) else None' 2>/dev/null) || continue
	[ -n "$v" ] || continue
	case $py in
	/usr/bin/*) echo "debian-$v=$py" ;;
	*) echo "$v=$py" ;;
	esac
done
