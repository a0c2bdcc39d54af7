"""Logs and metrics of a real ``flashfusion serve`` after a scripted session: a login, a key,
a webhook endpoint, a run that succeeds and one that fails, a refused request."""

from __future__ import annotations

import json
import signal
import uuid

import httpx
import pytest
from conftest import write_config
from prometheus_client.parser import text_string_to_metric_families
from testkit.receiver import Receiver
from testkit.server import cli, cli_key, start_server, wait_for

pytestmark = pytest.mark.e2e
PASSWORD = "observability horse battery"
METRICS_TOKEN = "metrics-token-" + "x" * 24
ENV = {"FF_METRICS_TOKEN": METRICS_TOKEN}


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of a Prometheus exposition, parsed by prometheus_client's own parser."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(parsed: dict, name: str, **labels: str) -> float:
    return parsed.get((name, tuple(sorted(labels.items()))), 0.0)


def access_lines(log: str, fmt: str) -> list[dict]:
    """The access lines of the log as dicts with at least request_id and status."""
    found = []
    for line in log.splitlines():
        if fmt == "json":
            if line.startswith("{") and json.loads(line)["logger"] == "flashfusion.access":
                found.append(json.loads(line))
        elif " flashfusion.access: " in line:
            fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
            found.append({"request_id": fields["request_id"], "line": line})
    return found


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_session_leaves_access_lines_lifecycle_and_moving_counters(tmp_path, db_url, fmt):
    with Receiver() as rx:
        config = write_config(
            tmp_path,
            db_url,
            f"""
            [webhooks]
            allow_http = true
            allow_private_networks = true

            [logging]
            format = "{fmt}"

            [metrics]
            token_env = "FF_METRICS_TOKEN"
            """,
        )
        server = start_server(config, tmp_path, env=ENV)
        sent: list[str] = []  # the request id of every request this test makes

        def call(http: httpx.Client, method: str, path: str, **kw) -> httpx.Response:
            rid = uuid.uuid4().hex
            sent.append(rid)
            return http.request(method, path, headers={"X-Request-ID": rid, **kw.pop("headers", {})}, **kw)

        def scrape(http: httpx.Client) -> dict:
            answer = call(http, "GET", "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
            assert answer.status_code == 200
            return samples(answer.text)

        try:
            cli("users", "create", "ops", "--admin", "--password-stdin", config=config, input=PASSWORD + "\n", env=ENV)
            key = cli_key(config, name="obs", env=ENV)
            cli("webhooks", "create", "--url", rx.url(), "--events", "run.completed,run.failed", config=config, env=ENV)
            with httpx.Client(base_url=server.url, timeout=30) as http:
                before = scrape(http)
                login = call(http, "POST", "/functions/login", json={"username": "ops", "password": PASSWORD})
                assert login.status_code == 200
                session = login.cookies["ff_session"]
                assert call(http, "GET", "/metrics").status_code == 401  # no token
                keyed = {"X-API-Key": key}
                runs = {
                    name: call(http, "POST", "/api/trigger-pipeline", headers=keyed, json={"pipeline_id": name}).json()[
                        "run_id"
                    ]
                    for name in ("demo", "broken")
                }
                polls = 0

                def finished(run_id: str) -> bool:
                    nonlocal polls
                    polls += 1
                    answer = call(http, "GET", "/api/get-status", headers=keyed, params={"run_id": run_id})
                    return answer.json()["run"]["status"] != "running"

                for run_id in runs.values():
                    wait_for(lambda run_id=run_id: finished(run_id), what=f"{run_id} to finish")
                assert (
                    call(http, "GET", "/api/get-status", headers=keyed, params={"run_id": "run_nope"}).status_code
                    == 404
                )
                assert (
                    call(
                        http,
                        "GET",
                        "/api/get-status",
                        headers={"X-API-Key": "ffai_" + "0" * 40},
                        params={"run_id": runs["demo"]},
                    ).status_code
                    == 401
                )
                rx.wait_for(lambda r: len(r.ids()) >= 2)
                after = wait_for(
                    lambda: (
                        lambda s: (
                            s if value(s, "flashfusion_webhook_deliveries_total", result="succeeded") >= 2 else None
                        )
                    )(scrape(http)),
                    what="the worker's delivery counts",
                )
        finally:
            assert server.process.stop(signal.SIGTERM) == 0

    requests = "flashfusion_http_requests_total"
    moved = {
        labels: after[(name, labels)] - before.get((name, labels), 0.0) for (name, labels) in after if name == requests
    }
    assert moved[(("method", "POST"), ("route", "/api/trigger-pipeline"), ("status", "200"))] == 2
    assert moved[(("method", "GET"), ("route", "/api/get-status"), ("status", "200"))] == polls
    assert moved[(("method", "GET"), ("route", "/api/get-status"), ("status", "404"))] == 1
    assert moved[(("method", "GET"), ("route", "/api/get-status"), ("status", "401"))] == 1
    assert moved[(("method", "POST"), ("route", "/functions/login"), ("status", "200"))] == 1
    assert moved[(("method", "GET"), ("route", "/metrics"), ("status", "401"))] == 1
    assert (
        value(after, "flashfusion_provider_requests_total", provider="local", operation="dispatch")
        - value(before, "flashfusion_provider_requests_total", provider="local", operation="dispatch")
        == 2
    )
    assert value(after, "flashfusion_runs", provider="local", status="success") == 1
    assert value(after, "flashfusion_runs", provider="local", status="failed") == 1
    assert value(after, "flashfusion_queue_depth", queue="runs") == 0
    ticks = "flashfusion_worker_tick_seconds_count"
    assert value(after, ticks) > value(before, ticks)
    assert (
        value(after, "flashfusion_http_request_duration_seconds_count", method="GET", route="/api/get-status")
        >= polls + 2
    )

    log = server.process.output()
    lines = access_lines(log, fmt)
    by_id = {rid: [entry for entry in lines if entry["request_id"] == rid] for rid in sent}
    assert all(len(found) == 1 for found in by_id.values()), {rid: len(f) for rid, f in by_id.items() if len(f) != 1}
    if fmt == "json":
        trigger = next(e for e in lines if e["route"] == "/api/trigger-pipeline")
        assert trigger["method"] == "POST" and trigger["status"] == 200 and trigger["caller"].startswith("key:...")
        assert isinstance(trigger["duration_ms"], float)
        # every line a process of the gateway logged is JSON: the app's, the worker's and gunicorn's
        logged = [line for line in log.splitlines() if line.startswith("{")]
        assert any(json.loads(line)["logger"] == "gunicorn.error" for line in logged)
        assert not [line for line in log.splitlines() if " INFO " in line or " WARNING " in line]
    else:
        assert any(
            "[INFO] Booting worker" in line or "INFO gunicorn.error: Booting worker" in line
            for line in log.splitlines()
        )
    for run_id in runs.values():
        assert f"run {run_id} queued" in log and f"run {run_id} dispatched" in log
        assert f"run {run_id} finished" in log or f"run {run_id} failed" in log
    assert "conclusion failure" in log or "status failed" in log
    assert f"run {runs['broken']}) to endpoint" in log and "delivered" in log
    for secret in (key, PASSWORD, session, METRICS_TOKEN):
        assert secret not in log
