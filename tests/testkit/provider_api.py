"""What the GitHub and GitLab API tests share: the provider table, the ``make_kit``/``kit`` fixtures
over a fake, one real serve with a worker and a key, and following a run through ``get-status``."""

from __future__ import annotations

import json
import logging
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from testkit.db import fresh_database
from testkit.gateway import ApiKit, kit_factory, write_gateway_config
from testkit.server import Server, cli_key, start_server, wait_for

POLL_SECONDS = 0.1  # the providers' poll_interval_seconds in these tests
PAUSE = 0.06  # a kit's pause per worker cycle, > half of POLL_SECONDS: every cycle really lists


def provider_table(provider: str, table: dict[str, Any]) -> str:
    """``[providers.<provider>]`` with one TOML line per setting (values written as JSON, which TOML reads)."""
    lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in table.items())
    return f"\n[providers.{provider}]\n{lines}\n"


def kit_fixtures(provider_config: Callable[..., str], env: dict[str, str], *, pause: float = PAUSE):
    """The ``make_kit`` and ``kit`` fixtures of a test module whose ``fake`` fixture serves the provider:
    ``make_kit = kit_fixtures(...)[0]`` binds them by name."""

    @pytest.fixture
    def make_kit(tmp_path, db_url, fake):
        with kit_factory(
            tmp_path, db_url, lambda **settings: provider_config(fake.url, **settings), env, pause=pause
        ) as make:
            yield make

    @pytest.fixture
    def kit(make_kit) -> ApiKit:
        return make_kit()

    return make_kit, kit


@dataclass
class Served:
    server: Server
    http: httpx.Client

    def trigger(self, pipeline_id: str) -> dict:
        """Trigger with the key: the run answered is dispatching and already has its upstream id."""
        started = self.http.post("/api/trigger-pipeline", json={"pipeline_id": pipeline_id}).json()
        assert started["phase"] == "dispatching" and started["upstream_run_id"]
        return started

    def status(self, run_id: str) -> dict:
        return self.http.get("/api/get-status", params={"run_id": run_id}).json()["run"]

    def wait_until_started(self, run_id: str, what: str) -> None:
        wait_for(lambda: self.status(run_id)["phase"] == "in_progress", what=what)

    def wait_until_completed(self, run_id: str, what: str) -> dict:
        return wait_for(lambda: (lambda r: r if r["phase"] == "completed" else None)(self.status(run_id)), what=what)


@contextmanager
def serving_with_worker(
    tmp_path: Path, db_url: str, config_text: str, env: dict[str, str], key_name: str
) -> Iterator[Served]:
    """A real ``serve`` with one worker on a fresh database and a client holding a key that may trigger
    and read runs; the serve must stop cleanly on SIGTERM."""
    fresh_database(db_url)
    config = write_gateway_config(tmp_path, db_url, config_text)
    env = {**env, "FLASHFUSION_WORKERS": "1"}
    server = start_server(config, tmp_path, env=env)
    try:
        key = cli_key(config, name=key_name, env=env)
        with server.client(key) as http:
            yield Served(server, http)
    finally:
        assert server.process.stop(signal.SIGTERM) == 0


def assert_readyz_degraded(kit: ApiKit) -> dict:
    """The readiness answer when a pipeline has a problem: still 200, the database fine; its body."""
    answer = kit.readyz()
    assert answer.status_code == 200
    body = answer.json
    assert (body["success"], body["status"], body["checks"]) == (True, "degraded", {"database": "ok"})
    return body


def assert_bad_token_refused(
    make_kit: Callable[..., ApiKit], pipeline_id: str, token_env: str, wrong: str, caplog: pytest.LogCaptureFixture
) -> str:
    """A trigger with a token the provider refuses, then with none set: 502 both times, a failed run, the
    wrong token in no answer, run or log line; the first answer's message."""
    kit = make_kit(env={token_env: wrong})
    with caplog.at_level(logging.DEBUG):
        answer = kit.trigger(pipeline_id)
    assert answer.status_code == 502
    assert answer.json["error"] == "Upstream authentication failed"
    assert wrong not in answer.text and wrong not in caplog.text
    [run] = kit.runs(pipeline_id)
    assert (run["status"], run["conclusion"]) == ("failed", "dispatch_error") and wrong not in run["error"]

    unset = make_kit(env={}).trigger(pipeline_id)
    assert unset.status_code == 502 and token_env in unset.json["message"]
    return answer.json["message"]


def assert_upstream_refused(kit: ApiKit, pipeline_id: str, body: dict, says: str) -> str:
    """A trigger the provider refuses: 422 with its words, and one failed run holding them; the answer's message."""
    answer = kit.trigger(pipeline_id, **body)
    assert answer.status_code == 422, answer.text
    assert answer.json["error"] == "Upstream rejected the request"
    assert says in answer.json["message"]
    [run] = kit.runs(pipeline_id)
    assert (run["status"], run["phase"], run["conclusion"]) == ("failed", "completed", "dispatch_error")
    assert says in run["error"]
    assert kit.events(run["id"]) == ["run.failed"]
    return answer.json["message"]
