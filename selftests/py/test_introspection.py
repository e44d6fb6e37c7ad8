# SPDX-License-Identifier: GPL-2.0
"""Introspection: help() shows every public name, inspect.signature() works
for every public callable with the parameter names of the API contract,
every public object has a docstring, and reprs say what an object is and
its state."""

import inspect
import re
import subprocess
import sys
import unittest

import pyshm_workers as pw

import support

P = inspect.Parameter
POS, POS_KW, KW = P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY
E = P.empty

# The signatures of DESIGN.md (Documentation/python-api.rst), self left out:
# (name, kind, default) of each parameter. A callable may add keyword-only
# parameters after these, never change them.
CONTRACT = {
    "Worker": [("target", POS_KW, E), ("args", POS_KW, ()), ("kwargs", POS_KW, None),
               ("mode", KW, "auto"), ("name", KW, None), ("worker_data", KW, None)],
    "Worker.post_message": [("message", POS_KW, E), ("transfer", POS_KW, ()),
                            ("timeout", KW, None)],
    "Worker.recv": [("timeout", POS_KW, None)],
    "Worker.join": [("timeout", POS_KW, None)],
    "WorkerPool": [("max_workers", POS_KW, None), ("mode", POS_KW, "auto")],
    "MessagePort.post_message": [("message", POS_KW, E), ("transfer", POS_KW, ()),
                                 ("timeout", KW, None)],
    "MessagePort.recv": [("timeout", POS_KW, None)],
    "MessagePort.close": [],
    "MessageChannel": [],
    "SharedArrayBuffer": [("n", POS_KW, E), ("max_byte_length", POS_KW, None)],
    "SharedArrayBuffer.grow": [("new_length", POS, E)],
    # DESIGN's Parity API names the first parameter buffer (any typed array
    # over a SharedArrayBuffer or an ArrayBuffer); §3's sab= stays accepted
    # as a keyword (test_typed_arrays).
    "Int32Array": [("buffer", POS_KW, E), ("byte_offset", POS_KW, 0), ("length", POS_KW, None)],
    "Int32Array.load": [("i", POS, E)],
    "Int32Array.store": [("i", POS, E), ("v", POS, E)],
    "Int32Array.compare_exchange": [("i", POS, E), ("expected", POS, E), ("new", POS, E)],
    "Int32Array.wait": [("i", POS_KW, E), ("value", POS_KW, E), ("timeout", POS_KW, None)],
    "Int32Array.notify": [("i", POS_KW, E), ("count", POS_KW, None)],
    "Atomics.add": [("a", POS_KW, E), ("i", POS_KW, E), ("v", POS_KW, E)],
    "Atomics.wait": [("a", POS_KW, E), ("i", POS_KW, E), ("value", POS_KW, E),
                     ("timeout", POS_KW, None)],
    "Atomics.notify": [("a", POS_KW, E), ("i", POS_KW, E), ("count", POS_KW, None)],
    "structured_clone": [("obj", POS_KW, E), ("transfer", POS_KW, ())],
    # The Parity API's synchronisation objects: threading's signatures.
    "Lock": [],
    "Lock.acquire": [("blocking", POS_KW, True), ("timeout", POS_KW, -1)],
    "Lock.release": [],
    "Lock.locked": [],
    "RLock": [],
    "RLock.acquire": [("blocking", POS_KW, True), ("timeout", POS_KW, -1)],
    "RLock.release": [],
    "Semaphore": [("value", POS_KW, 1)],
    "Semaphore.acquire": [("blocking", POS_KW, True), ("timeout", POS_KW, None)],
    "Semaphore.release": [("n", POS_KW, 1)],
    "BoundedSemaphore": [("value", POS_KW, 1)],
    "Event": [],
    "Event.wait": [("timeout", POS_KW, None)],
    "Condition": [("lock", POS_KW, None)],
    "Condition.acquire": [("blocking", POS_KW, True), ("timeout", POS_KW, -1)],
    "Condition.wait": [("timeout", POS_KW, None)],
    "Condition.wait_for": [("predicate", POS_KW, E), ("timeout", POS_KW, None)],
    "Condition.notify": [("n", POS_KW, 1)],
    "Condition.notify_all": [],
    "Barrier": [("parties", POS_KW, E), ("action", POS_KW, None), ("timeout", POS_KW, None)],
    "Barrier.wait": [("timeout", POS_KW, None)],
    "Barrier.reset": [],
    "Barrier.abort": [],
    "backend": [],
    "in_worker": [],
}
for _op in ("add", "sub", "and_", "or_", "xor", "exchange"):
    CONTRACT[f"Int32Array.{_op}"] = CONTRACT["Int32Array.store"]
