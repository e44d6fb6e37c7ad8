# SPDX-License-Identifier: MIT
"""What runs first inside a new worker, interpreter or process.

The parent sends two messages on the link before the worker starts: the
setup (name, sys.path, where __main__ came from, the target's name) and
then the payload (args, kwargs, worker_data, and the target itself when it
travels by value), so that objects of classes from the parent's __main__
can be decoded once __main__ is in place.

An interpreter worker says when its target is about to run, or, for
mode="auto", that an import refused the subinterpreter before that: its
parent then starts a process worker with the same setup and payload.
"""

import sys

# This worker's link to its creator (pw.parent once set up).
_link = None


def interp_main():
    """Entry point of an interpreter-mode worker (called from C, then
    end(), once terminate() can no longer interrupt it)."""
    from . import _core
    return _run(_core._take_link(), interpreter=True)


def process_main():
    """Entry point of a process-mode worker (python -c ... <spec>).

    It ends as multiprocessing's fork and forkserver children do: once its
    non-daemon threads and atexit callbacks are done and its output is
    flushed, the process exits without tearing the interpreter down (which
    takes milliseconds, and in a child of the template faults in every page
    it shares with it); objects still alive then are not finalized."""
    from . import _core
    try:
        code = _run(_core._child_link(sys.argv[-1]), interpreter=False)
    finally:
        end(False)
    import atexit
    import threading
    threading._shutdown()
    atexit._run_exitfuncs()
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except Exception:
            pass
    _core._exit_process(code)


def end(terminated):
    """After the target: end this worker's own pools and workers (at once
    when it was terminated), then the stream to its creator."""
    from . import _worker
    try:
        _worker.shutdown_all(0 if terminated else _worker.EXIT_GRACE)
    finally:
        if _link is not None:
            _link.close()
        _forget_dummy_thread()


def _forget_dummy_thread():
    """An interpreter worker runs on a thread threading did not start: if
    the target asked for threading.current_thread(), threading (3.13) made
    a dummy record, dropped through a thread-local when the thread state
    goes, after threading's globals are gone ("Exception ignored in
    _DeleteDummyThreadOnDel.__del__"). Drop it now."""
    info = getattr(sys.modules.get("threading"), "_thread_local_info", None)
    if info is not None and hasattr(info, "_track_dummy_thread_ref"):
        del info._track_dummy_thread_ref


def _forget_worker_data(pw):
    pw.worker_data = None


def _exit_code(code):
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _install_main(main):
    """Make the parent's __main__ importable here, loaded on first use."""
    if not main:
        return
    import types

    lazy = types.ModuleType("__mp_main__")
    lazy.__pyshm_origin__ = main

    failed, loading = [], []

    def load(name):
        if (name.startswith("__") and name.endswith("__")) or loading:
            raise AttributeError(name)
        if failed:
            # The main script failed to load (an import refused this
            # interpreter...): every later use fails the same way.
            raise ImportError(f"the main script could not be loaded in this worker: "
                              f"{failed[0]}") from failed[0]
        loading.append(True)
        try:
            if "module" in main:
                import importlib
                real = importlib.import_module(main["module"])
                names = {k: v for k, v in real.__dict__.items() if k != "__name__"}
            else:
                import runpy
                names = runpy.run_path(main["path"], run_name="__mp_main__")
        except BaseException as e:
            failed.append(e)
            raise
        finally:
            loading.clear()
        del lazy.__getattr__
        lazy.__dict__.update(names)
        return getattr(lazy, name)

    lazy.__getattr__ = load
    sys.modules["__mp_main__"] = lazy
    sys.modules["__main__"] = lazy


def _refresh_environ(env):
    """os.environ as the creator sees it now (the process environment is
    shared, but an interpreter's os.environ is a snapshot of its start)."""
    import os
    data = os.environ._data
    data.clear()
    data.update((os.environ.encodekey(k), os.environ.encodevalue(v)) for k, v in env.items())


def _patch_interpreter():
    """Interpreter mode only: time.sleep() that terminate() interrupts
    (signals cannot reach a subinterpreter's thread), and os._exit() that
    ends this worker rather than the whole process. Before the target's
    module is imported, so that it finds these."""
    import os
    import posix
    import time
    from . import _core
    time.sleep = _core._sleep
    os._exit = posix._exit = _core._exit


