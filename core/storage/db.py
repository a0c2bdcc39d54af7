"""Database connection: SQLite (the embedded default) or PostgreSQL, chosen by URL.

SQLite runs in WAL mode with a busy timeout, and every write transaction starts with
``BEGIN IMMEDIATE`` so two writers queue on the lock instead of deadlocking on an upgrade
from a read lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar, overload
from urllib.parse import unquote, urlparse

import peewee
from playhouse.pool import PooledPostgresqlDatabase, PooledSqliteDatabase

database = peewee.DatabaseProxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "busy_timeout": 10000,
    "synchronous": "normal",
    "foreign_keys": 1,
}


def open_database(url: str) -> peewee.Database:
    """Open (lazily) the database named by ``url`` and bind the models' proxy to it.

    Connections are pooled: a request "closes" its connection back into the pool, so a
    PostgreSQL backend is not forked per request."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else parsed.path
        if path and path != ":memory:":
            create_private_file(path)
        db: peewee.Database = PooledSqliteDatabase(
            path or ":memory:",
            pragmas=SQLITE_PRAGMAS,
            max_connections=64,
            stale_timeout=300,
            check_same_thread=False,
            timeout=10,
        )
    elif parsed.scheme in ("postgres", "postgresql"):
        db = PooledPostgresqlDatabase(
            unquote(parsed.path.lstrip("/")),
            user=unquote(parsed.username) if parsed.username else None,
            password=unquote(parsed.password) if parsed.password else None,
            host=parsed.hostname or None,
            port=parsed.port or None,
            max_connections=64,
            stale_timeout=300,
        )
    else:
        raise ValueError(f"unsupported database_url scheme {parsed.scheme!r} (use sqlite:/// or postgresql://)")
    global _gate
    _gate = WriteGate(db.database) if isinstance(db, peewee.SqliteDatabase) else None
    database.initialize(db)
    return db


def create_private_file(path: str) -> None:
    """Create the SQLite database file readable by its owner only, if it does not exist yet.
    SQLite would create it with the process's umask (usually 0644: readable by every local
    user: password hashes, sessions, webhook deliveries) and gives its ``-wal`` and ``-shm``
    files the mode of the database file. An existing file keeps its mode."""
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT, 0o600))


def is_sqlite(db: peewee.Database | None = None) -> bool:
    target = db if db is not None else database.obj
    return isinstance(target, peewee.SqliteDatabase)


class WriteGate:
    """Serialises SQLite writers: a lock shared by this process's threads, then an ``flock``
    shared by every process on the file. Waiting writers queue in the kernel and are woken
    when the holder is done, instead of polling SQLite's lock with its busy handler, which
    sleeps for whole milliseconds and turned write contention into most of a request's time.
    Re-entrant within a thread."""

    def __init__(self, path: str) -> None:
        self._lock = threading.RLock()
        self._depth = threading.local()
        self._fd = os.open(path + ".writelock", os.O_RDWR | os.O_CREAT, 0o600) if path != ":memory:" else None
        self._pid = os.getpid()
        self._path = path

    @contextmanager
    def hold(self) -> Iterator[None]:
        with self._lock:
            if self._pid != os.getpid():  # forked: an inherited descriptor shares the parent's lock
                self.__init__(self._path)  # type: ignore[misc]
            depth = getattr(self._depth, "n", 0)
            if depth == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            self._depth.n = depth + 1
            try:
                yield
            finally:
                self._depth.n = depth
                if depth == 0 and self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)


_gate: WriteGate | None = None


@contextmanager
def write_gate() -> Iterator[None]:
    """Hold the SQLite write gate (nothing on PostgreSQL, whose row locks queue writers)."""
    if _gate is not None and is_sqlite():
        with _gate.hold():
            yield
    else:
        yield


_committed = threading.local()  # what to do once the thread's outermost write_tx commits


def after_commit(action: Callable[[], None]) -> None:
    """Run ``action`` once the current ``write_tx`` has committed (at once outside one); not at
    all if it rolls back."""
    if not database.in_transaction():
        action()
        return
    pending = getattr(_committed, "actions", None)
    if pending is None:
        pending = _committed.actions = []
    pending.append(action)


@contextmanager
def write_tx() -> Iterator[None]:
    """A write transaction that takes the write lock up front on SQLite."""
    try:
        if is_sqlite():
            with write_gate(), database.atomic("IMMEDIATE"):
                yield
        else:
            with database.atomic():
                yield
    except BaseException:
        if not database.in_transaction():
            _committed.actions = None
        raise
    if not database.in_transaction():
        actions, _committed.actions = getattr(_committed, "actions", None) or [], None
        for action in actions:
            action()


@contextmanager
def connection() -> Iterator[None]:
    """Open the thread's connection for a unit of work and close it afterwards."""
    opened = database.connect(reuse_if_open=True)
    try:
        yield
    finally:
        if opened and not database.in_transaction():
            database.close()


@overload
def to_db_time(value: None) -> None: ...
@overload
def to_db_time(value: datetime) -> datetime: ...
def to_db_time(value: datetime | None) -> datetime | None:
    """Datetimes are stored as naive UTC."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


@overload
def from_db_time(value: None) -> None: ...
@overload
def from_db_time(value: datetime | str) -> datetime: ...
def from_db_time(value: Any) -> datetime | None:
    """A stored time (naive UTC ``datetime``, or ISO text on SQLite) as an aware UTC
    ``datetime``; ``None`` stays ``None``."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@overload
def iso(value: None) -> None: ...
@overload
def iso(value: datetime) -> str: ...
def iso(value: datetime | None) -> str | None:
    if type(value) is datetime and value.tzinfo is None:  # as stored: naive UTC
        return value.isoformat(timespec="seconds") + "Z"
    value = from_db_time(value)
    if value is None:
        return None
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


def utcnow() -> datetime:
    return datetime.now(UTC)


class JSONField(peewee.TextField):
    def db_value(self, value: Any) -> str | None:
        return None if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True)

    def python_value(self, value: Any) -> Any:
        return None if value is None else json.loads(value)


M = TypeVar("M", bound=peewee.Model)

_BY_ID: dict[tuple[type, type, bool], tuple[str, list]] = {}


def fetch_by_id(model: type[M], value: Any, *, for_update: bool = False) -> M | None:
    """``model.get_or_none(pk == value)`` for hot paths. Peewee spends about a millisecond of
    pure Python building the SELECT of a wide model and resolving its result columns, so the
    SQL and the column converters are prepared once and the row is converted here, straight
    into the instance's data (as peewee itself does for a row it reads)."""
    key = (model, type(database.obj), for_update)
    prepared = _BY_ID.get(key)
    if prepared is None:
        fields = list(model._meta.sorted_fields)
        query = model.select(*fields).where(model._meta.primary_key == "__id__")
        sql = (query.for_update() if for_update else query).sql()[0]
        prepared = _BY_ID[key] = (sql, [(f.name, f.python_value) for f in fields])
    sql, columns = prepared
    row = database.execute_sql(sql, (value,)).fetchone()
    if row is None:
        return None
    instance = model.__new__(model)
    instance.__data__ = {
        name: raw if raw is None else convert(raw) for (name, convert), raw in zip(columns, row, strict=True)
    }
    instance._dirty = set()  # type: ignore[attr-defined]  # peewee keeps it undeclared
    instance.__rel__ = {}
    return instance
