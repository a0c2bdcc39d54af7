"""The webhook body: ``{"event", "timestamp", "pipeline_id", "data"}``, serialized once.

The bytes are compact JSON (``,`` and ``:`` separators), UTF-8 without ``\\u`` escapes for
non-ASCII text, and shaped so that ``JSON.stringify(JSON.parse(body))`` in JavaScript gives
back exactly the same bytes: that is what the spec's Node.js verifier computes. Two things
differ between Python's and JavaScript's serializers and are normalized here: JavaScript
puts integer-like object keys ("0", "42") first in ascending order, and writes integral
floats without ``.0``. Non-finite numbers are refused.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_SAFE_INTEGER = 2**53 - 1
ARRAY_INDEX_MAX = 2**32 - 2


class PayloadError(ValueError):
    pass


def _array_index(key: str) -> int | None:
    if key.isdigit() and key.isascii() and (key == "0" or not key.startswith("0")):
        value = int(key)
        if value <= ARRAY_INDEX_MAX:
            return value
    return None


def js_normalize(value: Any, depth: int = 0) -> Any:
    """A copy of ``value`` whose Python serialization equals JavaScript's."""
    if depth > 64:
        raise PayloadError("payload is nested too deeply")
    if isinstance(value, dict):
        items = [(str(k), js_normalize(v, depth + 1)) for k, v in value.items()]
        indexed = [(index, i) for i in items if (index := _array_index(i[0])) is not None]
        numeric = [i for _, i in sorted(indexed, key=lambda pair: pair[0])]
        return dict(numeric + [i for i in items if _array_index(i[0]) is None])
    if isinstance(value, (list, tuple)):
        return [js_normalize(v, depth + 1) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise PayloadError("integers beyond 2^53 lose precision in JavaScript; send them as strings")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PayloadError("NaN and Infinity are not JSON")
        if value.is_integer() and abs(value) <= MAX_SAFE_INTEGER:
            return int(value)
        text = repr(value)
        if "e" in text or "E" in text:
            raise PayloadError(
                "numbers in exponent notation are serialized differently by JavaScript; send them as strings"
            )
        return value
    raise PayloadError(f"{type(value).__name__} is not JSON")


def dumps(value: Any) -> str:
    return json.dumps(js_normalize(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def build_body(event_type: str, timestamp: str, pipeline_id: str | None, data: dict[str, Any]) -> bytes:
    """The spec's payload structure, as the exact bytes that are sent and signed."""
    return dumps({"event": event_type, "timestamp": timestamp, "pipeline_id": pipeline_id, "data": data}).encode(
        "utf-8"
    )
