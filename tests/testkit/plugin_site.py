"""Install a one-module plugin into a directory of its own, the way an installed
distribution looks to ``importlib.metadata``: the module beside a ``.dist-info`` holding
its ``flashfusion`` entry point. A process started with that directory on ``PYTHONPATH``
loads the plugin like any pip-installed one, and the test venv stays untouched."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path


def install_plugin(site: Path, module: str, source: str, version: str = "0.0.1") -> dict[str, str]:
    """Write ``module`` (``source``) and its distribution metadata into ``site``; return the
    environment that puts ``site`` on a child process's path."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{module}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[flashfusion]\n{module} = {module}\n")
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path}
