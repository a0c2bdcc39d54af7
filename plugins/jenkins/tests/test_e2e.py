"""End to end with the installed package: ``pip install ./plugins/jenkins``, a
``[providers.jenkins]`` table and pipelines, a real ``flashfusion serve`` (gunicorn + worker)
and the ``flashfusion`` CLI, against the fake Jenkins."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fake_jenkins import FakeJenkins

FLASHFUSION = str(Path(sys.executable).with_name("flashfusion"))

CONFIG = """
[server]
database_url = "sqlite:///{db}"

[worker]
tick_seconds = 0.1

[providers.jenkins]
url = "{url}"
user = "{user}"
token_env = "JENKINS_TOKEN"
poll_interval_seconds = 0.1
timeout_seconds = 10

[pipelines.release]
provider = "jenkins"
repository_name = "team/app"

[pipelines.nightly]
provider = "jenkins"
repository_name = "team/nightly"
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cli(*args: str, env: dict[str, str], config: Path | None = None) -> subprocess.CompletedProcess:
    command = [FLASHFUSION, *(["--config", str(config)] if config else []), *args]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env}, timeout=120)


@pytest.fixture
def gateway(tmp_path):
    fake = FakeJenkins(require_crumb=True).start()
    fake.add_job("team/app", stages=("Checkout", "Build", "Deploy"), auto_advance=True)
    fake.add_job("team/nightly", stages=("Checkout", "Soak"))
    config = tmp_path / "flashfusion.toml"
    config.write_text(CONFIG.format(db=tmp_path / "ff.db", url=fake.url, user=fake.user))
    env = {"JENKINS_TOKEN": fake.token}
    port = _free_port()
    log = open(tmp_path / "serve.log", "ab")
    server = subprocess.Popen(
        [FLASHFUSION, "--config", str(config), "serve", "--bind", f"127.0.0.1:{port}"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **env},
        cwd=tmp_path,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
        made = _cli(
            "keys",
            "create",
            "--name",
            "ci",
            "--permissions",
            "trigger_pipeline,read_runs,read_config",
            "--json",
            env=env,
            config=config,
        )
        assert made.returncode == 0, made.stderr
        client_env = {"FLASHFUSION_URL": url, "FLASHFUSION_API_KEY": json.loads(made.stdout)["plaintext_key"]}
        yield fake, config, env, client_env
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
        fake.stop()
        log.close()
        assert fake.token not in (tmp_path / "serve.log").read_text()


def test_trigger_wait_status_and_cancel_through_serve_and_the_cli(gateway):
    fake, config, env, client = gateway
    assert _cli("plugins", env=env, config=config).stdout.count("flashfusion_jenkins") >= 1
    doctor = _cli("doctor", env=env, config=config)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr

    done = _cli("trigger", "release", "--input", "VERSION=1.2.3", "--wait", "--json", env=client)
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["status"] == "success"
    [build] = [b for b in fake.builds() if b.job.path == ("team", "app")]
    assert build.params == {"VERSION": "1.2.3"}

    status = json.loads(_cli("status", run["id"], "--json", env=client).stdout)
    assert [(s["name"], s["status"]) for s in status["steps"]] == [
        ("Checkout", "success"),
        ("Build", "success"),
        ("Deploy", "success"),
    ]

    started = _cli("trigger", "nightly", "--json", env=client)
    assert started.returncode == 0, started.stderr
    nightly = json.loads(started.stdout)["run_id"]

    def building() -> bool:
        shown = json.loads(_cli("status", nightly, "--json", env=client).stdout)
        return any(s["status"] == "running" for s in shown["steps"])

    deadline = time.monotonic() + 60
    while not building():
        assert time.monotonic() < deadline, "the nightly build did not start"
        time.sleep(0.2)
    cancelled = _cli("cancel", nightly, "--json", env=client)
    assert cancelled.returncode in (0, 1), cancelled.stderr
    finished = _cli("status", nightly, "--wait", "--timeout", "60", "--json", env=client)
    shown = json.loads(finished.stdout)
    assert (shown["status"], shown["conclusion"]) == ("failed", "cancelled")
    assert [b.result for b in fake.builds() if b.job.path == ("team", "nightly")] == ["ABORTED"]
