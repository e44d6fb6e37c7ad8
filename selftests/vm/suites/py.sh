#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vm-check suite "py": the Python tests again, with the kmod backend
# (regions from /dev/pyshm), on the newest Python the host built for.
tag=$(ls "$B/py" | grep '^3\.' | sort -V | tail -1)
py=/root/.pyenv/versions/$tag/bin/python3
[ -x "$py" ] || py=$(command -v python3)
# Python runs ~14x slower under TCG: give each test room.
PYSHM_BACKEND=kmod PYSHM_TEST_TIMEOUT=600 PYTHONPATH="$B/py/$tag" \
	exec "$py" "$TOP/selftests/py/run.py"
