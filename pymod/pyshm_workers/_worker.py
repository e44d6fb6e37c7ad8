# SPDX-License-Identifier: MIT
"""Worker: a function running in an own-GIL subinterpreter or a process,
talking to its creator through structured-clone messages."""

import atexit
import itertools
import os
import sys
import types
import weakref

from . import _core, _resources

_in_worker = False
_in_subinterpreter = False      # an interpreter-mode worker
_worker_name = None
_counter = itertools.count(1)
# Workers created by this interpreter that may still run; the handles of
# those whose Worker object was dropped while they ran (they run on, and are
# ended at exit like the others; their channel goes as they end); pools
# (ended first).
_live = weakref.WeakSet()
_orphans = {}       # handle -> name
_pools = weakref.WeakSet()
_unrefd = set()     # handles of dropped workers that were unref()'d

# The parent knows its main script under the name workers load it by, as
# multiprocessing does: classes, functions and exceptions a worker's
# __mp_main__ sends back are found here (a worker replaces both names with
# its stand-in for the parent's __main__, _bootstrap._install_main()).
if "__main__" in sys.modules:
    sys.modules.setdefault("__mp_main__", sys.modules["__main__"])

MODES = ("auto", "interpreter", "process")
# Joining at interpreter exit: how long the workers, all together, may take
# to finish after their pw.parent reached the end of the stream, before
# those still running are terminated; and how long those may take to end
# after terminate(). An interpreter worker blocked in a C call (a lock,
# select()) cannot be interrupted.
EXIT_GRACE = 2.0
TERMINATE_WAIT = 5.0


def resolve_mode(mode):
    """"interpreter" or "process" for a mode argument; ValueError when it
    is none of MODES or cannot be had here."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if mode == "auto":
        return "interpreter" if sys.version_info >= (3, 12) else "process"
    if mode == "interpreter" and sys.version_info < (3, 12):
        raise ValueError("mode='interpreter' needs Python 3.12 or later "
                         "(own-GIL subinterpreters); use mode='process'")
    return mode


# logging.DEBUG, logging.INFO: logging is imported only by programs that use it.
DEBUG, INFO = 10, 20
_logger = None


def log(level, msg, *args):
    """Log to the "pyshm_workers" logger (stdlib logging), which has a
    NullHandler: silent unless the program configures logging. Nothing
    happens while logging is not imported (nobody can listen then), so a
    worker's start does not pay for importing it."""
    global _logger
    logging = sys.modules.get("logging")
    if logging is None:
        return
    if _logger is None:
        # Another thread may be importing logging right now: a module
        # being imported is in sys.modules before it is complete.
        if getattr(getattr(logging, "__spec__", None), "_initializing", False):
            return
        logger = logging.getLogger("pyshm_workers")
        if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(logging.NullHandler())
        _logger = logger
    if _logger.isEnabledFor(level):
        _logger.log(level, msg, *args)


def in_worker():
    """True inside a worker, False in the program's main interpreter."""
    return _in_worker


def helper_thread(target, name, *args):
    """A started thread serving a Worker or a pool. Daemon in the main
    interpreter (its workers end at exit, after non-daemon threads are
    joined); a worker interpreter refuses daemon threads, and there they end
    with the workers shutdown_all() stops as the target returns."""
    import threading
    t = threading.Thread(target=target, args=args, name=name, daemon=not _in_worker)
    t.start()
    return t


class _Unraisable:
    """What sys.unraisablehook takes: an exception no caller can catch."""

    def __init__(self, exc, err_msg):
        self.exc_type, self.exc_value = type(exc), exc
        self.exc_traceback = exc.__traceback__
        self.err_msg = err_msg
        self.object = None


class TargetError(_core.DataCloneError, ValueError):
    """A bad worker target: a "module:function" that does not resolve, or
    a function the worker can import neither by name nor (without
    cloudpickle) by value. A DataCloneError and a ValueError; one that did
    not resolve is an ImportError or AttributeError too, as its cause."""


TargetError.__module__ = "pyshm_workers"


class _TargetImportError(TargetError, ImportError):
    pass


class _TargetAttributeError(TargetError, AttributeError):
    pass


