"""trigger-pipelines and get-group: runs started together, followed as one."""

from __future__ import annotations

import time

from flashfusion.core.storage.db import database
from flashfusion.core.storage.models import Event
from flashfusion.core.worker import Worker


def drive(gateway, client, key, group_id, timeout=60):
    """Run the worker in this process until the group has ended."""
    worker = Worker(gateway, worker_id="test-worker")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.tick()
        group = client.simulate_get("/api/get-group", params={"group_id": group_id}, headers={"X-API-Key": key}).json[
            "group"
        ]
        if group["status"] != "running":
            return group
        time.sleep(0.1)
    raise AssertionError("the group did not end")


def test_a_group_with_one_failing_member(gateway, client, key, make_key):
    headers = {"X-API-Key": key, "Idempotency-Key": "group-1"}
    body = {"runs": [{"pipeline_id": "demo"}, {"pipeline_id": "broken"}, {"pipeline_id": "demo", "branch": "dev"}]}
    answer = client.simulate_post("/api/trigger-pipelines", json=body, headers=headers)
    assert answer.status_code == 200, answer.json
    group_id = answer.json["group_id"]
    assert [r["pipeline_id"] for r in answer.json["runs"]] == ["demo", "broken", "demo"]
    again = client.simulate_post("/api/trigger-pipelines", json=body, headers=headers)
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json["group_id"] == group_id
    assert [r["run_id"] for r in again.json["runs"]] == [r["run_id"] for r in answer.json["runs"]]

    group = drive(gateway, client, key, group_id)
    broken = answer.json["runs"][1]["run_id"]
    assert group["status"] == "failed" and group["failed_runs"] == [broken]
    assert [r["status"] for r in group["runs"]] == ["success", "failed", "success"]
    assert all(r["group_id"] == group_id for r in group["runs"])
    with database.connection_context():
        [event] = Event.select().where(Event.event_type == "group.completed")
    assert event.payload["status"] == "failed" and event.payload["failed_runs"] == [broken]

    scoped = make_key(pipelines=["demo"])
    shown = client.simulate_get("/api/get-group", params={"group_id": group_id}, headers={"X-API-Key": scoped})
    assert [r["pipeline_id"] for r in shown.json["group"]["runs"]] == ["demo", "demo"]
    other = make_key(pipelines=["slow"])
    assert (
        client.simulate_get("/api/get-group", params={"group_id": group_id}, headers={"X-API-Key": other}).status_code
        == 404
    )


def test_group_members_are_checked_before_any_run_starts(client, make_key):
    scoped = make_key(pipelines=["demo"])
    body = {"runs": [{"pipeline_id": "demo"}, {"pipeline_id": "broken"}]}
    refused = client.simulate_post("/api/trigger-pipelines", json=body, headers={"X-API-Key": scoped})
    assert refused.status_code == 404 and refused.json["error"] == "Pipeline not found"
    reader = make_key(permissions=["read_runs"])
    assert client.simulate_post("/api/trigger-pipelines", json=body, headers={"X-API-Key": reader}).status_code == 403
    too_many = {"runs": [{"pipeline_id": "demo"}] * 51}
    answer = client.simulate_post("/api/trigger-pipelines", json=too_many, headers={"X-API-Key": make_key()})
    assert answer.status_code == 400 and "1 to 50" in answer.json["message"]
    with database.connection_context():
        assert not Event.select().exists()
    runs = client.simulate_get("/api/runs", headers={"X-API-Key": make_key()}).json["runs"]
    assert runs == []
