"""Request parsing and the error shape shared by every resource."""

from __future__ import annotations

import json
from typing import Any

import falcon

from flashfusion.core.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

# curl's ``-d`` sends form-urlencoded by default; the spec's Quick Start posts JSON that way.
JSON_TYPES = ("application/json", "application/x-www-form-urlencoded", "text/plain")


def read_json(req: falcon.Request, max_bytes: int) -> dict[str, Any]:
    """Read and parse a JSON object body of at most ``max_bytes``."""
    length = req.content_length
    if length is not None and length > max_bytes:
        raise PayloadTooLarge(f"Request body is larger than {max_bytes} bytes")
    media = (req.content_type or "application/json").split(";")[0].strip().lower()
    if media not in JSON_TYPES:
        raise UnsupportedMediaType(f"Send the body as application/json, not {media}")
    raw = req.bounded_stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"Request body is larger than {max_bytes} bytes")
    if not raw.strip():
        raise BadRequest("The request body must be a JSON object", error="Invalid JSON")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc.__class__.__name__}", error="Invalid JSON") from None
    except RecursionError:
        raise BadRequest("The request body is nested too deeply", error="Invalid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object", error="Invalid JSON")
    if _has_nul(body):
        raise BadRequest(NUL_MESSAGE, error="Invalid JSON")
    return body


# PostgreSQL cannot store NUL in text or jsonb (psycopg refuses such a parameter outright), so
# a NUL anywhere in a request's strings is refused up front, alike on every database.
NUL_MESSAGE = "Strings in the request must not contain NUL (\\u0000) characters"


def _has_nul(value: Any) -> bool:
    pending = [value]  # iterative: a body may nest as deep as json.loads allows
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], *, required: bool = False,
          max_length: int | None = None) -> Any:
    value = body.get(name)
    if value is None:
        if required:
            raise BadRequest(f"'{name}' is required", error="Missing parameter")
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        expected = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise BadRequest(f"'{name}' must be a {_json_name(expected)}", error="Invalid parameter")
    if max_length is not None and isinstance(value, str) and len(value) > max_length:
        raise BadRequest(f"'{name}' is longer than {max_length} characters", error="Invalid parameter")
    if required and isinstance(value, str) and not value.strip():
        raise BadRequest(f"'{name}' must not be empty", error="Invalid parameter")
    return value


def query(req: falcon.Request, name: str, *, required: bool = False, max_length: int = 200) -> str | None:
    value = req.get_param(name)
    if value is None:
        if required:
            raise BadRequest(f"Query parameter '{name}' is required", error="Missing parameter")
        return None
    if value == "":
        raise BadRequest(f"Query parameter '{name}' must not be empty", error="Invalid parameter")
    if "\x00" in value:
        raise BadRequest(NUL_MESSAGE, error="Invalid parameter")
    if len(value) > max_length:
        raise BadRequest(f"Query parameter '{name}' is longer than {max_length} characters", error="Invalid parameter")
    return value


def query_int(req: falcon.Request, name: str, *, default: int, low: int, high: int) -> int:
    raw = req.get_param(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"Query parameter '{name}' must be an integer", error="Invalid parameter") from None
    if not low <= value <= high:
        raise BadRequest(f"Query parameter '{name}' must be between {low} and {high}", error="Invalid parameter")
    return value


def _json_name(py: str) -> str:
    return {"str": "string", "dict": "JSON object", "list": "JSON array", "int": "integer", "bool": "boolean"}.get(py, py)
