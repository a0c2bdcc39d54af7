"""A whole gateway in-process (config file -> ``build_gateway`` -> falcon app), for tests of
remote providers through the API: trigger, get-status, cancel-run, readyz, with a worker
driven by the test and the provider token passed in the configuration's environment."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import falcon.testing

from flashfusion.core.access import apikeys
from flashfusion.core.access.users import create_user
from flashfusion.core.app import build_gateway, create_app
from flashfusion.core.config import load_config
from flashfusion.core.gateway import Gateway
from flashfusion.core.storage.db import database
from flashfusion.core.storage.models import Event, Run, User
from flashfusion.core.worker import Worker

ALL_PERMISSIONS = ["trigger_pipeline", "read_runs", "read_config", "webhook"]
ADMIN_PASSWORD = "readyz admin password"


@dataclass
class ApiKit:
    gateway: Gateway
    client: falcon.testing.TestClient
    key: str
    worker: Worker
    pause: float = 0.0  # real seconds between worker cycles (the provider's freshness window)
    closers: list[Callable[[], None]] = field(default_factory=list)
    admin_cookies: dict[str, str] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.key}

    def trigger(self, pipeline_id: str, **body: Any) -> falcon.testing.Result:
        return self.client.simulate_post(
            "/api/trigger-pipeline", json={"pipeline_id": pipeline_id, **body}, headers=self.headers
        )

    def status(self, run_id: str) -> dict[str, Any]:
        answer = self.client.simulate_get("/api/get-status", params={"run_id": run_id}, headers=self.headers)
        assert answer.status_code == 200, answer.text
        return answer.json["run"]

    def cancel(self, run_id: str) -> falcon.testing.Result:
        return self.client.simulate_post("/api/cancel-run", json={"run_id": run_id}, headers=self.headers)

    def runs(self, pipeline_id: str) -> list[dict[str, Any]]:
        answer = self.client.simulate_get(
            "/api/runs", params={"pipeline_id": pipeline_id, "limit": 100}, headers=self.headers
        )
        assert answer.status_code == 200, answer.text
        return answer.json["runs"]

    def admin_session(self) -> dict[str, str]:
        """The cookies of an administrator's session (made at the first call)."""
        if "ff_session" not in self.admin_cookies:
            with database.connection_context():
                if User.get_or_none(User.username == "readyz-admin") is None:  # kits of a test share the database
                    create_user(self.gateway.passwords, "readyz-admin", ADMIN_PASSWORD, admin=True)
            login = self.client.simulate_post(
                "/functions/login", json={"username": "readyz-admin", "password": ADMIN_PASSWORD}
            )
            assert login.status_code == 200, login.text
            self.admin_cookies["ff_session"] = login.cookies["ff_session"].value
        return self.admin_cookies

    def readyz(self) -> falcon.testing.Result:
        """``GET /readyz`` as an administrator, who gets the per-pipeline details."""
        return self.client.simulate_get("/readyz", cookies=self.admin_session())

    def cycle(self, count: int = 1) -> None:
        """One worker poll cycle (``count`` times): the worker's clock passes a whole poll
        interval, and ``pause`` real seconds let the provider's own freshness window pass."""
        for _ in range(count):
            if self.pause:
                time.sleep(self.pause)
            if isinstance(self.worker.clock, ManualClock):
                self.worker.clock.advance(3600)
            self.worker.tick()

    def cycle_until(self, predicate: Callable[[dict[str, Any]], bool], run_id: str, limit: int = 40) -> dict[str, Any]:
        for _ in range(limit):
            self.cycle()
            run = self.status(run_id)
            if predicate(run):
                return run
        raise AssertionError(f"condition not reached for {run_id}: {self.status(run_id)}")

    def events(self, run_id: str) -> list[str]:
        with database.connection_context():
            return sorted(e.event_type for e in Event.select().where(Event.run_id == run_id))

    def db_run(self, run_id: str) -> Run:
        with database.connection_context():
            return Run.get_by_id(run_id)

    def close(self) -> None:
        for close in self.closers:
            close()
        self.gateway.providers.close()
        database.close()


def write_gateway_config(tmp_path: Path, db_url: str, extra: str) -> Path:
    from conftest import write_config  # tests/conftest.py: the base config every API test uses

    return write_config(tmp_path, db_url, extra)


def build_kit(
    tmp_path: Path,
    db_url: str,
    extra: str,
    env: dict[str, str],
    *,
    pause: float = 0.0,
    worker_clock: Callable[[], float] | None = None,
) -> ApiKit:
    config = load_config(str(write_gateway_config(tmp_path, db_url, extra)), env=env)
    gateway = build_gateway(config)
    client = falcon.testing.TestClient(create_app(gateway))
    with database.connection_context():
        key = apikeys.create_key("gateway test", ALL_PERMISSIONS, [], 90, known_pipelines=gateway.config.pipelines)[
            "plaintext_key"
        ]
    worker = Worker(gateway, worker_id="test-worker", clock=worker_clock or ManualClock())
    return ApiKit(gateway=gateway, client=client, key=key, worker=worker, pause=pause)


class ManualClock:
    """A monotonic clock the test moves by hand (for the worker's poll-interval gate)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@contextmanager
def kit_factory(
    tmp_path: Path, db_url: str, config_for: Callable[..., str], default_env: dict[str, str], *, pause: float = 0.0
) -> Iterator[Callable[..., ApiKit]]:
    """``make(env=None, **settings)`` builds a kit whose provider table is
    ``config_for(**settings)``; every kit made is closed at the end."""
    made: list[ApiKit] = []

    def make(env: dict[str, str] | None = None, **settings) -> ApiKit:
        kit = build_kit(tmp_path, db_url, config_for(**settings), default_env if env is None else env, pause=pause)
        made.append(kit)
        return kit

    try:
        yield make
    finally:
        for kit in made:
            kit.close()
