"""Who a sender is, as Orthanc can check it: one loopback address per identity.

Orthanc sees only the address a connection comes from and the calling AE title, which
anyone can type. nginx, in Orthanc's network namespace, is the one that knows more: which
certificate a TLS sender presented, and from which range a plaintext sender came. It hands
that knowledge to Orthanc as the source address of its connection: ``proxy_bind`` to a
loopback address that stands for the identity. Orthanc registers every AE title with exactly
one such address and checks it (``DicomCheckModalityHost``), so

- a certificate can only store under the AE title registered for it;
- nothing that came over TLS can use a private-path AE title, nor the other way round;
- a private-path AE title given ``sourceCidrs`` can only be used from those ranges.

An address is derived from what it stands for (a hash), never from a position in a list:
adding or removing a sender never moves another one's address. While nginx and Orthanc pick
up a change one after the other, an identity therefore keeps its meaning; at worst a sender
is refused for that moment, never let in as someone else.

Two identities landing on one address (a hash collision, about one pair in eight million)
is refused before anything is declared (``identity_collisions``).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

# 127.128.0.0/9 on the namespace's loopback: far from 127.0.0.1 (what nginx uses when no
# identity applies, registered for no one) and 127.0.1.1 (Debian's own host name).
IDENTITY_RANGE = ipaddress.IPv4Network("127.128.0.0/9")
_SLOTS = IDENTITY_RANGE.num_addresses - 2  # neither .0.0 of the range nor 127.255.255.255


@dataclass(frozen=True)
class SenderIdentity:
    """How one registered AE title proves who it is.

    ``certificate_subject``: the subject of the client certificate it presents (DICOM proxy
    sites and TLS modalities), as nginx writes it (RFC 2253, ``CN=..,OU=..,O=..``), matched
    whole. Otherwise it comes over a private path, from ``source_cidrs`` when given, else
    from any private-path range no other sender names.
    """

    certificate_subject: str | None = None
    source_cidrs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.certificate_subject is not None and self.source_cidrs:
            raise ValueError("a sender proves itself by a certificate or by its sources")

    @property
    def key(self) -> str:
        if self.certificate_subject is not None:
            return f"certificate {self.certificate_subject}"
        if self.source_cidrs:
            return "sources " + ",".join(sorted(self.source_cidrs, key=_network_order))
        return "private path"


ANY_PRIVATE_PATH = SenderIdentity()


def _network_order(cidr: str) -> tuple[int, int]:
    network = ipaddress.IPv4Network(cidr)
    return int(network.network_address), network.prefixlen


def identity_address(identity: SenderIdentity) -> str:
    digest = hashlib.sha256(identity.key.encode()).digest()
    slot = int.from_bytes(digest[:8], "big") % _SLOTS
    return str(IDENTITY_RANGE.network_address + 1 + slot)


def identity_collisions(identities: Iterable[SenderIdentity]) -> list[tuple[str, str]]:
    """Pairs of distinct identities that would share an address (to be refused)."""
    seen: dict[str, SenderIdentity] = {}
    clashes = []
    for identity in {*identities, ANY_PRIVATE_PATH}:
        other = seen.setdefault(identity_address(identity), identity)
        if other != identity:
            clashes.append(tuple(sorted((other.key, identity.key))))
    return sorted(clashes)


# nginx compares the subject whole, as a string: RFC 2253 escapes only what the program never
# writes into a subject (its parts are DNS labels and fixed words), so no pattern is needed,
# and a subject with extra or repeated attributes matches nothing.
MAP_HASH_BUCKET_SIZE = 256
_UNQUOTABLE = frozenset('"\\;{}$\n')


def _quoted(text: str) -> str:
    if _UNQUOTABLE & set(text) or text != text.strip():
        raise ValueError(f"not a subject nginx can take as it is: {text!r}")
    return f'"{text}"'


def render_sender_maps(
    identities: Sequence[SenderIdentity], private_paths: Sequence[str] = ()
) -> str:
    """The nginx (stream) include that turns a connection into its identity's address.

    ``$orthgate_tls_source``: from the verified client certificate's subject;
    ``$orthgate_plain_source``: from the source address, a private-path range
    (``private_paths``: on-premises ranges and the Client VPN's subnets) standing for any
    private-path sender unless a narrower range names one. Anything else: empty, and nginx
    connects from 127.0.0.1, which Orthanc registers for no one.
    """
    unique = sorted(set(identities), key=lambda i: i.key)
    tls_lines, plain_lines = [], []
    anywhere = identity_address(ANY_PRIVATE_PATH)
    claimed = {cidr for identity in unique for cidr in identity.source_cidrs}
    for cidr in sorted(set(private_paths) - claimed, key=_network_order):
        plain_lines.append(f"    {cidr} {anywhere};")
    for identity in unique:
        address = identity_address(identity)
        if identity.certificate_subject is not None:
            tls_lines.append(f"    {_quoted(identity.certificate_subject)} {address};")
        for cidr in sorted(identity.source_cidrs, key=_network_order):
            plain_lines.append(f"    {cidr} {address};")
    lines = [
        "# Rendered by orthgate: which loopback address stands for which sender.",
        # A subject is up to about 100 characters (a 63-character name, the unit and the
        # organization); nginx's default bucket (64 bytes) refuses to start with longer
        # keys ("could not build map_hash"). Set before the map, which is built as read.
        f"map_hash_bucket_size {MAP_HASH_BUCKET_SIZE};",
        "map $ssl_client_s_dn $orthgate_tls_source {",
        '    default "";',
        *tls_lines,
        "}",
        "geo $orthgate_plain_source {",
        '    default "";',
        *plain_lines,
        "}",
    ]
    return "\n".join(lines) + "\n"


def overlapping_sources(identities: Iterable[SenderIdentity]) -> Iterator[tuple[str, str]]:
    """Ranges of different source sets that overlap: nginx could map such an address to
    only one of them, so one sender would be refused from part of its own range."""
    ranges = sorted(
        {
            (ipaddress.IPv4Network(cidr), identity.key)
            for identity in identities
            for cidr in identity.source_cidrs
        },
        key=lambda pair: (int(pair[0].network_address), pair[0].prefixlen),
    )
    for i, (network, key) in enumerate(ranges):
        for other, other_key in ranges[i + 1 :]:
            if other.network_address > network.broadcast_address:
                break
            if other_key != key:
                yield str(network), str(other)
