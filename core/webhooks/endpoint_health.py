"""What attempts' outcomes say about their endpoint: a success clears ``failing_since``, a
failure starts it, and 410 Gone or failing for ``webhooks.disable_after_hours`` disables it."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flashfusion.core.storage.db import to_db_time
from flashfusion.core.storage.models import WebhookEndpoint
from flashfusion.core.webhooks.sender import Outcome

log = logging.getLogger("flashfusion.webhooks")


def judge(
    ep_id: str, outcomes: list[Outcome], failing_since: datetime | None, now: datetime, disable_after_hours: int
) -> None:
    """Update endpoint ``ep_id`` for ``outcomes``, in the order they ended (one write)."""
    changes: dict = {}
    for outcome in outcomes:
        if outcome.ok:
            failing_since = None
            changes.update(failing_since=None, last_success_at=to_db_time(now))
        elif outcome.status == 410:
            changes.update(disabled_at=to_db_time(now), disabled_reason="the endpoint answered 410 Gone")
        else:
            if failing_since is None:
                failing_since = now
                changes["failing_since"] = to_db_time(now)
            if now - failing_since >= timedelta(hours=disable_after_hours):
                changes.update(disabled_at=to_db_time(now), disabled_reason=f"failing for {disable_after_hours} hours")
    if not changes:
        return
    changes["updated_at"] = to_db_time(now)
    WebhookEndpoint.update(**changes).where(WebhookEndpoint.id == ep_id).execute()
    if "disabled_at" in changes:
        log.warning("webhook %s disabled: %s", ep_id, changes["disabled_reason"])
