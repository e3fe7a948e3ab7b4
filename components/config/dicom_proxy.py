"""``orthgate:dicomProxies``: on-premises Orthanc proxies forwarding over DICOM TLS."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

from orthgate.components.address_ranges import NOT_INTERNET_ROUTABLE, RFC1918
from orthgate.components.config.base import Section, default_text
from orthgate.components.config.errors import Loc, Problem, duplicates, key_path
from orthgate.components.config.orthanc import (
    AeTitle,
    OrthancSettings,
    ae_key,
    ae_title_duplicates,
    parse_allowed_cidr,
)
from orthgate.components.config.types import (
    IPV4_ADDRESS_PATTERN,
    IPV4_CIDR_PATTERN,
    DnsLabel,
    Number,
    SchemaHint,
    StrictBool,
    int_range,
)
from orthgate.components.render.proxy_bundle import PROXY_HOST_PORTS, RESERVED_MODALITY_NAMES

# Orthanc matches AE titles without regard to case unless StrictAetComparison is true
# (default false in Orthanc's configuration reference; no orthanc.json of ours sets it).
_AE_CASE = " (Orthanc compares AE titles without regard to case)"
_MODALITIES_CHOICES = (
    "list the modalities allowed to store ([{name, aeTitle}, ...]), or remove the key and "
    "set acceptAnyModality: true so that any host on the site's LAN may store"
)


def parse_public_cidr(value: Any) -> IPv4Network:
    network = parse_allowed_cidr(value)
    for private in NOT_INTERNET_ROUTABLE:
        if network.overlaps(private):
            raise ValueError(
                f"overlaps {private}, which is not a public address: list the site's "
                "Internet egress address (what the cloud sees), e.g. 198.51.100.7/32"
            )
    return network


def check_modalities_given(value: Any) -> Any:
    """``modalities`` as written: a list with entries; absent means any modality may store.

    Only a key that is present reaches this (defaults are not validated), so null and an
    empty list are refused instead of meaning "any" and "none".
    """
    if value is None:
        raise ValueError(
            "is null, as when every entry under `modalities:` is commented out: "
            + _MODALITIES_CHOICES
        )
    if isinstance(value, list) and not value:
        raise ValueError(
            "is an empty list, so no modality could store into the proxy: " + _MODALITIES_CHOICES
        )
    return value


# Docker's default bridge and the Compose project's network on a fresh site machine.
DOCKER_SITE_NETWORKS = (IPv4Network("172.17.0.0/16"), IPv4Network("172.18.0.0/16"))


def parse_lan_address(value: Any) -> IPv4Address:
    """The site machine's own LAN address: where modalities send, and the only one the
    proxy's plaintext listener is published on (Docker-published ports bypass host
    firewalls such as ufw or firewalld, so "every interface" would mean every network)."""
    if not isinstance(value, str):
        raise ValueError("must be an IPv4 address written as a string, like 192.168.10.20")
    try:
        address = IPv4Address(value.strip())
    except ValueError:
        raise ValueError("must be an IPv4 address, like 192.168.10.20") from None
    if not any(address in private for private in RFC1918):
        raise ValueError(
            "must be the site machine's private (RFC 1918) LAN address, like 192.168.10.20: "
            "plaintext DICOM is published there only, never on every interface nor on a "
            "public address"
        )
    # Docker's own bridge networks on the site machine: never the LAN's address.
    for bridge in DOCKER_SITE_NETWORKS:
        if address in bridge:
            raise ValueError(
                f"is in {bridge}, which Docker takes for its own networks on the site "
                "machine: give the machine's LAN address (and move Docker's networks if the "
                "LAN uses that range, as the site README says)"
            )
    return address


def check_listen_port(port: int) -> int:
    if port in PROXY_HOST_PORTS:
        raise ValueError(
            f"is reserved on the proxy machine for {PROXY_HOST_PORTS[port]}: choose another "
            f"port (not {', '.join(map(str, sorted(PROXY_HOST_PORTS)))})"
        )
    return port


PublicCidr = Annotated[
    IPv4Network, BeforeValidator(parse_public_cidr), SchemaHint(pattern=IPV4_CIDR_PATTERN)
]


class ProxyModality(Section):
    """A modality on the site's LAN allowed to store into the proxy."""

    name: DnsLabel
    """A DNS label, unique among the site's modalities, not `cloud` (the proxy's entry for
    its upstream)."""
    ae_title: AeTitle
    """The modality's calling AE title: unique among the site's modalities, neither the
    proxy's own nor the cloud's `orthgate:orthanc.aeTitle`."""


