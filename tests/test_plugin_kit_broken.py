"""Every check of the plugin kit fails for a provider that breaks its rule: one broken
GitLab provider per check (``kit/broken_gitlab.py``), run against the fake GitLab."""

from __future__ import annotations

import contextlib

import pytest
from kit import broken_gitlab as broken
from kit.gitlab_control import GitLabControl

from flashfusion.plugins.testing import CHECKS, run_kit

BROKEN = {
    "shape": (broken.UnknownCapability, "unknown capabilities ['teleport']"),
    "dispatch_binds": (broken.WrongUpstreamId, "which the fake does not have"),
    "concurrent_dispatches": (broken.HandsOutThePreviousId, "which was started for"),
    "states_map": (broken.CanceledIsSuccess, "'canceled' was reported as 'success', expected 'failed'"),
    "unknown_state_kept": (broken.RaisesOnUnknownState, "poll() raised KeyError for the unknown upstream state"),
    "steps_move_forward": (broken.ReplaysFirstSteps, "back to"),
    "cancel_ends_run": (broken.CancelDoesNothing, "timed out after 3 s waiting for the cancelled run to end"),
    "error_bad_credentials": (broken.AuthAsRejected, "raised UpstreamRejected"),
    "error_not_found": (broken.NotFoundAsGeneric, "raised ProviderError"),
    "error_rate_limited": (broken.DropsRetryAfter, "the error's retry_after is None"),
    "error_unavailable": (broken.UnavailableCrashes, "raised RuntimeError"),
    "settings_errors_name_the_key": (broken.SettingsKeyLost, "the error names 'settings', expected"),
    "no_secret_leaks": (broken.LogsItsToken, "a secret appears in a log line: kit.broken: dispatching with token"),
    "inbound_matches_polling": (broken.HooksDisagree, "the webhook gave ('running', 'in_progress', None"),
}


def _opener(provider_class, timeout=20.0):
    @contextlib.contextmanager
    def open_control():
        control = GitLabControl(provider_class)
        control.timeout_seconds = timeout
        try:
            yield control
        finally:
            control.close()

    return open_control


def test_every_check_has_a_broken_provider():
    assert sorted(BROKEN) == sorted(c.name for c in CHECKS)


@pytest.mark.parametrize("check", sorted(BROKEN))
def test_each_check_fails_for_the_provider_that_breaks_it(check):
    provider_class, expected = BROKEN[check]
    [result] = run_kit(_opener(provider_class, timeout=3.0), [check])
    assert (result.outcome, check) == ("failed", check), result.detail
    assert expected in result.detail
