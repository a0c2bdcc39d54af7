"""Times as people read them on a CI page: "3 min ago", "took 1m 12s", with the absolute UTC
time kept for the ``title`` (hover) and ``<time datetime>``. Rendered on the server, so the
page reads right without JavaScript; dashboard.js recomputes the "ago" text (same steps) while
the page stays open."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from markupsafe import Markup

from flashfusion.core.client.durations import human_duration
from flashfusion.core.storage.db import from_db_time, utcnow


def parse_time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return from_db_time(value)


def fmt_time(value: Any) -> str:
    when = parse_time(value)
    return when.strftime("%Y-%m-%d %H:%M:%S UTC") if when else "—"


def fmt_iso(value: Any) -> str:
    when = parse_time(value)
    return when.isoformat(timespec="seconds").replace("+00:00", "Z") if when else ""


def fmt_duration(seconds: Any) -> str:
    if seconds is None:
        return "—"
    seconds = max(0.0, float(seconds))
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    if seconds < 10:
        return f"{seconds:.1f}s"
    return human_duration(int(round(seconds))) or "—"


#: (limit in seconds, divisor, unit): the first row whose limit the age is under is used.
AGO_STEPS = ((60, 1, "s"), (3600, 60, "min"), (86400, 3600, "h"), (86400 * 45, 86400, "d"))


def ago(seconds: float) -> str:
    """An age in words: "just now" under 10 s (or in the future: a clock ahead of ours), then
    "42 s ago", "3 min ago", "5 h ago", "12 d ago"; older: "" (the caller shows the date)."""
    if seconds < 10:
        return "just now"
    for limit, divisor, unit in AGO_STEPS:
        if seconds < limit:
            return f"{int(seconds // divisor)} {unit} ago"
    return ""


def fmt_ago(value: Any, now: datetime | None = None) -> str:
    when = parse_time(value)
    if when is None:
        return "—"
    return ago(((now or utcnow()) - when).total_seconds()) or when.strftime("%Y-%m-%d")


def time_tag(value: Any, now: datetime | None = None) -> Markup:
    """``<time>`` with the age as text and the absolute UTC time as ``datetime`` and on hover."""
    when = parse_time(value)
    if when is None:
        return Markup("—")
    return Markup('<time datetime="{iso}" title="{abs}" data-ago>{text}</time>').format(
        iso=fmt_iso(when), abs=fmt_time(when), text=fmt_ago(when, now)
    )


def took(seconds: Any, running: bool = False) -> str:
    """ "took 1m 12s" for a finished run or step, "running for 12.0s" while it runs."""
    if seconds is None:
        return "—"
    return f"{'running for' if running else 'took'} {fmt_duration(seconds)}"


def install(env: Any) -> None:
    """The template filters ``when``, ``iso``, ``duration``, ``ago``, ``took`` and ``time_tag``."""
    env.filters.update(when=fmt_time, iso=fmt_iso, duration=fmt_duration, ago=fmt_ago, took=took)
    env.globals["time_tag"] = time_tag
