"""Test databases: a fresh SQLite file per test, or a shared PostgreSQL database emptied
before each test when ``FLASHFUSION_TEST_POSTGRES_URL`` is set."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flashfusion.core.storage import db as dbmod
from flashfusion.core.storage.migrations import MIGRATIONS, migrate


def require_tool(available: bool, what: str) -> None:
    """Skip a test that needs a system tool on a developer machine without it; in CI (which
    installs every tool in .ci/run) a missing tool is a failure, never a silent skip."""
    import pytest

    if available:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing: .ci/run should have installed it")
    pytest.skip(f"{what} is not installed here (CI installs it)")


POSTGRES_URL = os.environ.get("FLASHFUSION_TEST_POSTGRES_URL")
#: Every backend a test runs on; one without a database shows as skipped (failed in CI), see ``require_backend``.
BACKENDS = ["sqlite", "postgresql"]
AVAILABLE_BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


def require_backend(backend: str) -> None:
    """Skip a PostgreSQL test when no server is configured, saying so; in CI (.ci/run sets
    FLASHFUSION_TEST_POSTGRES_URL) a missing URL fails the test instead."""
    if backend == "postgresql" and not POSTGRES_URL:
        import pytest

        if os.environ.get("CI"):
            pytest.fail("FLASHFUSION_TEST_POSTGRES_URL is not set: .ci/run should have set it")
        pytest.skip("PostgreSQL: FLASHFUSION_TEST_POSTGRES_URL is not set (CI sets it in .ci/run)")


_migrated: set[str] = set()


def database_url(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'flashfusion.db'}"
    assert POSTGRES_URL
    return POSTGRES_URL


def fresh_database(url: str) -> None:
    """Open ``url``, bring it to the newest schema and remove every row."""
    database = dbmod.open_database(url)
    database.connect(reuse_if_open=True)
    if url not in _migrated or dbmod.is_sqlite(database):
        migrate(database)
        _migrated.add(url)
    if not dbmod.is_sqlite(database):
        tables = [t for t in database.get_tables() if t != "schema_migration"]
        if tables:
            database.execute_sql("TRUNCATE " + ", ".join(f'"{t}"' for t in tables))
    database.close()


@contextmanager
def newer_release_recorded(url: str) -> Iterator[int]:
    """Record in ``url``'s database the two migrations a newer FlashFusion would have applied
    (the versions this code does not know) and yield the newest; removed afterwards, because
    the PostgreSQL test database is shared by the whole run."""
    known = max(version for version, _, _ in MIGRATIONS)
    newer = (known + 1, known + 2)

    def execute(sql: str, params: tuple) -> None:
        database = dbmod.open_database(url)
        with database.connection_context():
            database.execute_sql(sql.replace("?", database.param), params)

    for version in newer:
        execute(
            "INSERT INTO schema_migration (version, name, applied_at) VALUES (?, ?, CURRENT_TIMESTAMP)",
            (version, f"future_{version}"),
        )
    try:
        yield newer[-1]
    finally:
        execute("DELETE FROM schema_migration WHERE version > ?", (known,))
