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
        ours is the client. Without a trusted peer the header is ignored (anyone can send it)."""
        if not forwarded_for or not self.is_trusted(peer):
            return peer
        for hop in reversed(forwarded_for.split(",")):
            hop = hop.strip()
            if hop and not self.is_trusted(hop):
                return hop
        return peer


@lru_cache(maxsize=4096)
def _is_in(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    return any(ip in network for network in networks)
