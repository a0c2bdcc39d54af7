"""A process's share of each API key's rate limit, and its uncounted uses.

The rate limit is GCRA on the key's row (``api_key.rl_tat``, see ``ratelimit``). Instead
of writing the row for every request, a process *leases a slice*: one UPDATE applies GCRA
to ``n`` cells at once, as if ``n`` requests had arrived together, and grants what the
bucket holds, at most ``n``. Because every grant moves the one shared TAT, the slices of all
processes and hosts together never exceed what GCRA allows. The process then lets requests
through from memory until its slice is spent; the next lease also adds the uses counted
meanwhile to ``usage_count``. Every ``usage_flush_seconds`` (and at graceful shutdown)
``flush`` gives the unused cells back (TAT moves back by as many intervals) and writes the
counts: one UPDATE per key. A slice never outlives a flush, so a cell is used at most one
flush interval after it was granted.

Slices follow demand (growing fourfold while they run out before the flush, halving when left
over) and shrink as the bucket empties: a lease takes at most a ``SHARE`` of what remains,
so little budget sits unused in one process while another is refused. When a process stops
using a key whose bucket is less than half full, its slice goes back after a moment
(``return_idle``) instead of at the next flush. A lease that gets
nothing tells when the next cell is due; until then the key is refused from memory, with no
write per refused request.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flashfusion.core.access import ratelimit
from flashfusion.core.storage.db import database, write_gate

SHARE = 16  # a lease takes at most 1/SHARE of what the bucket holds (at least one cell)
MAX_SLICE = 4096


@dataclass(frozen=True)
class Settled:
    tat: float  # the key's TAT after the statement (epoch seconds)
    granted: int
    now: float  # the database's clock


def settle(
    key_id: str,
    *,
    limit: int,
    period: float,
    used: int,
    returned: int,
    want: int,
    last_used: Any,
    valid_at: Any = None,
    at: float | None = None,
) -> Settled | None:
    """One UPDATE of the key's row: give back ``returned`` cells, lease up to ``want``, add
    ``used`` to ``usage_count`` (``last_used`` becomes the given stamp). With ``valid_at``
    (a time as stored): only if the key is valid then (not revoked, expired or of a disabled
    owner); None if it is not. ``at`` replaces the database's clock (tests only)."""
    interval = period / limit
    now = ratelimit.sql_now(at)
    p = database.param
    base = ratelimit.sql_max(f"COALESCE(rl_tat, {now}) - {_num(returned * interval)}", now)
    if want > 0:
        fits = ratelimit.sql_floor(
            ratelimit.sql_max("0", f"({now} + {_num(period)} - {base} + {ratelimit.SLACK}) / {_num(interval)}")
        )
        share = ratelimit.sql_max("1", ratelimit.sql_floor(f"({fits}) / {SHARE}"))
        granted = ratelimit.sql_min(_num(want), ratelimit.sql_min(share, fits))
    else:
        granted = "0"
    sql = (
        f"UPDATE api_key SET rl_granted = {granted}, rl_tat = {base} + ({granted}) * {_num(interval)}, "
        f"usage_count = usage_count + {_num(used)}" + (f", last_used = {p}" if used else "") + f" WHERE id = {p}"
    )
    params: list[Any] = [last_used] if used else []
    params.append(key_id)
    if valid_at is not None:
        sql += f" AND {valid_condition()}"
        params.append(valid_at)
    sql += f" RETURNING rl_tat, rl_granted, {now}"
    with write_gate():
        row = database.execute_sql(sql, tuple(params)).fetchone()
    if row is None:
        return None
    return Settled(tat=float(row[0]), granted=int(row[1]), now=float(row[2]))


VALID = (
    "revoked_at IS NULL AND (expires_at IS NULL OR expires_at > {p}) AND NOT EXISTS "
    "(SELECT 1 FROM app_user WHERE app_user.id = api_key.owner_id AND disabled_at IS NOT NULL)"
)


def valid_condition() -> str:
    """SQL: the key row is usable at the time given as the one parameter."""
    return VALID.format(p=database.param)


def _num(value: float | int) -> str:
    """A number inlined into SQL (only numbers computed here, never client input)."""
    return repr(int(value)) if isinstance(value, int) else repr(float(value))


class KeyBudget:
    """One key's slice in this process. Guarded by its own lock: a thread that leases holds
    it, so the others wait for the new slice instead of leasing too."""

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        self.lock = threading.Lock()
        self.cells = 0  # granted, not used yet
        self.tat = 0.0  # the key's TAT as of the last lease, including this slice
        self.skew = 0.0  # database clock minus local clock, as of the last statement
        self.refused_until = -math.inf  # local clock
        self.want = 1
        self.ran_out = False
        self.used = 0  # uses not yet added to usage_count
        self.stamp: Any = None  # the last use's time, as stored
        self.limit = 1  # of the last request: the cells' interval is period / limit
        self.period = 1.0
        self.last_take = -math.inf  # local clock
        self.low = False  # the last lease left the bucket less than half full


