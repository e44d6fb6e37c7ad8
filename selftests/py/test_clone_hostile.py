# SPDX-License-Identifier: GPL-2.0
"""The clone decoder on hostile input: truncated, oversized, looping,
malformed or randomly corrupted messages give DataCloneError with a clear
message, never a crash, an out-of-bounds read, a huge allocation or a
leak; forged region and port references are refused and release nothing
that isn't theirs. The decoder and libpyshm's walker agree."""

import _thread
import array
import datetime
import decimal
import fractions
import gc
import random
import signal
import struct
import subprocess
import sys
import textwrap
import time
import tracemalloc
import unittest

import pyshm_workers as pw
from pyshm_workers import _core

import support

HDR = struct.Struct("<IBBHQIIII")
MAGIC = 0x4C435950

decode = _core._decode
encode = _core._encode


def message(body, nobjects=0, regions=(), attachments=(), version=1):
    out = HDR.pack(MAGIC, version, 32, 0, len(body), nobjects, len(regions),
                   len(attachments), 0) + body
    for entry in regions:
        out += entry
    for a in attachments:
        out += struct.pack("<I", len(a)) + a
    return out


def region_entry(role=0, kind=1, pid=1, rid=1, cookie=1, size=4096):
    return struct.pack("<B7xBBHIQQQ", role, kind, 0, 0, pid, rid, cookie, size)


def samples():
    """Valid messages of every shape the encoder makes."""
    try:
        raise ValueError("sample", [1, 2])
    except ValueError as e:
        exc = e
    cyc = [1, "x"]
    cyc.append(cyc)
    inner = []
    t = (inner, 5)
    inner.append(t)
    d = {"k": cyc}
    d["self"] = d
    utc = datetime.timezone.utc
    values = [
        None, 0, -(2**70), 2.5, complex(1, 2), "h\u00e9llo\U0001f600", "a\udc80",
        b"bytes", bytearray(b"ba"), [1, [2, (3, "s")]], {"a": 1, "b": [None, True]},
        {1, 2, 3}, frozenset({"f", 1}), cyc, t, d,
        datetime.datetime(2024, 3, 4, 5, 6, 7, 8, tzinfo=utc),
        datetime.date(2020, 2, 29), datetime.time(1, 2, tzinfo=utc, fold=1),
        datetime.timedelta(-2, 3, 4),
        datetime.timezone(datetime.timedelta(hours=5, minutes=30), "IST"),
        decimal.Decimal("-12.50"), fractions.Fraction(22, 7),
        array.array("h", [1, -1, 300]), memoryview(b"abcdefgh").cast("i", [2]),
        exc, KeyError("k"), [exc, exc, {"again": exc}], [ValueError, TypeError],
        ["shared string"] * 3,
    ]
    return [encode(v) for v in values]


