#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Guest side of `make vm-check`, run by selftests/vm/init as root inside a
# chroot of the host's (read-only) root, from the top of the source tree.
#
# 1. insmod pyshm.ko (vm.ko=, with the comma-separated vm.params=);
# 2. run each suite of vm.suites= (comma-separated scripts, relative to the
#    top) under `timeout`, between "@@VM@@ BEGIN/END <name>" lines the host
#    splits the serial log on; a suite prints TAP and "# Totals:" lines;
# 3. the kernel-side checks, as suite "vm": the debugfs listing is empty,
#    the scripts of vm.checks= pass, rmmod works, dmesg has no splat;
# 4. one line "VERDICT: PASS" or "VERDICT: FAIL (<checks>)".
#
# Suites see TOP, O, B (the userspace build folder) and KO in the
# environment; they run with /dev/pyshm present.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/tmp LC_ALL=C.UTF-8

TOP=$(pwd) O= B= KO= SUITES= CHECKS= PARAMS= SUITE_TIMEOUT=600
for x in $(cat /proc/cmdline); do
	case $x in
	vm.o=*) O=${x#*=} ;;
	vm.b=*) B=${x#*=} ;;
	vm.ko=*) KO=${x#*=} ;;
	vm.suites=*) SUITES=$(echo "${x#*=}" | tr , ' ') ;;
	vm.checks=*) CHECKS=$(echo "${x#*=}" | tr , ' ') ;;
	vm.params=*) PARAMS=$(echo "${x#*=}" | tr , ' ') ;;
	vm.suite_timeout=*) SUITE_TIMEOUT=${x#*=} ;;
	esac
done
export TOP O B KO

DEBUGFS=/sys/kernel/debug/pyshm
# Splats of the stock kernel, plus those of debug kernels (KASAN, UBSAN,
# lockdep), which do not all go through WARN().
SPLAT='WARNING:|BUG:|Oops|refcount_t:|general protection|KASAN:|UBSAN:|circular locking|possible recursive locking|sleeping function called|suspected memory leak'

n=0
failed=
report=
# check RESULT NAME: record one kernel-side check.
check() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		report="${report}ok $n $2
"
	else
		report="${report}not ok $n $2
"
		failed="$failed $2"
	fi
}

# Warnings and worse reach the serial log too, for the post-mortem of a panic.
dmesg -n 5 2>/dev/null
echo "guest: $(uname -r), $(nproc) cpus, $(awk '/MemTotal/ {print $2 " kB"}' /proc/meminfo)"

# Nonsense parameters are refused at load, with a message; the selftests
# try the rest through /sys/module/pyshm/parameters.
ok=0
# (Two: each insmod costs more than a second under TCG.)
for bad in max_region_size=1 max_domain_tokens=abc; do
	if insmod "$KO" $bad 2>/dev/null; then
		echo "# insmod pyshm.ko $bad: loaded"
		rmmod pyshm
		ok=1
	elif ! dmesg | grep -q "pyshm: ${bad%%=*}=.* refused"; then
		echo "# insmod pyshm.ko $bad: no message"
		ok=1
	fi
done
check $ok "insmod_refuses_nonsense_parameters"

insmod "$KO" $PARAMS
check $? "insmod_pyshm_ko"
[ -c /dev/pyshm ] && [ "$(stat -c %a /dev/pyshm)" = 666 ]
check $? "dev_pyshm_is_mode_0666"

for s in $SUITES; do
	name=$(basename "$s" .sh)
	echo "@@VM@@ BEGIN $name"
	timeout -k 10 "$SUITE_TIMEOUT" sh "$TOP/$s" </dev/null 2>&1
	rc=$?
	[ $rc = 124 ] && echo "not ok - suite $name timed out after ${SUITE_TIMEOUT}s"
	echo "@@VM@@ END $name rc=$rc"
done

echo "@@VM@@ BEGIN vm"
echo "TAP version 13"
# Region files of exited processes may be released by a worker shortly after.
ok=1
for i in 1 2 3 4 5 6 7 8 9 10; do
	[ -e $DEBUGFS/regions ] && [ ! -s $DEBUGFS/regions ] && { ok=0; break; }
	sleep 0.2
done
if [ $ok != 0 ]; then
	echo "# live regions (id size max holds maps pins writable sealed uid):"
	sed 's/^/#   /' $DEBUGFS/regions 2>/dev/null
fi
check $ok "debugfs_region_listing_is_empty"
sed 's/^/# stats: /' $DEBUGFS/stats 2>/dev/null

# Extra checks (a debug kernel's kmemleak scan, say): pass when they exit 0.
for c in $CHECKS; do
	timeout -k 10 "$SUITE_TIMEOUT" sh "$TOP/$c" >/tmp/check.out 2>&1
	rc=$?
	sed 's/^/# /' /tmp/check.out
	check $rc "check_$(basename "$c" .sh)"
done

# A region leaves the listing at once but lets go of the module one RCU
# grace period later: a busy module may be a moment from free.
for try in 1 2 3 4 5 6 7 8 9 10; do
	rmmod pyshm 2>/tmp/rmmod.err && break
	sleep 0.1
done
[ ! -d /sys/module/pyshm ]
rc=$?
[ $rc = 0 ] || sed 's/^/# /' /tmp/rmmod.err
check $rc "rmmod_pyshm"
[ ! -e /dev/pyshm ]
check $? "dev_pyshm_gone_after_rmmod"

# Last, so that it covers the unload too.
dmesg | grep -E "$SPLAT" >/tmp/splat
if [ -s /tmp/splat ]; then
	sed 's/^/# dmesg: /' /tmp/splat
	check 1 "dmesg_has_no_splat"
else
	check 0 "dmesg_has_no_splat"
fi

echo "1..$n"
printf '%s' "$report"
nfail=$(echo "$failed" | wc -w)
echo "# Totals: pass:$((n - nfail)) fail:$nfail xfail:0 xpass:0 skip:0 error:0"
echo "@@VM@@ END vm rc=$nfail"
if [ "$nfail" = 0 ]; then
	echo "VERDICT: PASS"
else
	dmesg | tail -n 40 | sed 's/^/# dmesg: /'
	echo "VERDICT: FAIL ($(echo $failed))"
fi
