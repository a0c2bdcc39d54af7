from __future__ import annotations

import pytest
from fake_jenkins import FakeJenkins
from jenkins_control import JenkinsControl


@pytest.fixture
def fake():
    with FakeJenkins() as server:
        yield server


@pytest.fixture
def kit_control():
    control = JenkinsControl()
    try:
        yield control
    finally:
        control.close()
