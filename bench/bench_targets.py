# SPDX-License-Identifier: GPL-2.0
"""Worker targets of bench/worker_bench.py (importable by every worker)."""

import pyshm_workers as pw

SMALL = {"id": 1, "name": "small", "values": [1, 2, 3], "score": 0.5}


def echo():
    port = pw.parent
    for msg in port:
        port.post_message(msg)


def count(n):
    """Say ready, receive n messages, then say how many."""
    port = pw.parent
    port.post_message("ready")
    got = 0
    for _ in range(n):
        port.recv()
        got += 1
    port.post_message(got)


def hello():
    pw.parent.post_message("ready")


def ack_sabs():
    port = pw.parent
    for sab in port:
        port.post_message(sab.byte_length)


def ack_len():
    """For each message received, its len() back (bench E12)."""
    port = pw.parent
    for m in port:
        port.post_message(len(m))


def cpu_work(n):
    s = 0
    for i in range(n):
        s += i * i
    return s


def square(x):
    return x * x


def mp_echo(conn):
    while True:
        msg = conn.recv()
        if msg is None:
            return
        conn.send(msg)


def mp_ack_len(conn):
    """For each bytes message received on conn, its length back; an empty
    one ends (bench E12: 64 MiB messages, or one-byte notifications)."""
    while m := conn.recv_bytes():
        conn.send(len(m))


def mp_count(q, done, n):
    done.put("ready")
    for _ in range(n):
        q.get()
    done.put(n)


def mp_hello(q):
    q.put("ready")


def bc_count(name, n):
    """Open a BroadcastChannel, say ready, receive n messages on it, then
    say how many."""
    bc = pw.BroadcastChannel(name)
    pw.parent.post_message("ready")
    for _ in range(n):
        bc.recv()
    pw.parent.post_message(n)
    bc.close()


def nd_sum(a):
    """A float for an array: what a task returns (bench E10)."""
    return float(a[0]) + float(a[-1])


def nd_echo(a):
    return a


def ack_arrays():
    """For each array received, its byte count back (bench E10)."""
    port = pw.parent
    for a in port:
        port.post_message(a.nbytes)


def lock_hammer(lock, counter, n, go):
    """Say ready, wait for go, then take and give back lock n times, adding
    one to counter[0] under it each time; say done."""
    pw.parent.post_message("ready")
    go.wait()
    for _ in range(n):
        lock.acquire()
        counter[0] += 1
        lock.release()
    pw.parent.post_message("done")


def mp_lock_hammer(lock, counter, n, go, out):
    """lock_hammer() for a multiprocessing.Lock (a RawValue counter)."""
    out.put("ready")
    go.wait()
    for _ in range(n):
        lock.acquire()
        counter.value += 1
        lock.release()
    out.put("done")


def lock_pingpong(mine, theirs, n, out):
    """Hand-off through a pair of locks: wait for mine (the other side
    releases it), then release theirs; n times. out: a port or a queue."""
    out.put("ready") if hasattr(out, "put") else out.post_message("ready")
    for _ in range(n):
        mine.acquire()
        theirs.release()
    out.put("done") if hasattr(out, "put") else out.post_message("done")


def pw_lock_pingpong(mine, theirs, n):
    lock_pingpong(mine, theirs, n, pw.parent)


def wa_pingpong(a, role, n):
    """n rounds of a[0] handed back and forth with the other worker, each
    side waiting with wait_async() in its event loop: role 1 makes it odd,
    role 0 even (bench E11, as bench/node/workers.js does with
    Atomics.waitAsync). Says "ready" first, then waits for a[1] == 1."""
    import asyncio

    async def main():
        pw.parent.post_message("ready")
        while a.load(1) == 0:
            await a.wait_async(1, 0)
        for k in range(n):
            if role == 1:
                a.store(0, 2 * k + 1)
                a.notify(0)
            want = 2 * k + 1 if role == 0 else 2 * k + 2
            while (v := a.load(0)) != want:
                await a.wait_async(0, v)
            if role == 0:
                a.store(0, 2 * k + 2)
                a.notify(0)

    asyncio.run(main())
    pw.parent.post_message("done")
