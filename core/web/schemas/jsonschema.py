"""The request and answer Structs as OpenAPI 3.1 schemas (``components.schemas``).

msgspec writes an optional field as ``anyOf: [X, {"type": "null"}]`` and a Literal as a
bare ``enum``; they are written here the way this API has always described them, as
``type: [X, "null"]`` and an ``enum`` with its ``type``, which every client generator reads."""

from __future__ import annotations

from typing import Any

import msgspec

from flashfusion.core.web.schemas.requests import REQUESTS
from flashfusion.core.web.schemas.responses import RESPONSES

REF_TEMPLATE = "#/components/schemas/{name}"
_ENUM_TYPES = {str: "string", int: "integer", bool: "boolean"}


def components() -> dict[str, Any]:
    """Every request body's and answer's schema, by its Struct's name."""
    _, found = msgspec.json.schema_components(REQUESTS + RESPONSES, ref_template=REF_TEMPLATE)
    return {name: _openapi(schema) for name, schema in found.items()}


def ref(cls: type) -> dict[str, str]:
    return {"$ref": REF_TEMPLATE.format(name=cls.__name__)}


def _openapi(node: Any) -> Any:
    if isinstance(node, list):
        return [_openapi(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _openapi(value) for key, value in node.items()}
    options = node.get("anyOf")
    if options and len(options) == 2 and {"type": "null"} in options:
        other = next(option for option in options if option != {"type": "null"})
        if isinstance(other.get("type"), str):
            node.pop("anyOf")
            node = {**other, **node, "type": [other["type"], "null"]}
    if "enum" in node and "type" not in node:
        kinds = {_ENUM_TYPES.get(type(value)) for value in node["enum"]}
        if len(kinds) == 1 and None not in kinds:
            node["type"] = kinds.pop()
    return node
