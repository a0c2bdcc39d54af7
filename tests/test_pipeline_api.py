"""The spec's pipeline API against the app in-process, with a worker driven by the test."""

from __future__ import annotations

import threading
import time

from testkit.drive import run_until_done

from flashfusion.core.storage.db import database
from flashfusion.core.storage.models import Event, Run
from flashfusion.core.worker import Worker


def trigger(client, key, **body):
    headers = {"X-API-Key": key}
    return client.simulate_post("/api/trigger-pipeline", json=body, headers=headers)


def status(client, key, run_id, **params):
    return client.simulate_get("/api/get-status", params={"run_id": run_id, **params}, headers={"X-API-Key": key})


def test_trigger_then_status_reaches_success_with_steps(client, gateway, key):
    answer = trigger(client, key, pipeline_id="demo")
    assert answer.status_code == 200
    body = answer.json
    assert body["success"] is True and body["status"] == "running" and body["workflow_id"] == "demo"
    assert body["run_id"].startswith("run_")

    run_until_done(gateway, body["run_id"])
    run = status(client, key, body["run_id"]).json["run"]
    assert run["status"] == "success" and run["conclusion"] == "success" and run["phase"] == "completed"
    assert [s["name"] for s in run["steps"]] == ["lint", "test"]
    assert all(s["status"] == "success" and s["exit_code"] == 0 for s in run["steps"])
    assert all(s["duration_seconds"] is not None and s["started_at"] and s["completed_at"] for s in run["steps"])
    assert isinstance(run["duration_seconds"], int)
    assert run["steps"][1]["log_tail"].strip() == "testing main"


def test_failing_step_fails_the_run_and_is_named(client, gateway, key):
    run_id = trigger(client, key, pipeline_id="broken").json["run_id"]
    run_until_done(gateway, run_id)
    run = status(client, key, run_id).json["run"]
    assert run["status"] == "failed" and run["conclusion"] == "failure"
    assert run["failed_step"] == "unit-tests"
    steps = {s["name"]: s for s in run["steps"]}
    assert steps["unit-tests"]["exit_code"] == 3
    assert "AssertionError: 2 != 3" in steps["unit-tests"]["log_tail"]
    assert steps["deploy"]["status"] == "skipped"


def test_branch_and_inputs_reach_the_steps_as_environment_only(client, gateway, key):
    injection = "$(touch pwned); `touch pwned2`"
    run_id = trigger(client, key, pipeline_id="demo", branch="feature/x-1", inputs={"greeting": injection}).json[
        "run_id"
    ]
    run = run_until_done(gateway, run_id)
    assert run.steps[1]["log_tail"].strip() == f"testing feature/x-1 {injection}"
    workdir = gateway.providers.get("local").base / run_id
    assert not (workdir / "pwned").exists() and not (workdir / "pwned2").exists()


def test_events_are_written_once_per_transition(client, gateway, key):
    ok = trigger(client, key, pipeline_id="demo").json["run_id"]
    bad = trigger(client, key, pipeline_id="broken").json["run_id"]
    worker = Worker(gateway, worker_id="w")
    run_until_done(gateway, ok, worker=worker)
    run_until_done(gateway, bad, worker=worker)
    for _ in range(5):
        worker.tick()
    with database.connection_context():
        events = sorted((e.run_id == ok, e.event_type) for e in Event.select())
        completed = Event.get((Event.run_id == ok) & (Event.event_type == "run.completed"))
    assert events == [(False, "run.failed"), (False, "run.started"), (True, "run.completed"), (True, "run.started")]
    assert completed.payload["run_id"] == ok and completed.payload["status"] == "success"
    assert completed.payload["duration"].endswith("s")


