"""The client address a request comes from, believing X-Forwarded-For only when
the peer is a trusted proxy (otherwise anyone could pick their own address)."""

from __future__ import annotations

import ipaddress


def _networks(entries) -> list:
    return [ipaddress.ip_network(entry, strict=False) for entry in entries]


class ClientAddresses:
    def __init__(self, trusted_proxies):
        self.trusted = _networks(trusted_proxies)

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    def of(self, request) -> str:
        address = request.client or "unknown"
        if not self.trusted or not self._is_trusted(address):
            return address
        hops = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",")]
        # The nearest hop not ours is the client; anything left of it is hearsay.
        for hop in reversed([h for h in hops if h]):
            if not self._is_trusted(hop):
                return hop
            address = hop
        return address
