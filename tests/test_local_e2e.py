"""The local provider against real ``flashfusion serve`` / ``flashfusion worker`` processes:
steps that cannot start, cancels and timeouts of steps that hold on, and what is left of a
step when its worker is SIGKILLed."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
from conftest import local_pipeline, write_config
from testkit.db import database_url, fresh_database
from testkit.procs import run_processes
from testkit.server import FLASHFUSION, cli_key, spawn, start_server, wait_for

from flashfusion.core.config import load_config
from flashfusion.core.runs import transitions as runs
from flashfusion.core.storage import db as dbmod
from flashfusion.core.storage.models import Run

pytestmark = pytest.mark.e2e

DETACH = """\
import os, sys, time
os.setsid()  # its own session and process group: out of reach of a kill of the step's group
time.sleep(float(sys.argv[1]))
with open(sys.argv[2], "a") as f:
    f.write("x\\n")
"""


def config_with_pipelines(tmp_path: Path, db_url: str, seconds: float = 4) -> Path:
    detach = tmp_path / "detach.py"
    detach.write_text(DETACH)

    def hang(pipeline_id: str) -> list[tuple[str, str]]:
        """A step leaving a detached process (it writes ``../<pipeline_id>-marker`` after 300 s) that holds on."""
        return [("hang", f"{sys.executable} {detach} 300 ../{pipeline_id}-marker & echo started; sleep 300")]

    deploy = (
        f"echo attempt >> ../attempts; (trap '' HUP TERM; sleep {seconds}; echo x >> ../deployed) & "
        f"{sys.executable} {detach} {seconds} ../deployed-detached & wait"
    )
    pipelines = (
        local_pipeline("stuck", hang("stuck"))
        + local_pipeline("stuck-short", hang("stuck-short"), timeout_seconds=4)
        + local_pipeline("deploy", [("deploy", deploy), ("after", "echo after")])
    )
    return write_config(tmp_path, db_url, pipelines)


def make_key(config: Path) -> str:
    return cli_key(config)


def status(http, run_id: str) -> dict:
    return http.get("/api/get-status", params={"run_id": run_id}).json()["run"]


def finished(http, run_id: str, timeout: float = 40) -> dict:
    return wait_for(
        lambda: (r := status(http, run_id))["status"] != "running" and r,
        timeout=timeout,
        what=f"run {run_id} to finish",
    )


def step_running(http, run_id: str, name: str) -> bool:
    return any(s["name"] == name and s["status"] == "running" for s in status(http, run_id)["steps"])


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_run_with_unencodable_input_fails_with_reason_and_worker_goes_on(tmp_path):
    """An input no process environment can hold (a lone surrogate; the HTTP layer refuses it,
    so the run is stored directly) ends the run failed, with the reason in the step. On SQLite
    only: PostgreSQL cannot store such a string at all, so there the case cannot arise."""
    db_url = database_url("sqlite", tmp_path)
    fresh_database(db_url)
    config = write_config(tmp_path, db_url)
    pipeline = load_config(str(config), env={}).pipelines["demo"]
    database = dbmod.open_database(db_url)
    with database.connection_context():
        bad = runs.create_run(pipeline, "main", {"A": "\ud800x"}, None).id
        good = runs.create_run(pipeline, "main", {"GREETING": "hi"}, None).id
    worker = spawn([FLASHFUSION, "--config", str(config), "worker"], tmp_path / "worker.log", cwd=tmp_path)
    try:

        def done(run_id):
            with database.connection_context():
                run = Run.get_by_id(run_id)
            return run if run.phase == "completed" else None

        run = wait_for(lambda: done(bad), timeout=40, what="the run with the bad input to end")
        assert (run.status, run.conclusion) == ("failed", "failure")
        assert [s["status"] for s in run.steps] == ["failed", "skipped"]
        reason = run.steps[0]["log_tail"]
        assert "could not start" in reason and "FLASHFUSION_INPUT_A" in reason, reason
        assert wait_for(lambda: done(good), timeout=40, what="the next run").status == "success"
    finally:
        worker.stop(signal.SIGKILL)
    assert "Traceback" not in worker.output()


def test_step_that_cannot_start_fails_the_run_with_reason(tmp_path, db_url):
    config = write_config(tmp_path, db_url)
    (tmp_path / "runs").write_text("a file where the run directories should go\n")
    server = start_server(config, tmp_path)
    try:
        with server.client(make_key(config)) as http:
            run_id = http.post("/api/trigger-pipeline", json={"pipeline_id": "demo"}).json()["run_id"]
            run = finished(http, run_id)
        assert (run["status"], run["conclusion"], run["failed_step"]) == ("failed", "failure", "lint")
        assert "could not create the run's directory: Not a directory" in run["steps"][0]["log_tail"]
        assert [s["status"] for s in run["steps"]] == ["failed", "skipped"]
    finally:
        server.process.stop(signal.SIGTERM)


def test_cancel_and_timeout_end_steps_that_hold_on(tmp_path, db_url):
    """Each step leaves a process in its own session holding the step's output open: the
    cancel and the run's timeout still end the run and leave no process of it alive."""
    config = config_with_pipelines(tmp_path, db_url)
    server = start_server(config, tmp_path)
    try:
        with server.client(make_key(config)) as http:
            cancelled = http.post("/api/trigger-pipeline", json={"pipeline_id": "stuck"}).json()["run_id"]
            timed = http.post("/api/trigger-pipeline", json={"pipeline_id": "stuck-short"}).json()["run_id"]
            wait_for(
                lambda: step_running(http, cancelled, "hang") and len(run_processes(cancelled)) >= 3,
                what="the stuck step and its detached child to run",
            )
            assert http.post("/api/cancel-run", json={"run_id": cancelled}).status_code == 200
            run = finished(http, cancelled)
            assert (run["status"], run["conclusion"]) == ("failed", "cancelled")
            assert run["steps"][0]["status"] == "cancelled"
            wait_for(lambda: not run_processes(cancelled), timeout=10, what="the cancelled step's processes to go")

            run = finished(http, timed)
            assert (run["status"], run["conclusion"], run["failed_step"]) == ("failed", "timed_out", "hang")
            wait_for(lambda: not run_processes(timed), timeout=10, what="the timed-out step's processes to go")
    finally:
        server.process.stop(signal.SIGTERM)


