"""The built-in run analyzer: after each finished run, compare it with the pipeline's history
and suggest something specific and true, with the numbers behind it. Registered like any
plugin (``DEFAULT_PLUGINS``) through the ``run_finished`` hook; the worker publishes the
suggestions as one ``optimization.available`` event.

- ``slow_run``: the run took at least ``SLOW_RATIO`` times the median of the pipeline's
  recent successful runs (and at least ``SLOW_MIN_EXTRA_SECONDS`` more), naming the step
  that grew most.
- ``cache_dependencies``: one step takes most of the run and looks like dependency
  installation (by its name or its log); suggested again every ``REPEAT_EVERY`` runs while
  it stays true, not after every run.
- ``flaky_step``: a step that failed on a branch and then passed on the next run, and has
  done so repeatedly in the recent history of that branch.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from flashfusion.plugins import hookimpl

MIN_HISTORY = 5
SLOW_RATIO = 2.0
SLOW_MIN_EXTRA_SECONDS = 60
DOMINANT_SHARE = 0.5
DOMINANT_MIN_SECONDS = 30
REPEAT_EVERY = 10
FLAKY_WINDOW = 20
FLAKY_MIN_FLIPS = 2
INSTALL_NAME = re.compile(
    r"install|dependenc|\bdeps\b|bundle|restore|npm ci|pip|yarn|pnpm|poetry|composer|"
    r"setup[-_ ]?(node|python|env)|vendor",
    re.I,
)
INSTALL_LOG = re.compile(
    r"npm (install|ci)|added \d+ packages|pip install|Collecting \S+|Successfully installed|"
    r"yarn install|bundle install|Downloading \S+|Resolving dependencies",
    re.I,
)


def _fmt(seconds: float) -> str:
    seconds = int(round(seconds))
    minutes, secs = divmod(seconds, 60)
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def _duration(run: Mapping[str, Any]) -> float | None:
    value = run.get("duration_seconds")
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _steps(run: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in run.get("steps") or [] if isinstance(s, Mapping) and s.get("name")]


def slow_run(run: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> dict | None:
    duration = _duration(run)
    samples = [d for r in history if r.get("status") == "success" and (d := _duration(r)) is not None]
    if duration is None or len(samples) < MIN_HISTORY:
        return None
    median = statistics.median(samples)
    if median <= 0 or duration < SLOW_RATIO * median or duration - median < SLOW_MIN_EXTRA_SECONDS:
        return None
    suggestion: dict[str, Any] = {
        "kind": "slow_run",
        "duration_seconds": duration,
        "median_seconds": median,
        "ratio": round(duration / median, 1),
        "sample_size": len(samples),
        "message": f"This run took {_fmt(duration)}, {duration / median:.1f}x the median of the last "
        f"{len(samples)} successful runs ({_fmt(median)}).",
    }
    growth = []
    for step in _steps(run):
        seconds = step.get("duration_seconds")
        past = [
            d
            for r in history
            if r.get("status") == "success"
            for s in _steps(r)
            if s.get("name") == step["name"] and isinstance(d := s.get("duration_seconds"), (int, float))
        ]
        if isinstance(seconds, (int, float)) and len(past) >= MIN_HISTORY:
            growth.append((seconds - statistics.median(past), step["name"], seconds, statistics.median(past)))
    if growth:
        extra, name, seconds, step_median = max(growth)
        if extra > 0:
            suggestion.update(step=name, step_seconds=seconds, step_median_seconds=step_median)
            suggestion["message"] += (
                f" Most of the difference is step '{name}': {_fmt(seconds)} against a median of {_fmt(step_median)}."
            )
    return suggestion


def _dominant_install_step(run: Mapping[str, Any]) -> tuple[Mapping[str, Any], float] | None:
    duration = _duration(run)
    if not duration:
        return None
    for step in _steps(run):
        seconds = step.get("duration_seconds")
        if not isinstance(seconds, (int, float)) or seconds < DOMINANT_MIN_SECONDS:
            continue
        share = seconds / duration
        looks = INSTALL_NAME.search(str(step["name"])) or INSTALL_LOG.search(str(step.get("log_tail") or ""))
        if share >= DOMINANT_SHARE and looks:
            return step, share
    return None


def cache_dependencies(run: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> dict | None:
    found = _dominant_install_step(run)
    if found is None:
        return None
    streak = 0
    for past in history:
        if _dominant_install_step(past) is None:
            break
        streak += 1
    if streak % REPEAT_EVERY:
        return None  # already suggested for this streak
    step, share = found
    seconds = step["duration_seconds"]
    return {
        "kind": "cache_dependencies",
        "step": step["name"],
        "step_seconds": seconds,
        "duration_seconds": _duration(run),
        "share": round(share, 2),
        "consecutive_runs": streak + 1,
        "message": f"Step '{step['name']}' took {_fmt(seconds)}, {share:.0%} of the run, and looks like dependency "
        f"installation: cache the dependencies (keyed on the lock file) so that unchanged ones are "
        f"restored instead of downloaded and installed again.",
    }


def _step_status(run: Mapping[str, Any], name: str) -> str | None:
    for step in _steps(run):
        if step["name"] == name:
            return step.get("status")
    return None


def flaky_steps(run: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> list[dict]:
    branch = run.get("branch")
    same = [r for r in history if r.get("branch") == branch][: FLAKY_WINDOW - 1]
    if not same:
        return []
    chronological = list(reversed(same)) + [run]
    found = []
    for step in _steps(run):
        name = step["name"]
        if step.get("status") != "success" or _step_status(same[0], name) != "failed":
            continue  # only when this run is a pass right after a failure
        statuses = [_step_status(r, name) for r in chronological]
        failures = statuses.count("failed")
        flips = sum(1 for a, b in zip(statuses, statuses[1:], strict=False) if a == "failed" and b == "success")
        if flips >= FLAKY_MIN_FLIPS:
            ran = sum(1 for s in statuses if s in ("failed", "success"))
            found.append(
                {
                    "kind": "flaky_step",
                    "step": name,
                    "branch": branch,
                    "failures": failures,
                    "runs": ran,
                    "passed_after_failure": flips,
                    "failure_rate": round(failures / ran, 2) if ran else None,
                    "message": f"Step '{name}' failed in {failures} of the last {ran} runs on {branch} and passed on "
                    f"the next run {flips} times: it looks flaky. Quarantine or fix it rather than re-running.",
                }
            )
    return found


def analyze(run: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> list[dict]:
    suggestions = [s for s in (slow_run(run, history), cache_dependencies(run, history)) if s]
    suggestions.extend(flaky_steps(run, history))
    return suggestions


@hookimpl
def run_finished(run: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> list[dict] | None:
    return analyze(run, history) or None
