"""Binding dispatches to upstream runs when GitHub did not return the run id.

Two ways, chosen at dispatch time and recorded in ``Dispatch.state["correlation"]``:

``input``  the workflow declares the correlation input (``flashfusion_run_id``) and shows it
           as its ``run-name``; the upstream run whose ``display_title`` equals the value is ours.
``order``  the workflow has no such input. Dispatches of one (workflow, ref) are sent one at a
           time under a process-wide lock and numbered (``seq``); GitHub numbers runs in the
           order it creates them (``run_number``). The n-th pending dispatch binds the n-th
           unclaimed ``workflow_dispatch`` run of that workflow and branch created no earlier
           than its server time (``Date`` of the dispatch answer) minus a small skew.

A run id, once bound, is claimed for the whole process so that no later dispatch can take it,
even after the run it belongs to has left the list of active runs.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from flashfusion.plugins import RunRef

SKEW_SECONDS = 5.0


class ClaimRegistry:
    """Upstream run ids already bound to a FlashFusion run, per (base URL, repository)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._claims: dict[tuple[str, str], dict[str, tuple[str, float]]] = defaultdict(dict)

    def taken(self, scope: tuple[str, str]) -> set[str]:
        with self._lock:
            return set(self._claims[scope])

    def claim(self, scope: tuple[str, str], upstream_id: str, run_id: str, now: float) -> bool:
        """Record the binding; ``False`` when another run holds ``upstream_id`` already."""
        with self._lock:
            holder = self._claims[scope].get(upstream_id)
            if holder is not None and holder[0] != run_id:
                return False
            self._claims[scope][upstream_id] = (run_id, now)
            return True

    def prune(self, older_than: float) -> None:
        with self._lock:
            for claims in self._claims.values():
                for upstream_id in [u for u, (_, at) in claims.items() if at < older_than]:
                    del claims[upstream_id]


#: Shared by every provider instance of the process.
CLAIMS = ClaimRegistry()


def _created(item: Mapping[str, Any]) -> float:
    return datetime.fromisoformat(str(item["created_at"]).replace("Z", "+00:00")).timestamp()


def short_ref(ref: str) -> str:
    return ref.removeprefix("refs/heads/").removeprefix("refs/tags/")


def bind(
    pending: Sequence[RunRef], items: Sequence[Mapping[str, Any]], taken: set[str]
) -> dict[str, Mapping[str, Any]]:
    """Map FlashFusion run ids of ``pending`` (runs without upstream id) to listed upstream runs.

    ``taken`` holds upstream ids that are not available; ids bound here are added to it."""
    bound: dict[str, Mapping[str, Any]] = {}
    candidates = [it for it in items if it.get("event") == "workflow_dispatch"]

    for run in pending:
        if run.state.get("correlation") != "input":
            continue
        value = run.state.get("correlation_value")
        matches = [
            it
            for it in candidates
            if it.get("display_title") == value
            and str(it["id"]) not in taken
            and str(it.get("workflow_id")) == str(run.state.get("workflow_id"))
        ]
        if matches:
            chosen = min(matches, key=lambda it: (it.get("run_number", 0), it["id"]))
            bound[run.id] = chosen
            taken.add(str(chosen["id"]))

    groups: dict[tuple[str, str], list[RunRef]] = defaultdict(list)
    for run in pending:
        if run.state.get("correlation") == "order":
            groups[(str(run.state.get("workflow_id")), short_ref(str(run.state.get("ref", run.ref))))].append(run)
    for (workflow_id, ref), group in groups.items():
        group.sort(key=lambda r: (r.state.get("seq", 0), r.created_at))
        pool = sorted(
            (
                it
                for it in candidates
                if str(it.get("workflow_id")) == workflow_id
                and it.get("head_branch") == ref
                and str(it["id"]) not in taken
            ),
            key=lambda it: (it.get("run_number", 0), it["id"]),
        )
        j = 0
        for run in group:
            not_before = float(run.state.get("dispatched_at", 0)) - SKEW_SECONDS
            while j < len(pool) and _created(pool[j]) < not_before:
                j += 1
            if j == len(pool):
                break  # later dispatches wait: runs are bound strictly in dispatch order
            bound[run.id] = pool[j]
            taken.add(str(pool[j]["id"]))
            j += 1
    return bound
