"""PostgreSQL ``LISTEN``/``NOTIFY`` between the processes of a gateway, on every host.

``notify`` inside a transaction is delivered when it commits. A ``Listener`` is a thread with
a connection of its own (outside the pool) that hands each payload on its channel to
``on_message``. When its connection fails a notification may have been missed: it calls
``on_reset`` and reconnects, so a process that relies on it can fall back to the database.
"""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Callable
from typing import Any

from flashfusion.core.storage.db import database, is_sqlite

log = logging.getLogger(__name__)


def notify(channel: str, payload: str) -> None:
    """Inside a transaction: tell every listening process when it commits (PostgreSQL only)."""
    if not is_sqlite():
        database.execute_sql("SELECT pg_notify(%s, %s)", (channel, payload))


class Listener(threading.Thread):
    def __init__(
        self,
        db: Any,
        channel: str,
        on_message: Callable[[str], None],
        on_reset: Callable[[], None],
        on_listening: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(name=f"flashfusion-listen-{channel}", daemon=True)
        self.db = db
        self.channel = channel
        self.on_message = on_message
        self.on_reset = on_reset
        self.on_listening = on_listening
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self._listen()
            except Exception as exc:  # noqa: BLE001 - what relies on this has a bound without it
                log.warning("listener on %s: %s; reconnecting", self.channel, type(exc).__name__)
            self.on_reset()
            self.stopped.wait(1.0)

    def _listen(self) -> None:
        import psycopg2

        conn = psycopg2.connect(database=self.db.database, **self.db.connect_params)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f"LISTEN {self.channel}")
            self.on_listening()
            while not self.stopped.is_set():
                if select.select([conn], [], [], 5.0)[0]:
                    conn.poll()
                    while conn.notifies:
                        self.on_message(conn.notifies.pop(0).payload)
        finally:
            conn.close()
