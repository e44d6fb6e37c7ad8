#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vm-check suite "py": the Python suites whose objects live in regions
# (SharedArrayBuffers, typed arrays, ArrayBuffers moved, out-of-line
# messages, payloads, shared synchronisation objects, futex and io_uring
# waits) again with the kmod backend (regions from /dev/pyshm), on the
# newest Python the host built for. The rest (clone, workers' lifecycle,
# pools, the CLI) does not depend on the backend and runs ~14x slower
# under TCG: check-py runs it on the host.
tag=$(ls "$B/py" | grep '^3\.' | sort -V | tail -1)
py=/root/.pyenv/versions/$tag/bin/python3
[ -x "$py" ] || py=$(command -v python3)
mods=
for m in test_sab test_atomics test_channel test_capi test_hostile_peer \
	 test_typed_arrays test_arraybuffer test_wait_async test_sync test_numpy; do
	[ -f "$TOP/selftests/py/$m.py" ] && mods="$mods $m"
done
# Give each test room.
PYSHM_BACKEND=kmod PYSHM_TEST_TIMEOUT=600 PYTHONPATH="$B/py/$tag" \
	exec "$py" "$TOP/selftests/py/run.py" $mods
