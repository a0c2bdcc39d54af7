"""The built-in providers pass the plugin kit (``flashfusion.plugins.testing``), each
against its fake, exactly as a third-party plugin's test suite runs it."""

from __future__ import annotations

import pytest
from kit.github_control import GitHubControl
from kit.gitlab_control import GitLabControl
from kit.local_control import LocalControl

from flashfusion.plugins.testing import ProviderKit

CONTROLS = {"local": LocalControl, "github": GitHubControl, "gitlab": GitLabControl}


@pytest.fixture(params=sorted(CONTROLS))
def kit_control(request):
    control = CONTROLS[request.param]()
    try:
        yield control
    finally:
        control.close()


class TestBuiltinProvidersKit(ProviderKit):
    pass


def test_the_plugin_guide_documents_every_check():
    from pathlib import Path

    from flashfusion.plugins.testing import CHECKS

    guide = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    missing = [c.name for c in CHECKS if f"| `{c.name}` |" not in guide]
    assert not missing, f"docs/plugins.md does not describe {missing}"
