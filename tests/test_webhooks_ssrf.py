"""SSRF: every refused URL is refused before any connection (a stub resolver answers for
names; the socket layer is booby-trapped), the connection goes to the checked address,
and refusals never tell whether a private host exists."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys

import pytest
from testkit.db import require_tool
from testkit.receiver import Receiver

from flashfusion.core.webhooks import sender as client
from flashfusion.core.webhooks.ssrf import HOST_REFUSED, Policy, UrlRefused, check_url

STRICT = Policy()
PUBLIC = "93.184.215.14"
NAMES = {
    "public.example": [PUBLIC],
    "private.example": ["10.1.2.3"],
    "mixed.example": [PUBLIC, "192.168.1.1"],
    "metadata.example": ["169.254.169.254"],
    "v6local.example": ["fd12::1"],
    "mapped.example": ["::ffff:127.0.0.1"],
}


def stub(host, port):
    if host not in NAMES:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return NAMES[host]


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"a connection was attempted: {args}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


REFUSED_HOSTS = [
    "https://127.0.0.1/",
    "https://127.1/",
    "https://2130706433/",
    "https://0x7f000001/",
    "https://0177.0.0.1/",
    "https://0x7f.1/",
    "https://017700000001/",
    "https://127.0.0.1./",
    "https://localhost/",
    "https://a.localhost/",
    "https://0.0.0.0/",
    "https://0/",
    "https://10.0.0.1/",
    "https://172.16.5.4/",
    "https://192.168.0.1/",
    "https://169.254.169.254/latest/meta-data/",
    "https://100.64.0.1/",
    "https://100.100.100.200/",
    "https://198.18.0.1/",
    "https://224.0.0.1/",
    "https://255.255.255.255/",
    "https://240.0.0.1/",
    "https://[::1]/",
    "https://[::]/",
    "https://[fc00::1]/",
    "https://[fd00:ec2::254]/",
    "https://[fe80::1]/",
    "https://[fe80::1%25eth0]/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:7f00:1]/",
    "https://[::ffff:169.254.169.254]/",
    "https://[64:ff9b::a9fe:a9fe]/",
    "https://[64:ff9b::7f00:1]/",
    "https://[64:ff9b:1::a00:1]/",
    "https://[2002:a00:1::1]/",
    "https://[::127.0.0.1]/",
    "https://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/",  # Teredo whose client is 10.0.0.1
    "https://private.example/",
    "https://mixed.example/",
    "https://metadata.example/",
    "https://v6local.example/",
    "https://mapped.example/",
    "https://does-not-exist.example/",
    "https://999.1.1.1/",
    "https://exa mple.com/",
]


@pytest.mark.parametrize("url", REFUSED_HOSTS)
def test_private_and_special_hosts_are_refused_with_one_message(url):
    with pytest.raises(UrlRefused) as refused:
        check_url(url, STRICT, stub)
    if "exa mple" not in url:
        assert refused.value.message == HOST_REFUSED  # the same for NXDOMAIN and private: no oracle


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("http://public.example/", "https"),
        ("ftp://public.example/", "https"),
        ("gopher://x/", "https"),
        ("https://user:pw@public.example/", "user name"),
        ("https://user@public.example/", "user name"),
        ("https://public.example\\@10.0.0.1/", "backslash"),
        ("https:///nohost", "no host"),
        ("", "absolute URL"),
        ("https://public.example:99999/", "not a valid URL"),
    ],
)
def test_bad_urls_are_refused(url, fragment):
    with pytest.raises(UrlRefused, match=fragment):
        check_url(url, STRICT, stub)


def test_public_hosts_pass_and_the_checked_addresses_are_returned():
    target = check_url("https://public.example/hooks?x=1", STRICT, stub)
    assert (target.host, target.port, target.path, target.addresses) == ("public.example", 443, "/hooks?x=1", (PUBLIC,))
    assert check_url("https://8.8.8.8:8443/", STRICT, stub).addresses == ("8.8.8.8",)
    assert check_url("https://[2606:4700::1111]/", STRICT, stub).addresses == ("2606:4700::1111",)
    assert check_url("http://public.example/", Policy(allow_http=True), stub).port == 80


def test_private_networks_when_allowed_but_never_cloud_metadata():
    allowed = Policy(allow_http=True, allow_private_networks=True)
    assert check_url("http://127.0.0.1:8080/", allowed, stub).addresses == ("127.0.0.1",)
    assert check_url("https://private.example/", allowed, stub).addresses == ("10.1.2.3",)
    for url in ("http://169.254.169.254/", "https://metadata.example/", "https://[fd00:ec2::254]/", "http://0.0.0.0/"):
        with pytest.raises(UrlRefused):
            check_url(url, allowed, stub)


def test_dns_rebinding_is_refused_at_send_time_before_connecting(tmp_path, db_url):
    """The name was public when saved and points inside at send time: the attempt is
    refused without any connection (socket.create_connection would raise)."""
    from conftest import write_config

    from flashfusion.core.app import build_gateway
    from flashfusion.core.config import load_config
    from flashfusion.core.runs import transitions as runs
    from flashfusion.core.storage.db import database
    from flashfusion.core.storage.models import WebhookDelivery
    from flashfusion.core.webhooks.callers import Caller
    from flashfusion.core.webhooks.dispatcher import REFUSED, Dispatcher
    from flashfusion.core.webhooks.management import WebhookService

    answers = {"rebind.example": [PUBLIC]}
    resolver = lambda host, port: answers[host]  # noqa: E731
    gateway = build_gateway(load_config(str(write_config(tmp_path, db_url)), env={}))
    with database.connection_context():
        WebhookService(gateway, resolver=resolver).create(Caller(), {"url": "https://rebind.example/hook"})
        runs.emit("run.started", "demo", None, {"run_id": "run_1"})
    answers["rebind.example"] = ["127.0.0.1"]
    Dispatcher(gateway, resolver=resolver).drain()
    with database.connection_context():
        row = WebhookDelivery.get()
    assert row.attempts == 1 and row.last_error == REFUSED and row.status == "pending"
    database.close()


def test_the_connection_goes_to_the_checked_address_with_the_name_in_host(monkeypatch):
    monkeypatch.undo()  # this one really connects, to 127.0.0.1 only
    with Receiver() as rx:
        port = rx.server.server_address[1]
        names = {"hooks.customer.test": ["127.0.0.1"]}
        target = check_url(
            f"http://hooks.customer.test:{port}/in",
            Policy(allow_http=True, allow_private_networks=True),
            lambda h, p: names[h],
        )
        names["hooks.customer.test"] = ["10.9.9.9"]  # a later answer is never used
        outcome = client.post(target, b"{}", {"Content-Type": "application/json"}, timeout=5)
    assert outcome.status == 200
    (got,) = rx.snapshot()
    assert got.headers["host"] == f"hooks.customer.test:{port}" and got.path == "/in"


def test_in_a_loopback_only_namespace_an_unreachable_private_address_fails_cleanly(monkeypatch, tmp_path):
    """A real connection attempt to a private address (allowed by configuration), inside a
    network namespace that has only loopback: it fails fast and is reported, not raised."""
    monkeypatch.undo()
    require_tool(bool(shutil.which("unshare")), "unshare (util-linux)")
    code = (
        "from flashfusion.core.webhooks import sender as client\n"
        "from flashfusion.core.webhooks.ssrf import Policy, check_url\n"
        "t = check_url('http://10.255.255.1:9/x', Policy(allow_http=True, allow_private_networks=True))\n"
        "o = client.post(t, b'{}', {}, timeout=3)\n"
        "print(o.status, o.error)\n"
    )
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True)
    if probe.returncode != 0:
        probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
        require_tool(probe.returncode == 0, "network namespaces (unshare -n)")
        args = ["unshare", "-n"]
    else:
        args = ["unshare", "-rn"]
    out = subprocess.run([*args, sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("None network error") or "timed out" in out.stdout
