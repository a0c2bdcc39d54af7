"""A bad configuration fails with one line naming the file, the key and the problem."""

from __future__ import annotations

import pytest

from flashfusion.core.config import load_config
from flashfusion.core.errors import ConfigError
from flashfusion.core.plugin_manager import get_plugin_manager, load_providers

GOOD = """
[server]
database_url = "sqlite:///data/ff.db"
[pipelines.demo]
provider = "local"
repository_name = "local/demo"
steps = [{ name = "a", run = "true" }]
"""


def load(tmp_path, text, env=None):
    path = tmp_path / "ff.toml"
    path.write_text(text)
    return load_config(str(path), env=env or {})


def error_of(tmp_path, text, env=None) -> str:
    with pytest.raises(ConfigError) as info:
        config = load(tmp_path, text, env)
        load_providers(get_plugin_manager(), config)
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / "ff.toml") in message
    return message


def test_good_file_loads_with_relative_sqlite_next_to_it(tmp_path):
    config = load(tmp_path, GOOD)
    assert config.server.database_url == f"sqlite:///{tmp_path}/data/ff.db"
    assert config.pipelines["demo"].branch == "main"


def test_environment_overrides(tmp_path):
    config = load(
        tmp_path,
        GOOD,
        env={
            "FLASHFUSION_DATABASE_URL": "postgresql://db/ff",
            "FLASHFUSION_WORKERS": "5",
            "FLASHFUSION_RATE_LIMITS__API_REQUESTS_PER_HOUR": "50",
        },
    )
    assert config.server.database_url == "postgresql://db/ff"
    assert config.server.workers == 5 and config.rate_limits.api_requests_per_hour == 50


def test_trusted_proxies_from_the_file_and_the_environment(tmp_path):
    assert load(tmp_path, GOOD).server.trusted_proxies == ()
    text = GOOD.replace("[server]\n", "[server]\ntrusted_proxies = ['10.0.0.0/8', '::1']\n")
    assert load(tmp_path, text).server.trusted_proxies == ("10.0.0.0/8", "::1")
    env = {"FLASHFUSION_TRUSTED_PROXIES": "192.168.1.10, fd00::/8"}
    assert load(tmp_path, GOOD, env=env).server.trusted_proxies == ("192.168.1.10", "fd00::/8")
    message = error_of(tmp_path, GOOD, env={"FLASHFUSION_TRUSTED_PROXIES": "10.0.0.0/33"})
    assert "FLASHFUSION_TRUSTED_PROXIES" in message and "'10.0.0.0/33'" in message


def test_missing_file_names_it(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path / "absent.toml"), env={})
    assert "absent.toml" in str(info.value) and "not found" in str(info.value)


A_PIPELINE = "[pipelines.x]\nprovider = 'local'\nrepository_name = 'a/b'\nsteps = [{ name = 'a', run = 'true' }]\n"


@pytest.mark.parametrize(
    "section, name, value, problem",
    [
        ("server", "workers", "'two'", "expected int"),
        ("server", "workers", "0", "greater than 0"),
        ("server", "port", "1", "unknown key"),
        ("server", "trusted_proxies", "'10.0.0.1'", "expected a list"),
        ("server", "trusted_proxies", "['10.0.0.0/8', 'proxy.local']", "'proxy.local' is not an IP address or network"),
        ("providers.github", "token", "'ghp_x'", "environment only"),
        ("providers.local", "log_tail_bytes", "'big'", "expected int"),
        ("providers.local", "colour", "'red'", "unknown setting"),
    ],
)
def test_a_bad_setting_is_named_by_its_key(tmp_path, section, name, value, problem):
    message = error_of(tmp_path, f"[{section}]\n{name} = {value}\n")
    assert f": {section}.{name}: " in message and problem in message