class TestMalformed(unittest.TestCase):
    def assertMalformed(self, data, pattern=None, restricted=True):
        with self.assertRaises(pw.DataCloneError) as cm:
            decode(data, restricted=restricted)
        if pattern:
            self.assertRegex(str(cm.exception), pattern)
        return cm.exception

    def test_empty_and_short_input(self):
        for data in (b"", b"P", b"PYCL", bytes(31), bytes(32), b"PYCL" + bytes(28)):
            with self.subTest(data=data):
                self.assertMalformed(data, r"malformed clone message|wire version")

    def test_every_truncation_of_every_sample(self):
        for msg in samples():
            for n in range(len(msg)):
                with self.subTest(len=n, of=len(msg)):
                    self.assertMalformed(msg[:n])
                if n > 32:
                    # The header fixed up to the shorter body: a value's
                    # encoding is never a prefix of another's.
                    cut = bytearray(msg[:n])
                    struct.pack_into("<Q", cut, 8, n - 32)
                    with self.subTest(len=n, body_len="fixed"):
                        self.assertMalformed(bytes(cut))

    def test_trailing_bytes(self):
        msg = encode([1, 2])
        self.assertMalformed(msg + b"\x00")
        # A body that ends early: body_len claims one more byte.
        body = b"\x04\x02\x01"
        self.assertMalformed(message(body), r"bytes after the value")

    def test_header_fields(self):
        msg = bytearray(encode("x"))
        for off, val, pattern in ((0, 0x51, r"malformed"), (5, 31, r"malformed"),
                                  (6, 1, r"malformed"), (28, 1, r"malformed"),
                                  (4, 9, r"wire version 9")):
            bad = bytearray(msg)
            bad[off] = val
            with self.subTest(off=off):
                self.assertMalformed(bytes(bad), pattern)

    def test_lying_lengths_allocate_nothing_big(self):
        bodies = [
            b"\x0c\xff\xff\xff\xff\x0f\x01",                # list of 2**32 - 1
            b"\x0e\xff\xff\xff\xff\xff\xff\xff\xff\x7f",    # dict of 2**63 - 1 pairs
            b"\x08\xff\xff\xff\xff\xff\x01a",               # 64 GiB str
            b"\x0a\x80\x80\x80\x80\x10",                    # 4 GiB bytes
            b"\x05\xff\xff\xff\x7f\x01",                    # a huge bigint
            b"\x0d\xff\xff\x03" + b"\x01" * 10,             # tuple of 65535
            b"\x10\xff\xff\x03" + b"\x01" * 10,             # frozenset of 65535
            b"\x19\x00\x01B\x01\xff\xff\xff\xff\x0f\x01\x00",  # memoryview shape lies
        ]
        tracemalloc.start()
        try:
            for body in bodies:
                with self.subTest(body=body[:6]):
                    tracemalloc.reset_peak()
                    self.assertMalformed(message(body))
                    self.assertLess(tracemalloc.get_traced_memory()[1], 1 << 20)
            # The header's slot count too.
            tracemalloc.reset_peak()
            self.assertMalformed(message(b"\x01", nobjects=0xFFFFFFFF))
            self.assertLess(tracemalloc.get_traced_memory()[1], 1 << 20)
        finally:
            tracemalloc.stop()

    def test_references_can_only_point_back(self):
        self.assertMalformed(message(b"\x11\x00"), r"invalid value")
        self.assertMalformed(message(b"\x8c\x01\x11\x01", 1))
        got = decode(message(b"\x8c\x01\x11\x00", 1))
        self.assertIs(got[0], got)

    def test_alias_rules(self):
        # TUPLE|ALIAS naming slot 0 before any slot exists.
        self.assertMalformed(message(b"\x4d\x00\x00"))
        # ALIAS on a list, MEMO on None, ALIAS with MEMO.
        self.assertMalformed(message(b"\x4c\x00"))
        self.assertMalformed(message(b"\x81", 1))
        self.assertMalformed(message(b"\xcd\x00\x00", 1))
        # A valid alias: ([t],) where the outer tuple is the inner one.
        body = b"\x4d\x01\x8c\x01\x8d\x01\x11\x00\x01"
        t = decode(message(body, 2))
        self.assertIs(t[0][0], t)

    def test_memo_count_must_match(self):
        self.assertMalformed(message(b"\x88\x01a", 0))
        self.assertMalformed(message(b"\x08\x01a", 1), r"memo count")

    def test_bad_tags(self):
        for tag in (0x00, 0x27, 0x3F, 0x80, 0x22):
            with self.subTest(tag=tag):
                self.assertMalformed(message(bytes([tag])))

    def test_depth_bombs(self):
        for unit in (b"\x0c\x01", b"\x0d\x01", b"\x0e\x01\x01", b"\x0f\x01", b"\x10\x01"):
            with self.subTest(unit=unit):
                self.assertMalformed(message(unit * 100000 + b"\x01"),
                                     r"nested too deeply|malformed")

    def test_invalid_strings_and_dates(self):
        cases = [
            b"\x08\x03\xed\xa0\x80",            # a surrogate in STR
            b"\x08\x02\xc0\x80",                # overlong
            b"\x09\x01\xff",                    # not UTF-8 at all
            b"\x12\xe7\x07\x02\x1d",            # 2023-02-29
            b"\x12\x00\x00\x01\x01",            # year 0
            b"\x13\x18\x00\x00\x00\x00\x00\x00",  # hour 24
            b"\x15\x00\x80\xa3\x05\x00",        # 86400 seconds
            b"\x16\x02\x00\x00\x00",            # 1-day offset
            b"\x17\x01 ",                       # Decimal " "
            b"\x17\x03abc",                     # Decimal "abc"
            b"\x18\x04\x02\x04\x00",            # Fraction(1, 0)
            b"\x18\x84\x02\x04\x02",            # memo on a fraction's int
            b"\x1a\x7a\x01\x00",                # array typecode 'z'
            b"\x1a\x69\x03abc",                 # 3 bytes of int32s
            b"\x19\x00\x01i\x01\x02\x04\x04abcd",  # shape 2 x 4 != 4 bytes
        ]
        for body in cases:
            with self.subTest(body=body):
                self.assertMalformed(message(body))

    def test_structural_nonsense(self):
        cases = [
            (b"\x0f\x01\x0c\x00", 0),           # an unhashable list in a set
            (b"\x0e\x01\x0c\x00\x01", 0),       # an unhashable dict key
            (b"\x1f\x04\x00\x00\x04\x00", 0),   # typed array over an int
            (b"\x1b\x00\x04\x00\x0d\x00", 0),   # exception of callable 0
            (b"\x1d\x00\x01\x0d\x00", 0),       # reduce of None (restricted)
            (b"\x1d\x01\x0d\x00", 0),           # NEWOBJ without a class
            (b"\x1d\x00\x01\x04\x00", 0),       # args not a tuple
            (b"\x1e\x00", 0),                   # SAB with no region table
            (b"\x20\x00", 0),                   # PORT with no attachment
            (b"\x21\x00\x01", 0),               # SHARED with no region table
        ]
        for body, nobj in cases:
            with self.subTest(body=body):
                self.assertMalformed(message(body, nobj))

    def test_restricted_globals(self):
        def g(mod, name):
            return bytes([0x1c, len(mod)]) + mod + bytes([len(name)]) + name
        self.assertMalformed(message(g(b"os", b"system")), r"restricted")
        self.assertMalformed(message(g(b"builtins", b"eval")), r"restricted")
        self.assertMalformed(message(g(b"builtins", b"__import__")), r"restricted")
        self.assertIs(decode(message(g(b"builtins", b"OSError")), restricted=True), OSError)
        # Not importable, with or without the restriction.
        self.assertMalformed(message(g(b"builtins", b"<lambda>")), restricted=False)
        self.assertMalformed(message(g(b"no_such_module_xyz", b"f")), restricted=False)
        # A reduce calling eval is refused before any call.
        body = b"\x1d\x00" + g(b"builtins", b"eval") + b"\x0d\x01\x08\x04boom"
        self.assertMalformed(message(body), r"restricted")


