"""GCRA rate limiting in one SQL statement, with the database's clock.

The generic cell rate algorithm keeps one number per bucket, the theoretical arrival time
(TAT). With ``limit`` requests per ``period`` the emission interval is
``T = period / limit``; a request is allowed when ``max(TAT, now) + T - now <= period``, and
then moves TAT to ``max(TAT, now) + T``. A full bucket allows ``limit`` requests at once and
then one every ``T`` seconds: there is no window edge at which twice the limit gets through.
Because the check and the update are one statement on the shared database, every gunicorn
worker and every host sees the same bucket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from flashfusion.core.storage.db import database, is_sqlite


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    period: float
    tat: float  # the bucket's theoretical arrival time after this request (epoch seconds)
    now: float  # the database's clock when it decided

    @property
    def interval(self) -> float:
        return self.period / self.limit

    @property
    def remaining(self) -> int:
        return max(0, min(self.limit, math.floor((self.now + self.period - self.tat) / self.interval + 1e-9)))

    @property
    def reset_after(self) -> int:
        """Seconds until the bucket is full again."""
        return max(0, math.ceil(self.tat - self.now))

    @property
    def retry_after(self) -> int:
        """Seconds until the next request would be allowed (0 if it would be now)."""
        return max(0, math.ceil(self.tat + self.interval - self.now - self.period))

    def headers(self, policy: str = "default") -> dict[str, str]:
        remaining, reset_after = self.remaining, self.reset_after
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(math.ceil(self.now + reset_after)),
            "RateLimit-Policy": f'"{policy}";q={self.limit};w={int(self.period)}',
            "RateLimit": f'"{policy}";r={remaining};t={reset_after}',
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.retry_after))
        return headers


def sql_now(at: float | None = None) -> str:
    """The database's clock as epoch seconds (fractional); with ``at``, that instant
    instead (tests hold the SQL against a model at chosen times)."""
    if at is not None:
        return f"CAST({float(at)!r} AS {'REAL' if is_sqlite() else 'DOUBLE PRECISION'})"
    if is_sqlite():
        return "((julianday('now') - 2440587.5) * 86400.0)"
    return "EXTRACT(EPOCH FROM statement_timestamp())::double precision"


def sql_max(a: str, b: str) -> str:
    return f"MAX({a}, {b})" if is_sqlite() else f"GREATEST({a}, {b})"


SLACK = 0.000001  # seconds


def sql_min(a: str, b: str) -> str:
    return f"MIN({a}, {b})" if is_sqlite() else f"LEAST({a}, {b})"


def sql_floor(x: str) -> str:
    """``floor`` of a non-negative number (SQLite's ``CAST`` truncates, PostgreSQL's rounds)."""
    return f"CAST({x} AS INTEGER)" if is_sqlite() else f"FLOOR({x})::bigint"


def gcra_terms(tat_column: str, at: float | None = None) -> tuple[str, str, str]:
    """SQL for ``n`` requests arriving together: (granted, now, new_tat), given the column
    holding TAT (may be NULL). GCRA applied to them one after the other at the same instant
    lets the first ``granted`` through, where ``granted = min(n, floor((now + period - base)
    / T))`` and ``base = max(TAT, now)``, and moves TAT to ``base + granted * T``; one request
    is ``n = 1``. A microsecond of slack keeps float rounding (epoch seconds carry about
    0.2 µs of it) from costing a full bucket its last cell. ``at`` replaces the database's
    clock (tests only). Parameters of ``granted``, in order: n, period, interval;
    ``new_tat`` adds: interval."""
    now = sql_now(at)
    base = sql_max(f"COALESCE({tat_column}, {now})", now)
    p = database.param
    granted = sql_max("0", sql_min(p, sql_floor(sql_max("0", f"({now} + {p} - {base} + {SLACK}) / {p}"))))
    new_tat = f"{base} + ({granted}) * {p}"
    return granted, now, new_tat


def hit(bucket: str, limit: int, period: float, *, at: float | None = None) -> Decision:
    """Count one request against ``bucket`` and say whether it may proceed. ``at`` replaces
    the database's clock (for tests only)."""
    interval = period / limit
    granted, now, new_tat = gcra_terms("rate_limit.tat", at)
    p = database.param
    sql = (
        f"INSERT INTO rate_limit (bucket, tat, allowed) VALUES ({p}, {now} + {p}, TRUE) "
        f"ON CONFLICT (bucket) DO UPDATE SET allowed = ({granted}) > 0, tat = {new_tat} "
        f"RETURNING tat, allowed, {now}"
    )
    one = (1, period, interval)
    params = (bucket, interval) + one + one + (interval,)
    tat, ok, db_now = database.execute_sql(sql, params).fetchone()
    return Decision(allowed=bool(ok), limit=limit, period=period, tat=float(tat), now=float(db_now))


def peek(bucket: str, limit: int, period: float) -> Decision:
    """Whether a request on ``bucket`` would be allowed now, without counting it."""
    now = sql_now()
    row = database.execute_sql(
        f"SELECT tat, {now} FROM rate_limit WHERE bucket = {database.param}", (bucket,)
    ).fetchone()
    if row is None:
        db_now = float(database.execute_sql(f"SELECT {now}").fetchone()[0])
        return Decision(allowed=True, limit=limit, period=period, tat=db_now, now=db_now)
    tat, db_now = float(row[0]), float(row[1])
    allowed = max(tat, db_now) + period / limit - db_now <= period
    return Decision(allowed=allowed, limit=limit, period=period, tat=tat, now=db_now)
