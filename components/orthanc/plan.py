"""The Orthanc tier decided from plain values: where hosts and load balancers sit, which
addresses are fixed, which listeners exist, and which security group admits whom.

Pure (no Pulumi): the component only declares what this module decides, and tests check
the decisions on their own, the way ``network_layout`` is tested apart from SecureNetwork.

Two shapes:
- a single host: one instance at a fixed address, its own security group admitting every
  allowed source directly;
- a fleet: hosts in an Auto Scaling group with no fixed address, behind Network Load
  Balancers that pass TCP through (nginx on each host keeps terminating mutual TLS). The
  allow-lists sit on the load balancers' security groups; the hosts admit only those
  groups, which AWS honours with client IP preservation on (ELB guide, "Update the security
  groups for your Network Load Balancer").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Literal

from orthgate.components.config.orthanc import HTTPS_PORT, ORTHANC_DICOM_PORT, OrthancSettings
from orthgate.components.network_layout import (
    FIXED_BALANCER_OFFSET,
    FIXED_HOST_OFFSET,
    fixed_address,
)

Tier = Literal["public", "private"]
Kind = Literal["dicom-tls", "dicom-plain", "https"]
# Security groups a rule can land on.
HOST = "host"
PUBLIC_LB = "lb-public"
INTERNAL_LB = "lb-internal"
# The source key of Client VPN's security group (it source-NATs its clients).
CLIENT_VPN_SOURCE = "client-vpn"

# Health checks: a host that stops answering leaves within 30 s; a new one takes traffic
# after 30 s of answering.
HEALTH_CHECK_INTERVAL_SECONDS = 10
HEALTH_CHECK_TIMEOUT_SECONDS = 5
HEALTHY_THRESHOLD = 3
UNHEALTHY_THRESHOLD = 3
# A leaving host keeps its open associations this long (a study in flight), then the load
# balancer resets them and the sender retries on another host.
DEREGISTRATION_DELAY_SECONDS = 300

_DESCRIPTIONS: dict[Kind, str] = {
    "dicom-tls": "DICOM TLS",
    "dicom-plain": "DICOM plaintext",
    "https": "HTTPS",
}


@dataclass(frozen=True)
class Source:
    """Who a rule admits: a CIDR, or a security group known by a stable key."""

    label: str  # goes into resource names: never derived from anything that changes
    cidr: str | None = None
    group: str | None = None
    # A proxy site's address: earlier releases declared its rule under the site's own
    # component, under a name kept as an alias (so an upgrade replaces nothing).
    proxy_site: str | None = None


@dataclass(frozen=True)
class Rule:
    group: str  # HOST, PUBLIC_LB or INTERNAL_LB
    kind: Kind
    port: int
    source: Source
    why: str

    @property
    def name(self) -> str:
        # Single-host rule names are the ones earlier releases used: no replacement.
        prefix = "" if self.group == HOST else f"{self.group}-"
        return f"{prefix}{self.kind}-from-{self.source.label}"

    @property
    def description(self) -> str:
        return f"{_DESCRIPTIONS[self.kind]}, {self.why}"


@dataclass(frozen=True)
class HealthCheck:
    protocol: Literal["TCP", "HTTPS"]
    port: str  # "traffic-port" or a port number
    path: str | None = None
    matcher: str | None = None  # HTTP status codes that mean healthy


# What proves a host can take traffic: every kind (DICOM TLS, plaintext DICOM, HTTPS) passes
# nginx, then Orthanc. A TCP check on nginx's port would pass with Orthanc dead behind it,
# so each checks HTTPS through nginx to Orthanc's REST API instead: Orthanc answers 401 to a
# request without credentials (authentication is on), and nginx answers 502 when Orthanc is
# gone. (An NLB accepts 200-599 as success codes, ELB API reference, "Matcher".)
THROUGH_NGINX = HealthCheck("HTTPS", str(HTTPS_PORT), path="/system", matcher="401")


@dataclass(frozen=True)
class Listener:
    kind: Kind
    port: int  # the same port on the load balancer and on the host

    @property
    def health(self) -> HealthCheck:
        return THROUGH_NGINX

    @property
    def key(self) -> str:
        return {"dicom-tls": "tls", "dicom-plain": "plain", "https": "https"}[self.kind]


@dataclass(frozen=True)
class BalancerPlan:
    role: Literal["public", "internal"]
    tier: Tier
    zones: tuple[int, ...]
    # Internal: one fixed private address per zone, what private-path senders configure.
    # Public: none (each zone gets an Elastic IP instead).
    addresses: tuple[str, ...]
    listeners: tuple[Listener, ...]

    @property
    def group(self) -> str:
        return PUBLIC_LB if self.role == "public" else INTERNAL_LB


@dataclass(frozen=True)
class OrthancPlan:
    fleet: bool
    host_tier: Tier
    host_zones: tuple[int, ...]
    # Fleet hosts in public subnets (no NAT to pull images through) get a public address for
    # egress; their security group still admits nothing but the load balancers.
    hosts_need_public_ip: bool
    fixed_host_address: str | None  # single host only
    balancers: tuple[BalancerPlan, ...]
    rules: tuple[Rule, ...]
    # Where a direct-TLS source from the Internet (a proxy site) is admitted.
    direct_tls_group: str
    # Private addresses senders on private paths use (and the certificate names).
    private_endpoints: tuple[str, ...]

    def balancer(self, role: str) -> BalancerPlan | None:
        return next((b for b in self.balancers if b.role == role), None)

    def rules_for(self, group: str) -> list[Rule]:
        return [r for r in self.rules if r.group == group]


def _label(cidr: str) -> str:
    return cidr.replace("/", "-")


def plan_orthanc(
    settings: OrthancSettings,
    *,
    public_subnets: Sequence[str],
    private_subnets: Sequence[str],
    private_path_cidrs: Sequence[str],
    private_source_groups: Sequence[str],
    nat_gateways: str,
    proxy_sources: Sequence[tuple[str, str]] = (),
) -> OrthancPlan:
    """Decide the tier. ``settings`` must have environment defaults applied.

    ``proxy_sources``: (site, CIDR) of every DICOM proxy site, direct TLS sources too.
    Every rule is named by what it admits (group, kind, source), never by who asked for
    it: a range moving from one site to another, or to ``dicomAllowedCidrs``, keeps its
    rule instead of a new one colliding with the old (AWS refuses a duplicate rule).
    """
    tls = settings.dicom_tls_port
    public = settings.placement == "public"
    direct = [Source(_label(str(c)), cidr=str(c)) for c in settings.dicom_allowed_cidrs]
    direct += [Source(_label(c), cidr=c, proxy_site=site) for site, c in proxy_sources]
    web = [Source(_label(str(c)), cidr=str(c)) for c in settings.web_allowed_cidrs]
    private = [Source(_label(c), cidr=c) for c in private_path_cidrs] + [
        Source(name, group=name) for name in private_source_groups
    ]

    def allow_direct(group: str) -> list[Rule]:
        rules = [
            Rule(
                group,
                "dicom-tls",
                tls,
                s,
                f"proxy site {s.proxy_site}" if s.proxy_site else "direct",
            )
            for s in direct
        ]
        rules += [Rule(group, "https", HTTPS_PORT, s, "web users") for s in web]
        return rules

    def allow_private(group: str) -> list[Rule]:
        rules = []
        for source in private:
            why = f"private path ({source.label})"
            rules += [
                Rule(group, "dicom-tls", tls, source, why),
                Rule(group, "dicom-plain", ORTHANC_DICOM_PORT, source, why),
                Rule(group, "https", HTTPS_PORT, source, why),
            ]
        return rules

    if not settings.is_fleet:
        tier: Tier = "public" if public else "private"
        subnet = IPv4Network((public_subnets if public else private_subnets)[0])
        address = fixed_address(subnet, FIXED_HOST_OFFSET)
        return OrthancPlan(
            fleet=False,
            host_tier=tier,
            host_zones=(0,),
            hosts_need_public_ip=False,
            fixed_host_address=address,
            balancers=(),
            rules=tuple(_unique(allow_direct(HOST) + allow_private(HOST))),
            direct_tls_group=HOST,
            private_endpoints=(address,),
        )

    zones = tuple(range(len(private_subnets)))
    host_tier: Tier = "private" if nat_gateways != "none" else "public"
    internal = BalancerPlan(
        role="internal",
        tier="private",
        zones=zones,
        addresses=tuple(
            fixed_address(IPv4Network(private_subnets[z]), FIXED_BALANCER_OFFSET) for z in zones
        ),
        listeners=(
            Listener("dicom-tls", tls),
            Listener("dicom-plain", ORTHANC_DICOM_PORT),
            Listener("https", HTTPS_PORT),
        ),
    )
    balancers = [internal]
    rules = allow_private(INTERNAL_LB)
    if public:
        balancers.insert(
            0,
            BalancerPlan(
                role="public",
                tier="public",
                zones=zones,
                addresses=(),
                listeners=(Listener("dicom-tls", tls), Listener("https", HTTPS_PORT)),
            ),
        )
        rules += allow_direct(PUBLIC_LB)
    else:
        rules += allow_direct(INTERNAL_LB)
    # The hosts admit the load balancers, on each port a listener forwards (health checks
    # included: they come from the load balancer's nodes on the same ports).
    for balancer in balancers:
        source = Source(balancer.group, group=balancer.group)
        for listener in balancer.listeners:
            rules.append(
                Rule(HOST, listener.kind, listener.port, source, f"{balancer.role} load balancer")
            )
    return OrthancPlan(
        fleet=True,
        host_tier=host_tier,
        host_zones=zones,
        hosts_need_public_ip=host_tier == "public",
        fixed_host_address=None,
        balancers=tuple(balancers),
        rules=tuple(_unique(rules)),
        direct_tls_group=PUBLIC_LB if public else INTERNAL_LB,
        private_endpoints=internal.addresses,
    )


def _unique(rules: list[Rule]) -> list[Rule]:
    """One rule per (group, port, source): AWS refuses a duplicate rule."""
    seen: dict[tuple[str, int, str], Rule] = {}
    for rule in rules:
        seen.setdefault((rule.group, rule.port, rule.source.label), rule)
    return list(seen.values())
