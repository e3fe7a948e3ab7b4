"""IPv4 ranges with a meaning of their own (RFC 1918, RFC 6890), for the configuration
model and the renderers alike; this module imports nothing of the project."""

from __future__ import annotations

import ipaddress

# Ranges that can never be an address seen on the Internet (a customer gateway, a site's
# egress address).
NOT_INTERNET_ROUTABLE = tuple(
    ipaddress.IPv4Network(cidr)
    for cidr in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT: IPsec peers must be reachable directly
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
)

# Ranges no sender can be in: "this network", loopback, link-local (the instance metadata
# service among them), multicast, and the reserved 240.0.0.0/4 with the broadcast address
# (RFC 6890).
NEVER_A_SENDER = tuple(
    ipaddress.IPv4Network(cidr)
    for cidr in ("0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4")
)

RFC1918 = tuple(
    ipaddress.IPv4Network(cidr) for cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)
