"""The collaborators a request handler needs, built once by the composition root."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import pluggy

from flashfusion.core.access.users import Passwords
from flashfusion.core.config import Config
from flashfusion.core.errors import NotFound
from flashfusion.core.plugin_manager import ProviderRegistry
from flashfusion.core.runs.longpoll import RunWatcher
from flashfusion.core.storage.db import utcnow
from flashfusion.core.webhooks.management import WebhookService
from flashfusion.plugins import Pipeline, Provider


@dataclass
class Gateway:
    config: Config
    pm: pluggy.PluginManager
    providers: ProviderRegistry
    watcher: RunWatcher
    passwords: Passwords | None = None
    clock: Callable[[], datetime] = field(default=utcnow)
    #: webhook management and sendWebhook, shared by the API, the dashboard and the CLI
    webhooks: WebhookService = field(init=False)

    def __post_init__(self) -> None:
        if self.passwords is None:
            self.passwords = Passwords.from_config(self.config.auth)
        self.webhooks = WebhookService(self)

    def pipeline(self, pipeline_id: str) -> Pipeline:
        pipeline = self.config.pipeline(pipeline_id)
        if pipeline is None:
            raise NotFound("Pipeline not found", error="Pipeline not found")
        return pipeline

    def provider_for(self, pipeline: Pipeline) -> Provider:
        return self.providers.get(pipeline.provider)
