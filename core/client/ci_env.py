"""An ``Idempotency-Key`` for a trigger, derived from the CI job that makes it.

The point: a CI job that is *retried* must not start a second run. What identifies "the
same job" in each CI system:

* GitHub Actions -- ``GITHUB_REPOSITORY`` + ``GITHUB_RUN_ID`` + ``GITHUB_JOB`` +
  ``GITHUB_ACTION`` (the step). ``GITHUB_RUN_ATTEMPT`` is deliberately *not* part of it: a
  re-run ("Re-run jobs") is the only way to retry a job on GitHub, and it increments the
  attempt, so including it would make every retry start a new run.
* GitLab CI -- ``CI_SERVER_HOST`` + ``CI_PROJECT_ID`` + ``CI_PIPELINE_ID`` +
  ``CI_JOB_NAME``. Not ``CI_JOB_ID``: a retried job (``retry:`` or the retry button) gets
  a new job id but keeps its pipeline and name. ``parallel:matrix`` jobs have distinct
  names, so each leg keeps its own run.

Both keys also hold the pipeline id and a digest of the request (branch, inputs): two
triggers of different pipelines or with different inputs from one job are different
requests, and a changed request never collides with the earlier one (which the gateway
would refuse with 422).

But a retry after a *failed* run should try again, not report the old failure forever. So
the derived key is the first of a chain: ``K``, ``K.2``, ``K.3``, ... The client asks with
``K``; if the gateway replays a run that already finished without success (failed,
cancelled, timed out), it asks with the next key, until it gets a new run or one that is
running or succeeded. A retried job therefore re-attaches to a run still in progress or
already successful, and starts a fresh one only when the earlier attempt's run failed.

An explicit ``--idempotency-key`` (or ``FLASHFUSION_IDEMPOTENCY_KEY``) is used as given,
without the chain. Outside CI each invocation gets a random key, so the client's own
retries of one request are still safe.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_KEY_LENGTH = 255
MAX_CHAIN = 50
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class CiJob:
    system: str  # "github" or "gitlab"
    identity: tuple[tuple[str, str], ...]
    label: str  # short, human-readable
    url: str | None = None  # the CI job's own page, when known


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


def detect(env: Mapping[str, str]) -> CiJob | None:
    if _truthy(env.get("GITHUB_ACTIONS")) and env.get("GITHUB_RUN_ID"):
        names: tuple[str, ...] = (
            "GITHUB_SERVER_URL",
            "GITHUB_REPOSITORY",
            "GITHUB_RUN_ID",
            "GITHUB_JOB",
            "GITHUB_ACTION",
        )
        identity = tuple((n, env.get(n, "")) for n in names)
        url = None
        if env.get("GITHUB_SERVER_URL") and env.get("GITHUB_REPOSITORY"):
            url = f"{env['GITHUB_SERVER_URL']}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
        return CiJob("github", identity, f"gh-{env['GITHUB_RUN_ID']}-{env.get('GITHUB_JOB', '')}", url)
    if _truthy(env.get("GITLAB_CI")) and env.get("CI_PIPELINE_ID"):
        names = ("CI_SERVER_HOST", "CI_PROJECT_ID", "CI_PIPELINE_ID", "CI_JOB_NAME")
        identity = tuple((n, env.get(n, "")) for n in names)
        return CiJob(
            "gitlab", identity, f"gl-{env['CI_PIPELINE_ID']}-{env.get('CI_JOB_NAME', '')}", env.get("CI_JOB_URL")
        )
    return None


def request_digest(pipeline_id: str, branch: str | None, inputs: Mapping[str, str]) -> str:
    blob = json.dumps(
        {"pipeline_id": pipeline_id, "branch": branch or "", "inputs": dict(inputs)},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def derive_key(env: Mapping[str, str], pipeline_id: str, branch: str | None, inputs: Mapping[str, str]) -> str | None:
    """The first key of the chain for this CI job and request, or ``None`` outside CI."""
    job = detect(env)
    if job is None:
        return None
    digest = hashlib.sha256(
        json.dumps([job.system, list(job.identity), request_digest(pipeline_id, branch, inputs)]).encode()
    ).hexdigest()[:32]
    readable = _UNSAFE.sub("_", f"{job.label}-{pipeline_id}")[: MAX_KEY_LENGTH - 40]
    return f"ffci-{readable}-{digest}"


def chain(first: str, n: int) -> str:
    """The n-th key of the chain (0 is ``first``)."""
    return first if n == 0 else f"{first}.{n + 1}"


def random_key() -> str:
    return f"ffcli-{uuid.uuid4().hex}"


DEFAULT_CANCEL_GRACE = 60.0  # how long to watch a cancelled run come to its end


def cancel_grace(env: Mapping[str, str]) -> float:
    """``FLASHFUSION_CANCEL_GRACE`` seconds (60): how long to watch cancelled runs stop."""
    return float(env.get("FLASHFUSION_CANCEL_GRACE") or DEFAULT_CANCEL_GRACE)


def cancels_on_timeout(args: Any, env: Mapping[str, str]) -> bool:
    """``--cancel-on-timeout`` as given, else on in CI (``CI=true``)."""
    chosen = getattr(args, "cancel_on_timeout", None)
    return chosen if chosen is not None else env.get("CI", "").lower() == "true"
