"""Deterministic subnet layout of the VPC, from plain values (no Pulumi here).

Private subnets are carved upwards from the bottom of the VPC and public subnets downwards
from the top, one of each per availability zone, in zone order. The address of the subnet
for zone ``i`` depends only on the VPC, the prefix and ``i``: adding a zone appends a subnet
and never renumbers the existing ones. The middle of the VPC stays free for later tiers.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network

# AWS accepts subnets from /16 to /28.
SUBNET_PREFIX_RANGE = (16, 28)


class LayoutError(ValueError):
    """The subnets asked for do not fit in the VPC."""


@dataclass(frozen=True)
class SubnetLayout:
    public: tuple[IPv4Network, ...]
    private: tuple[IPv4Network, ...]


def private_subnet(vpc: IPv4Network, prefix: int, index: int) -> IPv4Network:
    size = 2 ** (32 - prefix)
    return IPv4Network((int(vpc.network_address) + index * size, prefix))


def public_subnet(vpc: IPv4Network, prefix: int, index: int) -> IPv4Network:
    size = 2 ** (32 - prefix)
    top = int(vpc.broadcast_address) + 1
    return IPv4Network((top - (index + 1) * size, prefix))


def addresses_needed(zone_count: int, public_prefix: int, private_prefix: int) -> int:
    return zone_count * (2 ** (32 - public_prefix) + 2 ** (32 - private_prefix))


def plan_subnets(
    vpc: IPv4Network, zone_count: int, public_prefix: int, private_prefix: int
) -> SubnetLayout:
    """Public and private subnets, one of each per zone; ``LayoutError`` if they do not fit."""
    for label, prefix in (("public", public_prefix), ("private", private_prefix)):
        if not vpc.prefixlen <= prefix:
            raise LayoutError(f"a {label} subnet of /{prefix} is larger than the VPC {vpc}")
    # The two blocks grow towards each other, so they are disjoint exactly when the VPC
    # has room for all of them.
    needed = addresses_needed(zone_count, public_prefix, private_prefix)
    if needed > vpc.num_addresses:
        raise LayoutError(
            f"{zone_count} zones x (public /{public_prefix} + private /{private_prefix}) need "
            f"{needed} addresses; the VPC {vpc} has {vpc.num_addresses}. Use a larger VPC "
            "or longer subnet prefixes"
        )
    private = tuple(private_subnet(vpc, private_prefix, i) for i in range(zone_count))
    public = tuple(public_subnet(vpc, public_prefix, i) for i in range(zone_count))
    return SubnetLayout(public=public, private=private)


def vpc_resolver_address(vpc: IPv4Network) -> str:
    """The Amazon-provided DNS resolver: the VPC's base address plus two."""
    return str(vpc.network_address + 2)


# Addresses orthgate assigns itself, at the same offsets in every subnet: the single host
# (so sites can configure it by IP and its certificate can name it before it exists) and
# the internal load balancer of a fleet, one per zone. They are reserved for explicit
# assignment, so no NAT gateway, endpoint, database or Client VPN interface can take them.
FIXED_HOST_OFFSET = 10
FIXED_BALANCER_OFFSET = 11


def fixed_address(subnet: IPv4Network, offset: int) -> str:
    return str(subnet.network_address + offset)


def fixed_address_block(subnet: IPv4Network) -> IPv4Network:
    """The aligned /31 holding both fixed addresses of the subnet (offsets 10 and 11)."""
    return IPv4Network((int(subnet.network_address) + FIXED_HOST_OFFSET, 31))
