#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vm-check-debug's kmemleak check, run by guest.sh before rmmod (so module
# frames still have names): exit 1, with the report, on any leak.
#
# kmemleak ignores objects younger than 5 s, and a scan greys any object
# whose checksum changed since the previous scan: so sleep past the age,
# then scan twice (DEBUG-KERNEL-NOTES.md).
f=/sys/kernel/debug/kmemleak
if [ ! -w $f ]; then
	echo "no $f: not a kmemleak kernel"
	exit 1
fi
sleep 6
echo scan >$f && echo scan >$f || exit 1
cat $f >/tmp/kmemleak || exit 1
if [ -s /tmp/kmemleak ]; then
	echo "kmemleak: $(grep -c '^unreferenced object' /tmp/kmemleak) leaks:"
	cat /tmp/kmemleak
	exit 1
fi
echo "kmemleak: no leaks"
