"""``orthgate:clientVpn``: AWS Client VPN for a handful of workstations."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from ipaddress import IPv4Network
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from orthgate.components.address_ranges import RFC1918
from orthgate.components.config.base import Section, default_text
from orthgate.components.config.certificates import reissue_suffix
from orthgate.components.config.errors import Loc, Problem, duplicates, key_path
from orthgate.components.config.orthanc import AllowedCidr
from orthgate.components.config.quotas import QuotaSettings
from orthgate.components.config.serials import CertificateSerial
from orthgate.components.config.types import (
    DnsLabel,
    DomainName,
    Ipv4Cidr,
    LogRetentionDays,
    Number,
    SchemaHint,
    StrictBool,
    int_range,
    one_of,
)

# AWS sizes the client range at twice the concurrent connections; /22 suits about 512.
CLIENT_CIDR_PREFIXES = (12, 22)

# Besides the extra ranges, ClientVpn authorizes up to 3 Orthanc subnets and the VPC
# resolver, and each association holds the VPC's own route (quotas: orthgate:quotas).
_FIXED_AUTHORIZATIONS = 4
_FIXED_ROUTES = 1


def _check_client_cidr(network: IPv4Network) -> IPv4Network:
    # Client addresses are the VPN's own; public space would shadow real Internet hosts.
    if not any(network.subnet_of(private) for private in RFC1918):
        raise ValueError(
            "must be a private (RFC 1918) range inside 10.0.0.0/8, 172.16.0.0/12 or "
            "192.168.0.0/16, e.g. 192.168.0.0/22"
        )
    low, high = CLIENT_CIDR_PREFIXES
    if not low <= network.prefixlen <= high:
        raise ValueError(
            f"must have a prefix from /{low} to /{high} (AWS Client VPN); e.g. 192.168.0.0/22"
        )
    return network


# ClientLoginBannerOptions (EC2 API reference): UTF-8 text, at most 1400 characters. Counted
# here in UTF-8 bytes, the reading that can never be too long for AWS.
MAX_BANNER_BYTES = 1400


# What a banner must not hold: control characters (line breaks and tabs lay it out), lone
# surrogates (not text at all), the line and paragraph separators, and the bidirectional
# embeddings, overrides and isolates, which make text read otherwise than it is (Unicode
# UAX #9; CVE-2021-42574). Joiners and soft hyphens, which scripts need, stay.
_BANNER_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
_BIDI_CONTROLS = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))


def _check_banner(value: str) -> str:
    # Line breaks and tabs lay the banner out; anything else invisible would reach the
    # client's window (or a terminal showing the config) as it is.
    bad = sorted(
        {
            c
            for c in value
            if (unicodedata.category(c) in _BANNER_REFUSED_CATEGORIES and c not in "\n\r\t")
            or c in _BIDI_CONTROLS
        }
    )
    if bad:
        shown = ", ".join(f"U+{ord(c):04X}" for c in bad)
        raise ValueError(
            f"contains control or direction-changing characters ({shown}); only printable "
            "text, line breaks and tabs"
        )
    size = len(value.encode("utf-8"))
    if size > MAX_BANNER_BYTES:
        raise ValueError(
            f"is {size} bytes in UTF-8; AWS allows at most {MAX_BANNER_BYTES} "
            "(accented letters take two bytes or more)"
        )
    return value


ClientCidr = Annotated[Ipv4Cidr, AfterValidator(_check_client_cidr)]

# AWS Client VPN quotas (Administrator Guide, "AWS Client VPN quotas"): "Entries in a client
# certificate revocation list for Client VPN endpoints", 20,000, not adjustable. Hence a
# constant, not a key of orthgate:quotas.
MAX_REVOKED_CERTIFICATES = 20_000

# The ClientVpn component names its CA's and its server certificate's resources
# <component>-ca-... and <component>-server-..., and a workstation's <component>-<label>-...
# (see workstation_label): no workstation may be called like one of these.
CA_LABEL = "ca"
SERVER_LABEL = "server"


def workstation_label(workstation: str, generation: int) -> str:
    """What names a workstation's key, request and certificate resources. ``generation`` is
    how many of its certificates were revoked: each revocation renames them, so that
    ``pulumi up`` issues a new key and certificate and a revoked certificate is never the
    current one. Generation 0 keeps the names certificates had before revocation existed."""
    return workstation + reissue_suffix(generation)


class RevokedWorkstationCertificate(Section):
    """A workstation certificate the endpoint must refuse once the list is imported (see
    [Running it](#running-it)). The workstation may be a current one (its key, certificate
    and profile are then re-issued) or a retired one."""

    workstation: DnsLabel
    """The workstation's name (a DNS label), current or retired."""
    serial: CertificateSerial
    """The certificate's serial in hexadecimal **in quotes** (YAML would read an all-digit
    serial as a decimal number), as `clientVpnCertificateSerials` and `openssl x509 -noout
    -serial` print it (colons and a `0x` prefix are accepted), unique."""


ClientVpnBanner = Annotated[
    str, Field(strict=True), AfterValidator(_check_banner), SchemaHint(maxLength=MAX_BANNER_BYTES)
]


class ClientVpnSettings(Section):
    """AWS Client VPN for a handful of workstations: each gets its own client certificate
    and profile."""

    enabled: StrictBool = False
    """Everything below applies only when `true`."""
    client_cidr: Annotated[ClientCidr | None, default_text("required when `enabled: true`")] = None
    """A private (RFC 1918) IPv4 CIDR from /12 to /22 (AWS sizes it at twice the concurrent
    connections: /22 for about 512); must not overlap the VPC, its subnets, any on-premises
    range or `extraAuthorizedCidrs`; changing it replaces the endpoint."""
    workstations: Annotated[list[DnsLabel], default_text("required when `enabled: true`")] = []
    """At least one DNS label, unique, not `server` or `ca` (the VPN's own certificates use
    those names): each gets a client certificate `<name>.<certificateDomain>` (at most 64
    characters, X.509's limit on a common name) and a profile."""
    # AWS refuses a server certificate without a domain name.
    certificate_domain: DomainName = "clientvpn.orthgate.internal"
    """A dotted DNS domain, not an IP address, at most 57 characters: the server certificate
    is `server.<certificateDomain>` (AWS refuses one without a domain)."""
    certificate_validity_days: Annotated[
        Number, int_range(90, 825, "a certificate lifetime in days")
    ] = 365
    """90 to 825, server and client certificates; renewed by `pulumi up` in their last 30
    days."""
    associated_subnets: Annotated[Number, int_range(1, 3, "a number of subnets")] = 1
    """1 to `availabilityZones`: private subnets associated, one per zone. The main cost:
    about $0.10 per association-hour in us-east-1, plus about $0.05 per connection-hour."""
    session_timeout_hours: Annotated[
        Number, one_of((8, 10, 12, 24), "a session timeout AWS offers, in hours")
    ] = 8
    """8, 10, 12 or 24."""
    transport_protocol: Literal["udp", "tcp"] = "udp"
    """`udp` or `tcp` (fixed once created)."""
    vpn_port: Annotated[Number, one_of((443, 1194), "a port AWS Client VPN listens on")] = 443
    """443 or 1194."""
    log_retention_days: LogRetentionDays = 365
    """Days the connection logs (KMS-encrypted) are kept: a retention CloudWatch Logs
    accepts."""
    extra_authorized_cidrs: list[AllowedCidr] = []
    """Further ranges workstations may reach (beyond Orthanc's subnets and the VPC
    resolver): each inside the VPC, or inside an on-premises range of `orthgate:network`
    (`siteToSiteVpns[].onPremCidrs`, `directConnectOnPremCidrs`), which then gets a Client
    VPN route through every associated subnet; any other range is refused (the VPC routes
    nowhere else), `0.0.0.0/0` too. At most 196 entries (AWS: 200 authorization rules per
    endpoint), 99 of them outside the VPC (100 routes per association)."""
    login_banner: ClientVpnBanner | None = None
    """At most 1400 bytes of UTF-8 (AWS's limit, counted so it can never be too long), no
    control characters but line breaks and tabs; shown by AWS-provided clients."""
    revoked_certificates: list[RevokedWorkstationCertificate] = []
    """Certificates the endpoint refuses once the list is imported. At most 20,000 entries
    (AWS Client VPN quotas: entries in a client certificate revocation list, not
    adjustable). Each entry that names a current workstation re-issues that workstation's
    key, certificate and profile. A workstation whose re-issued certificate would get the
    same name as another workstation (`ws` revoked once is named like a workstation called
    `ws-r1`) is refused: rename one of them. `pulumi up` also stops when an entry lists the
    serial of another workstation's current certificate (a mix-up that would lock that
    workstation out)."""

    def certificate_generation(self, workstation: str) -> int:
        """How many of ``workstation``'s certificates were revoked: each re-issues its key."""
        return sum(1 for r in self.revoked_certificates if r.workstation == workstation)

    def problems(
        self,
        at: Loc,
        *,
        vpc_cidr: IPv4Network,
        zone_count: int,
        on_prem: list[tuple[Loc, IPv4Network]],
        quotas: QuotaSettings,
    ) -> Iterator[Problem]:
        if not self.enabled:
            return
        if self.client_cidr is None:
            yield Problem(
                (*at, "clientCidr"),
                "is required when the Client VPN is enabled, e.g. 192.168.0.0/22 (a range "
                "used nowhere else: not in the VPC nor on-premises)",
            )
        if not self.workstations:
            yield Problem(
                (*at, "workstations"),
                "list at least one workstation (a DNS label); each gets its own certificate "
                "and profile",
                [],
            )
        yield from duplicates((*at, "workstations"), self.workstations)
        if self.associated_subnets > zone_count:
            yield Problem(
                (*at, "associatedSubnets"),
                f"cannot exceed orthgate:network.availabilityZones ({zone_count}): one "
                "association per zone's private subnet",
                self.associated_subnets,
            )
        yield from duplicates(
            (*at, "extraAuthorizedCidrs"), [str(c) for c in self.extra_authorized_cidrs]
        )
        yield from self._revocation_problems(at)
        yield from self._reach_problems(at, vpc_cidr, on_prem, quotas)
        if self.client_cidr is None:
            return
        client = self.client_cidr
        others: list[tuple[str, IPv4Network]] = [("the VPC (orthgate:network.vpcCidr)", vpc_cidr)]
        others += [(key_path(loc), cidr) for loc, cidr in on_prem]
        others += [
            (key_path((*at, "extraAuthorizedCidrs", i)), cidr)
            for i, cidr in enumerate(self.extra_authorized_cidrs)
        ]
        for label, cidr in others:
            if client.overlaps(cidr):
                yield Problem(
                    (*at, "clientCidr"),
                    f"overlaps {cidr}, {label}: client addresses must be routable to nothing else",
                    str(client),
                )

    def _revocation_problems(self, at: Loc) -> Iterator[Problem]:
        revoked = self.revoked_certificates
        if len(revoked) > MAX_REVOKED_CERTIFICATES:
            yield Problem(
                (*at, "revokedCertificates"),
                f"lists {len(revoked)} certificates; AWS Client VPN takes at most "
                f"{MAX_REVOKED_CERTIFICATES} entries in a revocation list (a quota AWS "
                "does not raise)",
                len(revoked),
            )
        yield from duplicates((*at, "revokedCertificates"), [r.serial for r in revoked], "serial")
        own = {CA_LABEL: "CA", SERVER_LABEL: "server certificate"}
        named: dict[str, str] = {}  # label -> the first workstation with it
        for i, workstation in enumerate(self.workstations):
            generation = self.certificate_generation(workstation)
            label = workstation_label(workstation, generation)
            other = named.setdefault(label, workstation)
            if workstation in own:
                yield Problem(
                    (*at, "workstations", i),
                    f"is kept for the Client VPN's own {own[workstation]}, whose key and "
                    "certificate resources are named after it; choose another name",
                    workstation,
                )
            elif other != workstation:
                # Only a revocation makes two labels meet: "a" re-issued once is "a-r1".
                reissued = max((workstation, other), key=self.certificate_generation)
                count = self.certificate_generation(reissued)
                yield Problem(
                    (*at, "workstations", i),
                    f"would share its key and certificate with workstation {other} (both "
                    f"named {label}): {reissued}'s are named so after {count} revocation"
                    f"{'s' if count > 1 else ''} in {key_path((*at, 'revokedCertificates'))}. "
                    "Rename one of them (the renamed one gets a new certificate)",
                    workstation,
                )

    def _reach_problems(
        self,
        at: Loc,
        vpc_cidr: IPv4Network,
        on_prem: list[tuple[Loc, IPv4Network]],
        quotas: QuotaSettings,
    ) -> Iterator[Problem]:
        """An extra range must be one the VPC routes to: its own range (every association
        routes it), or an on-premises range, reached through the VPN gateway's propagated
        routes (ClientVpn routes it through each associated subnet). Anything else would be
        authorized but unreachable (AWS Client VPN Administrator Guide, "Routes": traffic
        leaves through the associated subnet and follows its route table)."""
        extra = self.extra_authorized_cidrs
        outside = [c for c in extra if not c.subnet_of(vpc_cidr)]
        rules, routes = (
            quotas.client_vpn_authorization_rules,
            quotas.client_vpn_routes_per_association,
        )
        if len(extra) + _FIXED_AUTHORIZATIONS > rules:
            yield Problem(
                (*at, "extraAuthorizedCidrs"),
                f"lists {len(extra)} ranges; with Orthanc's subnets and the resolver that "
                f"passes the account's {rules} authorization rules per Client VPN endpoint "
                "(AWS's default quota is 200): use fewer, wider ranges, or have AWS raise the "
                "quota and set orthgate:quotas.clientVpnAuthorizationRules",
                len(extra),
            )
        elif len(outside) + _FIXED_ROUTES > routes:
            yield Problem(
                (*at, "extraAuthorizedCidrs"),
                f"lists {len(outside)} ranges outside the VPC, each a route through every "
                f"associated subnet; the account allows {routes} routes per association, the "
                "VPC's own included (AWS's default quota is 100): use fewer, wider ranges, or "
                "have AWS raise the quota and set orthgate:quotas.clientVpnRoutesPerAssociation",
                len(outside),
            )
        listed = ", ".join(f"{cidr} ({key_path(loc)})" for loc, cidr in on_prem) or "none set"
        for i, cidr in enumerate(self.extra_authorized_cidrs):
            if cidr.subnet_of(vpc_cidr) or any(cidr.subnet_of(r) for _, r in on_prem):
                continue
            yield Problem(
                (*at, "extraAuthorizedCidrs", i),
                f"is neither inside the VPC ({vpc_cidr}) nor inside an on-premises range "
                "(orthgate:network siteToSiteVpns[].onPremCidrs, directConnectOnPremCidrs: "
                f"{listed}): workstations reach only what the VPC routes to",
                str(cidr),
            )
