"""Field types shared by the answer Structs of the services (runs, webhooks, access): the
answers carry times as ISO 8601 strings, and the document says so."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

TIME_TEXT = "ISO 8601, UTC (ends with Z)"
Time = Annotated[str, Meta(description=TIME_TEXT)]
NullableTime = Annotated[str | None, Meta(description=TIME_TEXT)]
EveryPipelineIfEmpty = Annotated[list[str], Meta(description="Empty: every pipeline")]
