"""``/docs``: the browsable API page and its assets, from the ``flashfusion.core.web.apidocs``
package (no CDN). Public, like ``/openapi.json`` which it renders."""

from __future__ import annotations

import falcon

from flashfusion.core.web import apidocs


class ApiDocsPage:
    auth = None

    def __init__(self) -> None:
        self.page = apidocs.read("index.html")

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = "text/html; charset=utf-8"
        resp.data = self.page


class ApiDocsAsset:
    auth = None

    def __init__(self) -> None:
        self.assets = {name: (apidocs.read(name), kind) for name, kind in apidocs.ASSETS.items()}

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        if name not in self.assets:
            raise falcon.HTTPNotFound()
        resp.data, resp.content_type = self.assets[name]
        resp.cache_control = ["public", "max-age=3600"]