for _name in list(CONTRACT):
    if _name.startswith("Int32Array"):
        CONTRACT["Int64Array" + _name[len("Int32Array"):]] = CONTRACT[_name]

# Worker's and WorkerPool's members: their docstrings and reprs are checked
# once those classes have them (pyshm_workers/_worker.py and _pool.py).
LATER = ("Worker", "WorkerPool")


def public_callables():
    """(qualified name, object) of every public callable: the callables of
    __all__ and the public methods of its classes."""
    for name in pw.__all__:
        obj = getattr(pw, name)
        if not callable(obj):
            continue
        yield name, obj
        if isinstance(obj, type) and not issubclass(obj, BaseException):
            for attr in dir(obj):
                value = inspect.getattr_static(obj, attr)
                if attr.startswith("_") or not callable(getattr(obj, attr)):
                    continue
                if isinstance(value, (staticmethod, classmethod)):
                    value = getattr(obj, attr)
                yield f"{name}.{attr}", value


def own_members(cls):
    """The public names cls and its pyshm_workers bases define (not what
    comes from builtins or the standard library: BaseException.args)."""
    names = set()
    for base in cls.__mro__:
        if base.__module__.startswith("pyshm_workers"):
            names.update(n for n in vars(base) if not n.startswith("_"))
    return sorted(names)


def params(obj):
    """The (name, kind, default) of obj's parameters, without self."""
    ps = list(inspect.signature(obj).parameters.values())
    if ps and ps[0].name == "self":
        ps = ps[1:]
    return [(p.name, p.kind, p.default) for p in ps]


class TestSignatures(unittest.TestCase):
    def test_every_public_callable_has_a_signature(self):
        seen = 0
        for name, obj in public_callables():
            with self.subTest(name=name):
                inspect.signature(obj)
                seen += 1
        self.assertGreater(seen, 40)

    def test_signatures_use_the_names_of_the_contract(self):
        for name, want in CONTRACT.items():
            obj = pw
            for part in name.split("."):
                obj = getattr(obj, part)
            with self.subTest(name=name):
                got = params(obj)
                self.assertEqual(got[:len(want)], want)
                # Only keyword-only parameters may come after.
                self.assertTrue(all(kind == KW for _, kind, _ in got[len(want):]), got)

    def test_bound_methods_leave_self_out(self):
        a = pw.Int32Array(pw.SharedArrayBuffer(8))
        self.assertEqual(str(inspect.signature(a.wait)), "(i, value, timeout=None)")
        self.assertEqual(str(inspect.signature(a.load)), "(i, /)")
        self.assertEqual(str(inspect.signature(pw.SharedArrayBuffer(1).slice)),
                         "(start=0, end=None, /)")
        port1, port2 = pw.MessageChannel()
        self.assertEqual(str(inspect.signature(port1.post_message)),
                         "(message, transfer=(), *, timeout=None)")
        port1.close()
        port2.close()

    def test_exception_classes_have_a_signature(self):
        for exc in (pw.DataCloneError, pw.WorkerError):
            with self.subTest(exc=exc.__name__):
                self.assertEqual(str(inspect.signature(exc)), "(*args)")


class TestDocstrings(unittest.TestCase):
    def test_package_docstring_names_the_api(self):
        doc = pw.__doc__
        for name in pw.__all__:
            with self.subTest(name=name):
                self.assertRegex(doc, rf"\b{name}\b")

    def test_every_public_object_has_a_docstring(self):
        for name in pw.__all__:
            obj = getattr(pw, name)
            if not (callable(obj) or inspect.ismodule(obj)):
                continue        # parent, worker_data: values
            with self.subTest(name=name):
                self.assertTrue(inspect.getdoc(obj))
            if not isinstance(obj, type) or name in LATER:
                continue
            for attr in own_members(obj):
                value = inspect.getattr_static(obj, attr)
                if not (callable(getattr(obj, attr)) or hasattr(value, "__get__")):
                    continue    # WorkerError.remote_type and such: values
                with self.subTest(name=f"{name}.{attr}"):
                    self.assertTrue(inspect.getdoc(value))

    def test_signature_text_stays_out_of_docstrings(self):
        # The "name($self, ...)\n--\n\n" header is for inspect, not readers.
        for name, obj in public_callables():
            with self.subTest(name=name):
                self.assertNotIn("\n--\n", obj.__doc__ or "")
                self.assertNotIn("$self", obj.__doc__ or "")


