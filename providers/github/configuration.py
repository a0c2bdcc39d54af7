"""The pipeline block's rules and ``check()`` for GitHub: what ``flashfusion check`` and
``doctor`` say about a pipeline before any run starts."""

from __future__ import annotations

from typing import Any

import requests
from github import GithubException

from flashfusion.plugins import Pipeline, PipelineConfigError, ProviderError
from flashfusion.providers.github.checks import workflow_text_problems
from flashfusion.providers.github.errors import CredentialsMissing, github_message


class GitHubConfigChecks:
    """Needs the provider's ``settings``, ``_pool`` and ``_error``."""

    settings: Any
    _pool: Any

    def _error(self, exc: BaseException, pipeline: Pipeline, action: str) -> ProviderError:
        raise NotImplementedError

    def validate(self, pipeline: Pipeline) -> None:
        owner, _, repo = pipeline.repository_name.partition("/")
        if not owner or not repo or "/" in repo:
            raise PipelineConfigError("repository_name", 'must be "owner/repo" for provider github')
        workflow = pipeline.option("workflow")
        if workflow is None or isinstance(workflow, bool) or not str(workflow).strip():
            raise PipelineConfigError(
                "workflow", "required for provider github: a workflow file name (deploy.yml) or a numeric workflow id"
            )
        if not isinstance(workflow, (str, int)):
            raise PipelineConfigError("workflow", "must be a file name or a numeric id")
        if not pipeline.branch:
            raise PipelineConfigError("branch", "required for provider github")

    def check(self, pipeline: Pipeline) -> list[str]:
        """Checks, in order, one line for the first that fails: the pipeline block; the
        credentials and that the repository and workflow exist (one GET of the workflow); that
        the workflow is ``active``; then, if the token may read contents, that the workflow file
        on ``branch`` has a ``workflow_dispatch`` trigger and, when it declares the correlation
        input, that ``run-name`` shows it. Without ``contents:read`` the file checks are skipped."""
        try:
            self.validate(pipeline)
        except PipelineConfigError as exc:
            return [f"pipeline block: {exc}"]
        key = str(pipeline.option("workflow"))
        repo = pipeline.repository_name
        try:
            with self._pool.client() as g:
                workflow = g.get_repo(repo).get_workflow(key)
                state, path = workflow.state, workflow.path
                if state != "active":
                    return [f"workflow {key!r} in {repo} is {state}, not active"]
                try:
                    content = g.get_repo(repo).get_contents(path, ref=pipeline.branch)
                except GithubException as exc:
                    if exc.status in (403, 404):
                        return []
                    raise
                if isinstance(content, list):
                    return []
                text = content.decoded_content.decode("utf-8", "replace")
                return workflow_text_problems(text, key, self.settings.correlation_input)
        except CredentialsMissing as exc:
            return [f"github credentials: {exc}"]
        except GithubException as exc:
            if exc.status == 401:
                return [f"github credentials rejected ({github_message(exc)}): check {self._credential_name()}"]
            if exc.status == 404:
                return [f"workflow {key!r} not found in {repo} (or the credentials cannot see the repository)"]
            return [self._error(exc, pipeline, "check the workflow").message]
        except requests.exceptions.RequestException as exc:
            return [self._error(exc, pipeline, "check the workflow").message]

    def _credential_name(self) -> str:
        s = self.settings
        if s.app_id is not None:
            return f"GitHub App {s.app_id} installation {s.installation_id}"
        return f"environment variable {s.token_env}"
