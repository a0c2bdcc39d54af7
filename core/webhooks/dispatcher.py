"""The worker side of webhooks: fan out the outbox, claim due deliveries, send, record.

1. Fan-out: outbox rows not fanned out yet become one delivery per subscribed endpoint
   (``outbox.fan_out``, the same fan-out sendWebhook uses), marked in the same transaction.
2. Claim: due deliveries are leased (``lease_owner``/``lease_until``) in one transaction —
   ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite — so two workers
   never hold the same delivery. A delivery that has not yet been counted against its
   endpoint's rate limit is counted here; over the limit it is postponed, never dropped.
3. Start: right before a request leaves, its attempt goes on record in a write transaction
   shared with the requests starting beside it: ``attempts`` + 1, an attempt record without
   an outcome, and a lease that outlives the request timeout.
4. Send: outside any transaction, from a thread pool of ``concurrency`` threads, to the
   address the SSRF check approved.
5. Record: as requests end, their outcomes go on record in the transaction that starts the
   next ones: success, the next attempt (retry schedule with jitter, ``Retry-After`` on
   429/503), or failure; 410 disables the endpoint, and so does failing for
   ``webhooks.disable_after_hours``. So at most ``concurrency`` requests are ever started
   without an outcome on record: a worker killed at any moment makes at most that many
   deliveries go out again (after their lease expires), each of them a logged attempt
   (an attempt left without an outcome says so: ``OUTCOME_UNKNOWN``).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import peewee

from flashfusion.core.ids import new_id
from flashfusion.core.storage.db import database, from_db_time, is_sqlite, to_db_time, utcnow, write_tx
from flashfusion.core.storage.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from flashfusion.core.webhooks import claims, endpoint_health, outbox, outcomes, signing
from flashfusion.core.webhooks import sender as client
from flashfusion.core.webhooks.crypto import SecretBox, box_for, endpoint_secrets
from flashfusion.core.webhooks.schedule import parse_schedule
from flashfusion.core.webhooks.ssrf import Policy, Resolver, UrlRefused, check_url, system_resolver

log = logging.getLogger("flashfusion.webhooks")
JITTER = 0.2
MAX_RETRY_AFTER = 24 * 3600.0
REFUSED = "destination refused: the URL's host does not resolve only to public addresses"
OUTCOME_UNKNOWN = "no outcome: the worker stopped during this attempt (the request may have arrived)"


@dataclass
class Job:
    """A claimed delivery on its way; ``attempt`` and ``attempt_id`` are set when it starts."""

    row: WebhookDelivery
    ep: WebhookEndpoint
    secrets: list[str] | None
    attempt: int = 0
    attempt_id: str = ""


class Dispatcher:
    def __init__(
        self,
        gateway,
        worker_id: str | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        wall: Callable[[], float] = time.time,
        resolver: Resolver = system_resolver,
        rng: random.Random | None = None,
        jitter: float = JITTER,
    ) -> None:
        self.gw = gateway
        self.cfg = gateway.config.webhooks
        self.id = (worker_id or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}")[:80]
        self.clock = clock
        self.wall = wall
        self.resolver = resolver
        self.rng = rng or random.Random()
        self.jitter = jitter
        self.schedule = parse_schedule(self.cfg.retry_schedule)
        self.lease = max(self.cfg.lease_seconds, self.cfg.timeout_seconds * 1.5 + 1)  # outlives an attempt
        self.policy = Policy.from_config(self.cfg)
        self.limit = gateway.config.rate_limits.webhook_events_per_minute
        self._box: SecretBox | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self.stop_event = threading.Event()

    @property
    def box(self) -> SecretBox:
        if self._box is None:
            self._box = box_for(self.gw.config)
        return self._box

    # --- the loop -------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run_forever, name="webhook-dispatcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=self.cfg.timeout_seconds + 5)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        try:
            with database.connection_context():
                self.release()
        except peewee.DatabaseError:
            pass  # leases expire on their own

    def run_forever(self) -> None:
        while not self.stop_event.is_set():
            busy = 0
            try:
                busy = self.run_once()
            except peewee.DatabaseError as exc:
                log.warning("database error in webhook dispatcher: %s", exc.__class__.__name__)
                database.close()
            except Exception:
                log.exception("webhook dispatcher failed")
            if not busy:
                self.stop_event.wait(self.cfg.tick_seconds)

    def run_once(self) -> int:
        """One round: fan out, claim, send, record. Returns how much work it found."""
        with database.connection_context():
            fanned = self.fan_out()
            claimed = self.claim()
            more = self.deliver(claimed)
        return fanned + len(claimed) + more

    def drain(self, rounds: int = 100) -> int:
        """Run rounds until nothing is due (tests, ``webhooks deliver``). Bounded."""
        total = 0
        for _ in range(rounds):
            found = self.run_once()
            total += found
            if not found:
                break
        return total

    def release(self) -> None:
        WebhookDelivery.update(lease_owner=None, lease_until=None).where(
            (WebhookDelivery.lease_owner == self.id) & (WebhookDelivery.status == "pending")
        ).execute()

    # --- fan-out --------------------------------------------------------------------

    def fan_out(self) -> int:
        with write_tx():
            events = outbox.unmarked(int(self.cfg.batch_size) * 4)
            if events:
                endpoints = outbox.live_endpoints()
                outbox.fan_out([(event, outbox.subscribers(endpoints, event)) for event in events], self.clock())
        return len(events)

    # --- claim ----------------------------------------------------------------------

    def claim(self) -> list[tuple[WebhookDelivery, WebhookEndpoint]]:
        return claims.claim_due(
            self.id, self.clock, lease_seconds=self.lease, batch_size=self.cfg.batch_size, limit=self.limit
        )

    # --- send and record ------------------------------------------------------------

    def deliver(self, claimed: list[tuple[WebhookDelivery, WebhookEndpoint]]) -> int:
        """Send the claimed deliveries with at most ``concurrency`` requests in flight, and
        claim more whenever the queue runs dry. Each write transaction records the outcomes
        that ended since the last one and starts the requests that take their places, so
        at any moment at most ``concurrency`` sends are started without an outcome on
        record — all that a kill can make us send twice. Returns how many more it claimed."""
        queue: deque[Job] = deque(self.jobs(claimed))
        in_flight: dict[Future, Job] = {}
        ended: list[tuple[Job, client.Outcome]] = []
        extra, more = 0, bool(queue)
        while True:
            stopping = self.stop_event.is_set()
            if more and not queue and not stopping and len(in_flight) < self.cfg.concurrency:
                fresh = self.refill() if in_flight else []
                extra += len(fresh)
                more = bool(fresh)
                queue.extend(self.jobs(fresh))
            starting = (
                []
                if stopping
                else [queue.popleft() for _ in range(min(self.cfg.concurrency - len(in_flight), len(queue)))]
            )
            if ended or starting:
                for job in self.settle(ended, starting):
                    in_flight[self.submit(job)] = job
            ended = []
            if not in_flight:
                return extra
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            ended = [(in_flight.pop(f), f.result()) for f in done]

    def refill(self) -> list[tuple[WebhookDelivery, WebhookEndpoint]]:
        fresh = self.claim()
        if not fresh and self.fan_out():
            fresh = self.claim()
        return fresh

    def jobs(self, claimed: list[tuple[WebhookDelivery, WebhookEndpoint]]) -> list[Job]:
        jobs = []
        for row, ep in claimed:
            try:
                secrets = endpoint_secrets(self.box, ep, self.clock())
            except Exception as exc:  # a missing FLASHFUSION_SECRET_KEY must not stop other endpoints
                log.error("cannot sign for webhook %s: %s", ep.id, exc.__class__.__name__)
                secrets = None
            jobs.append(Job(row, ep, secrets))
        return jobs

    def submit(self, job: Job) -> Future:
        if self.cfg.concurrency == 1:
            future: Future = Future()
            future.set_result(self.attempt(job.row, job.ep, job.secrets))
            return future
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.cfg.concurrency, thread_name_prefix="webhook-send")
        return self._pool.submit(self.attempt, job.row, job.ep, job.secrets)

    def settle(self, ended: list[tuple[Job, client.Outcome]], starting: list[Job]) -> list[Job]:
        """One write transaction: record ``ended``, then start ``starting``; returns the jobs
        that may be sent (those still leased to this worker)."""
        now = self.clock()
        with write_tx():
            if ended:
                self.record(ended, now)
            return self.start_attempts(starting, now) if starting else []

    def start_attempts(self, jobs: list[Job], now: datetime) -> list[Job]:
        """Put each attempt on record before its request leaves: ``attempts`` + 1, an attempt
        record without an outcome, and a fresh lease covering the request."""
        by_id = {job.row.id: job for job in jobs}
        marks = ", ".join([database.param] * len(by_id))
        sql = (
            f"SELECT id, attempts FROM webhook_delivery WHERE id IN ({marks}) AND status = 'pending' "
            f"AND lease_owner = {database.param}"
        )
        if not is_sqlite():
            sql += " FOR UPDATE"
        mine = database.execute_sql(sql, (*by_id, self.id)).fetchall()
        if not mine:
            return []
        stamp = to_db_time(now)
        started = []
        for delivery_id, attempts in mine:
            job = by_id[delivery_id]
            job.attempt, job.attempt_id = attempts + 1, new_id("att")
            started.append(job)
        ids = [job.row.id for job in started]
        retried = [job.row.id for job in started if job.attempt > 1]
        if retried:  # a worker that died during an earlier attempt left it without an outcome
            WebhookAttempt.update(error=OUTCOME_UNKNOWN).where(
                WebhookAttempt.delivery_id.in_(retried)
                & WebhookAttempt.latency_ms.is_null()
                & WebhookAttempt.error.is_null()
            ).execute()
        _executemany(
            _sql("INSERT INTO webhook_attempt (id, delivery_id, attempt, worker, started_at) VALUES (?, ?, ?, ?, ?)"),
            [(job.attempt_id, job.row.id, job.attempt, self.id, stamp) for job in started],
        )
        WebhookDelivery.update(
            attempts=WebhookDelivery.attempts + 1,
            updated_at=stamp,
            lease_until=to_db_time(now + timedelta(seconds=self.lease)),
        ).where(WebhookDelivery.id.in_(ids)).execute()
        return started

    def attempt(self, row: WebhookDelivery, ep: WebhookEndpoint, secrets: list[str] | None) -> client.Outcome:
        if secrets is None:
            return client.Outcome(status=None, latency_ms=0, error="signing key unavailable on this worker")
        try:
            target = check_url(ep.url, self.policy, self.resolver)
        except UrlRefused:
            return client.Outcome(status=None, latency_ms=0, error=REFUSED)
        body = row.body.encode("utf-8")
        headers = signing.headers(
            secrets, msg_id=row.event_id, timestamp=int(self.wall()), event_type=row.event_type, body=body
        )
        try:
            return client.post(target, body, headers, self.cfg.timeout_seconds)
        except Exception as exc:
            log.exception("webhook attempt %s crashed", row.id)
            return client.Outcome(status=None, latency_ms=0, error=f"internal error: {exc.__class__.__name__}")

    def next_delay(self, attempt: int, outcome: client.Outcome) -> float:
        base = self.schedule[attempt]
        delay = base * (1 + self.rng.uniform(-self.jitter, self.jitter)) if base else 0.0
        if outcome.status in (429, 503) and outcome.retry_after is not None:
            delay = max(delay, min(outcome.retry_after, MAX_RETRY_AFTER))
        return delay

    def record(self, ended: list[tuple[Job, client.Outcome]], now: datetime) -> None:
        """Outcomes of started attempts, in the order they ended: the attempt records, the
        deliveries (unless another worker took one over after our lease ran out: it decides)
        and, once per endpoint, what the outcomes say about it."""
        stamp = to_db_time(now)
        attempts, deliveries = [], []
        endpoints: dict[str, list[client.Outcome]] = {}
        for job, outcome in ended:
            error = outcomes.describe(outcome)
            attempts.append((outcome.status, outcome.latency_ms, error, outcome.excerpt, job.attempt_id))
            if outcome.ok:
                status, next_at, delivered = "succeeded", None, stamp
            elif outcome.status == 410 or job.attempt >= len(self.schedule):
                status, next_at, delivered = "failed", None, None
            else:
                next_at = to_db_time(now + timedelta(seconds=self.next_delay(job.attempt, outcome)))
                status, delivered = "pending", None
            deliveries.append(
                (
                    status,
                    outcome.status,
                    outcome.latency_ms,
                    error,
                    outcome.excerpt,
                    stamp,
                    delivered,
                    next_at,
                    job.row.id,
                    self.id,
                )
            )
            outcomes.note(job, outcome, status, error)
            endpoints.setdefault(job.ep.id, []).append(outcome)
        _executemany(
            _sql(
                "UPDATE webhook_attempt SET status_code = ?, latency_ms = ?, error = ?, "
                "response_excerpt = ? WHERE id = ?"
            ),
            attempts,
        )
        _executemany(
            _sql(
                "UPDATE webhook_delivery SET status = ?, last_status_code = ?, last_latency_ms = ?, "
                "last_error = ?, last_response = ?, updated_at = ?, "
                "delivered_at = COALESCE(?, delivered_at), next_attempt_at = ?, "
                "lease_owner = NULL, lease_until = NULL "
                "WHERE id = ? AND status = 'pending' AND lease_owner = ?"
            ),
            deliveries,
        )
        failing = [ep_id for ep_id, outcomes in endpoints.items() if not all(o.ok for o in outcomes)]
        since: dict[str, Any] = {}
        if failing:
            rows = (
                WebhookEndpoint.select(WebhookEndpoint.id, WebhookEndpoint.failing_since)
                .where(WebhookEndpoint.id.in_(failing))
                .tuples()
            )
            since = dict(cast(Iterable[tuple[str, Any]], rows))  # peewee's stubs type rows as models
        for ep_id, ends in endpoints.items():
            endpoint_health.judge(ep_id, ends, from_db_time(since.get(ep_id)), now, self.cfg.disable_after_hours)


def _sql(text: str) -> str:
    """``?`` placeholders in the database's own style."""
    return text if is_sqlite() else text.replace("?", database.param)


def _executemany(sql: str, rows: list[tuple]) -> None:
    if rows:
        database.cursor().executemany(sql, rows)
