"""A behavioural test kit for provider plugins: run it from the plugin's own test suite.

Give the kit the provider and a fake of the CI (an HTTP server on 127.0.0.1) through a
``FakeControl``; it checks that dispatch binds runs (alone and concurrently), that poll
maps every upstream state (an unknown one is kept raw), that steps and timestamps only move
forward, that cancel ends a run, that upstream failures map to the plugin errors, that
settings errors name the key, that no secret leaks, and that inbound events (when the
provider parses them) agree with polling. With pytest::

    from flashfusion.plugins.testing import FakeControl, ProviderKit

    @pytest.fixture
    def kit_control():
        with MyFakeCI() as fake:
            yield MyControl(fake)

    class TestMyProviderKit(ProviderKit):
        pass

Without pytest: ``run_kit(open_control)`` returns one ``CheckResult`` per check.
See docs/plugins.md for the reference of every check.
"""

from flashfusion.plugins.testing.control import FakeControl, Fault, InboundRequest, UpstreamRun
from flashfusion.plugins.testing.inbound import parses_events, snapshots_from_request
from flashfusion.plugins.testing.loopback import LoopbackFake, LoopbackHandler
from flashfusion.plugins.testing.runner import BY_NAME, CHECKS, Check, CheckResult, ProviderKit, run_check, run_kit
from flashfusion.plugins.testing.session import KitSkip
from flashfusion.plugins.testing.tracker import KitFailure, Tracker

__all__ = [
    "BY_NAME",
    "CHECKS",
    "Check",
    "CheckResult",
    "FakeControl",
    "Fault",
    "InboundRequest",
    "KitFailure",
    "KitSkip",
    "LoopbackFake",
    "LoopbackHandler",
    "ProviderKit",
    "Tracker",
    "UpstreamRun",
    "parses_events",
    "run_check",
    "run_kit",
    "snapshots_from_request",
]
