# SPDX-License-Identifier: MIT
"""An asyncio front end dispatching requests to workers.

Each worker serves requests from its parent port; the event loop awaits
replies with arecv(), which watches a file descriptor (no thread per call,
no polling), so many requests are in flight at once while the loop stays
responsive.

    python examples/async_server.py [--requests N] [--workers K]
"""

import argparse
import asyncio
import hashlib
import time

import pyshm_workers as pw


def handler() -> None:
    """Worker: answer (request id, payload) with a digest of the payload,
    until None comes."""
    port = pw.parent
    assert port is not None                 # set in every worker
    for request in port:
        if request is None:
            return
        req_id, payload = request
        digest = payload
        for _ in range(2000):
            digest = hashlib.sha256(digest).digest()
        port.post_message((req_id, digest.hex()[:16]))


class Backend:
    def __init__(self, nworkers: int) -> None:
        self.workers = [pw.Worker(handler) for _ in range(nworkers)]
        self.pending: dict[int, asyncio.Future[str]] = {}
        self.next_id = 0
        self.readers: list[asyncio.Future[None]] = []

    async def start(self) -> None:
        self.readers = [asyncio.ensure_future(self._read(w)) for w in self.workers]

    async def _read(self, w: pw.Worker) -> None:
        while True:
            try:
                req_id, answer = await w.arecv()
            except EOFError:
                return
            self.pending.pop(req_id).set_result(answer)

    async def request(self, payload: bytes) -> str:
        self.next_id += 1
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = fut
        self.workers[self.next_id % len(self.workers)].post_message((self.next_id, payload))
        return await fut

    async def close(self) -> None:
        for w in self.workers:
            w.post_message(None)
        await asyncio.gather(*self.readers)
        for w in self.workers:
            w.join()


async def main(nreq: int, nworkers: int) -> None:
    backend = Backend(nworkers)
    await backend.start()
    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    beat = asyncio.ensure_future(heartbeat())
    t0 = time.perf_counter()
    answers = await asyncio.gather(
        *(backend.request(f"request {i}".encode()) for i in range(nreq)))
    elapsed = time.perf_counter() - t0
    beat.cancel()
    await backend.close()
    print(f"{nreq} requests served by {nworkers} workers in {elapsed:.3f} s; "
          f"the event loop ticked {ticks} times meanwhile")
    print("first answers:", answers[:3])
    assert len(set(answers)) == nreq


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    asyncio.run(main(args.requests, args.workers))