def fresh(code):
    """What code prints in a new interpreter, where nothing has loaded
    WorkerPool yet (the tests here do, and that would hide its absence)."""
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                          text=True, timeout=support.TIMEOUT).stdout


class TestHelp(unittest.TestCase):
    text = None

    def setUp(self):
        # Once for the class (run.py runs each test on its own: no setUpClass).
        if TestHelp.text is None:
            TestHelp.text = fresh("import pydoc, pyshm_workers; print(pydoc.render_doc("
                                  "pyshm_workers, renderer=pydoc.plaintext))")

    def section(self, title):
        m = re.search(rf"^{title}\n(.*?)(?=^[A-Z]+\n|\Z)", self.text, re.M | re.S)
        self.assertIsNotNone(m, f"help() has no {title} section")
        return m.group(1)

    def test_help_lists_every_name_of_all(self):
        classes = self.section("CLASSES")
        functions = self.section("FUNCTIONS")
        data = self.section("DATA")
        for name in pw.__all__:
            obj = getattr(pw, name)
            with self.subTest(name=name):
                if inspect.ismodule(obj):
                    self.assertRegex(self.section("PACKAGE CONTENTS"), rf"(?m)^    {name}$")
                elif isinstance(obj, type):
                    self.assertRegex(classes, rf"(?m)^    class {name}\b")
                elif callable(obj):
                    self.assertRegex(functions, rf"(?m)^    {name}\(")
                else:
                    self.assertRegex(data, rf"(?m)^    {name} = ")

    def test_dir_lists_workerpool_before_it_is_loaded(self):
        names = fresh("import pyshm_workers; print(*dir(pyshm_workers))").split()
        self.assertIn("WorkerPool", names)
        self.assertLessEqual(set(pw.__all__), set(names))

    def test_help_shows_the_version(self):
        self.assertIn(pw.__version__, self.section("VERSION"))


class TestReprs(support.LeakCheck):
    def test_shared_array_buffer_says_size_and_growth(self):
        sab = pw.SharedArrayBuffer(16)
        self.assertEqual(repr(sab), "<SharedArrayBuffer byte_length=16>")
        g = pw.SharedArrayBuffer(8, max_byte_length=64)
        self.assertEqual(repr(g), "<SharedArrayBuffer byte_length=8 max_byte_length=64 growable>")
        g.grow(32)
        self.assertEqual(repr(g), "<SharedArrayBuffer byte_length=32 max_byte_length=64 growable>")

    def test_typed_arrays_say_length_offset_and_buffer(self):
        sab = pw.SharedArrayBuffer(64)
        self.assertEqual(repr(pw.Int32Array(sab, 8, 2)),
                         "<Int32Array length=2 byte_offset=8 "
                         "buffer=<SharedArrayBuffer byte_length=64>>")
        self.assertEqual(repr(pw.Int64Array(sab)),
                         "<Int64Array length=8 byte_offset=0 "
                         "buffer=<SharedArrayBuffer byte_length=64>>")

    def test_length_tracking_array_follows_its_buffer(self):
        g = pw.SharedArrayBuffer(8, max_byte_length=64)
        a = pw.Int32Array(g)
        self.assertIn("<Int32Array length=2 byte_offset=0 length-tracking ", repr(a))
        g.grow(16)
        self.assertIn("<Int32Array length=4 byte_offset=0 length-tracking ", repr(a))

    def test_message_port_says_open_or_closed(self):
        port1, port2 = pw.MessageChannel()
        self.assertEqual(repr(port1), "<MessagePort open>")
        port1.close()
        self.assertEqual(repr(port1), "<MessagePort closed>")
        # Transferred away: closed here.
        a, b = pw.MessageChannel()
        port2.close()
        moved = pw.structured_clone(b, transfer=[b])
        self.assertEqual(repr(b), "<MessagePort closed>")
        self.assertEqual(repr(moved), "<MessagePort open>")
        a.close()
        moved.close()


if __name__ == "__main__":
    unittest.main()
