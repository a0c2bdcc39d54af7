"""The worker side of webhooks: fan out the outbox, claim due deliveries, send, record.

1. Fan-out: outbox rows (``event.fanned_out = FALSE``) become one delivery per subscribed
   endpoint, with the body serialized once, and are marked in the same transaction.
2. Claim: due deliveries are leased (``lease_owner``/``lease_until``) in one transaction —
   ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite — so two workers
   never hold the same delivery. A delivery that has not yet been counted against its
   endpoint's rate limit is counted here; over the limit it is postponed, never dropped.
3. Send: outside any transaction, from a small thread pool, to the address the SSRF check
   approved. The lease outlives the request timeout, so a delivery is only sent twice when
   its worker died with the request in flight (at-least-once).
4. Record: the attempt, then success, the next attempt (retry schedule with jitter,
   ``Retry-After`` on 429/503), or failure; 410 disables the endpoint, and so does failing
   for ``webhooks.disable_after_hours``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime, timedelta
from typing import Callable

import peewee

from flashfusion.core.access import ratelimit
from flashfusion.core.ids import new_id
from flashfusion.core.storage.db import (
    database,
    fetch_by_id,
    from_db_time,
    is_sqlite,
    iso,
    to_db_time,
    utcnow,
    write_tx,
)
from flashfusion.core.storage.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from flashfusion.core.webhooks import sender as client
from flashfusion.core.webhooks import signing
from flashfusion.core.webhooks.endpoints import (
    RATE_PERIOD,
    WebhookService,
    bucket,
    mark_fanned_out,
    matches,
    new_delivery,
    wait_seconds,
)
from flashfusion.core.webhooks.payload import PayloadError, build_body
from flashfusion.core.webhooks.schedule import parse_schedule
from flashfusion.core.webhooks.ssrf import Resolver, UrlRefused, check_url, system_resolver

log = logging.getLogger("flashfusion.webhooks")
JITTER = 0.2
MAX_RETRY_AFTER = 24 * 3600.0
REFUSED = "destination refused: the URL's host does not resolve only to public addresses"


class Dispatcher:
    def __init__(self, gateway, worker_id: str | None = None, *, clock: Callable[[], datetime] = utcnow,
                 wall: Callable[[], float] = time.time, resolver: Resolver = system_resolver,
                 rng: random.Random | None = None, jitter: float = JITTER, service: WebhookService | None = None) -> None:
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
        self.service = service or WebhookService(gateway, resolver=resolver)
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self.stop_event = threading.Event()

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
            self.deliver(claimed)
        return fanned + len(claimed)

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
            (WebhookDelivery.lease_owner == self.id) & (WebhookDelivery.status == "pending")).execute()

    # --- fan-out --------------------------------------------------------------------

    def fan_out(self) -> int:
        sql = (f"SELECT id, event_type, pipeline_id, payload, created_at FROM event WHERE fanned_out = FALSE "
               f"ORDER BY created_at LIMIT {int(self.cfg.batch_size) * 4}")
        if not is_sqlite():
            sql += " FOR UPDATE SKIP LOCKED"
        with write_tx():
            events = database.execute_sql(sql).fetchall()
            if not events:
                return 0
            endpoints = list(WebhookEndpoint.select().where(WebhookEndpoint.deleted_at.is_null()
                                                            & WebhookEndpoint.disabled_at.is_null()))
            now = self.clock()
            rows = []
            for event_id, event_type, pipeline_id, payload, created_at in events:
                targets = [ep for ep in endpoints if matches(ep, event_type, pipeline_id)]
                if not targets:
                    continue
                data = json.loads(payload) if isinstance(payload, str) else payload
                try:
                    body = build_body(event_type, iso(from_db_time(created_at)), pipeline_id or None, data)
                except PayloadError as exc:
                    log.error("event %s cannot be serialized for webhooks: %s", event_id, exc)
                    continue
                text = body.decode("utf-8")
                rows.extend(new_delivery(ep.id, event_id, event_type, pipeline_id or None, text, now,
                                         rate_counted=False) for ep in targets)
            for start in range(0, len(rows), 200):
                WebhookDelivery.insert_many(rows[start:start + 200]).execute()
            mark_fanned_out([e[0] for e in events])
        return len(events)

    # --- claim ----------------------------------------------------------------------

    def claim(self) -> list[tuple[WebhookDelivery, WebhookEndpoint]]:
        now = to_db_time(self.clock())
        until = to_db_time(self.clock() + timedelta(seconds=self.lease))
        usable = (WebhookEndpoint.select(WebhookEndpoint.id)
                  .where(WebhookEndpoint.deleted_at.is_null() & WebhookEndpoint.disabled_at.is_null()))
        due = ((WebhookDelivery.status == "pending") & (WebhookDelivery.next_attempt_at <= now)
               & (WebhookDelivery.lease_until.is_null() | (WebhookDelivery.lease_until < now))
               & WebhookDelivery.endpoint_id.in_(usable))
        limit = self.service.limit
        with write_tx():
            query = WebhookDelivery.select().where(due).order_by(WebhookDelivery.next_attempt_at).limit(self.cfg.batch_size)
            if not is_sqlite():
                query = query.for_update(skip_locked=True)
            rows = list(query)
            if not rows:
                return []
            endpoints = {ep.id: ep for ep in WebhookEndpoint.select().where(
                WebhookEndpoint.id.in_({r.endpoint_id for r in rows}))}
            claimed, counted, postponed = [], [], {}
            for row in rows:
                if not row.rate_counted:
                    decision = ratelimit.hit(bucket(row.endpoint_id), limit, RATE_PERIOD)
                    if not decision.allowed:
                        postponed[row.id] = wait_seconds(decision)
                        continue
                    counted.append(row.id)
                claimed.append((row, endpoints[row.endpoint_id]))
            for row_id, wait in postponed.items():
                WebhookDelivery.update(next_attempt_at=to_db_time(self.clock() + timedelta(seconds=wait))
                                       ).where(WebhookDelivery.id == row_id).execute()
            if counted:
                WebhookDelivery.update(rate_counted=True).where(WebhookDelivery.id.in_(counted)).execute()
            if claimed:
                WebhookDelivery.update(lease_owner=self.id, lease_until=until).where(
                    WebhookDelivery.id.in_([r.id for r, _ in claimed])).execute()
        return claimed

    # --- send and record ------------------------------------------------------------

    def deliver(self, claimed: list[tuple[WebhookDelivery, WebhookEndpoint]]) -> None:
        if not claimed:
            return
        jobs = []
        for row, ep in claimed:
            try:
                secrets = self.service.secrets_for(ep, self.clock())
            except Exception as exc:  # a missing FLASHFUSION_SECRET_KEY must not stop other endpoints
                log.error("cannot sign for webhook %s: %s", ep.id, exc.__class__.__name__)
                secrets = None
            jobs.append((row, ep, secrets))
        if len(jobs) == 1 or self.cfg.concurrency == 1:
            for row, ep, secrets in jobs:
                self.record(row, ep, *self.attempt(row, ep, secrets))
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.cfg.concurrency, thread_name_prefix="webhook-send")
        futures = {self._pool.submit(self.attempt, row, ep, secrets): (row, ep) for row, ep, secrets in jobs}
        done = [(futures[f], f.result()) for f in as_completed(futures)]
        # One commit for the claimed batch (each outcome keeps its own savepoint). A crash before
        # it leaves the batch leased and undelivered on record: it is sent again, at least once.
        with write_tx():
            for (row, ep), result in done:
                self.record(row, ep, *result)

    def attempt(self, row: WebhookDelivery, ep: WebhookEndpoint,
                secrets: list[str] | None) -> tuple[datetime, client.Outcome]:
        started = self.clock()
        if secrets is None:
            return started, client.Outcome(status=None, latency_ms=0, error="signing key unavailable on this worker")
        try:
            target = check_url(ep.url, self.service.policy, self.resolver)
        except UrlRefused:
            return started, client.Outcome(status=None, latency_ms=0, error=REFUSED)
        body = row.body.encode("utf-8")
        headers = signing.headers(secrets, msg_id=row.event_id, timestamp=int(self.wall()),
                                  event_type=row.event_type, body=body)
        try:
            return started, client.post(target, body, headers, self.cfg.timeout_seconds)
        except Exception as exc:
            log.exception("webhook attempt %s crashed", row.id)
            return started, client.Outcome(status=None, latency_ms=0, error=f"internal error: {exc.__class__.__name__}")

    def next_delay(self, attempt: int, outcome: client.Outcome) -> float:
        base = self.schedule[attempt]
        delay = base * (1 + self.rng.uniform(-self.jitter, self.jitter)) if base else 0.0
        if outcome.status in (429, 503) and outcome.retry_after is not None:
            delay = max(delay, min(outcome.retry_after, MAX_RETRY_AFTER))
        return delay

    def record(self, row: WebhookDelivery, ep: WebhookEndpoint, started: datetime, outcome: client.Outcome) -> None:
        now = self.clock()
        error = outcome.error
        if outcome.status is not None and 300 <= outcome.status < 400:
            error = f"redirect not followed ({outcome.status}" + (f" to {outcome.location})" if outcome.location else ")")
        elif outcome.status is not None and not outcome.ok:
            error = f"HTTP {outcome.status}"
        with write_tx():
            current = fetch_by_id(WebhookDelivery, row.id, for_update=not is_sqlite())
            if current is None:
                return
            attempt = current.attempts + 1
            WebhookAttempt.insert(id=new_id("att"), delivery_id=row.id, attempt=attempt, worker=self.id,
                                  started_at=to_db_time(started), status_code=outcome.status,
                                  latency_ms=outcome.latency_ms, error=(error or None) and error[:300],
                                  response_excerpt=outcome.excerpt).execute()
            if current.status != "pending" or current.lease_owner != self.id:
                return  # another worker took it over after our lease ran out; it decides
            changes = dict(attempts=attempt, last_status_code=outcome.status, last_latency_ms=outcome.latency_ms,
                           last_error=(error or None) and error[:300], last_response=outcome.excerpt,
                           lease_owner=None, lease_until=None, updated_at=to_db_time(now))
            ep_changes: dict = {}
            if outcome.ok:
                changes.update(status="succeeded", delivered_at=to_db_time(now), next_attempt_at=None)
                ep_changes.update(failing_since=None, last_success_at=to_db_time(now))
            elif outcome.status == 410:
                changes.update(status="failed", next_attempt_at=None)
                ep_changes.update(disabled_at=to_db_time(now), disabled_reason="the endpoint answered 410 Gone")
            else:
                failing_since = from_db_time(ep.failing_since) or now
                current_ep = WebhookEndpoint.get_or_none(WebhookEndpoint.id == ep.id)
                if current_ep is not None and current_ep.failing_since is not None:
                    failing_since = from_db_time(current_ep.failing_since)
                else:
                    ep_changes["failing_since"] = to_db_time(now)
                if now - failing_since >= timedelta(hours=self.cfg.disable_after_hours):
                    ep_changes.update(disabled_at=to_db_time(now),
                                      disabled_reason=f"failing for {self.cfg.disable_after_hours} hours")
                if attempt >= len(self.schedule):
                    changes.update(status="failed", next_attempt_at=None)
                else:
                    delay = self.next_delay(attempt, outcome)
                    changes["next_attempt_at"] = to_db_time(now + timedelta(seconds=delay))
            WebhookDelivery.update(**changes).where(WebhookDelivery.id == row.id).execute()
            if ep_changes:
                ep_changes["updated_at"] = to_db_time(now)
                WebhookEndpoint.update(**ep_changes).where(WebhookEndpoint.id == ep.id).execute()
                if "disabled_at" in ep_changes:
                    log.warning("webhook %s disabled: %s", ep.id, ep_changes["disabled_reason"])
