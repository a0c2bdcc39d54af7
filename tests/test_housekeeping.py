"""Expired rows are removed by the worker's sweep; live ones stay."""

from __future__ import annotations

import time
from datetime import timedelta

from flashfusion.core import housekeeping
from flashfusion.core.storage.db import database, to_db_time, utcnow
from flashfusion.core.storage.models import IdempotencyKey, RateLimit, Session


def test_sweep_removes_only_what_expired(gateway):
    now = utcnow()
    with database.connection_context():
        for key, age in (("old", timedelta(hours=25)), ("fresh", timedelta(hours=1))):
            IdempotencyKey.create(
                api_key_id="key_x", key=key, request_hash="h", run_id=None, created_at=to_db_time(now - age)
            )
        for sid, seen, expires in (
            ("s_idle", timedelta(minutes=31), timedelta(hours=5)),
            ("s_over", timedelta(minutes=1), timedelta(seconds=-1)),
            ("s_live", timedelta(minutes=1), timedelta(hours=5)),
        ):
            Session.create(
                id=sid,
                token_hash=sid.ljust(64, "0"),
                user_id="usr_x",
                created_at=to_db_time(now),
                last_seen_at=to_db_time(now - seen),
                expires_at=to_db_time(now + expires),
            )
        RateLimit.create(bucket="drained", tat=time.time() - 7200)
        RateLimit.create(bucket="busy", tat=time.time() + 60)
        removed = housekeeping.sweep(gateway.config, now)
        assert removed == {"idempotency_key": 1, "user_session": 2, "rate_limit": 1}
        assert [k.key for k in IdempotencyKey.select()] == ["fresh"]
        assert [s.id for s in Session.select()] == ["s_live"]
        assert [b.bucket for b in RateLimit.select()] == ["busy"]


def test_the_worker_sweeps(gateway):
    from flashfusion.core.worker import Worker

    with database.connection_context():
        IdempotencyKey.create(
            api_key_id="key_x",
            key="old",
            request_hash="h",
            run_id=None,
            created_at=to_db_time(utcnow() - timedelta(days=2)),
        )
    Worker(gateway, worker_id="w").tick()
    with database.connection_context():
        assert IdempotencyKey.select().count() == 0
