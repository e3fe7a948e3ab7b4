"""``orthgate:orthanc``: the Orthanc server, its DICOM and web entry points, its storage."""

from __future__ import annotations

import re
from collections.abc import Iterator
from ipaddress import IPv4Network
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from orthgate.components.address_ranges import NEVER_A_SENDER
from orthgate.components.config.base import Section, default_text
from orthgate.components.config.errors import Loc, Problem, duplicates
from orthgate.components.config.serials import CertificateSerial
from orthgate.components.config.types import (
    IPV4_CIDR_PATTERN,
    DnsLabel,
    DomainName,
    Ipv4Cidr,
    LogRetentionDays,
    Number,
    SchemaHint,
    int_range,
    parse_ipv4_cidr,
)

ORTHANC_DICOM_PORT = 4242  # plaintext DICOM (private paths only), nginx's listener
# Orthanc's own DICOM listener, and its REST API: reached only by nginx, on loopback.
ORTHANC_LOOPBACK_DICOM_PORT = 4243
ORTHANC_HTTP_PORT = 8042
HTTPS_PORT = 443

DEFAULT_ORTHANC_IMAGE = "orthancteam/orthanc:25.12.3"
DEFAULT_NGINX_IMAGE = "nginx:1.28.0-alpine"

# DICOM PS3.5 AE: default character repertoire without backslash and control characters;
# leading and trailing spaces are not significant, so they are refused here.
_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*[0-9][a-z0-9-]*\.[a-z0-9]+$")
# Docker's image reference grammar (distribution/reference, "reference.go"): an optional
# registry host[:port], path components of lower-case letters and digits joined by '.',
# '_', '__' or dashes, a tag of at most 128 word characters, dots and dashes not starting
# with either, a digest; the name part is at most 255 characters.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
# Docker takes the first component for a registry only with a dot, a port or as localhost.
_REGISTRY = (
    rf"(?:localhost|{_HOST_COMPONENT}(?:\.{_HOST_COMPONENT})+)(?::[0-9]+)?"
    rf"|{_HOST_COMPONENT}:[0-9]+"
)
_IMAGE = re.compile(
    rf"^(?P<name>(?:(?:{_REGISTRY})/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}))?$"
)
IMAGE_NAME_MAX_LENGTH = 255


def check_ae_title(value: str) -> str:
    if not _AE_TITLE.fullmatch(value) or value != value.strip():
        raise ValueError(
            "must be a DICOM AE title: 1 to 16 characters, printable ASCII without "
            "backslash, no leading or trailing space"
        )
    # The orthancteam image runs envsubst over its configuration files at start, so
    # `PACS$1` would reach Orthanc as `PACS` (and two senders could become one).
    if "$" in value:
        raise ValueError(
            "must not contain '$': the Orthanc container substitutes environment variables "
            "in its configuration, so the AE title would change"
        )
    # dcmtk tools (echoscu, storescu) take a leading '-' as one of their options.
    if value.startswith("-"):
        raise ValueError("must not start with '-': DICOM tools would read it as an option")
    return value


def ae_key(value: str) -> str:
    """Orthanc compares AE titles without regard to case: the key two titles collide on."""
    return value.upper()


def parse_allowed_cidr(value: Any) -> IPv4Network:
    """A source allowed through a security group: never the whole Internet."""
    if isinstance(value, str) and value.strip() in ("0.0.0.0/0", "::/0"):
        raise ValueError(
            "would open the port to the whole Internet; list the sites' own addresses "
            "(e.g. 198.51.100.7/32)"
        )
    network = parse_ipv4_cidr(value)
    if network.prefixlen < 8:
        raise ValueError("is too broad for an allow-list: use /8 or longer")
    for reserved in NEVER_A_SENDER:
        if network.overlaps(reserved):
            raise ValueError(
                f"overlaps {reserved}, a reserved range (loopback, link-local, multicast or "
                "'this network') that no sender can be in"
            )
    return network


