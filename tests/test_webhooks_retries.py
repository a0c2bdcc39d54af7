"""Delivery under an injected clock: failures then recovery on the retry schedule,
429 + Retry-After, 410, redirects, give-up, the 5-day disable, and the per-endpoint rate
limit delaying (never dropping) the gateway's own events. No test waits for a backoff."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from testkit.receiver import WEBHOOK_CONFIG, Clock, dispatcher

from flashfusion.core.runs import transitions as runs
from flashfusion.core.storage.db import database, write_tx
from flashfusion.core.storage.models import WebhookDelivery, WebhookEndpoint
from flashfusion.core.webhooks.callers import Caller
from flashfusion.core.webhooks.dispatcher import Dispatcher
from flashfusion.core.webhooks.management import WebhookService
from flashfusion.core.webhooks.sender import parse_retry_after

EXTRA_CONFIG = WEBHOOK_CONFIG.format(per_minute=5)  # added by conftest's config_path


@pytest.fixture
def clock(gateway):
    clock = Clock()
    gateway.clock = clock
    return clock


def endpoint(gateway, url, **body):
    with database.connection_context():
        return WebhookService(gateway).create(Caller(), {"url": url, **body})["id"]


def emit(n=1, event="run.started", pipeline="demo"):
    with database.connection_context():
        with write_tx():
            for i in range(n):
                runs.emit(event, pipeline, None, {"run_id": f"run_{i}", "status": "running"})


def delivery():
    with database.connection_context():
        return WebhookDelivery.select().order_by(WebhookDelivery.created_at.desc()).first()


def ep_row(wid):
    with database.connection_context():
        return WebhookEndpoint.get_by_id(wid)


def test_a_failing_receiver_is_retried_on_the_schedule_and_recovers(gateway, clock, rx):
    endpoint(gateway, rx.url())
    rx.script("/hook", [(500, {}, b"boom"), (502, {}, b""), (200, {}, b"fine")])
    d = dispatcher(gateway, clock)
    emit()
    d.drain()
    assert len(rx.snapshot()) == 1
    row = delivery()
    assert row.status == "pending" and row.attempts == 1 and row.last_status_code == 500
    assert row.last_error == "HTTP 500" and row.last_response == "boom"
    d.drain()  # not due yet: nothing sent
    clock.advance(4.9)
    d.drain()
    assert len(rx.snapshot()) == 1
    clock.advance(0.2)  # 5 s after the first attempt
    d.drain()
    assert len(rx.snapshot()) == 2 and delivery().attempts == 2
    clock.advance(299)
    d.drain()
    assert len(rx.snapshot()) == 2
    clock.advance(2)  # 5 min
    d.drain()
    got = rx.snapshot()
    assert len(got) == 3 and delivery().status == "succeeded" and delivery().attempts == 3
    assert len({r.webhook_id for r in got}) == 1  # one webhook-id across retries
    assert len({r.body for r in got}) == 1  # the same bytes every time


def test_jitter_stays_within_twenty_percent(gateway):
    d = Dispatcher(gateway, rng=random.Random(7))
    from flashfusion.core.webhooks.sender import Outcome

    delays = [d.next_delay(3, Outcome(status=500, latency_ms=1)) for _ in range(200)]
    assert all(1800 * 0.8 <= x <= 1800 * 1.2 for x in delays) and len(set(delays)) > 100


def test_429_with_retry_after_is_honoured(gateway, clock, rx):
    endpoint(gateway, rx.url())
    rx.script(
        "/hook",
        [(429, {"Retry-After": "120"}, b"slow down"), (503, {"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"}, b"")],
    )
    d = dispatcher(gateway, clock)
    emit()
    d.drain()
    clock.advance(60)  # the schedule says 5 s, the receiver said 120 s
    d.drain()
    assert len(rx.snapshot()) == 1
    clock.advance(61)
    d.drain()
    assert len(rx.snapshot()) == 2
    row = delivery()
    # an HTTP date far away is capped at a day
    assert row.next_attempt_at - clock().replace(tzinfo=None) == timedelta(hours=24)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0 and parse_retry_after("soon") is None


def test_410_disables_the_endpoint_and_the_listing_says_so(gateway, clock, rx):
    endpoint(gateway, rx.url())
    rx.default = (410, {}, b"gone")
    d = dispatcher(gateway, clock)
    emit(1)
    d.drain()
    assert len(rx.snapshot()) == 1
    with database.connection_context():
        listed = WebhookService(gateway).list(Caller())
    assert listed[0]["enabled"] is False and "410" in listed[0]["disabled_reason"]
    assert delivery().status == "failed"  # not retried
    emit(2)
    clock.advance(3600)
    d.drain()
    assert len(rx.snapshot()) == 1  # a disabled endpoint gets nothing


def test_a_disabled_endpoints_queue_waits_and_resumes_when_enabled(gateway, clock, rx):
    wid = endpoint(gateway, rx.url())
    d = dispatcher(gateway, clock)
    emit(2)
    with database.connection_context():
        d.fan_out()
        WebhookService(gateway).update(Caller(), {"id": wid, "enabled": False})
    d.drain()
    assert rx.snapshot() == []
    with database.connection_context():
        assert WebhookService(gateway).list(Caller())[0]["enabled"] is False
        WebhookService(gateway).update(Caller(), {"id": wid, "enabled": True})
    d.drain()
    assert len(rx.snapshot()) == 2


def test_redirects_are_failures_and_never_followed(gateway, clock, rx):
    endpoint(gateway, rx.url("/moved"))
    rx.script("/moved", [(302, {"Location": rx.url("/elsewhere")}, b""), (308, {"Location": "http://10.0.0.1/"}, b"")])
    d = dispatcher(gateway, clock)
    emit()
    d.drain()
    clock.advance(6)
    d.drain()
    assert [r.path for r in rx.snapshot()] == ["/moved", "/moved"]
    row = delivery()
    assert row.status == "pending" and row.attempts == 2 and "redirect not followed (308" in row.last_error


def test_the_schedule_ends_in_failure_and_five_days_of_failure_disable(gateway, clock, rx):
    wid = endpoint(gateway, rx.url())
    rx.default = (500, {}, b"down")
    d = dispatcher(gateway, clock)
    emit()
    for _ in range(10):
        d.drain()
        clock.advance(10 * 3600 + 1)
    row = delivery()
    assert row.status == "failed" and row.attempts == 8 and row.next_attempt_at is None
    assert ep_row(wid).disabled_at is None and ep_row(wid).failing_since is not None
    # keep failing until five days have passed since the first failure
    for _ in range(12):
        emit()
        d.drain()
        clock.advance(12 * 3600)
    ep = ep_row(wid)
    assert ep.disabled_at is not None and ep.disabled_reason == "failing for 120 hours"
    rx.default = (200, {}, b"ok")
    with database.connection_context():
        WebhookService(gateway).update(Caller(), {"id": wid, "enabled": True})
    assert ep_row(wid).failing_since is None


def test_gateway_events_over_the_rate_limit_are_delayed_never_dropped(gateway, clock, rx):
    endpoint(gateway, rx.url())
    d = dispatcher(gateway, clock)
    emit(8)  # the budget is 5 per minute
    d.drain()
    assert len(rx.snapshot()) == 5
    with database.connection_context():
        waiting = list(WebhookDelivery.select().where(WebhookDelivery.status == "pending"))
    assert len(waiting) == 3 and all(w.attempts == 0 for w in waiting)
    for _ in range(3):
        # let one emission interval (12 s) pass for both the injected clock and the bucket
        clock.advance(12)
        with database.connection_context():
            database.execute_sql(
                f"UPDATE rate_limit SET tat = tat - 12 WHERE bucket LIKE {database.param}", ("webhook:%",)
            )
        d.drain()
    assert len(rx.snapshot()) == 8 and len(rx.ids()) == 8
