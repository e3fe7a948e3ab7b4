"""Which source ranges count as private, as the whole world, or as Internet-routable."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# RFC 1918 private IPv4 space, and RFC 4193 unique local IPv6 addresses (fc00::/7), the
# IPv6 counterpart: neither is routed on the Internet.
PRIVATE_RANGES: tuple[Network, ...] = tuple(
    ipaddress.ip_network(cidr)
    for cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)


def parse(cidr: str) -> Network:
    """A source range; host bits set (`10.0.0.1/8`) are tolerated as AWS tolerates them."""
    return ipaddress.ip_network(cidr.strip(), strict=False)


def is_world(network: Network) -> bool:
    return network.prefixlen == 0


def within_any(network: Network, ranges: Iterable[Network]) -> bool:
    return any(
        network.version == allowed.version and network.subnet_of(allowed) for allowed in ranges
    )