def _main_module_of(modname):
    return modname in ("__main__", "__mp_main__")


def target_spec(target):
    """What a worker gets to find its target: ((module, qualname), None)
    when it imports it by name, else (None, obj), obj sent by value in the
    payload. Raises here, before anything starts, for a target that does not
    resolve or cannot be sent."""
    from . import _byvalue
    if isinstance(target, str):
        module, sep, qualname = target.partition(":")
        if not sep or not module or not qualname:
            raise ValueError(f"target {target!r} is not of the form 'package.module:function'")
        try:
            found = resolve_target((module, qualname))
        except ImportError as e:
            err = _TargetImportError(f"target {target!r} does not resolve: {e}")
            err.name = module
            raise err from e
        except AttributeError as e:
            raise _TargetAttributeError(f"target {target!r} does not resolve: {e}") from e
        if not callable(found):
            raise TargetError(f"target {target!r} is a {type(found).__name__}, not a callable")
        if not _main_module_of(module) or _main_origin() is not None:
            return (module, qualname), None
        target = found      # a main script workers cannot load: by value
    if not callable(target):
        raise TypeError(f"target must be callable or 'module:function', not {type(target).__name__}")
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None)
    if (isinstance(module, str) and isinstance(qualname, str)
            and _byvalue._by_name_reaches(target, module)):
        return (module, qualname), None
    if isinstance(target, (types.FunctionType, type)) and not _byvalue.available():
        raise TargetError(f"target {target!r} cannot be imported by name in a worker "
                          f"(not a module-level function of an importable module); "
                          f"{_byvalue.INSTALL_HINT}, or make it a module-level function")
    # Bound methods, functools.partial and other callables clone as any
    # object; the payload's clone says what cannot go.
    return None, target


def name_the_path(exc, names):
    """A DataCloneError about a message pyshm made of the caller's
    objects (a tuple of them): its " at obj[i]..." names the caller's own
    object instead (" at args[1]", " at kwargs['k']"). names[i] is the
    name of item i, or None to leave it alone."""
    msg = exc.args[0] if isinstance(exc, _core.DataCloneError) and exc.args else None
    if not isinstance(msg, str):
        return exc
    at = msg.rfind(" at obj[")
    if at < 0:
        return exc
    end = msg.find("]", at)
    index = msg[at + 8:end]
    if end < 0 or not index.isdigit() or int(index) >= len(names) or not names[int(index)]:
        return exc
    exc.args = (f"{msg[:at]} at {names[int(index)]}{msg[end + 1:]}",) + exc.args[1:]
    return exc


def resolve_target(spec):
    import importlib
    module, qualname = spec
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


_REFUSAL = "does not support loading in subinterpreters"


def refused_module(exc):
    """The module named by CPython's "module X does not support loading
    in subinterpreters" ImportError, anywhere in exc's chain (numpy wraps it
    in "Importing the numpy C-extensions failed"), else None."""
    seen = set()
    while isinstance(exc, BaseException) and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ImportError):
            text = str(exc)
            at = text.find(_REFUSAL)
            if at >= 0:
                words = text[:at].split()
                return words[-1] if words else "a module"
        exc = exc.__cause__ or exc.__context__
    return None


def explain_refusal(exc, module):
    """The ImportError an interpreter-mode worker reports when module
    refused to load there; exc is its cause."""
    err = ImportError(f"{module} does not support loading in subinterpreters, so it "
                      f"cannot be imported in an interpreter-mode worker; use "
                      f"mode='process' (or mode='auto', which starts a process worker "
                      f"when this happens before the target runs)", name=module)
    err.__cause__ = exc
    return err


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


def _python_argv(module, function):
    """A Python with this one's flags, running module.function() of this
    package."""
    import subprocess   # here: it costs a worker milliseconds to import
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (f"import sys; sys.path.insert(0, {package_dir!r}); "
            f"from pyshm_workers import {module}; {module}.{function}()")
    return [sys.executable, *subprocess._args_from_interpreter_flags(), "-c", code]


def _process_argv():
    return _python_argv("_bootstrap", "process_main")


