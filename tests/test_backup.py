"""Backups and upgrades: ``flashfusion backup DEST`` copies a database that is in use into a
private file, and ``flashfusion migrate`` refuses to change the schema of a database holding
data unless a recent backup was recorded (or ``--without-backup`` is given)."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
from importlib import metadata

import pytest
from conftest import write_config
from testkit.server import FLASHFUSION, cli

from flashfusion.core.storage import db as dbmod
from flashfusion.core.storage import migration_steps, migrations

pytestmark = pytest.mark.e2e

NEWEST = max(version for version, _, _ in migrations.MIGRATIONS)
NEWEST_NAME = next(f"{v:03d}_{name}" for v, name, _ in migrations.MIGRATIONS if v == NEWEST)


def _sql(url: str, *statements: str) -> None:
    if dbmod.database.obj is not None:  # the pool fresh_database left: SQLite's POSIX locks are per process
        dbmod.database.obj.close_all()
    db = dbmod.open_database(url)
    with db.connection_context():
        for statement in statements:
            db.execute_sql(statement)
    db.close_all()


#: How to take the newest migration back, so that `migrate` has one to apply (a test helper:
#: a new migration adds its own entry here, and this test fails until it does).
UNDO = {
    "009_backup_record": ["DROP TABLE IF EXISTS backup_record"],
    "010_run_results": [
        "DROP INDEX IF EXISTS run_group_id",
        "ALTER TABLE run DROP COLUMN outputs",
        "ALTER TABLE run DROP COLUMN artifacts",
        "ALTER TABLE run DROP COLUMN quality_gates",
        "ALTER TABLE run DROP COLUMN group_id",
        "DROP TABLE IF EXISTS run_group",
    ],
}


def _as_before_the_newest_migration(url: str) -> None:
    """The database as the previous release left it: the newest migration not applied yet."""
    _sql(url, f"DELETE FROM schema_migration WHERE version = {NEWEST}", *UNDO[NEWEST_NAME])


def test_backup_copies_a_database_in_use_into_a_private_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'live.db'}"
    config = write_config(tmp_path, url)
    key = cli("keys", "create", "--name", "ci-bot", "--permissions", "trigger_pipeline", config=config).stdout
    assert "ffai_" in key
    holder = sqlite3.connect(tmp_path / "live.db")  # another process holds the database open
    holder.execute("BEGIN")
    holder.execute("SELECT count(*) FROM api_key").fetchone()
    backups = tmp_path / "backups"
    backups.mkdir()
    out = cli("backup", str(backups), config=config).stdout
    holder.rollback()
    holder.close()
    [copy] = list(backups.iterdir())
    assert f"backup written to {copy}" in out
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    with sqlite3.connect(copy) as restored:
        assert restored.execute("SELECT name FROM api_key").fetchall() == [("ci-bot",)]
        assert max(v for (v,) in restored.execute("SELECT version FROM schema_migration")) == NEWEST
    again = cli("backup", str(copy), config=config, check=False)
    assert again.returncode == 1 and f"{copy} exists" in again.stderr
    assert copy.stat().st_size > 0


def _refused(config) -> str:
    result = cli("migrate", config=config, check=False)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "flashfusion backup DEST" in result.stderr and "--without-backup" in result.stderr
    return result.stderr


def test_migrate_asks_for_a_recent_backup_of_a_database_holding_data(tmp_path, db_url):
    config = write_config(tmp_path, db_url)
    cli("migrate", config=config)
    _as_before_the_newest_migration(db_url)
    assert "no backup was recorded" in _refused(config)
    assert cli("migrate", "--without-backup", config=config).stdout.strip() == "applied: " + NEWEST_NAME

    _as_before_the_newest_migration(db_url)
    if db_url.startswith("sqlite"):
        cli("backup", str(tmp_path / "before-upgrade.db"), config=config)
    else:  # a pg_dump taken as the operations guide says, recorded the way `backup` records it
        _sql(
            db_url,
            migration_steps.BACKUP_RECORD_DDL.format(ts="TIMESTAMP", text="TEXT"),
            f"INSERT INTO backup_record VALUES ('bk1', now() AT TIME ZONE 'utc', '/backup/x.dump', {NEWEST - 1})",
        )
    _sql(
        db_url,
        "UPDATE backup_record SET taken_at = taken_at - INTERVAL '25 hours'"
        if not db_url.startswith("sqlite")
        else "UPDATE backup_record SET taken_at = datetime(taken_at, '-25 hours')",
    )
    assert "older than 24 hours" in _refused(config)
    _sql(db_url, "DELETE FROM backup_record")

    if db_url.startswith("sqlite"):
        cli("backup", str(tmp_path / "fresh.db"), config=config)
        _sql(db_url, f"UPDATE backup_record SET schema_version = {NEWEST - 2}")  # taken before an earlier upgrade
        assert "from before a schema change" in _refused(config)
        _sql(db_url, "DELETE FROM backup_record")
        cli("backup", str(tmp_path / "fresh2.db"), config=config)
        assert cli("migrate", config=config).stdout.startswith("applied: ")
        assert cli("migrate", config=config).stdout.strip() == "database is up to date"


def test_version_prints_the_installed_distributions_version(tmp_path):
    out = subprocess.run([FLASHFUSION, "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"flashfusion {metadata.version('flashfusion')}"
