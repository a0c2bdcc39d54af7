"""The client's parts without a server: CI keys, retries, long-poll pacing, durations,
progress output."""

from __future__ import annotations

import io
import json

import httpx
import pytest
from testkit import ci_jobs

from flashfusion.core.client import ci_env
from flashfusion.core.client.api import (
    Api,
    ApiError,
    RetryPolicy,
    Unreachable,
    UsageError,
    plain_http_warning,
    retry_after_seconds,
)
from flashfusion.core.client.handlers import Output, WaitTimeout, follow, parse_duration, parse_inputs
from flashfusion.core.client.progress import LiveProgress, NoProgress, PlainProgress, use_live_display

GITLAB = {**ci_jobs.GITLAB, "CI_JOB_NAME": "deploy: [aws, eu]"}  # a parallel:matrix leg
GITHUB = ci_jobs.GITHUB


def key(env, pipeline="web", branch=None, inputs=None):
    return ci_env.derive_key(env, pipeline, branch, inputs or {})


def test_ci_keys_identify_the_job_not_the_attempt():
    assert key({}) is None and key({"CI": "true"}) is None
    gh = key(GITHUB)
    assert gh == key(dict(GITHUB, GITHUB_RUN_ATTEMPT="3"))  # a re-run is the same job
    assert gh != key(dict(GITHUB, GITHUB_RUN_ID="8812346"))  # a new workflow run is not
    assert gh != key(dict(GITHUB, GITHUB_JOB="deploy-eu"))
    assert gh != key(dict(GITHUB, GITHUB_ACTION="__run_2"))  # a second step in the job
    assert gh != key(GITHUB, pipeline="api") != key(GITHUB, branch="release")
    assert gh != key(GITHUB, inputs={"ENV": "prod"})
    gl = key(GITLAB)
    assert gl == key(dict(GITLAB, CI_JOB_ID="556"))  # a retried job gets a new job id
    assert gl != key(dict(GITLAB, CI_JOB_NAME="deploy: [aws, us]"))  # another parallel:matrix leg
    assert gl != key(dict(GITLAB, CI_PIPELINE_ID="99002"))
    for k in (gh, gl, key(dict(GITHUB, GITHUB_JOB="j" * 400), pipeline="p" * 64)):
        assert len(k) <= 255 and k.isprintable() and " " not in k
    assert ci_env.chain(gh, 0) == gh and ci_env.chain(gh, 1) == gh + ".2"
    assert ci_env.random_key() != ci_env.random_key()


def test_durations_and_inputs():
    assert parse_duration("30m") == 1800 and parse_duration("1h30m") == 5400
    assert parse_duration("90") == 90 and parse_duration("2.5s") == 2.5 and parse_duration("0") is None
    for bad in ("", "m", "30x", "5 minutes", "10m5"):
        with pytest.raises(UsageError):
            parse_duration(bad)
    assert parse_inputs(["A=1", "B=x=y", "C="]) == {"A": "1", "B": "x=y", "C": ""}
    with pytest.raises(UsageError):
        parse_inputs(["novalue"])


def test_retry_settings_and_retry_after():
    policy = RetryPolicy.from_env({"FLASHFUSION_RETRIES": "2", "FLASHFUSION_RETRY_DELAY": "0.5"})
    assert policy.retries == 2 and policy.base_delay == 0.5
    assert all(0.25 <= policy.backoff(0) <= 0.5 for _ in range(20))
    assert all(15 <= RetryPolicy().backoff(10) <= 30 for _ in range(20))
    with pytest.raises(UsageError):
        RetryPolicy.from_env({"FLASHFUSION_RETRIES": "many"})
    assert retry_after_seconds("7") == 7 and retry_after_seconds(None) is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0
    assert plain_http_warning("http://ci.example.com") and not plain_http_warning("http://127.0.0.1:8080")
    assert not plain_http_warning("https://ci.example.com")


def scripted(*answers):
    """An Api whose transport answers from the list, recording requests and sleeps."""
    seen, slept = [], []
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    api = Api(
        "http://gw.test",
        "ffai_secret",
        retry=RetryPolicy(retries=3, base_delay=0.01),
        sleep=slept.append,
        transport=httpx.MockTransport(handle),
    )
    return api, seen, slept


def error(status, error, message, **headers):
    return httpx.Response(status, json={"error": error, "message": message}, headers=headers)


TRIGGERED = {"success": True, "run_id": "run_1", "status": "running"}


def test_429_waits_for_retry_after_and_retries_keep_the_idempotency_key():
    api, seen, slept = scripted(
        error(429, "Too Many Requests", "slow down", **{"Retry-After": "4"}),
        httpx.ConnectError("refused"),
        error(503, "Service Unavailable", "restarting"),
        httpx.Response(200, json=TRIGGERED),
    )
    answer, replayed = api.trigger("demo", None, {}, "k-1")
    assert answer["run_id"] == "run_1" and not replayed
    assert slept[0] >= 4 and len(slept) == 3
    assert {r.headers["Idempotency-Key"] for r in seen} == {"k-1"} and len(seen) == 4


