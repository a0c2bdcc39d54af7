"""The ``run_finished`` hooks and their ``optimization.available`` event.

The event survives a worker killed while the hooks run: a real ``flashfusion worker``
loads a plugin (installed with an entry point, like any third-party plugin) whose
``run_finished`` hook blocks until the test releases it. The worker is SIGKILLed after the
run's completion is committed and before the hook returned; a second worker repeats the
hook call, and the receiver gets the event exactly once."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from conftest import write_config
from testkit.drive import run_until_done
from testkit.plugin_site import install_plugin
from testkit.receiver import Receiver
from testkit.server import FLASHFUSION, spawn

from flashfusion.core.app import build_gateway
from flashfusion.core.config import load_config
from flashfusion.core.gateway import Gateway
from flashfusion.core.plugin_manager import get_plugin_manager, load_providers
from flashfusion.core.runs import service
from flashfusion.core.runs.longpoll import RunWatcher
from flashfusion.core.storage.db import database, open_database
from flashfusion.core.storage.models import Event, Run, WebhookDelivery
from flashfusion.core.webhooks.callers import Caller
from flashfusion.core.worker import Worker
from flashfusion.plugins import hookimpl

CONFIG = """
[webhooks]
allow_http = true
allow_private_networks = true
tick_seconds = 0.05
"""

BLOCKING_HOOK = """
    import os
    import time
    from pathlib import Path

    from flashfusion.plugins import hookimpl

    MARKS = Path(os.environ["FF_TEST_HOOK_MARKS"])


    @hookimpl
    def run_finished(run, history):
        (MARKS / f"called-{os.getpid()}-{time.time_ns()}").write_text(run["id"])
        while not (MARKS / "release").exists():
            time.sleep(0.02)
        return [{"kind": "test_hint", "message": "suggested by the blocking test hook"}]
"""


def poll(condition, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def in_db(query):
    with database.connection_context():
        return query()


@pytest.mark.e2e
def test_a_worker_killed_during_run_finished_hooks_loses_no_event(tmp_path: Path, db_url: str):
    marks = tmp_path / "marks"
    marks.mkdir()
    env = install_plugin(tmp_path / "site", "ff_blocking_hook", BLOCKING_HOOK)
    env["FF_TEST_HOOK_MARKS"] = str(marks)
    config = write_config(tmp_path, db_url, CONFIG)
    gateway = build_gateway(load_config(str(config), env={}))
    with Receiver() as rx:
        with database.connection_context():
            gateway.webhooks.create(Caller(), {"url": rx.url(), "events": ["optimization.available"]})
            run_id = service.start_run(gateway, gateway.pipeline("demo"), "main", {}, None).id
        database.close()

        first = spawn(
            [FLASHFUSION, "--config", str(config), "worker"], tmp_path / "worker-1.log", env=env, cwd=tmp_path
        )
        try:
            poll(lambda: list(marks.glob("called-*")), "the first worker to call the hook")
            assert in_db(lambda: Run.get_by_id(run_id).phase) == "completed"
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait(timeout=30)
        finally:
            first.stop(signal.SIGKILL)
        assert in_db(lambda: Event.select().where(Event.event_type == "optimization.available").count()) == 0

        (marks / "release").touch()
        second = spawn(
            [FLASHFUSION, "--config", str(config), "worker"], tmp_path / "worker-2.log", env=env, cwd=tmp_path
        )
        try:
            rx.wait_for(lambda r: any(q.json["event"] == "optimization.available" for q in r.snapshot()), timeout=60)
            poll(
                lambda: in_db(lambda: WebhookDelivery.select().where(WebhookDelivery.status == "succeeded").count()),
                "the delivery to be recorded",
            )
            poll(lambda: in_db(lambda: Run.get_by_id(run_id).hooks_due_at is None), "the hooks mark to be cleared")
        finally:
            second.stop(signal.SIGTERM)
        database.close()

    received = [q.json for q in rx.snapshot()]
    assert [q["event"] for q in received] == ["optimization.available"]
    assert received[0]["data"]["run_id"] == run_id
    assert received[0]["data"]["suggestions"][0]["kind"] == "test_hint"
    assert len(list(marks.glob("called-*"))) == 2  # the killed worker's call, then the repeat
    with database.connection_context():
        hints = Event.select().where((Event.run_id == run_id) & (Event.event_type == "optimization.available"))
        assert hints.count() == 1
        assert WebhookDelivery.select().count() == 1
    database.close()


def test_a_failing_hook_publishes_nothing_and_is_not_called_again(tmp_path: Path, db_url: str):
    calls = []

    class Failing:
        @hookimpl
        def run_finished(self, run, history):
            calls.append(run["id"])
            raise RuntimeError("plugin bug")

    config = load_config(str(write_config(tmp_path, db_url)), env={})
    open_database(config.server.database_url)
    pm = get_plugin_manager(extra=[Failing()])
    gateway = Gateway(config=config, pm=pm, providers=load_providers(pm, config), watcher=RunWatcher(2))
    with database.connection_context():
        run_id = service.start_run(gateway, gateway.pipeline("demo"), "main", {}, None).id
    worker = Worker(gateway, worker_id="w")
    run_until_done(gateway, run_id, worker=worker)
    worker.tick()
    with database.connection_context():
        assert Run.get_by_id(run_id).hooks_due_at is None
        assert Event.select().where(Event.event_type == "optimization.available").count() == 0
    assert calls == [run_id]
    gateway.providers.close()
    database.close()