def _template_argv():
    """The process template's argv (pymod/worker_template.c), or None when
    PYSHM_PROCESS_START=spawn asks for a fresh Python per worker."""
    start = os.environ.get("PYSHM_PROCESS_START", "template")
    if start == "spawn":
        return None
    if start != "template":
        raise ValueError(f"PYSHM_PROCESS_START={start}: expected 'template' or 'spawn'")
    return _python_argv("_template", "main")


class Worker:
    """Run target(*args, **kwargs) in a new worker.

    mode "interpreter" (Python 3.12+: an own-GIL subinterpreter on its own
    thread), "process" (a new Python process), or "auto": interpreter where
    supported, and a process worker instead when, before the target runs,
    an import refuses the subinterpreter (numpy, faulthandler...). A target
    is a module-level function or "module:function" (resolved here), or any
    other function, sent by value through cloudpickle. Arguments and
    worker_data are structured-cloned, so an unclonable one raises
    DataCloneError here, before anything starts. max_inflight_bytes bounds
    what large messages (each over 64 KiB) may hold in flight in each
    direction (default 64 MiB, or the environment's
    PYSHM_MAX_INFLIGHT_BYTES): past it post_message() waits, as on a full
    channel. resource_limits ({"max_memory_bytes": n, "max_cpu_seconds":
    s}, process mode; "auto" picks it) ends the worker with a WorkerError
    naming the limit it exceeded.
    """

    _unref = False

    def __init__(self, target, args=(), kwargs=None, *, mode="auto", name=None,
                 worker_data=None, max_inflight_bytes=None, resource_limits=None):
        limits = _resources.check_limits(resource_limits, mode)
        if limits is not None and mode == "auto":
            mode = "process"            # limits are process mode's
        auto = mode == "auto"
        mode = resolve_mode(mode)
        self._limits = limits
        if kwargs is None:
            kwargs = {}
        if not isinstance(kwargs, dict):
            raise TypeError(f"kwargs must be a dict, not {type(kwargs).__name__}")
        spec, by_value = target_spec(target)
        self._mode = mode
        self._name = str(name) if name is not None else f"Worker-{next(_counter)}"
        self._owner = os.getpid()   # a fork child's copy is not its own
        self._on_message = self._on_error = None
        self._dispatcher = None
        self._events = None         # what came while its callback was unset
        self._handle = None
        self._port = None
        self._ended_logged = False
        # "auto" in an interpreter: what a process worker would need, until
        # the worker says its target runs (_settle()).
        self._retry = None
        setup = {
            "name": self._name,
            "sys_path": [p for p in sys.path if isinstance(p, str)],
            "main": _main_origin(),
            "target": spec,
            "auto": auto and mode == "interpreter",
        }
        payload = (tuple(args), kwargs, worker_data, by_value)
        self._start(mode, setup, payload, max_inflight_bytes)
        if setup["auto"]:
            import threading
            self._retry = (setup, payload, max_inflight_bytes)
            self._settle_lock = threading.Lock()
        for handle in [h for h in _orphans if not h.alive]:
            del _orphans[handle]
        _live.add(self)

    def _start(self, mode, setup, payload, max_inflight_bytes):
        port, theirs = _core._link_channel(mode == "process", max_inflight_bytes)
        # An interpreter may have been made ahead of time (a spare): it
        # gets the environment of now.
        setup["environ"] = dict(os.environ) if mode == "interpreter" else None
        try:
            port.post_message(setup)
            try:
                port.post_message(payload)
            except _core.DataCloneError as e:
                raise name_the_path(e, ("args", "kwargs", "worker_data", "target"))
            if mode == "interpreter":
                handle = _core._start_interpreter(theirs, port, setup["sys_path"])
            else:
                handle = _core._spawn_process(theirs, port, _process_argv(), self._limits,
                                                _template_argv())
        except BaseException:
            theirs.close()
            port.close()
            raise
        self._port, self._handle, self._mode = port, handle, mode
        log(DEBUG, "worker %r started (%s mode%s)", self._name, mode,
            f", pid {handle.pid}" if handle.pid is not None else "")

    def _settle(self, timeout=None):
        """An "auto" worker in an interpreter: wait until it says whether
        its target runs there, and if an import refused the subinterpreter,
        start a process worker in its place with the same setup and
        arguments. False when timeout seconds passed first."""
        if self._retry is None:
            return True
        said = self._handle._wait_started(timeout)
        if said == 0:
            return False
        with self._settle_lock:
            if self._retry is None:
                return True         # another thread did it
            setup, payload, max_inflight_bytes = self._retry
            if said == 2:
                # The worker ends by itself, having read nothing else.
                old_port, old_handle = self._port, self._handle
                old_handle.join()
                old_port.close()
                log(INFO, "worker %r: an import refused the subinterpreter before the "
                    "target ran; starting it again in process mode", self._name)
                self._start("process", dict(setup, auto=False), payload, max_inflight_bytes)
            self._retry = None
        return True

    # -- messages -----------------------------------------------------------

    def post_message(self, message, transfer=(), *, timeout=None):
        """Send a structured clone of message to the worker. In mode "auto",
        the first post waits until the worker has imported its target (so
        that the message reaches the worker that runs it)."""
        self._settle()
        self._port.post_message(message, transfer, timeout=timeout)

    def recv(self, timeout=None):
        """The worker's next message. TimeoutError after timeout seconds;
        WorkerError if the worker failed; EOFError once it has exited and
        every message it sent was read."""
        if self._retry is not None:
            import time
            t0 = time.monotonic()
            if not self._settle(timeout):
                raise TimeoutError("recv() timed out")
            if timeout is not None:
                timeout = max(0.0, timeout - (time.monotonic() - t0))
        return self._port.recv(timeout)

    async def arecv(self):
        """recv() for asyncio: waits on a file descriptor the event loop
        watches."""
        if self._retry is not None:
            import asyncio
            while not self._settle(0):
                await asyncio.sleep(0.002)
        return await self._port.arecv()

    def __iter__(self):
        """The worker's messages, until it has exited and every one was
        read (recv() until EOFError)."""
        self._settle()
        return iter(self._port)

    # -- event style --------------------------------------------------------

    def _dispatch(self):
        from . import WorkerError
        while True:
            try:
                event = ("on_message", self.recv())
            except (EOFError, ValueError):
                return
            except WorkerError as err:
                event = ("on_error", err)
            # Held while calling too, so that events are delivered in order
            # whether from here or by _flush_events().
            with self._events_lock:
                callback = getattr(self, "_" + event[0])
                if callback is None or self._events:
                    # Kept, in order, until that callback is set.
                    self._events.append(event)
                else:
                    self._call(callback, event)

    def _call(self, callback, event):
        try:
            callback(event[1])
        except Exception as exc:
            # Reported as an exception in a thread is; dispatching goes on.
            sys.unraisablehook(_Unraisable(exc, f"Exception in {self._name}.{event[0]}"))

    def _flush_events(self):
        """Deliver what was kept, in order, up to the first event whose
        callback is still unset."""
        with self._events_lock:
            while self._events:
                callback = getattr(self, "_" + self._events[0][0])
                if callback is None:
                    return
                self._call(callback, self._events.popleft())

    def _set_callback(self, attr, fn):
        if fn is not None and not callable(fn):
            raise TypeError(f"{attr} must be callable or None")
        setattr(self, "_" + attr, fn)
        if fn is None:
            return
        if self._dispatcher is None:
            import collections
            import threading
            self._events = collections.deque()
            self._events_lock = threading.RLock()   # a callback may set one
            self._dispatcher = helper_thread(self._dispatch, f"{self._name}-events")
        else:
            self._flush_events()

    on_message = property(lambda self: self._on_message,
                          lambda self, fn: self._set_callback("on_message", fn),
                          doc="Called with each message, from a dispatcher thread. "
                              "Messages that come while it is None wait for it.")
    on_error = property(lambda self: self._on_error,
                        lambda self, fn: self._set_callback("on_error", fn),
                        doc="Called with the WorkerError if the worker fails "
                            "(held back until set, like messages).")

    # -- lifecycle ----------------------------------------------------------

    def terminate(self):
        """Stop the worker: SystemExit at its next bytecode (interpreter
        mode; time.sleep() and blocking pyshm calls are interrupted too),
        and a second later a trace function that no handler can swallow;
        or SIGTERM then SIGKILL after a second (process mode)."""
        if self._retry is not None:
            with self._settle_lock:
                self._retry = None      # no process worker after this
        self._handle.terminate()

    def join(self, timeout=None):
        """Wait until the worker has exited, or timeout seconds.
        WorkerError (once) if a resource limit ended it."""
        if self._retry is not None:
            import time
            t0 = time.monotonic()
            if not self._settle(timeout):
                return
            if timeout is not None:
                timeout = max(0.0, timeout - (time.monotonic() - t0))
        if self._handle.join(timeout):
            self._log_end()
        _core._check_limits(self._handle)

    def _log_end(self):
        if not self._ended_logged:
            self._ended_logged = True
            code = self._handle.exit_code
            log(DEBUG if code == 0 else INFO, "worker %r ended, exit code %s", self._name, code)

    def is_alive(self):
        """True until the worker has exited: its target returned or raised,
        it called sys.exit(), or it was terminated."""
        if not self._settle(0):
            return True             # still starting
        return self._handle.alive

    @property
    def exit_code(self):
        """None while running; 0 after a normal return, 1 if the target
        raised, the sys.exit() code, the process status (negative: killed
        by that signal), or -15 after terminate() in interpreter mode."""
        if not self._settle(0):
            return None
        return self._handle.exit_code

    def ref(self):
        """Undo unref(): the worker is waited for at exit again."""
        self._unref = False

    def unref(self):
        """The worker no longer keeps the program alive: at exit it is
        terminated at once rather than given the grace period to finish."""
        self._unref = True

    def resource_usage(self):
        """{"cpu_seconds": float, "max_rss_bytes": int | None}: the CPU
        time the worker used so far (its own thread's in interpreter mode)
        and its process's peak resident memory (None in interpreter mode,
        where the memory is the whole process's)."""
        return _core._resource_usage(self._handle)

    @property
    def name(self):
        """The name given to Worker(), else "Worker-N"."""
        return self._name

    @property
    def mode(self):
        """"interpreter" or "process": for mode="auto", "process" once the
        worker was started again as a process (waits for that answer)."""
        self._settle()
        return self._mode

    @property
    def pid(self):
        """The worker's process id (process mode), else None."""
        self._settle()
        return self._handle.pid

    def __del__(self):
        if getattr(self, "_retry", None) is not None and self._owner == os.getpid():
            try:
                # A process worker may be due; bounded, as __del__ can run
                # anywhere (an import that never ends would hang it).
                self._settle(TERMINATE_WAIT)
            except Exception:
                pass
        handle = getattr(self, "_handle", None)
        if handle is not None and self._owner == os.getpid() and handle.alive:
            # The handle keeps the channel open and lets go of it as the
            # worker ends.
            handle._orphan(self._port)
            _orphans[handle] = self._name
            if self._unref:
                _unrefd.difference_update([h for h in _unrefd if not h.alive])
                _unrefd.add(handle)

    def __enter__(self):
        """The worker itself; leaving the block ends its input and joins
        it, or terminates it first when the block raised."""
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.terminate()
        else:
            self._settle()
            self._port._close_send()
        self._handle.join()
        self._log_end()

    def __repr__(self):
        # <Worker 'Worker-3' mode='process' pid=123 running>
        handle = self._handle
        if handle is None:
            return f"<Worker {self._name!r} mode={self._mode!r} not started>"
        if self._retry is not None:
            return f"<Worker {self._name!r} mode='auto' starting>"
        pid = f" pid={handle.pid}" if handle.pid is not None else ""
        state = "running" if handle.alive else f"exited exit_code={handle.exit_code}"
        if self._unref:
            state += " unref'd"
        return f"<Worker {self._name!r} mode={self._mode!r}{pid} {state}>"


