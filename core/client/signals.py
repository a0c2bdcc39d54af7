"""SIGTERM as an exception, like SIGINT's KeyboardInterrupt, so a cancelled CI job (which
gets SIGTERM, or SIGINT from a terminal) reaches the code that stops the runs it started."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class Stopped(BaseException):
    """The CLI was asked to stop; ``exit_code`` is the conventional 128 + signal number."""

    def __init__(self, exit_code: int, name: str) -> None:
        super().__init__(name)
        self.exit_code = exit_code
        self.name = name


class StopSignals:
    """SIGINT and SIGTERM raise ``Stopped``; within ``deferred()`` (a request that starts runs,
    whose answer names what to cancel) the signal is kept and raised when the block ends."""

    def __init__(self) -> None:
        self.pending: Stopped | None = None
        self._defer = 0

    def handle(self, signum: int, frame: Any) -> None:
        stopped = Stopped(EXIT_SIGTERM, "SIGTERM") if signum == signal.SIGTERM else Stopped(EXIT_SIGINT, "SIGINT")
        if self._defer:
            self.pending = self.pending or stopped
            return
        raise stopped

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self._defer += 1
        try:
            yield
        finally:
            self._defer -= 1
        if self.pending is not None and not self._defer:
            raise self.pending


@contextmanager
def stop_on_signals() -> Iterator[StopSignals]:
    """Within the block, SIGINT and SIGTERM raise ``Stopped`` in the main thread (a blocking
    HTTP read is interrupted); afterwards the previous handlers are back."""
    stop = StopSignals()
    previous = {sig: signal.signal(sig, stop.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def shielded() -> Iterator[None]:
    """Within the block (cancelling what was started), a further SIGINT or SIGTERM is
    ignored: a CI runner sends SIGTERM and often SIGINT again, and the cancel must go out."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
