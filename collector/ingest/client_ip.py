"""The client's address: the peer, or X-Forwarded-For when the peer is a trusted proxy."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClientAddress:
    def __init__(self, trusted_proxies: list[str]) -> None:
        self._trusted: tuple[Network, ...] = tuple(ipaddress.ip_network(p, strict=False) for p in trusted_proxies)

    def is_trusted(self, address: str | None) -> bool:
        if not self._trusted or not address:
            return False
        return _is_in(address, self._trusted)

    def resolve(self, peer: str | None, forwarded_for: str | None) -> str | None:
        """Walk X-Forwarded-For from the right, skipping trusted proxies: the first address not
        ours is the client; when every hop is trusted, the leftmost one is (as nginx and Express
        decide). Without a trusted peer the header is ignored (anyone can send it)."""
        if not forwarded_for or not self.is_trusted(peer):
            return peer
        client = peer
        for hop in reversed(forwarded_for.split(",")):
            if not hop.strip():
                continue
            address = _address(hop)
            if address is None:
                # "unknown", a name, garbage: nothing left of it can be believed.
                break
            client = address
            if not self.is_trusted(address):
                break
        return client


def _address(hop: str) -> str | None:
    """An IP address of a forwarded hop, without a port ("1.2.3.4:80", "[::1]:80"), or None."""
    hop = hop.strip()
    if hop.startswith("["):
        hop = hop[1:].partition("]")[0]
    elif hop.count(":") == 1:
        hop = hop.partition(":")[0]
    try:
        return str(ipaddress.ip_address(hop))
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def _is_in(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    return any(ip in network for network in networks)
