"""get-status answers an unchanged run from memory (``runs.runcache``): one read of the run
however often it is asked, and the change a transition commits in the very next answer."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import pytest

from flashfusion.core.runs import runcache, transitions
from flashfusion.core.storage.db import after_commit, database, write_tx
from flashfusion.core.storage.models import Run
from flashfusion.plugins import RunSnapshot


def run_reads(records: list[logging.LogRecord]) -> int:
    """SELECTs of the run table among peewee's query log records."""
    return sum(1 for r in records if str(r.msg).startswith("('SELECT") and 'FROM "run"' in str(r.msg))


def listening() -> bool:
    """Whether this process may remember runs (on PostgreSQL: its listener is connected)."""
    return runcache.state().cache.stamp.current() is not None


def test_get_status_reads_an_unchanged_run_once_and_a_changed_one_again(client, key, caplog, monkeypatch, backend):
    monkeypatch.setattr(runcache, "seconds", 60.0)  # only a change may end what is remembered
    headers = {"X-API-Key": key}
    run_id = client.simulate_post("/api/trigger-pipeline", json={"pipeline_id": "slow"}, headers=headers).json["run_id"]
    deadline = time.monotonic() + 10
    while not listening() and time.monotonic() < deadline:
        time.sleep(0.05)

    def status() -> dict:
        answer = client.simulate_get("/api/get-status", params={"run_id": run_id}, headers=headers)
        assert answer.status_code == 200
        return answer.json["run"]

    with caplog.at_level(logging.DEBUG, logger="peewee"):
        answers = [status() for _ in range(20)]
    assert run_reads(caplog.records) == 1
    assert all(a == answers[0] for a in answers) and not answers[0]["cancel_requested"]

    cancelled = client.simulate_post("/api/cancel-run", json={"run_id": run_id}, headers=headers)
    assert cancelled.status_code == 200
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="peewee"):
        assert status()["cancel_requested"] is True
        assert status()["version"] == answers[0]["version"] + 1
    # on PostgreSQL the process's own NOTIFY of the change, arriving later, ends it once more
    assert 1 <= run_reads(caplog.records) <= (2 if backend == "postgresql" else 1)

    with database.connection_context():
        transitions.fail_run(run_id, "cancelled", "cancelled before dispatch")
    assert status()["status"] == "failed"


def test_a_run_outside_the_keys_scope_stays_hidden_when_remembered(client, make_key):
    everything = {"X-API-Key": make_key()}
    demo_only = {"X-API-Key": make_key(pipelines=("demo",))}
    run_id = client.simulate_post("/api/trigger-pipeline", json={"pipeline_id": "slow"}, headers=everything).json[
        "run_id"
    ]
    for _ in range(2):
        assert client.simulate_get("/api/get-status", params={"run_id": run_id}, headers=everything).status_code == 200
        answer = client.simulate_get("/api/get-status", params={"run_id": run_id}, headers=demo_only)
        assert answer.status_code == 404


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_after_commit_waits_for_the_outermost_commit_and_forgets_a_rollback(gateway):
    done: list[str] = []
    with database.connection_context():
        with write_tx():
            with write_tx():
                after_commit(lambda: done.append("inner"))
            assert done == []
        assert done == ["inner"]
        with pytest.raises(RuntimeError):
            with write_tx():
                after_commit(lambda: done.append("rolled back"))
                raise RuntimeError("boom")
        with write_tx():
            pass
        after_commit(lambda: done.append("outside"))
    assert done == ["inner", "outside"]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_remembered_running_run_still_counts_its_duration(client, key, monkeypatch):
    monkeypatch.setattr(runcache, "seconds", 60.0)
    headers = {"X-API-Key": key}
    run_id = client.simulate_post("/api/trigger-pipeline", json={"pipeline_id": "slow"}, headers=headers).json["run_id"]
    with database.connection_context():
        started = datetime.now(UTC) - timedelta(seconds=100)
        assert transitions.apply_snapshot(
            RunSnapshot(run_id=run_id, status="running", phase="in_progress", started_at=started)
        )

    def duration() -> int:
        return client.simulate_get("/api/get-status", params={"run_id": run_id}, headers=headers).json["run"][
            "duration_seconds"
        ]

    first = duration()
    time.sleep(1.1)
    assert first + 1 <= duration() <= first + 2


def test_a_full_cache_keeps_what_is_fresh_and_stays_bounded(monkeypatch):
    monkeypatch.setattr(runcache, "MAX_ENTRIES", 3)
    cache = runcache.RunCache(runcache.CountedStamp())
    stamp = cache.stamp.current()
    old, kept = Run(id="run_old"), Run(id="run_kept")
    cache.put(old, stamp, seconds=0.01)
    cache.put(kept, stamp, seconds=60)
    cache.put(Run(id="run_third"), stamp, seconds=60)
    time.sleep(0.02)
    cache.put(Run(id="run_fourth"), stamp, seconds=60)  # full: the stale entry makes room
    assert cache.get("run_kept") is kept and cache.get("run_fourth") is not None
    assert "run_old" not in cache._entries
    for n in range(10):
        cache.put(Run(id=f"run_{n}"), stamp, seconds=60)
    assert len(cache._entries) <= 3
