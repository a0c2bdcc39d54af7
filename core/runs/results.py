"""What a finished run gave back (outputs, artifacts) and how its quality gates went.

The worker asks the provider for a finished run's results before the completing transition
(``collect``); the transition stores them and judges the gates (``Completion``) in the same
transaction that ends the run, so a run never shows success and then failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

from flashfusion.core.runs import gates
from flashfusion.core.storage.db import from_db_time, iso
from flashfusion.core.storage.models import Run
from flashfusion.plugins import Artifact, Pipeline, Provider, ProviderError, RunRef, RunResults, RunSnapshot

log = logging.getLogger("flashfusion.runs")

MAX_OUTPUTS = 64
MAX_OUTPUT_BYTES = 64 * 1024
QUALITY_GATE_FAILED = "quality_gate_failed"


def run_results(run: Run) -> dict[str, Any]:
    """The get-status fields of ``run``'s results: ``outputs``, ``artifacts`` (with the
    gateway's ``download_url``), ``quality_gates``, and the ``group_id`` of a run started by
    trigger-pipelines."""
    return {
        "outputs": dict(run.outputs or {}),
        "artifacts": [
            {
                "name": a["name"],
                "size": a.get("size"),
                "expires_at": a.get("expires_at"),
                "download_url": download_url(run.id, a["name"]),
            }
            for a in run.artifacts or []
        ],
        "quality_gates": list(run.quality_gates or []),
        "group_id": run.group_id,
    }


def download_url(run_id: str, name: str) -> str:
    return "/api/get-artifact?" + urlencode({"run_id": run_id, "name": name})


def bounded_outputs(outputs: Mapping[str, str]) -> dict[str, str]:
    """At most ``MAX_OUTPUTS`` outputs and ``MAX_OUTPUT_BYTES`` of names and values in all,
    in the order given; the rest are dropped (and logged by name only)."""
    kept: dict[str, str] = {}
    size = 0
    for name, value in outputs.items():
        name, value = str(name), str(value)
        cost = len(name.encode()) + len(value.encode())
        if len(kept) >= MAX_OUTPUTS or size + cost > MAX_OUTPUT_BYTES:
            log.warning(
                "output %r dropped: a run keeps at most %d outputs and %d bytes",
                name[:100],
                MAX_OUTPUTS,
                MAX_OUTPUT_BYTES,
            )
            continue
        kept[name] = value
        size += cost
    return kept


def stored_artifact(artifact: Artifact) -> dict[str, Any]:
    return {
        "name": artifact.name,
        "size": artifact.size,
        "expires_at": iso(artifact.expires_at),
        "locator": artifact.locator,
    }


def find_artifact(run: Run, name: str) -> Artifact | None:
    for a in run.artifacts or []:
        if a["name"] == name:
            return Artifact(
                name=a["name"],
                size=a.get("size"),
                expires_at=from_db_time(a.get("expires_at")),
                locator=a.get("locator") or "",
            )
    return None


def collect(provider: Provider, pipeline: Pipeline, run: RunRef) -> RunResults | None:
    """The provider's results for a run it reports finished; None when it has none to give
    or upstream failed (the run then completes without them)."""
    if "results" not in provider.capabilities:
        return None
    try:
        return provider.results(pipeline, run)
    except ProviderError as exc:
        log.warning("fetching the results of %s failed: %s", run.id, exc.message)
    except Exception:
        log.exception("fetching the results of %s crashed", run.id)
    return None


@dataclass
class Completion:
    """What the completing transition needs beyond the snapshot: the results collected from
    the provider and the pipeline's gates (with the plugins' ``check_quality_gate``)."""

    quality_gates: Mapping[str, Any] = field(default_factory=dict)
    results: RunResults | None = None
    plugin_check: Callable[..., Any] | None = None

    def apply(self, run: Run, shown: Callable[[Run], dict[str, Any]]) -> None:
        """Store the results on ``run`` and judge its gates; a success whose gate fails ends
        ``failed`` with conclusion ``quality_gate_failed``. ``shown`` is the run as
        get-status shows it (what gates read)."""
        if self.results is not None:
            run.outputs = bounded_outputs(self.results.outputs)
            run.artifacts = [stored_artifact(a) for a in self.results.artifacts]
        if not self.quality_gates:
            return
        judged = gates.evaluate(self.quality_gates, shown(run), self.plugin_check)
        run.quality_gates = judged
        if run.status == "success" and gates.failed(judged):
            run.status, run.conclusion = "failed", QUALITY_GATE_FAILED
            run.error_message = "quality gates failed: " + ", ".join(g["name"] for g in gates.failed(judged))


def completion_for(
    pipeline: Pipeline, provider: Provider, run: RunRef, snapshot: RunSnapshot, plugin_check: Callable[..., Any] | None
) -> Completion | None:
    """The completion of ``run`` when ``snapshot`` ends it (None otherwise): its results
    fetched now, outside any transaction, as the snapshot describes the run."""
    if not snapshot.terminal:
        return None
    current = replace(
        run,
        upstream_id=snapshot.upstream_id or run.upstream_id,
        state=snapshot.state if snapshot.state is not None else run.state,
        steps=snapshot.steps if snapshot.steps is not None else run.steps,
    )
    return Completion(
        quality_gates=pipeline.quality_gates, results=collect(provider, pipeline, current), plugin_check=plugin_check
    )
