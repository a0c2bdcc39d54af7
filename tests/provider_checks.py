"""What the GitHub and GitLab API tests share beyond ``testkit.provider_api``: their pipelines' tables,
following a run while upstream moves it on, a real serve refusing triggers once the token is revoked
upstream, and ``flashfusion doctor`` run in-process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import pipeline_table
from testkit.gateway import ApiKit
from testkit.provider_api import Served


def pipeline_tables(provider: str, pipelines: dict[str, dict[str, Any]]) -> str:
    """One ``[pipelines.<id>]`` table per entry, each run by ``provider``."""
    return "".join(
        pipeline_table(pipeline_id, {"provider": provider, **settings}) for pipeline_id, settings in pipelines.items()
    )


def cycle_until_upstream_finishes(
    kit: ApiKit,
    run_id: str,
    finished: Callable[[], bool],
    tick: Callable[[float], object],
    advance: Callable[[], object],
) -> list[dict[str, Any]]:
    """Until ``finished()``: 5 s pass upstream (``tick``), the run there moves on a step (``advance``) and the
    worker cycles once; the run as ``get-status`` showed it after each cycle."""
    seen = []
    while not finished():
        tick(5)
        advance()
        kit.cycle()
        seen.append(kit.status(run_id))
    return seen


def assert_trigger_refused(served: Served, pipeline_id: str, named: tuple[str, ...], token: str) -> None:
    """A trigger once the provider refuses ``token``: 502, a message holding each of ``named``, no token."""
    refused = served.http.post("/api/trigger-pipeline", json={"pipeline_id": pipeline_id})
    assert refused.status_code == 502
    assert all(word in refused.json()["message"] for word in named)
    assert token not in refused.text


def assert_refusal_logged(served: Served, says: str, token: str) -> None:
    """The stopped serve's log holds the refusal (``says``) and nowhere the token."""
    log = served.server.process.output()
    assert says in log
    assert token not in log


def run_doctor(capsys: pytest.CaptureFixture[str], config: Path, *pipelines: str, exits: int) -> str:
    """``flashfusion doctor`` on ``config`` (only ``pipelines`` when given), which must exit ``exits``;
    what it printed."""
    from flashfusion.core.cli import main

    args = ["--config", str(config), "doctor"]
    for pipeline_id in pipelines:
        args += ["--pipeline", pipeline_id]
    assert main(args) == exits
    return capsys.readouterr().out
