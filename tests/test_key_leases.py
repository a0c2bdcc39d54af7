"""Rate limits leased in slices (core/access/keyleases.py), against the real database:
any interleaving of requests, flushes and clock steps across simulated processes never lets
more through than GCRA allows, and once the slices are back no budget is lost."""

from __future__ import annotations

import math
import time

import falcon.testing
import pytest
from conftest import write_config
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flashfusion.core.access import apikeys
from flashfusion.core.access import keyformat as keys
from flashfusion.core.access.keyleases import LeaseBook
from flashfusion.core.app import build_gateway, create_app
from flashfusion.core.config import ConfigError, load_config
from flashfusion.core.storage.db import database, utcnow
from flashfusion.core.storage.models import ApiKey

START = 1_000_000.0
STAMP = None  # last_used is not what these tests look at

step = st.one_of(
    st.tuples(st.just("request"), st.integers(0, 3), st.sampled_from([1, 2, 5, 17, 40])),
    st.tuples(st.just("flush"), st.integers(0, 3), st.just(0)),
    st.tuples(st.just("clock"), st.sampled_from([0.001, 0.05, 0.3, 1.0, 2.5, 7.0]), st.just(0)),
)


class SharedClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def gcra_remaining(tat: float | None, now: float, limit: int, period: float) -> int:
    interval = period / limit
    base = max(tat if tat is not None else now, now)
    return max(0, math.floor((now + period - base) / interval + 1e-6))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(
    limit=64,
    processes=2,
    steps=[("request", 0, 40), ("request", 1, 40), ("flush", 0, 0), ("clock", 0.3, 0), ("request", 1, 40)],
)
@given(
    limit=st.sampled_from([1, 2, 3, 10, 64, 200]),
    processes=st.integers(1, 4),
    steps=st.lists(step, min_size=1, max_size=40),
)
def test_leases_never_exceed_gcra_and_lose_nothing_once_returned(make_key, gateway, limit, processes, steps):
    period = 10.0
    interval = period / limit
    digest = keys.hash_key(make_key())
    with database.connection_context():
        key_id = ApiKey.get(ApiKey.key_hash == digest).id
        ApiKey.update(rl_tat=None, usage_count=0).where(ApiKey.id == key_id).execute()
        clock = SharedClock()
        books = [LeaseBook(clock=clock, simulated=True) for _ in range(processes)]
        allowed_at: list[float] = []
        for kind, a, b in steps:
            if kind == "clock":
                clock.now += a
            elif kind == "flush":
                books[a % processes].flush()
            else:
                for _ in range(b):
                    decision = books[a % processes].take(key_id, limit, period, STAMP)
                    assert decision is not None
                    if decision.allowed:
                        allowed_at.append(clock.now)
                        # never more than a full bucket plus what has dripped in since the start
                        assert len(allowed_at) <= limit + math.floor((clock.now - START) / interval + 1e-6)
                    else:
                        assert decision.remaining == 0 and decision.retry_after >= 0
        for book in books:
            book.flush()
            assert book.held() == 0
        row = ApiKey.get_by_id(key_id)
        assert row.usage_count == len(allowed_at)
    reference = None  # GCRA applied to exactly the requests let through, at their times
    for t in allowed_at:
        reference = max(reference if reference is not None else t, t) + interval
    assert gcra_remaining(row.rl_tat, clock.now, limit, period) >= gcra_remaining(reference, clock.now, limit, period)


def test_an_exhausted_key_is_refused_from_memory_until_its_next_cell_is_due(make_key, gateway):
    """No statement per refused request: the lease that got nothing says when to ask again."""
    make_key()
    clock = SharedClock()
    book = LeaseBook(clock=clock, simulated=True)
    statements = []
    with database.connection_context():
        key_id = ApiKey.select(ApiKey.id).first().id
        import flashfusion.core.access.keyleases as keyleases

        real = keyleases.settle

        def counted(*args, **kwargs):
            statements.append(kwargs["want"])
            return real(*args, **kwargs)

        keyleases.settle = counted
        try:
            answers = [book.take(key_id, 2, 10.0, STAMP) for _ in range(50)]
            assert [d.allowed for d in answers[:2]] == [True, True] and not any(d.allowed for d in answers[2:])
            leases = len(statements)
            assert leases <= 3  # the slices and the one lease that came back empty
            assert answers[-1].retry_after == 5 and answers[-1].headers()["Retry-After"] == "5"
            clock.now += 4.9
            assert not book.take(key_id, 2, 10.0, STAMP).allowed and len(statements) == leases
            clock.now += 0.2
            assert book.take(key_id, 2, 10.0, STAMP).allowed and len(statements) == leases + 1
        finally:
            keyleases.settle = real


