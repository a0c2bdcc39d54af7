"""The retry schedule: ``"0s,5s,5m,30m,2h,5h,10h,10h"`` -> delays in seconds before each attempt."""

from __future__ import annotations

import re

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
PART = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
MAX_ATTEMPTS = 50


def parse_schedule(text: str) -> tuple[float, ...]:
    parts = [p.strip() for p in text.replace(" ", ",").split(",") if p.strip()]
    if not parts:
        raise ValueError('expected a comma-separated list of delays such as "0s,5s,5m,30m,2h"')
    if len(parts) > MAX_ATTEMPTS:
        raise ValueError(f"at most {MAX_ATTEMPTS} attempts")
    delays = []
    for part in parts:
        match = PART.match(part)
        if not match:
            raise ValueError(f"{part!r} is not a delay (use a number with s, m, h or d, e.g. 30m)")
        delays.append(float(match.group(1)) * UNITS[match.group(2)])
    return tuple(delays)


def describe(delays: tuple[float, ...]) -> str:
    def one(seconds: float) -> str:
        for unit in ("d", "h", "m"):
            if seconds and seconds % UNITS[unit] == 0:
                return f"{int(seconds // UNITS[unit])}{unit}"
        return f"{seconds:g}s"

    return ", ".join(one(d) for d in delays)
