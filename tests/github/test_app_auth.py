"""GitHub App authentication: installation tokens from a JWT, refreshed before they expire."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from flashfusion.plugins import UpstreamAuthError

REPO = "acme/web"


@pytest.fixture(scope="module")
def app_key() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def test_installation_token_is_fetched_once_and_refreshed_before_expiry(fake, tracker, app_key):
    private, public = app_key
    fake.enable_app(4242, public, installation_id=77, token_ttl=120)
    fake.add_workflow(REPO, "deploy.yml")
    t = tracker(env={"APP_KEY": private}, app_id=4242, installation_id=77, private_key_env="APP_KEY")
    t.dispatch("run_1")
    t.cycle(30)
    assert fake.tokens_issued == 1
    t.cycle(40)  # 70 s into a 120 s token: past half its life, so a new one is fetched
    assert fake.tokens_issued == 2
    t.dispatch("run_2")
    assert fake.tokens_issued == 2
    assert len(t.refs) == 2 and all(r.upstream_id for r in t.refs.values())


def test_private_key_from_a_file(fake, tracker, app_key, tmp_path):
    private, public = app_key
    key_file = tmp_path / "app.pem"
    key_file.write_text(private)
    fake.enable_app(4242, public, installation_id=77)
    fake.add_workflow(REPO, "deploy.yml")
    t = tracker(env={}, app_id=4242, installation_id=77, private_key_file=str(key_file))
    assert t.dispatch("run_1").upstream_id
    assert t.provider.check(t.pipeline) == []


def test_wrong_app_id_is_an_auth_error(fake, tracker, app_key):
    private, public = app_key
    fake.enable_app(4242, public, installation_id=77)
    fake.add_workflow(REPO, "deploy.yml")
    t = tracker(env={"APP_KEY": private}, app_id=1, installation_id=77, private_key_env="APP_KEY")
    with pytest.raises(UpstreamAuthError) as info:
        t.dispatch("run_1")
    assert "pipeline web" in info.value.message and "BEGIN" not in info.value.message
    assert [line for line in t.provider.check(t.pipeline) if "credentials" in line]