# Families built on the Xen hypervisor: every family missing from the EC2 User Guide's list
# "Instances built on the AWS Nitro System" (instance-types.html#ec2-nitro-instances), which
# names i3.metal and p3dn.24xlarge as the Nitro exceptions. On Xen an EBS volume is a xvd
# device, not NVMe, so the data volume the host waits for never appears; t2 is not even
# EBS-optimised, which the launch template asks for.
XEN_FAMILIES = frozenset(
    {
        "c1", "c3", "c4", "cc1", "cc2", "cg1", "cr1", "d2", "f1", "g2", "g3", "g3s", "h1",
        "hi1", "hs1", "i2", "i3", "m1", "m2", "m3", "m4", "p2", "p3", "r3", "r4", "t1",
        "t2", "x1", "x1e",
    }
)  # fmt: skip
_NITRO_EXCEPTIONS = frozenset({"i3.metal", "p3dn.24xlarge"})


def _check_instance_type(value: str) -> str:
    if not _INSTANCE_TYPE.fullmatch(value):
        raise ValueError("must be an EC2 instance type such as t3.medium or m7g.large")
    family = value.split(".")[0]
    # Mac instances run only on Dedicated Hosts, with macOS images.
    if family.startswith("mac"):
        raise ValueError(
            "is a Mac instance type, which needs a Dedicated Host and macOS: orthgate runs "
            "Amazon Linux, e.g. on t3.medium or m7g.large"
        )
    if family in XEN_FAMILIES and value not in _NITRO_EXCEPTIONS:
        raise ValueError(
            "is a Xen-based instance type: orthgate needs a Nitro instance (NVMe EBS "
            "volumes, EBS-optimised), e.g. t3.medium instead of t2.medium, m5.large "
            "instead of m4.large"
        )
    return value


# Previous-generation classes RDS does not offer for PostgreSQL 16 (RDS User Guide,
# "Supported DB engines for DB instance classes": PostgreSQL 16 starts at the t3, m5, r5
# generations).
_OLD_DATABASE_FAMILIES = frozenset({"t1", "t2", "m1", "m2", "m3", "m4", "r3", "r4"})
_DATABASE_CLASS = re.compile(r"^db\.([a-z][a-z0-9-]*[0-9][a-z0-9-]*)\.[a-z0-9]+$")


def _check_database_class(value: str) -> str:
    found = _DATABASE_CLASS.fullmatch(value)
    if not found:
        raise ValueError("must be an RDS instance class such as db.t4g.small or db.m7g.large")
    if found[1] in _OLD_DATABASE_FAMILIES:
        raise ValueError(
            "is a previous-generation class RDS does not offer for PostgreSQL 16: use a "
            "current one, e.g. db.t4g.small or db.m7g.large"
        )
    return value


def _check_image(value: str) -> str:
    found = _IMAGE.fullmatch(value)
    if not found or len(found["name"]) > IMAGE_NAME_MAX_LENGTH:
        raise ValueError(
            "must be a container image reference Docker accepts ([registry[:port]/]path, "
            "lower-case path components, a name of at most 255 characters), pinned by tag "
            "or digest, e.g. orthancteam/orthanc:25.12.3"
        )
    if not found["tag"] and not found["digest"]:
        raise ValueError("must be a container image pinned by tag or digest, e.g. repo:1.2.3")
    if found["tag"] == "latest" and not found["digest"]:
        raise ValueError("must be pinned: 'latest' changes under a running deployment")
    return value


def _check_tls_port(port: int) -> int:
    if port in (ORTHANC_DICOM_PORT, ORTHANC_LOOPBACK_DICOM_PORT, ORTHANC_HTTP_PORT, HTTPS_PORT):
        raise ValueError(
            f"is used by orthgate itself: {ORTHANC_DICOM_PORT} is nginx's plaintext DICOM, "
            f"{ORTHANC_LOOPBACK_DICOM_PORT} and {ORTHANC_HTTP_PORT} are Orthanc's own behind "
            f"nginx (in their shared namespace, since sender identity), {HTTPS_PORT} is "
            "HTTPS. Choose another; changing it moves the TLS listeners, and every TLS "
            "sender and proxy site must be given the new port"
        )
    return port


