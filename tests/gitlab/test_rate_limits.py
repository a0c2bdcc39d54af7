"""429 / RateLimit-* handling: polls are delayed, never blocked in a sleep, and lose nothing."""

from __future__ import annotations

import time
from typing import Any

import pytest
from testkit.fake_gitlab import FakeGitLab, JobSpec

from flashfusion.plugins import UpstreamUnavailable

REPO = "acme/api"


@pytest.fixture
def core(kit: Any, fake: FakeGitLab) -> Any:
    fake.add_project(REPO, jobs=(JobSpec("build", "build"), JobSpec("test", "test")))
    core = kit.core(REPO, kit.provider(poll_interval_seconds=10))
    for _ in range(5):
        core.dispatch()
    return core


def finish_all(fake: FakeGitLab, core: Any) -> None:
    for run in core.runs.values():
        while fake.advance(int(run.upstream_id)) != "success":
            pass


def test_429_on_the_list_delays_polling_without_sleeping(kit: Any, fake: FakeGitLab, core: Any) -> None:
    finish_all(fake, core)
    kit.clock.advance(10)
    fake.throttle(retry_after=30)
    fake.reset_counters()

    started = time.monotonic()
    assert core.poll() == []
    assert time.monotonic() - started < 1  # python-gitlab's own 30 s sleep is off
    assert fake.counts == {"pipelines.list": 1}

    for _ in range(2):  # within Retry-After: no request at all
        kit.clock.advance(10)
        assert core.poll() == []
    assert fake.total == 1

    kit.clock.advance(11)
    snaps = core.poll()
    assert sorted(s.run_id for s in snaps) == sorted(core.runs)
    assert {s.status for s in snaps} == {"success"}


def test_429_while_fetching_jobs_keeps_every_run_for_the_next_cycle(kit: Any, fake: FakeGitLab, core: Any) -> None:
    finish_all(fake, core)
    kit.clock.advance(10)
    fake.throttle(route="pipeline.jobs", retry_after=20)

    assert core.poll() == []  # the first run's jobs answer 429: the cycle stops there

    kit.clock.advance(10)
    assert core.poll() == []  # still within Retry-After
    kit.clock.advance(11)
    assert sorted(s.run_id for s in core.poll()) == sorted(core.runs)


def test_429_after_some_runs_reports_those_and_the_rest_later(kit: Any, fake: FakeGitLab, core: Any) -> None:
    finish_all(fake, core)
    kit.clock.advance(10)
    fake.throttle(route="pipeline", after=2, retry_after=20)

    first = core.poll()
    assert len(first) == 2 and {s.status for s in first} == {"success"}
    kit.clock.advance(21)
    second = core.poll()
    assert len(second) == 3
    assert sorted(s.run_id for s in first + second) == sorted(core.runs)
    kit.clock.advance(10)
    assert core.poll() == []


def test_exhausted_budget_holds_polls_until_reset(kit: Any, fake: FakeGitLab, core: Any) -> None:
    kit.clock.advance(10)
    fake.set_rate_limit(limit=1, reset_in=120)  # the next answer carries RateLimit-Remaining: 0
    core.poll()
    fake.reset_counters()
    for _ in range(5):
        kit.clock.advance(20)
        assert core.poll() == []
    assert fake.total == 0

    finish_all(fake, core)
    fake.set_rate_limit(limit=2000)
    kit.clock.advance(30)
    snaps = core.poll()
    assert sorted(s.run_id for s in snaps) == sorted(core.runs)


def test_429_on_dispatch_is_an_error_with_retry_after(kit: Any, fake: FakeGitLab, core: Any) -> None:
    fake.throttle(
        route="pipeline.create",
        retry_after=7,
        body={"message": "Too many pipelines created in the last minute. Try again later."},
    )
    with pytest.raises(UpstreamUnavailable) as caught:
        core.dispatch()
    error = caught.value
    assert error.retry_after == 7
    assert "Too many pipelines created" in error.message and "'web'" in error.message
    assert error.conclusion == "dispatch_error"
    kit.clock.advance(1)
    fake.reset_counters()
    core.poll()
    assert fake.counts["pipelines.list"] == 1  # a refused write does not stop polling


def test_budget_is_what_the_latest_answer_said(kit: Any, fake: FakeGitLab, core: Any) -> None:
    fake.set_rate_limit(limit=900, observed=100, reset_in=300)
    kit.clock.advance(10)
    core.poll()
    budget = core.provider.budget()
    assert budget is not None and (budget.remaining, budget.limit) == (fake.rate_remaining, 900)
    assert budget.remaining < 800  # the poll's own requests were counted
    assert budget.reset_at is not None and budget.reset_at.timestamp() > time.time() + 200
