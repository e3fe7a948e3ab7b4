"""``orthgate:dicomProxies``: on-premises Orthanc proxies forwarding over DICOM TLS."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Network
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from components.config.base import Section
from components.config.errors import Loc, Problem, duplicates, key_path
from components.config.orthanc import AeTitle, OrthancSettings, parse_allowed_cidr
from components.config.types import NOT_INTERNET_ROUTABLE, DnsLabel, Number, int_range


def parse_public_cidr(value: Any) -> IPv4Network:
    network = parse_allowed_cidr(value)
    for private in NOT_INTERNET_ROUTABLE:
        if network.overlaps(private):
            raise ValueError(
                f"overlaps {private}, which is not a public address: list the site's "
                "Internet egress address (what the cloud sees), e.g. 198.51.100.7/32"
            )
    return network


PublicCidr = Annotated[IPv4Network, BeforeValidator(parse_public_cidr)]


class ProxyModality(Section):
    """A modality on the site's LAN allowed to store into the proxy."""

    name: DnsLabel
    ae_title: AeTitle


class DicomProxySettings(Section):
    name: DnsLabel
    source_cidrs: Annotated[list[PublicCidr], Field(min_length=1)]
    ae_title: AeTitle
    # None: any modality on the LAN may store into the proxy.
    modalities: list[ProxyModality] | None = None
    listen_port: Annotated[Number, int_range(1, 65535, "a TCP port")] = 104
    backlog_warning_instances: Annotated[
        Number, int_range(1, 10_000_000, "a number of instances")
    ] = 10000

    def problems(self, at: Loc) -> Iterator[Problem]:
        yield from duplicates((*at, "sourceCidrs"), [str(c) for c in self.source_cidrs])
        if self.modalities is not None:
            yield from duplicates((*at, "modalities"), [m.name for m in self.modalities], "name")
            yield from duplicates(
                (*at, "modalities"), [m.ae_title for m in self.modalities], "aeTitle"
            )
            for i, modality in enumerate(self.modalities):
                if modality.ae_title == self.ae_title:
                    yield Problem(
                        (*at, "modalities", i, "aeTitle"),
                        "is the proxy's own AE title; a modality needs its own",
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
    yield from duplicates(at, [p.ae_title for p in proxies], "aeTitle")
    modality_names = {m.name: i for i, m in enumerate(orthanc.modalities)}
    modality_aes = {m.ae_title: i for i, m in enumerate(orthanc.modalities)}
    allowed = {str(c): i for i, c in enumerate(orthanc.dicom_allowed_cidrs)}
    seen_cidrs: dict[str, Loc] = {}
    for i, proxy in enumerate(proxies):
        yield from proxy.problems((*at, i))
        if proxy.ae_title == orthanc.ae_title:
            yield Problem(
                (*at, i, "aeTitle"),
                "is the cloud Orthanc's own AE title (orthgate:orthanc.aeTitle)",
                proxy.ae_title,
            )
        if proxy.ae_title in modality_aes:
            yield Problem(
                (*at, i, "aeTitle"),
                "is already registered at "
                + key_path(("orthanc", "modalities", modality_aes[proxy.ae_title], "aeTitle")),
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