def shared_chain(depth, wrap=b"\x0f\x01"):
    """A message of one value: t_depth inside @wrap (a one-item set by
    default), where t_0 is a memoised int and t_k = (t_k-1, t_k-1) is written
    with a back-reference. hash(t_depth) visits 2**depth leaves."""
    body = wrap + b"\x8d\x02" * depth + b"\x84\x00"
    for k in range(depth):
        body += b"\x11" + varint(k)
    return message(body, depth + 1)


def varint(v):
    out = bytearray()
    while True:
        out.append(v & 0x7F | (0x80 if v > 0x7F else 0))
        v >>= 7
        if not v:
            return bytes(out)


def bigint(v, memo=False):
    n = v.bit_length() // 8 + 1
    return bytes([0x85 if memo else 0x05]) + varint(n) + v.to_bytes(n, "little", signed=True)


_MARKS = []


def _mark():
    """Called by a REDUCE at the end of a message (see the signal test)."""
    _MARKS.append(1)


class _Interrupt:
    def __reduce__(self):
        return (_thread.interrupt_main, ())


class _Mark:
    def __reduce__(self):
        return (_mark, ())


class _Interrupted(Exception):
    pass


class TestLinearWork(unittest.TestCase):
    """Decoding costs at most linear work in the message size: hashing of
    shared immutable keys, colliding hashes, huge numbers; and a long decode
    runs signal handlers."""

    # The decoder of a child process: a hang (2**64 hash steps in C, deaf to
    # signals) ends as a failed test, not a hung suite.
    CHILD = textwrap.dedent("""
        import sys, time
        import pyshm_workers as pw
        from pyshm_workers import _core
        data = sys.stdin.buffer.read()
        t0 = time.monotonic()
        for restricted in (True, False):
            try:
                _core._decode(data, restricted=restricted)
            except pw.DataCloneError as e:
                print("refused:", e)
            else:
                print("decoded")
        print("took", time.monotonic() - t0)
    """)

    def decode_in_child(self, msg, timeout=20):
        try:
            out = subprocess.run([sys.executable, "-c", self.CHILD], input=msg,
                                 capture_output=True, timeout=timeout, check=True).stdout
        except subprocess.TimeoutExpired:
            self.fail(f"decoding a {len(msg)}-byte message ran past {timeout} s")
        return out.decode().splitlines()

    def test_shared_tuple_chain_as_key_is_refused_at_once(self):
        for wrap in (b"\x0f\x01", b"\x0e\x01", b"\x10\x01"):     # set, dict key, frozenset
            msg = shared_chain(64, wrap)
            if wrap == b"\x0e\x01":
                msg = message(msg[32:] + b"\x01", 65)           # the key's value: None
            with self.subTest(wrap=wrap):
                out = self.decode_in_child(msg)
                self.assertRegex(out[0], r"refused: .*hash")
                self.assertRegex(out[1], r"refused: .*hash")
                self.assertLess(float(out[2].split()[1]), 5)

    def test_shared_tuple_chain_within_the_bound_decodes(self):
        got = decode(shared_chain(12), restricted=True)
        (t,) = got
        for _ in range(12):
            self.assertIs(t[0], t[1])
            t = t[0]
        self.assertEqual(t, 0)
        # Not hashed: a list of the same chain is no work at all.
        got = decode(shared_chain(64, b"\x0c\x01"), restricted=True)
        self.assertIs(got[0][0], got[0][1])

    def test_shared_tuple_keys_of_many_dicts_decode(self):
        key = tuple(range(50))
        value = [{key: i} for i in range(2000)]
        got = decode(encode(value), restricted=True)
        self.assertEqual(got, value)
        self.assertIs(next(iter(got[0])), next(iter(got[1999])))

    def test_colliding_hashes_are_refused(self):
        # Distinct ints of one hash (hash(k * M) == 0): every insertion
        # compares with all the earlier ones, quadratic in their number.
        m = 2**61 - 1
        n = 20000
        keys = [bigint(k * m) for k in range(1, n + 1)]
        for what, body in (("set", b"\x0f" + varint(n) + b"".join(keys)),
                           ("dict", b"\x0e" + varint(n) + b"\x01".join(keys) + b"\x01")):
            with self.subTest(what=what):
                t0 = time.monotonic()
                with self.assertRaisesRegex(pw.DataCloneError, r"hash"):
                    decode(message(body), restricted=True)
                self.assertLess(time.monotonic() - t0, 5)

    def test_some_colliding_hashes_decode(self):
        m = 2**61 - 1
        few = {k * m for k in range(1, 1001)} | {("t", k * m) for k in range(1, 100)}
        self.assertEqual(decode(encode(few), restricted=True), few)

    def test_huge_fraction_decodes_in_linear_time(self):
        rnd = random.Random(4)
        num = rnd.getrandbits(4 << 20) | 1            # 512 KiB, odd
        den = 1 << (4 << 20)                          # coprime with it
        msg = message(b"\x18" + bigint(num) + bigint(den))
        t0 = time.monotonic()
        f = decode(msg)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual((f.numerator, f.denominator), (num, den))
        # Restricted decoding caps the numbers instead.
        with self.assertRaisesRegex(pw.DataCloneError, r"restricted decoding refuses "
                                    r"integers of more than 4096 bytes"):
            decode(msg, restricted=True)

    def test_fractions_are_normalised_or_refused(self):
        # A C writer's 6/-4 is normalised as Fraction() does.
        f = decode(message(b"\x18\x04\x0c\x04\x07"), restricted=True)
        self.assertEqual((f.numerator, f.denominator), (-3, 2))
        big = 1 << 20000
        for what, den in (("zero", 0), ("negative", -big)):
            with self.subTest(den=what):
                with self.assertRaises(pw.DataCloneError):
                    decode(message(b"\x18" + bigint(big + 1) + bigint(den)))

    def test_restricted_decoding_caps_numbers(self):
        ok, big = 1 << (4095 * 8 - 2), 1 << (4096 * 8)
        self.assertEqual(decode(encode([ok, -ok]), restricted=True), [ok, -ok])
        with self.assertRaisesRegex(pw.DataCloneError, r"integers of more than 4096 bytes"):
            decode(encode([1, big]), restricted=True)
        self.assertEqual(decode(encode(big)), big)
        digits = decimal.Decimal("1" * 5000)
        with self.assertRaisesRegex(pw.DataCloneError, r"Decimals of more than 4096"):
            decode(encode(digits), restricted=True)
        self.assertEqual(decode(encode(digits)), digits)

    def test_a_long_decode_runs_signal_handlers(self):
        # The first value asks for SIGINT (without running handlers); the
        # handler must run within the decode, before the last value is
        # built.
        msg = encode([_Interrupt(), list(range(200000)), _Mark()])

        def handler(signum, frame):
            raise _Interrupted
        old = signal.signal(signal.SIGINT, handler)
        try:
            del _MARKS[:]
            with self.assertRaises(_Interrupted):
                decode(msg)
            self.assertEqual(_MARKS, [], "the decode ran to its end")
            # Without a signal the same message decodes.
            ok = encode([None, list(range(200000)), _Mark()])
            self.assertEqual(len(decode(ok)[1]), 200000)
            self.assertEqual(_MARKS, [1])
        finally:
            signal.signal(signal.SIGINT, old)


