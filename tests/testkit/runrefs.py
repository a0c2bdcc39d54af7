"""A ``RunRef`` kept up to date from a provider's snapshots the way the worker keeps a run's row."""

from __future__ import annotations

import dataclasses

from flashfusion.plugins import RunRef, RunSnapshot


def updated_ref(ref: RunRef, snap: RunSnapshot) -> RunRef:
    """What the next ``poll`` sees of a run after ``snap``: fields the snapshot leaves out stay as they were."""
    return dataclasses.replace(
        ref,
        upstream_id=snap.upstream_id if snap.upstream_id is not None else ref.upstream_id,
        provider_status=snap.provider_status if snap.provider_status is not None else ref.provider_status,
        steps=snap.steps if snap.steps is not None else ref.steps,
        state=dict(snap.state) if snap.state is not None else ref.state,
    )
