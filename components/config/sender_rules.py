"""Rules on how senders prove who they are, across sections: a private-path modality's
``sourceCidrs`` against the private paths and each other, re-issued certificate names, and
the loopback identities nginx hands to Orthanc (components.render.sender_identity).

A revocation may name any sender, a private-path modality included: one that spoke TLS
before keeps its revoked certificates revoked should it, or a new modality of its name,
speak TLS again (nginx knows a certificate by its subject)."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Network
from typing import TYPE_CHECKING

from orthgate.components.config.errors import Loc, Problem, key_path
from orthgate.components.render.sender_identity import identity_collisions, overlapping_sources

if TYPE_CHECKING:
    from orthgate.components.config.settings import Settings

_MODALITIES: Loc = ("orthanc", "modalities")


def sender_problems(settings: Settings) -> Iterator[Problem]:
    yield from _sources_on_private_paths(settings)
    yield from _whole_client_vpn(settings)
    yield from _somewhere_left(settings)
    yield from _overlapping_sources(settings)
    yield from _reissued_names(settings)
    yield from _identity_collisions(settings)


def _private_sources(settings: Settings) -> list[tuple[str, IPv4Network]]:
    """Where a private-path sender's packets can come from, as Orthanc's host sees them."""
    network = settings.network
    sources = [("an on-premises range", cidr) for cidr in network.private_path_cidrs]
    if settings.client_vpn.enabled:
        # Client VPN source-NATs every workstation to its interfaces in the subnets it is
        # associated with (the first associatedSubnets private ones), and only those.
        layout = network.layout_if_valid()
        if layout is not None:  # else refused by NetworkSettings.problems
            associated = layout.private[: settings.client_vpn.associated_subnets]
            sources += [("a Client VPN subnet", cidr) for cidr in associated]
    return sources


def plaintext_source_ranges(settings: Settings) -> list[str]:
    """The ranges nginx takes plaintext DICOM from (its geo map): what OrthancServer gets
    as the private paths and, with the Client VPN, the subnets it is associated with."""
    return [str(cidr) for _, cidr in _private_sources(settings)]


def _sources_on_private_paths(settings: Settings) -> Iterator[Problem]:
    allowed = _private_sources(settings)
    for i, modality in enumerate(settings.orthanc.modalities):
        for j, cidr in enumerate(modality.source_cidrs):
            if any(cidr.subnet_of(path) for _, path in allowed):
                continue
            listed = ", ".join(f"{path} ({what})" for what, path in allowed) or "none"
            yield Problem(
                (*_MODALITIES, i, "sourceCidrs", j),
                "is not inside a private path, so no plaintext DICOM can come from it: "
                "give a range inside an on-premises range (orthgate:network) or, with the "
                "Client VPN, a private subnet it is associated with "
                f"(orthgate:clientVpn.associatedSubnets). Private paths: {listed}",
                str(cidr),
            )


def _client_vpn_subnets(settings: Settings) -> list[IPv4Network]:
    return [cidr for what, cidr in _private_sources(settings) if what == "a Client VPN subnet"]


def _whole_client_vpn(settings: Settings) -> Iterator[Problem]:
    """AWS picks the associated subnet of each Client VPN session: a modality that claims
    some of them would store under its AE title only some of the time."""
    subnets = _client_vpn_subnets(settings)
    for i, modality in enumerate(settings.orthanc.modalities):
        inside = [c for c in modality.source_cidrs if any(c.subnet_of(s) for s in subnets)]
        if not inside:
            continue
        missing = [s for s in subnets if not any(s.subnet_of(c) for c in modality.source_cidrs)]
        if missing:
            yield Problem(
                (*_MODALITIES, i, "sourceCidrs"),
                "claims part of the Client VPN's subnets, but AWS sends each workstation "
                "through any of the associated ones: list all of them whole "
                f"({', '.join(str(s) for s in subnets)}), or give this modality "
                "`connection: tls`",
                [str(c) for c in modality.source_cidrs],
            )


def _somewhere_left(settings: Settings) -> Iterator[Problem]:
    """A modality without sourceCidrs sends from any private-path address no other claims:
    when the claims cover every private path whole, there is none left."""
    modalities = settings.orthanc.modalities
    claims = [cidr for m in modalities for cidr in m.source_cidrs]
    if not claims:
        return
    ranges = [cidr for _, cidr in _private_sources(settings)]
    if any(not any(r.subnet_of(claim) for claim in claims) for r in ranges):
        return
    for i, modality in enumerate(modalities):
        if modality.connection == "private" and not modality.source_cidrs:
            yield Problem(
                (*_MODALITIES, i, "aeTitle"),
                "has no sourceCidrs, so it may send from any private-path address that no "
                "other modality's sourceCidrs claim; but those claim every private path "
                f"whole ({', '.join(str(r) for r in ranges)}): it could never store. Give it "
                "sourceCidrs, or narrow the others'",
                modality.ae_title,
            )


def _overlapping_sources(settings: Settings) -> Iterator[Problem]:
    from orthgate.components.config.rendered_sizes import modality_identity

    modalities = settings.orthanc.modalities
    identities = {i: modality_identity(m) for i, m in enumerate(modalities)}
    owners: dict[str, list[int]] = {}
    for i, identity in identities.items():
        for cidr in identity.source_cidrs:
            owners.setdefault(cidr, []).append(i)
    reported = set()
    for first, second in overlapping_sources(identities.values()):
        for i in owners[second]:
            if (second, i) in reported:
                continue
            reported.add((second, i))
            j = [str(c) for c in modalities[i].source_cidrs].index(second)
            others = ", ".join(
                f"{key_path((*_MODALITIES, k, 'name'))} = {modalities[k].name}"
                for k in owners[first]
            )
            yield Problem(
                (*_MODALITIES, i, "sourceCidrs", j),
                f"overlaps {first} of {others}. Orthanc accepts an AE title from one "
                "identity, and a source address can stand for only one: modalities that "
                "share addresses list the very same sourceCidrs; otherwise their ranges "
                "must not overlap",
                second,
            )


def _reissued_names(settings: Settings) -> Iterator[Problem]:
    """A re-issued TLS modality certificate is named ``<name>-r<n>``: it must not take the
    resource names of another TLS modality's certificate."""
    from orthgate.components.config.certificates import reissue_suffix

    orthanc = settings.orthanc
    tls = [(i, m.name) for i, m in enumerate(orthanc.modalities) if m.connection == "tls"]
    names = {name: i for i, name in tls}
    for i, name in tls:
        reissued = name + reissue_suffix(orthanc.certificate_generation(name))
        if reissued != name and reissued in names:
            yield Problem(
                (*_MODALITIES, names[reissued], "name"),
                f"is the name {key_path((*_MODALITIES, i, 'name'))} = {name}'s re-issued "
                "certificate takes after its revocations in orthgate:orthanc."
                "revokedCertificates: rename one of the two modalities",
                reissued,
            )


def _identity_collisions(settings: Settings) -> Iterator[Problem]:
    from orthgate.components.config.rendered_sizes import registered_senders

    senders = registered_senders(settings)
    modalities = {m.name for m in settings.orthanc.modalities}
    where: dict[str, Loc] = {}
    for sender in senders:
        if sender.name in modalities:
            index = [m.name for m in settings.orthanc.modalities].index(sender.name)
            where.setdefault(sender.identity.key, (*_MODALITIES, index, "name"))
        else:
            index = [site.name for site in settings.dicom_proxies].index(sender.name)
            where.setdefault(sender.identity.key, ("dicomProxies", index, "name"))
    for first, second in identity_collisions(s.identity for s in senders):
        for key, other in ((first, second), (second, first)):
            if key in where:
                yield Problem(
                    where[key],
                    f"stands for the identity '{key}', which hashes to the same loopback "
                    f"address as '{other}' (about one pair in eight million): nginx could "
                    "not tell the two apart, so Orthanc would take one for the other. Give "
                    "this sender another name (or, for a private-path modality, other "
                    "sourceCidrs)",
                    key,
                )
                break
