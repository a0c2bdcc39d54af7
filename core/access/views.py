"""Users, API keys and audit events as the API shows them, declared once: ``users``,
``apikeys`` and ``audit`` build these Structs and /openapi.json describes them (``User``,
``ApiKeyInfo``, ``AuditEvent``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from flashfusion.core.access.permissions import PERMISSIONS
from flashfusion.core.answer_types import TIME_TEXT, EveryPipelineIfEmpty, NullableTime

Permission = Literal[PERMISSIONS]  # type: ignore[valid-type]


class User(Struct, kw_only=True):
    id: str
    username: str
    is_admin: bool
    created_at: NullableTime
    disabled: bool


class ApiKeyInfo(Struct, kw_only=True):
    id: str
    name: str
    key_preview: str
    permissions: list[Permission]
    pipeline_ids: EveryPipelineIfEmpty
    created_at: NullableTime
    expires_at: NullableTime
    last_used: NullableTime
    usage_count: Annotated[int, Meta(ge=0)]
    revoked: bool
    previous_key_expires_at: (
        Annotated[
            str, Meta(description=(f"{TIME_TEXT}. While a rotation's grace period lasts: when the old secret stops"))
        ]
        | UnsetType
    ) = UNSET
    owner: Annotated[str | None, Meta(description="Owner's username (administrators' listings only)")] | UnsetType = (
        UNSET
    )


class AuditEvent(Struct, kw_only=True):
    id: str
    at: NullableTime
    actor: str
    action: str
    target: str | None
    client_addr: str | None
    key_preview: str | None
    detail: dict[str, Any] | None
