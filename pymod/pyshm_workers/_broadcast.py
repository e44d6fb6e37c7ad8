# SPDX-License-Identifier: MIT
"""BroadcastChannel: every other open channel of a name, in any worker of
the program, gets what one posts (pymod/hub.c carries it)."""

from . import _core
from ._events import Dispatcher
from ._worker import helper_thread


class BroadcastChannel:
    """A channel to every other open BroadcastChannel of the same name in
    the program: the main interpreter and every worker, interpreter or
    process, nested too. post_message() sends a structured clone to each of
    them (not to this channel), in order; channels opened after a post do
    not get it. recv(), iteration, arecv() and on_message receive."""

    def __init__(self, name):
        if not isinstance(name, str):
            raise TypeError(f"BroadcastChannel name must be a str, not {type(name).__name__}")
        self._name = name
        self._id, self._port = _core._bc_open(name)
        self._events = None
        # The port's own receive (a closed port raises ValueError): a
        # broadcast costs its listeners no more than a message does.
        self.recv = self._port.recv

    @property
    def name(self):
        """The channel's name."""
        return self._name

    @property
    def closed(self):
        """True once close() was called."""
        return self._id is None

    def post_message(self, message):
        """Send a structured clone of message to every other channel of
        this name. ValueError once closed; DataCloneError for what cannot
        be cloned (nothing is sent then)."""
        if self._id is None:
            raise ValueError("BroadcastChannel is closed")
        _core._bc_post(self._id, self._name, message)

    def recv(self, timeout=None):
        """The next message. TimeoutError after timeout seconds; ValueError
        once closed. (Each channel binds its port's receive here.)"""
        raise ValueError("BroadcastChannel is closed")

    async def arecv(self):
        """recv() for asyncio (the event loop watches a file descriptor)."""
        if self._id is None:
            raise ValueError("BroadcastChannel is closed")
        return await self._port.arecv()

    def __iter__(self):
        """Messages until the channel is closed."""
        while self._id is not None:
            try:
                yield self._port.recv()
            except (EOFError, ValueError):
                return

    def _read_event(self):
        try:
            return ("on_message", self._port.recv())
        except (EOFError, ValueError):
            return None

    @property
    def on_message(self):
        """Called with each message, from a dispatcher thread; messages
        that come while it is None wait for it."""
        return self._events.get("on_message") if self._events else None

    @on_message.setter
    def on_message(self, fn):
        if self._events is None:
            if fn is None:
                return
            self._events = Dispatcher(f"BroadcastChannel({self._name!r})", self._read_event,
                                      lambda run: helper_thread(run, f"bc-{self._name}"))
        self._events.set("on_message", fn)

    def close(self):
        """Stop getting messages; post_message() raises ValueError after."""
        if self._id is None:
            return
        _core._bc_close(self._id)
        self._id = None
        self._port.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_id", None) is not None:
            _core._bc_close(self._id)

    def __repr__(self):
        return f"<BroadcastChannel {self._name!r} {'closed' if self.closed else 'open'}>"

    def __reduce__(self):
        raise TypeError("cannot pickle 'BroadcastChannel' object: open a channel of "
                        "the same name in the worker instead")