def _non_empty_list(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema of ``ProxyModalities`` as check_modalities_given reads it: a given key is a
    list of at least one entry, never null."""
    branch = next(s for s in schema.pop("anyOf") if s.get("type") == "array")
    return {**schema, **branch, "minItems": 1}


# The whole union is annotated: a given null must reach the check, not match `| None`.
ProxyModalities = Annotated[
    list[ProxyModality] | None,
    BeforeValidator(check_modalities_given),
    SchemaHint.rewrite(_non_empty_list),
]


class DicomProxySettings(Section):
    """An on-premises Orthanc proxy: the site's modalities send to it over the LAN, and it
    forwards over DICOM TLS with the client certificate the program issues it.

    For each site the program issues a client certificate from the DICOM CA (CN = site name),
    opens the Orthanc DICOM TLS port to exactly `sourceCidrs`, registers `aeTitle` with the
    cloud Orthanc, and renders the bundle. The command lines of the bundle's site README
    (`echoscu`, `curl`) shell-quote every value taken from the configuration, AE titles
    included.

    Upgrading a stack whose sites predate `listenAddress` and `acceptAnyModality`: the
    program refuses it, naming both keys per site, until each site has a `listenAddress` and
    either `modalities` or `acceptAnyModality: true` (what an absent `modalities` meant
    before)."""

    name: DnsLabel
    """A DNS label, unique, not the name of an `orthgate:orthanc.modalities` entry."""
    source_cidrs: Annotated[list[PublicCidr], Field(min_length=1)]
    """The site's public egress addresses (what the cloud sees): at least one IPv4 CIDR, /8
    or longer, no private, CGNAT or reserved range, not `0.0.0.0/0`, not already in
    `orthgate:orthanc.dicomAllowedCidrs` or another site."""
    ae_title: AeTitle
    """The proxy's AE title (modalities call it; the cloud registers it): 1-16 characters,
    unique, not the cloud's own nor a registered modality's. Orthanc compares AE titles
    without regard to case, so every AE-title rule here does too (`site_gw` and `SITE_GW`
    collide)."""
    # The LAN address modalities send to; the plaintext listener is published there only.
    listen_address: Annotated[
        IPv4Address, BeforeValidator(parse_lan_address), SchemaHint(pattern=IPV4_ADDRESS_PATTERN)
    ]
    """The site machine's private (RFC 1918) LAN address, where modalities send, not in
    Docker's 172.17.0.0/16 or 172.18.0.0/16: the plaintext listener is published on it only,
    never on every interface (Docker-published ports bypass host firewalls such as ufw and
    firewalld). Give the machine that address for good; the site README says what to do
    where it comes up late at boot (Docker does not retry the bind)."""
    # Absent: acceptAnyModality must say so. A key given as null or [] is refused:
    # commented-out entries must not open the proxy, nor lock it.
    modalities: Annotated[
        ProxyModalities, default_text("required unless `acceptAnyModality: true`")
    ] = None
    """The only calling AE titles the proxy accepts, at least one entry. `modalities:` given
    as null (all its entries commented out) or as `[]` is refused."""
    accept_any_modality: StrictBool = False
    """`true` instead of `modalities`: any host on the site's LAN may store into the proxy;
    refused together with `modalities`."""
    listen_port: Annotated[
        Number, int_range(1, 65535, "a TCP port"), AfterValidator(check_listen_port)
    ] = 104
    """The proxy's DICOM port on the site's LAN: 1 to 65535, not 8099 (the forwarder's status
    page) nor 8042 (kept for the proxy Orthanc's REST API)."""
    backlog_warning_instances: Annotated[
        Number, int_range(1, 10_000_000, "a number of instances")
    ] = 10000
    """1 to 10,000,000: the forwarder warns when more instances than this wait on the
    proxy."""

    def problems(self, at: Loc, *, cloud_ae_title: str | None = None) -> Iterator[Problem]:
        yield from duplicates((*at, "sourceCidrs"), [str(c) for c in self.source_cidrs])
        if self.modalities is None and not self.accept_any_modality:
            yield Problem(
                (*at, "modalities"),
                "is required: list the modalities allowed to store ([{name, aeTitle}, ...]), "
                "or set acceptAnyModality: true to let any host on the site's LAN store",
            )
        if self.modalities is not None and self.accept_any_modality:
            yield Problem(
                (*at, "acceptAnyModality"),
                "contradicts modalities, which lists who may store: remove one of the two",
                True,
            )
        if self.modalities is None:
            return
        yield from duplicates((*at, "modalities"), [m.name for m in self.modalities], "name")
        yield from ae_title_duplicates(
            (*at, "modalities"), [m.ae_title for m in self.modalities], "aeTitle"
        )
        reserved = {name.casefold(): name for name in RESERVED_MODALITY_NAMES}
        for i, modality in enumerate(self.modalities):
            # The proxy's orthanc.json lists its upstream among DicomModalities: a modality
            # of that name would replace it, and the forwarder would send to the modality.
            if modality.name.casefold() in reserved:
                yield Problem(
                    (*at, "modalities", i, "name"),
                    f"is the name the proxy's configuration gives its upstream (the cloud "
                    f"Orthanc), so this modality would replace it; choose another name (not "
                    f"{', '.join(sorted(RESERVED_MODALITY_NAMES))})",
                    modality.name,
                )
            if ae_key(modality.ae_title) == ae_key(self.ae_title):
                yield Problem(
                    (*at, "modalities", i, "aeTitle"),
                    f"is the proxy's own AE title{_AE_CASE}; a modality needs its own",
                    modality.ae_title,
                )
            elif cloud_ae_title is not None and ae_key(modality.ae_title) == ae_key(cloud_ae_title):
                # The proxy registers the cloud under its AE title too: an incoming store
                # with it would be matched to the upstream entry, not to this modality.
                yield Problem(
                    (*at, "modalities", i, "aeTitle"),
                    f"is the cloud Orthanc's AE title, orthgate:orthanc.aeTitle, which the "
                    f"proxy registers as its upstream{_AE_CASE}; a modality needs its own",
                    modality.ae_title,
                )


def proxy_problems(
    proxies: list[DicomProxySettings], orthanc: OrthancSettings
) -> Iterator[Problem]:
    """Rules across sites and against the cloud Orthanc they register with."""
    at: Loc = ("dicomProxies",)
    if proxies and orthanc.placement == "private":
        yield Problem(
            at,
            "a proxy site reaches the cloud over the Internet, but orthgate:orthanc.placement "
            "is private: Orthanc has no public address for it. Use placement: public, or "
            "bring the site in over a site-to-site VPN instead",
            [p.name for p in proxies],
        )
    yield from duplicates(at, [p.name for p in proxies], "name")
    yield from ae_title_duplicates(at, [p.ae_title for p in proxies], "aeTitle")
    modality_names = {m.name: i for i, m in enumerate(orthanc.modalities)}
    modality_aes: dict[str, int] = {}
    for i, m in enumerate(orthanc.modalities):
        modality_aes.setdefault(ae_key(m.ae_title), i)
    allowed = {str(c): i for i, c in enumerate(orthanc.dicom_allowed_cidrs)}
    seen_cidrs: dict[str, Loc] = {}
    for i, proxy in enumerate(proxies):
        yield from proxy.problems((*at, i), cloud_ae_title=orthanc.ae_title)
        if ae_key(proxy.ae_title) == ae_key(orthanc.ae_title):
            yield Problem(
                (*at, i, "aeTitle"),
                f"is the cloud Orthanc's own AE title, orthgate:orthanc.aeTitle{_AE_CASE}",
                proxy.ae_title,
            )
        if ae_key(proxy.ae_title) in modality_aes:
            yield Problem(
                (*at, i, "aeTitle"),
                "is already registered at "
                + key_path(
                    ("orthanc", "modalities", modality_aes[ae_key(proxy.ae_title)], "aeTitle")
                )
                + _AE_CASE,
                proxy.ae_title,
            )
        if proxy.name in modality_names:
            yield Problem(
                (*at, i, "name"),
                "is already the name of "
                + key_path(("orthanc", "modalities", modality_names[proxy.name])),
                proxy.name,
            )
        for j, cidr in enumerate(map(str, proxy.source_cidrs)):
            loc = (*at, i, "sourceCidrs", j)
            if cidr in allowed:
                yield Problem(
                    loc,
                    "is already allowed by "
                    + key_path(("orthanc", "dicomAllowedCidrs", allowed[cidr]))
                    + "; list it once",
                    cidr,
                )
            elif cidr in seen_cidrs and seen_cidrs[cidr][1] != i:
                yield Problem(loc, f"is also the source of {key_path(seen_cidrs[cidr])}", cidr)
            seen_cidrs.setdefault(cidr, loc)
