"""Starting one run from the CLI: the Idempotency-Key a retried CI job reuses, and a new run
when the earlier attempt's run failed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import ci_env
from .api import Api


def start_one(
    api: Api, args: Any, out: Any, env: Mapping[str, str], inputs: dict[str, str], explicit: str | None
) -> dict:
    """Trigger the run (a retried CI job reuses its earlier run, or starts a new one when that
    one failed) and say so; the trigger answer."""
    derived = None if explicit else ci_env.derive_key(env, args.pipeline_id, args.branch, inputs)
    if explicit:
        keys = [explicit]
    elif derived:
        keys = [ci_env.chain(derived, n) for n in range(ci_env.MAX_CHAIN)]
    else:
        keys = [ci_env.random_key()]
    if args.verbose:
        out.warn(f"Idempotency-Key source: {'explicit' if explicit else 'CI job' if derived else 'random'}")
    for number, key in enumerate(keys):
        answer, replayed = api.trigger(args.pipeline_id, args.branch, inputs, key)
        retry_failed = replayed and derived and answer.get("status") == "failed"
        if not retry_failed or number == len(keys) - 1:
            break
        out.say(
            f"run {answer.get('run_id')} of an earlier attempt of this CI job ended "
            f"{answer.get('conclusion') or 'failed'}; starting a new run"
        )
    run_id = answer["run_id"]
    if replayed:
        out.say(f"run {run_id} (already started by an earlier attempt of this job): {answer.get('status')}")
    else:
        out.say(f"run {run_id} started for pipeline {args.pipeline_id}")
    if answer.get("html_url"):
        out.say(f"web: {answer['html_url']}")
    return answer
