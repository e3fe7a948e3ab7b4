"""Where Docker puts its bridge networks on an Orthanc host, away from every sender.

Docker gives its default bridge 172.17.0.0/16 and a Compose project's network the next
free /16 of its default pools (172.18.0.0/16 on our hosts, which create one), and routes
both to the bridge. A sender whose address falls in either (an on-premises 172.18.x.x,
common in hospitals using 172.16.0.0/12) reaches Orthanc, but the reply goes to the
bridge and never leaves the host. When a range the hosts must reach overlaps them, the
daemon is told to use a /16 that overlaps none (``bip`` and ``default-address-pools``,
dockerd's configuration reference); otherwise Docker keeps its defaults and the host's
user data stays as it was.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Network

from components.config.types import RFC1918

DAEMON_CONFIG = "/etc/docker/daemon.json"

# docker0, and the network `docker compose` creates for the project.
DOCKER_DEFAULT_NETWORKS = (IPv4Network("172.17.0.0/16"), IPv4Network("172.18.0.0/16"))


def _candidates() -> Iterable[IPv4Network]:
    """Private /16s to move to, the least likely to be in use first."""
    yield from IPv4Network("172.16.0.0/12").subnets(new_prefix=16)
    yield from reversed(list(IPv4Network("10.0.0.0/8").subnets(new_prefix=16)))
    yield IPv4Network("192.168.0.0/16")


class NoFreeRange(ValueError):
    """Every private /16 overlaps a range the hosts must reach."""


def container_block(keep_clear: Sequence[IPv4Network]) -> IPv4Network | None:
    """The /16 Docker must use instead of its defaults, or None when they harm nothing."""
    if not any(n.overlaps(c) for n in DOCKER_DEFAULT_NETWORKS for c in keep_clear):
        return None
    for block in _candidates():
        if not any(block.overlaps(c) for c in keep_clear):
            return block
    raise NoFreeRange("no private /16 is free of the VPC and the private paths for Docker")


def daemon_config(block: IPv4Network) -> str:
    """dockerd's daemon.json: docker0 in the block's last /24, Compose networks (/24 each)
    from its first half, so the two never meet."""
    last = list(block.subnets(new_prefix=24))[-1]
    first_half = next(block.subnets(new_prefix=17))
    config = {
        "bip": f"{last.network_address + 1}/{last.prefixlen}",
        "default-address-pools": [{"base": str(first_half), "size": 24}],
    }
    return json.dumps(config, indent=2) + "\n"


def sender_ranges(
    vpc_cidr: str, private_path_cidrs: Sequence[str], allowed_cidrs: Sequence[str]
) -> list[IPv4Network]:
    """What the hosts must reach: the VPC (load balancers, Client VPN's translated clients,
    AWS endpoints), the on-premises ranges and the allow-lists' private entries."""
    ranges = [IPv4Network(vpc_cidr), *map(IPv4Network, private_path_cidrs)]
    ranges += [n for n in map(IPv4Network, allowed_cidrs) if any(n.overlaps(p) for p in RFC1918)]
    return ranges
