"""What polling costs against GitHub's rate limit, read from the fake's counters."""

from __future__ import annotations

import dataclasses

REPO = "acme/web"
LIST = "GET /repos/{owner}/{repo}/actions/runs"
JOBS = "GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs"


def _track_existing(t, fake, runs) -> None:
    for i, run in enumerate(runs):
        t.track(dataclasses.replace(t.new_ref(f"run_{i:03d}"), upstream_id=str(run.id)))


def test_steady_cycle_with_100_active_runs_costs_at_most_2_counted_requests(fake, tracker):
    wf = fake.add_workflow(REPO, "deploy.yml")
    for _ in range(30):  # older, finished dispatches push the oldest active runs to page 2
        fake.finish(fake.create_run(wf).id)
    fake.create_run(wf, event="push")
    t = tracker()
    t.clock.advance(600)
    runs = [fake.create_run(wf) for _ in range(100)]
    for run in runs[::2]:
        fake.advance(run.id, 3)  # half are in progress, half queued
    _track_existing(t, fake, runs)

    first = t.cycle()
    assert len(first) == 100

    fake.reset_counters()
    assert t.cycle() == []  # nothing changed: nothing to report
    steady = fake.stats()
    print(
        f"\nsteady cycle, 100 active runs: {steady['total']} requests, {steady['counted']} counted, "
        f"{steady['not_modified']} answered 304"
    )
    assert steady["counted"] <= 2
    assert steady["total"] == steady["by_route"][LIST] <= 2
    assert steady["not_modified"] == steady["total"]

    # One run moves: one list page and one jobs request are paid, and only that run is reported.
    fake.advance(runs[10].id)
    fake.reset_counters()
    [snap] = t.cycle()
    assert snap.run_id == "run_010"
    changed = fake.stats()
    assert changed["counted_by_route"].get(JOBS) == 1
    assert changed["counted"] <= 3


def test_cost_of_following_one_run_from_dispatch_to_deployment(fake, tracker):
    """The figure behind the capacity estimate in docs/providers/github.md."""
    fake.add_workflow(
        REPO,
        "deploy.yml",
        deploy=("production", "https://web.acme.example"),
        jobs=[("build", ["Set up job", "Run tests", "Complete job"])],
    )
    t = tracker()
    upstream = int(t.dispatch("run_1").upstream_id)
    cycles = 0
    while not (t.latest.get("run_1") and t.latest["run_1"].terminal):
        if cycles % 3 == 2:  # the run changes every third cycle
            fake.advance(upstream)
        t.cycle()
        cycles += 1
    stats = fake.stats()
    changes = len(t.history["run_1"])
    print(
        f"\none run, {cycles} cycles, {changes} reported changes: {stats['counted']} counted requests "
        f"({stats['counted_by_route']}), {stats['not_modified']} free 304s"
    )
    assert t.latest["run_1"].deployment_url == "https://web.acme.example"
    # dispatch (workflow lookup + POST) + one list per changed cycle + jobs per change + deployments (2)
    assert stats["counted"] <= 2 + 2 * changes + 2
    assert stats["not_modified"] >= cycles - changes - 1


def test_polling_is_spaced_by_the_poll_interval_within_a_process(fake, tracker):
    fake.add_workflow(REPO, "deploy.yml")
    t = tracker(poll_interval_seconds=10)
    t.dispatch("run_1")
    t.cycle()
    fake.reset_counters()
    t.cycle(1)
    t.cycle(1)
    assert fake.total == 0  # a listing younger than half an interval is reused
    t.cycle(5)
    assert fake.by_route[LIST] == 1


def test_a_repository_without_deployments_pays_for_no_deployment_lookup(fake, tracker):
    """Asked once whether the repository has deployments at all; while it has none the answer
    is a free 304 and no lookup by commit is made. Once one exists, completions look it up."""
    deployments = "GET /repos/{owner}/{repo}/deployments"
    wf = fake.add_workflow(REPO, "deploy.yml")
    t = tracker()
    first, second = (int(t.dispatch(f"run_{i}").upstream_id) for i in (1, 2))
    t.cycle()
    fake.finish(first)
    fake.reset_counters()
    [done] = t.cycle()
    assert done.deployment_url is None and fake.stats()["counted_by_route"][deployments] == 1

    fake.finish(second)
    fake.reset_counters()
    [done] = t.cycle()
    stats = fake.stats()
    assert done.deployment_url is None
    assert deployments not in stats["counted_by_route"] and stats["by_route"][deployments] == 1  # the 304

    wf.deploy = ("production", "https://web.acme.example")
    third = int(t.dispatch("run_3").upstream_id)
    t.cycle()
    fake.finish(third)
    [done] = t.cycle()
    assert done.deployment_url == "https://web.acme.example"

    fourth = int(t.dispatch("run_4").upstream_id)
    t.cycle()
    fake.finish(fourth)
    fake.reset_counters()
    [done] = t.cycle()
    assert done.deployment_url == "https://web.acme.example"
    assert fake.stats()["by_route"][deployments] == 1  # the lookup by commit; not asked again
