# SPDX-License-Identifier: MIT
"""MessagePort: one end of a MessageChannel, with asyncio support."""

from . import _core


def _wake(fut):
    if not fut.done():
        fut.set_result(None)


class MessagePort(_core.MessagePort):
    """One end of a MessageChannel.

    post_message(obj, transfer=()) sends a structured clone; recv(),
    iteration and arecv() receive. A port moves to another worker with
    post_message(x, transfer=[port]); the sender's object is then detached.
    """

    async def arecv(self):
        """The next message, for asyncio: the event loop watches a file
        descriptor (io_uring, or an eventfd on the futex path); no thread
        per call, no polling. EOFError at the end of the stream."""
        import asyncio

        lock = self.__dict__.get("_alock")
        if lock is None:
            lock = self.__dict__["_alock"] = asyncio.Lock()
        async with lock:
            loop = asyncio.get_running_loop()
            while True:
                try:
                    return self.recv(0)
                except TimeoutError:
                    pass
                fd = self._arm()
                if fd < 0:
                    continue
                fut = loop.create_future()
                loop.add_reader(fd, _wake, fut)
                try:
                    await fut
                finally:
                    loop.remove_reader(fd)
                    self._disarm()

    def __repr__(self):
        return f"<MessagePort {'closed' if self.closed else 'open'}>"


_core._set_port_class(MessagePort)


def MessageChannel():
    """A new channel: (port1, port2), entangled MessagePorts."""
    return _core.MessageChannel()
