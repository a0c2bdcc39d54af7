"""What a person may see and do in the dashboard.

An administrator sees every pipeline and run and may do everything. Anyone else sees what
their own live API keys (not revoked, not expired) allow: a permission held by one of their
keys, for that key's pipelines (a key with no pipeline list covers every pipeline).
``read_runs`` shows runs and run statistics, ``read_config`` a pipeline's provider,
repository and branch, ``trigger_pipeline`` the trigger form and cancel. API keys and
webhook endpoints: one's own; administrators all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from flashfusion.core.access.permissions import PERMISSIONS
from flashfusion.core.storage.db import to_db_time
from flashfusion.core.storage.models import ApiKey, User

ALL = None  # every pipeline


@dataclass(frozen=True)
class Access:
    user: User
    pipelines: tuple[str, ...]  # every configured pipeline, in order
    grants: dict[str, frozenset[str] | None] = field(default_factory=dict)  # permission -> pipelines (None = all)

    @property
    def admin(self) -> bool:
        return bool(self.user.is_admin)

    def may(self, permission: str, pipeline_id: str) -> bool:
        if self.admin:
            return True
        if permission not in self.grants:
            return False
        scope = self.grants[permission]
        return scope is ALL or pipeline_id in scope

    def allowed(self, permission: str) -> list[str]:
        return [p for p in self.pipelines if self.may(permission, p)]

    def visible(self) -> list[str]:
        return [p for p in self.pipelines if any(self.may(perm, p) for perm in PERMISSIONS)]


def access_for(user: User, pipelines: Iterable[str], now: datetime) -> Access:
    pipelines = tuple(pipelines)
    if user.is_admin:
        return Access(user=user, pipelines=pipelines)
    stamp = to_db_time(now)
    keys = ApiKey.select(ApiKey.permissions, ApiKey.pipeline_ids).where(
        (ApiKey.owner_id == user.id)
        & ApiKey.revoked_at.is_null()
        & (ApiKey.expires_at.is_null() | (ApiKey.expires_at > stamp))
    )
    grants: dict[str, set[str] | None] = {}
    for key in keys:
        for perm in key.permissions or []:
            if key.pipeline_ids:
                scope = grants.setdefault(perm, set())
                if scope is not None:  # None is ALL: already every pipeline
                    scope.update(key.pipeline_ids)
            else:
                grants[perm] = ALL
    frozen = {perm: (ALL if scope is ALL else frozenset(scope)) for perm, scope in grants.items()}
    return Access(user=user, pipelines=pipelines, grants=frozen)
