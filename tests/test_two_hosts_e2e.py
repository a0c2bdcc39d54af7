"""Two hosts on one database: two ``flashfusion serve`` instances (2 gunicorn processes
each, on different ports) and two ``flashfusion worker``s. A revoked key answers 401 from
every process within ``auth.key_cache_seconds`` + 0.5 s (on PostgreSQL, where revocations
are pushed, within 0.5 s even with a 30 s cache and slices kept for 30 s); a SIGKILLed worker's runs are taken over by
the other worker, every webhook is delivered, and a run cancelled through one process shows so in
the get-status of every process although each remembers runs for 30 s."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from conftest import write_config
from testkit.receiver import Receiver
from testkit.server import FLASHFUSION, cli, cli_key_answer, spawn, start_server, wait_for

from flashfusion.core.app import build_gateway
from flashfusion.core.config import load_config
from flashfusion.core.storage.db import database
from flashfusion.core.webhooks.callers import Caller
from flashfusion.core.webhooks.management import WebhookService

pytestmark = pytest.mark.e2e
EXTRA = """
[auth]
key_cache_seconds = {cache}
usage_flush_seconds = {cache}

[webhooks]
allow_http = true
allow_private_networks = true
tick_seconds = 0.05
"""


REMEMBER_RUNS_30_SECONDS = {"FLASHFUSION_SERVER__RUN_CACHE_SECONDS": "30"}


def fresh_connection_answers(urls: list[str], key: str, run_id: str, per_url: int) -> list[httpx.Response]:
    """get-status on a new connection each time: the kernel spreads them over every
    gunicorn process of each instance (a listening socket per process)."""

    def one(url: str) -> httpx.Response:
        return httpx.get(url + "/api/get-status", params={"run_id": run_id}, headers={"X-API-Key": key}, timeout=30)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, [u for u in urls for _ in range(per_url)]))


def fresh_connection_statuses(urls: list[str], key: str, run_id: str, per_url: int) -> list[int]:
    return [a.status_code for a in fresh_connection_answers(urls, key, run_id, per_url)]


def seen_everywhere(urls: list[str], key: str, run_id: str, field: str, within: float) -> set:
    """The run's ``field`` as every process answers it, asked again until all say the same or
    ``within`` seconds pass."""
    deadline = time.monotonic() + within
    while True:
        seen = {a.json()["run"][field] for a in fresh_connection_answers(urls, key, run_id, 10)}
        if len(seen) == 1 or time.monotonic() >= deadline:
            return seen


def test_revocation_and_a_killed_worker_across_two_instances(tmp_path, db_url, backend):
    pushed = backend == "postgresql"
    cache_seconds = 30.0 if pushed else 1.0
    config = write_config(tmp_path, db_url, EXTRA.format(cache=cache_seconds), slow_seconds=1.5)
    with Receiver() as rx:
        gateway = build_gateway(load_config(str(config), env={}))
        with database.connection_context():
            WebhookService(gateway).create(Caller(), {"url": rx.url()})
        database.close()
        hosts = []
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            hosts.append(
                start_server(config, tmp_path / name, "--no-worker", "--workers", "2", env=REMEMBER_RUNS_30_SECONDS)
            )
        workers = [
            spawn([FLASHFUSION, "--config", str(config), "worker"], tmp_path / f"worker-{i}.log", cwd=tmp_path)
            for i in (1, 2)
        ]
        urls = [h.url for h in hosts]
        try:
            made = cli_key_answer(config, name="ci")
            key = made["plaintext_key"]
            run_ids = [
                httpx.post(
                    urls[i % 2] + "/api/trigger-pipeline",
                    json={"pipeline_id": "slow"},
                    headers={"X-API-Key": key},
                    timeout=30,
                ).json()["run_id"]
                for i in range(2)
            ]

            def status(run_id: str) -> dict:
                return httpx.get(
                    urls[0] + "/api/get-status", params={"run_id": run_id}, headers={"X-API-Key": key}, timeout=30
                ).json()["run"]

            def sleepy(run_id: str) -> bool:
                return any(s["name"] == "sleepy" and s["status"] == "running" for s in status(run_id)["steps"])

            wait_for(lambda: all(sleepy(r) for r in run_ids), timeout=40, what="every run in its sleepy step")
            workers[0].stop(signal.SIGKILL)
            runs = wait_for(
                lambda: (rs := [status(r) for r in run_ids]) and all(r["status"] != "running" for r in rs) and rs,
                timeout=60,
                interval=0.3,
                what="every run to finish after the kill",
            )
            assert [r["status"] for r in runs] == ["success"] * 2, runs
            rx.wait_for(
                lambda r: (
                    {(e.json["event"], e.json["data"]["run_id"]) for e in r.requests}
                    >= {("run.completed", r) for r in run_ids}
                ),
                timeout=60,
            )

            # every process remembers a run for 30 s; one process's change reaches all of them at
            # once on one host's SQLite, within milliseconds (NOTIFY) on PostgreSQL
            late = httpx.post(
                urls[0] + "/api/trigger-pipeline", json={"pipeline_id": "slow"}, headers={"X-API-Key": key}, timeout=30
            ).json()["run_id"]
            assert seen_everywhere(urls, key, late, "cancel_requested", within=0) == {False}
            cancelled = httpx.post(
                urls[1] + "/api/cancel-run", json={"run_id": late}, headers={"X-API-Key": key}, timeout=30
            )
            assert cancelled.json()["run"]["cancel_requested"] is True
            assert seen_everywhere(urls, key, late, "cancel_requested", within=0.5 if pushed else 0) == {True}

            assert set(fresh_connection_statuses(urls, key, run_ids[0], 40)) == {200}  # cached everywhere
            cli("keys", "revoke", made["id"], config=config)
            revoked_at = time.monotonic()
            bound = revoked_at + (0 if pushed else cache_seconds) + 0.5
            while time.monotonic() < bound:
                fresh_connection_statuses(urls, key, run_ids[0], 4)
            assert set(fresh_connection_statuses(urls, key, run_ids[0], 60)) == {401}
        finally:
            for w in workers:
                w.stop(signal.SIGKILL)
            for h in hosts:
                h.process.stop()
