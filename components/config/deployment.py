"""Rules on what a stack will deploy, counted on the very plan the program declares from.

Field and section rules say whether each value makes sense; these say whether the whole
would be accepted by AWS (rules per security group, free addresses in a subnet) and whether
it opens a port wider than an operator can have meant. They read the Orthanc tier's plan
(``components.orthanc.plan``), so the count is the program's own, not a second estimate.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from ipaddress import IPv4Network, collapse_addresses
from typing import TYPE_CHECKING

from orthgate.components.address_ranges import NOT_INTERNET_ROUTABLE
from orthgate.components.config.errors import Loc, Problem, key_path
from orthgate.components.config.quotas import DEFAULT_RULES_PER_SECURITY_GROUP
from orthgate.components.render.docker_networks import NoFreeRange, container_block, sender_ranges

if TYPE_CHECKING:
    from orthgate.components.config.dicom_proxy import DicomProxySettings
    from orthgate.components.config.settings import Settings
    from orthgate.components.orthanc.plan import OrthancPlan, Rule

# One port is never opened to more of the Internet than a single /8, the widest entry an
# allow-list takes: a union of wide entries is the whole Internet by instalments.
MAX_INTERNET_ADDRESSES_PER_PORT = 2**24
_IPV4_ADDRESSES = 2**32

# AWS Client VPN: "The subnet must have at least 20 available IP addresses" and a /27 or
# larger block (AWS Client VPN Administrator Guide, "Target networks").
CLIENT_VPN_MIN_SUBNET_PREFIX = 27
CLIENT_VPN_FREE_ADDRESSES = 20
# AWS keeps the first four addresses and the last of every subnet (VPC User Guide).
AWS_RESERVED_PER_SUBNET = 5
# Addresses an RDS instance may hold in one subnet: the instance, and during a modification
# or failover its replacement.
RDS_ADDRESSES_PER_SUBNET = 2

_GROUP_NAMES = {
    "host": "Orthanc's host security group",
    "lb-public": "the public load balancer's security group",
    "lb-internal": "the internal load balancer's security group",
}
_PORT_NAMES = {"dicom-tls": "DICOM TLS", "dicom-plain": "plaintext DICOM", "https": "HTTPS"}


def proxy_sources(proxies: Sequence[DicomProxySettings]) -> list[tuple[str, str]]:
    """(site, CIDR) of every proxy site's egress address: direct DICOM TLS sources."""
    return [(site.name, str(cidr)) for site in proxies for cidr in site.source_cidrs]


def planned_orthanc(settings: Settings) -> OrthancPlan | None:
    """The plan the program will declare, or None while the subnet layout is refused."""
    # Imported here: components.orthanc imports the configuration it is planned from.
    from orthgate.components.orthanc.plan import CLIENT_VPN_SOURCE, plan_orthanc

    network = settings.network
    layout = network.layout_if_valid()
    if layout is None:
        return None  # refused by NetworkSettings.problems
    return plan_orthanc(
        settings.orthanc,
        public_subnets=[str(c) for c in layout.public],
        private_subnets=[str(c) for c in layout.private],
        private_path_cidrs=[str(c) for c in network.private_path_cidrs],
        private_source_groups=[CLIENT_VPN_SOURCE] if settings.client_vpn.enabled else [],
        nat_gateways=network.nat_gateways,
        proxy_sources=proxy_sources(settings.dicom_proxies),
    )


def deployment_problems(settings: Settings) -> Iterator[Problem]:
    yield from _routable_on_prem(settings)
    yield from _routes_per_table(settings)
    yield from _container_networks(settings)
    yield from _client_vpn_subnets(settings)
    plan = planned_orthanc(settings)
    if plan is None:
        return
    origins = _origins(settings)
    yield from _rules_per_group(settings, plan, origins)
    yield from _internet_exposure(plan, origins)


def _routable_on_prem(settings: Settings) -> Iterator[Problem]:
    if settings.network.allow_routable_on_prem_cidrs and settings.orthanc.placement != "private":
        yield Problem(
            ("network", "allowRoutableOnPremCidrs"),
            "needs orthgate:orthanc.placement: private. A security group cannot tell an "
            "on-premises range arriving over the tunnel from the same addresses arriving "
            "from the Internet, so Orthanc must have no Internet-facing address at all",
            True,
        )


