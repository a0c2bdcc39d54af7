"""HOOK POINT for inbound events (webhooks a CI sends about its runs).

``snapshots_from_request`` is the one place where the kit hands a webhook to a provider.
It speaks the optional inbound-event interface of ``Provider`` by name
(``verify_delivery`` -> ``parse_event`` -> ``event_snapshots``), so a provider that does not
override ``parse_event`` is reported as "does not parse events" and the check is skipped
with that reason. If the interface changes, change this function only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flashfusion.plugins.provider import Provider
from flashfusion.plugins.testing.control import InboundRequest
from flashfusion.plugins.types import Pipeline, RunRef, RunSnapshot


def parses_events(provider: Provider) -> bool:
    """Whether the provider implements the inbound-event interface itself."""
    own = getattr(type(provider), "parse_event", None)
    return own is not None and own is not getattr(Provider, "parse_event", None)


def snapshots_from_request(provider: Provider, pipeline: Pipeline, request: InboundRequest,
                           runs: Sequence[RunRef]) -> list[RunSnapshot] | None:
    """The snapshots the provider makes of ``request`` for ``runs``; ``None`` when the
    provider does not parse inbound events."""
    if not parses_events(provider):
        return None
    target: Any = provider
    headers = {k.lower(): v for k, v in request.headers.items()}
    delivery = target.verify_delivery(headers, request.body)
    event = target.parse_event(delivery, headers, request.body)
    if event is None:
        return []
    return list(target.event_snapshots(pipeline, event, list(runs)))