# RDS for PostgreSQL storage, storage autoscaling included, ends at 64 TiB; autoscaling needs
# its ceiling at least 10 % above the allocated storage (RDS User Guide, "Managing capacity
# automatically with Amazon RDS storage autoscaling"). orthgate lets storage grow 5-fold.
RDS_MAX_STORAGE_GIB = 65536
DATABASE_GROWTH_FACTOR = 5
DATABASE_STORAGE_LIMIT_GIB = RDS_MAX_STORAGE_GIB * 10 // 11  # 59,578


def database_storage_ceiling_gib(allocated_gib: int) -> int:
    """Where RDS storage autoscaling stops: 5 x the allocation, within the RDS maximum."""
    return min(allocated_gib * DATABASE_GROWTH_FACTOR, RDS_MAX_STORAGE_GIB)


# A fleet past this size is a different deployment (and a different bill); raise it with care.
MAX_HOSTS = 20
DEFAULT_FLEET_HOSTS = 2  # one per zone of the default two: a zone can fail
DEFAULT_HEALTH_CHECK_GRACE_SECONDS = 600  # boot installs Docker and pulls two images


def ae_title_duplicates(at: Loc, titles: list[str], field: str | None = None) -> Iterator[Problem]:
    """Repeated AE titles of one list, compared the way Orthanc compares them."""
    return duplicates(
        at,
        titles,
        field,
        key=ae_key,
        compared=" (Orthanc compares AE titles without regard to case)",
    )


# check_ae_title as a pattern, for editors: the same characters, no leading '-' or space, no
# trailing space, no '$'.
_AE_TITLE_PATTERN = r"^(?![- ])[\x20-\x23\x25-\x5b\x5d-\x7e]{0,15}[\x21-\x23\x25-\x5b\x5d-\x7e]$"
AeTitle = Annotated[
    str,
    Field(strict=True),
    AfterValidator(check_ae_title),
    SchemaHint(pattern=_AE_TITLE_PATTERN),
]
AllowedCidr = Annotated[
    IPv4Network, BeforeValidator(parse_allowed_cidr), SchemaHint(pattern=IPV4_CIDR_PATTERN)
]


class RegisteredModality(Section):
    """A sender Orthanc accepts stores from: its calling AE title, and what proves it may
    use it. `connection: tls`: a client certificate the program issues (CN = name), on
    the DICOM TLS port only. `private` (the default): the plaintext port of a private path,
    from `sourceCidrs` when given (ranges that are then this modality's, and of any other
    that lists the very same ranges), else from anywhere a private path reaches and no
    other modality's `sourceCidrs` cover."""

    name: DnsLabel
    """A DNS label, unique among the modalities: the certificate's CN for `connection: tls`
    (output `dicomModalityCredentials`)."""
    ae_title: AeTitle
    """The modality's calling AE title: unique without regard to case among Orthanc's own,
    the modalities' and the proxy sites'."""
    connection: Literal["private", "tls"] = "private"
    """`private`: plaintext DICOM over a private path; `tls`: DICOM TLS with the client
    certificate the program issues it."""
    source_cidrs: list[Ipv4Cidr] = []
    """`connection: private` only, and not empty when given: the ranges the modality sends
    from, each inside an on-premises range (or, with the Client VPN, the subnets it is
    associated with, the first `associatedSubnets` private ones, all of them whole: AWS picks
    one per session); different modalities' ranges are identical or do not overlap. Unset:
    anywhere a private path reaches that no other modality's `sourceCidrs` cover."""

    def problems(self, at: Loc) -> Iterator[Problem]:
        if self.connection == "tls" and "source_cidrs" in self.model_fields_set:
            yield Problem(
                (*at, "sourceCidrs"),
                "only applies with connection: private; a TLS modality is known by its "
                "certificate (its sources are limited by orthgate:orthanc.dicomAllowedCidrs)",
                [str(c) for c in self.source_cidrs],
            )
        if "source_cidrs" in self.model_fields_set and not self.source_cidrs:
            yield Problem(
                (*at, "sourceCidrs"),
                "is empty: list the ranges the modality sends from, or remove the key to "
                "accept it from any private path",
                [],
            )
        yield from duplicates((*at, "sourceCidrs"), [str(c) for c in self.source_cidrs])