def shutdown_all(grace=EXIT_GRACE):
    """End every pool and worker this interpreter started (at exit, and at
    the end of a worker that started workers of its own): all reach the end
    of their input at once and share one grace period, then those still
    running are terminated together. Returns a line for each worker that
    would not stop: its name and why."""
    import time
    for pool in list(_pools):
        try:
            pool.shutdown(wait=False, cancel_futures=True)
        except Exception:
            pass
    for w in list(_live):
        try:
            w._settle()
        except Exception:
            pass
    names = {w._handle: w._name for w in list(_live)}
    names.update(_orphans)
    _orphans.clear()
    # Unref'd workers do not keep the program alive: ended at once.
    unrefd = {w._handle for w in list(_live) if w._unref} | (_unrefd & names.keys())
    _unrefd.clear()
    for handle in unrefd:
        handle.terminate()
    for handle in names:
        handle._close_send()
    running = _join_all(names, time.monotonic() + grace)
    for handle in running:
        handle.terminate()
    stuck = _join_all(running, time.monotonic() + TERMINATE_WAIT)
    # Still known to the exit of the interpreter, should their Worker go.
    _orphans.update((h, names[h]) for h in stuck)
    return [f"{names[h]}: {h._stuck}" for h in stuck]


def _join_all(handles, deadline):
    """Join handles until deadline (time.monotonic()); those still alive."""
    import time
    return [h for h in handles if not h.join(max(0.0, deadline - time.monotonic()))]


