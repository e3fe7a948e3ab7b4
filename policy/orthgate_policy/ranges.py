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


# IPv6 prefixes that carry IPv4 addresses: IPv4-mapped (RFC 4291) and NAT64's well-known
# prefix (RFC 6052). `::ffff:0:0/96` is the whole IPv4 Internet, whatever its IPv6 length.
_EMBEDDING_IPV4 = tuple(ipaddress.IPv6Network(p) for p in ("::ffff:0:0/96", "64:ff9b::/96"))


def parse(cidr: str) -> Network:
    """A source range; host bits set (`10.0.0.1/8`) are tolerated as AWS tolerates them.
    An IPv6 range inside a prefix that embeds IPv4 is judged as the IPv4 range it holds."""
    network = ipaddress.ip_network(str(cidr).strip(), strict=False)
    if isinstance(network, ipaddress.IPv6Network):
        for prefix in _EMBEDDING_IPV4:
            if network.subnet_of(prefix):
                embedded = int(network.network_address) & 0xFFFFFFFF
                return ipaddress.IPv4Network((embedded, network.prefixlen - 96))
    return network


def is_world(network: Network) -> bool:
    return network.prefixlen == 0


def within_any(network: Network, ranges: Iterable[Network]) -> bool:
    return any(
        network.version == allowed.version and network.subnet_of(allowed) for allowed in ranges
    )
