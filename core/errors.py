"""Domain errors of the gateway. ``app.py`` maps them to HTTP in one place.

ApiError (status, error, message)
 +-- BadRequest        400
 +-- Unauthorized      401
 +-- Forbidden         403
 +-- NotFound          404
 +-- Conflict          409
 +-- RequestTimeout    408
 +-- PayloadTooLarge   413
 +-- Unprocessable     422
 +-- TooManyRequests   429 (retry_after)
"""

from __future__ import annotations


class ApiError(Exception):
    status = 500
    error = "Internal Server Error"

    def __init__(self, message: str, *, error: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if error is not None:
            self.error = error
        self.headers = headers or {}


class BadRequest(ApiError):
    status = 400
    error = "Bad Request"


class Unauthorized(ApiError):
    status = 401
    error = "Unauthorized"


class Forbidden(ApiError):
    status = 403
    error = "Forbidden"


class NotFound(ApiError):
    status = 404
    error = "Not Found"


class Conflict(ApiError):
    status = 409
    error = "Conflict"


class RequestTimeout(ApiError):
    status = 408
    error = "Request Timeout"


class PayloadTooLarge(ApiError):
    status = 413
    error = "Payload Too Large"


class UnsupportedMediaType(ApiError):
    status = 415
    error = "Unsupported Media Type"


class Unprocessable(ApiError):
    status = 422
    error = "Unprocessable Entity"


class TooManyRequests(ApiError):
    status = 429
    error = "Too Many Requests"

    def __init__(self, message: str, *, retry_after: int, headers: dict[str, str] | None = None) -> None:
        merged = {"Retry-After": str(max(1, int(retry_after)))}
        merged.update(headers or {})
        super().__init__(message, headers=merged)
        self.retry_after = retry_after


class ConfigError(Exception):
    """A configuration file is unusable; ``str()`` is the one line shown at start."""

    def __init__(self, path: str, key: str, problem: str) -> None:
        super().__init__(f"{path}: {key}: {problem}")
        self.path, self.key, self.problem = path, key, problem
