"""Liveness and readiness as a probe, a stranger and an administrator see them, and the
SQLite files' permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from testkit.db import newer_release_recorded

from flashfusion.core.access.users import create_user
from flashfusion.core.storage import db as dbmod
from flashfusion.core.storage import migrations
from flashfusion.core.storage.db import database

PASSWORD = "correct horse battery staple"


def login(client, gateway, username: str, admin: bool) -> dict[str, str]:
    with database.connection_context():
        create_user(gateway.passwords, username, PASSWORD, admin=admin)
    answer = client.simulate_post("/functions/login", json={"username": username, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return {"ff_session": answer.cookies["ff_session"].value}


def test_readyz_tells_anonymous_callers_only_the_overall_status(client):
    answer = client.simulate_get("/readyz")
    assert answer.status_code == 200
    assert answer.json == {"success": True, "status": answer.json["status"]}
    assert answer.json["status"] in ("ready", "degraded")
    for pipeline_id in ("demo", "broken", "slow"):
        assert pipeline_id not in answer.text


def test_readyz_gives_details_to_an_administrator_only(client, gateway):
    admin = client.simulate_get("/readyz", cookies=login(client, gateway, "root", admin=True))
    assert admin.status_code == 200
    assert admin.json["checks"] == {"database": "ok"}
    assert set(admin.json["pipelines"]) == {"demo", "broken", "slow"}
    user = client.simulate_get("/readyz", cookies=login(client, gateway, "alice", admin=False))
    assert set(user.json) == {"success", "status"}
    stale = client.simulate_get("/readyz", cookies={"ff_session": "not-a-session"})
    assert stale.status_code == 200 and set(stale.json) == {"success", "status"}


def test_readyz_is_503_when_a_newer_release_migrated_the_database(client, gateway, db_url):
    cookies = login(client, gateway, "root", admin=True)
    with newer_release_recorded(db_url) as newer:
        anonymous = client.simulate_get("/readyz")
        admin = client.simulate_get("/readyz", cookies=cookies)
    assert anonymous.status_code == 503 and anonymous.json == {"success": False, "status": "not_ready"}
    assert admin.status_code == 503
    assert admin.json["checks"]["database"].startswith(
        f"the database schema is version {newer} but this FlashFusion knows up to version {migrations.newest_known()}"
    )


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_head_answers_like_get_without_a_body(client, path):
    get = client.simulate_get(path)
    head = client.simulate_head(path)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["Content-Type"] == get.headers["Content-Type"]


def test_sqlite_files_are_readable_by_their_owner_only(tmp_path: Path):
    path = tmp_path / "new" / "flashfusion.db"
    path.parent.mkdir()
    previous = os.umask(0o022)  # the usual umask, under which SQLite would create 0644 files
    try:
        db = dbmod.open_database(f"sqlite:///{path}")
        with db.connection_context():
            migrations.migrate(db)  # writes: the -wal and -shm files exist while connected
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.parent.iterdir()}
    finally:
        os.umask(previous)
        dbmod.database.close()
    assert {"flashfusion.db", "flashfusion.db-wal", "flashfusion.db-shm"} <= set(modes)
    assert modes == {name: 0o600 for name in modes}
