# SPDX-License-Identifier: GPL-2.0
"""Worker targets of test_template: what a process worker sees of where it
came from."""

import os
import sys

import pyshm_workers as pw


def parent_pid(pid):
    """The parent of process pid, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def process_state(pid):
    """The state letter of process pid (Z: a zombie), None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


def is_template(pid):
    """Whether process pid is a process template (_worker._template_argv())."""
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return b"_template.main()" in f.read()


def origin(name=None):
    """Who started this worker and in what surroundings."""
    ppid = os.getppid()
    templated = is_template(ppid)
    pw.parent.post_message({
        "pid": os.getpid(),
        "ppid": ppid,
        "creator": parent_pid(ppid) if templated else ppid,
        "from_template": templated,
        "cwd": os.getcwd(),
        "env": os.environ.get(name) if name else None,
        "argv": sys.argv,
        "stdio": [os.path.exists(f"/proc/self/fd/{fd}") for fd in range(3)],
        "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
    })


def say(text):
    """text on stdout and stderr (through sys's files), then done."""
    print(text, flush=True)
    print(text, file=sys.stderr, flush=True)
    pw.parent.post_message("said")


def wait_then_exit(code):
    pw.parent.recv()
    sys.exit(code)
