"""The client's address, as logins, throttles and the audit log record it.

Without ``[server] trusted_proxies`` it is the TCP peer, and ``X-Forwarded-For`` is ignored:
anyone can send that header. Behind reverse proxies every request comes from a proxy, so
when the peer is a trusted proxy the address is read from ``X-Forwarded-For`` right to
left: each proxy appends the address it received the request from, and the first entry
that is not a trusted proxy is the client. Entries further left were written by the client
and prove nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import falcon

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

FORWARDED_FOR = "X-Forwarded-For"
UNKNOWN = "unknown"


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """``10.0.0.0/8``, ``192.168.1.10``, ``fd00::/8``...; ``ValueError`` names a bad entry."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network (CIDR)") from None
    return tuple(networks)


def _address(text: str) -> IPAddress | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1 : text.index("]")]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def _trusted(address: IPAddress, proxies: tuple[Network, ...]) -> bool:
    return any(address in network for network in proxies)


def resolve(peer: str | None, forwarded_for: str | None, proxies: tuple[Network, ...]) -> str:
    """The client's address for a request from ``peer`` carrying ``forwarded_for``."""
    if not peer:
        return UNKNOWN
    if not proxies:
        return peer
    current = _address(peer)
    if current is None or not _trusted(current, proxies):
        return peer
    for hop in reversed((forwarded_for or "").split(",")):
        address = _address(hop)
        if address is None:  # garbage a client wrote: the last proxy is all that is known
            break
        current = address
        if not _trusted(address, proxies):
            break
    return str(current)


def remember(req: falcon.Request, proxies: tuple[Network, ...]) -> None:
    """Work out the request's client address once, for ``client_addr`` (called by the
    authentication middleware, which sees every request first)."""
    req.context.client_addr = resolve(req.remote_addr, req.get_header(FORWARDED_FOR), proxies)


def client_addr(req: falcon.Request) -> str:
    """The request's client address (see the module's docstring)."""
    return req.context.get("client_addr") or req.remote_addr or UNKNOWN
