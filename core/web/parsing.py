"""Request parsing and the error shape shared by every resource."""

from __future__ import annotations

import json
import math
import re
from typing import Any, Literal, overload

import falcon

from flashfusion.core.errors import BadRequest, PayloadTooLarge, RequestTimeout, UnsupportedMediaType

# curl's ``-d`` sends form-urlencoded by default; the spec's Quick Start posts JSON that way.
JSON_TYPES = ("application/json", "application/x-www-form-urlencoded", "text/plain")


def read_body(req: falcon.Request, max_bytes: int, *, too_large: str = "Request body") -> bytes:
    """The request body, at most ``max_bytes`` of it, with or without a Content-Length.

    A chunked body has no Content-Length; Falcon's ``bounded_stream`` then reads nothing, so
    it is read from the server's stream when the server says that stream ends with the body
    (``wsgi.input_terminated``, set by gunicorn). The server puts a time limit on each socket
    read, so a client that stops sending gets a 408 instead of holding a thread."""
    length = req.content_length
    if length is not None and length > max_bytes:
        raise PayloadTooLarge(f"{too_large} is larger than {max_bytes} bytes")
    stream = req.stream if length is None and req.env.get("wsgi.input_terminated") else req.bounded_stream
    try:
        raw = stream.read(max_bytes + 1)
    except TimeoutError:
        raise RequestTimeout("The request body did not arrive in time") from None
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"{too_large} is larger than {max_bytes} bytes")
    return raw


def read_json(req: falcon.Request, max_bytes: int) -> dict[str, Any]:
    """Read and parse a JSON object body of at most ``max_bytes``."""
    media = (req.content_type or "application/json").split(";")[0].strip().lower()
    if req.content_length is not None and req.content_length > max_bytes:
        raise PayloadTooLarge(f"Request body is larger than {max_bytes} bytes")
    if media not in JSON_TYPES:
        raise UnsupportedMediaType(f"Send the body as application/json, not {media}")
    return parse_json_object(read_body(req, max_bytes))


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """A JSON object that every part of the gateway can store and send on.

    Refused with 400: text that is not UTF-8, syntax errors (with line and column), the
    literals NaN and Infinity and numbers too large for a float (neither is valid JSON to
    send on), integers of more than ``MAX_INT_DIGITS`` digits, and strings or keys holding
    NUL or a lone surrogate (``"\\ud800"``), which no database or UTF-8 encoder accepts."""
    if not raw.strip():
        raise BadRequest("The request body must be a JSON object", error="Invalid JSON")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"The request body is not valid UTF-8 (byte {exc.start + 1})", error="Invalid JSON") from None
    try:
        body = json.loads(text, parse_int=_bounded_int, parse_float=_finite_float, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"The request body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            error="Invalid JSON",
        ) from None
    except _Unstorable as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}", error="Invalid JSON") from None
    except RecursionError:
        raise BadRequest("The request body is nested too deeply", error="Invalid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object", error="Invalid JSON")
    problem = _bad_string(body)
    if problem:
        raise BadRequest(problem, error="Invalid JSON")
    return body


MAX_INT_DIGITS = 100


class _Unstorable(ValueError):
    pass


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Unstorable(f"an integer has more than {MAX_INT_DIGITS} digits")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Unstorable(f"the number {text[:20]}{'...' if len(text) > 20 else ''} is out of range")
    return value


def _no_constant(name: str) -> float:
    raise _Unstorable(f"{name} is not a JSON value")


# PostgreSQL cannot store NUL in text or jsonb (psycopg refuses such a parameter outright), so
# a NUL anywhere in a request's strings is refused up front, alike on every database.
NUL_MESSAGE = "Strings in the request must not contain NUL (\\u0000) characters"
SURROGATE_MESSAGE = "Strings in the request must not contain lone surrogates (\\ud800-\\udfff)"
_SURROGATE = re.compile("[\ud800-\udfff]")


def string_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored (NUL, lone surrogate), or None."""
    if "\x00" in text:
        return NUL_MESSAGE
    if _SURROGATE.search(text):
        return SURROGATE_MESSAGE
    return None


def _bad_string(value: Any) -> str | None:
    pending = [value]  # iterative: a body may nest as deep as json.loads allows
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            problem = string_problem(item)
            if problem:
                return problem
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return None


@overload
def query(req: falcon.Request, name: str, *, required: Literal[True], max_length: int = 200) -> str: ...
@overload
def query(req: falcon.Request, name: str, *, required: bool = False, max_length: int = 200) -> str | None: ...
def query(req: falcon.Request, name: str, *, required: bool = False, max_length: int = 200) -> str | None:
    value = req.get_param(name)
    if value is None:
        if required:
            raise BadRequest(f"Query parameter '{name}' is required", error="Missing parameter")
        return None
    if value == "":
        raise BadRequest(f"Query parameter '{name}' must not be empty", error="Invalid parameter")
    problem = string_problem(value)
    if problem:
        raise BadRequest(problem, error="Invalid parameter")
    if len(value) > max_length:
        raise BadRequest(f"Query parameter '{name}' is longer than {max_length} characters", error="Invalid parameter")
    return value


@overload
def query_int(req: falcon.Request, name: str, *, default: int, low: int, high: int) -> int: ...
@overload
def query_int(req: falcon.Request, name: str, *, default: None, low: int, high: int) -> int | None: ...
def query_int(req: falcon.Request, name: str, *, default: int | None, low: int, high: int) -> int | None:
    """An integer query parameter: ASCII digits with an optional leading '-' (Python's int()
    would also take '٣' or '1_000'), between ``low`` and ``high``."""
    raw = req.get_param(name)
    if raw is None:
        return default
    if not _ASCII_INT.fullmatch(raw):
        raise BadRequest(f"Query parameter '{name}' must be an integer", error="Invalid parameter")
    value = int(raw)
    if not low <= value <= high:
        raise BadRequest(f"Query parameter '{name}' must be between {low} and {high}", error="Invalid parameter")
    return value


_ASCII_INT = re.compile(r"-?[0-9]{1,18}")
