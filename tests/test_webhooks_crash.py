"""At-least-once under SIGKILL: outbox events delivered by real ``flashfusion worker``
processes that are killed and restarted while delivering. Every event arrives, duplicates
happen only for deliveries in flight at a kill (at most ``concurrency`` per kill, whatever
the claimed batch), every request the receiver got is in the delivery log, nothing stays
undelivered. On PostgreSQL two workers run at once (SKIP LOCKED leases)."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import write_config
from testkit.receiver import Receiver
from testkit.server import FLASHFUSION, Process, spawn

from flashfusion.core.app import build_gateway
from flashfusion.core.config import load_config
from flashfusion.core.runs import transitions as runs
from flashfusion.core.storage.db import database, write_tx
from flashfusion.core.storage.models import WebhookAttempt, WebhookDelivery
from flashfusion.core.webhooks.callers import Caller
from flashfusion.core.webhooks.dispatcher import OUTCOME_UNKNOWN
from flashfusion.core.webhooks.management import WebhookService

pytestmark = pytest.mark.e2e
TIMEOUT = 1.0
CONFIG = """
[webhooks]
allow_http = true
allow_private_networks = true
timeout_seconds = {timeout}
lease_seconds = 1.0
batch_size = {batch}
concurrency = {concurrency}
tick_seconds = 0.05

