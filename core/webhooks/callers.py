"""Who asks the webhook service, and which endpoints they see.

An API key (``webhook`` permission) sees the endpoints whose pipeline filter lies inside
its ``pipeline_ids`` (an unscoped key sees all); a person sees the endpoints they created,
an administrator all of them; the CLI is the operator and sees all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flashfusion.core.access import audit
from flashfusion.core.access.permissions import Actor
from flashfusion.core.storage.models import User, WebhookEndpoint


@dataclass(frozen=True)
class Caller:
    """An API key (``actor``), a logged-in person (``user``), or the operator (neither);
    ``client_addr``: where the call came from, for the audit log."""

    actor: Actor | None = None
    user: User | None = None
    client_addr: str | None = None

    @property
    def name(self) -> str:
        if self.actor is not None:
            return f"key:{self.actor.key_id}"
        if self.user is not None:
            return self.user.username
        return "cli"

    @property
    def scope(self) -> frozenset[str]:
        return self.actor.pipeline_ids if self.actor is not None else frozenset()

    @property
    def owner_id(self) -> str | None:
        if self.actor is not None:
            return self.actor.owner_id
        return self.user.id if self.user is not None else None

    def audit(self, action: str, target: str, **detail: Any) -> None:
        audit.record(action, self.name, target=target, client_addr=self.client_addr, **detail)

    def may_see_pipeline(self, pipeline_id: str) -> bool:
        return self.actor is None or self.actor.may_see(pipeline_id)

    def may_see(self, endpoint: WebhookEndpoint) -> bool:
        if endpoint.deleted_at is not None:
            return False
        if self.actor is not None:
            scope = self.actor.pipeline_ids
            return not scope or (bool(endpoint.pipeline_ids) and set(endpoint.pipeline_ids) <= scope)
        if self.user is not None and not self.user.is_admin:
            return endpoint.owner_id == self.user.id
        return True
