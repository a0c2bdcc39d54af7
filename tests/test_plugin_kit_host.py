"""The host's side of third-party plugins: a plugin written for another plugin API version
is refused at start-up, and a pipeline whose provider's package is not installed is a
start-up error naming the provider and the package to install. Both run the real CLI in a
separate interpreter whose installed distributions are exactly what the test says."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

from conftest import write_config

JENKINS_PIPELINE = """
[pipelines.release]
provider = "jenkins"
repository_name = "team/app"
"""


def venv_without(tmp_path: Path, *hidden: str) -> Path:
    """A throwaway venv that sees this one's site-packages except the ``hidden`` top-level
    names (a package and its ``.dist-info``): as if they had been uninstalled. Returns its python."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    target = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
    )
    source = Path(sysconfig.get_paths()["purelib"])
    for entry in source.iterdir():
        if not entry.name.lower().startswith(tuple(h.lower() for h in hidden)):
            (target / entry.name).symlink_to(entry)
    return python


def run_cli(python: Path, config: Path, *args: str, env_path: Path | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(config.parent)}
    if env_path is not None:
        env["PYTHONPATH"] = str(env_path)
    return subprocess.run(
        [str(python), "-m", "flashfusion.core.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=config.parent,
    )


def test_a_pipeline_whose_provider_package_is_uninstalled_stops_start_up_naming_the_package(tmp_path, db_url):
    config = write_config(tmp_path, db_url, JENKINS_PIPELINE)
    python = venv_without(tmp_path, "flashfusion_jenkins", "flashfusion-jenkins")
    for command in ("check", "serve"):
        result = run_cli(python, config, command)
        assert result.returncode == 2, result.stderr
        assert "pipelines.release.provider: provider 'jenkins' is not installed" in result.stderr
        assert "pip install flashfusion-jenkins" in result.stderr
        assert "Traceback" not in result.stderr


def _third_party_plugin(root: Path, api: str) -> None:
    """An installed distribution as pip leaves it: a module and its .dist-info with an
    entry point in the ``flashfusion`` group."""
    (root / "future_ci.py").write_text(
        textwrap.dedent(f'''
        from flashfusion.plugins import Provider, hookimpl

        FLASHFUSION_PLUGIN_API = "{api}"

        class FutureProvider(Provider):
            name = "future"

        @hookimpl
        def register_providers(register):
            register(FutureProvider)
    ''')
    )
    info = root / "flashfusion_future-2.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: flashfusion-future\nVersion: 2.0.0\n")
    (info / "entry_points.txt").write_text("[flashfusion]\nfuture = future_ci\n")


def _cli_with_third_party_plugin(tmp_path: Path, db_url: str, api: str, command: str) -> subprocess.CompletedProcess:
    config = write_config(tmp_path, db_url)
    site = tmp_path / "site"
    site.mkdir()
    _third_party_plugin(site, api=api)
    return run_cli(Path(sys.executable), config, command, env_path=site)


def test_a_plugin_for_another_plugin_api_version_is_refused_at_start_up(tmp_path, db_url):
    result = _cli_with_third_party_plugin(tmp_path, db_url, "2", "check")
    assert result.returncode == 2, result.stderr
    assert "future (flashfusion-future 2.0.0): needs FlashFusion plugin API 2" in result.stderr
    assert "this FlashFusion provides API 1" in result.stderr


def test_a_plugin_declaring_the_current_api_version_loads(tmp_path, db_url):
    result = _cli_with_third_party_plugin(tmp_path, db_url, "1", "plugins")
    assert result.returncode == 0, result.stderr
    assert "future" in result.stdout