def test_client_errors_are_not_retried_and_show_the_server_message():
    api, seen, _ = scripted(
        error(403, "Forbidden", "This key lacks the trigger_pipeline permission", **{"X-Request-ID": "rid7"})
    )
    with pytest.raises(ApiError) as caught:
        api.trigger("demo", None, {}, "k")
    assert caught.value.exit_code == 2 and len(seen) == 1
    assert "403 Forbidden: This key lacks the trigger_pipeline permission (request id rid7)" == caught.value.message


def test_409_key_in_use_is_retried_but_422_is_not():
    api, seen, _ = scripted(error(409, "Idempotency-Key in use", "retry shortly"), httpx.Response(200, json=TRIGGERED))
    assert api.trigger("demo", None, {}, "k")[0]["run_id"] == "run_1" and len(seen) == 2
    api, seen, _ = scripted(error(422, "Idempotency-Key reused", "different body"))
    with pytest.raises(ApiError):
        api.trigger("demo", None, {}, "k")


def test_5xx_after_the_retries_is_unreachable_with_the_last_answer():
    api, seen, slept = scripted(*[error(502, "Bad Gateway", "GitHub is down")] * 4)
    with pytest.raises(Unreachable) as caught:
        api.status("run_1")
    assert caught.value.exit_code == 4 and len(seen) == 4 and len(slept) == 3
    assert "502 Bad Gateway: GitHub is down" in caught.value.message and "after 3 retries" in caught.value.message
    api, _, slept = scripted(error(429, "Too Many Requests", "hour", **{"Retry-After": "3600"}))
    with pytest.raises(Unreachable):
        api.status("run_1")
    assert slept == []


class FakeStatusApi:
    """get-status answers: the long-poll held (``took``) or answered at once."""

    def __init__(self, versions, completed_at):
        self.versions, self.completed_at, self.calls = versions, completed_at, []

    def status(self, run_id, *, wait=0, version=None):
        self.calls.append((wait, version))
        n = min(len(self.calls) - 1, len(self.versions) - 1)
        phase = "completed" if len(self.calls) >= self.completed_at else "in_progress"
        return {"id": run_id, "version": self.versions[n], "phase": phase, "status": "running", "steps": []}


def test_follow_backs_off_when_the_gateway_answers_long_polls_at_once():
    api = FakeStatusApi(versions=[1] * 10, completed_at=7)  # no change, answered at once: slots full
    slept = []
    run = follow(api, "run_1", deadline=None, progress=NoProgress(), sleep=slept.append)
    assert run["phase"] == "completed"
    assert slept == [1, 2, 4, 8, 15]  # never a tight loop
    assert all(wait == 60 and version == 1 for wait, version in api.calls[1:])


def test_follow_times_out_at_the_deadline():
    import time

    api = FakeStatusApi(versions=[1] * 10, completed_at=99)
    with pytest.raises(WaitTimeout) as caught:
        follow(api, "run_1", deadline=time.monotonic() - 1, progress=NoProgress())
    assert caught.value.run["id"] == "run_1" and len(api.calls) == 1


def run_with(*steps, **fields):
    return dict(
        {
            "id": "run_1",
            "pipeline_id": "demo",
            "status": "running",
            "phase": "in_progress",
            "steps": [dict(zip(("name", "status"), s, strict=True)) for s in steps],
        },
        **fields,
    )


def test_plain_progress_prints_one_line_per_change():
    out = io.StringIO()
    progress = PlainProgress(out)
    progress.update(run_with(("lint", "running"), ("test", "pending")))
    progress.update(run_with(("lint", "running"), ("test", "pending")))
    progress.update(run_with(("lint", "success"), ("test", "running")))
    lines = out.getvalue().splitlines()
    assert lines == [
        "run run_1: running [in_progress]",
        "  step lint: running",
        "  step lint: success (-)",
        "  step test: running",
    ]


def test_live_progress_redraws_in_place_and_hides_the_key():
    class Tty(io.StringIO):
        encoding = "utf-8"

        def isatty(self):
            return True

    out = Tty()
    assert use_live_display(out, {}) and not use_live_display(out, {"CI": "true"})
    assert not use_live_display(io.StringIO(), {})
    progress = LiveProgress(out, redact=Output(json_mode=False, secret="ffai_secret1").redact, interval=0.01)
    progress.update(run_with(("ffai_secret1", "running"), ("deploy", "pending")))
    progress.update(run_with(("ffai_secret1", "success"), ("deploy", "running")))
    progress.close()
    text = out.getvalue()
    assert "\x1b[3F" in text and "✓" in text and "deploy" in text and "ffai_secret1" not in text


def test_output_json_mode_keeps_stdout_for_the_document():
    stdout, stderr = io.StringIO(), io.StringIO()
    out = Output(json_mode=True, secret="ffai_abcdefgh", stdout=stdout, stderr=stderr)
    out.say("hello ffai_abcdefgh")
    out.document({"id": "run_1"})
    assert json.loads(stdout.getvalue()) == {"id": "run_1"} and stderr.getvalue() == "hello [redacted]\n"
