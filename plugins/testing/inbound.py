"""HOOK POINT for inbound events (webhooks a CI sends about its runs).

``snapshots_from_request`` is the one place where the kit hands a webhook to a provider, the
way the core does (``flashfusion.plugins.events``): the receiver checks the delivery
(``verify_delivery``) and drops the events the provider does not want; the worker parses it
(``parse_event``), keeps it for the pipelines it concerns (``event_matches``), and asks for the
snapshots of the runs bound to the event's upstream run (``event_snapshots``). A provider that
does not override ``parse_event`` is reported as "does not parse events" and the check is
skipped with that reason. If the interface changes, change this module only.
"""

from __future__ import annotations

from collections.abc import Sequence

from flashfusion.plugins.events import DeliveryRejected
from flashfusion.plugins.provider import Provider
from flashfusion.plugins.testing.control import InboundRequest
from flashfusion.plugins.testing.tracker import KitFailure
from flashfusion.plugins.types import Pipeline, RunRef, RunSnapshot


def parses_events(provider: Provider) -> bool:
    """Whether the provider implements the inbound-event interface itself."""
    return type(provider).parse_event is not Provider.parse_event


def snapshots_from_request(
    provider: Provider, pipeline: Pipeline, request: InboundRequest, runs: Sequence[RunRef]
) -> list[RunSnapshot] | None:
    """The snapshots the provider makes of ``request`` for those of ``runs`` bound to the
    event's upstream run; ``None`` when the provider does not parse inbound events. Raises
    ``KitFailure`` when the core would drop the delivery (rejected signature, unwanted event,
    not about a run, or about another pipeline)."""
    if not parses_events(provider):
        return None
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        delivery = provider.verify_delivery(headers, request.body)
    except DeliveryRejected as exc:
        raise KitFailure(f"verify_delivery() rejected the fake's signed webhook: {exc}") from None
    if not delivery.wanted:
        raise KitFailure(
            f"verify_delivery() marked the fake's {delivery.event!r} webhook about a run as not "
            "wanted (the core would drop it)"
        )
    event = provider.parse_event(delivery, headers, request.body)
    if event is None:
        return []
    if event.kind != "run":
        raise KitFailure(f"parse_event() read the fake's webhook about a run as a {event.kind!r} event")
    if not provider.event_matches(pipeline, event):
        raise KitFailure(
            f"event_matches() says the webhook about a run of pipeline {pipeline.id!r} "
            f"(repository {event.repository!r}) does not concern it"
        )
    bound = [r for r in runs if event.upstream_id is not None and r.upstream_id == event.upstream_id]
    if not bound:
        raise KitFailure(
            f"parse_event() named upstream run {event.upstream_id!r}, the webhook was about "
            f"{', '.join(repr(r.upstream_id) for r in runs)}"
        )
    return list(provider.event_snapshots(pipeline, event, bound))
