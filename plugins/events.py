"""Inbound provider webhooks: what a provider makes of one delivery.

The core receives ``POST /hooks/{provider}``, asks the provider to check the delivery's
signature (``Provider.verify_delivery``), stores it, and later, in the worker, asks the
provider to parse it (``Provider.parse_event``) and to turn it into the same
``RunSnapshot``s polling would report (``Provider.event_snapshots``). A provider that does
none of this (the default) simply does not accept hooks: its runs are polled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: Event kinds the core acts on.
EVENT_KINDS = ("run", "push", "ping")


class DeliveryRejected(Exception):
    """The delivery's signature or token is missing or wrong. The message is safe to log
    and never contains the secret."""


@dataclass(frozen=True)
class InboundDelivery:
    """What ``verify_delivery`` learns from headers alone.

    ``delivery_id`` is upstream's id of this delivery (a redelivery repeats it): the core
    applies each id once. ``event`` is upstream's event name; ``wanted`` is False for
    events the provider ignores (the core answers 202 and stores nothing).
    """

    delivery_id: str
    event: str
    wanted: bool = True


@dataclass(frozen=True)
class InboundEvent:
    """One parsed delivery.

    ``kind``             one of ``EVENT_KINDS``: ``run`` (a run, job or deployment of
                         ``upstream_id`` changed), ``push`` or ``ping``.
    ``repository``       the repository/project, as pipelines name it in ``repository_name``.
    ``upstream_id``      the upstream run (GitHub run id, GitLab pipeline id) of a ``run`` event.
    ``started_upstream`` upstream started this run itself (a push, a schedule), not a dispatch:
                         the core records it as a new run of each matching pipeline.
    ``ref``, ``commit``, ``pusher``  the branch, commit and who pushed, when known.
    ``data``             provider-specific details, handed back to ``event_snapshots``.
    """

    kind: str
    repository: str
    upstream_id: str | None = None
    started_upstream: bool = False
    ref: str | None = None
    commit: str | None = None
    pusher: str | None = None
    occurred_at: datetime | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
