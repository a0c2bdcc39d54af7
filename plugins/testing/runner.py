"""The list of checks, running them, and a base class that turns them into pytest tests."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from flashfusion.plugins.testing import contract_checks as contract
from flashfusion.plugins.testing import run_checks as runs
from flashfusion.plugins.testing.control import FakeControl
from flashfusion.plugins.testing.session import KitSkip
from flashfusion.plugins.testing.tracker import KitFailure


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[FakeControl], None]

    @property
    def doc(self) -> str:
        return " ".join((self.run.__doc__ or "").split())


CHECKS: tuple[Check, ...] = (
    Check("shape", contract.check_shape),
    Check("dispatch_binds", runs.check_dispatch_binds),
    Check("concurrent_dispatches", runs.check_concurrent_dispatches),
    Check("states_map", runs.check_states_map),
    Check("unknown_state_kept", runs.check_unknown_state_kept),
    Check("steps_move_forward", runs.check_steps_move_forward),
    Check("cancel_ends_run", runs.check_cancel_ends_run),
    Check("error_bad_credentials", contract.check_error_bad_credentials),
    Check("error_not_found", contract.check_error_not_found),
    Check("error_rate_limited", contract.check_error_rate_limited),
    Check("error_unavailable", contract.check_error_unavailable),
    Check("settings_errors_name_the_key", contract.check_settings_errors_name_the_key),
    Check("no_secret_leaks", contract.check_no_secret_leaks),
    Check("inbound_matches_polling", runs.check_inbound_matches_polling),
)
BY_NAME = {check.name: check for check in CHECKS}


@dataclass(frozen=True)
class CheckResult:
    name: str
    outcome: str  # "passed", "failed" or "skipped"
    detail: str = ""


def run_check(name: str, control: FakeControl) -> None:
    """Run one check; raises ``KitFailure`` (an ``AssertionError``) or ``KitSkip``."""
    BY_NAME[name].run(control)


def run_kit(
    open_control: Callable[[], AbstractContextManager[FakeControl]], names: Iterable[str] | None = None
) -> list[CheckResult]:
    """Run checks (all by default), each against a fresh fake from ``open_control``.
    An unexpected exception of the provider counts as a failure of that check."""
    results = []
    for name in names or BY_NAME:
        with open_control() as control:
            try:
                run_check(name, control)
            except KitSkip as exc:
                results.append(CheckResult(name, "skipped", str(exc)))
            except KitFailure as exc:
                results.append(CheckResult(name, "failed", str(exc)))
            except Exception as exc:
                results.append(CheckResult(name, "failed", f"{type(exc).__name__}: {exc}"))
            else:
                results.append(CheckResult(name, "passed"))
    return results


class ProviderKit:
    """Every check as a pytest test. Subclass it as ``TestMyProviderKit`` and give the class
    (or its module, or a conftest) a ``kit_control`` fixture that yields a fresh
    ``FakeControl`` over a started fake and stops it afterwards. A check that does not apply
    is reported as skipped, with the reason."""

    def test_shape(self, kit_control: FakeControl) -> None:
        run_check("shape", kit_control)

    def test_dispatch_binds(self, kit_control: FakeControl) -> None:
        run_check("dispatch_binds", kit_control)

    def test_concurrent_dispatches(self, kit_control: FakeControl) -> None:
        run_check("concurrent_dispatches", kit_control)

    def test_states_map(self, kit_control: FakeControl) -> None:
        run_check("states_map", kit_control)

    def test_unknown_state_kept(self, kit_control: FakeControl) -> None:
        run_check("unknown_state_kept", kit_control)

    def test_steps_move_forward(self, kit_control: FakeControl) -> None:
        run_check("steps_move_forward", kit_control)

    def test_cancel_ends_run(self, kit_control: FakeControl) -> None:
        run_check("cancel_ends_run", kit_control)

    def test_error_bad_credentials(self, kit_control: FakeControl) -> None:
        run_check("error_bad_credentials", kit_control)

    def test_error_not_found(self, kit_control: FakeControl) -> None:
        run_check("error_not_found", kit_control)

    def test_error_rate_limited(self, kit_control: FakeControl) -> None:
        run_check("error_rate_limited", kit_control)

    def test_error_unavailable(self, kit_control: FakeControl) -> None:
        run_check("error_unavailable", kit_control)

    def test_settings_errors_name_the_key(self, kit_control: FakeControl) -> None:
        run_check("settings_errors_name_the_key", kit_control)

    def test_no_secret_leaks(self, kit_control: FakeControl) -> None:
        run_check("no_secret_leaks", kit_control)

    def test_inbound_matches_polling(self, kit_control: FakeControl) -> None:
        run_check("inbound_matches_polling", kit_control)


def _checks_have_tests() -> None:
    missing = [c.name for c in CHECKS if not hasattr(ProviderKit, f"test_{c.name}")]
    assert not missing, f"ProviderKit lacks tests for {missing}"


_checks_have_tests()
