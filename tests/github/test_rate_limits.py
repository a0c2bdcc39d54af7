"""Rate limits slow polling down and lose nothing."""

from __future__ import annotations

import pytest
from testkit.fake_github import FakeGitHub

from flashfusion.plugins import UpstreamUnavailable

REPO = "acme/web"


def _three_running_runs(fake, t) -> list[int]:
    ids = [int(t.dispatch(f"run_{i}").upstream_id) for i in range(3)]
    t.cycle()
    return ids


@pytest.mark.parametrize("status", [403, 429])
def test_primary_exhaustion_pauses_polling_until_reset_then_reports_everything(clock, tracker, status):
    with FakeGitHub(clock=clock, exhausted_status=status) as fake:
        fake.add_repo(REPO)
        fake.add_workflow(REPO, "deploy.yml")
        t = tracker(base_url=fake.url)
        ids = _three_running_runs(fake, t)
        fake.exhaust_rate_limit(reset_in=600)
        for upstream in ids:
            fake.finish(upstream)

        assert t.cycle() == []
        assert fake.by_status[status] == 1
        fake.reset_counters()
        for _ in range(5):  # until reset: no request at all
            assert t.cycle(100) == []
        assert fake.total == 0

        snaps = t.cycle(100)  # past the reset
        assert {s.run_id: (s.status, s.conclusion) for s in snaps} == {
            f"run_{i}": ("success", "success") for i in range(3)
        }


def test_secondary_limit_waits_retry_after(fake, tracker):
    fake.add_workflow(REPO, "deploy.yml")
    t = tracker()
    [upstream] = _three_running_runs(fake, t)[:1]
    fake.finish(upstream)
    fake.secondary_limit(retry_after=120)
    assert t.cycle() == []
    fake.reset_counters()
    assert t.cycle(60) == [] and t.cycle(50) == []
    assert fake.total == 0
    snaps = t.cycle(20)
    assert ("run_0", "success") in {(s.run_id, s.status) for s in snaps}


def test_secondary_limit_without_retry_after_backs_off_exponentially(fake, tracker):
    fake.add_workflow(REPO, "deploy.yml")
    t = tracker()
    _three_running_runs(fake, t)
    fake.secondary_limit(count=2, retry_after=None)
    t.cycle()
    assert t.provider._throttle.wait_seconds() == pytest.approx(60)
    t.cycle(61)
    assert t.provider._throttle.wait_seconds() == pytest.approx(120)
    fake.advance_all()
    snaps = t.cycle(121)
    assert len(snaps) == 3


def test_a_limit_hit_in_the_middle_of_a_cycle_loses_no_run(fake, tracker):
    fake.add_workflow(REPO, "deploy.yml")
    t = tracker()
    ids = _three_running_runs(fake, t)
    for upstream in ids:
        fake.finish(upstream)
    fake.secondary_limit(retry_after=30, path_contains="/jobs")
    first = t.cycle()
    assert len(first) < 3  # the cycle stopped at the refused jobs request
    second = t.cycle(31)
    reported = {s.run_id for s in first} | {s.run_id for s in second}
    assert reported == {"run_0", "run_1", "run_2"}
    assert all(t.latest[r].status == "success" for r in reported)


def test_low_remaining_budget_pauses_polling_and_keeps_it_for_dispatches(fake, tracker):
    fake.add_workflow(REPO, "deploy.yml")
    t = tracker(rate_limit_reserve=50)
    _three_running_runs(fake, t)
    fake.remaining = 45
    fake.advance_all()
    t.cycle()
    fake.reset_counters()
    assert t.cycle() == []
    assert fake.total == 0
    t.dispatch("run_urgent")  # dispatches still go through
    assert fake.counted == 1


def test_dispatch_when_rate_limited_says_when_to_retry(fake, tracker):
    fake.add_workflow(REPO, "deploy.yml")
    t = tracker()
    t.dispatch("run_0")
    fake.exhaust_rate_limit(reset_in=300)
    with pytest.raises(UpstreamUnavailable) as info:
        t.dispatch("run_1")
    assert info.value.retry_after == pytest.approx(301, abs=2)
    assert "rate limit" in info.value.message


def test_budget_is_what_the_latest_answer_said_and_never_costs_a_request(fake, tracker):
    fake.add_workflow(REPO, "deploy.yml")
    t = tracker()
    assert t.provider.budget() is None  # nothing heard yet, and nothing asked to find out
    assert fake.total == 0
    t.dispatch("run_0")  # a dispatch's answers count too, not only polls'
    budget = t.provider.budget()
    assert budget is not None and fake.total > 0
    assert (budget.remaining, budget.limit) == (fake.remaining, fake.rate_limit)
    assert budget.reset_at is not None and budget.reset_at.timestamp() == int(fake.reset_at)
    fake.exhaust_rate_limit(reset_in=600)
    t.cycle()
    assert t.provider.budget().remaining == 0
