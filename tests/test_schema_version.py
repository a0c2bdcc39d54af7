"""The schema version against the code: a database migrated by a newer release is refused
by every command that opens it (a rollback must restore the backup taken before the
upgrade), and databases migrated by every released form of a migration end up alike."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from conftest import write_config
from testkit.db import database_url, newer_release_recorded
from testkit.server import FLASHFUSION, cli, free_port

from flashfusion.core.storage import db as dbmod
from flashfusion.core.storage import migration_steps, migrations

pytestmark = pytest.mark.e2e

KNOWN = max(version for version, _, _ in migrations.MIGRATIONS)


def _serve(config, tmp_path) -> subprocess.CompletedProcess:
    """``flashfusion serve`` as a real process; if it starts anyway, its whole process group
    (gunicorn, worker) is stopped after the timeout."""
    args = [FLASHFUSION, "--config", str(config), "serve", "--bind", f"127.0.0.1:{free_port()}"]
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, start_new_session=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)


def _refusal(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_serve_worker_migrate_and_cli_refuse_a_database_newer_than_the_code(tmp_path, db_url):
    config = write_config(tmp_path, db_url)
    with newer_release_recorded(db_url) as newer:
        serve = _serve(config, tmp_path)
        line = _refusal(serve)
        assert line == (
            f"flashfusion: the database schema is version {newer} but this FlashFusion knows up to "
            f"version {KNOWN}: upgrade FlashFusion or restore a backup taken before the upgrade"
        )
        assert "listening" not in serve.stdout  # gunicorn never started, so /readyz never answered
        for command in (["worker"], ["worker", "--once"], ["migrate"], ["keys", "list"], ["users", "list"]):
            line = _refusal(cli(*command, config=config, check=False))
            assert f"version {newer}" in line and f"up to version {KNOWN}" in line, (command, line)
        db = dbmod.open_database(db_url)
        with db.connection_context():  # refused before writing anything
            assert max(migrations.applied_versions(db)) == newer
        db.close()


def test_a_database_at_the_known_version_still_starts(tmp_path, db_url):
    config = write_config(tmp_path, db_url)
    assert cli("migrate", config=config).stdout.strip() == "database is up to date"
    assert cli("worker", "--once", config=config).returncode == 0


def _api_key_columns(db) -> list[tuple[str, str, bool, object]]:
    return sorted((c.name, c.data_type.lower(), c.null, c.default) for c in db.get_columns("api_key"))


# Migration 004 as released first; a later edit added "ALTER TABLE api_key DROP COLUMN rl_allowed".
def _released_m004(db) -> None:
    migration_steps.ddl(db, ["ALTER TABLE api_key ADD COLUMN rl_granted INTEGER NOT NULL DEFAULT 0"])


@pytest.mark.parametrize("m004", [_released_m004, migration_steps.m004_key_batches], ids=["as-released", "as-edited"])
def test_every_released_form_of_migration_4_ends_at_the_same_schema(tmp_path, monkeypatch, m004):
    """SQLite only: the PostgreSQL test database is shared by the run and must keep its schema."""
    (tmp_path / "fresh").mkdir()
    fresh = dbmod.open_database(database_url("sqlite", tmp_path / "fresh"))
    with fresh.connection_context():
        migrations.migrate(fresh)
        expected = _api_key_columns(fresh)
    fresh.close()
    assert "rl_allowed" not in {name for name, *_ in expected}

    (tmp_path / "old").mkdir()
    old = dbmod.open_database(database_url("sqlite", tmp_path / "old"))
    original = migrations.MIGRATIONS
    released = [(v, n, m004 if v == 4 else apply) for v, n, apply in original if v <= 4]
    with old.connection_context():
        monkeypatch.setattr(migrations, "MIGRATIONS", released)
        migrations.migrate(old)
        monkeypatch.setattr(migrations, "MIGRATIONS", original)
        had_rl_allowed = "rl_allowed" in {c.name for c in old.get_columns("api_key")}
        assert had_rl_allowed == (m004 is _released_m004)
        applied = migrations.migrate(old)
        assert applied and all(int(name[:3]) > 4 for name in applied)
        assert _api_key_columns(old) == expected
    old.close()
