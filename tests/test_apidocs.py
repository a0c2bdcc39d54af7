"""``/docs``: the browsable API page, served with its assets from the installed package (no
CDN), rendering ``/openapi.json`` in a real browser."""

from __future__ import annotations

import re

import falcon.testing
import pytest

from flashfusion.core.app import create_app


@pytest.fixture
def client(gateway):
    return falcon.testing.TestClient(create_app(gateway))


def test_docs_page_and_its_assets_are_served_without_a_key_and_without_a_cdn(client):
    page = client.simulate_get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert set(assets) == {"/docs/apidocs.css", "/docs/apidocs.js", "/openapi.json"}
    for path, kind in (("/docs/apidocs.js", "application/javascript"), ("/docs/apidocs.css", "text/css")):
        asset = client.simulate_get(path)
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(kind), path
        assert "http://" not in asset.text and "https://" not in asset.text, path
    assert 'fetch("/openapi.json")' in client.simulate_get("/docs/apidocs.js").text
    missing = client.simulate_get("/docs/nothing.js")
    assert missing.status_code == 404 and missing.json["error"]
