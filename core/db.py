"""Database connection: SQLite (the embedded default) or PostgreSQL, chosen by URL.

SQLite runs in WAL mode with a busy timeout, and every write transaction starts with
``BEGIN IMMEDIATE`` so two writers queue on the lock instead of deadlocking on an upgrade
from a read lock.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterator
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
        path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else parsed.path
        db: peewee.Database = PooledSqliteDatabase(path or ":memory:", pragmas=SQLITE_PRAGMAS, max_connections=64,
                                                    stale_timeout=300, check_same_thread=False, timeout=10)
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
    database.initialize(db)
    return db


def is_sqlite(db: peewee.Database | None = None) -> bool:
    target = db if db is not None else database.obj
    return isinstance(target, peewee.SqliteDatabase)


@contextmanager
def write_tx() -> Iterator[None]:
    """A write transaction that takes the write lock up front on SQLite."""
    if is_sqlite():
        with database.atomic("IMMEDIATE"):
            yield
    else:
        with database.atomic():
            yield


@contextmanager
def connection() -> Iterator[None]:
    """Open the thread's connection for a unit of work and close it afterwards."""
    opened = database.connect(reuse_if_open=True)
    try:
        yield
    finally:
        if opened and not database.in_transaction():
            database.close()


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def to_db_time(value: datetime | None) -> datetime | None:
    """Datetimes are stored as naive UTC."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def from_db_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def iso(value: datetime | None) -> str | None:
    value = from_db_time(value)
    if value is None:
        return None
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


class JSONField(peewee.TextField):
    def db_value(self, value: Any) -> str | None:
        return None if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True)

    def python_value(self, value: Any) -> Any:
        return None if value is None else json.loads(value)


_BY_ID_SQL: dict[tuple[type, type], str] = {}


def fetch_by_id(model: type[peewee.Model], value: Any) -> peewee.Model | None:
    """``model.get_or_none(pk == value)`` for hot paths: peewee builds the SELECT of a wide
    model in about a millisecond of pure Python, so the SQL is built once and reused."""
    key = (model, type(database.obj))
    sql = _BY_ID_SQL.get(key)
    if sql is None:
        sql = model.select().where(model._meta.primary_key == "__id__").sql()[0]
        _BY_ID_SQL[key] = sql
    return next(iter(model.raw(sql, value)), None)
