"""Every status and conclusion GitHub sends maps to one FlashFusion state (PROVIDER-APIS A.3, A.7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashfusion.plugins import PHASES, RUN_STATUSES, RunRef
from flashfusion.plugins.types import STEP_STATUSES
from flashfusion.providers.github.checks import has_dispatch_trigger, workflow_text_problems
from flashfusion.providers.github.correlation import bind
from flashfusion.providers.github.mapping import run_state, step_status

RUN_STATUS_VALUES = ["requested", "queued", "pending", "waiting", "in_progress", "completed"]
CONCLUSIONS = [
    "success",
    "failure",
    "neutral",
    "cancelled",
    "skipped",
    "timed_out",
    "action_required",
    "startup_failure",
    "stale",
    None,
]


@pytest.mark.parametrize(
    "status, expected",
    [
        ("requested", ("running", "queued", None)),
        ("queued", ("running", "queued", None)),
        ("pending", ("running", "queued", None)),
        ("waiting", ("running", "queued", None)),
        ("in_progress", ("running", "in_progress", None)),
        ("brand_new_status", ("running", "in_progress", None)),
    ],
)
def test_non_terminal_run_statuses(status, expected):
    assert run_state(status, None) == expected


@pytest.mark.parametrize(
    "conclusion, status",
    [
        ("success", "success"),
        ("neutral", "success"),
        ("skipped", "success"),
        ("failure", "failed"),
        ("cancelled", "failed"),
        ("timed_out", "failed"),
        ("action_required", "failed"),
        ("startup_failure", "failed"),
        ("stale", "failed"),
        ("brand_new_conclusion", "failed"),
    ],
)
def test_completed_runs(conclusion, status):
    assert run_state("completed", conclusion) == (status, "completed", conclusion)


def test_completed_without_conclusion_is_a_failure_not_a_hang():
    assert run_state("completed", None) == ("failed", "completed", "unknown")


@given(st.sampled_from(RUN_STATUS_VALUES + ["x"]), st.sampled_from(CONCLUSIONS + ["y"]))
def test_every_combination_lands_in_the_spec_vocabulary(status, conclusion):
    mapped, phase, _ = run_state(status, conclusion)
    assert mapped in RUN_STATUSES and phase in PHASES
    assert (phase == "completed") == (status == "completed")
    assert step_status(status, conclusion) in STEP_STATUSES


@pytest.mark.parametrize(
    "status, conclusion, expected",
    [
        ("queued", None, "pending"),
        ("waiting", None, "pending"),
        ("in_progress", None, "running"),
        ("completed", "success", "success"),
        ("completed", "neutral", "success"),
        ("completed", "skipped", "skipped"),
        ("completed", "cancelled", "cancelled"),
        ("completed", "failure", "failed"),
        ("completed", "timed_out", "failed"),
    ],
)
def test_step_statuses(status, conclusion, expected):
    assert step_status(status, conclusion) == expected


@pytest.mark.parametrize(
    "text, found",
    [
        ("on: workflow_dispatch\n", True),
        ("on: [push, workflow_dispatch]\n", True),
        ("on:\n  push:\n  workflow_dispatch:\n    inputs: {}\n", True),
        ("on:\n  'workflow_dispatch':\n", True),
        ("on: push\n# workflow_dispatch is disabled\n", False),
        ("on:\n  push:\n  # workflow_dispatch:\n", False),
        ("on: push\n", False),
    ],
)
def test_dispatch_trigger_detection(text, found):
    assert has_dispatch_trigger(text) is found


def test_run_name_check():
    declared = "on:\n  workflow_dispatch:\n    inputs:\n      flashfusion_run_id:\n        required: false\n"
    assert workflow_text_problems(declared, "d.yml", "flashfusion_run_id")
    assert (
        workflow_text_problems("run-name: ${{ inputs.flashfusion_run_id }}\n" + declared, "d.yml", "flashfusion_run_id")
        == []
    )


T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _pending(i: int, seq: int, ref: str = "main") -> RunRef:
    return RunRef(
        id=f"run_{i}",
        pipeline_id="p",
        ref=ref,
        inputs={},
        created_at=T0,
        state={"correlation": "order", "seq": seq, "workflow_id": 7, "ref": ref, "dispatched_at": T0.timestamp() + i},
    )


def _item(run_id: int, number: int, at: float, branch: str = "main") -> dict:
    created = (T0 + timedelta(seconds=at)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "id": run_id,
        "run_number": number,
        "workflow_id": 7,
        "head_branch": branch,
        "event": "workflow_dispatch",
        "created_at": created,
        "display_title": "Deploy",
    }


@given(st.permutations(range(6)), st.integers(0, 6))
def test_order_binding_is_in_dispatch_order_and_never_reuses_a_run(perm, visible):
    """Whatever order the runs are passed in and however many upstream runs are listed yet,
    the k-th dispatch gets the k-th run, later dispatches wait, and no run is bound twice."""
    pending = [_pending(i, seq=100 + i) for i in range(6)]
    items = [_item(1000 + i, number=50 + i, at=i) for i in range(visible)]
    bound = bind([pending[i] for i in perm], list(reversed(items)), taken=set())
    assert {run_id: item["id"] for run_id, item in bound.items()} == {f"run_{i}": 1000 + i for i in range(visible)}


def test_taken_runs_are_skipped():
    bound = bind([_pending(0, 1)], [_item(1, 1, 0), _item(2, 2, 0)], taken={"1"})
    assert bound["run_0"]["id"] == 2
