"""Applying the schema migrations (``flashfusion migrate``, and ``serve``), each recorded in
``schema_migration``, and checking the database's schema version against this code. The
migrations themselves are in ``migration_steps``.
"""

from __future__ import annotations

import peewee

from flashfusion.core.storage.db import is_sqlite, to_db_time, utcnow
from flashfusion.core.storage.migration_steps import MIGRATIONS, ddl


def applied_versions(db: peewee.Database) -> set[int]:
    if "schema_migration" not in db.get_tables():
        return set()
    return {row[0] for row in db.execute_sql("SELECT version FROM schema_migration").fetchall()}


MIGRATION_LOCK_ID = 0x666C6173  # any constant shared by every FlashFusion process


def migrate(db: peewee.Database) -> list[str]:
    """Apply pending migrations; return the names applied. Safe to run from several
    processes at once: PostgreSQL serialises them with an advisory lock, SQLite with
    ``BEGIN IMMEDIATE`` and a re-check inside the transaction. Raises ``SchemaTooNew``, before
    changing anything, for a database a newer release has migrated."""
    postgres = not is_sqlite(db)
    if postgres:
        db.execute_sql("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
    try:
        check_not_newer(db)
        ddl(
            db,
            [
                """CREATE TABLE IF NOT EXISTS schema_migration (
            version INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL, applied_at {ts} NOT NULL)"""
            ],
        )
        done: list[str] = []
        for version, name, apply in MIGRATIONS:
            if version in applied_versions(db):
                continue
            with db.atomic() if postgres else db.atomic("IMMEDIATE"):
                if version in applied_versions(db):
                    continue
                apply(db)
                db.execute_sql(
                    f"INSERT INTO schema_migration (version, name, applied_at) "
                    f"VALUES ({db.param}, {db.param}, {db.param})",
                    (version, name, to_db_time(utcnow())),
                )
            done.append(f"{version:03d}_{name}")
        return done
    finally:
        if postgres:
            db.execute_sql("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_ID,))


def pending(db: peewee.Database) -> list[str]:
    applied = applied_versions(db)
    return [f"{v:03d}_{n}" for v, n, _ in MIGRATIONS if v not in applied]


# --- the schema version against the code (kept apart from the list above) ----------------


class SchemaTooNew(Exception):
    """The database was migrated by a newer FlashFusion than this one. Running on it would
    fail at the first query that meets a changed table, so every command refuses to start."""

    def __init__(self, found: int, known: int) -> None:
        super().__init__(
            f"the database schema is version {found} but this FlashFusion knows up to version {known}: "
            "upgrade FlashFusion or restore a backup taken before the upgrade"
        )
        self.found = found
        self.known = known


def newest_known() -> int:
    return max(version for version, _, _ in MIGRATIONS)


def check_not_newer(db: peewee.Database) -> None:
    applied = applied_versions(db)
    if applied and max(applied) > newest_known():
        raise SchemaTooNew(max(applied), newest_known())


def schema_state(db: peewee.Database) -> str:
    """``ok``, or what is wrong with the schema for this code (for ``/readyz``)."""
    try:
        check_not_newer(db)
    except SchemaTooNew as exc:
        return str(exc)
    missing = pending(db)
    return "ok" if not missing else f"migrations pending: {', '.join(missing)}"
