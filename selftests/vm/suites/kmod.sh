#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vm-check suite "kmod": the module's kselftests, $B/selftests/kmod/*, each a
# TAP run with its own Totals line.
rc=0
for t in "$B"/selftests/kmod/*; do
	[ -f "$t" ] && [ -x "$t" ] || continue
	echo "# $(basename "$t")"
	"$t" || rc=1
done
exit $rc
