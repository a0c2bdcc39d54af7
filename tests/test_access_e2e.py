"""Access control against a real ``flashfusion serve``: sessions, the key lifecycle over
HTTP, rate limits shared by several gunicorn workers, and no secret at rest or in a log."""

from __future__ import annotations

import json
import math
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from conftest import write_config
from testkit.server import cli, cli_key, start_server, wait_for

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery staple"


def test_1100_requests_over_32_connections_on_4_workers_stay_within_1000(tmp_path, db_url):
    """Four processes lease slices of one key's budget: together they never let more through
    than GCRA allows, strand at most a handful of cells, and after a flush ``usage_count``
    is exactly what they let through."""
    config = write_config(tmp_path, db_url)
    server = start_server(config, tmp_path, "--workers", "4")
    try:
        writer = cli_key(config, "trigger_pipeline", name="w")
        reader = cli_key(config, "read_runs", name="r")
        with server.client(writer) as http:
            run_id = http.post("/api/trigger-pipeline", json={"pipeline_id": "demo"}).json()["run_id"]

        def hammer(count: int) -> list[httpx.Response]:
            with httpx.Client(base_url=server.url, headers={"X-API-Key": reader}, timeout=60) as http:
                return [http.get("/api/get-status", params={"run_id": run_id}) for _ in range(count)]

        shares = [1100 // 32 + (1 if i < 1100 % 32 else 0) for i in range(32)]
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=32) as pool:
            answers = [a for batch in pool.map(hammer, shares) for a in batch]
        elapsed = time.monotonic() - started
        codes = [a.status_code for a in answers]
        allowed = codes.count(200)
        assert len(codes) == 1100 and set(codes) == {200, 429}
        # GCRA frees one request every 3.6 s: a burst that outlasts that may rightly pass more.
        refills = math.floor(elapsed / 3.6)
        assert 995 <= allowed <= 1000 + refills, f"{allowed} allowed in {elapsed:.2f} s"
        for answer in answers:
            assert answer.headers["X-RateLimit-Limit"] == "1000"
            assert 0 <= int(answer.headers["X-RateLimit-Remaining"]) <= 999
            assert answer.headers["RateLimit-Policy"] == '"default";q=1000;w=3600'
        refused = [a for a in answers if a.status_code == 429]
        assert all(int(a.headers["Retry-After"]) >= 1 and a.headers["X-RateLimit-Remaining"] == "0" for a in refused)
        assert set(refused[0].json()) == {"error", "message"}

        def usage() -> int:
            listed = json.loads(cli("keys", "list", "--json", config=config).stdout)
            return {k["name"]: k["usage_count"] for k in listed}["r"]

        deadline = time.monotonic() + 30  # the workers flush every second
        while usage() != allowed and time.monotonic() < deadline:
            time.sleep(0.3)
        assert usage() == allowed
    finally:
        server.process.stop()


def dump_database(db_url: str) -> str:
    """Every row of every table, as text."""
    from flashfusion.core.storage import db as dbmod

    database = dbmod.open_database(db_url)
    out = []
    with database.connection_context():
        for table in database.get_tables():
            for row in database.execute_sql(f'SELECT * FROM "{table}"').fetchall():
                out.append(repr(row))
    return "\n".join(out)


def test_people_and_keys_over_http_and_no_secret_at_rest_or_in_logs(tmp_path, db_url):
    config = write_config(tmp_path, db_url)
    server = start_server(config, tmp_path)
    secrets = [PASSWORD]
    try:
        cli("users", "create", "ops", "--admin", "--password-stdin", config=config, input=PASSWORD + "\n")
        with httpx.Client(base_url=server.url, timeout=30) as browser:
            login = browser.post("/functions/login", json={"username": "ops", "password": PASSWORD})
            assert login.status_code == 200
            session_token = login.cookies["ff_session"]
            csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
            secrets += [session_token, login.json()["csrf_token"]]
            made = browser.post(
                "/functions/createAPIKey",
                headers=csrf,
                json={"name": "deploy", "permissions": ["trigger_pipeline", "read_runs"], "pipeline_ids": ["demo"]},
            ).json()
            key = made["plaintext_key"]
            secrets.append(key)
            with server.client(key) as http:
                assert http.post("/api/trigger-pipeline", json={"pipeline_id": "demo"}).status_code == 200
                assert http.post("/api/trigger-pipeline", json={"pipeline_id": "broken"}).status_code == 404
                assert http.get("/api/get-config", params={"pipeline_id": "demo"}).status_code == 403
            rotated = browser.post("/functions/rotateAPIKey", headers=csrf, json={"id": made["id"]}).json()
            secrets.append(rotated["plaintext_key"])
            for k in (key, rotated["plaintext_key"]):
                assert httpx.get(f"{server.url}/api/runs", headers={"X-API-Key": k}).status_code == 200
            assert browser.post("/functions/revokeAPIKey", headers=csrf, json={"id": made["id"]}).status_code == 200
            # the other gunicorn process may trust its cached check for key_cache_seconds (1)
            for k in (key, rotated["plaintext_key"]):
                wait_for(
                    lambda k=k: httpx.get(f"{server.url}/api/runs", headers={"X-API-Key": k}).status_code == 401,
                    timeout=3,
                    what="the revoked key refused by every process",
                )
            short = browser.post(
                "/functions/createAPIKey",
                headers=csrf,
                json={"name": "short", "permissions": ["read_runs"], "expires_in_days": 1},
            ).json()
            secrets.append(short["plaintext_key"])
            assert httpx.get(f"{server.url}/api/runs", headers={"X-API-Key": short["plaintext_key"]}).status_code == 200
            from flashfusion.core.storage import db as dbmod
            from flashfusion.core.storage.models import ApiKey

            with dbmod.open_database(db_url).connection_context():  # a day passes
                ApiKey.update(expires_at=ApiKey.created_at).where(ApiKey.id == short["id"]).execute()
            wait_for(
                lambda: (
                    httpx.get(f"{server.url}/api/runs", headers={"X-API-Key": short["plaintext_key"]}).status_code
                    == 401
                ),
                timeout=3,
                what="the expired key refused once the cached check is older than 1 s",
            )
            browser.post("/functions/login", json={"username": "ops", "password": "wrong " + PASSWORD})
            assert browser.post("/functions/logout", headers=csrf).status_code == 200
        audit = json.loads(cli("audit", "--json", config=config).stdout)
        assert {"key.created", "key.rotated", "key.revoked", "user.created"} <= {e["action"] for e in audit}
    finally:
        server.process.stop()
    stored = dump_database(db_url)
    logs = server.process.output() + "".join(p.read_text() for p in tmp_path.glob("*.log"))
    for secret in secrets:
        assert secret not in stored, "a secret is stored in plaintext"
        assert secret not in logs, "a secret reached a log"
    if db_url.startswith("sqlite"):
        raw = b"".join(p.read_bytes() for p in tmp_path.glob("flashfusion.db*"))
        for secret in secrets:
            assert secret.encode() not in raw


