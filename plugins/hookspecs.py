"""The hooks FlashFusion calls. Each docstring is the reference for its hook.

Implement a hook with a function of the same name and (a subset of) the same arguments,
decorated with ``flashfusion.plugins.hookimpl``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flashfusion.plugins.markers import hookspec


@hookspec
def register_providers(register: Callable[[type], None]) -> None:
    """Hand provider classes to the host: call ``register(ProviderClass)`` once per
    ``Provider`` subclass. Registering a name twice is an error at start-up."""


@hookspec
def run_finished(run: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]] | None:
    """Called by the worker once a run reaches ``success`` or ``failed``.

    ``run`` is the finished run as ``get-status`` shows it; ``history`` the pipeline's
    earlier finished runs, newest first (at most 50). Return a list of suggestion dicts
    (``{"kind", "message", ...numbers}``) to publish as ``optimization.available`` events,
    or ``None``."""


@hookspec
def startup(app: Any, config: Any) -> None:
    """Called once per process after the Falcon ``app`` (``None`` in the worker) and the
    parsed ``config`` are built. Use it to add routes or read plugin settings."""


@hookspec(firstresult=True)
def check_quality_gate(kind: str, expected: Any, run: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Check a quality gate of a kind the core does not know (a key of a pipeline's
    ``quality_gates`` table other than ``required_steps``, ``max_duration_seconds`` and
    ``outputs``). ``expected`` is that key's value; ``run`` the finished run as get-status
    shows it (``outputs`` included). Return ``{"passed": bool, "actual": ..., "reason": "..."}``
    for a kind you check, ``None`` for the others. Called inside the run's completing
    transaction: no network, keep it quick. A kind nobody checks fails the run."""
