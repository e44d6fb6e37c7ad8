#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# debug-selftest.sh: `make vm-check-debug-selftest`. Three boots of the debug
# kernel with the test-only pyshm.ko (kmod/selftest/bugs.c), each committing
# one deliberate bug; each must be reported by its detector and must fail the
# boot's verdict, exactly as a real bug would fail `make vm-check-debug`.
#
# Environment: what selftests/vm/boot.sh takes (TOP, O, VM_KERNEL, VM_KO,
# VM_CHECKS, ...), set by selftests/vm/debug.mk.
set -u
: "${TOP:?}" "${O:?}"
results=$O/debug-selftest
mkdir -p "$results"

n=0
nfail=0
echo "TAP version 13"
echo "1..3"
# bug, detector, the report's first line, and what else it must name (KASAN
# says "slab-use-after-free" since 6.4, "use-after-free" before)
for t in "leak|kmemleak|unreferenced object|bug_leak+" \
	"uaf|KASAN|use-after-free in bug_uaf|Freed by task" \
	"inversion|lockdep|possible circular locking dependency detected|&region->lock"; do
	IFS='|' read -r bug detector pattern detail <<<"$t"
	n=$((n + 1))
	name=vm-check-debug-selftest-$bug
	echo "# $bug: booting (about 30 s)"
	VM_NAME=$name VM_RESULTS=$results VM_SUITES=selftests/vm/debug-inject.sh \
		VM_APPEND="vm.inject=$bug" VM_TIMEOUT=300 VM_SUITE_TIMEOUT=120 \
		"$TOP"/selftests/vm/boot.sh >"$results/$name.out" 2>&1
	rc=$?
	serial=$O/vm/$name/serial.log
	verdict=$(tr -d '\r' <"$serial" | grep -a '^VERDICT: ' | tail -n 1)
	report=$(tr -d '\r' <"$serial" | grep -a -m 1 -F "$pattern")
	tr -d '\r' <"$serial" | grep -a -q -F "$detail" || report=
	injected=$(grep -a -c '^ok 1 inject_' "$results/$name-debug-inject.log")
	echo "#   verdict: ${verdict:-none (the guest panicked)}; boot.sh exit $rc"
	echo "#   report:  ${report:-none}"
	if [ "$injected" = 1 ] || [ "$bug" = uaf ]; then
		:
	else
		report=	# the bug never ran: the boot proves nothing
		echo "#   the bug was not injected: $(tail -n 3 "$results/$name-debug-inject.log" | tr '\n' ' ')"
	fi
	if [ -n "$report" ] && [ "$rc" != 0 ] && [ "$verdict" != "VERDICT: PASS" ]; then
		echo "ok $n ${bug}_is_caught_by_$detector"
	else
		echo "not ok $n ${bug}_is_caught_by_$detector (log: $serial)"
		nfail=$((nfail + 1))
	fi
done
echo "# Totals: pass:$((n - nfail)) fail:$nfail xfail:0 xpass:0 skip:0 error:0"
[ "$nfail" = 0 ]