class LeaseBook:
    """The slices and counts of one process (or, in tests, of one simulated process).
    ``clock`` is the local clock (seconds); ``at`` makes statements use that clock instead
    of the database's (tests)."""

    def __init__(self, *, clock: Callable[[], float] = time.time, simulated: bool = False) -> None:
        self.clock = clock
        self.simulated = simulated
        self._budgets: dict[str, KeyBudget] = {}
        self._lock = threading.Lock()

    def budget(self, key_id: str) -> KeyBudget:
        found = self._budgets.get(key_id)
        if found is None:
            with self._lock:
                found = self._budgets.setdefault(key_id, KeyBudget(key_id))
        return found

    def take(self, key_id: str, limit: int, period: float, stamp: Any) -> ratelimit.Decision | None:
        """Decide one request of ``key_id``: from the slice, from a refusal in memory, or
        with a lease. None if the lease found the key no longer valid."""
        b = self.budget(key_id)
        interval = period / limit
        with b.lock:
            if (limit, period) != (b.limit, b.period) and b.cells:  # the limit changed: give back first
                self._settle(b, b.limit, b.period, want=0)
            b.limit, b.period = limit, period
            local = self.clock()
            if b.cells == 0 and local >= b.refused_until:
                if b.ran_out:  # the last slice did not last until the flush
                    b.want = min(MAX_SLICE, b.want * 4)
                done = self._settle(b, limit, period, want=b.want, valid_at=stamp)
                if done is None:
                    return None
                b.cells = done.granted
                b.tat = done.tat
                b.low = (done.now + period - done.tat) / interval < limit / 2
                if done.granted == 0:
                    due = done.tat + interval - period  # when the bucket next holds a cell (database clock)
                    b.refused_until = self.clock() + max(0.0, due - done.now)
                local = self.clock()
            now = local + b.skew
            if b.cells == 0:
                return ratelimit.Decision(allowed=False, limit=limit, period=period, tat=b.tat, now=now)
            b.cells -= 1
            b.last_take = local
            b.ran_out = b.cells == 0
            b.used += 1
            b.stamp = stamp
            return ratelimit.Decision(allowed=True, limit=limit, period=period, tat=b.tat - b.cells * interval, now=now)

    def _settle(self, b: KeyBudget, limit: int, period: float, *, want: int, valid_at: Any = None) -> Settled | None:
        """Runs with ``b.lock`` held; clears the counts it wrote."""
        done = settle(
            b.key_id,
            limit=limit,
            period=period,
            used=b.used,
            returned=b.cells,
            want=want,
            last_used=b.stamp,
            valid_at=valid_at,
            at=self.clock() if self.simulated else None,
        )
        if done is None:
            return None
        b.used = 0
        b.cells = 0
        b.skew = done.now - self.clock()
        return done

    def flush(self) -> int:
        """Give every unused cell back and write every count: one UPDATE per key that has
        either. Returns the number of statements."""
        writes = 0
        for b in list(self._budgets.values()):
            with b.lock:
                if b.used == 0 and b.cells == 0:
                    continue
                if b.cells > 0:  # left over: smaller slices
                    b.want = max(1, b.want // 2)
                b.ran_out = False
                self._settle(b, b.limit, b.period, want=0)
                b.used = b.cells = 0  # also when the row is gone
                writes += 1
        return writes

    def has_idle_candidates(self, idle_seconds: float) -> bool:
        """Whether ``return_idle`` would write (read without locks: a cheap check that spares
        opening a connection every tick)."""
        now = self.clock()
        return any(_idle(b, now, idle_seconds) for b in list(self._budgets.values()))

    def return_idle(self, idle_seconds: float) -> int:
        """Give back the slices of keys whose bucket is low and that this process has not
        used for ``idle_seconds``: when a process's traffic for a key stops, the cells it holds
        would otherwise sit unused until the flush while other processes are refused. Returns
        the number of statements."""
        writes = 0
        for b in list(self._budgets.values()):
            with b.lock:
                if not _idle(b, self.clock(), idle_seconds):
                    continue
                b.want = 1
                b.ran_out = False
                self._settle(b, b.limit, b.period, want=0)
                b.used = b.cells = 0
                writes += 1
        return writes

    def held(self) -> int:
        """Cells leased by this book and not used yet."""
        return sum(b.cells for b in self._budgets.values())


def _idle(b: KeyBudget, now: float, idle_seconds: float) -> bool:
    return b.cells > 0 and b.low and now - b.last_take >= idle_seconds
