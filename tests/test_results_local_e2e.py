"""Outputs, artifacts and quality gates of local runs, through real ``flashfusion serve``
(API and embedded worker) processes."""

from __future__ import annotations

import signal

import pytest
from conftest import write_config
from testkit.server import cli_key, start_server, wait_for

from flashfusion.core.storage import db as dbmod
from flashfusion.core.storage.models import Event

pytestmark = pytest.mark.e2e

PIPELINES = """
[pipelines.results]
provider = "local"
repository_name = "local/results"
quality_gates = { required_steps = ["build", "test"], outputs = { coverage = ">= 80", failed_tests = "== 0" } }

[[pipelines.results.steps]]
name = "build"
run = '''
echo coverage=91 >> $FLASHFUSION_OUTPUT
printf 'NOTES<<EOF\\nline one\\nline two\\nEOF\\n' >> $FLASHFUSION_OUTPUT
mkdir -p $FLASHFUSION_ARTIFACTS/reports
printf 'hello artifact' > $FLASHFUSION_ARTIFACTS/reports/summary.txt
'''

[[pipelines.results.steps]]
name = "test"
run = "echo failed_tests=0 >> $FLASHFUSION_OUTPUT"

[pipelines.lowcov]
provider = "local"
repository_name = "local/lowcov"
build_command = "echo coverage=70 >> $FLASHFUSION_OUTPUT"
quality_gates = { outputs = { coverage = ">= 80" } }

[pipelines.missing]
provider = "local"
repository_name = "local/missing"
steps = [{ name = "build", run = "echo built" }]
quality_gates = { required_steps = ["deploy"], outputs = { failed_tests = "== 0" } }

[pipelines.tooslow]
provider = "local"
repository_name = "local/tooslow"
steps = [{ name = "build", run = "sleep 2" }]
quality_gates = { max_duration_seconds = 1 }
"""


def key_for(config, pipelines: str = "") -> str:
    return cli_key(config, pipelines=pipelines)


def finished(http, run_id: str) -> dict:
    def check():
        run = http.get("/api/get-status", params={"run_id": run_id}).json()["run"]
        return run["status"] != "running" and run

    return wait_for(check, timeout=60, what=f"run {run_id} to finish")


def gates_by_name(run: dict) -> dict:
    return {g["name"]: g for g in run["quality_gates"]}


def test_local_outputs_artifacts_and_quality_gates(tmp_path, db_url):
    config = write_config(tmp_path, db_url, PIPELINES)
    server = start_server(config, tmp_path)
    try:
        with server.client(key_for(config)) as http:
            ids = {
                p: http.post("/api/trigger-pipeline", json={"pipeline_id": p}).json()["run_id"]
                for p in ("results", "lowcov", "missing", "tooslow")
            }
            runs = {p: finished(http, run_id) for p, run_id in ids.items()}

            ok = runs["results"]
            assert (ok["status"], ok["conclusion"]) == ("success", "success")
            assert ok["outputs"] == {"coverage": "91", "NOTES": "line one\nline two", "failed_tests": "0"}
            assert all(g["passed"] for g in ok["quality_gates"]) and len(ok["quality_gates"]) == 4
            [artifact] = ok["artifacts"]
            assert (artifact["name"], artifact["size"]) == ("reports/summary.txt", len("hello artifact"))
            download = http.get(artifact["download_url"])
            assert download.status_code == 200 and download.content == b"hello artifact"
            assert http.get("/api/get-artifact", params={"run_id": ids["results"], "name": "nope"}).status_code == 404

            low = runs["lowcov"]
            assert (low["status"], low["conclusion"]) == ("failed", "quality_gate_failed")
            assert gates_by_name(low)["outputs.coverage"] == {
                "name": "outputs.coverage",
                "expected": ">= 80",
                "actual": "70",
                "passed": False,
                "reason": "coverage = 70, not >= 80",
            }

            missing = gates_by_name(runs["missing"])
            assert runs["missing"]["conclusion"] == "quality_gate_failed"
            assert missing["required_steps.deploy"]["passed"] is False
            assert missing["required_steps.deploy"]["reason"] == "step 'deploy' did not run"
            assert missing["outputs.failed_tests"]["reason"] == "output 'failed_tests' is missing"

            slow = gates_by_name(runs["tooslow"])["max_duration_seconds"]
            assert runs["tooslow"]["conclusion"] == "quality_gate_failed"
            assert slow["passed"] is False and slow["actual"] >= 2

        with server.client(key_for(config, "lowcov")) as other:
            refused = other.get(artifact["download_url"])
            assert refused.status_code == 404 and refused.json()["error"] == "Run not found"
    finally:
        server.process.stop(signal.SIGTERM)

    database = dbmod.open_database(db_url)
    with database.connection_context():
        events = {(e.run_id, e.event_type): e.payload for e in Event.select()}
    assert (ids["results"], "run.completed") in events
    assert (ids["lowcov"], "run.completed") not in events, "a run failing its gates never shows success"
    failed = events[(ids["lowcov"], "run.failed")]
    assert failed["conclusion"] == "quality_gate_failed"
    assert failed["quality_gates"][0]["actual"] == "70"
