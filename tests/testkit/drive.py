"""Drive an in-process worker until a condition holds (for API-level tests)."""

from __future__ import annotations

import time

from flashfusion.core.storage.db import database
from flashfusion.core.storage.models import Run
from flashfusion.core.worker import Worker


def run_until_done(gateway, run_id: str, timeout: float = 30, worker: Worker | None = None) -> Run:
    worker = worker or Worker(gateway, worker_id="test-worker")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.tick()
        with database.connection_context():
            run = Run.get_by_id(run_id)
        if run.phase == "completed":
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish in {timeout} s (phase {run.phase})")
