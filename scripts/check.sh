#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# check.sh TARGET...: run every test suite target, keep going past failures,
# and end with the summed "N passed, N failed, N skipped" line.
set -u
cd "$TOP"
rm -rf "$O/results"
mkdir -p "$O/results"
status=0
start=$(date +%s)
for t in "$@"; do
	echo "=== make $t"
	t0=$(date +%s)
	if ! make --no-print-directory O="$O" "$t"; then
		status=1
		# A target that failed before any suite ran (a build error)
		# still counts as a failure.
		if ! ls "$O/results/$t"*.log >/dev/null 2>&1; then
			printf '# Totals: pass:0 fail:1 xfail:0 xpass:0 skip:0 error:0\n' \
				>"$O/results/$t.log"
		fi
	fi
	echo "=== make $t: $(($(date +%s) - t0)) s"
done
echo "=== make check: $(($(date +%s) - start)) s"
scripts/tally.sh "$O"/results/*.log || status=1
exit $status
