"""The collaborators a request handler needs, built once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pluggy

from flashfusion.core.config import Config
from flashfusion.core.errors import NotFound
from flashfusion.core.longpoll import RunWatcher
from flashfusion.core.plugin_manager import ProviderRegistry
from flashfusion.plugins import Pipeline, Provider


@dataclass
class Gateway:
    config: Config
    pm: pluggy.PluginManager
    providers: ProviderRegistry
    watcher: RunWatcher

    def pipeline(self, pipeline_id: str) -> Pipeline:
        pipeline = self.config.pipeline(pipeline_id)
        if pipeline is None:
            raise NotFound("Pipeline not found", error="Pipeline not found")
        return pipeline

    def provider_for(self, pipeline: Pipeline) -> Provider:
        return self.providers.get(pipeline.provider)

    def extra(self) -> dict[str, Any]:
        return {}
