"""The provider keeps the plugin contract and is found through the ``register_providers`` hook."""

from __future__ import annotations

import pluggy
import pytest

from flashfusion.plugins import PipelineConfigError, hookspecs
from flashfusion.plugins.conformance import check_provider_class
from flashfusion.providers.github import plugin
from flashfusion.providers.github.plugin import GitHubProvider


def test_conformance():
    check_provider_class(GitHubProvider)


def test_register_providers_hook_hands_over_the_class():
    pm = pluggy.PluginManager("flashfusion")
    pm.add_hookspecs(hookspecs)
    pm.register(plugin)
    registered: list[type] = []
    pm.hook.register_providers(register=registered.append)
    assert registered == [GitHubProvider]
    assert GitHubProvider.name == "github"
    assert GitHubProvider.capabilities == {"cancel", "returns_run_id", "deployments", "results"}


def test_settings_from_a_config_table():
    provider = GitHubProvider.from_table(
        {
            "base_url": "https://ghe.example.com/api/v3",
            "app_id": 12,
            "installation_id": 34,
            "private_key_env": "APP_KEY",
            "poll_interval_seconds": 5,
            "dispatch_lost_after_seconds": 120.5,
        },
        env={},
    )
    s = provider.settings
    assert (s.app_id, s.installation_id, s.poll_interval_seconds, s.token_env) == (12, 34, 5, "GITHUB_TOKEN")
    provider.close()


@pytest.mark.parametrize(
    "table, key",
    [
        ({"app_id": "twelve"}, "app_id"),
        ({"poll_interval_seconds": "10"}, "poll_interval_seconds"),
        ({"app_id": 12, "private_key_env": "K"}, "installation_id"),
        ({"app_id": 12, "installation_id": 3}, "private_key_env"),
        ({"base_url": "ftp://x"}, "base_url"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"token": "ghp_x"}, "token"),
    ],
)
def test_bad_settings_name_the_key(table, key):
    with pytest.raises(PipelineConfigError) as info:
        GitHubProvider.from_table(table, env={})
    assert info.value.key == key


def test_validate_pipeline_blocks(make_pipeline, make_provider):
    provider = make_provider()
    provider.validate(make_pipeline("deploy.yml"))
    provider.validate(make_pipeline(161335))
    for pipeline, key in [
        (make_pipeline(None), "workflow"),
        (make_pipeline(""), "workflow"),
        (make_pipeline(["a"]), "workflow"),
        (
            make_pipeline().__class__(
                id="x", name="x", provider="github", repository_name="web", options={"workflow": "d.yml"}
            ),
            "repository_name",
        ),
    ]:
        with pytest.raises(PipelineConfigError) as info:
            provider.validate(pipeline)
        assert info.value.key == key
