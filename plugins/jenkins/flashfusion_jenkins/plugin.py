"""The entry point FlashFusion loads (``[project.entry-points.flashfusion]``)."""

from __future__ import annotations

from collections.abc import Callable

from flashfusion.plugins import hookimpl
from flashfusion_jenkins import FLASHFUSION_PLUGIN_API
from flashfusion_jenkins.provider import JenkinsProvider

__all__ = ["FLASHFUSION_PLUGIN_API", "register_providers"]


@hookimpl
def register_providers(register: Callable[[type], None]) -> None:
    register(JenkinsProvider)
