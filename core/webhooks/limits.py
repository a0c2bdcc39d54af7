"""Each endpoint's rate limit (``rate_limits.webhook_events_per_minute``): one GCRA bucket
per endpoint, charged when a delivery is enqueued by request or claimed by the dispatcher."""

from __future__ import annotations

from flashfusion.core.access import ratelimit
from flashfusion.core.errors import TooManyRequests

RATE_PERIOD = 60.0


def bucket(endpoint_id: str) -> str:
    return f"webhook:{endpoint_id}"


def wait_seconds(decision: ratelimit.Decision) -> float:
    """Exact seconds until ``decision``'s bucket admits one more event."""
    return max(0.05, decision.tat + decision.interval - decision.now - decision.period)


def charge(endpoint_ids: list[str], limit: int) -> None:
    """Count one event against each endpoint's budget, inside the caller's transaction;
    if any endpoint is over, raise 429 so the transaction (and every count) rolls back."""
    denied = []
    for ep_id in endpoint_ids:
        decision = ratelimit.hit(bucket(ep_id), limit, RATE_PERIOD)
        if not decision.allowed:
            denied.append(decision)
    if denied:
        retry = max(1, int(max(wait_seconds(d) for d in denied) + 0.999))
        raise TooManyRequests(
            f"Webhook rate limit of {limit} events per minute per endpoint exceeded "
            f"for {len(denied)} subscribed endpoint(s); retry in {retry} s; nothing was sent",
            retry_after=retry,
        )
