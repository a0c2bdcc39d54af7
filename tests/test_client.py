"""The ``flashfusion`` client commands, driven as subprocesses against a real ``flashfusion
serve`` (gunicorn + worker, local provider) on loopback: the exit codes CI relies on."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from types import SimpleNamespace

import pytest
from conftest import write_config
from testkit.ci_jobs import GITHUB, GITLAB
from testkit.db import BACKENDS, database_url, fresh_database, require_backend
from testkit.server import FLASHFUSION, free_port, start_server, terminate_when, wait_for

from flashfusion.core.access import apikeys
from flashfusion.core.app import build_gateway
from flashfusion.core.config import load_config
from flashfusion.core.storage.db import database
from flashfusion.core.storage.models import ApiKey

pytestmark = pytest.mark.e2e

LONG_SECONDS = 6
EXTRA = f"""
[pipelines.long]
provider = "local"
repository_name = "local/long"
steps = [ {{ name = "wait", run = "sleep {LONG_SECONDS}" }} ]

[pipelines.gated]
provider = "local"
repository_name = "local/gated"
build_command = "echo coverage=70 >> $FLASHFUSION_OUTPUT; echo report > $FLASHFUSION_ARTIFACTS/report.txt"
quality_gates = {{ outputs = {{ coverage = ">= 80" }} }}
"""
CI_NAMES = ("CI", "GITHUB_", "GITLAB_", "CI_", "FLASHFUSION_")


def make_key(gw, permissions: str = "trigger_pipeline,read_runs,read_config") -> dict:
    """In this process, on the served database (faster than a ``flashfusion keys`` subprocess)."""
    with database.connection_context():
        return apikeys.create_key("client-test", permissions.split(","), [], 1, known_pipelines=gw.pipelines)


@pytest.fixture(scope="module", params=BACKENDS)
def gateway(request, tmp_path_factory):
    require_backend(request.param)
    tmp = tmp_path_factory.mktemp("client")
    url = database_url(request.param, tmp)
    fresh_database(url)
    config = write_config(tmp, url, extra=EXTRA, slow_seconds=30)
    server = start_server(config, tmp)
    local = build_gateway(load_config(str(config), env={}))
    gw = SimpleNamespace(url=server.url, config=config, server=server, pipelines=local.config.pipelines)
    made = make_key(gw)
    gw.key, gw.key_id = made["plaintext_key"], made["id"]
    try:
        yield gw
    finally:
        server.process.stop()
        local.providers.close()
        database.close()


def ff(
    gw, *args: str, env: dict | None = None, key: str | None = None, timeout: float = 60, url: str | None = None
) -> subprocess.CompletedProcess:
    """Run the client as a CI job would: CI=true, URL and key from the environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(CI_NAMES)}
    clean.update(CI="true", FLASHFUSION_URL=url or gw.url, FLASHFUSION_API_KEY=key or gw.key)
    clean.update(env or {})
    result = subprocess.run([FLASHFUSION, *args], capture_output=True, text=True, env=clean, timeout=timeout)
    secret = clean.get("FLASHFUSION_API_KEY")
    if secret:
        assert secret not in result.stdout and secret not in result.stderr, "the API key was printed"
    return result


def api_run(gw, run_id: str) -> dict:
    with gw.server.client(gw.key) as http:
        return http.get("/api/get-status", params={"run_id": run_id}).json()["run"]


def run_id_of(text: str) -> str:
    return re.search(r"\brun_[A-Za-z0-9]+", text).group(0)


def usage_count(key_id: str) -> int:
    """How many authenticated requests the server counted for this key."""
    with database.connection_context():
        return ApiKey.get_by_id(key_id).usage_count


# -- exit codes --------------------------------------------------------------------------


def test_success_exits_0_with_run_id_and_plain_progress(gateway):
    result = ff(gateway, "trigger", "demo", "--wait", "--input", "GREETING=hi")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("run run_") and "started for pipeline demo" in lines[0]
    assert "  step lint: success (0s)" in lines and "  step test: success (0s)" in lines
    assert re.search(r"^run run_\w+ \(demo\): success, duration \d+s$", result.stdout, re.M)
    assert "\x1b[" not in result.stdout  # CI=true: plain lines, no terminal control codes
    assert api_run(gateway, run_id_of(result.stdout))["status"] == "success"


