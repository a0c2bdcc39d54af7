"""State kept once per process and database (caches, their listener threads, pending counts)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from flashfusion.core.storage.db import database


class ProcessBound(Protocol):
    pid: int  # the process that made it
    db: Any  # the database it was made for

    def stop(self) -> None: ...


S = TypeVar("S", bound=ProcessBound)


class PerProcess(Generic[S]):
    """One ``S``, made by ``make`` on first use and again after a fork (a child must not share
    its parent's threads and counts) or when another database is opened (tests); the one it
    replaces in the same process is stopped."""

    def __init__(self, make: Callable[[], S]) -> None:
        self._make = make
        self._current: S | None = None
        self._lock = threading.Lock()

    def _valid(self, current: S | None) -> bool:
        return current is not None and current.pid == os.getpid() and current.db is database.obj

    def get(self) -> S:
        current = self._current
        if not self._valid(current):
            with self._lock:
                current = self._current
                if not self._valid(current):
                    if current is not None and current.pid == os.getpid():
                        current.stop()
                    current = self._current = self._make()
        assert current is not None
        return current

    def peek(self) -> S | None:
        """This process's ``S`` if it has made one (none in a fresh child)."""
        current = self._current
        return current if current is not None and current.pid == os.getpid() else None
