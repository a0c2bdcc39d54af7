"""Triggers that act: a push starts matching pipelines once per commit, a schedule starts its
pipeline once per due time across workers (and once after downtime), and every run shows
what started it in get-status, the runs list, the dashboard and the outgoing webhooks."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from test_dashboard import Browser, make_user
from testkit.drive import run_until_done

from flashfusion.core.access.keyformat import preview
from flashfusion.core.runs import cron
from flashfusion.core.runs.triggers import Scheduler, on_push
from flashfusion.core.storage.db import database
from flashfusion.core.storage.models import Event, Run
from flashfusion.core.worker import Worker

TRIGGERS = """
[pipelines.web]
provider = "local"
repository_name = "Acme/Web"
steps = [{ name = "build", run = "echo built $FLASHFUSION_BRANCH" }]
triggers = { push = ["main", "release/*"] }

[pipelines.web-docs]
provider = "local"
repository_name = "acme/web"
steps = [{ name = "docs", run = "true" }]
triggers = { push = ["main"] }

[pipelines.other]
provider = "local"
repository_name = "acme/other"
steps = [{ name = "build", run = "true" }]
triggers = { push = ["main", "release/*"] }

[pipelines.nightly]
provider = "local"
repository_name = "acme/nightly"
steps = [{ name = "build", run = "true" }]
triggers = { schedule = ["*/10 * * * *"] }
"""


EXTRA_CONFIG = TRIGGERS  # added to the test configuration by conftest's config_path


def runs_of(pipeline_id: str) -> list[Run]:
    with database.connection_context():
        return list(Run.select().where(Run.pipeline_id == pipeline_id).order_by(Run.created_at, Run.id))


def push(gateway, repository: str, branch: str, commit: str, provider: str = "local") -> list[str]:
    with database.connection_context():
        return sorted(run.pipeline_id for run in on_push(gateway, provider, repository, branch, commit, "alice"))


def test_push_starts_the_matching_pipelines_of_the_repository_once_per_commit(gateway):
    assert push(gateway, "acme/web", "main", "c0ffee1") == ["web", "web-docs"]
    assert push(gateway, "acme/web", "main", "c0ffee1") == []  # the same push delivered again
    assert push(gateway, "acme/web", "release/2.1", "c0ffee2") == ["web"]
    assert push(gateway, "acme/web", "feature/login", "c0ffee3") == []
    assert push(gateway, "acme/web", "Main", "c0ffee4") == []  # branch names are case-sensitive
    assert push(gateway, "acme/web", "main", "c0ffee5", provider="github") == []
    assert push(gateway, "acme/web", "release/old", "0" * 40) == []  # the branch was deleted
    assert runs_of("other") == []
    web = runs_of("web")
    assert [(r.ref, r.trigger) for r in web] == [
        ("main", {"kind": "push", "commit": "c0ffee1", "pusher": "alice", "branch": "main"}),
        ("release/2.1", {"kind": "push", "commit": "c0ffee2", "pusher": "alice", "branch": "release/2.1"}),
    ]
    assert len(runs_of("web-docs")) == 1


def test_a_push_run_runs_on_the_pushed_branch_and_its_webhook_data_says_so(gateway, client, key):
    [started] = push(gateway, "acme/web", "release/3", "abc1234")
    run = runs_of(started)[0]
    done = run_until_done(gateway, run.id)
    assert done.status == "success"
    assert "built release/3" in done.steps[0]["log_tail"]
    with database.connection_context():
        payloads = [e.payload for e in Event.select().where(Event.run_id == run.id)]
    assert payloads and all(p["trigger"]["kind"] == "push" and p["trigger"]["commit"] == "abc1234" for p in payloads)
    status = client.simulate_get("/api/get-status", params={"run_id": run.id}, headers={"X-API-Key": key}).json
    assert status["run"]["trigger"] == {"kind": "push", "commit": "abc1234", "pusher": "alice", "branch": "release/3"}


class Clock:
    def __init__(self, start: datetime) -> None:
        self.at = start

    def __call__(self) -> datetime:
        return self.at


def scheduled() -> list[str | None]:
    return [r.trigger["due"] for r in runs_of("nightly")]


def test_schedule_fires_once_per_due_time_across_workers_and_once_after_downtime(gateway):
    clock = Clock(datetime(2026, 3, 2, 10, 3, tzinfo=UTC))
    workers = [Worker(gateway, worker_id=f"w{i}", now=clock) for i in (1, 2)]

    def tick_all(at: datetime) -> None:
        clock.at = at
        for worker in workers:
            worker.tick()

    tick_all(clock.at)
    assert scheduled() == []  # 10:00 was due before the schedule was first seen
    tick_all(datetime(2026, 3, 2, 10, 9, 59, tzinfo=UTC))
    assert scheduled() == []
    tick_all(datetime(2026, 3, 2, 10, 10, tzinfo=UTC))
    tick_all(datetime(2026, 3, 2, 10, 10, 30, tzinfo=UTC))
    assert scheduled() == ["2026-03-02T10:10:00Z"]
    workers.reverse()
    tick_all(datetime(2026, 3, 2, 10, 20, 1, tzinfo=UTC))
    assert scheduled() == ["2026-03-02T10:10:00Z", "2026-03-02T10:20:00Z"]

    # Everything down from 10:25 to 11:47 (due times 10:30 ... 11:40 missed); new workers start.
    workers = [Worker(gateway, worker_id=f"w{i}", now=clock) for i in (3, 4)]
    tick_all(datetime(2026, 3, 2, 11, 47, tzinfo=UTC))
    tick_all(datetime(2026, 3, 2, 11, 48, tzinfo=UTC))
    assert scheduled() == ["2026-03-02T10:10:00Z", "2026-03-02T10:20:00Z", "2026-03-02T11:40:00Z"]
    [catch_up] = runs_of("nightly")[-1:]
    assert catch_up.trigger == {"kind": "schedule", "cron": "*/10 * * * *", "due": "2026-03-02T11:40:00Z"}
    assert catch_up.ref == "main"


def test_schedulers_racing_for_one_due_time_start_one_run(gateway):
    first = datetime(2026, 3, 2, 9, 55, tzinfo=UTC)
    schedulers = [Scheduler(gateway) for _ in range(4)]
    with database.connection_context():
        schedulers[0].tick(first)
    barrier = threading.Barrier(len(schedulers))
    started: list[int] = []

    def race(scheduler: Scheduler) -> None:
        with database.connection_context():
            barrier.wait(30)
            started.append(len(scheduler.tick(first + timedelta(minutes=5))))

    threads = [threading.Thread(target=race, args=(s,)) for s in schedulers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(started) == [0, 0, 0, 1]
    assert scheduled() == ["2026-03-02T10:00:00Z"]


@pytest.mark.parametrize(
    "now, due",
    [
        (datetime(2026, 3, 2, 1, 0, tzinfo=UTC), datetime(2026, 3, 2, 1, 0, tzinfo=UTC)),  # Mon 03:00 in Riga
        (datetime(2026, 3, 2, 0, 59, 59, tzinfo=UTC), datetime(2026, 2, 27, 1, 0, tzinfo=UTC)),  # still Friday's
        (datetime(2026, 3, 8, 12, 0, tzinfo=UTC), datetime(2026, 3, 6, 1, 0, tzinfo=UTC)),  # Sunday: Friday's
        (
            datetime(2026, 4, 1, 12, 0, tzinfo=UTC),
            datetime(2026, 4, 1, 0, 0, tzinfo=UTC),
        ),  # summer time: 03:00 = 00:00 UTC
    ],
)
def test_due_times_follow_the_time_zone(now, due):
    assert cron.latest_due("0 3 * * 1-5", ZoneInfo("Europe/Riga"), now) == due


def test_api_and_dashboard_runs_record_who_started_them(gateway, client, make_key):
    key = make_key(name="deploy bot")
    answer = client.simulate_post("/api/trigger-pipeline", json={"pipeline_id": "demo"}, headers={"X-API-Key": key})
    assert answer.status_code == 200, answer.text
    run_id = answer.json["run_id"]
    status = client.simulate_get("/api/get-status", params={"run_id": run_id}, headers={"X-API-Key": key}).json
    listed = client.simulate_get("/api/runs", params={"pipeline_id": "demo"}, headers={"X-API-Key": key}).json
    assert status["run"]["trigger"] == {"kind": "api", "key_name": "deploy bot", "key_preview": preview(key)}
    assert [r["trigger"] for r in listed["runs"]] == [status["run"]["trigger"]]

    make_user(gateway, "root", admin=True)
    person = Browser(client, "root")
    answer = person.post("/dashboard/pipelines/demo/trigger", {"branch": "main", "inputs": ""})
    assert answer.status_code == 303, answer.text
    dashboard_run = answer.headers["location"].rsplit("/", 1)[-1]
    status = client.simulate_get("/api/get-status", params={"run_id": dashboard_run}, headers={"X-API-Key": key}).json
    assert status["run"]["trigger"] == {"kind": "dashboard", "user": "root"}
    page = person.get(f"/dashboard/runs/{dashboard_run}")
    started = re.search(r'<dd data-trigger="dashboard">(.*?)</dd>', page.text).group(1)
    assert re.sub(r"<[^>]+>", "", started) == "root (dashboard)"
    runs_page = person.get("/dashboard/runs")
    assert "API key deploy bot (" in runs_page.text and "dashboard: root" in runs_page.text


def test_migration_records_the_api_key_of_existing_runs_or_unknown(tmp_path):
    from flashfusion.core.storage.db import open_database
    from flashfusion.core.storage.migrations import MIGRATIONS, migrate

    db = open_database(f"sqlite:///{tmp_path / 'old.db'}")
    db.connect()
    before = MIGRATIONS[: [name for _, name, _ in MIGRATIONS].index("run_triggers")]
    for _, _, apply in before:
        apply(db)
    db.execute_sql(
        "INSERT INTO api_key (id, name, key_hash, key_preview, permissions, pipeline_ids, created_at) "
        "VALUES ('key_1', 'ci', 'h', 'ffai_ab...', '[]', '[]', '2026-01-01 00:00:00')"
    )
    for run_id, key_id in (("run_a", "key_1"), ("run_b", None)):
        db.execute_sql(
            "INSERT INTO run (id, pipeline_id, provider, ref, inputs, api_key_id, status, phase, steps, "
            "state, created_at, updated_at) VALUES (?, 'demo', 'local', 'main', '{}', ?, 'success', "
            "'completed', '[]', '{}', '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
            (run_id, key_id),
        )
    db.execute_sql(
        "CREATE TABLE schema_migration (version INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL, "
        "applied_at DATETIME NOT NULL)"
    )
    for version, name, _ in before:
        db.execute_sql("INSERT INTO schema_migration VALUES (?, ?, '2026-01-01 00:00:00')", (version, name))
    assert [name for name in migrate(db) if name.endswith("_run_triggers")]
    rows = dict(db.execute_sql('SELECT id, "trigger" FROM run').fetchall())
    db.close()
    assert json.loads(rows["run_a"]) == {"kind": "api", "key_name": "ci", "key_preview": "ffai_ab..."}
    assert json.loads(rows["run_b"]) == {"kind": "unknown"}
