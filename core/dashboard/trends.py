"""How a pipeline has been doing: success rate and median duration over its last runs, and two
small server-rendered SVG charts with labelled axes — durations (one bar per finished run,
coloured by outcome) and the success rate (over a sliding window of runs)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from flashfusion.core.dashboard.timefmt import fmt_duration
from flashfusion.core.storage.db import from_db_time, utcnow
from flashfusion.core.storage.models import Run

STATS_WINDOW = 20  # the pipelines page: the last 20 runs
TREND_WINDOW = 30  # the runs page: the last 30 runs of each pipeline
SUCCESS_WINDOW = 5  # each point of the success-rate line: the share of the last 5 finished runs

#: The chart's frame: the plot area sits right of the seconds labels and above the time labels.
WIDTH, HEIGHT = 300, 92
LEFT, RIGHT, TOP, BOTTOM = 46, 4, 6, 18
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


def seconds_of(run: Run, now: datetime | None = None) -> float | None:
    """The run's duration to the sub-second (the API's ``duration_seconds`` is whole seconds)."""
    start = from_db_time(run.started_at)
    if start is None:
        return None
    end = from_db_time(run.finished_at) or now or utcnow()
    return max(0.0, (end - start).total_seconds())


def recent_runs(pipeline_id: str, limit: int) -> list[Run]:
    return list(
        Run.select().where(Run.pipeline_id == pipeline_id).order_by(Run.created_at.desc(), Run.id.desc()).limit(limit)
    )


def summary(recent: Sequence[Run], window: int) -> dict[str, Any]:
    """Success rate, median duration and both charts for ``recent`` runs (newest first)."""
    finished = [r for r in recent if r.phase == "completed"]
    oldest_first = [r for r in reversed(finished) if r.started_at is not None]
    durations = [d for d in (seconds_of(r) for r in finished) if d is not None]
    successes = sum(1 for r in finished if r.status == "success")
    return {
        "count": len(recent),
        "finished": len(finished),
        "success_rate": round(100 * successes / len(finished)) if finished else None,
        "median": statistics.median(durations) if durations else None,
        "chart": duration_chart(oldest_first, window),
        "success_chart": success_chart(oldest_first),
    }


def _time_labels(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """The x axis: when the oldest and the newest run shown started (UTC)."""
    if not runs:
        return []
    first, last = from_db_time(runs[0].created_at), from_db_time(runs[-1].created_at)
    labels = [{"x": LEFT, "anchor": "start", "text": first.strftime("%d %b %H:%M")}]
    if len(runs) > 1 and last != first:
        labels.append({"x": WIDTH - RIGHT, "anchor": "end", "text": last.strftime("%d %b %H:%M")})
    return labels


def _frame(y_labels: list[tuple[float, str]], runs: Sequence[Run]) -> dict[str, Any]:
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "top": TOP,
        "bottom": TOP + PLOT_H,
        "right": WIDTH - RIGHT,
        "y_ticks": [{"y": round(TOP + PLOT_H * (1 - f), 1), "text": t} for f, t in y_labels],
        "x_labels": _time_labels(runs),
        "label_y": HEIGHT - 4,
    }


def duration_chart(finished: Sequence[Run], slots: int) -> dict[str, Any]:
    """One bar per finished run (oldest left), height by duration; the y axis in seconds."""
    durations = [seconds_of(r) or 0.0 for r in finished]
    top = max(durations, default=0) or 1
    slot = PLOT_W / max(slots, len(finished), 1)
    bars = []
    for i, (run, d) in enumerate(zip(finished, durations, strict=True)):
        h = max(2.0, PLOT_H * d / top)
        bars.append(
            {
                "x": round(LEFT + i * slot + 1, 1),
                "y": round(TOP + PLOT_H - h, 1),
                "w": round(max(slot - 2, 1), 1),
                "h": round(h, 1),
                "status": run.status,
                "run_id": run.id,
                "duration": d,
            }
        )
    frame = _frame([(0, "0 s"), (0.5, fmt_duration(top / 2)), (1, fmt_duration(top))], finished)
    return {**frame, "bars": bars, "max": top}


def success_chart(finished: Sequence[Run], window: int = SUCCESS_WINDOW) -> dict[str, Any]:
    """The success rate over the last ``window`` finished runs, at each run (oldest left);
    the y axis from 0 to 100 %."""
    points = []
    n = len(finished)
    for i in range(n):
        last = finished[max(0, i - window + 1) : i + 1]
        rate = sum(1 for r in last if r.status == "success") / len(last)
        x = LEFT + (PLOT_W * i / (n - 1) if n > 1 else PLOT_W / 2)
        points.append(
            {
                "x": round(x, 1),
                "y": round(TOP + PLOT_H * (1 - rate), 1),
                "rate": round(100 * rate),
                "run_id": finished[i].id,
                "status": finished[i].status,
            }
        )
    frame = _frame([(0, "0 %"), (0.5, "50 %"), (1, "100 %")], finished)
    return {**frame, "points": points, "line": " ".join(f"{p['x']},{p['y']}" for p in points), "window": window}


def pipeline_stats(pipeline_id: str) -> dict[str, Any]:
    """The pipelines page's card: the last runs and the trend over ``STATS_WINDOW``."""
    recent = recent_runs(pipeline_id, STATS_WINDOW)
    return {"recent": recent[:5], **summary(recent, STATS_WINDOW)}


def pipeline_trends(pipeline_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The runs page's trends: one row per pipeline that has finished runs."""
    rows = []
    for pid in pipeline_ids:
        found = summary(recent_runs(pid, TREND_WINDOW), TREND_WINDOW)
        if found["finished"]:
            rows.append({"pipeline_id": pid, **found})
    return rows
