"""``flashfusion trigger | status | runs | config | cancel``: the handlers (what they print
goes through ``reporting.Output``)."""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from . import DEFAULT_URL, EXIT_SUCCESS, EXIT_TIMEOUT, ci_env, results
from .api import Api, ClientError, RetryPolicy, UsageError, check_url, plain_http_warning
from .progress import PlainProgress, Progress, fmt_duration, make_progress
from .reporting import Output, describe, run_exit_code, summary
from .results import write_outputs_file
from .signals import Stopped, shielded, stop_on_signals
from .starting import start_one

LONG_POLL_SECONDS = 60  # the gateway's maximum for get-status?wait=
DEFAULT_TIMEOUT = "60m"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([hms]?)", re.IGNORECASE)
_UNITS = {"h": 3600, "m": 60, "s": 1, "": 1}


def parse_duration(text: str) -> float | None:
    """``"30m"``, ``"1h30m"``, ``"90s"``, ``"90"`` -> seconds; ``"0"`` -> no limit."""
    raw = text.strip().lower().replace(" ", "")
    pos, total = 0, 0.0
    if not raw:
        raise UsageError("empty duration")
    while pos < len(raw):
        match = _DURATION.match(raw, pos)
        if not match or (match.group(2) == "" and (pos != 0 or match.end() != len(raw))):
            raise UsageError(f"cannot read the duration {text!r} (examples: 90s, 30m, 1h30m)")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    return total or None


def parse_inputs(pairs: list[str] | None) -> dict[str, str]:
    inputs: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--input takes NAME=VALUE, not {pair!r}")
        inputs[name] = value
    return inputs


class WaitTimeout(Exception):
    def __init__(self, run: dict) -> None:
        super().__init__("timeout")
        self.run = run


def connect(args: Any, out: Output, env: Mapping[str, str]) -> Api:
    url = check_url(args.url or env.get("FLASHFUSION_URL") or DEFAULT_URL)
    key = None
    if args.api_key:
        out.warn(
            "warning: --api-key puts the key in the process list and shell history; set FLASHFUSION_API_KEY instead"
        )
        key = args.api_key
    key = key or env.get("FLASHFUSION_API_KEY")
    if not key:
        raise UsageError("no API key: set FLASHFUSION_API_KEY")
    key = key.strip()
    out.secret = key
    warning = plain_http_warning(url)
    if warning:
        out.warn(warning)
    log = (lambda line: out.warn(line)) if args.verbose else None
    return Api(url, key, retry=RetryPolicy.from_env(env), log=log)


# -- following a run ---------------------------------------------------------------------


def follow(
    api: Api,
    run_id: str,
    *,
    deadline: float | None,
    progress: Progress,
    on_run: Callable[[dict], None] = lambda run: None,
    sleep: Callable[[float], None] = time.sleep,
    first: dict | None = None,
) -> dict:
    """Long-poll ``get-status`` until the run completes or ``deadline`` (monotonic) passes.

    One request per change of the run (or per minute when nothing changes), never a
    tight loop: when the gateway answers at once without a change (its long-poll slots are
    all taken) the next request waits, 1 s, 2 s, ... up to 15 s."""
    run = first or api.status(run_id)
    progress.update(run)
    on_run(run)
    idle_answers = 0
    while run.get("phase") != "completed":
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise WaitTimeout(run)
        wait = LONG_POLL_SECONDS if remaining is None else max(1, min(LONG_POLL_SECONDS, math.ceil(remaining)))
        asked = time.monotonic()
        new = api.status(run_id, wait=wait, version=run.get("version"))
        took = time.monotonic() - asked
        if new.get("version") == run.get("version") and new.get("phase") != "completed" and took < wait / 2:
            pause = min(15.0, 2.0**idle_answers)
            idle_answers += 1
            if deadline is not None:
                pause = min(pause, max(0.0, deadline - time.monotonic()))
            sleep(pause)
        else:
            idle_answers = 0
        run = new
        progress.update(run)
        on_run(run)
    return run


