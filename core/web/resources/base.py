"""What the API resources share: the gateway they serve, and reading a request's JSON body."""

from __future__ import annotations

from typing import TypeVar

import falcon

from flashfusion.core.gateway import Gateway
from flashfusion.core.web.parsing import read_json
from flashfusion.core.web.schemas.decoding import decode
from flashfusion.core.web.schemas.requests import Body

B = TypeVar("B", bound=Body)


class GatewayResource:
    """A Falcon resource (``on_get``, ``on_post``) bound to the gateway."""

    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    def body(self, req: falcon.Request, cls: type[B]) -> B:
        """The JSON body, within ``server.max_body_bytes``, checked against ``cls``."""
        return decode(read_json(req, self.gw.config.server.max_body_bytes), cls)