def test_failing_step_exits_1_and_names_the_step(gateway):
    result = ff(gateway, "trigger", "broken", "--wait")
    assert result.returncode == 1, result.stderr
    assert "failing step: unit-tests (exit code 3)" in result.stdout
    assert "AssertionError: 2 != 3" in result.stdout  # the step's log tail
    assert "conclusion failure" in result.stdout


def test_timeout_exits_3_and_cancels_the_run_by_default_in_ci(gateway):
    """CI=true (as ff sets it) makes --cancel-on-timeout the default."""
    started = time.monotonic()
    result = ff(gateway, "trigger", "slow", "--wait", "--timeout", "2s")
    assert result.returncode == 3, result.stdout + result.stderr
    assert time.monotonic() - started < 20
    assert "timed out after 2s" in result.stdout and "cancelling run" in result.stdout
    run = api_run(gateway, run_id_of(result.stdout))
    assert run["status"] == "failed" and run["conclusion"] == "cancelled"
    assert [s["status"] for s in run["steps"]] == ["success", "cancelled", "skipped"]


def test_timeout_without_cancel_exits_3_and_leaves_the_run(gateway):
    result = ff(gateway, "trigger", "slow", "--wait", "--timeout", "1s", "--json", "--no-cancel-on-timeout")
    assert result.returncode == 3
    run = json.loads(result.stdout)  # --json: the last status seen, nothing else on stdout
    assert run["phase"] != "completed" and "still going" in result.stderr
    assert ff(gateway, "status", run["id"]).returncode == 5  # still running
    cancelled = ff(gateway, "cancel", run["id"], "--wait", "--timeout", "30s")
    assert cancelled.returncode == 0, cancelled.stderr
    assert "cancel requested" in cancelled.stdout
    assert ff(gateway, "status", run["id"]).returncode == 1  # cancelled counts as failed


def test_bad_key_exits_2_with_the_servers_message(gateway):
    malformed = ff(gateway, "trigger", "demo", "--wait", key="ffai_" + "x" * 36)
    assert malformed.returncode == 2
    assert "401 Invalid API key format" in malformed.stderr and malformed.stdout == ""

    made = make_key(gateway)
    with database.connection_context():
        apikeys.revoke_key(ApiKey.get_by_id(made["id"]), actor="test")
    revoked = ff(gateway, "trigger", "demo", key=made["plaintext_key"])
    assert revoked.returncode == 2
    assert "The API key is unknown, revoked or expired" in revoked.stderr

    reader = make_key(gateway, "read_runs")["plaintext_key"]
    forbidden = ff(gateway, "trigger", "demo", key=reader)
    assert forbidden.returncode == 2 and "403" in forbidden.stderr and "trigger_pipeline" in forbidden.stderr

    unknown = ff(gateway, "trigger", "no-such-pipeline")
    assert unknown.returncode == 2 and "404" in unknown.stderr

    missing = ff(gateway, "trigger", "demo", env={"FLASHFUSION_API_KEY": ""})
    assert missing.returncode == 2 and "FLASHFUSION_API_KEY" in missing.stderr


def test_server_down_exits_4_after_its_retries(gateway):
    dead = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = ff(
        gateway,
        "trigger",
        "demo",
        "--wait",
        "-v",
        url=dead,
        env={"FLASHFUSION_RETRIES": "3", "FLASHFUSION_RETRY_DELAY": "0.05"},
    )
    assert result.returncode == 4
    assert time.monotonic() - started < 10
    assert result.stderr.count("POST /api/trigger-pipeline -> ConnectError") == 4  # 1 try + 3 retries
    assert "retry 3/3" in result.stderr and "cannot reach" in result.stderr and "after 3 retries" in result.stderr


