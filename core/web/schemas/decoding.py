"""Decode a parsed JSON body into its request Struct, with errors in the API's shape.

msgspec reports one problem as text (``Expected `str`, got `int` - at `$.branch```); it is
read back into the field it names and the kind of problem, and answered as ``Missing
parameter`` or ``Invalid parameter`` with a message naming the field: the field's own text
for that kind (``Meta.extra["messages"]``) when the request Struct declares one."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from flashfusion.core.errors import BadRequest
from flashfusion.core.web.schemas.requests import Body

B = TypeVar("B", bound=Body)

_PROBLEM = re.compile(r"^(?P<what>.*?)(?: - at `(?P<at>[^`]*)`(?: in `(?P<outer>[^`]*)`)?)?$", re.S)
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`")
_TYPE = re.compile(r"^Expected `(?P<expected>[^`]+)`, got `[^`]+`$")
_LENGTH = re.compile(r"^Expected `(?P<kind>\w+)` of length (?P<op>[<>]=?) (?P<n>\d+)$")
_ENUM = re.compile(r"^Invalid enum value (?P<value>.*)$", re.S)
_JSON_NAMES = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "object": "JSON object",
    "array": "JSON array",
}


def decode(body: dict[str, Any], cls: type[B]) -> B:
    """``body`` as a ``cls``; a required string that is only blanks counts as empty."""
    prepared = {key: value for key, value in body.items() if not (value is None and key in cls.NULL_IS_ABSENT)}
    for alias, target in cls.ALIASES.items():
        if not prepared.get(target) and prepared.get(alias) is not None:
            prepared[target] = prepared[alias]
    try:
        value = msgspec.convert(prepared, cls)
    except msgspec.ValidationError as exc:
        for name, explain in cls.EXPLAIN.items():
            if name in prepared:
                explain(prepared[name])  # raises the precise BadRequest when the field is at fault
        raise problem(cls, str(exc)) from None
    for info in _fields(cls):
        text = getattr(value, info.name)
        if info.required and isinstance(text, str) and not text.strip():
            raise BadRequest(f"'{info.name}' must not be empty", error="Invalid parameter")
    return value


def problem(cls: type[Body], text: str) -> BadRequest:
    """The 400 answer for msgspec's ``text`` about a ``cls`` body."""
    parts = _PROBLEM.match(text)
    what, at = (parts["what"], parts["outer"] or parts["at"] or "") if parts else (text, "")
    missing = _MISSING.match(what)
    if missing:
        name = missing["name"]
        custom = _messages(cls, name)
        return BadRequest(custom.get("missing", f"'{name}' is required"), error="Missing parameter")
    name = re.split(r"[.\[]", at.removeprefix("$."), maxsplit=1)[0] or "body"
    nested = at not in (f"$.{name}", "") or parts is not None and parts["outer"] is not None
    kind, default = _kind(name, what, nested)
    custom = _messages(cls, name)
    message = custom.get(kind) or custom.get("any") or default
    enum = _ENUM.match(what)
    if enum:
        message = message.replace("{value}", enum["value"][:60])
    return BadRequest(message, error="Invalid parameter")


def _kind(name: str, what: str, nested: bool) -> tuple[str, str]:
    typed = _TYPE.match(what)
    if typed and not nested:
        expected = typed["expected"].removesuffix(" | null")
        return "type", f"'{name}' must be a {_JSON_NAMES.get(expected, expected)}"
    if typed:
        return "type", f"'{name}' holds a value of the wrong type: {what}"
    if _ENUM.match(what):
        return "enum", f"'{name}' has an unknown value: {what}"
    if "matching regex" in what:
        return "pattern", f"'{name}' does not match the pattern it must: {what}"
    length = _LENGTH.match(what)
    if length and not nested:
        unit = "characters" if length["kind"] == "str" else "entries"
        if length["op"].startswith("<"):
            if unit == "characters":
                return "length", f"'{name}' is longer than {length['n']} characters"
            return "length", f"'{name}' takes at most {length['n']} {unit}"
        if length["n"] == "1":
            return "length", f"'{name}' must not be empty"
        return "length", f"'{name}' takes at least {length['n']} {unit}"
    return "range", f"'{name}' is out of range: {what}"


def _fields(cls: type[Body]) -> tuple[msgspec.inspect.Field, ...]:
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType), "request bodies are msgspec Structs"
    return info.fields


def _messages(cls: type[Body], name: str) -> dict[str, str]:
    for info in _fields(cls):
        if info.name == name:
            return _extra_messages(info.type)
    return {}


def _extra_messages(node: msgspec.inspect.Type) -> dict[str, str]:
    if isinstance(node, msgspec.inspect.Metadata):
        found = (node.extra or {}).get("messages", {})
        return found or _extra_messages(node.type)
    if isinstance(node, msgspec.inspect.UnionType):
        for member in node.types:
            found = _extra_messages(member)
            if found:
                return found
    return {}
