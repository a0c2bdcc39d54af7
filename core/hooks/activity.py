"""Whether each source's hooks still arrive: the reconciler's switch and what ``readyz``,
``doctor`` and the dashboard report.

A provider takes hooks when its table sets ``webhook_secret_env``. A repository's hooks are
*trusted* once one has arrived within ``TRUSTED_FOR`` and no reconcile poll since then has
found a run's status or phase changed without a hook saying so: its runs are then polled
only every
``reconcile_interval_seconds``. A quiet repository sends no hooks and needs none, so
quietness alone does not end the trust; evidence does: a reconcile poll that finds such a
missed change (a dropped hook, a broken webhook) puts the repository back on
``poll_interval_seconds`` until its next hook arrives, with nothing to switch back by hand.
What ``readyz``, ``doctor`` and the dashboard call *silent* is a provider with no hook within
its reconcile interval.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import peewee

from flashfusion.core.storage.db import from_db_time, iso, to_db_time
from flashfusion.core.storage.models import InboundHook

DEFAULT_RECONCILE_SECONDS = 300.0
#: how long one hook vouches for a repository's webhook when nothing contradicts it
TRUSTED_FOR = timedelta(hours=24)


def takes_hooks(settings: Any) -> bool:
    return bool(getattr(settings, "webhook_secret_env", None))


def reconcile_seconds(settings: Any) -> float:
    return float(getattr(settings, "reconcile_interval_seconds", DEFAULT_RECONCILE_SECONDS))


def trusted(last_hook: datetime | None, last_missed: datetime | None, now: datetime) -> bool:
    """Whether a source's hooks can be relied on (see the module's docstring)."""
    if last_hook is None or now - last_hook > TRUSTED_FOR:
        return False
    return last_missed is None or last_hook > last_missed


def last_by_source(since: datetime) -> dict[tuple[str, str], datetime]:
    """``(provider, repository) -> newest hook applied``, for hooks received after ``since``."""
    query = (
        InboundHook.select(
            InboundHook.provider, InboundHook.repository, peewee.fn.MAX(InboundHook.received_at).alias("last")
        )
        .where((InboundHook.received_at >= to_db_time(since)) & InboundHook.repository.is_null(False))
        .group_by(InboundHook.provider, InboundHook.repository)
    )
    # peewee's stubs type ``.tuples()`` as yielding models; MAX over a group is never NULL
    rows = cast(Iterable[tuple[str, str, datetime | str]], query.tuples())
    return {(provider, repo): from_db_time(last) for provider, repo, last in rows}


def last_by_provider() -> dict[str, datetime]:
    query = InboundHook.select(InboundHook.provider, peewee.fn.MAX(InboundHook.received_at)).group_by(
        InboundHook.provider
    )
    rows = cast(Iterable[tuple[str, datetime | str]], query.tuples())
    return {provider: from_db_time(last) for provider, last in rows}


@dataclass(frozen=True)
class ProviderHooks:
    provider: str
    last_received: datetime | None
    reconcile_seconds: float

    def silent(self, now: datetime) -> bool:
        return self.last_received is None or now - self.last_received > timedelta(seconds=self.reconcile_seconds)

    def describe(self, now: datetime) -> dict[str, Any]:
        return {
            "status": "silent" if self.silent(now) else "arriving",
            "last_received_at": iso(self.last_received),
            "reconcile_interval_seconds": self.reconcile_seconds,
        }


def report(providers: dict[str, Any]) -> list[ProviderHooks]:
    """One entry per provider instance that takes hooks (``providers``: name -> instance)."""
    last = last_by_provider()
    return [
        ProviderHooks(name, last.get(name), reconcile_seconds(p.settings))
        for name, p in sorted(providers.items())
        if takes_hooks(p.settings)
    ]
