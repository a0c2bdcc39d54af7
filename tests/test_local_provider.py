"""The local provider below the HTTP layer: steps that cannot start, a runner thread that
dies or hangs, and a cancel that must survive a takeover."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from testkit.drive import run_until_done
from testkit.procs import run_processes

from flashfusion.core.runs import transitions as runs
from flashfusion.core.storage.db import database, to_db_time, utcnow
from flashfusion.core.storage.models import Run
from flashfusion.plugins import Pipeline, PipelineStep, RunRef
from flashfusion.providers.local.executor import Executor
from flashfusion.providers.local.provider import LocalProvider, LocalSettings


class Crash(BaseException):
    """Something nobody foresaw, escaping every ``except Exception``."""


def make_pipeline(*runs: str, timeout: int = 600) -> Pipeline:
    steps = tuple(PipelineStep(name=f"s{i}", run=run) for i, run in enumerate(runs))
    return Pipeline(id="p", name="p", provider="local", repository_name="local/p", steps=steps, timeout_seconds=timeout)


@pytest.fixture
def provider(tmp_path):
    provider = LocalProvider(LocalSettings(workdir=str(tmp_path / "runs")), env={"PATH": "/usr/bin:/bin"})
    yield provider
    provider.close()


def start(provider, pipeline, run_id="run_1", inputs=None):
    ref = RunRef(id=run_id, pipeline_id=pipeline.id, ref="main", inputs=inputs or {}, created_at=datetime.now(UTC))
    provider.dispatch(pipeline, ref, "main", inputs or {})
    return ref


def poll_until_done(provider, pipeline, ref, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for snapshot in provider.poll(pipeline, [ref]):
            if snapshot.terminal:
                return snapshot
        time.sleep(0.05)
    raise AssertionError("the run did not end")


@pytest.mark.parametrize("value, why", [("\ud800x", "not valid text"), ("a\0b", "NUL")])
def test_input_no_environment_can_hold_fails_the_step_with_reason(provider, value, why):
    pipeline = make_pipeline("echo one", "echo two")
    ref = start(provider, pipeline, inputs={"A": value})
    snapshot = poll_until_done(provider, pipeline, ref)
    assert (snapshot.status, snapshot.conclusion) == ("failed", "failure")
    assert [s.status for s in snapshot.steps] == ["failed", "skipped"]
    assert "could not start the step: FLASHFUSION_INPUT_A" in snapshot.steps[0].log_tail
    assert why in snapshot.steps[0].log_tail


def test_step_command_too_long_to_exec_fails_with_reason(provider):
    pipeline = make_pipeline("echo ok", "echo " + "x" * 200_000)
    snapshot = poll_until_done(provider, pipeline, start(provider, pipeline))
    assert [s.status for s in snapshot.steps] == ["success", "failed"]
    assert snapshot.steps[1].log_tail == "could not start the step: Argument list too long"


def crash_runner(monkeypatch, hold: threading.Event | None = None):
    def broken(self):
        if hold is not None:
            hold.wait(60)  # hangs, then ends quietly
            return
        raise Crash()

    monkeypatch.setattr(Executor, "_run_steps", broken)
    monkeypatch.setattr(threading, "excepthook", lambda args: None)


def test_run_whose_runner_thread_died_ends_failed_on_next_poll(provider, monkeypatch):
    crash_runner(monkeypatch)
    pipeline = make_pipeline("echo one", "echo two")
    snapshot = poll_until_done(provider, pipeline, start(provider, pipeline))
    assert (snapshot.status, snapshot.conclusion) == ("failed", "failure")
    assert [s.status for s in snapshot.steps] == ["failed", "skipped"]
    assert "stopped unexpectedly" in snapshot.steps[0].log_tail


def test_cancel_ends_run_whose_runner_thread_died(provider, monkeypatch):
    crash_runner(monkeypatch)
    pipeline = make_pipeline("echo one", "echo two")
    ref = start(provider, pipeline)
    provider._executors[ref.id].join(10)
    provider.cancel(pipeline, ref)
    snapshot = poll_until_done(provider, pipeline, ref)
    assert (snapshot.status, snapshot.conclusion) == ("failed", "cancelled")
    assert [s.status for s in snapshot.steps] == ["cancelled", "skipped"]


def test_timeout_ends_run_whose_runner_thread_hangs(provider, monkeypatch):
    hold = threading.Event()
    crash_runner(monkeypatch, hold)
    monkeypatch.setattr(Executor, "STOP_GRACE_SECONDS", 0.5)
    pipeline = make_pipeline("echo one", timeout=1)
    try:
        snapshot = poll_until_done(provider, pipeline, start(provider, pipeline))
    finally:
        hold.set()
    assert (snapshot.status, snapshot.conclusion) == ("failed", "timed_out")
    assert snapshot.steps[0].conclusion == "timed_out"


def test_cancel_sent_before_a_takeover_still_cancels(gateway, tmp_path):
    """The worker that had sent the cancel died before its step stopped: the worker that
    takes the run over must cancel it, not run the interrupted step again."""
    pipeline = gateway.config.pipelines["slow"]
    started = utcnow() - timedelta(seconds=5)
    with database.connection_context():
        run = runs.create_run(pipeline, "main", {}, None)
        Run.update(
            phase="in_progress",
            upstream_id=run.id,
            workflow_id="slow",
            cancel_requested=True,
            cancel_sent=True,
            lease_owner="dead-worker",
            lease_until=to_db_time(started),
            started_at=to_db_time(started),
            steps=[
                {
                    "name": "first",
                    "status": "success",
                    "conclusion": "success",
                    "started_at": started.isoformat(),
                    "completed_at": started.isoformat(),
                },
                {"name": "sleepy", "status": "running", "started_at": started.isoformat()},
                {"name": "last", "status": "pending"},
            ],
        ).where(Run.id == run.id).execute()
    finished = run_until_done(gateway, run.id)
    assert (finished.status, finished.conclusion) == ("failed", "cancelled")
    assert [s["status"] for s in finished.steps] == ["success", "cancelled", "skipped"]
    assert not run_processes(run.id)
