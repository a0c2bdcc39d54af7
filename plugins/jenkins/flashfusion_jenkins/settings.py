"""The ``[providers.jenkins]`` table and the pipeline options of a Jenkins pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from flashfusion.plugins import Pipeline, PipelineConfigError

PIPELINE_OPTIONS = {
    "job": "the job's full name, folders separated by '/' (default: repository_name)",
    "multibranch": "true: 'job' is a multibranch project; a run's branch selects the branch job",
}


@dataclass(frozen=True)
class JenkinsSettings:
    """Keys of ``[providers.jenkins]``. The API token is read from the environment variable
    named by ``token_env``, never from the file."""

    url: str = ""
    user: str = ""
    token_env: str = "JENKINS_TOKEN"
    ssl_verify: bool | str = True
    timeout_seconds: float = 15
    poll_interval_seconds: float = 10

    def __post_init__(self) -> None:
        if not isinstance(self.ssl_verify, (bool, str)):
            raise PipelineConfigError("ssl_verify", "expected true, false or the path of a CA bundle")
        if not self.url.startswith(("https://", "http://")):
            raise PipelineConfigError("url", "required: the Jenkins root URL, e.g. https://jenkins.example.com")
        if not self.user:
            raise PipelineConfigError("user", "required: the Jenkins user the API token belongs to")
        if not self.token_env:
            raise PipelineConfigError("token_env", "must name an environment variable")
        for key in ("timeout_seconds", "poll_interval_seconds"):
            if getattr(self, key) <= 0:
                raise PipelineConfigError(key, "must be greater than 0")


def job_name(pipeline: Pipeline) -> str:
    return str(pipeline.option("job", pipeline.repository_name)).strip("/")


def validate(pipeline: Pipeline) -> None:
    for key in pipeline.options:
        if key not in PIPELINE_OPTIONS:
            raise PipelineConfigError(key, f"not a Jenkins pipeline option (known: {', '.join(PIPELINE_OPTIONS)})")
    if not isinstance(pipeline.option("job", ""), str):
        raise PipelineConfigError("job", "expected a job name like 'folder/job'")
    if not isinstance(pipeline.option("multibranch", False), bool):
        raise PipelineConfigError("multibranch", "expected true or false")
    name = job_name(pipeline)
    if not name or any(not part.strip() for part in name.split("/")):
        raise PipelineConfigError("job", f"expected a job name like 'folder/job', got {name!r}")
    if pipeline.option("multibranch", False) and not pipeline.branch:
        raise PipelineConfigError("branch", "required for a multibranch job")


def job_path(pipeline: Pipeline, ref: str) -> str:
    """The job's URL path: ``job/a/job/b`` for ``a/b``; for a multibranch project the
    branch job comes last, named as Jenkins names it (the branch URL-encoded, so
    ``feature/x`` is the job ``feature%2Fx``)."""
    parts = job_name(pipeline).split("/")
    if pipeline.option("multibranch", False):
        parts.append(quote(ref or pipeline.branch, safe=""))
    return "/".join(f"job/{quote(part, safe='')}" for part in parts)
