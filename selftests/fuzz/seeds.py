# SPDX-License-Identifier: GPL-2.0
"""seeds.py DIR: write seed messages for the clone fuzzers into DIR: the
encoder's output for values of every type, and hand-made messages with
region and attachment tables (whose references are forged: the decoder
must refuse them cleanly)."""

import array
import datetime
import decimal
import fractions
import os
import struct
import sys

from pyshm_workers import _core

HDR = struct.Struct("<IBBHQIIII")


def message(body, nobjects=0, regions=(), attachments=()):
    out = HDR.pack(0x4C435950, 1, 32, 0, len(body), nobjects, len(regions),
                   len(attachments), 0) + body
    for role, kind, pid, rid, cookie, size in regions:
        out += struct.pack("<B7xBBHIQQQ", role, kind, 0, 0, pid, rid, cookie, size)
    for a in attachments:
        out += struct.pack("<I", len(a)) + a
    return out


def values():
    try:
        raise ValueError("seed", 1)
    except ValueError as e:
        exc = e
    cyc = [1]
    cyc.append(cyc)
    t_inner = []
    t = (t_inner, 2)
    t_inner.append(t)
    utc = datetime.timezone.utc
    return [
        None, True, 0, -1, 2**64, -(2**200), 1.5, complex(1, -1), "", "str",
        "h\u00e9\U0001f600", "a\udc80", b"", b"bytes", bytearray(b"ba"),
        [1, [2, [3]]], (1, (2,)), {"a": 1, 2: [3]}, {1, 2}, frozenset({3}),
        datetime.date(2024, 2, 29), datetime.time(1, 2, 3, 4, tzinfo=utc, fold=1),
        datetime.datetime(2024, 1, 2, 3, 4, 5, 6,
                          tzinfo=datetime.timezone(datetime.timedelta(hours=-3), "X")),
        datetime.timedelta(-1, 5, 7), decimal.Decimal("-1.5e-7"), fractions.Fraction(-3, 7),
        array.array("i", [1, -2]), array.array("d", [0.5]),
        memoryview(b"abcdefgh").cast("i", [2]), memoryview(bytearray(b"xy")),
        exc, KeyError("k"), cyc, t, {"d": {"shared": cyc}, "again": cyc},
        [exc, exc], [ValueError, KeyError],
    ]


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    n = 0
    for v in values():
        with open(os.path.join(out, f"value-{n:03d}"), "wb") as f:
            f.write(_core._encode(v))
        n += 1
    hand = [
        message(b"\x1e\x00", 1, regions=[(0, 1, os.getpid(), 7, 9, 4096)]),
        message(b"\x1f\x04\x00\x00\x9e\x00", 1, regions=[(0, 1, 1, 2, 3, 64)]),
        message(b"\xa1\x00\x1c\x01m\x01T", 1, regions=[(1, 1, 1, 2, 3, 4096)]),
        message(b"\x0c\x02\x20\x00\x20\x01", 0, attachments=[b"L" + bytes(8), b"junk"]),
        message(b"\x9d\x0b\x1c\x08builtins\x0aValueError\x0d\x01\x04\x02\x22\x22\x0e\x00",
                1),
        message(b"\x1b\x0f\x9c\x08builtins\x08KeyError\x0d\x01\x08\x01k\x0e\x00"
                b"\x01\x01\x08\x02tb", 1),
        message(b"\x0c\x01" * 50 + b"\x01"),
    ]
    for i, m in enumerate(hand):
        with open(os.path.join(out, f"hand-{i:03d}"), "wb") as f:
            f.write(m)


if __name__ == "__main__":
    main()
