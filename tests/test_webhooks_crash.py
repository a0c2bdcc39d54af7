"""At-least-once under SIGKILL: 1,000 outbox events delivered by real ``flashfusion worker``
processes that are killed and restarted while delivering. Every event arrives, duplicates
happen only for deliveries in flight at a kill, nothing stays undelivered. On PostgreSQL
two workers run at once (SKIP LOCKED leases)."""

from __future__ import annotations

import signal
import time

import pytest

from flashfusion.core.runs import transitions as runs
from flashfusion.core.app import build_gateway
from flashfusion.core.config import load_config
from flashfusion.core.storage.db import database, write_tx
from flashfusion.core.storage.models import WebhookDelivery
from flashfusion.core.webhooks.endpoints import Caller, WebhookService
from conftest import write_config
from testkit.receiver import Receiver
from testkit.server import FLASHFUSION, spawn

pytestmark = pytest.mark.e2e
EVENTS = 1000
TIMEOUT = 1.0
CONFIG = """
[webhooks]
allow_http = true
allow_private_networks = true
timeout_seconds = {timeout}
lease_seconds = 1.0
batch_size = 20
concurrency = 4
tick_seconds = 0.05

[rate_limits]
webhook_events_per_minute = 1000000
"""


def test_every_event_arrives_while_workers_are_killed(tmp_path, db_url, backend):
    config = write_config(tmp_path, db_url, CONFIG.format(timeout=TIMEOUT))
    gateway = build_gateway(load_config(str(config), env={}))
    workers_at_once = 2 if backend == "postgresql" else 1
    with Receiver(delay=0.002) as rx:
        with database.connection_context():
            WebhookService(gateway).create(Caller(), {"url": rx.url()})
            for start in range(0, EVENTS, 100):
                with write_tx():
                    for i in range(start, start + 100):
                        runs.emit("run.completed", "demo", None, {"run_id": f"run_{i}", "n": i})
            event_ids = {row[0] for row in database.execute_sql("SELECT id FROM event").fetchall()}
        database.close()
        assert len(event_ids) == EVENTS

        def start_worker(n):
            return spawn([FLASHFUSION, "--config", str(config), "worker"], tmp_path / f"worker-{n}.log", cwd=tmp_path)

        started = 0
        workers = []
        for _ in range(workers_at_once):
            workers.append(start_worker(started))
            started += 1
        kills: list[float] = []
        thresholds = [150, 350, 550, 750]
        deadline = time.monotonic() + 60
        try:
            while thresholds and time.monotonic() < deadline:
                if len(rx.ids()) >= thresholds[0]:
                    thresholds.pop(0)
                    victim = workers.pop(0)
                    victim.proc.send_signal(signal.SIGKILL)
                    victim.proc.wait(timeout=10)
                    kills.append(time.monotonic())
                    workers.append(start_worker(started))
                    started += 1
                time.sleep(0.005)
            assert not thresholds, f"deliveries stalled: {len(rx.ids())} of {EVENTS}"
            rx.wait_for(lambda r: set(r.ids()) >= event_ids, timeout=60)
            with database.connection_context():
                for _ in range(100):
                    left = WebhookDelivery.select().where(WebhookDelivery.status != "succeeded").count()
                    if not left:
                        break
                    time.sleep(0.1)
                total = WebhookDelivery.select().count()
            database.close()
        finally:
            for w in workers:
                w.stop(signal.SIGTERM, timeout=20)
        assert left == 0 and total == EVENTS  # nothing undelivered, one delivery row per event

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
        assert any(k - TIMEOUT - 0.5 <= first_seen[dup] <= k + 0.05 for k in kills), dup
    assert len(duplicates) <= len(kills) * 20
    print(f"\n{backend}: {EVENTS} events, {len(kills)} SIGKILLs, {workers_at_once} worker(s) at once, "
          f"{len(received)} requests, {len(duplicates)} duplicates")