[rate_limits]
webhook_events_per_minute = 1000000
"""


class KilledWorkers:
    """Real worker processes on one config; ``kill_one`` SIGKILLs the oldest and starts another."""

    def __init__(self, config: Path, tmp_path: Path, at_once: int) -> None:
        self.config, self.tmp_path = config, tmp_path
        self.started = 0
        self.running: list[Process] = []
        self.kills: list[float] = []
        for _ in range(at_once):
            self.start()

    def start(self) -> None:
        self.running.append(
            spawn(
                [FLASHFUSION, "--config", str(self.config), "worker"],
                self.tmp_path / f"worker-{self.started}.log",
                cwd=self.tmp_path,
            )
        )
        self.started += 1

    def kill_one(self) -> None:
        victim = self.running.pop(0)
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(timeout=10)
        self.kills.append(time.monotonic())
        self.start()

    def kill_at(self, rx: Receiver, thresholds: list[int], total: int, timeout: float = 60) -> None:
        """Kill a worker each time the receiver has seen the next threshold of distinct events."""
        left = list(thresholds)
        deadline = time.monotonic() + timeout
        while left and time.monotonic() < deadline:
            if len(rx.ids()) >= left[0]:
                left.pop(0)
                self.kill_one()
            time.sleep(0.005)
        assert not left, f"deliveries stalled: {len(rx.ids())} of {total}"

    def stop(self) -> None:
        for w in self.running:
            w.stop(signal.SIGTERM, timeout=20)


def queue_events(
    tmp_path: Path, db_url: str, rx: Receiver, count: int, batch: int, concurrency: int
) -> tuple[Path, set]:
    """A config for the workers, one endpoint at ``rx`` and ``count`` committed outbox events."""
    config = write_config(tmp_path, db_url, CONFIG.format(timeout=TIMEOUT, batch=batch, concurrency=concurrency))
    gateway = build_gateway(load_config(str(config), env={}))
    with database.connection_context():
        WebhookService(gateway).create(Caller(), {"url": rx.url()})
        for start in range(0, count, 100):
            with write_tx():
                for i in range(start, min(start + 100, count)):
                    runs.emit("run.completed", "demo", None, {"run_id": f"run_{i}", "n": i})
        event_ids = {row[0] for row in database.execute_sql("SELECT id FROM event").fetchall()}
    database.close()
    assert len(event_ids) == count
    return config, event_ids


def wait_all_succeeded(rx: Receiver, event_ids: set) -> tuple[int, int]:
    """Wait until every event arrived and every delivery is recorded; (left, total) rows."""
    rx.wait_for(lambda r: set(r.ids()) >= event_ids, timeout=60)
    with database.connection_context():
        for _ in range(200):
            left = WebhookDelivery.select().where(WebhookDelivery.status != "succeeded").count()
            if not left:
                break
            time.sleep(0.05)
        total = WebhookDelivery.select().count()
    database.close()
    return left, total


def test_every_event_arrives_while_workers_are_killed(tmp_path, db_url, backend):
    events = 1000
    with Receiver(delay=0.002) as rx:
        config, event_ids = queue_events(tmp_path, db_url, rx, events, batch=20, concurrency=4)
        workers = KilledWorkers(config, tmp_path, 2 if backend == "postgresql" else 1)
        try:
            workers.kill_at(rx, [150, 350, 550, 750], events)
            left, total = wait_all_succeeded(rx, event_ids)
        finally:
            workers.stop()
        assert left == 0 and total == events  # nothing undelivered, one delivery row per event

    received = rx.snapshot()
    counts = rx.ids()
    assert set(counts) == event_ids
    duplicates = {i for i, c in counts.items() if c > 1}
    first_seen = {}
    for r in received:
        first_seen.setdefault(r.webhook_id, r.at)
    # a duplicate is a delivery that was in flight when a worker was killed: its first
    # arrival happened shortly before a kill (within one attempt's timeout)
    for dup in duplicates:
        assert any(k - TIMEOUT - 0.5 <= first_seen[dup] <= k + 0.05 for k in workers.kills), dup
    assert len(received) - events <= len(workers.kills) * 4
    print(
        f"\n{backend}: {events} events, {len(workers.kills)} SIGKILLs, {len(workers.running)} worker(s) at once, "
        f"{len(received)} requests, {len(duplicates)} duplicates"
    )


def test_a_kill_resends_only_requests_in_flight_and_every_send_is_logged(tmp_path, db_url, backend):
    """Issue #14.5: the claimed batch (50) is far larger than the requests in flight (4). Five
    SIGKILLs during 500 deliveries resend at most 5 x 4 requests, and each request the
    receiver got is an attempt in the delivery log (``attempts`` and one attempt record each)."""
    events, concurrency, kills = 500, 4, 5
    with Receiver(delay=0.01) as rx:
        config, event_ids = queue_events(tmp_path, db_url, rx, events, batch=50, concurrency=concurrency)
        workers = KilledWorkers(config, tmp_path, 2 if backend == "postgresql" else 1)
        try:
            workers.kill_at(rx, [40, 120, 200, 280, 360], events)
            left, total = wait_all_succeeded(rx, event_ids)
        finally:
            workers.stop()
        assert left == 0 and total == events
        received = Counter(r.webhook_id for r in rx.snapshot())

    assert len(workers.kills) == kills and set(received) == event_ids
    duplicates = sum(received.values()) - events
    assert duplicates <= kills * concurrency, f"{duplicates} duplicate requests for {kills} kills"

    with database.connection_context():
        deliveries = {d.event_id: d for d in WebhookDelivery.select()}
        logged = Counter()
        unknown = 0
        for a in WebhookAttempt.select():
            logged[a.delivery_id] += 1
            unknown += a.error == OUTCOME_UNKNOWN
    database.close()
    for event_id, sent in received.items():
        d = deliveries[event_id]
        assert logged[d.id] == d.attempts, (event_id, logged[d.id], d.attempts)
        assert sent <= d.attempts, f"{event_id}: the receiver got {sent} requests, the log shows {d.attempts}"
    # attempts that were started when a worker died and never got an outcome: in flight, so bounded too
    assert sum(d.attempts for d in deliveries.values()) - events == unknown <= kills * concurrency
    print(
        f"\n{backend}: {events} deliveries, {kills} SIGKILLs, {duplicates} duplicate requests, "
        f"{unknown} attempts without an outcome"
    )
