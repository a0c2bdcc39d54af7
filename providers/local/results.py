"""Where a local run's steps leave outputs and artifacts, and reading them back.

Each run gets ``<workdir>/<run id>.results/`` next to its working directory: steps append
``KEY=VALUE`` lines to ``outputs.env`` (``$FLASHFUSION_OUTPUT``) and put files under
``artifacts/`` (``$FLASHFUSION_ARTIFACTS``). The gateway's API process serves the downloads
from the same directory, so it must see the worker's ``workdir`` (same host or shared disk).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from flashfusion.plugins import Artifact, ArtifactGone, RunResults
from flashfusion.plugins.outputs import parse_output_lines

CHUNK = 64 * 1024
MAX_ARTIFACTS = 1000


class RunFiles:
    def __init__(self, base: Path, run_id: str) -> None:
        self.root = base / f"{run_id}.results"
        self.outputs = self.root / "outputs.env"
        self.artifacts = self.root / "artifacts"

    def prepare(self) -> dict[str, str]:
        """Create the files a step writes to; the environment variables that name them. A
        directory that cannot be made is left to the run's first step to report (the run's
        own directory sits beside it and fails the same way, with the reason as its log)."""
        try:
            self.artifacts.mkdir(parents=True, exist_ok=True)
            self.outputs.touch(exist_ok=True)
        except OSError:
            pass
        return {"FLASHFUSION_OUTPUT": str(self.outputs), "FLASHFUSION_ARTIFACTS": str(self.artifacts)}

    def results(self) -> RunResults:
        try:
            text = self.outputs.read_text("utf-8", "replace")
        except OSError:
            text = ""
        return RunResults(outputs=parse_output_lines(text), artifacts=tuple(self._artifacts()))

    def _artifacts(self) -> Iterator[Artifact]:
        if not self.artifacts.is_dir():
            return
        root = self.artifacts.resolve()
        found = 0
        for path in sorted(root.rglob("*")):
            if found >= MAX_ARTIFACTS:
                return
            if path.is_symlink() or not path.is_file():
                continue  # a link could point anywhere on the worker's disk
            name = path.relative_to(root).as_posix()
            found += 1
            yield Artifact(name=name, size=path.stat().st_size, locator=name)

    def open(self, artifact: Artifact) -> Iterator[bytes]:
        root = self.artifacts.resolve()
        path = (root / artifact.locator).resolve()
        if root not in path.parents or path.is_symlink() or not path.is_file():
            raise ArtifactGone(f"artifact {artifact.name!r} is no longer there")
        return _chunks(path)


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk
