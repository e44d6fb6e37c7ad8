# SPDX-License-Identifier: GPL-2.0
"""Structured clone against its peers, in one run (issue 5's figures):

- structured_clone(x) vs pickle.loads(pickle.dumps(x, 5)) on a mix of
  payloads, per case (saying which wins) and overall (geometric mean of the
  per-case ratios): the goal is at least pickle's speed overall;
- a.add(0, 1) on an Int32Array in a Python loop vs lst[0] += 1: at most
  1.5x the time;
- cloning a 64 MiB SharedArrayBuffer vs 64 MiB of bytes: at most 1/1000 of
  the time (the buffer is shared, not copied).
"""

import datetime
import math
import os
import pickle
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pyshm_workers as pw  # noqa: E402
from pybench import (fmt_time, measure, measure_loop, pin_cpu, python_banner,  # noqa: E402
                     table_header, table_row)


def nested(n, seed=5):
    """A tree of n dict and list nodes with str, int and float leaves."""
    rnd = random.Random(seed)
    count = 0

    def node(depth):
        nonlocal count
        count += 1

        def child(i):
            if count < n and depth < 10 and rnd.random() < 0.6:
                return node(depth + 1)
            return rnd.choice([i, f"value {i}", i * 0.25, None, True])
        if rnd.random() < 0.5:
            return {f"key{i}": child(i) for i in range(rnd.randint(1, 5))}
        return [child(i) for i in range(rnd.randint(1, 5))]
    out = []
    while count < n:
        out.append(node(0))
    return out


def mix():
    base = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    return [
        ("small dict of str/int/float",
         {"name": "alice", "id": 12345, "score": 9.5, "city": "Paris", "active": 1,
          "ratio": 0.25}),
        ("list of 10 000 ints", list(range(-5000, 5000))),
        ("nested dict/list, 1 000 nodes", nested(1000)),
        ("1 MiB of bytes", os.urandom(1 << 20)),
        ("list of 1 000 datetimes", [base + datetime.timedelta(seconds=37 * i)
                                     for i in range(1000)]),
    ]


def bench_mix():
    table_header("structured_clone(x) vs pickle.loads(pickle.dumps(x, 5))")
    clone = pw.structured_clone
    ratios = []
    total_ours = total_peer = 0.0
    for name, x in mix():
        assert clone(x) == x
        ours = measure(lambda: clone(x))
        peer = measure(lambda: pickle.loads(pickle.dumps(x, 5)))
        ratio = ours / peer
        ratios.append(ratio)
        total_ours += ours
        total_peer += peer
        winner = "pyshm wins" if ratio < 1 else "pickle wins"
        table_row(f"clone: {name}", fmt_time(ours), fmt_time(peer), ratio,
                  f"say which wins: {winner} ({1 / ratio:.2f}x pickle's speed)", True)
    overall = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    table_row("clone: overall (geometric mean of the cases)", "", "", overall,
              f">= 1.0x pickle's speed ({1 / overall:.2f}x)", overall <= 1.0)
    table_row("clone: overall (sum of the case times)", fmt_time(total_ours),
              fmt_time(total_peer), total_ours / total_peer,
              f">= 1.0x pickle's speed ({total_peer / total_ours:.2f}x)",
              total_ours <= total_peer)


def bench_atomics():
    table_header("Int32Array.add() in a Python loop vs list item += 1")
    a = pw.Int32Array(pw.SharedArrayBuffer(64))
    lst = [0]

    def atomic(n):
        add = a.add
        for _ in range(n):
            add(0, 1)

    def plain(n):
        for _ in range(n):
            lst[0] += 1

    def atomic_attr(n):
        for _ in range(n):
            a.add(0, 1)
    n = 100000
    plain_t = measure_loop(plain, n)
    ours = measure_loop(atomic_attr, n)
    table_row("a.add(0, 1) vs lst[0] += 1, per iteration", fmt_time(ours), fmt_time(plain_t),
              ours / plain_t, "<= 1.5x", ours / plain_t <= 1.5)
    bound = measure_loop(atomic, n)
    table_row("add = a.add; add(0, 1) vs lst[0] += 1 (method bound once)", fmt_time(bound),
              fmt_time(plain_t), bound / plain_t, "(reference)", True)


def bench_sab():
    table_header("cloning 64 MiB: SharedArrayBuffer (shared) vs bytes (copied)")
    clone = pw.structured_clone
    sab = pw.SharedArrayBuffer(64 << 20)
    data = bytes(64 << 20)
    ours = measure(lambda: clone(sab), target=0.05)
    peer = measure(lambda: clone(data), target=0.3, repeats=3)
    table_row("structured_clone(64 MiB SAB) vs structured_clone(64 MiB bytes)",
              fmt_time(ours), fmt_time(peer), ours / peer,
              f"<= 0.001x (1/{peer / ours:.0f})", ours / peer <= 0.001)
    pick = measure(lambda: pickle.loads(pickle.dumps(data, 5)), target=0.3, repeats=3)
    table_row("structured_clone(64 MiB SAB) vs pickle round trip of the bytes",
              fmt_time(ours), fmt_time(pick), ours / pick, f"(reference: 1/{pick / ours:.0f})",
              True)


def main():
    pin_cpu(int(os.environ.get("BENCH_CPU", "0")))
    print(f"# clone benchmarks: {python_banner()}, backend {pw.backend()}", flush=True)
    bench_mix()
    bench_atomics()
    bench_sab()


if __name__ == "__main__":
    main()
