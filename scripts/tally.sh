#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# tally.sh LOG...: sum the "# Totals:" lines of suite logs into the closing
# line "N passed, N failed, N skipped"; exit 1 when anything failed.
set -u
awk '
/^# Totals: / {
	for (i = 3; i <= NF; i++) {
		split($i, kv, ":")
		if (kv[1] == "pass" || kv[1] == "xfail") pass += kv[2]
		else if (kv[1] == "fail" || kv[1] == "error" || kv[1] == "xpass") fail += kv[2]
		else if (kv[1] == "skip") skip += kv[2]
	}
}
END {
	printf "%d passed, %d failed, %d skipped\n", pass, fail, skip
	exit fail > 0
}' "$@"