def _at_exit():
    stuck = shutdown_all()
    if stuck and not _in_subinterpreter:
        # CPython cannot finalize while another interpreter runs (it would
        # abort), and nothing can interrupt a thread blocked in C: say so
        # and end the process rather than hang.
        sys.stdout.flush()
        sys.stderr.write(f"pyshm_workers: {len(stuck)} worker(s) did not stop after "
                         f"terminate(); ending the process with status 1\n")
        for line in stuck:
            sys.stderr.write(f"  {line}\n")
        sys.stderr.flush()
        os._exit(1)
    stop = getattr(_core, "_spare_stop", None)
    if stop is not None:
        # The interpreter made ahead for the next worker, by the exit of
        # the process's main interpreter (a process worker's too: CPython
        # 3.12 aborts finalizing with it alive, "remaining subinterpreters",
        # and 3.13 corrupts memory ending it from the main thread).
        stop(True)


def _fork_refusal(what):
    """The RuntimeError for a fork while interpreter workers run, else None.
    CPython clears every other interpreter in the child of fork(), without
    a thread state, before any Python code runs there: the child aborts or
    hangs (3.12 and 3.13 alike). Only the spare can be ended for it."""
    _core._spare_stop(False)
    n = _core._fork_blockers()
    if not n:
        return None
    return RuntimeError(
        f"{what} refused: {n} interpreter-mode worker(s) of pyshm_workers run in this "
        "process, and CPython's fork child would crash or hang clearing their "
        "interpreters; end them first (join() or terminate()), use mode='process', "
        "or start processes with subprocess or multiprocessing's 'spawn' or "
        "'forkserver' method")


