"""Combining concurrent writes: one thread writes for every thread waiting to write.

Every authenticated request writes its key's row (rate limit and usage count). On SQLite
those writes are serial across all processes, and each one used to cost a queue on the
write lock, a commit, and another process's page cache. With a ``Combiner``, the first
thread to arrive becomes the leader: it takes every request queued so far (its own
included), applies them all in one go, hands each waiting thread its own result, and passes
the lead to the next thread that queued meanwhile. Under load about five requests of a
process share one write (measured: threads queued at the write lock when it was taken).
Alone, a request leads its own batch of one and waits for nobody.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar

Request = TypeVar("Request")
PENDING = object()


@dataclass(eq=False)
class Ticket(Generic[Request]):
    request: Request
    result: Any = PENDING
    error: BaseException | None = None
    lead: bool = False
    done: threading.Event = field(default_factory=threading.Event)

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        if self.result is PENDING:
            raise RuntimeError("the batch's apply left a request undecided")
        return self.result


class Combiner(Generic[Request]):
    """``apply(tickets)`` must set ``result`` or ``error`` on every ticket it is given."""

    def __init__(self, apply: Callable[[list[Ticket[Request]]], None]) -> None:
        self._apply = apply
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._queue: list[Ticket[Request]] = []
        self._busy = False

    def submit(self, request: Request) -> Any:
        if self._pid != os.getpid():  # forked: start empty, whatever the parent was doing
            self._reset()
        ticket = Ticket(request)
        with self._lock:
            self._queue.append(ticket)
            leader = not self._busy
            self._busy = True
        if not leader:
            ticket.done.wait()
            if not ticket.lead:
                return ticket.outcome()
        with self._lock:
            batch, self._queue = self._queue, []
        try:
            self._apply(batch)
        except BaseException as exc:
            for t in batch:
                if t.result is PENDING and t.error is None:
                    t.error = exc
            raise
        finally:
            with self._lock:
                if self._queue:
                    self._queue[0].lead = True
                    self._queue[0].done.set()
                else:
                    self._busy = False
            for t in batch:
                if t is not ticket:
                    t.done.set()
        return ticket.outcome()