@pytest.mark.parametrize(
    "text, key, problem",
    [
        ("[server\n", "-", "not valid TOML"),
        ("[nonsense]\n", "nonsense", "unknown section"),
        ("[pipelines.x]\nrepository_name = 'a/b'\n", "pipelines.x.provider", "required key is missing"),
        ("[pipelines.x]\nprovider = 'local'\nrepository_name = 'a/b'\n", "pipelines.x.steps", "needs 'steps' or"),
        (
            "[pipelines.x]\nprovider = 'local'\nrepository_name = 'a/b'\nsteps = [{ name = 'a' }]\n",
            "pipelines.x.steps[0]",
            "'name' and 'run'",
        ),
        (
            "[pipelines.x]\nprovider = 'bamboo'\nrepository_name = 'a/b'\n",
            "pipelines.x.provider",
            "'bamboo' is not installed",
        ),
        ("[pipelines.'bad id!']\nprovider = 'local'\nrepository_name = 'a/b'\n", "pipelines.bad id!", "pipeline ids"),
        ("[providers.nosuch]\nurl = 'x'\n", "providers.nosuch", "no installed plugin provides"),
    ],
)
def test_bad_files(tmp_path, text, key, problem):
    message = error_of(tmp_path, text)
    assert f": {key}: " in message and problem in message


@pytest.mark.parametrize(
    "triggers, key, problem",
    [
        pytest.param("{ schedule = ['0 3 * *'] }", "schedule[0]", "expected 5 fields", id="4-fields"),
        pytest.param("{ schedule = ['0 3 * * 1-5', '61 * * * *'] }", "schedule[1]", "bad minute", id="minute-61"),
        pytest.param("{ schedule = ['0 0 30 2 *'] }", "schedule[0]", "bad day-of-month", id="february-30"),
        pytest.param("{ schedule = ['* * * * * *'] }", "schedule[0]", "expected 5 fields", id="6-fields"),
        pytest.param("{ schedule = '0 3 * * *' }", "schedule", "expected a list", id="schedule-string"),
        pytest.param(
            "{ schedule = ['0 3 * * *'], timezone = 'Mars/Olympus' }",
            "timezone",
            "not an IANA time zone",
            id="unknown-timezone",
        ),
        pytest.param("{ push = 'main' }", "push", "expected a list", id="push-string"),
        pytest.param("{ pushes = ['main'] }", "pushes", "unknown key", id="unknown-key"),
    ],
)
def test_bad_triggers(tmp_path, triggers, key, problem):
    message = error_of(tmp_path, A_PIPELINE + f"triggers = {triggers}\n")
    assert f": pipelines.x.triggers.{key}: " in message and problem in message


def test_bad_environment_override_names_the_variable(tmp_path):
    message = error_of(tmp_path, GOOD, env={"FLASHFUSION_WORKERS": "many"})
    assert "FLASHFUSION_WORKERS" in message and "expected int" in message


def test_good_triggers_load(tmp_path):
    text = A_PIPELINE + (
        "triggers = { manual = true, push = ['main', 'release/*'], "
        "schedule = ['0 3 * * 1-5', '*/15 * * * MON'], timezone = 'Europe/Riga' }\n"
    )
    assert load(tmp_path, text).pipelines["x"].triggers["timezone"] == "Europe/Riga"


def test_logging_format_and_level_from_the_file_and_the_environment(tmp_path):
    config = load(tmp_path, GOOD + '[logging]\nformat = "json"\n')
    assert (config.logging.format, config.logging.level) == ("json", "info")
    config = load(tmp_path, GOOD, env={"FLASHFUSION_LOGGING__LEVEL": "debug"})
    assert config.logging.level == "debug"
    assert "logging.format: expected one of text, json" in error_of(tmp_path, GOOD + '[logging]\nformat = "xml"\n')
    assert "FLASHFUSION_LOGGING__LEVEL: expected one of" in error_of(
        tmp_path, GOOD, {"FLASHFUSION_LOGGING__LEVEL": "loud"}
    )
