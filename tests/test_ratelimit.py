"""The GCRA limiter, held against a pure-Python model of the same algorithm."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flashfusion.core.access import ratelimit
from flashfusion.core.storage.db import database


class Model:
    """GCRA as the textbook states it (``slack``: seconds of tolerance at the limit)."""

    def __init__(self, limit: int, period: float, slack: float = 0.0) -> None:
        self.interval = period / limit
        self.period = period
        self.slack = slack
        self.tat: float | None = None

    def hit(self, now: float) -> bool:
        base = max(self.tat if self.tat is not None else now, now)
        if base + self.interval - now <= self.period + self.slack:
            self.tat = base + self.interval
            return True
        return False


STEPS = st.lists(st.floats(min_value=0, max_value=30, allow_nan=False, allow_infinity=False), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit=st.integers(min_value=1, max_value=20), period=st.sampled_from([1.0, 10.0, 60.0, 3600.0]), gaps=STEPS)
def test_sql_limiter_matches_the_model(db_url, limit, period, gaps):
    model = Model(limit, period, slack=ratelimit.SLACK)
    now = 1_800_000_000.0
    bucket = f"prop:{limit}:{period}:{len(gaps)}:{sum(gaps)}"
    with database.connection_context():
        database.execute_sql(f"DELETE FROM rate_limit WHERE bucket = {database.param}", (bucket,))
        for gap in gaps:
            now += gap
            decision = ratelimit.hit(bucket, limit, period, at=now)
            assert decision.allowed == model.hit(now), (now, model.tat, decision)
            assert math.isclose(decision.tat, model.tat, rel_tol=0, abs_tol=1e-6)
            assert 0 <= decision.remaining <= limit


def test_a_full_bucket_allows_exactly_the_limit_then_one_per_interval(db_url):
    with database.connection_context():
        t = 1_800_000_000.0
        answers = [ratelimit.hit("burst", 10, 60.0, at=t).allowed for _ in range(12)]
        assert answers == [True] * 10 + [False] * 2
        refused = ratelimit.hit("burst", 10, 60.0, at=t)
        assert refused.retry_after == 6 and refused.headers()["Retry-After"] == "6"
        assert ratelimit.hit("burst", 10, 60.0, at=t + 5.9).allowed is False
        assert ratelimit.hit("burst", 10, 60.0, at=t + 6.0).allowed is True


def test_no_double_burst_at_a_window_edge(db_url):
    """A fixed window would allow 2x the limit around its edge; GCRA never does."""
    with database.connection_context():
        t = 1_800_000_000.0
        allowed = sum(ratelimit.hit("edge", 100, 3600.0, at=t + 3599.9).allowed for _ in range(100))
        allowed += sum(ratelimit.hit("edge", 100, 3600.0, at=t + 3600.1).allowed for _ in range(100))
        assert allowed == 100


BATCHES = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=30, allow_nan=False, allow_infinity=False),
        st.integers(min_value=1, max_value=8),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit=st.integers(min_value=1, max_value=20), period=st.sampled_from([1.0, 10.0, 60.0, 3600.0]), batches=BATCHES)
def test_one_statement_for_n_requests_decides_as_n_requests_one_by_one(db_url, limit, period, batches):
    """API keys decide the requests that queued together in one UPDATE (auth.py): it must
    let through exactly as many as GCRA taking them one at a time, and leave the same TAT.
    The model counts seconds from ``origin`` (exact to ~1e-15 s) and starts each batch from
    the TAT the database kept, whose epoch seconds carry ~0.2 µs of rounding."""
    model = Model(limit, period, slack=ratelimit.SLACK)
    interval = period / limit
    origin = now = 1_800_000_000.0
    with database.connection_context():
        database.execute_sql(
            "CREATE TEMP TABLE IF NOT EXISTS gcra_probe (id INTEGER PRIMARY KEY, tat DOUBLE PRECISION, granted INTEGER)"
        )
        database.execute_sql("DELETE FROM gcra_probe")
        database.execute_sql("INSERT INTO gcra_probe (id) VALUES (1)")
        for gap, n in batches:
            now += gap
            granted, _, new_tat = ratelimit.gcra_terms("tat", at=now)
            terms = (n, period, interval)
            tat, passed = database.execute_sql(
                f"UPDATE gcra_probe SET granted = {granted}, tat = {new_tat} WHERE id = 1 RETURNING tat, granted",
                terms + terms + (interval,),
            ).fetchone()
            assert passed == sum(model.hit(now - origin) for _ in range(n)), (now, n, model.tat, tat)
            assert math.isclose(tat - origin, model.tat, rel_tol=0, abs_tol=1e-5)
            model.tat = tat - origin


def test_a_full_bucket_lets_a_batch_take_exactly_the_limit(db_url):
    with database.connection_context():
        database.execute_sql(
            "CREATE TEMP TABLE IF NOT EXISTS gcra_probe (id INTEGER PRIMARY KEY, tat DOUBLE PRECISION, granted INTEGER)"
        )
        database.execute_sql("DELETE FROM gcra_probe")
        database.execute_sql("INSERT INTO gcra_probe (id) VALUES (1)")
        granted, _, new_tat = ratelimit.gcra_terms("tat", at=1_800_000_000.0)
        terms = (1100, 3600.0, 3.6)
        _, passed = database.execute_sql(
            f"UPDATE gcra_probe SET granted = {granted}, tat = {new_tat} WHERE id = 1 RETURNING tat, granted",
            terms + terms + (3.6,),
        ).fetchone()
        assert passed == 1000
