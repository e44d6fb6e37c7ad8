# SPDX-License-Identifier: MIT
"""The process template (pymod/worker_template.c): a Python started once
per program, with pyshm_workers imported, that forks its process workers.

main() serves until its socket closes and its children have ended; in a
child it forked, it returns from _template_serve() with the worker's spec
and runs the worker as a spawned one would (_bootstrap.process_main()).
"""

import importlib   # noqa: F401
import pkgutil     # noqa: F401
import runpy       # noqa: F401 (what a worker imports to load __main__)
import signal
import sys

from . import _bootstrap, _core, _worker   # noqa: F401 (a worker's imports, made once)

_SOCKET = 3


def main():
    # Ctrl-C is for the program and its workers, not for the template.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    spec = _core._template_serve(_SOCKET)
    if spec is None:
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.argv[:] = ["-c", spec]
    _bootstrap.process_main()