def test_a_quiet_process_gives_its_slice_back_when_the_bucket_runs_low(make_key, gateway):
    """The CI failure of stop 21: one gunicorn worker's clients finished while it held a slice,
    the others ran the bucket dry and refused what that slice could have served. Now a slice of
    a low bucket goes back once its process has not used it for the idle time; a full bucket's
    slice stays (returning it would only cost writes)."""
    make_key()
    clock = SharedClock()
    quiet, busy = (LeaseBook(clock=clock, simulated=True) for _ in range(2))
    limit, period = 200, 10.0
    with database.connection_context():
        key_id = ApiKey.select(ApiKey.id).first().id
        ApiKey.update(rl_tat=None).where(ApiKey.id == key_id).execute()
        for _ in range(20):
            assert quiet.take(key_id, limit, period, STAMP).allowed
        assert quiet.held() > 0
        clock.now += 1.0
        assert not quiet.has_idle_candidates(0.05) and quiet.return_idle(0.05) == 0  # the bucket is still full
        quiet.flush()

        for _ in range(120):
            assert busy.take(key_id, limit, period, STAMP).allowed
        late = 0
        while late < 3 or quiet.held() == 0:  # leased from a bucket less than half full
            assert quiet.take(key_id, limit, period, STAMP).allowed
            late += 1
        held = quiet.held()
        taken = 120
        while busy.take(key_id, limit, period, STAMP).allowed:
            taken += 1
        clock.now += 0.01
        assert quiet.return_idle(0.05) == 0  # used a moment ago
        clock.now += 0.05
        assert quiet.has_idle_candidates(0.05)
        assert quiet.return_idle(0.05) == 1 and quiet.held() == 0
        newcomer = LeaseBook(clock=clock, simulated=True)
        got = 0
        while newcomer.take(key_id, limit, period, STAMP).allowed:
            got += 1
        assert got >= held  # nothing the quiet process held is lost
        for book in (quiet, busy, newcomer):
            book.flush()
        assert ApiKey.get_by_id(key_id).usage_count == 20 + taken + late + got


@pytest.mark.parametrize("cache_seconds", [0.0, 1.0])
def test_a_key_revoked_elsewhere_is_refused_within_key_cache_seconds(tmp_path, db_url, cache_seconds):
    """Revoked by another process (here: straight in the database, as another host would):
    with ``key_cache_seconds = 0`` the next request is refused, otherwise within the bound."""
    config = write_config(tmp_path, db_url, f"[auth]\nkey_cache_seconds = {cache_seconds}\n")
    gw = build_gateway(load_config(str(config), env={}))
    app = falcon.testing.TestClient(create_app(gw))
    with database.connection_context():
        key = apikeys.create_key("k", ["read_config"], known_pipelines=gw.config.pipelines)["plaintext_key"]

    def status() -> int:
        return app.simulate_get(
            "/api/get-config", params={"pipeline_id": "demo"}, headers={"X-API-Key": key}
        ).status_code

    assert status() == 200
    with database.connection_context():
        ApiKey.update(revoked_at=utcnow()).where(ApiKey.key_hash == keys.hash_key(key)).execute()
    revoked = time.monotonic()
    if cache_seconds == 0:
        assert status() == 401
    else:
        while status() == 200:
            time.sleep(0.05)
        assert time.monotonic() - revoked <= cache_seconds + 0.5
    assert status() == 401
    gw.providers.close()
    database.close()


def test_key_cache_seconds_may_be_0_and_usage_flush_seconds_may_not(tmp_path):
    path = tmp_path / "flashfusion.toml"
    path.write_text("[auth]\nkey_cache_seconds = 0\n")
    assert load_config(str(path), env={}).auth.key_cache_seconds == 0
    path.write_text("[auth]\nusage_flush_seconds = 0\n")
    with pytest.raises(ConfigError, match="usage_flush_seconds"):
        load_config(str(path), env={})
