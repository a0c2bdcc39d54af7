"""The reconciler's switch: when a repository's webhooks are relied on (polled only every
``reconcile_interval_seconds``) and when polling goes back to ``poll_interval_seconds``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flashfusion.core.hooks.activity import TRUSTED_FOR, trusted

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_a_repository_that_never_sent_a_hook_is_polled_as_usual():
    assert not trusted(None, None, NOW)


def test_a_quiet_repository_keeps_its_trust_without_hooks():
    """Nothing happening upstream sends no hook; quietness alone is no reason to poll fast."""
    assert trusted(NOW - timedelta(hours=3), None, NOW)


def test_trust_runs_out_when_no_hook_came_for_a_long_time():
    assert not trusted(NOW - TRUSTED_FOR - timedelta(seconds=1), None, NOW)


def test_a_change_no_hook_reported_ends_trust_until_the_next_hook():
    hook = NOW - timedelta(minutes=30)
    missed = NOW - timedelta(minutes=5)
    assert not trusted(hook, missed, NOW)
    assert trusted(NOW - timedelta(minutes=1), missed, NOW)
