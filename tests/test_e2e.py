"""End to end: real ``flashfusion serve`` (gunicorn + worker) and real worker processes."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
from conftest import write_config
from testkit.server import FLASHFUSION, cli_key, cli_key_answer, spawn, start_server, wait_for

from flashfusion.core.storage import db as dbmod
from flashfusion.core.storage.models import Event, Run

pytestmark = pytest.mark.e2e


def curl(*args: str) -> dict:
    out = subprocess.run(["curl", "-sS", *args], capture_output=True, text=True, timeout=60, check=True).stdout
    return json.loads(out)


def test_spec_curl_examples_verbatim_against_serve(tmp_path, db_url):
    config = write_config(tmp_path, db_url)
    server = start_server(config, tmp_path)
    try:
        made = cli_key_answer(config, "trigger_pipeline,read_runs,read_config", name="ci")
        assert set(made) == {"success", "id", "name", "plaintext_key", "key_preview"}
        key = made["plaintext_key"]
        assert key.startswith("ffai_") and made["key_preview"] == "..." + key[-6:]

        # API.md, "Trigger Pipeline Run" example (host replaced, pipeline id is ours)
        started = curl(
            "-X",
            "POST",
            f"{server.url}/api/trigger-pipeline",
            "-H",
            f"X-API-Key: {key}",
            "-H",
            "Content-Type: application/json",
            "-d",
            '{"pipeline_id": "demo"}',
        )
        assert started["success"] is True and started["status"] == "running"
        # API.md, Quick Start 2 (no Content-Type header: curl sends form-urlencoded)
        quick = curl(
            "-X",
            "POST",
            f"{server.url}/api/trigger-pipeline",
            "-H",
            f"X-API-Key: {key}",
            "-d",
            '{"pipeline_id": "broken"}',
        )
        assert quick["success"] is True

        def finished(run_id):
            # API.md, Quick Start 3
            run = curl(f"{server.url}/api/get-status?run_id={run_id}", "-H", f"X-API-Key: {key}")["run"]
            return run if run["status"] != "running" else None

        run = wait_for(lambda: finished(started["run_id"]), what="demo run to finish")
        assert run["status"] == "success" and isinstance(run["duration_seconds"], int)
        assert [s["status"] for s in run["steps"]] == ["success", "success"]
        failed = wait_for(lambda: finished(quick["run_id"]), what="broken run to finish")
        assert failed["status"] == "failed" and failed["failed_step"] == "unit-tests"

        config_answer = curl(f"{server.url}/api/get-config?pipeline_id=demo", "-H", f"X-API-Key: {key}")
        assert config_answer["config"]["id"] == "demo"
    finally:
        assert server.process.stop(signal.SIGTERM) == 0
    log = server.process.output()
    assert "Shutting down" in log and "worker" in log and "stopped" in log
    assert key not in log


def test_killed_worker_loses_no_run_and_no_event(tmp_path, db_url):
    config = write_config(tmp_path, db_url, slow_seconds=1.5)
    server = start_server(config, tmp_path, "--no-worker")
    key = cli_key(config)
    first = spawn([FLASHFUSION, "--config", str(config), "worker"], tmp_path / "worker1.log", cwd=tmp_path)
    second = None
    try:
        with server.client(key) as http:
            run_id = http.post("/api/trigger-pipeline", json={"pipeline_id": "slow"}).json()["run_id"]

            def sleepy_running():
                steps = http.get("/api/get-status", params={"run_id": run_id}).json()["run"]["steps"]
                return any(s["name"] == "sleepy" and s["status"] == "running" for s in steps)

            wait_for(sleepy_running, what="the sleepy step to start")
            first.stop(signal.SIGKILL)
            second = spawn([FLASHFUSION, "--config", str(config), "worker"], tmp_path / "worker2.log", cwd=tmp_path)
            run = wait_for(
                lambda: (
                    (r := http.get("/api/get-status", params={"run_id": run_id}).json()["run"])["status"] != "running"
                    and r
                ),
                timeout=40,
                what="the run to finish after a restart",
            )
        assert run["status"] == "success", run
        assert [s["status"] for s in run["steps"]] == ["success", "success", "success"]
        time.sleep(2)  # the killed worker's orphaned step, had it survived, would finish in this time
        assert (tmp_path / "runs" / "sleepy-count").read_text().count("done") == 1
        database = dbmod.open_database(db_url)
        with database.connection_context():
            events = sorted(e.event_type for e in Event.select().where(Event.run_id == run_id))
            assert Run.get_by_id(run_id).lease_owner is None
        assert events == ["run.completed", "run.started"]
    finally:
        for proc in (first, second):
            if proc is not None:
                proc.stop(signal.SIGKILL)
        server.process.stop()


def test_bad_config_fails_at_start_with_one_line(tmp_path):
    config = tmp_path / "flashfusion.toml"
    config.write_text('[pipelines.web]\nprovider = "nosuch"\nrepository_name = "a/b"\n')
    result = subprocess.run([FLASHFUSION, "--config", str(config), "serve"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert str(config) in lines[0] and "pipelines.web.provider" in lines[0] and "'nosuch' is not installed" in lines[0]