# Besides one static route per on-premises range, a table holds its default route (Internet
# gateway or NAT) and, counted to be safe, the S3 gateway endpoint's.
_ROUTES_BESIDES_ON_PREM = 2


def _routes_per_table(settings: Settings) -> Iterator[Problem]:
    ranges = settings.network.on_prem_ranges(("network",))
    quota = settings.quotas.routes_per_route_table
    if len(ranges) + _ROUTES_BESIDES_ON_PREM <= quota:
        return
    yield Problem(
        ("network",),
        f"lists {len(ranges)} on-premises ranges, each a static route in every route table; "
        f"with the default and S3 routes that passes the account's {quota} routes per route "
        "table (AWS's default quota is 50): use fewer, wider ranges, or have AWS raise the "
        "quota and set orthgate:quotas.routesPerRouteTable",
        len(ranges),
    )


def _container_networks(settings: Settings) -> Iterator[Problem]:
    orthanc, network = settings.orthanc, settings.network
    senders = sender_ranges(
        [str(c) for c in network.private_path_cidrs],
        [str(c) for c in (*orthanc.dicom_allowed_cidrs, *orthanc.web_allowed_cidrs)],
    )
    try:
        container_block(network.vpc_cidr, senders)
    except NoFreeRange:
        yield Problem(
            ("network",),
            "the VPC, the on-premises ranges and the allow-lists' private entries overlap "
            "every private /20: Docker on the Orthanc hosts needs one of its own for its "
            "bridge networks (a sender inside them would get no reply)",
        )


def _origins(settings: Settings) -> dict[str, Loc]:
    """Which list each rule source comes from (the first, where a range is in several)."""
    origins: dict[str, Loc] = {}
    orthanc = settings.orthanc
    lists: list[tuple[Loc, Sequence[IPv4Network]]] = [
        (("orthanc", "dicomAllowedCidrs"), orthanc.dicom_allowed_cidrs),
        (("orthanc", "webAllowedCidrs"), orthanc.web_allowed_cidrs),
    ]
    lists += [
        (("dicomProxies", i, "sourceCidrs"), site.source_cidrs)
        for i, site in enumerate(settings.dicom_proxies)
    ]
    lists += [
        (("network", "siteToSiteVpns", i, "onPremCidrs"), vpn.on_prem_cidrs)
        for i, vpn in enumerate(settings.network.site_to_site_vpns)
    ]
    lists.append(
        (("network", "directConnectOnPremCidrs"), settings.network.direct_connect_on_prem_cidrs)
    )
    for loc, cidrs in lists:
        # A list of lists (every site's ranges) counts as one key: the sum is what matters.
        whole = loc[: next((i for i, part in enumerate(loc) if isinstance(part, int)), len(loc))]
        for cidr in cidrs:
            origins.setdefault(str(cidr), whole)
    return origins


_ON_PREM_ORIGINS = {("network", "siteToSiteVpns"), ("network", "directConnectOnPremCidrs")}


def _origin(rule: Rule, origins: dict[str, Loc]) -> Loc:
    if rule.source.cidr is not None:
        return origins.get(rule.source.cidr, ("orthanc",))
    if rule.source.group in _GROUP_NAMES:
        return ("orthanc",)  # a load balancer admitted by the hosts
    return ("clientVpn",)


def _breakdown(counts: Counter[Loc], unit: str) -> str:
    parts = [
        f"{n:,} {unit if n != 1 else unit.removesuffix('s')} from {key_path(loc)}"
        for loc, n in counts.most_common(4)
    ]
    if len(counts) > 4:
        parts.append(f"{sum(n for _, n in counts.most_common()[4:]):,} from other keys")
    return ", ".join(parts)


