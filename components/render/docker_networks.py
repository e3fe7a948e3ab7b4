"""Where Docker puts its bridge networks on an Orthanc host, away from every sender.

Docker gives its default bridge and a Compose project's network the first two /16s of its
default pools (172.17.0.0/16 upwards) that overlap no route of the host, and routes both
to the bridge. The host's own route is its subnet, so Docker already steps aside for the
VPC; it cannot know the on-premises ranges, which reach the host through the VPC router.
A sender in either network (an on-premises 172.18.x.x, common where hospitals use
172.16.0.0/12) reaches Orthanc, but the reply goes to the bridge and never leaves the host.
When a sender range overlaps them, the daemon is told to use a block that overlaps no range
the hosts must reach (``bip`` and ``default-address-pools``, dockerd's configuration
reference); otherwise Docker keeps its defaults and the user data stays as it was. The
block is the first free one of a fixed order, so a change elsewhere never moves it: only a
new sender range inside it does (and that replaces single hosts, as any user data change).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Network

from orthgate.components.address_ranges import RFC1918

DAEMON_CONFIG = "/etc/docker/daemon.json"

# Docker's default local address pools begin with these /16s (daemon defaults,
# "default-address-pools"); docker0 takes the first free one, the Compose network the next.
DOCKER_DEFAULT_POOLS = tuple(IPv4Network("172.16.0.0/12").subnets(new_prefix=16))[1:]
# What two networks need: docker0's /24 and a pool of /24s for Compose, in one block.
BLOCK_PREFIX = 20
# The block whose daemon.json is longest (for the user data size bound).
LONGEST_BLOCK = IPv4Network("192.168.240.0/20")


def docker_default_networks(vpc_cidr: IPv4Network) -> tuple[IPv4Network, IPv4Network]:
    """The two networks Docker picks by itself on a host of this VPC."""
    free = [pool for pool in DOCKER_DEFAULT_POOLS if not pool.overlaps(vpc_cidr)]
    return free[0], free[1]


def _candidates() -> Iterable[IPv4Network]:
    """Blocks to move to, whole /16s the least likely to be in use first, then any /20."""
    yield from IPv4Network("172.16.0.0/12").subnets(new_prefix=16)
    yield from reversed(list(IPv4Network("10.0.0.0/8").subnets(new_prefix=16)))
    yield IPv4Network("192.168.0.0/16")
    for private in RFC1918:
        yield from private.subnets(new_prefix=BLOCK_PREFIX)


class NoFreeRange(ValueError):
    """Every private block overlaps a range the hosts must reach."""


def container_block(vpc_cidr: IPv4Network, senders: Sequence[IPv4Network]) -> IPv4Network | None:
    """The block Docker must use instead of its defaults, or None when they harm nothing.

    ``senders``: the ranges besides the VPC that reach the hosts (``sender_ranges``)."""
    defaults = docker_default_networks(vpc_cidr)
    if not any(n.overlaps(s) for n in defaults for s in senders):
        return None
    keep_clear = [vpc_cidr, *senders]
    for block in _candidates():
        if not any(block.overlaps(c) for c in keep_clear):
            return block
    raise NoFreeRange("no private /20 is free of the VPC and the private paths for Docker")


def daemon_config(block: IPv4Network) -> str:
    """dockerd's daemon.json: docker0 in the block's last /24, Compose networks (/24 each)
    from its first half, so the two never meet."""
    last = list(block.subnets(new_prefix=24))[-1]
    first_half = next(block.subnets(prefixlen_diff=1))
    config = {
        "bip": f"{last.network_address + 1}/{last.prefixlen}",
        "default-address-pools": [{"base": str(first_half), "size": 24}],
    }
    return json.dumps(config, indent=2) + "\n"


def sender_ranges(
    private_path_cidrs: Sequence[str], allowed_cidrs: Sequence[str]
) -> list[IPv4Network]:
    """What reaches the hosts besides the VPC: the on-premises ranges and the allow-lists'
    private entries (Client VPN's clients arrive translated to its addresses in the VPC)."""
    ranges = list(map(IPv4Network, private_path_cidrs))
    ranges += [n for n in map(IPv4Network, allowed_cidrs) if any(n.overlaps(p) for p in RFC1918)]
    return ranges