def _guard_fork(module, name):
    """Make module.name (os.fork, os.forkpty) refuse to fork while
    interpreter workers run, before anything is forked."""
    import functools
    real = getattr(module, name, None)
    if real is None or getattr(real, "_pyshm_guarded", False):
        return

    @functools.wraps(real)
    def guarded(*args, **kwargs):
        err = _fork_refusal(f"{module.__name__}.{name}()")
        if err is not None:
            raise err
        return real(*args, **kwargs)

    guarded._pyshm_guarded = True
    setattr(module, name, guarded)


def _before_fork():
    # A fork that bypassed the guard (a function taken before it was set, a
    # subprocess preexec_fn, C code): it cannot be stopped from here, but
    # the reason the child dies is printed.
    err = _fork_refusal("fork()")
    if err is not None:
        raise err


def _after_fork_in_child():
    """The workers and pools are the parent's: the child must neither end
    them at its exit nor close their channels, which live in memory both
    processes share. Their ports (and a process worker's pw.parent) read as
    closed here."""
    for w in list(_live):
        _core._abandon_port(w._port)
    _live.clear()
    _orphans.clear()
    _pools.clear()
    from . import _bootstrap
    if _bootstrap._link is not None:
        _core._abandon_port(_bootstrap._link)


atexit.register(_at_exit)
if hasattr(_core, "_fork_blockers"):
    import posix
    for _module in (os, posix):
        for _name in ("fork", "forkpty"):
            _guard_fork(_module, _name)
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
else:
    os.register_at_fork(after_in_child=_after_fork_in_child)
