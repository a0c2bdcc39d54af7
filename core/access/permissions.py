"""What an API key may do: its permissions and the pipelines it may see. One place for both."""

from __future__ import annotations

from dataclasses import dataclass, field

from flashfusion.core.errors import NotFound

PERMISSIONS = ("trigger_pipeline", "read_runs", "read_config", "webhook")


@dataclass(frozen=True)
class Actor:
    """Who is calling. ``pipeline_ids`` empty means every pipeline."""

    key_id: str
    key_preview: str
    permissions: frozenset[str]
    pipeline_ids: frozenset[str] = field(default_factory=frozenset)
    owner_id: str | None = None

    def may_see(self, pipeline_id: str) -> bool:
        return not self.pipeline_ids or pipeline_id in self.pipeline_ids


def check_pipeline_scope(actor: Actor | None, pipeline_id: str, what: str = "Pipeline") -> None:
    """A key scoped to other pipelines learns nothing: the answer is a plain 404."""
    if actor is not None and not actor.may_see(pipeline_id):
        raise NotFound(f"{what} not found", error=f"{what} not found")
