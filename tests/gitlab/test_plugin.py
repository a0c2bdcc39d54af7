"""The provider keeps the plugin contract: conformance kit, hook, settings and validation."""

from __future__ import annotations

import pluggy
import pytest

from flashfusion.plugins import Pipeline, PipelineConfigError, hookspecs
from flashfusion.plugins.conformance import check_provider_class
from flashfusion.plugins.markers import PROJECT_NAME
from flashfusion.providers.gitlab import plugin
from flashfusion.providers.gitlab.provider import GitLabProvider


def test_conformance_kit_passes() -> None:
    check_provider_class(GitLabProvider)
    assert GitLabProvider.name == "gitlab"
    assert GitLabProvider.capabilities == {"cancel", "returns_run_id", "deployments", "results"}


def test_register_providers_hook_hands_over_the_class() -> None:
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(plugin)
    pm.check_pending()
    registered: list[type] = []
    pm.hook.register_providers(register=registered.append)
    assert registered == [GitLabProvider]


def test_settings_defaults_and_types() -> None:
    provider = GitLabProvider.from_table({}, env={})
    assert provider.settings == GitLabProvider.Settings()
    assert (
        provider.settings.url,
        provider.settings.token_env,
        provider.settings.trigger_token_env,
        provider.settings.poll_interval_seconds,
        provider.settings.timeout_seconds,
    ) == ("https://gitlab.com", "GITLAB_TOKEN", None, 10, 15)
    custom = GitLabProvider.from_table(
        {
            "url": "https://gitlab.acme.internal",
            "trigger_token_env": "T",
            "poll_interval_seconds": 2.5,
            "timeout_seconds": 3,
            "ssl_verify": "/etc/ssl/acme-ca.pem",
        },
        env={},
    )
    assert custom.settings.poll_interval_seconds == 2.5 and custom.settings.ssl_verify == "/etc/ssl/acme-ca.pem"


@pytest.mark.parametrize(
    "table, key",
    [
        ({"url": 5}, "url"),
        ({"url": "gitlab.com"}, "url"),
        ({"url": "https://gitlab.com/api/v4"}, "url"),
        ({"trigger_token_env": 3}, "trigger_token_env"),
        ({"poll_interval_seconds": "10"}, "poll_interval_seconds"),
        ({"poll_interval_seconds": -1}, "poll_interval_seconds"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"token": "glpat-x"}, "token"),
    ],
)
def test_bad_settings_name_the_key(table: dict, key: str) -> None:
    with pytest.raises(PipelineConfigError) as caught:
        GitLabProvider.from_table(table, env={})
    assert caught.value.key == key


def block(repo: str = "acme/web", branch: str = "main", **options: object) -> Pipeline:
    return Pipeline(id="web", name="Web", provider="gitlab", repository_name=repo, branch=branch, options=options)


@pytest.mark.parametrize(
    "pipeline",
    [
        block(),
        block("1234"),
        block("acme.io/platform-team/sub_group/web.app-2"),
        block(inputs_as="inputs", trigger_token_env="WEB_TRIGGER", environment="production"),
    ],
)
def test_valid_pipeline_blocks(pipeline: Pipeline) -> None:
    GitLabProvider.from_table({}, env={}).validate(pipeline)


@pytest.mark.parametrize(
    "pipeline, key",
    [
        (block(""), "repository_name"),
        (block("web"), "repository_name"),
        (block("/acme/web"), "repository_name"),
        (block("acme//web"), "repository_name"),
        (block("acme/my web"), "repository_name"),
        (block(branch=""), "branch"),
        (block(inputs_as="json"), "inputs_as"),
        (block(workflow="deploy.yml"), "workflow"),
        (block(environment=""), "environment"),
    ],
)
def test_invalid_pipeline_blocks_name_the_key(pipeline: Pipeline, key: str) -> None:
    with pytest.raises(PipelineConfigError) as caught:
        GitLabProvider.from_table({}, env={}).validate(pipeline)
    assert caught.value.key == key