def test_api_key_on_the_command_line_warns_and_is_never_printed(gateway):
    result = ff(gateway, "runs", "--limit", "1", "-v", "--api-key", gateway.key, env={"FLASHFUSION_API_KEY": ""})
    assert result.returncode == 0
    assert "warning: --api-key puts the key in the process list" in result.stderr
    assert gateway.key not in result.stdout + result.stderr


# -- idempotency from the CI environment -------------------------------------------------


def test_the_same_trigger_twice_in_one_ci_job_starts_one_run(gateway):
    first = ff(gateway, "trigger", "demo", "--json", env=GITHUB)
    again = ff(gateway, "trigger", "demo", "--json", env=GITHUB)
    # a re-run of the job (GitHub increments the attempt) re-attaches too
    rerun = ff(gateway, "trigger", "demo", "--json", env=dict(GITHUB, GITHUB_RUN_ATTEMPT="2"))
    assert first.returncode == again.returncode == rerun.returncode == 0
    run_id = json.loads(first.stdout)["run_id"]
    assert json.loads(again.stdout)["run_id"] == run_id == json.loads(rerun.stdout)["run_id"]
    assert "already started by an earlier attempt" in again.stderr
    other_job = ff(gateway, "trigger", "demo", "--json", env=dict(GITHUB, GITHUB_JOB="deploy-eu"))
    assert json.loads(other_job.stdout)["run_id"] != run_id

    # GitLab: a retried job gets a new CI_JOB_ID but keeps pipeline and name
    lab = ff(gateway, "trigger", "demo", "--json", env=GITLAB)
    lab_retry = ff(gateway, "trigger", "demo", "--json", env=dict(GITLAB, CI_JOB_ID="556"))
    assert json.loads(lab.stdout)["run_id"] == json.loads(lab_retry.stdout)["run_id"] != run_id
    runs = json.loads(ff(gateway, "runs", "--pipeline", "demo", "--limit", "100", "--json").stdout)
    ids = [r["id"] for r in runs]
    assert ids.count(run_id) == 1 and ids.count(json.loads(lab.stdout)["run_id"]) == 1


def test_retrying_a_ci_job_whose_run_failed_starts_a_new_run(gateway):
    env = dict(GITLAB, CI_PIPELINE_ID="99002")
    first = ff(gateway, "trigger", "broken", "--wait", env=env)
    assert first.returncode == 1
    retry = ff(gateway, "trigger", "broken", "--wait", env=dict(env, CI_JOB_ID="557"))
    assert retry.returncode == 1
    assert "ended failure; starting a new run" in retry.stdout
    assert run_id_of(first.stdout) != run_id_of(retry.stdout.split("starting a new run")[1])


# -- following a run ---------------------------------------------------------------------


def test_wait_long_polls_a_handful_of_requests(gateway):
    """A run of LONG_SECONDS (one step that sleeps) is followed with get-status?wait=, one
    request per change: trigger + first status + one per change. A loop polling once a
    second would make more than LONG_SECONDS requests; a 60 s run makes at most one more
    than this (the gateway holds a long-poll for up to 60 s)."""
    made = make_key(gateway)
    started = time.monotonic()
    result = ff(gateway, "trigger", "long", "--wait", "-v", key=made["plaintext_key"])
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    requests = usage_count(made["id"])  # counted by the server, per key
    logged = re.findall(r"^flashfusion: (GET|POST) (\S+) -> 200 in ([\d.]+)s", result.stderr, re.M)
    assert len(logged) == requests
    assert took >= LONG_SECONDS and requests <= 5, result.stderr
    assert all("wait=60" in path for method, path, _ in logged[2:])
    assert max(float(seconds) for *_, seconds in logged) >= LONG_SECONDS - 2  # held while nothing changed


def test_json_prints_only_the_final_status_object(gateway):
    result = ff(gateway, "trigger", "broken", "--wait", "--json")
    assert result.returncode == 1
    run = json.loads(result.stdout)  # the whole of stdout is one JSON document
    assert run["status"] == "failed" and run["failed_step"] == "unit-tests" and run["id"].startswith("run_")
    assert "failing step: unit-tests" in result.stderr  # people's output moved to stderr
    status = ff(gateway, "status", run["id"], "--json")
    assert status.returncode == 1 and json.loads(status.stdout)["id"] == run["id"]


