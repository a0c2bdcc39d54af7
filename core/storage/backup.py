"""Backups before upgrades: ``flashfusion backup DEST`` copies the database while the gateway
runs (SQLite's online backup API; ``pg_dump`` for PostgreSQL) and records the copy, and
``flashfusion migrate`` asks for a *recent* one before changing the schema of a database that
holds data.

Recent means: taken at most ``RECENT`` ago **and** at the schema version the database has now,
so the copy is one the release being replaced can restore.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import peewee

from flashfusion.core.ids import new_id
from flashfusion.core.storage.db import create_private_file, from_db_time, is_sqlite, to_db_time, utcnow
from flashfusion.core.storage.migration_steps import create_backup_record_table
from flashfusion.core.storage.migrations import applied_versions

RECENT = timedelta(hours=24)


class BackupError(Exception):
    """The backup could not be taken; the message says why and what to do."""


@dataclass(frozen=True)
class BackupRecord:
    taken_at: datetime
    destination: str
    schema_version: int


def schema_version(db: peewee.Database) -> int:
    return max(applied_versions(db), default=0)


def destination_path(dest: str, now: datetime, suffix: str) -> Path:
    """``DEST`` itself, or a time-stamped file inside it when it is a directory. Never an
    existing file: a backup does not overwrite another one."""
    path = Path(dest)
    if path.is_dir():
        path = path / f"flashfusion-{now:%Y%m%dT%H%M%SZ}{suffix}"
    if path.exists():
        raise BackupError(f"{path} exists: give a new file name or a directory")
    if not path.parent.is_dir():
        raise BackupError(f"{path.parent} is not a directory")
    return path


def take_backup(db: peewee.Database, database_url: str, dest: str) -> BackupRecord:
    """Copy the database to ``dest`` (mode 0600) and record the copy in the database."""
    now = utcnow()
    sqlite = is_sqlite(db)
    path = destination_path(dest, now, ".db" if sqlite else ".dump")
    if sqlite:
        _sqlite_backup(db.database, path)
    else:
        _pg_dump(database_url, path)
    record = BackupRecord(taken_at=now, destination=str(path.resolve()), schema_version=schema_version(db))
    create_backup_record_table(db)
    p = db.param
    db.execute_sql(
        f"INSERT INTO backup_record (id, taken_at, destination, schema_version) VALUES ({p}, {p}, {p}, {p})",
        (new_id("bk"), str(to_db_time(record.taken_at)), record.destination, record.schema_version),
    )
    return record


def _sqlite_backup(source: str, path: Path) -> None:
    create_private_file(str(path))
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(str(path))
    try:
        with dst:
            src.backup(dst)
    except sqlite3.Error as exc:
        path.unlink(missing_ok=True)
        raise BackupError(f"SQLite backup failed: {exc}") from None
    finally:
        dst.close()
        src.close()


def _pg_dump(database_url: str, path: Path) -> None:
    if shutil.which("pg_dump") is None:
        raise BackupError(
            "pg_dump is not on PATH: install the PostgreSQL client tools (same major version as the "
            "server) and try again"
        )
    create_private_file(str(path))
    # The URL goes through the environment, not argv, so its password is not in `ps` output.
    env = {**os.environ, "FLASHFUSION_PG_URL": database_url}
    result = subprocess.run(
        ["sh", "-c", 'exec pg_dump --format=custom --file="$1" --dbname="$FLASHFUSION_PG_URL"', "pg_dump", str(path)],
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        path.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed: {result.stderr.strip()}")


def latest_backup(db: peewee.Database) -> BackupRecord | None:
    if "backup_record" not in db.get_tables():
        return None
    row = db.execute_sql(
        "SELECT taken_at, destination, schema_version FROM backup_record ORDER BY taken_at DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    return BackupRecord(taken_at=from_db_time(row[0]), destination=row[1], schema_version=int(row[2]))


def missing_backup(db: peewee.Database, now: datetime | None = None) -> str | None:
    """None when the latest backup is recent (see the module docstring), else why it is not."""
    record = latest_backup(db)
    now = now or utcnow()
    if record is None:
        return "no backup was recorded"
    taken = f"the latest backup ({record.destination}, {record.taken_at:%Y-%m-%d %H:%M} UTC)"
    if record.schema_version != schema_version(db):
        return f"{taken} is of schema version {record.schema_version}, from before a schema change"
    if now - record.taken_at > RECENT:
        return f"{taken} is older than {RECENT.total_seconds() / 3600:.0f} hours"
    return None
