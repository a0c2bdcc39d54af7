"""Opening a provider against the fake for one check, and the kit's outcome exceptions."""

from __future__ import annotations

import contextlib
import unittest
from collections.abc import Iterator

from flashfusion.plugins.testing.control import FakeControl
from flashfusion.plugins.testing.tracker import Tracker


class KitSkip(unittest.SkipTest):
    """The check does not apply (the message says why); pytest reports it as skipped."""


@contextlib.contextmanager
def opened(control: FakeControl) -> Iterator[Tracker]:
    """A tracker over a new provider instance, closed afterwards."""
    provider = control.provider()
    try:
        yield Tracker(control, provider)
    finally:
        provider.close()
