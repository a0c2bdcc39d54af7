"""Issue #20's papercuts, each as a user meets it."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

from testkit.server import FLASHFUSION, cli

from flashfusion.core.access import users
from flashfusion.core.runs.serialize import run_to_dict
from flashfusion.core.storage.db import database, to_db_time, utcnow
from flashfusion.core.storage.models import Run

PASSWORD = "papercut horse battery"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
REPO = Path(__file__).resolve().parents[1]


def test_users_create_without_a_terminal_says_to_use_password_stdin(config_path):
    answer = cli("users", "create", "ops", "--admin", config=config_path, input="", check=False)
    assert answer.returncode != 0
    assert "--password-stdin" in answer.stderr and "Traceback" not in answer.stderr
    made = cli("users", "create", "ops", "--admin", "--password-stdin", config=config_path, input=PASSWORD + "\n")
    assert "created administrator ops" in made.stdout


def test_a_failed_dashboard_login_keeps_the_page_asked_for(client, gateway):
    with database.connection_context():
        users.create_user(gateway.passwords, "carol", PASSWORD)
    page = client.simulate_get("/login", params={"next": "/dashboard/runs?status=failed"})
    assert 'name="next" value="/dashboard/runs?status=failed"' in page.text
    nonce = page.cookies["ff_login"].value
    wrong = client.simulate_post(
        "/login",
        headers=FORM,
        cookies={"ff_login": nonce},
        body=urlencode(
            {"login_token": nonce, "username": "carol", "password": "wrong", "next": "/dashboard/runs?status=failed"}
        ),
    )
    assert wrong.status_code == 401
    assert 'name="next" value="/dashboard/runs?status=failed"' in wrong.text


def test_a_loopback_webhook_url_is_refused_naming_the_setting_that_allows_it(client, key):
    answer = client.simulate_post(
        "/functions/createWebhook",
        headers={"X-API-Key": key},
        json={"url": "https://127.0.0.1:9/hook", "events": ["run.completed"]},
    )
    assert answer.status_code == 400
    assert "webhooks.allow_private_networks" in answer.json["message"]


def test_a_run_shorter_than_a_second_does_not_say_zero_seconds(gateway):
    started = utcnow()
    with database.connection_context():
        run = Run.create(
            id="run_quick",
            pipeline_id="demo",
            provider="local",
            ref="main",
            inputs={},
            status="success",
            phase="completed",
            steps=[],
            state={},
            trigger={"kind": "api"},
            created_at=to_db_time(started),
            updated_at=to_db_time(started),
            started_at=to_db_time(started),
            finished_at=to_db_time(started + timedelta(milliseconds=240)),
        )
        assert run_to_dict(run)["duration_seconds"] == 1
        run.finished_at = to_db_time(started + timedelta(seconds=2, milliseconds=400))
        assert run_to_dict(run)["duration_seconds"] == 2


def test_the_client_defaults_to_the_local_gateway_and_documents_api_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASHFUSION_")}
    env.update(FLASHFUSION_API_KEY="ffai_" + "0" * 40, FLASHFUSION_RETRIES="0")
    answer = subprocess.run(
        [FLASHFUSION, "status", "run_x"], capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path
    )
    assert "no gateway URL" not in answer.stderr
    assert "127.0.0.1:8080" in answer.stderr  # it tried the default (nothing listens there in the test)
    helptext = subprocess.run([FLASHFUSION, "trigger", "--help"], capture_output=True, text=True, timeout=60).stdout
    assert "--api-key" in helptext and "FLASHFUSION_API_KEY" in helptext and "safer" in helptext
    assert "http://127.0.0.1:8080" in " ".join(helptext.split())


def _pytest(env_changes: dict[str, str | None]) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    for name, value in env_changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    test = "tests/test_health.py::test_readyz_tells_anonymous_callers_only_the_overall_status"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", test],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )


def test_postgresql_tests_show_as_skipped_without_a_url_and_fail_in_ci():
    local = _pytest({"FLASHFUSION_TEST_POSTGRES_URL": None, "CI": None})
    assert local.returncode == 0, local.stdout
    assert "1 passed, 1 skipped" in local.stdout
    assert "FLASHFUSION_TEST_POSTGRES_URL is not set" in local.stdout
    in_ci = _pytest({"FLASHFUSION_TEST_POSTGRES_URL": None, "CI": "true"})
    assert in_ci.returncode != 0 and "should have set it" in in_ci.stdout