def test_runs_list_filters_and_paginates_newest_first(client, gateway, key):
    ids = [trigger(client, key, pipeline_id="demo").json["run_id"] for _ in range(5)]
    broken = trigger(client, key, pipeline_id="broken").json["run_id"]
    run_until_done(gateway, broken)
    headers = {"X-API-Key": key}
    seen, cursor = [], None
    while True:
        params = {"pipeline_id": "demo", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.simulate_get("/api/runs", params=params, headers=headers).json
        seen += [r["id"] for r in page["runs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    failed = client.simulate_get("/api/runs", params={"status": "failed"}, headers=headers).json["runs"]
    assert [r["id"] for r in failed] == [broken]


def test_cancel_run_stops_the_running_step(client, gateway, key):
    run_id = trigger(client, key, pipeline_id="slow").json["run_id"]
    worker = Worker(gateway, worker_id="w")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        worker.tick()
        with database.connection_context():
            steps = Run.get_by_id(run_id).steps
        if any(s["name"] == "sleepy" and s["status"] == "running" for s in steps):
            break
        time.sleep(0.05)
    answer = client.simulate_post("/api/cancel-run", json={"run_id": run_id}, headers={"X-API-Key": key})
    assert answer.status_code == 200 and answer.json["run"]["cancel_requested"] is True
    run = run_until_done(gateway, run_id, worker=worker, timeout=10)
    assert run.status == "failed" and run.conclusion == "cancelled"
    assert {s["name"]: s["status"] for s in run.steps} == {"first": "success", "sleepy": "cancelled", "last": "skipped"}


def test_cancel_before_dispatch_ends_the_run(client, gateway, key):
    run_id = trigger(client, key, pipeline_id="slow").json["run_id"]
    client.simulate_post("/api/cancel-run", json={"run_id": run_id}, headers={"X-API-Key": key})
    run = run_until_done(gateway, run_id, timeout=5)
    assert (run.status, run.conclusion, run.steps) == ("failed", "cancelled", [])


def test_idempotency_key_returns_the_same_run(client, gateway, key):
    headers = {"X-API-Key": key, "Idempotency-Key": "ci-123-1"}
    first = client.simulate_post("/api/trigger-pipeline", json={"pipeline_id": "demo"}, headers=headers)
    second = client.simulate_post("/api/trigger-pipeline", json={"pipeline_id": "demo"}, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json["run_id"] == second.json["run_id"]
    assert second.headers.get("Idempotent-Replayed") == "true"
    other = client.simulate_post(
        "/api/trigger-pipeline", json={"pipeline_id": "demo", "branch": "dev"}, headers=headers
    )
    assert other.status_code == 422 and other.json["error"] == "Idempotency-Key reused"
    with database.connection_context():
        assert Run.select().count() == 1


def test_idempotency_key_is_scoped_per_api_key(client, make_key):
    a, b = make_key(), make_key()
    runs = {
        client.simulate_post(
            "/api/trigger-pipeline", json={"pipeline_id": "demo"}, headers={"X-API-Key": k, "Idempotency-Key": "same"}
        ).json["run_id"]
        for k in (a, b)
    }
    assert len(runs) == 2


def test_idempotency_key_in_flight_answers_409(client, gateway, key):
    from flashfusion.core.access.keycheck import authenticate
    from flashfusion.core.runs import idempotency
    from flashfusion.core.storage.db import utcnow

    with database.connection_context():
        actor, _ = authenticate(key, limit=1000, now=utcnow())
        body = {"pipeline_id": "demo", "branch": "main", "inputs": {}}
        assert idempotency.claim(actor.key_id, "busy", idempotency.request_hash(body)) is None
    answer = client.simulate_post(
        "/api/trigger-pipeline", json={"pipeline_id": "demo"}, headers={"X-API-Key": key, "Idempotency-Key": "busy"}
    )
    assert answer.status_code == 409 and set(answer.json) == {"error", "message"}


def test_long_poll_returns_when_the_run_changes(client, gateway, key):
    run_id = trigger(client, key, pipeline_id="demo").json["run_id"]
    version = status(client, key, run_id).json["run"]["version"]

    def later():
        time.sleep(0.5)
        run_until_done(gateway, run_id)

    thread = threading.Thread(target=later)
    thread.start()
    answer = status(client, key, run_id, wait=30, version=version).json["run"]
    thread.join()
    # Only a wake-up on a change re-reads the run; a wait that ran out answers the old version.
    assert answer["version"] != version


def test_long_poll_on_finished_run_answers_at_once(client, gateway, key):
    run_id = trigger(client, key, pipeline_id="demo").json["run_id"]
    run_until_done(gateway, run_id)
    answer = status(client, key, run_id, wait=60)
    assert answer.status_code == 200 and answer.json["run"]["status"] == "success"


def test_get_config_matches_the_spec_and_holds_no_secret(client, key):
    answer = client.simulate_get("/api/get-config", params={"pipeline_id": "demo"}, headers={"X-API-Key": key})
    config = answer.json["config"]
    for field in (
        "id",
        "name",
        "provider",
        "project_type",
        "repository_name",
        "branch",
        "triggers",
        "build_command",
        "quality_gates",
    ):
        assert field in config
    assert config["provider"] == "local" and config["repository_name"] == "local/demo"
    assert "database_url" not in answer.text and "flashfusion.db" not in answer.text


def test_a_bad_input_is_named_in_the_answer(client, key):
    cases = [
        ({"GOOD": "x", "bad name": "y"}, "'bad name'"),
        ({"A": 5}, "input 'A' must be a string"),
        ({"LONG": "x" * 9000}, "input 'LONG' is longer than 8192 characters"),
    ]
    for inputs, named in cases:
        answer = trigger(client, key, pipeline_id="demo", inputs=inputs)
        assert answer.status_code == 400, inputs
        assert answer.json["error"] == "Invalid parameter" and named in answer.json["message"], answer.json
