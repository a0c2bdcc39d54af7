"""Run by data_scale.py: a worker process tracking N active runs of a provider whose runs
stay in progress (as long CI runs do). Prints one JSON line."""

from __future__ import annotations

import json
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from flashfusion.core.config import parse_config
from flashfusion.core.gateway import Gateway
from flashfusion.core.plugin_manager import get_plugin_manager, load_providers
from flashfusion.core.runs.longpoll import RunWatcher
from flashfusion.core.storage import db as dbmod
from flashfusion.core.storage.migrations import migrate
from flashfusion.core.worker import Worker
from flashfusion.plugins import Dispatch, Provider, RunSnapshot, StepResult, hookimpl


@dataclass(frozen=True)
class HoldSettings:
    poll_interval_seconds: float = 0.0


class HoldProvider(Provider):
    """Every run is in progress with three steps, and stays so."""

    name = "hold"
    Settings = HoldSettings

    def dispatch(self, pipeline, run, ref, inputs):
        return Dispatch(workflow_id="hold.yml", upstream_id=run.id)

    def poll(self, pipeline, runs):
        now = datetime.now(UTC)
        steps = tuple(StepResult(name=f"job-{i}", status="running", started_at=now) for i in range(3))
        return [
            RunSnapshot(
                run_id=r.id,
                status="running",
                phase="in_progress",
                provider_status="in_progress",
                steps=steps,
                upstream_id=r.id,
                state={"etag": 'W/"abc"', "updated_at": now.isoformat()},
            )
            for r in runs
        ]


class Plugin:
    @hookimpl
    def register_providers(self, register):
        register(HoldProvider)


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(active: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="ffbench-mem-"))
    try:
        config = parse_config(
            {
                "server": {"database_url": f"sqlite:///{root / 'mem.db'}"},
                "worker": {"batch_size": active, "lease_seconds": 600.0},
                "pipelines": {"long": {"provider": "hold", "repository_name": "acme/long"}},
            },
            path=str(root / "x.toml"),
            env={},
        )
        db = dbmod.open_database(config.server.database_url)
        migrate(db)
        pm = get_plugin_manager(load_entrypoints=False, extra=[Plugin()])
        gw = Gateway(config=config, pm=pm, providers=load_providers(pm, config), watcher=RunWatcher(1))
        from flashfusion.core.runs import transitions as runs

        pipeline = config.pipelines["long"]
        with db.connection_context():
            with db.atomic():
                for _ in range(active):
                    runs.create_run(pipeline, "main", {}, None)
        worker = Worker(gw, worker_id="bench")
        idle = rss_mib()
        worker.tick()  # dispatch all
        started = time.monotonic()
        worker.tick()  # poll all: every run changes to in_progress with steps
        tick = time.monotonic() - started
        worker.tick()
        tracking = rss_mib()
        print(
            json.dumps(
                {
                    "active": active,
                    "idle_mib": idle,
                    "tracking_mib": tracking,
                    "tick_s": tick,
                    "kib_per_run": (tracking - idle) * 1024 / active,
                }
            )
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
