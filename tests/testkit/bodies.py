"""What the fake servers share in building their answers."""

from __future__ import annotations

from typing import Any


def same_named(record: Any, *names: str) -> dict[str, Any]:
    """The fields of an API body that are ``record``'s attributes of the same name, as they stand."""
    return {name: getattr(record, name) for name in names}
