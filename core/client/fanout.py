"""``flashfusion trigger A B C --wait``: follow a group of runs, print each as it ends, and
exit with the worst code; ``--fail-fast`` cancels the others when one fails."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from . import EXIT_RUN_FAILED, EXIT_SUCCESS, EXIT_TIMEOUT, ci_env
from .api import Api
from .handlers import parse_duration
from .reporting import Output, run_exit_code, summary
from .results import write_outputs_file
from .signals import Stopped, shielded, stop_on_signals

POLL_SECONDS = 1.0


def trigger_group(
    api: Api, args: Any, out: Output, env: Mapping[str, str], inputs: dict[str, str], explicit: str | None
) -> int:
    """Start the pipelines as one group (one Idempotency-Key for all) and, with ``--wait``,
    follow it; a signal during the request is acted on once the answer names the runs."""
    runs = [
        {"pipeline_id": p, **({"branch": args.branch} if args.branch else {}), **({"inputs": inputs} if inputs else {})}
        for p in args.pipeline_ids
    ]
    key = explicit or ci_env.derive_key(env, ",".join(args.pipeline_ids), args.branch, inputs) or ci_env.random_key()
    with stop_on_signals() as stop:
        try:
            with stop.deferred():
                answer, replayed = api.trigger_group(runs, key)
                again = " (already started by an earlier attempt of this job)" if replayed else ""
                out.say(f"group {answer['group_id']}{again}:")
                for run in answer["runs"]:
                    out.say(
                        f"  run {run['run_id']} started for pipeline {run['pipeline_id']}"
                        + (f" (refused: {run['error']})" if run.get("error") else "")
                    )
        except Stopped as exc:
            if not args.wait or args.detach_on_exit:
                return exc.exit_code
            out.warn(f"{exc.name}: cancelling the runs this command started")
            with shielded():
                _cancel_rest(api, answer["group_id"], api.group(answer["group_id"]), env)
            return exc.exit_code
        if not args.wait:
            if args.json:
                out.document(answer)
            return EXIT_SUCCESS
        return follow_group(api, answer, args, out, env)


def follow_group(api: Api, answer: Mapping[str, Any], args: Any, out: Output, env: Mapping[str, str]) -> int:
    group_id = answer["group_id"]
    timeout = parse_duration(args.timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    reported: set[str] = set()
    codes: list[int] = []
    group: dict[str, Any] = {}

    def report_ended() -> None:
        for run in group.get("runs", []):
            if run.get("phase") == "completed" and run["id"] not in reported:
                reported.add(run["id"])
                summary(run, out)
                codes.append(run_exit_code(run))

    try:
        with stop_on_signals():
            while True:
                group = api.group(group_id)
                report_ended()
                if group["status"] != "running":
                    break
                if args.fail_fast and EXIT_RUN_FAILED in codes:
                    out.say("a run failed: cancelling the others (--fail-fast)")
                    with shielded():
                        group = _cancel_rest(api, group_id, group, env)
                    report_ended()
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    out.say(f"timed out after {args.timeout} waiting for group {group_id}")
                    if ci_env.cancels_on_timeout(args, env):
                        with shielded():
                            group = _cancel_rest(api, group_id, group, env)
                        report_ended()
                    codes.append(EXIT_TIMEOUT)
                    break
                time.sleep(POLL_SECONDS)
    except Stopped as exc:
        if getattr(args, "detach_on_exit", False):
            out.warn(f"{exc.name}: the runs of group {group_id} go on")
            return exc.exit_code
        out.warn(f"{exc.name}: cancelling the runs this command started")
        with shielded():
            group = _cancel_rest(api, group_id, group or api.group(group_id), env)
            report_ended()
        return exc.exit_code
    out.say(f"group {group_id}: {group.get('status')}")
    if args.json:
        out.document(group)
    if getattr(args, "outputs_file", None):
        merged = {
            f"{r['pipeline_id']}_{name}": value
            for r in group.get("runs", [])
            for name, value in (r.get("outputs") or {}).items()
        }
        write_outputs_file(args.outputs_file, merged)
    return max(codes, default=EXIT_SUCCESS) if group.get("status") != "running" or codes else EXIT_TIMEOUT


def _cancel_rest(api: Api, group_id: str, group: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """Cancel every run of the group still going and watch them for up to the cancel grace."""
    for run in group.get("runs", []):
        if run.get("phase") != "completed":
            api.cancel(run["id"])
    deadline = time.monotonic() + ci_env.cancel_grace(env)
    current = api.group(group_id)
    while current["status"] == "running" and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        current = api.group(group_id)
    return current
