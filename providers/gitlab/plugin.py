"""Entry point of the GitLab provider (``gitlab = "flashfusion.providers.gitlab.plugin"``)."""

from __future__ import annotations

from collections.abc import Callable

from flashfusion.plugins import hookimpl
from flashfusion.providers.gitlab.provider import GitLabProvider


@hookimpl
def register_providers(register: Callable[[type], None]) -> None:
    register(GitLabProvider)
