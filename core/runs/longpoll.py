"""Long-poll support for ``get-status?wait=N``.

One watcher thread per process polls the versions of all runs being waited on with a
single query, and wakes the waiters whose run changed. The number of concurrent waiters is
bounded, so long-polls can never take every gunicorn thread: past the bound a request
answers at once with the current state (the client simply asks again).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import cast

from flashfusion.core.storage.db import connection
from flashfusion.core.storage.models import Run

POLL_SECONDS = 0.2


class RunWatcher:
    def __init__(self, max_waiters: int) -> None:
        self._slots = threading.BoundedSemaphore(max(1, max_waiters))
        self._lock = threading.Lock()
        self._waiting: dict[str, dict[threading.Event, int]] = defaultdict(dict)
        self._thread: threading.Thread | None = None

    def wait(self, run_id: str, version: int, timeout: float) -> bool:
        """Block until ``run_id`` has a version other than ``version`` or ``timeout``
        passes. Returns False at once when all waiter slots are taken."""
        if timeout <= 0 or not self._slots.acquire(blocking=False):
            return False
        event = threading.Event()
        try:
            with self._lock:
                self._waiting[run_id][event] = version
                self._ensure_thread()
            return event.wait(timeout)
        finally:
            with self._lock:
                self._waiting[run_id].pop(event, None)
                if not self._waiting[run_id]:
                    del self._waiting[run_id]
            self._slots.release()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._watch, name="flashfusion-longpoll", daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        idle_since = None
        while True:
            with self._lock:
                ids = list(self._waiting)
            if not ids:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > 5:
                    with self._lock:
                        if not self._waiting:
                            self._thread = None
                            return
                time.sleep(POLL_SECONDS)
                continue
            idle_since = None
            try:
                with connection():
                    rows = Run.select(Run.id, Run.version).where(Run.id.in_(ids)).tuples()
                    versions = dict(cast(Iterable[tuple[str, int]], rows))  # peewee's stubs type rows as models
            except Exception:  # a database hiccup: try again next round
                versions = {}
            with self._lock:
                for run_id, waiters in self._waiting.items():
                    current = versions.get(run_id)
                    for event, seen in waiters.items():
                        if current is not None and current != seen:
                            event.set()
            time.sleep(POLL_SECONDS)