class RevokedCertificate(Section):
    """A DICOM client certificate nginx must refuse: a site's or a TLS modality's, current
    or retired. Each entry naming a configured sender also re-issues that sender's key and
    certificate, so a revoked certificate is never the one the program hands out."""

    sender: DnsLabel
    """The sender's name: a proxy site or a modality, current or retired."""
    serial: CertificateSerial
    """The certificate's serial number in hexadecimal, as a quoted string (outputs
    `dicomProxySites.<site>.certificateSerial`, `dicomModalities.<name>.certificateSerial`,
    `openssl x509 -noout -serial`), unique."""


HostCount = Annotated[Number, int_range(1, MAX_HOSTS, "a number of hosts")]


class FleetSettings(Section):
    """`hosting: fleet`: an Auto Scaling group of identical hosts behind load balancers.
    `orthgate:orthanc.instanceCount` is the desired count; these bound it."""

    min_size: Annotated[HostCount | None, default_text("the desired count")] = None
    """1 to 20, at most `instanceCount`."""
    max_size: Annotated[HostCount | None, default_text("twice the desired count, at most 20")] = (
        None
    )
    """1 to 20, at least `instanceCount`."""
    target_cpu_percent: Annotated[Number, int_range(10, 90, "a CPU percentage")] | None = None
    """10 to 90: a target-tracking policy keeps the average CPU near it between min and max
    (AWS then owns the desired count)."""
    health_check_grace_seconds: Annotated[Number, int_range(60, 3600, "a number of seconds")] = (
        DEFAULT_HEALTH_CHECK_GRACE_SECONDS
    )
    """60 to 3600: how long a new host may boot before its health counts."""

    def sizes(self, desired: int) -> tuple[int, int]:
        """(min, max) with the defaults filled in."""
        return (
            self.min_size if self.min_size is not None else desired,
            self.max_size if self.max_size is not None else min(MAX_HOSTS, 2 * desired),
        )


_IMAGE_RULE = (
    "A container image reference in Docker's grammar (`[registry[:port]/]path[:tag]"
    "[@sha256:digest]`, lower-case path, name at most 255 characters), pinned by tag or "
    "digest (never `latest`); `image` and `nginxImage` together short enough for the hosts' "
    "user data (EC2 takes 16 KiB, gzipped here). Pin by digest in production "
    "(`orthancteam/orthanc:25.12.3@sha256:<digest>`): a tag can be pushed again under a "
    "running deployment, a digest cannot. `docker buildx imagetools inspect <image>:<tag>` "
    "shows the digest to copy."
)
ImageReference = Annotated[str, Field(strict=True), AfterValidator(_check_image)]