COUNT_KEY_WRITES = {
    "sqlite": [
        "CREATE TABLE key_writes (n INTEGER NOT NULL)",
        "INSERT INTO key_writes VALUES (0)",
        "CREATE TRIGGER count_key_writes AFTER UPDATE ON api_key BEGIN UPDATE key_writes SET n = n + 1; END",
    ],
    "postgresql": [
        "DROP TABLE IF EXISTS key_writes",
        "CREATE TABLE key_writes (n bigint NOT NULL)",
        "INSERT INTO key_writes VALUES (0)",
        "CREATE OR REPLACE FUNCTION count_key_writes() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN UPDATE key_writes SET n = n + 1; RETURN NULL; END $$",
        "CREATE TRIGGER count_key_writes AFTER UPDATE ON api_key FOR EACH STATEMENT "
        "EXECUTE FUNCTION count_key_writes()",
    ],
}


def test_1000_authenticated_requests_write_per_flush_not_per_request(tmp_path, db_url, backend):
    """The key's row is written a bounded number of times per process and flush interval
    (leases and flushes), however many requests there are; a trigger counts the UPDATEs."""
    from flashfusion.core.storage import db as dbmod

    config = write_config(tmp_path, db_url, "[rate_limits]\napi_requests_per_hour = 1000000\n")
    workers, flush_seconds = 2, 1.0
    server = start_server(config, tmp_path, "--no-worker", "--workers", str(workers))
    database = dbmod.open_database(db_url)
    try:
        key = cli_key(config, "read_config")
        with database.connection_context():
            for statement in COUNT_KEY_WRITES[backend]:
                database.execute_sql(statement)

        def hammer(count: int) -> list[int]:
            with httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=60) as http:
                return [http.get("/api/get-config", params={"pipeline_id": "demo"}).status_code for _ in range(count)]

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            codes = [c for batch in pool.map(hammer, [125] * 8) for c in batch]
        elapsed = time.monotonic() - started
        assert codes == [200] * 1000

        def counted() -> tuple[int, int]:
            with database.connection_context():
                usage = database.execute_sql("SELECT usage_count FROM api_key").fetchone()[0]
                return usage, database.execute_sql("SELECT n FROM key_writes").fetchone()[0]

        deadline = time.monotonic() + 30
        while counted()[0] != 1000 and time.monotonic() < deadline:
            time.sleep(0.2)
        usage, writes = counted()
        assert usage == 1000
        flushes = math.ceil((time.monotonic() - started) / flush_seconds) + 1
        # per process and interval: a flush, and leases whose slices grow fourfold while they run out
        assert writes <= workers * (2 * flushes + 8), f"{writes} writes in {elapsed:.1f} s"
        assert writes < 100
    finally:
        server.process.stop()
        if backend == "postgresql":
            with database.connection_context():
                database.execute_sql("DROP TABLE IF EXISTS key_writes")
                database.execute_sql("DROP FUNCTION IF EXISTS count_key_writes() CASCADE")
        database.close()


def test_a_graceful_stop_writes_the_counts_and_returns_the_unused_budget(tmp_path, db_url):
    """With flushes an hour apart, only the final flush of each gunicorn process can write
    the counts: after SIGTERM, usage_count is exact and no leased cell is left out."""
    from flashfusion.core.access.ratelimit import Decision, sql_now
    from flashfusion.core.storage import db as dbmod

    config = write_config(tmp_path, db_url, "[auth]\nusage_flush_seconds = 3600\n")
    server = start_server(config, tmp_path, "--no-worker", "--workers", "2")
    try:
        key = cli_key(config, "read_config")
        with ThreadPoolExecutor(max_workers=4) as pool:
            codes = list(
                pool.map(
                    lambda _: (
                        httpx.get(
                            server.url + "/api/get-config",
                            params={"pipeline_id": "demo"},
                            headers={"X-API-Key": key},
                            timeout=30,
                        ).status_code
                    ),
                    range(60),
                )
            )
        assert codes == [200] * 60
    finally:
        assert server.process.stop() == 0
    database = dbmod.open_database(db_url)
    with database.connection_context():
        usage, tat, now = database.execute_sql(f"SELECT usage_count, rl_tat, {sql_now()} FROM api_key").fetchone()
    database.close()
    assert usage == 60
    # the bucket holds what 60 requests left of 1000, not less: every unused cell came back
    assert Decision(allowed=True, limit=1000, period=3600.0, tat=float(tat), now=float(now)).remaining >= 940
