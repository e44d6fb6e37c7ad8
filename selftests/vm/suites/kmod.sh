#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vm-check suite "kmod": the module's kselftests, $B/selftests/kmod/*, each a
# TAP run with its own Totals line.
rc=0
for t in "$B"/selftests/kmod/*; do
	[ -f "$t" ] && [ -x "$t" ] || continue
	echo "# $(basename "$t")"
	t0=$(date +%s.%N)
	"$t" || rc=1
	echo "# $(basename "$t"): $(echo "$(date +%s.%N) - $t0" | bc) s"
done
exit $rc