def test_status_runs_config_cancel(gateway):
    done = json.loads(ff(gateway, "trigger", "demo", "--wait", "--json").stdout)
    status = ff(gateway, "status", done["id"])
    assert status.returncode == 0 and "success" in status.stdout and "- lint: success" in status.stdout
    waited = ff(gateway, "status", done["id"], "--wait")
    assert waited.returncode == 0

    listing = ff(gateway, "runs", "--pipeline", "demo", "--status", "success", "--limit", "2")
    assert listing.returncode == 0 and listing.stdout.startswith("RUN ")
    assert all(" demo " in line and " success " in line for line in listing.stdout.splitlines()[1:])
    paged = json.loads(ff(gateway, "runs", "--limit", "3", "--json").stdout)
    assert len(paged) == 3

    config = ff(gateway, "config", "demo")
    assert config.returncode == 0 and "repository_name: local/demo" in config.stdout and "- lint:" in config.stdout
    assert json.loads(ff(gateway, "config", "demo", "--json").stdout)["id"] == "demo"

    finished = ff(gateway, "cancel", done["id"])
    assert finished.returncode == 0 and "already finished" in finished.stdout
    assert ff(gateway, "cancel", "run_doesnotexist").returncode == 2


def test_gates_outputs_and_artifacts_in_the_cli(gateway, tmp_path):
    outputs_file = tmp_path / "out.env"
    result = ff(gateway, "trigger", "gated", "--wait", "--outputs-file", str(outputs_file))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "conclusion quality_gate_failed" in result.stdout
    assert "quality gates: 0 of 1 passed" in result.stdout
    assert "outputs.coverage: expected >= 80, got 70" in result.stdout
    assert outputs_file.read_text() == "coverage=70\n"
    run_id = run_id_of(result.stdout)
    shown = ff(gateway, "outputs", run_id, "--json")
    assert json.loads(shown.stdout) == {"coverage": "70"}
    saved = ff(gateway, "artifacts", run_id, "--download", str(tmp_path / "got"))
    assert saved.returncode == 0, saved.stderr
    assert (tmp_path / "got" / "report.txt").read_text() == "report\n"


def test_sigterm_cancels_the_run_it_started_and_exits_143(gateway):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(CI_NAMES)}
    clean.update(CI="true", FLASHFUSION_URL=gateway.url, FLASHFUSION_API_KEY=gateway.key)
    proc = subprocess.Popen(
        [FLASHFUSION, "trigger", "slow", "--wait"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean
    )

    def step_running(first: str) -> str:
        run_id = run_id_of(first)
        wait_for(
            lambda: any(s["name"] == "sleepy" and s["status"] == "running" for s in api_run(gateway, run_id)["steps"]),
            what="the slow step to run",
        )
        return run_id

    run_id, out, err = terminate_when(proc, step_running)
    assert proc.returncode == 143, out + err
    assert "SIGTERM: cancelling the run this command started" in err
    run = api_run(gateway, run_id)
    assert (run["status"], run["conclusion"]) == ("failed", "cancelled")


def test_a_group_with_a_failing_member_and_fail_fast(gateway):
    result = ff(gateway, "trigger", "demo", "broken", "--wait")
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"run \S+ \(broken\): failed", result.stdout) and "(demo): success" in result.stdout
    assert "failed" in result.stdout.splitlines()[-1]

    fast = ff(gateway, "trigger", "broken", "slow", "--wait", "--fail-fast")
    assert fast.returncode == 1, fast.stdout + fast.stderr
    assert "cancelling the others (--fail-fast)" in fast.stdout
    slow = re.search(r"run (\S+) started for pipeline slow", fast.stdout).group(1)
    assert api_run(gateway, slow)["conclusion"] == "cancelled"
