"""Which webhook URLs may be called, checked when a URL is saved and again before each send.

- https only, unless ``webhooks.allow_http``; no user name or password in the URL.
- The host is parsed the way browsers and libc do: decimal, octal, hexadecimal and short
  IPv4 spellings (``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``) are numbers, IPv6
  literals are checked with the IPv4 address they embed (IPv4-mapped, IPv4-compatible,
  NAT64 ``64:ff9b::/96`` and ``64:ff9b:1::/48``, 6to4, Teredo).
- Every address a name resolves to must be public (``is_global``: not loopback, RFC 1918,
  link-local, CGNAT, unique-local, reserved, documentation, benchmark, ...) unless
  ``webhooks.allow_private_networks``; cloud metadata addresses, unspecified and multicast
  addresses are refused even then.
- The caller connects to the addresses returned here (``Target.addresses``), never
  resolving the name again, so DNS rebinding cannot swap in another address.

Every refusal of a host uses one message, whether the name does not resolve, resolves to
a private address or is malformed: the answer never tells whether a private host exists.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

Resolver = Callable[[str, int], Iterable[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL = 2048
HOST_REFUSED = (
    "The URL's host is not allowed: webhook URLs must name a host that resolves only to "
    "public internet addresses (webhooks.allow_private_networks = true allows private and loopback "
    "ones; cloud metadata addresses are always refused)"
)
ALWAYS_BLOCKED = [
    ipaddress.ip_network(n)
    for n in (
        "169.254.169.254/32",  # AWS, GCP, Azure, OpenStack, DigitalOcean... instance metadata
        "169.254.170.2/32",  # AWS ECS task metadata
        "168.63.129.16/32",  # Azure wire server (a public address)
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "fd00:ec2::254/128",  # AWS IPv6 metadata
        "0.0.0.0/8",
        "::/128",
        "255.255.255.255/32",
    )
]
NAT64 = [ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48")]
LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$")


class UrlRefused(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Policy:
    allow_http: bool = False
    allow_private_networks: bool = False

    @classmethod
    def from_config(cls, webhooks) -> Policy:
        return cls(allow_http=webhooks.allow_http, allow_private_networks=webhooks.allow_private_networks)


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # for the Host header and TLS server name
    port: int
    path: str  # path and query
    addresses: tuple[str, ...]  # checked addresses to connect to, in order


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for info in infos:
        address = str(info[4][0])  # an IP address string for AF_INET/AF_INET6
        if address not in seen:
            seen.append(address)
    return seen


def _embedded_v4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    as_int = int(ip)
    if as_int >> 32 == 0 and as_int > 1:  # IPv4-compatible ::a.b.c.d
        found.append(ipaddress.IPv4Address(as_int))
    if any(ip in net for net in NAT64):
        found.append(ipaddress.IPv4Address(as_int & 0xFFFFFFFF))
    return found


def address_allowed(address: str | IPAddress, allow_private: bool) -> bool:
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return False
    candidates: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return False
        candidates.extend(_embedded_v4(ip))
    for candidate in candidates:
        if candidate.is_multicast or candidate.is_unspecified:
            return False
        if any(candidate.version == net.version and candidate in net for net in ALWAYS_BLOCKED):
            return False
        if not allow_private and not candidate.is_global:
            return False
    return True


def parse_numeric_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """inet_aton's reading of a host made of numbers: ``127.1``, ``0177.0.0.1``, ``0x7f000001``."""
    if not NUMERIC_HOST.match(host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        raise UrlRefused(HOST_REFUSED) from None


@dataclass(frozen=True)
class ParsedUrl:
    scheme: str
    host: str
    port: int
    path: str
    literal: IPAddress | None


def parse_url(url: str, policy: Policy) -> ParsedUrl:
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise UrlRefused(f"'url' must be an absolute URL of at most {MAX_URL} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F or ch == "\\" for ch in url):
        raise UrlRefused("'url' must not contain spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlRefused("'url' is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise UrlRefused("Webhook URLs must use https")
    if scheme == "http" and not policy.allow_http:
        raise UrlRefused("Webhook URLs must use https (webhooks.allow_http is off)")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise UrlRefused("Webhook URLs must not contain a user name or password")
    host = parts.hostname or ""
    if not host:
        raise UrlRefused("'url' has no host")
    port = port or (443 if scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    literal: IPAddress | None = None
    if parts.netloc.split("@")[-1].startswith("["):
        if "%" in host:
            raise UrlRefused(HOST_REFUSED)
        try:
            literal = ipaddress.IPv6Address(host)
        except ValueError:
            raise UrlRefused(HOST_REFUSED) from None
    else:
        host = host.rstrip(".")
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise UrlRefused(HOST_REFUSED) from None
        literal = parse_numeric_ipv4(host)
        if literal is None:
            labels = host.split(".")
            if not all(LABEL.match(label) for label in labels) or len(host) > 253:
                raise UrlRefused(HOST_REFUSED)
    return ParsedUrl(scheme=scheme, host=str(literal) if literal else host, port=port, path=path, literal=literal)


def check_url(url: str, policy: Policy, resolver: Resolver = system_resolver) -> Target:
    """Parse, resolve and check ``url``; raise ``UrlRefused`` before any connection."""
    parsed = parse_url(url, policy)
    allow_private = policy.allow_private_networks
    if parsed.literal is not None:
        addresses = [str(parsed.literal)]
    else:
        if not allow_private and (parsed.host == "localhost" or parsed.host.endswith(".localhost")):
            raise UrlRefused(HOST_REFUSED)
        try:
            addresses = list(resolver(parsed.host, parsed.port))
        except (OSError, UnicodeError):
            raise UrlRefused(HOST_REFUSED) from None
    if not addresses or not all(address_allowed(a, allow_private) for a in addresses):
        raise UrlRefused(HOST_REFUSED)
    return Target(
        scheme=parsed.scheme, host=parsed.host, port=parsed.port, path=parsed.path, addresses=tuple(addresses)
    )
