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
BAD_TRIGGERS = [
    ("{ schedule = ['0 3 * *'] }", "pipelines.x.triggers.schedule[0]", "expected 5 fields"),
    ("{ schedule = ['0 3 * * 1-5', '61 * * * *'] }", "pipelines.x.triggers.schedule[1]", "bad minute"),
    ("{ schedule = ['0 0 30 2 *'] }", "pipelines.x.triggers.schedule[0]", "bad day-of-month"),
    ("{ schedule = ['* * * * * *'] }", "pipelines.x.triggers.schedule[0]", "expected 5 fields"),
    ("{ schedule = '0 3 * * *' }", "pipelines.x.triggers.schedule", "expected a list"),
    (
        "{ schedule = ['0 3 * * *'], timezone = 'Mars/Olympus' }",
        "pipelines.x.triggers.timezone",
        "not an IANA time zone",
    ),
    ("{ push = 'main' }", "pipelines.x.triggers.push", "expected a list"),
    ("{ pushes = ['main'] }", "pipelines.x.triggers.pushes", "unknown key"),
]


@pytest.mark.parametrize(
    "text, key, problem",
    [
        ("[server\n", "-", "not valid TOML"),
        ("[nonsense]\n", "nonsense", "unknown section"),
        ("[server]\nworkers = 'two'\n", "server.workers", "expected int"),
        ("[server]\nworkers = 0\n", "server.workers", "greater than 0"),
        ("[server]\nport = 1\n", "server.port", "unknown key"),
        ("[providers.github]\ntoken = 'ghp_x'\n", "providers.github.token", "environment only"),
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
        ("[providers.local]\nlog_tail_bytes = 'big'\n", "providers.local.log_tail_bytes", "expected int"),
        ("[providers.local]\ncolour = 'red'\n", "providers.local.colour", "unknown setting"),
        ("[providers.nosuch]\nurl = 'x'\n", "providers.nosuch", "no installed plugin provides"),
        ("[server]\ntrusted_proxies = '10.0.0.1'\n", "server.trusted_proxies", "expected a list"),
        (
            "[server]\ntrusted_proxies = ['10.0.0.0/8', 'proxy.local']\n",
            "server.trusted_proxies",
            "'proxy.local' is not an IP address or network",
        ),
        *[(A_PIPELINE + f"triggers = {triggers}\n", key, problem) for triggers, key, problem in BAD_TRIGGERS],
    ],
)
def test_bad_files(tmp_path, text, key, problem):
    message = error_of(tmp_path, text)
    assert f": {key}: " in message and problem in message


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