class _AsyncioWithoutSSL:
    """CPython 3.12 aborts at exit ("free(): invalid pointer") once an
    own-GIL subinterpreter has imported _asyncio or ssl, which asyncio
    does. asyncio works without either: its pure-Python futures and tasks,
    no TLS. So the first import of asyncio in a 3.12 worker interpreter
    runs with both out of reach (a later `import ssl` of the worker's own
    still reaches the CPython bug)."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != "asyncio":
            return None
        sys.meta_path.remove(cls)
        import importlib.util
        spec = importlib.util.find_spec(name)
        exec_module = spec.loader.exec_module

        def exec_without_ssl(module):
            hidden = [m for m in ("_asyncio", "ssl") if m not in sys.modules]
            for m in hidden:
                sys.modules[m] = None
            try:
                exec_module(module)
            finally:
                for m in hidden:
                    if sys.modules.get(m, 0) is None:
                        del sys.modules[m]

        spec.loader.exec_module = exec_without_ssl
        return spec


class _ImportInMainFirst:
    """CPython 3.12.0-3.12.3 (gh-119213, fixed in 3.12.4): the first call
    with keyword arguments of a C function of an extension module builds a
    tuple in the calling interpreter and keeps it for the whole process; made
    in a worker, it outlives the worker and the program aborts at exit
    ("free(): invalid pointer"). hashlib and ssl make such calls as they are
    imported (and hmac, secrets, smtplib... import them): the main
    interpreter imports them first, so that its tuples are the ones kept."""

    names = {"hashlib", "_hashlib", "ssl", "_ssl"}

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name in cls.names:
            from . import _core
            cls.names.discard(name)
            _core._import_in_main(name)
        return None


def error_details(exc):
    """What a parent learns about an exception raised in a worker."""
    import traceback
    t = type(exc)
    name = t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
    return {
        "type": name,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(t, exc, exc.__traceback__)),
        "exception": exc,
    }


def _report(port, exc):
    from . import _core
    _core._target_failed(exc)
    details = error_details(exc)
    try:
        _core._post_error(port, details)
    except Exception:
        # The exception itself could not be cloned: send its description.
        details["exception"] = None
        try:
            _core._post_error(port, details)
        except Exception:
            pass


def _run(port, interpreter):
    global _link
    import pyshm_workers as pw
    from . import _worker

    _link = port
    setup = port.recv()
    try:
        # The thread's name, "pw:<name>": a process worker's is the
        # process's (python -m pyshm_workers stats, ps, top -H).
        _core_module()._set_worker_name(setup["name"])
    except OSError:
        pass
    sys.path[:] = setup["sys_path"]
    if setup.get("environ") is not None:
        _refresh_environ(setup["environ"])
    _install_main(setup["main"])
    if interpreter:
        _patch_interpreter()
        if sys.version_info[:2] == (3, 12) and "asyncio" not in sys.modules:
            sys.meta_path.insert(0, _AsyncioWithoutSSL)
        if (3, 12) <= sys.version_info[:3] < (3, 12, 4):
            sys.meta_path.insert(0, _ImportInMainFirst)
    pw.parent = port
    if interpreter:
        import atexit
        # pw.worker_data outlived the interpreter (Py_EndInterpreter()
        # left it in this package's globals), and with it the regions of
        # the shared objects it held: drop it once the worker's threads
        # are done (atexit runs after they are joined).
        atexit.register(_forget_worker_data, pw)
    _worker._in_worker = True
    _worker._in_subinterpreter = interpreter
    _worker._worker_name = setup["name"]
    code = 1
    started = False
    try:
        args, kwargs, pw.worker_data, target = port.recv()
        if target is None:
            target = _worker.resolve_target(setup["target"])
        if interpreter:
            _core_module()._started(_STARTED_TARGET)
        started = True
        target(*args, **kwargs)
        code = 0
    except SystemExit as e:
        code = _exit_code(e.code)
    except BaseException as e:
        module = _worker.refused_module(e) if interpreter else None
        if module is not None and not started and setup.get("auto"):
            # The parent starts a process worker in this one's place.
            _core_module()._started(_STARTED_REFUSED)
            return 1
        if module is not None:
            e = _worker.explain_refusal(e, module)
        _report(port, e)
        code = 1
    return code


# What an interpreter worker says before its target runs (worker.h).
_STARTED_TARGET, _STARTED_REFUSED = 1, 2


def _core_module():
    from . import _core
    return _core