class OrthancSettings(Section):
    """The Orthanc server: its hosts, its DICOM and web entry points, who may store, and
    where the images and the index live.

    Every security group's inbound rules are counted before anything is deployed: each direct
    source is one rule, each private-path range three (DICOM TLS, plaintext DICOM, HTTPS).
    Past the account's quota (60 by default, `orthgate:quotas`) the stack is refused, naming
    the keys that add most."""

    instance_type: Annotated[
        str,
        Field(strict=True),
        AfterValidator(_check_instance_type),
        SchemaHint(pattern=_INSTANCE_TYPE.pattern),
    ] = "t3.medium"
    """An EC2 instance type built on the Nitro System (the data volume is an NVMe device):
    Xen families such as `t2`, `m4`, `c4`, `r4`, `i3` are refused, and so are Mac types
    (Dedicated Hosts and macOS only); Graviton types get the arm64 AMI."""
    instance_count: Annotated[HostCount | None, default_text("2 (fleet), 1 (single host)")] = None
    """1 to 20: a fleet's desired count; a single host is one."""
    hosting: Annotated[
        Literal["fleet", "singleHost"] | None,
        default_text("`fleet` when `storage: s3` and `index: postgresql`, else `singleHost`"),
    ] = None
    """`fleet`: an Auto Scaling group behind Network Load Balancers (needs S3 and PostgreSQL:
    the hosts share their data); `singleHost`: one instance at a fixed address."""
    fleet: FleetSettings = FleetSettings()
    """The fleet's size and scaling; `hosting: fleet` only (refused otherwise)."""
    ami_updates: Annotated[
        Literal["follow", "hold"] | None, default_text("`follow` (fleet), `hold` (single host)")
    ] = None
    """`follow`: hosts move to the newest Amazon Linux 2023 AMI at the next `pulumi up` (a
    fleet rolls, a single host is replaced); `hold`: they keep theirs, and every `pulumi up`
    warns while a newer one waits. Not with `amiId`."""
    placement: Literal["public", "private"] = "public"
    """`public`: reachable from the Internet (a public load balancer, or an Elastic IP);
    `private`: only over private paths (needs NAT)."""
    ae_title: AeTitle = "ORTHANC"
    """Orthanc's AE title, 1 to 16 characters, no `$` (the Orthanc image substitutes
    environment variables in its configuration), not starting with `-`; Orthanc's AE title,
    its modalities' and the proxy sites' are unique without regard to case, as Orthanc
    compares them; so are a site's own modalities, none of which may take the site's or the
    cloud's title."""
    dicom_tls_port: Annotated[
        Number, int_range(1024, 65535, "a TCP port"), AfterValidator(_check_tls_port)
    ] = 11112
    """The DICOM TLS port: 1024 to 65535, not 4242, 4243, 8042 or 443. Changing it moves the
    TLS listeners: every TLS sender and proxy site must be given the new port."""
    dicom_allowed_cidrs: list[AllowedCidr] = []
    """Sources of direct DICOM TLS (`/8` or longer, never `0.0.0.0/0`), unique. All the
    lists that land on one port together (these, the proxy sites, Internet-routable private
    paths) open it to at most 16,777,216 Internet addresses, one `/8`."""
    web_allowed_cidrs: list[AllowedCidr] = []
    """Sources of HTTPS (`/8` or longer, never `0.0.0.0/0`), unique; the same limit of one
    `/8` per port as for `dicomAllowedCidrs`."""
    modalities: list[RegisteredModality] = []
    """The senders Orthanc accepts stores from, and what proves each may use its AE title
    (see [Who may store](#who-may-store-sender-identity)); names unique. With the
    `orthgate:dicomProxies` sites they make Orthanc's configuration, kept in one Secrets
    Manager secret of at most 64 KiB: about 160 senders with 63-character names, 190 with
    short ones (a refusal says how many of yours fit)."""
    revoked_certificates: list[RevokedCertificate] = []
    """DICOM client certificates nginx refuses. Each entry naming a configured sender also
    gives it a new key and certificate (hand the site its new bundle, the modality its new
    credentials). Any sender may be named, a private-path modality included (one that spoke
    TLS before keeps its certificates revoked). Keep entries once written: each counts
    towards its sender's re-issued certificate names. The list travels in nginx's TLS secret
    (64 KiB): about 960 entries fit."""
    site_name: DomainName | None = None
    """A DNS name you point at Orthanc (a name, not an IP address: its last label is neither
    all digits nor `0x` and hex digits, which resolvers read as a number), at most 64
    characters: it is the server certificate's common name."""
    storage: Annotated[
        Literal["s3", "ebs"] | None, default_text("`ebs` in `dev`, `s3` elsewhere")
    ] = None
    """Where the images live: `s3` (a bucket) or `ebs` (the host's data volume). `storage:
    s3` needs `index: postgresql`: a SQLite index on one host's disk would be lost at its
    next replacement."""
    index: Annotated[
        Literal["postgresql", "sqlite"] | None,
        default_text("`sqlite` in `dev`, `postgresql` elsewhere"),
    ] = None
    """Where Orthanc's index lives: `postgresql` (an RDS database) or `sqlite` (on the
    host's data volume)."""
    image: Annotated[ImageReference, Field(description=f"The Orthanc image. {_IMAGE_RULE}")] = (
        DEFAULT_ORTHANC_IMAGE
    )
    nginx_image: Annotated[
        ImageReference, Field(description=f"The nginx image in front of Orthanc. {_IMAGE_RULE}")
    ] = DEFAULT_NGINX_IMAGE
    ami_id: Annotated[
        Annotated[str, Field(strict=True, pattern=r"^ami-[0-9a-f]{8,17}$")] | None,
        default_text("the latest Amazon Linux 2023"),
    ] = None
    """Pins the AMI (`ami-` and 8 to 17 hex digits)."""
    log_retention_days: LogRetentionDays = 365
    """Days the hosts' container logs are kept: a retention CloudWatch Logs accepts."""
    # storage: s3 only: how long the image bucket's server access logs are kept (S3
    # lifecycle expiration days: any whole number of days; here at most ten years).
    access_log_retention_days: Annotated[Number, int_range(1, 3653, "a number of days")] = 365
    """1 to 3653: days the image bucket's S3 server access logs are kept before their
    bucket's lifecycle rule expires them (`storage: s3` only, refused otherwise; see
    [Orthanc host design](#orthanc-host-design))."""
    certificate_validity_days: Annotated[
        Number, int_range(90, 825, "a certificate lifetime in days")
    ] = 365
    """90 to 825: days the certificates the program issues from the DICOM CA (Orthanc's
    server certificate, the TLS modalities' and the proxy sites' client certificates) are
    valid."""
    data_volume_gib: Annotated[Number, int_range(10, 16384, "a volume size in GiB")] = 100
    """10 to 16384: the size of the encrypted EBS data volume (`storage: ebs`)."""
    database_instance_class: Annotated[
        str,
        Field(strict=True),
        AfterValidator(_check_database_class),
        SchemaHint(pattern=_DATABASE_CLASS.pattern),
    ] = "db.t4g.small"
    """An RDS class such as `db.m7g.large` (`index: postgresql`); previous generations RDS
    does not offer for PostgreSQL 16 (`db.t2`, `db.m4`, `db.r4` and older) are refused."""
    database_storage_gib: Annotated[
        Number,
        int_range(
            20,
            DATABASE_STORAGE_LIMIT_GIB,
            "a storage size in GiB (the RDS maximum, less room for storage autoscaling)",
        ),
    ] = 20
    """20 to 59,578: storage autoscaling may grow it 5-fold up to RDS's 65,536 GiB, and
    needs that ceiling at least 10 % above the allocation."""
    backup_retention_days: Annotated[Number, int_range(1, 35, "a number of days")] = 14
    """1 to 35: days the index database's automated backups are kept (`index:
    postgresql`)."""

    def with_environment_defaults(self, environment: str) -> OrthancSettings:
        """Fill what the stack leaves unset: storage and index from the environment, then
        hosting from the data (shared data makes a fleet), then the counts from hosting."""
        durable = environment != "dev"
        storage = self.storage or ("s3" if durable else "ebs")
        index = self.index or ("postgresql" if durable else "sqlite")
        shared = storage == "s3" and index == "postgresql"
        hosting = self.hosting or ("fleet" if shared else "singleHost")
        fleet = hosting == "fleet"
        return self.model_copy(
            update={
                "storage": storage,
                "index": index,
                "hosting": hosting,
                "instance_count": self.instance_count or (DEFAULT_FLEET_HOSTS if fleet else 1),
            }
        )

    def certificate_generation(self, sender: str) -> int:
        """How many of ``sender``'s certificates were revoked: each re-issues its key."""
        return sum(1 for revoked in self.revoked_certificates if revoked.sender == sender)

    @property
    def is_fleet(self) -> bool:
        return self.hosting == "fleet"

    @property
    def follows_new_amis(self) -> bool:
        """Whether hosts move to a newly published AMI at the next `pulumi up`."""
        if self.ami_updates is not None:
            return self.ami_updates == "follow"
        return self.is_fleet

    @property
    def fleet_sizes(self) -> tuple[int, int, int]:
        """(min, desired, max) of a fleet."""
        desired = self.instance_count or DEFAULT_FLEET_HOSTS
        low, high = self.fleet.sizes(desired)
        return low, desired, high

    def problems(self, at: Loc, *, nat_gateways: str) -> Iterator[Problem]:
        if self.placement == "private" and nat_gateways == "none":
            yield Problem(
                (*at, "placement"),
                "a private instance has no way to pull its container images: set "
                "orthgate:network.natGateways to single or perAz, or use placement: public",
                self.placement,
            )
        yield from self._hosting_problems(at)
        for key, cidrs in (
            ("dicomAllowedCidrs", self.dicom_allowed_cidrs),
            ("webAllowedCidrs", self.web_allowed_cidrs),
        ):
            yield from duplicates((*at, key), [str(c) for c in cidrs])
        yield from duplicates((*at, "modalities"), [m.name for m in self.modalities], "name")
        yield from ae_title_duplicates(
            (*at, "modalities"), [m.ae_title for m in self.modalities], "aeTitle"
        )
        yield from duplicates(
            (*at, "revokedCertificates"),
            [r.serial for r in self.revoked_certificates],
            "serial",
        )
        for i, modality in enumerate(self.modalities):
            yield from modality.problems((*at, "modalities", i))
            if ae_key(modality.ae_title) == ae_key(self.ae_title):
                yield Problem(
                    (*at, "modalities", i, "aeTitle"),
                    "is Orthanc's own AE title (compared without regard to case, as Orthanc "
                    "does); a sender needs its own",
                    modality.ae_title,
                )

    def _hosting_problems(self, at: Loc) -> Iterator[Problem]:
        shared = self.storage == "s3" and self.index == "postgresql"
        if self.storage == "s3" and self.index == "sqlite":
            yield Problem(
                (*at, "index"),
                "storage: s3 keeps the images in S3, but a SQLite index would live on one "
                "host's disk: lost at its next replacement, leaving the S3 objects orphaned. "
                "Use index: postgresql (or storage: ebs for a single host)",
                self.index,
            )
        if self.is_fleet and not shared:
            yield Problem(
                (*at, "hosting"),
                "a fleet's hosts must share their data: use storage: s3 and index: "
                "postgresql, or hosting: singleHost",
                self.hosting,
            )
        if not self.is_fleet:
            count = self.instance_count or 1
            if count > 1:
                yield Problem(
                    (*at, "instanceCount"),
                    "several hosts need hosting: fleet (with storage: s3 and index: "
                    "postgresql); a single host is one instance",
                    count,
                )
            if "fleet" in self.model_fields_set:
                yield Problem(
                    (*at, "fleet"),
                    "only applies with hosting: fleet",
                    self.fleet.model_dump(by_alias=True, exclude_unset=True),
                )
        else:
            low, desired, high = self.fleet_sizes
            if low > desired:
                yield Problem(
                    (*at, "fleet", "minSize"),
                    f"is above the desired count (orthgate:orthanc.instanceCount = {desired})",
                    low,
                )
            if high < desired:
                yield Problem(
                    (*at, "fleet", "maxSize"),
                    f"is below the desired count (orthgate:orthanc.instanceCount = {desired})",
                    high,
                )
        if self.storage != "s3" and "access_log_retention_days" in self.model_fields_set:
            yield Problem(
                (*at, "accessLogRetentionDays"),
                "only applies with storage: s3 (the access logs are the image bucket's); "
                f"with storage: {self.storage} there is nothing to log",
                self.access_log_retention_days,
            )
        if self.ami_id is not None and self.ami_updates is not None:
            yield Problem(
                (*at, "amiUpdates"),
                "has no effect with amiId set (a pinned AMI changes only when amiId does); "
                "remove one of the two",
                self.ami_updates,
            )
