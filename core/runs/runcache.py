"""get-status from memory while a run is unchanged.

Clients poll get-status, and between two changes of a run every answer is the same. A process
remembers the runs it read for at most ``server.run_cache_seconds`` (default 1; 0 reads the
database on every request), and only under the *run stamp* it read them under. Every change
of a run's state (``runs.transitions``) moves the stamp when its transaction commits:

* SQLite (one host): the stamp is 8 bytes of a file beside the database (``<database>.runstamp``)
  that every process maps into memory: reading it is a memory read, moving it writes a fresh
  random value. The next get-status of every process sees the change.
* PostgreSQL: the changing transaction sends ``NOTIFY flashfusion_run_changed``; each process's
  listener moves its own stamp when that arrives (milliseconds after the commit), and the
  process that made the change moves its stamp at once. A process whose listener is not
  connected remembers nothing.

Either way no answer is older than ``run_cache_seconds``, even after a change made behind the
gateway's back (a restored backup, SQL by hand).
"""

from __future__ import annotations

import itertools
import mmap
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

from flashfusion.core.storage.db import after_commit, database, is_sqlite
from flashfusion.core.storage.models import Run
from flashfusion.core.storage.notifications import Listener, notify
from flashfusion.core.storage.perprocess import PerProcess

CHANNEL = "flashfusion_run_changed"
T = TypeVar("T")
STAMP_SUFFIX = ".runstamp"
MAX_ENTRIES = 2_000  # runs remembered per process: a run with large outputs is tens of KiB


class Stamp(Protocol):
    def current(self) -> object | None: ...
    def move(self) -> None: ...


class FileStamp:
    """The stamp shared by every process on one SQLite file."""

    def __init__(self, path: str) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < 8:
                os.ftruncate(fd, 8)
            self._map = mmap.mmap(fd, 8)
        finally:
            os.close(fd)

    def current(self) -> object | None:
        return self._map[:8]

    def move(self) -> None:
        self._map[:8] = os.urandom(8)  # unique: two writers can never leave the value a reader saw


class CountedStamp:
    """A stamp of this process alone; with ``listening``, it is None (nothing may be
    remembered) until ``up`` is called and after ``down``."""

    def __init__(self, listening: bool = False) -> None:
        self._counter = itertools.count()
        self._value = next(self._counter)
        self._up = not listening

    def current(self) -> object | None:
        return self._value if self._up else None

    def move(self) -> None:
        self._value = next(self._counter)  # next() is atomic: no two movers write the same value

    def up(self) -> None:
        self.move()
        self._up = True

    def down(self) -> None:
        self._up = False
        self.move()


@dataclass
class Entry:
    run: Run
    stamp: object
    fresh_until: float  # time.monotonic()
    view: Any = None  # what get-status made of ``run``, once asked (see ``RunCache.view``)


class RunCache:
    def __init__(self, stamp: Stamp) -> None:
        self.stamp = stamp
        self._entries: dict[str, Entry] = {}

    def get(self, run_id: str) -> Run | None:
        entry = self._entries.get(run_id)
        if entry is None or entry.stamp != self.stamp.current() or time.monotonic() >= entry.fresh_until:
            return None
        return entry.run

    def view(self, run: Run, build: Callable[[Run], T]) -> T:
        """``build(run)``, made once per remembered ``run`` (``build`` must always be the same
        function, its result never changed by callers)."""
        entry = self._entries.get(run.id)
        if entry is None or entry.run is not run:
            return build(run)
        if entry.view is None:
            entry.view = build(run)
        return cast(T, entry.view)

    def put(self, run: Run, stamp: object | None, seconds: float) -> None:
        """Remember ``run`` as read under ``stamp`` (taken before the read began)."""
        if stamp is None or seconds <= 0:
            return
        if len(self._entries) >= MAX_ENTRIES:
            now = time.monotonic()
            self._entries = {k: e for k, e in self._entries.items() if e.fresh_until > now}
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
        self._entries[run.id] = Entry(run, stamp, time.monotonic() + seconds)


class ProcessState:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.db = database.obj
        self.listener: Listener | None = None
        path = getattr(self.db, "database", "")
        if not is_sqlite(self.db):
            stamp = CountedStamp(listening=True)
            self.listener = Listener(
                self.db, CHANNEL, on_message=lambda _run_id: stamp.move(), on_reset=stamp.down, on_listening=stamp.up
            )
            self.listener.start()
            self.cache = RunCache(stamp)
        elif path and path != ":memory:":
            self.cache = RunCache(FileStamp(path + STAMP_SUFFIX))
        else:
            self.cache = RunCache(CountedStamp())

    def stop(self) -> None:
        if self.listener is not None:
            self.listener.stopped.set()


seconds = 1.0
_states: PerProcess[ProcessState] = PerProcess(ProcessState)


def configure(cache_seconds: float) -> None:
    """``server.run_cache_seconds`` of this process (set when the app is built)."""
    global seconds
    seconds = cache_seconds


def state() -> ProcessState:
    """This process's cache on the current database."""
    return _states.get()


def view(run: Run, build: Callable[[Run], T]) -> T:
    """``build(run)``, made once while ``run`` is remembered."""
    return build(run) if seconds <= 0 else state().cache.view(run, build)


def changed(run_id: str) -> None:
    """Inside the transaction that changes ``run_id``: every process stops answering from what
    it remembers of runs once it commits. On SQLite the writer moves the file's stamp, which
    every process reads; on PostgreSQL the NOTIFY reaches the others, and only a process that
    remembers runs itself (not the worker or the CLI) has a stamp of its own to move, so no
    other process opens a listening connection just to change a run."""
    notify(CHANNEL, run_id)
    current = state() if is_sqlite() else _states.peek()
    if current is not None:
        after_commit(current.cache.stamp.move)
