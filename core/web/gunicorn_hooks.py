"""gunicorn server hooks, loaded by ``serve`` with ``--config python:flashfusion.core.web.gunicorn_hooks``."""

from __future__ import annotations

from typing import Any

from flashfusion.core.observability import metrics, tracing


def worker_exit(server: Any, worker: Any) -> None:
    """A gunicorn worker's metric files stay counted after it exits; its live state does not."""
    metrics.process_exited(worker.pid)
    tracing.shutdown()