@pytest.mark.parametrize("killed", ["worker", "worker-and-supervisor"])
def test_sigkilled_worker_leaves_no_step_process_and_no_second_side_effect(tmp_path, db_url, killed):
    """The deploy step backgrounds a subshell that ignores SIGHUP and SIGTERM and a process in
    its own session; both write a marker after a while. A SIGKILL of the worker mid-step
    kills all of them at once. When the step's supervisor is killed too (as by the OOM
    killer), the worker that takes the run over kills them before it runs the step again.
    Either way each marker is written once: by the attempt the run shows."""
    seconds = 10 if killed == "worker" else 15  # outlasts the checks below and the takeover (lease 2 s)
    config = config_with_pipelines(tmp_path, db_url, seconds=seconds)
    server = start_server(config, tmp_path, "--no-worker")
    first = spawn([FLASHFUSION, "--config", str(config), "worker"], tmp_path / "worker1.log", cwd=tmp_path)
    second = None
    markers = [tmp_path / "runs" / "deployed", tmp_path / "runs" / "deployed-detached"]
    try:
        with server.client(make_key(config)) as http:
            run_id = http.post("/api/trigger-pipeline", json={"pipeline_id": "deploy"}).json()["run_id"]

            def all_started():
                procs = run_processes(run_id)
                return (
                    step_running(http, run_id, "deploy")
                    and any("detach.py" in c for c in procs.values())
                    and any(c.startswith("sleep") for c in procs.values())
                    and procs
                )

            before = wait_for(all_started, what="the deploy step and its children to run")
            assert len(before) >= 4, before  # supervisor, sh, the subshell, its sleep, the detached process
            if killed == "worker":
                first.stop(signal.SIGKILL)
                wait_for(lambda: not run_processes(run_id), timeout=8, what="the step's processes to die")
            else:
                supervisors = [pid for pid, cmd in before.items() if "supervise" in cmd]
                assert len(supervisors) == 1, before
                first.stop(signal.SIGKILL)
                os.kill(supervisors[0], signal.SIGKILL)
            second = spawn([FLASHFUSION, "--config", str(config), "worker"], tmp_path / "worker2.log", cwd=tmp_path)
            run = finished(http, run_id, timeout=60)
            assert run["status"] == "success", run
            assert [s["status"] for s in run["steps"]] == ["success", "success"]
        assert lines(tmp_path / "runs" / "attempts") == 2
        wait_for(lambda: not run_processes(run_id), timeout=10, what="no process of the run to be left")
        assert [lines(m) for m in markers] == [1, 1]
    finally:
        for proc in (first, second):
            if proc is not None:
                proc.stop(signal.SIGKILL)
        server.process.stop()
        for pid in run_processes(run_id) if "run_id" in locals() else ():
            os.kill(pid, signal.SIGKILL)
