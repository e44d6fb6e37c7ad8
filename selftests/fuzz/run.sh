#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# run.sh DIR SECONDS: run each clone fuzzer in DIR for SECONDS, on its
# corpus (grown across runs) and fresh seeds from the encoder, then each
# hostile peer (ring_peer, py_peer.py) for SECONDS; print TAP and a
# "# Totals:" line. A crash, a sanitizer report or a timeout fails.
set -u
dir=$1
secs=$2
here=$(cd "$(dirname "$0")" && pwd)
targets="clone_walk clone_decode"
mkdir -p "$dir/artifacts"
"$FUZZ_PY" "$here/seeds.py" "$dir/seeds" || { echo "not ok - seeds"; exit 1; }

peers="ring_peer py_peer"
echo "1..$(echo $targets $peers | wc -w)"
n=0 pass=0 fail=0
for t in $targets; do
	n=$((n + 1))
	mkdir -p "$dir/corpus-$t"
	log=$dir/$t.log
	# Python's own allocations at exit are not leaks of ours.
	ASAN_OPTIONS=detect_leaks=$([ $t = clone_walk ] && echo 1 || echo 0):allocator_may_return_null=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		"$dir/$t" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 \
		-max_len=65536 -print_final_stats=1 \
		-artifact_prefix="$dir/artifacts/$t-" \
		"$dir/corpus-$t" "$dir/seeds" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
	if [ $rc -eq 0 ]; then
		pass=$((pass + 1))
		echo "ok $n $t: ${execs:-0} execs in ${secs}s, $cov, corpus $(ls "$dir/corpus-$t" | wc -l)"
	else
		fail=$((fail + 1))
		echo "not ok $n $t: exit $rc after ${execs:-?} execs (log: $log)"
		grep -aE 'ERROR|SUMMARY|clone_decode fuzzer|Test unit written' "$log" | sed 's/^/#   /' | head -20
	fi
done
for t in $peers; do
	n=$((n + 1))
	log=$dir/$t.log
	if [ $t = ring_peer ]; then
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
			timeout $((secs + 120)) "$dir/ring_peer" "$secs" >"$log" 2>&1
	else
		timeout $((secs + 120)) "$FUZZ_PY" "$here/py_peer.py" "$secs" >"$log" 2>&1
	fi
	rc=$?
	line=$(grep -a '^ok 1 \|^not ok 1 ' "$log" | tail -1)
	if [ $rc -eq 0 ] && [ "${line#ok}" != "$line" ]; then
		pass=$((pass + 1))
		echo "ok $n ${line#ok 1 }  ($(grep -a '^# seed' "$log"))"
	else
		fail=$((fail + 1))
		echo "not ok $n $t: exit $rc (log: $log)"
		grep -av '^# Totals' "$log" | tail -20 | sed 's/^/#   /'
	fi
done
echo "# Totals: pass:$pass fail:$fail xfail:0 xpass:0 skip:0 error:0"
[ $fail -eq 0 ]
