"""Where a webhook may send: public addresses, and the networks an operator allows.

A webhook makes the server send requests, and the receiver's answer comes back to the admin
(the test button, the delivery log). Without a check, an admin could point one at the server's
own machine or network (`http://127.0.0.1:…`, `169.254.169.254`, a database's HTTP port) and
read what answers. So an address that is not globally routable is refused unless its network is
listed in WEBHOOK_ALLOWED_NETWORKS (a chat server on the office network, say). Host names are
resolved when a delivery is sent, and every address they resolve to must pass. (A name whose
answer changes between that check and the connection, DNS rebinding, is not caught: pinning the
address would take a transport of our own.)
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


# NAT64 (RFC 6052, 8215): on a network that has it, 64:ff9b::a9fe:a9fe reaches 169.254.169.254,
# yet Python counts the well-known prefix as global; the local-use prefix is never public.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")


def _parsed(text: str) -> Address:
    """An address; an IPv4 one carried in IPv6 (`::ffff:127.0.0.1`, NAT64's `64:ff9b::7f00:1`)
    as the IPv4 one it reaches."""
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _allowed(address: Address) -> bool:
    if address.is_global and address not in _LOCAL_NAT64:
        return True
    return any(address in ipaddress.ip_network(network) for network in settings.WEBHOOK_ALLOWED_NETWORKS)


def _refusal(host: str, address: Address) -> str:
    shown = host if host == str(address) else f"{host} ({address})"
    return (
        f"{shown} is not a public address; webhooks send only to public addresses and to the "
        "networks listed in WEBHOOK_ALLOWED_NETWORKS"
    )


def literal_address_refusal(url: str) -> str | None:
    """Why the address of `url` may not receive webhooks, when its host is an IP address or
    `localhost` (known without asking DNS); None otherwise. For checking a webhook as it is set."""
    host = urlsplit(url).hostname or ""
    literal = "127.0.0.1" if host == "localhost" or host.endswith(".localhost") else host
    try:
        address = _parsed(literal)
    except ValueError:
        return None  # a name: resolved when a delivery is sent
    return None if _allowed(address) else _refusal(host, address)


def resolved_address_refusal(url: str) -> str | None:
    """Why `url` may not be sent to now: one of the addresses its host resolves to is refused,
    or it does not resolve. None when every address passes."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        return f"{host} could not be resolved ({error})"
    for *_, sockaddr in found:
        address = _parsed(str(sockaddr[0]).split("%", 1)[0])  # an IPv6 zone is no part of the address
        if not _allowed(address):
            return _refusal(host, address)
    return None
