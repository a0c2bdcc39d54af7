"""The kit's ``FakeControl`` for the ``local`` provider: its "CI" is the machine, so the
fake is a pipeline whose steps wait for gate files the control writes (the exit code of
each step is the gate's content)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from flashfusion.plugins import Pipeline, PipelineStep, Provider
from flashfusion.plugins.testing import FakeControl, UpstreamRun
from flashfusion.providers.local.provider import LocalProvider, LocalSettings

STEPS = 3
SECRET = "kit-local-deploy-token-5f1e"


def _gate(i: int) -> str:
    return f'while [ ! -f gate{i} ]; do sleep 0.02; done; exit "$(cat gate{i})"'


class LocalControl(FakeControl):
    timeout_seconds = 30.0

    def __init__(self, provider_class: type[LocalProvider] = LocalProvider) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="ff-kit-local-"))
        self.provider_class = provider_class

    def provider(self) -> Provider:
        env = {"PATH": os.environ.get("PATH", os.defpath), "KIT_DEPLOY_TOKEN": SECRET}
        return self.provider_class(LocalSettings(workdir=str(self.workdir)), env=env)

    def pipeline(self) -> Pipeline:
        marker = f'printf %s "$FLASHFUSION_INPUT_{self.marker_input.upper()}" > marker.tmp && mv marker.tmp marker; '
        steps = tuple(PipelineStep(name=f"step{i}", run=(marker if i == 0 else "") + _gate(i)) for i in range(STEPS))
        return Pipeline(
            id="kit", name="kit", provider="local", repository_name="kit/local", steps=steps, timeout_seconds=120
        )

    def runs(self) -> Sequence[UpstreamRun]:
        found = []
        for marker in self.workdir.glob("*/marker"):
            found.append(UpstreamRun(marker.parent.name, {self.marker_input: marker.read_text()}))
        return found

    def states(self) -> Mapping[str, str]:
        return {"success": "success", "failure": "failed"}

    def _write_gate(self, upstream_id: str, i: int, code: int) -> None:
        run_dir = self.workdir / upstream_id
        run_dir.mkdir(parents=True, exist_ok=True)
        tmp = run_dir / f".gate{i}"
        tmp.write_text(str(code))
        tmp.rename(run_dir / f"gate{i}")

    def set_state(self, upstream_id: str, state: str) -> None:
        for i in range(STEPS):
            self._write_gate(upstream_id, i, 0 if state == "success" else 1)

    def advance(self, upstream_id: str) -> bool:
        for i in range(STEPS):
            if not (self.workdir / upstream_id / f"gate{i}").exists():
                self._write_gate(upstream_id, i, 0)
                return i < STEPS - 1
        return False

    def secrets(self) -> Sequence[str]:
        return [SECRET]

    def tick(self) -> None:
        time.sleep(0.05)

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