def cancel_and_watch(api: Api, run_id: str, args: Any, out: Output, env: Mapping[str, str]) -> dict:
    """Cancel the run and follow it for up to the cancel grace; the run as last seen."""
    out.say(f"cancelling run {run_id}")
    run = api.cancel(run_id)
    grace = ci_env.cancel_grace(env)
    progress = make_progress(
        out.human, quiet=args.quiet, clock_offset=lambda: api.clock_offset, redact=out.redact, env=env
    )
    try:
        run = follow(api, run_id, deadline=time.monotonic() + grace, progress=progress, first=run)
    except WaitTimeout as again:
        run = again.run
        out.warn(f"run {run_id} did not stop within {fmt_duration(grace)} of the cancel request")
    progress.close()
    return run


def wait_and_report(
    api: Api,
    run_id: str,
    args: Any,
    out: Output,
    env: Mapping[str, str],
    cancel_on_timeout: bool = False,
    url_shown: str | None = None,
    started: bool = False,
) -> int:
    """Follow the run to its end and report it. ``started``: this command started the run,
    so SIGINT/SIGTERM cancel it (unless ``--detach-on-exit``) before exiting 130/143."""
    timeout = parse_duration(args.timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    progress = make_progress(
        out.human, quiet=args.quiet, clock_offset=lambda: api.clock_offset, redact=out.redact, env=env
    )
    shown_url: list[str] = [url_shown] if url_shown else []

    def on_run(run: dict) -> None:
        # in CI logs, the upstream page as soon as the provider names it (the summary repeats it)
        url = run.get("html_url")
        if url and not shown_url and isinstance(progress, PlainProgress):
            shown_url.append(url)
            out.say(f"web: {url}")

    try:
        with stop_on_signals():
            run = follow(api, run_id, deadline=deadline, progress=progress, on_run=on_run)
    except WaitTimeout as exc:
        run = exc.run
        progress.close()
        out.say(f"timed out after {fmt_duration(timeout)} waiting for run {run_id}")
        if cancel_on_timeout:
            with shielded():
                run = cancel_and_watch(api, run_id, args, out, env)
        summary(run, out, timed_out=True)
        if args.json:
            out.document(run)
        return EXIT_TIMEOUT
    except Stopped as exc:
        progress.close()
        if not started or getattr(args, "detach_on_exit", False):
            out.warn(f"{exc.name}: run {run_id} goes on (stop it with: {out.program} cancel {run_id})")
            return exc.exit_code
        out.warn(f"{exc.name}: cancelling the run this command started")
        with shielded():
            run = cancel_and_watch(api, run_id, args, out, env)
            summary(run, out)
        return exc.exit_code
    progress.close()
    summary(run, out)
    if args.json:
        out.document(run)
    if getattr(args, "outputs_file", None):
        write_outputs_file(args.outputs_file, run.get("outputs") or {})
    return run_exit_code(run)


# -- the commands ------------------------------------------------------------------------


def cmd_trigger(args: Any, out: Output, env: Mapping[str, str]) -> int:
    inputs = parse_inputs(args.input)
    for flag in ("cancel_on_timeout", "outputs_file", "fail_fast", "detach_on_exit"):
        if getattr(args, flag, None) and not args.wait:
            raise UsageError(f"--{flag.replace('_', '-')} needs --wait")
    explicit = args.idempotency_key or env.get("FLASHFUSION_IDEMPOTENCY_KEY")
    if len(args.pipeline_ids) > 1:
        from . import fanout  # it builds on this module

        with connect(args, out, env) as api:
            return fanout.trigger_group(api, args, out, env, inputs, explicit)
    args.pipeline_id = args.pipeline_ids[0]
    with connect(args, out, env) as api, stop_on_signals() as stop:
        try:
            with stop.deferred():  # a signal now is acted on once the answer names the run
                answer = start_one(api, args, out, env, inputs, explicit)
        except Stopped as exc:
            if not args.wait or args.detach_on_exit:
                out.warn(f"{exc.name}: run {answer['run_id']} goes on")
                return exc.exit_code
            out.warn(f"{exc.name}: cancelling the run this command started")
            with shielded():
                summary(cancel_and_watch(api, answer["run_id"], args, out, env), out)
            return exc.exit_code
        if not args.wait:
            if args.json:
                out.document(answer)
            return EXIT_SUCCESS
        return wait_and_report(
            api,
            answer["run_id"],
            args,
            out,
            env,
            cancel_on_timeout=ci_env.cancels_on_timeout(args, env),
            url_shown=answer.get("html_url"),
            started=True,
        )


def cmd_status(args: Any, out: Output, env: Mapping[str, str]) -> int:
    with connect(args, out, env) as api:
        if args.wait:
            return wait_and_report(api, args.run_id, args, out, env)
        run = api.status(args.run_id)
        if args.json:
            out.document(run)
        else:
            describe(run, out)
        return run_exit_code(run)


def cmd_runs(args: Any, out: Output, env: Mapping[str, str]) -> int:
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    with connect(args, out, env) as api:
        found: list[dict] = []
        cursor = None
        while len(found) < args.limit:
            page = api.runs(
                pipeline_id=args.pipeline, status=args.status, limit=min(100, args.limit - len(found)), cursor=cursor
            )
            found.extend(page.get("runs") or [])
            cursor = page.get("next_cursor")
            if not cursor:
                break
    if args.json:
        out.document(found)
        return EXIT_SUCCESS
    if not found:
        out.say("no runs")
        return EXIT_SUCCESS
    rows = [("RUN", "PIPELINE", "BRANCH", "STATUS", "CONCLUSION", "DURATION", "CREATED")]
    for run in found:
        rows.append(
            (
                str(run.get("id")),
                str(run.get("pipeline_id")),
                str(run.get("branch") or "-"),
                str(run.get("status")),
                str(run.get("conclusion") or "-"),
                fmt_duration(run.get("duration_seconds")),
                str(run.get("created_at") or "-"),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.say("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return EXIT_SUCCESS


def cmd_config(args: Any, out: Output, env: Mapping[str, str]) -> int:
    with connect(args, out, env) as api:
        config = api.config(args.pipeline_id)
    if args.json:
        out.document(config)
        return EXIT_SUCCESS
    for name, value in config.items():
        if name == "steps":
            continue
        if isinstance(value, (dict, list)):
            value = json.dumps(value, sort_keys=True)
        out.say(f"{name}: {'-' if value is None else value}")
    if config.get("steps"):
        out.say("steps:")
        for step in config["steps"]:
            out.say(f"  - {step.get('name')}: {step.get('run')}")
    return EXIT_SUCCESS


def cmd_cancel(args: Any, out: Output, env: Mapping[str, str]) -> int:
    with connect(args, out, env) as api:
        run = api.cancel(args.run_id)
        if run.get("phase") == "completed":
            out.say(f"run {args.run_id} had already finished: {run.get('status')} ({run.get('conclusion')})")
        else:
            out.say(f"cancel requested for run {args.run_id}")
            if args.wait:
                code = wait_and_report(api, args.run_id, args, out, env)
                return EXIT_TIMEOUT if code == EXIT_TIMEOUT else EXIT_SUCCESS
        if args.json:
            out.document(run)
        return EXIT_SUCCESS


def cmd_results(args: Any, out: Output, env: Mapping[str, str]) -> int:
    with connect(args, out, env) as api:
        return (results.cmd_outputs if args.client_command == "outputs" else results.cmd_artifacts)(api, args, out)


HANDLERS = {
    "trigger": cmd_trigger,
    "status": cmd_status,
    "runs": cmd_runs,
    "config": cmd_config,
    "cancel": cmd_cancel,
    "outputs": cmd_results,
    "artifacts": cmd_results,
}


def run_command(args: Any, env: Mapping[str, str] | None = None) -> int:
    """Entry point from the CLI: errors become their exit codes, with the server's message."""
    env = os.environ if env is None else env
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    out = Output(json_mode=bool(getattr(args, "json", False)), program=getattr(args, "program", "flashfusion"))
    try:
        return HANDLERS[args.client_command](args, out, env)
    except ClientError as exc:
        out.warn(f"error: {exc.message}")
        return exc.exit_code
    except KeyboardInterrupt:
        out.warn("interrupted")
        return 130
    except Stopped as exc:
        out.warn(f"{exc.name}: stopped")
        return exc.exit_code
