"""Entry point of the GitHub provider (``flashfusion`` group: ``github = "flashfusion.providers.github.plugin"``)."""

from __future__ import annotations

from collections.abc import Callable

from flashfusion.plugins import hookimpl
from flashfusion.providers.github.provider import GitHubProvider

__all__ = ["GitHubProvider", "register_providers"]


@hookimpl
def register_providers(register: Callable[[type], None]) -> None:
    register(GitHubProvider)