class TestForgedReferences(support.LeakCheck):
    def test_forged_regions_are_refused(self):
        for role in (0, 1):
            for kind in (1, 2, 3, 0, 9):
                with self.subTest(role=role, kind=kind):
                    body = b"\x1e\x00" if role == 0 else b"\x21\x00\x1c\x01m\x01T"
                    msg = message(body, regions=[region_entry(role=role, kind=kind)])
                    with self.assertRaisesRegex(pw.DataCloneError, r"cannot receive"):
                        decode(msg)

    def test_bad_role_and_reserved_bytes(self):
        bad = bytearray(region_entry())
        bad[0] = 2
        self.assertRaises(pw.DataCloneError, decode, message(b"\x1e\x00",
                                                             regions=[bytes(bad)]))
        bad = bytearray(region_entry())
        bad[3] = 1
        self.assertRaises(pw.DataCloneError, decode, message(b"\x1e\x00",
                                                             regions=[bytes(bad)]))

    def test_forged_ports_are_refused(self):
        for att in (b"", b"L", b"L" + bytes(8), bytes(8), b"\xff" * 8, b"x" * 100):
            with self.subTest(att=att):
                with self.assertRaises(pw.DataCloneError):
                    decode(message(b"\x20\x00", attachments=[att]))


class TestRandomCorruption(unittest.TestCase):
    """Seeded random mutations: only DataCloneError may come out, and what
    decodes is also accepted by libpyshm's walker."""

    def mutate(self, rnd, msg):
        b = bytearray(msg)
        for _ in range(rnd.randint(1, 4)):
            op = rnd.random()
            if op < 0.5 and len(b) > 32:
                b[rnd.randrange(32, len(b))] = rnd.randrange(256)
            elif op < 0.7:
                b[rnd.randrange(len(b))] = rnd.randrange(256)
            elif op < 0.85 and len(b) > 33:
                i = rnd.randrange(32, len(b))
                del b[i:i + rnd.randint(1, 8)]
            else:
                i = rnd.randrange(32, len(b) + 1)
                b[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 8)))
        if rnd.random() < 0.7 and len(b) >= 32:
            # Keep the header consistent so the body gets exercised.
            struct.pack_into("<Q", b, 8, len(b) - 32)
        return bytes(b)

    def test_mutations(self):
        rnd = random.Random(1234)
        msgs = samples()
        decoded = refused = 0
        for i in range(20000):
            data = self.mutate(rnd, rnd.choice(msgs))
            try:
                obj = decode(data, restricted=True)
            except pw.DataCloneError:
                refused += 1
                continue
            decoded += 1
            _core._verify(data)         # the walker agrees
            repr(obj)
            del obj
            if i % 2000 == 0:
                gc.collect()
        self.assertGreater(refused, 1000)
        self.assertGreater(decoded, 100)

    def test_walker_never_crashes(self):
        rnd = random.Random(99)
        msgs = samples()
        for _ in range(20000):
            data = self.mutate(rnd, rnd.choice(msgs))
            try:
                _core._verify(data)
            except pw.DataCloneError:
                pass

    def test_pure_noise(self):
        rnd = random.Random(7)
        for _ in range(5000):
            n = rnd.randrange(1, 64)
            body = bytes(rnd.randrange(256) for _ in range(n))
            data = message(body, nobjects=rnd.randrange(0, 3))
            try:
                decode(data, restricted=True)
            except pw.DataCloneError:
                pass
            else:
                _core._verify(data)


if __name__ == "__main__":
    unittest.main()
