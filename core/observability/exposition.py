"""What ``GET /metrics`` answers: the recorded metrics of every process (added up from the
multiprocess files under ``serve``) and gauges read from the database at scrape time, which
are right whichever process changed the rows."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import cast

import peewee
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from flashfusion.core.observability.metrics import MULTIPROC_VAR
from flashfusion.core.storage.models import Run, WebhookDelivery

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class DatabaseGauges(Collector):
    """Runs by provider and status, and the queues' depth, counted in the database."""

    def collect(self) -> Iterable[Metric]:
        runs = GaugeMetricFamily(
            "flashfusion_runs", "Runs in the database, by provider and status", labels=["provider", "status"]
        )
        query = Run.select(Run.provider, Run.status, peewee.fn.COUNT(Run.id)).group_by(Run.provider, Run.status)
        # peewee's stubs type ``.tuples()`` as yielding models
        rows = cast(Iterable[tuple[str, str, int]], query.tuples())
        for provider, status, count in sorted(rows):
            runs.add_metric([provider, status], count)
        yield runs
        depth = GaugeMetricFamily(
            "flashfusion_queue_depth",
            "Work waiting: runs not yet dispatched, webhook deliveries not yet delivered",
            labels=["queue"],
        )
        depth.add_metric(["runs"], Run.select().where(Run.phase == "queued").count())
        depth.add_metric(["webhooks"], WebhookDelivery.select().where(WebhookDelivery.status == "pending").count())
        yield depth


def render() -> bytes:
    """The Prometheus text exposition for every process of this gateway."""
    if os.environ.get(MULTIPROC_VAR):
        from prometheus_client import multiprocess

        recorded = CollectorRegistry()
        multiprocess.MultiProcessCollector(recorded)
    else:
        recorded = REGISTRY
    database = CollectorRegistry()
    database.register(DatabaseGauges())
    return generate_latest(recorded) + generate_latest(database)
