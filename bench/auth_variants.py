"""Measurement only: the gateway's WSGI app with its API-key step changed, to split the API
overhead into its parts. Run by gunicorn as ``auth_variants:app`` with ``FLASHFUSION_CONFIG``
and ``BENCH_AUTH_VARIANT`` set (``api_overhead.py --split`` does this):

* ``private``: the very same key UPDATE (GCRA, usage count, same SQL), but on a copy of the
  database file that belongs to this process alone. One write per request, nothing shared
  between processes: no lock hand-offs, no page cache emptied by another process's commit.
* ``read-only``: a plain SELECT of the key instead. No rate limit, no usage count, no write.

Neither is something the product could ship: they show what the shared write costs.
SQLite only.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
from contextlib import closing
from datetime import datetime

from flashfusion.core.access import keycheck as auth
from flashfusion.core.access import keyformat as keys
from flashfusion.core.access import ratelimit
from flashfusion.core.app import get_app
from flashfusion.core.storage.db import WriteGate, database, is_sqlite
from flashfusion.core.web import authentication

VARIANT = os.environ.get("BENCH_AUTH_VARIANT", "")

app = get_app()


class PrivateCopy:
    """Takes the place of the shared database inside ``flashfusion.core.access.auth``: the statements
    run on this process's own copy, one connection per thread, writers queued on the copy's
    own write gate as on the real file."""

    param = "?"

    def __init__(self) -> None:
        self.obj = database.obj
        self._local = threading.local()
        self._path = None
        self._lock = threading.Lock()
        self.gate: WriteGate | None = None

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            with self._lock:
                if self._path is None:
                    self._path = os.path.join(tempfile.mkdtemp(prefix="ffbench-private-"), "copy.db")
                    with closing(sqlite3.connect(self.obj.database)) as source, \
                            closing(sqlite3.connect(self._path)) as target:
                        source.backup(target)  # the copy includes what is still in the WAL
                        target.execute("PRAGMA journal_mode = wal")
                    self.gate = WriteGate(self._path)
            conn = self._local.conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False,
                                                      timeout=10)
            conn.execute("PRAGMA synchronous = normal")
        return conn

    def execute_sql(self, sql: str, params: tuple = ()) -> sqlite3.Cursor:
        return self._connection().execute(sql, params)


def read_only(header_value: str | None, *, limit: int, now: datetime) -> tuple[auth.Actor, ratelimit.Decision]:
    candidate = (header_value or "").strip()
    keys.check_format(candidate)
    row = database.execute_sql(
        "SELECT id, key_preview, permissions, pipeline_ids, owner_id FROM api_key "
        "WHERE key_hash = ? AND revoked_at IS NULL", (keys.hash_key(candidate),)).fetchone()
    if row is None:
        raise auth.unknown_key()
    key_id, preview, perms, scope, owner_id = row
    at = now.timestamp()
    return (auth.Actor(key_id=key_id, key_preview=preview, permissions=auth._names(perms),
                       pipeline_ids=auth._names(scope), owner_id=owner_id),
            ratelimit.Decision(allowed=True, limit=limit, period=auth.HOUR, tat=at, now=at))


if VARIANT and not is_sqlite():
    raise SystemExit("auth_variants: SQLite only")
if VARIANT == "private":
    auth.database = copy = PrivateCopy()
    copy._connection()
    auth.write_gate = lambda: copy.gate.hold()
elif VARIANT == "read-only":
    authentication.authenticate = read_only
elif VARIANT:
    raise SystemExit(f"auth_variants: unknown BENCH_AUTH_VARIANT {VARIANT!r}")
