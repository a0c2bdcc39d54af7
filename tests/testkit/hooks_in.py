"""A fake's signed hooks received over HTTP (``Receiver``) and applied through a provider the
way the worker applies them: verified, parsed, matched to the pipeline, and turned into
snapshots for the runs still active that are bound to the event's upstream run."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from flashfusion.plugins import Pipeline, RunRef, RunSnapshot
from testkit.receiver import Receiver


class AppliedHooks:
    def __init__(
        self,
        sender: Any,
        rx: Receiver,
        secret: str,
        provider: Any,
        pipeline: Pipeline,
        active: Callable[[], list[RunRef]],
        store: Callable[[RunSnapshot], None],
    ) -> None:
        self.sender, self.rx, self.provider, self.pipeline = sender, rx, provider, pipeline
        self.active, self.store, self.seen = active, store, 0
        self.path = f"/hooks/{uuid.uuid4().hex}"  # its own path: a receiver may be shared between tests
        sender.add_target(rx.url(self.path), secret)

    def apply(
        self, *, skip: frozenset[str] = frozenset(), only: frozenset[str] | None = None, reverse: bool = False
    ) -> None:
        """Apply the deliveries received since the last call; events in ``skip`` (or not in
        ``only``) count as dropped; ``reverse`` applies them newest first."""
        self.sender.wait_idle()
        mine = [r for r in self.rx.snapshot() if r.path == self.path]
        new = mine[self.seen :]
        self.seen = len(mine)
        for received in reversed(new) if reverse else new:
            delivery = self.provider.verify_delivery(received.headers, received.body)
            if delivery.event in skip or (only is not None and delivery.event not in only):
                continue
            event = self.provider.parse_event(delivery, received.headers, received.body)
            if event is None or not self.provider.event_matches(self.pipeline, event):
                continue
            bound = [r for r in self.active() if r.upstream_id == event.upstream_id]
            for snap in self.provider.event_snapshots(self.pipeline, event, bound):
                self.store(snap)
