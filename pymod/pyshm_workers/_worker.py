# SPDX-License-Identifier: MIT
"""Worker: a function running in an own-GIL subinterpreter or a process,
talking to its creator through structured-clone messages."""

import atexit
import itertools
import os
import sys
import weakref

from . import _core

_in_worker = False
_worker_name = None
_counter = itertools.count(1)
# Workers created by this interpreter that may still run.
_live = weakref.WeakSet()

MODES = ("auto", "interpreter", "process")
# Joining at interpreter exit: how long a worker may take to finish after
# its pw.parent reached the end of the stream, before it is terminated.
EXIT_GRACE = 2.0


def in_worker():
    """True inside a worker, False in the program's main interpreter."""
    return _in_worker


def target_spec(target):
    """(module, qualname) of a worker target, checked importable here."""
    if isinstance(target, str):
        module, sep, qualname = target.partition(":")
        if not sep or not module or not qualname:
            raise ValueError(f"target {target!r} is not of the form 'package.module:function'")
        return module, qualname
    if not callable(target):
        raise TypeError(f"target must be callable or 'module:function', not {type(target).__name__}")
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise ValueError(f"target {target!r} must be a module-level function "
                         "(the worker imports it by name)")
    try:
        found = resolve_target((module, qualname))
    except (ImportError, AttributeError):
        found = None
    if found is not target:
        raise ValueError(f"target {target!r} is not importable as {module}:{qualname}")
    return module, qualname


def resolve_target(spec):
    import importlib
    module, qualname = spec
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _main_origin():
    """Where this program's __main__ came from, for workers to load it."""
    main = sys.modules.get("__main__")
    origin = getattr(main, "__pyshm_origin__", None)
    if origin is not None:
        return origin     # a worker's stand-in for its parent's __main__
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name not in (None, "__main__"):
        return {"module": spec.name}
    path = getattr(main, "__file__", None)
    if path and os.path.exists(path):
        return {"path": os.path.abspath(path)}
    return None


def _process_argv():
    import subprocess   # here: it costs a worker milliseconds to import
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (f"import sys; sys.path.insert(0, {package_dir!r}); "
            "from pyshm_workers import _bootstrap; _bootstrap.process_main()")
    return [sys.executable, *subprocess._args_from_interpreter_flags(), "-c", code]


