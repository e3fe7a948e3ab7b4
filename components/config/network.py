"""``orthgate:network``: the VPC, its subnets and the private paths into it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from ipaddress import IPv4Network
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from orthgate.components.address_ranges import NEVER_A_SENDER, RFC1918
from orthgate.components.config.base import Section
from orthgate.components.config.errors import Loc, Problem, duplicates, key_path
from orthgate.components.config.types import (
    DnsLabel,
    Ipv4Cidr,
    LogRetentionDays,
    Number,
    PublicIpv4,
    SchemaHint,
    StrictBool,
    int_range,
    one_of,
)
from orthgate.components.network_layout import (
    SUBNET_PREFIX_RANGE,
    LayoutError,
    SubnetLayout,
    plan_subnets,
)

# The virtual private gateway keeps AWS's default Amazon-side ASN; a customer gateway must
# use a different one or BGP will not peer.
AMAZON_SIDE_ASN = 64512

# AWS allows ten site-to-site VPN connections per virtual private gateway.
MAX_SITE_TO_SITE_VPNS = 10

# Interface endpoint services an Orthanc deployment can use; a typo here would otherwise
# only surface as a failed `pulumi up` minutes later. S3 is always a gateway endpoint.
INTERFACE_ENDPOINT_SERVICES = frozenset(
    {
        "autoscaling", "cloudformation", "ebs", "ec2", "ec2messages", "ecr.api", "ecr.dkr",
        "ecs", "ecs-agent", "ecs-telemetry", "elasticfilesystem", "elasticloadbalancing",
        "events", "kms", "lambda", "logs", "monitoring", "rds", "secretsmanager", "sns",
        "sqs", "ssm", "ssmmessages", "sts", "xray",
    }
)  # fmt: skip

_DX_GATEWAY_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# BGP ASNs nobody may use (RFC 6996, 7300, 5398, 6793) and those AWS reserves in some regions.
_RESERVED_ASNS = ((0, 0), (7224, 7224), (9059, 9059), (10124, 10124), (17943, 17943),
                  (23456, 23456), (64496, 64511), (65535, 65551), (65552, 131071),
                  (4294967295, 4294967295))  # fmt: skip


def _check_vpc_cidr(network: IPv4Network) -> IPv4Network:
    if not any(network.subnet_of(private) for private in RFC1918):
        raise ValueError(
            "must be a private (RFC 1918) range inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16"
        )
    if not 16 <= network.prefixlen <= 24:
        raise ValueError("must have a prefix from /16 to /24 (AWS VPC sizes)")
    return network


def _check_on_prem_cidr(network: IPv4Network) -> IPv4Network:
    if network.prefixlen < 8:
        raise ValueError(
            "is too broad: an on-premises range must be /8 or longer (it becomes a route "
            "and a source allowed to send plaintext DICOM)"
        )
    # Refused even with allowRoutableOnPremCidrs.
    for reserved in NEVER_A_SENDER:
        if network.overlaps(reserved):
            raise ValueError(
                f"overlaps {reserved}, a reserved range (loopback, link-local, multicast or "
                "'this network'), not a site's network"
            )
    return network


def is_private_range(network: IPv4Network) -> bool:
    """Inside one of the RFC 1918 ranges: what a private path normally carries."""
    return any(network.subnet_of(private) for private in RFC1918)


def _check_bgp_asn(asn: int) -> int:
    if asn == AMAZON_SIDE_ASN:
        raise ValueError(
            f"is the Amazon-side ASN of the virtual private gateway ({AMAZON_SIDE_ASN}); "
            "the customer gateway needs a different one, e.g. 65000"
        )
    for low, high in _RESERVED_ASNS:
        if low <= asn <= high:
            raise ValueError(
                "is a reserved ASN; use a private ASN (64512-65534 or 4200000000-4294967294) "
                "or a public ASN your organisation owns"
            )
    if not 1 <= asn <= 4294967294:
        raise ValueError("must be a BGP ASN from 1 to 4294967294")
    return asn


def _check_dx_gateway_id(value: str) -> str:
    if not _DX_GATEWAY_ID.fullmatch(value):
        raise ValueError(
            "must be a Direct Connect gateway id, a UUID like "
            "5f294f92-bafb-4011-916d-9b0bexample (see `aws directconnect "
            "describe-direct-connect-gateways`)"
        )
    return value


def _check_endpoint_service(value: str) -> str:
    if value == "s3":
        raise ValueError("is always present as a gateway endpoint; remove it from this list")
    if value not in INTERFACE_ENDPOINT_SERVICES:
        known = ", ".join(sorted(INTERFACE_ENDPOINT_SERVICES))
        raise ValueError(f"is not an interface endpoint service orthgate knows ({known})")
    return value


VpcCidr = Annotated[Ipv4Cidr, AfterValidator(_check_vpc_cidr)]
OnPremCidr = Annotated[Ipv4Cidr, AfterValidator(_check_on_prem_cidr)]
SubnetPrefix = Annotated[Number, int_range(*SUBNET_PREFIX_RANGE, "a subnet prefix length")]
EndpointService = Annotated[
    str,
    Field(strict=True),
    AfterValidator(_check_endpoint_service),
    SchemaHint(enum=sorted(INTERFACE_ENDPOINT_SERVICES)),
]

_ON_PREM_RULE = (
    "/8 or longer, not overlapping the VPC nor each other, and **private (RFC 1918)**: each "
    "becomes a static route to the virtual private gateway in every private route table (and "
    "the public one while an Orthanc host sits in a public subnet), the only on-premises "
    "routes the VPC has (what a site advertises over BGP never reaches a route table), and a "
    "source of plaintext DICOM: a security group cannot tell them arriving over the tunnel "
    "from the same addresses arriving from the Internet. Loopback, link-local, multicast, "
    "`0.0.0.0/8` and `240.0.0.0/4` are never a site"
)


class SiteToSiteVpnSettings(Section):
    """One IPsec site-to-site VPN to an on-premises customer gateway (a site's firewall)."""

    name: DnsLabel
    """A DNS label naming the site, unique among the VPNs."""
    customer_gateway_ip: PublicIpv4
    """The customer gateway's public IPv4 address (the site's firewall, reachable from the
    Internet), unique among the VPNs."""
    bgp_asn: Annotated[Number, AfterValidator(_check_bgp_asn)] = 65000
    """The customer gateway's BGP ASN, 1 to 4294967294: not 64512 (the Amazon side) nor a
    reserved ASN; a private ASN (64512-65534, 4200000000-4294967294) or a public ASN your
    organisation owns."""
    on_prem_cidrs: Annotated[
        list[OnPremCidr],
        Field(min_length=1, description=f"The site's networks, at least one: {_ON_PREM_RULE}."),
    ]
    static_routes_only: StrictBool = False
    """`false`: the tunnels speak BGP (with `bgpAsn`); `true`: no BGP, the connection gets a
    static route to each of `onPremCidrs`."""


class NetworkSettings(Section):
    """The VPC, its subnets in two or three availability zones, NAT, VPC endpoints and the
    private paths into it: site-to-site VPNs and Direct Connect."""

    vpc_cidr: VpcCidr
    """A private (RFC 1918) range, /16 to /24, large enough for the subnet layout."""
    availability_zones: Annotated[Number, one_of((2, 3), "the number of availability zones")] = 2
    """How many availability zones the subnets span: 2 or 3."""
    public_subnet_prefix: SubnetPrefix = 24
    """The public subnets' prefix length, /16 to /28."""
    private_subnet_prefix: SubnetPrefix = 22
    """The private subnets' prefix length, /16 to /28. With the Client VPN on, the private
    subnets must be /27 or larger **and** keep 20 free addresses after AWS's 5, orthgate's 2
    fixed addresses, one per interface endpoint, 2 for the index database and, for a fleet
    behind NAT, twice its maximum hosts per zone (AWS Client VPN target network rule)."""
    nat_gateways: Literal["none", "single", "perAz"] = "none"
    """`none`, `single` (one NAT gateway for every zone) or `perAz` (one per zone)."""
    interface_endpoints: list[EndpointService] = []
    """Interface endpoint services (`kms`, `logs`, `secretsmanager`, `ssm`, ...), unique;
    `s3` is always a gateway endpoint."""
    flow_log_retention_days: LogRetentionDays = 365
    """Days the VPC flow logs are kept: a retention CloudWatch Logs accepts."""
    site_to_site_vpns: Annotated[
        list[SiteToSiteVpnSettings], Field(max_length=MAX_SITE_TO_SITE_VPNS)
    ] = []
    """IPsec VPNs to on-premises sites, at most 10 (AWS: VPN connections per virtual
    private gateway)."""
    direct_connect_gateway_id: (
        Annotated[
            str,
            Field(strict=True),
            AfterValidator(_check_dx_gateway_id),
            SchemaHint(pattern=_DX_GATEWAY_ID.pattern),
        ]
        | None
    ) = None
    """An existing Direct Connect gateway (a UUID); needs `directConnectOnPremCidrs`."""
    direct_connect_on_prem_cidrs: Annotated[
        list[OnPremCidr],
        Field(
            description="The on-premises networks that reach the VPC over Direct Connect "
            f"(only with `directConnectGatewayId`, and required with it): {_ON_PREM_RULE}."
        ),
    ] = []
    # An on-premises range outside RFC 1918 (a hospital's own public block, or 100.64/10) is
    # a source of plaintext DICOM that a security group cannot tell from the same addresses
    # arriving over the Internet gateway. Only on explicit request, and only with Orthanc
    # off the Internet (orthgate:orthanc.placement: private).
    allow_routable_on_prem_cidrs: StrictBool = False
    """`true` admits on-premises ranges outside RFC 1918 (a hospital's own public block,
    `100.64.0.0/10`); it requires `orthgate:orthanc.placement: private`, so Orthanc has no
    Internet-facing address those ranges could also arrive at."""

    @property
    def private_path_cidrs(self) -> list[IPv4Network]:
        """On-premises ranges that reach the VPC privately (site-to-site VPN, Direct Connect)."""
        cidrs = {c for vpn in self.site_to_site_vpns for c in vpn.on_prem_cidrs}
        cidrs.update(self.direct_connect_on_prem_cidrs)
        return sorted(cidrs)

    @property
    def needs_vpn_gateway(self) -> bool:
        return bool(self.site_to_site_vpns or self.direct_connect_gateway_id)

    def on_prem_ranges(self, at: Loc) -> list[tuple[Loc, IPv4Network]]:
        """Every on-premises range with the key path it was given at."""
        return [
            ((*at, "siteToSiteVpns", i, "onPremCidrs", j), cidr)
            for i, vpn in enumerate(self.site_to_site_vpns)
            for j, cidr in enumerate(vpn.on_prem_cidrs)
        ] + [
            ((*at, "directConnectOnPremCidrs", j), cidr)
            for j, cidr in enumerate(self.direct_connect_on_prem_cidrs)
        ]

    def subnet_layout(self) -> SubnetLayout:
        """The subnets SecureNetwork declares (raises LayoutError when they do not fit)."""
        return plan_subnets(
            self.vpc_cidr,
            self.availability_zones,
            self.public_subnet_prefix,
            self.private_subnet_prefix,
        )

    def layout_if_valid(self) -> SubnetLayout | None:
        """The subnet layout, or None while ``problems`` refuses it."""
        try:
            return self.subnet_layout()
        except LayoutError:
            return None

    def problems(self, at: Loc) -> Iterator[Problem]:
        """Rules that involve more than one key; field rules have already passed."""
        try:
            self.subnet_layout()
        except LayoutError as error:
            yield Problem((*at, "vpcCidr"), str(error), str(self.vpc_cidr))

        yield from duplicates((*at, "interfaceEndpoints"), self.interface_endpoints)
        vpns = (*at, "siteToSiteVpns")
        yield from duplicates(vpns, [v.name for v in self.site_to_site_vpns], "name")
        yield from duplicates(
            vpns, [str(v.customer_gateway_ip) for v in self.site_to_site_vpns], "customerGatewayIp"
        )

        if self.direct_connect_gateway_id and not self.direct_connect_on_prem_cidrs:
            yield Problem(
                (*at, "directConnectOnPremCidrs"),
                "list the on-premises ranges that reach the VPC over Direct Connect: they are "
                "the sources allowed to send plaintext DICOM",
                [],
            )
        if self.direct_connect_on_prem_cidrs and not self.direct_connect_gateway_id:
            yield Problem(
                (*at, "directConnectOnPremCidrs"),
                "only has a meaning with directConnectGatewayId set",
                [str(c) for c in self.direct_connect_on_prem_cidrs],
            )

        seen: list[tuple[Loc, IPv4Network]] = []
        for loc, cidr in self.on_prem_ranges(at):
            if not self.allow_routable_on_prem_cidrs and not is_private_range(cidr):
                yield Problem(
                    loc,
                    "is not a private (RFC 1918) range: plaintext DICOM from it would be "
                    "admitted from the Internet too whenever the tunnel is down. Use the "
                    "site's private range, or set orthgate:network.allowRoutableOnPremCidrs: "
                    "true together with orthgate:orthanc.placement: private",
                    str(cidr),
                )
            if cidr.overlaps(self.vpc_cidr):
                yield Problem(loc, f"overlaps the VPC {self.vpc_cidr}", str(cidr))
            for other_loc, other in seen:
                if cidr.overlaps(other):
                    yield Problem(loc, f"overlaps {other} at {key_path(other_loc)}", str(cidr))
            seen.append((loc, cidr))
