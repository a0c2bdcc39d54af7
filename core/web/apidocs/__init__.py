"""The browsable API page served at ``/docs``: a small self-written page that renders
``/openapi.json`` in the browser (no third-party JavaScript, nothing from a CDN)."""

from importlib import resources

ASSETS = {"apidocs.js": "application/javascript; charset=utf-8", "apidocs.css": "text/css; charset=utf-8"}


def read(name: str) -> bytes:
    return resources.files(__name__).joinpath(name).read_bytes()
