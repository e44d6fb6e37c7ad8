#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# suite.sh NAME CMD [ARG...]: run one test suite, show its output and keep it
# in $O/results/NAME.log for the closing tally. A suite reports itself with
# kselftest "# Totals:" lines; one that crashes or exits non-zero without
# reporting a failure gets a failing Totals line of its own.
set -u
name=$1
shift
mkdir -p "$O/results"
log=$O/results/$name.log
"$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
if ! grep -aq '^# Totals: ' "$log"; then
	echo "# Totals: pass:0 fail:1 xfail:0 xpass:0 skip:0 error:0" >>"$log"
	echo "not ok - $name: no totals reported (exit $rc)" | tee -a "$log"
elif [ "$rc" -ne 0 ] && ! grep -aqE '^# Totals: .*(fail|error):[1-9]' "$log"; then
	echo "# Totals: pass:0 fail:1 xfail:0 xpass:0 skip:0 error:0" >>"$log"
	echo "not ok - $name: exit status $rc" | tee -a "$log"
fi
exit "$rc"