class Worker:
    """Run target(*args, **kwargs) in a new worker.

    mode "interpreter" (Python 3.12+: an own-GIL subinterpreter on its own
    thread), "process" (a new Python process), or "auto" (interpreter where
    supported). Arguments and worker_data are structured-cloned, so an
    unclonable one raises DataCloneError here, before anything starts.
    """

    def __init__(self, target, args=(), kwargs=None, *, mode="auto", name=None,
                 worker_data=None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if mode == "auto":
            mode = "interpreter" if sys.version_info >= (3, 12) else "process"
        elif mode == "interpreter" and sys.version_info < (3, 12):
            raise ValueError("mode='interpreter' needs Python 3.12 or later "
                             "(own-GIL subinterpreters); use mode='process'")
        if kwargs is None:
            kwargs = {}
        if not isinstance(kwargs, dict):
            raise TypeError(f"kwargs must be a dict, not {type(kwargs).__name__}")
        spec = target_spec(target)
        self._mode = mode
        self._name = str(name) if name is not None else f"Worker-{next(_counter)}"
        self._on_message = self._on_error = None
        self._dispatcher = None
        self._handle = None
        self._port, theirs = _core._link_channel(mode == "process")
        setup = {
            "name": self._name,
            "sys_path": [p for p in sys.path if isinstance(p, str)],
            "main": _main_origin(),
            "target": spec,
            # An interpreter may have been made ahead of time (a spare):
            # it gets the environment of now.
            "environ": dict(os.environ) if mode == "interpreter" else None,
        }
        try:
            self._port.post_message(setup)
            self._port.post_message((tuple(args), kwargs, worker_data))
            if mode == "interpreter":
                self._handle = _core._start_interpreter(theirs, self._port, setup["sys_path"])
            else:
                self._handle = _core._spawn_process(theirs, self._port, _process_argv())
        except BaseException:
            theirs.close()
            self._port.close()
            raise
        _live.add(self)

    # -- messages -----------------------------------------------------------

    def post_message(self, message, transfer=(), *, timeout=None):
        """Send a structured clone of message to the worker."""
        self._port.post_message(message, transfer, timeout=timeout)

    def recv(self, timeout=None):
        """The worker's next message. TimeoutError after timeout seconds;
        WorkerError if the worker failed; EOFError once it has exited and
        every message it sent was read."""
        return self._port.recv(timeout)

    async def arecv(self):
        """recv() for asyncio: waits on a file descriptor the event loop
        watches."""
        return await self._port.arecv()

    def __iter__(self):
        return iter(self._port)

    # -- event style --------------------------------------------------------

    def _dispatch(self):
        from . import WorkerError
        while True:
            try:
                msg = self._port.recv()
            except (EOFError, ValueError):
                return
            except WorkerError as err:
                if self._on_error is not None:
                    self._on_error(err)
                continue
            callback = self._on_message
            if callback is not None:
                callback(msg)

    def _set_callback(self, attr, fn):
        if fn is not None and not callable(fn):
            raise TypeError(f"{attr} must be callable or None")
        setattr(self, "_" + attr, fn)
        if fn is not None and self._dispatcher is None:
            import threading
            self._dispatcher = threading.Thread(
                target=self._dispatch, name=f"{self._name}-events", daemon=True)
            self._dispatcher.start()

    on_message = property(lambda self: self._on_message,
                          lambda self, fn: self._set_callback("on_message", fn),
                          doc="Called with each message, from a dispatcher thread.")
    on_error = property(lambda self: self._on_error,
                        lambda self, fn: self._set_callback("on_error", fn),
                        doc="Called with the WorkerError if the worker fails.")

    # -- lifecycle ----------------------------------------------------------

    def terminate(self):
        """Stop the worker: SystemExit at its next bytecode (interpreter
        mode; time.sleep() and blocking pyshm calls are interrupted too),
        or SIGTERM then SIGKILL after a grace period (process mode)."""
        self._handle.terminate()

    def join(self, timeout=None):
        """Wait until the worker has exited, or timeout seconds."""
        self._handle.join(timeout)

    def is_alive(self):
        return self._handle.alive

    @property
    def exit_code(self):
        """None while running; 0 after a normal return, 1 if the target
        raised, the sys.exit() code, the process status (negative: killed
        by that signal), or -15 after terminate() in interpreter mode."""
        return self._handle.exit_code

    @property
    def name(self):
        return self._name

    @property
    def mode(self):
        return self._mode

    @property
    def pid(self):
        """The worker's process id (process mode), else None."""
        return self._handle.pid

    def _finish(self, grace):
        """End the worker's input, give it grace seconds, then stop it."""
        self._port._close_send()
        self._handle.join(grace)
        if self._handle.alive:
            self._handle.terminate()
            self._handle.join()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self._handle.terminate()
        else:
            self._port._close_send()
        self._handle.join()

    def __repr__(self):
        state = "alive" if self.is_alive() else f"exit_code={self.exit_code}"
        return f"<Worker {self._name!r} {self._mode} {state}>"


def shutdown_all(grace=EXIT_GRACE):
    """End every worker this interpreter started (at exit, and at the end
    of a worker that started workers of its own)."""
    for w in list(_live):
        try:
            w._finish(grace)
        except Exception:
            pass


def _at_exit():
    shutdown_all()
    stop = getattr(_core, "_spare_stop", None)
    if stop is not None and not _in_worker:
        stop(True)      # the interpreter made ahead for the next worker


atexit.register(_at_exit)
if hasattr(_core, "_spare_stop"):
    # A subinterpreter alive in another thread can deadlock the child of
    # fork() (CPython clears it there); end the spare before forking.
    os.register_at_fork(before=lambda: _core._spare_stop(False))
