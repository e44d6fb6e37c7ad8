# SPDX-License-Identifier: MIT
"""Functions (and classes of the main script) that travel by value.

The clone sends functions and classes by name: module and qualified name,
imported again on the other side. Some have no name the receiver can
import: lambdas, closures, nested and dynamically made functions, and what
a main script without a file defines (the REPL, ``python -c``, notebooks,
Dask's workers, which get the client's functions pickled by value). The
encoder (pymod/clone_encode.c) asks reduce() about those; it answers with a
pickle-protocol reduction through cloudpickle, or says what to install.
"""

import sys

INSTALL_HINT = ("install cloudpickle to send it by value "
                "(pip install cloudpickle, or pip install 'pyshm-workers[cloudpickle]')")


def _cloudpickle():
    try:
        import cloudpickle
    except ImportError:
        return None
    return cloudpickle


def available():
    """True when functions can travel by value here."""
    return _cloudpickle() is not None


def _by_name_reaches(obj, modname):
    """True when modname:qualname leads back to obj itself here and a
    worker can load that module too."""
    module = sys.modules.get(modname)
    if module is None:
        return False
    if modname in ("__main__", "__mp_main__"):
        from ._worker import _main_origin
        if _main_origin() is None:
            return False        # no file, no module: workers cannot load it
    found = module
    for part in getattr(obj, "__qualname__", "<>").split("."):
        if part.startswith("<"):
            return False
        try:
            found = getattr(found, part, None)
        except Exception:
            # A worker's stand-in for the main script loads it on first
            # use, which can fail (an import that refuses this
            # subinterpreter): not by name, then.
            return False
    return found is obj


def reduce(obj):
    """Called by the encoder for a function it cannot send by name, and for
    every class or function of __main__. None: send it by name after all (a
    main script workers can load). Else the reduction (_load, (bytes,)).
    Raises ValueError, whose text the DataCloneError shows, when
    cloudpickle is missing."""
    modname = getattr(obj, "__module__", None)
    if modname in ("__main__", "__mp_main__") and _by_name_reaches(obj, modname):
        return None
    cloudpickle = _cloudpickle()
    if cloudpickle is None:
        raise ValueError(f"it cannot be imported by name in a worker; {INSTALL_HINT}")
    return _load, (cloudpickle.dumps(obj, protocol=5),)


def _load(data):
    """The receiving side: rebuild what reduce() sent."""
    import pickle
    return pickle.loads(data)


def describe(obj):
    """Why obj cannot go to a worker by name, and what to do; None when it
    can go (by name or by value)."""
    if callable(obj) and not isinstance(obj, type):
        modname = getattr(obj, "__module__", None)
        if modname and _by_name_reaches(obj, modname):
            return None
    if available():
        return None
    return INSTALL_HINT
