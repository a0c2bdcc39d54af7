"""Binding dispatches to upstream runs: with ``return_run_details``, and without it (older GHES)
by the correlation input or by dispatch order, under concurrent dispatches."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import pytest
from testkit.fake_github import FakeGitHub

REPO = "acme/web"
N = 20


def _dispatch_concurrently(t, n: int = N) -> None:
    """``n`` threads dispatch the same workflow on the same branch; input ``note`` names the
    FlashFusion run so the test (not the provider) can tell which upstream run is whose."""
    ids = [f"run_{i:02d}" for i in range(n)]
    with ThreadPoolExecutor(max_workers=n) as pool:
        list(pool.map(lambda run_id: t.dispatch(run_id, {"note": run_id}), ids))


def _assert_bound_correctly(fake: FakeGitHub, t) -> None:
    upstream = {run_id: ref.upstream_id for run_id, ref in t.refs.items()}
    assert all(upstream.values()), upstream
    assert len(set(upstream.values())) == len(upstream)
    for run_id, upstream_id in upstream.items():
        assert fake.runs[int(upstream_id)].inputs["note"] == run_id


def test_concurrent_dispatches_with_return_run_details(fake, tracker):
    fake.add_workflow(REPO, "deploy.yml", inputs=["note"])
    t = tracker()
    _dispatch_concurrently(t)
    _assert_bound_correctly(fake, t)
    assert all(ref.state["correlation"] == "run_details" for ref in t.refs.values())
    assert len(fake.runs) == N


@pytest.fixture
def ghes(clock):
    """A server that refuses ``return_run_details`` and lists new runs only after 3 s."""
    with FakeGitHub(clock=clock, reject_return_run_details=True, list_delay=3) as server:
        server.add_repo(REPO, branches=("main", "release"))
        yield server


def test_concurrent_dispatches_bound_by_order_without_correlation_input(ghes, tracker):
    ghes.add_workflow(REPO, "deploy.yml", inputs=["note"])
    t = tracker(base_url=ghes.url)
    _dispatch_concurrently(t)
    assert all(ref.upstream_id is None and ref.state["correlation"] == "order" for ref in t.refs.values())
    assert len(ghes.runs) == N  # every fallback ended in exactly one run

    snaps = t.poll()  # before the runs are listed: all still dispatching
    assert len(snaps) == N and {(s.status, s.phase) for s in snaps} == {("running", "dispatching")}

    t.clock.advance(10)
    shuffled = list(t.refs.values())
    random.Random(4).shuffle(shuffled)
    snaps = t.poll(shuffled)
    assert {s.phase for s in snaps} == {"queued"}
    _assert_bound_correctly(ghes, t)

    # Once the server is known to refuse the parameter, a dispatch costs one POST.
    ghes.reset_counters()
    t.dispatch("run_late", {"note": "run_late"})
    assert ghes.by_route["POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches"] == 1


def test_concurrent_dispatches_bound_by_correlation_input(ghes, tracker):
    ghes.add_workflow(
        REPO, "deploy.yml", inputs=["note", "flashfusion_run_id"], run_name="${{ inputs.flashfusion_run_id }}"
    )
    t = tracker(base_url=ghes.url)
    _dispatch_concurrently(t)
    assert all(ref.state["correlation"] == "input" for ref in t.refs.values())
    assert all(ghes.runs[i].inputs["flashfusion_run_id"] == ghes.runs[i].inputs["note"] for i in ghes.runs)
    t.clock.advance(10)
    t.poll(list(reversed(list(t.refs.values()))))
    _assert_bound_correctly(ghes, t)


def test_order_binding_skips_runs_of_other_branches_and_older_runs(ghes, tracker):
    """Runs started by someone else more than a few seconds before a dispatch are not taken.
    (One started within those seconds on the same branch cannot be told apart: use
    return_run_details or the correlation input where that matters.)"""
    wf = ghes.add_workflow(REPO, "deploy.yml", inputs=["note"])
    old_main = ghes.create_run(wf, "main", {"note": "someone else"})
    t = tracker(base_url=ghes.url)
    t.clock.advance(30)
    old_release = ghes.create_run(wf, "release", {"note": "someone else"})
    t.clock.advance(30)
    t.dispatch("run_rel", {"note": "run_rel"}, ref="release")
    t.dispatch("run_main", {"note": "run_main"})
    t.clock.advance(10)
    t.poll()
    _assert_bound_correctly(ghes, t)
    assert {old_main.id, old_release.id}.isdisjoint(int(r.upstream_id) for r in t.refs.values())


def test_claims_keep_bindings_distinct_across_poll_calls_and_instances(ghes, tracker):
    """Order binding is exact when a poll call carries all pending runs of a workflow and branch
    (one pipeline); when runs are split over calls or provider instances, the process-wide
    claims still guarantee that no upstream run is bound twice."""
    ghes.add_workflow(REPO, "deploy.yml", inputs=["note"])
    dispatcher = tracker(base_url=ghes.url)
    for i in range(4):
        dispatcher.dispatch(f"run_{i}", {"note": f"run_{i}"})
    dispatcher.clock.advance(10)
    refs = list(dispatcher.refs.values())
    first, second = tracker(base_url=ghes.url), tracker(base_url=ghes.url)
    for ref in refs[2:]:
        first.track(ref)
    for ref in refs[:2]:
        second.track(ref)
    first.poll()
    second.poll()
    bound = [r.upstream_id for r in (*first.refs.values(), *second.refs.values())]
    assert None not in bound and len(set(bound)) == 4
    assert {int(b) for b in bound} == set(ghes.runs)


def test_a_dispatch_never_listed_ends_as_dispatch_lost(clock, tracker):
    with FakeGitHub(clock=clock, reject_return_run_details=True, list_delay=10_000) as server:
        server.add_repo(REPO)
        server.add_workflow(REPO, "deploy.yml")
        t = tracker(base_url=server.url, dispatch_lost_after_seconds=300)
        dispatch = t.dispatch("run_lost")
        assert dispatch.upstream_id is None
        [snap] = t.cycle(290)
        assert (snap.status, snap.phase) == ("running", "dispatching")
        [snap] = t.cycle(20)
        assert (snap.status, snap.phase, snap.conclusion) == ("failed", "completed", "dispatch_lost")
        assert t.active() == []


def test_bound_run_is_then_followed_to_completion(ghes, tracker):
    ghes.add_workflow(REPO, "deploy.yml")
    t = tracker(base_url=ghes.url)
    t.dispatch("run_1")
    t.cycle()
    upstream = int(t.refs["run_1"].upstream_id)
    ghes.finish(upstream)
    [snap] = t.cycle()
    assert (snap.status, snap.conclusion, snap.upstream_id) == ("success", "success", str(upstream))