def _rules_per_group(
    settings: Settings, plan: OrthancPlan, origins: dict[str, Loc]
) -> Iterator[Problem]:
    quota = settings.quotas.inbound_rules_per_security_group
    for group in sorted({rule.group for rule in plan.rules}):
        rules = plan.rules_for(group)
        if len(rules) <= quota:
            continue
        counts = Counter(_origin(rule, origins) for rule in rules)
        loc = counts.most_common(1)[0][0]
        raised = " (as raised)" if quota != DEFAULT_RULES_PER_SECURITY_GROUP else ""
        yield Problem(
            loc,
            f"{_GROUP_NAMES.get(group, group)} would get {len(rules)} inbound rules "
            f"({_breakdown(counts, 'rules')}); the account allows {quota}{raised}, "
            "AWS's default quota 'Inbound or outbound rules per security group' being 60. "
            "Each private-path range takes 3 rules (DICOM TLS, plaintext DICOM, HTTPS). List "
            "fewer, wider ranges, or have AWS raise the quota and set "
            "orthgate:quotas.inboundRulesPerSecurityGroup",
            len(rules),
        )


def _internet_exposure(plan: OrthancPlan, origins: dict[str, Loc]) -> Iterator[Problem]:
    by_port: dict[tuple[str, int], list[Rule]] = {}
    for rule in plan.rules:
        if rule.source.cidr is not None:
            by_port.setdefault((rule.kind, rule.port), []).append(rule)
    for (kind, port), rules in sorted(by_port.items()):
        routable: dict[str, Rule] = {}
        for rule in rules:
            cidr = IPv4Network(rule.source.cidr)
            # An on-premises range outside RFC 1918 comes only with Orthanc off the Internet
            # (allowRoutableOnPremCidrs needs placement: private): it arrives by the tunnel.
            if _origin(rule, origins) in _ON_PREM_ORIGINS:
                continue
            if not any(cidr.subnet_of(n) for n in NOT_INTERNET_ROUTABLE):
                routable.setdefault(str(cidr), rule)
        union = list(collapse_addresses(IPv4Network(c) for c in routable))
        total = sum(n.num_addresses for n in union)
        if total <= MAX_INTERNET_ADDRESSES_PER_PORT:
            continue
        counts = Counter(_origin(rule, origins) for rule in routable.values())
        yield Problem(
            counts.most_common(1)[0][0],
            f"together the allow-lists open {_PORT_NAMES[kind]} (port {port}) to {total:,} "
            f"Internet addresses ({100 * total / _IPV4_ADDRESSES:.1f} % of IPv4; "
            f"{_breakdown(counts, 'ranges')}); orthgate opens a port to at most "
            f"{MAX_INTERNET_ADDRESSES_PER_PORT:,} (one /8). List the sites' own egress "
            "addresses",
            total,
        )


def _client_vpn_subnets(settings: Settings) -> Iterator[Problem]:
    if not settings.client_vpn.enabled:
        return
    network = settings.network
    prefix = network.private_subnet_prefix
    at: Loc = ("network", "privateSubnetPrefix")
    if prefix > CLIENT_VPN_MIN_SUBNET_PREFIX:
        yield Problem(
            at,
            f"Client VPN associates with the private subnets, which AWS requires to be "
            f"/{CLIENT_VPN_MIN_SUBNET_PREFIX} or larger: use {CLIENT_VPN_MIN_SUBNET_PREFIX} "
            "or less",
            prefix,
        )
        return
    orthanc = settings.orthanc
    # From network_layout: every subnet keeps base+10 and base+11 for Orthanc's fixed
    # addresses.
    taken = {"AWS's own": AWS_RESERVED_PER_SUBNET, "orthgate's fixed addresses": 2}
    if network.interface_endpoints:
        taken["interface endpoints"] = len(network.interface_endpoints)
    if orthanc.index == "postgresql":
        taken["the index database"] = RDS_ADDRESSES_PER_SUBNET
    if orthanc.is_fleet and network.nat_gateways != "none":
        _, _, most = orthanc.fleet_sizes
        # The fleet at its maximum, twice over while an instance refresh launches first.
        taken["Orthanc hosts"] = 2 * math.ceil(most / network.availability_zones)
    free = 2 ** (32 - prefix) - sum(taken.values())
    if free < CLIENT_VPN_FREE_ADDRESSES:
        used = ", ".join(f"{n} for {what}" for what, n in taken.items())
        yield Problem(
            at,
            f"leaves {free} free addresses in each private subnet ({used}); a Client VPN "
            f"association needs {CLIENT_VPN_FREE_ADDRESSES} (AWS Client VPN target network "
            "rule): use a larger private subnet",
            prefix,
        )
