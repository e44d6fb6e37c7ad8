#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# run.sh DIR BACKEND: run every library test program in DIR with the region
# backend BACKEND, once per wakeup path (io_uring, futex). Each program
# prints TAP and its own "# Totals:" line. PYSHM_VALGRIND=1 runs them under
# valgrind's memcheck.
set -u
dir=$1
backend=$2
status=0
for t in "$dir"/*; do
	[ -x "$t" ] && [ -f "$t" ] || continue
	case $t in *.d) continue ;; esac
	wakes="uring futex"
	[ "${PYSHM_VALGRIND:-0}" = 1 ] && wakes=futex
	for wake in $wakes; do
		echo "# $(basename "$t") backend=$backend wake=$wake"
		if [ "${PYSHM_VALGRIND:-0}" = 1 ]; then
			PYSHM_BACKEND=$backend PYSHM_WAKE=$wake PYSHM_SPIN_NS=0 valgrind -q \
				--error-exitcode=99 --leak-check=full \
				--errors-for-leak-kinds=definite --trace-children=yes "$t" || status=1
		else
			PYSHM_BACKEND=$backend PYSHM_WAKE=$wake "$t" || status=1
		fi
	done
done
exit $status
