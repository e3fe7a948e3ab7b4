"""``orthgate:orthanc``: the Orthanc server, its DICOM and web entry points, its storage."""

from __future__ import annotations

import re
from collections.abc import Iterator
from ipaddress import IPv4Network
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from orthgate.components.address_ranges import NEVER_A_SENDER
from orthgate.components.config.base import Section
from orthgate.components.config.errors import Loc, Problem, duplicates
from orthgate.components.config.serials import CertificateSerial
from orthgate.components.config.types import (
    DnsLabel,
    DomainName,
    Ipv4Cidr,
    LogRetentionDays,
    Number,
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


AeTitle = Annotated[str, Field(strict=True), AfterValidator(check_ae_title)]
AllowedCidr = Annotated[IPv4Network, BeforeValidator(parse_allowed_cidr)]


class RegisteredModality(Section):
    """A sender Orthanc accepts stores from: its calling AE title, and what proves it may
    use it. ``connection: tls``: a client certificate the program issues (CN = name), on
    the DICOM TLS port only. ``private`` (the default): the plaintext port of a private path,
    from ``sourceCidrs`` when given (ranges that are then this modality's, and of any other
    that lists the very same ranges), else from anywhere a private path reaches and no
    other modality's ``sourceCidrs`` cover."""

    name: DnsLabel
    ae_title: AeTitle
    connection: Literal["private", "tls"] = "private"
    source_cidrs: list[Ipv4Cidr] = []

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
    serial: CertificateSerial


HostCount = Annotated[Number, int_range(1, MAX_HOSTS, "a number of hosts")]


class FleetSettings(Section):
    """``hosting: fleet``: an Auto Scaling group of identical hosts behind load balancers.

    ``orthgate:orthanc.instanceCount`` is the desired count; these bound it.
    """

    min_size: HostCount | None = None  # unset: the desired count
    max_size: HostCount | None = None  # unset: twice the desired count, at most MAX_HOSTS
    # Set: a target-tracking policy keeps the average CPU near this, between min and max.
    target_cpu_percent: Annotated[Number, int_range(10, 90, "a CPU percentage")] | None = None
    health_check_grace_seconds: Annotated[Number, int_range(60, 3600, "a number of seconds")] = (
        DEFAULT_HEALTH_CHECK_GRACE_SECONDS
    )

    def sizes(self, desired: int) -> tuple[int, int]:
        """(min, max) with the defaults filled in."""
        return (
            self.min_size if self.min_size is not None else desired,
            self.max_size if self.max_size is not None else min(MAX_HOSTS, 2 * desired),
        )


class OrthancSettings(Section):
    instance_type: Annotated[str, Field(strict=True), AfterValidator(_check_instance_type)] = (
        "t3.medium"
    )
    # Unset: 1 for a single host, DEFAULT_FLEET_HOSTS for a fleet (its desired count).
    instance_count: HostCount | None = None
    # Unset: fleet where the data is shared (storage: s3 and index: postgresql), else single.
    hosting: Literal["fleet", "singleHost"] | None = None
    fleet: FleetSettings = FleetSettings()
    # Unset: follow for a fleet (a new AMI rolls through without interruption), hold for a
    # single host (a new AMI would interrupt it; the program warns when one is waiting).
    ami_updates: Literal["follow", "hold"] | None = None
    placement: Literal["public", "private"] = "public"
    ae_title: AeTitle = "ORTHANC"
    dicom_tls_port: Annotated[
        Number, int_range(1024, 65535, "a TCP port"), AfterValidator(_check_tls_port)
    ] = 11112
    dicom_allowed_cidrs: list[AllowedCidr] = []
    web_allowed_cidrs: list[AllowedCidr] = []
    modalities: list[RegisteredModality] = []
    revoked_certificates: list[RevokedCertificate] = []
    site_name: DomainName | None = None
    # Unset: chosen by orthgate:environment (dev: ebs and sqlite; otherwise s3 and postgresql).
    storage: Literal["s3", "ebs"] | None = None
    index: Literal["postgresql", "sqlite"] | None = None
    image: Annotated[str, Field(strict=True), AfterValidator(_check_image)] = DEFAULT_ORTHANC_IMAGE
    nginx_image: Annotated[str, Field(strict=True), AfterValidator(_check_image)] = (
        DEFAULT_NGINX_IMAGE
    )
    ami_id: Annotated[str, Field(strict=True, pattern=r"^ami-[0-9a-f]{8,17}$")] | None = None
    log_retention_days: LogRetentionDays = 365
    # storage: s3 only: how long the image bucket's server access logs are kept (S3
    # lifecycle expiration days: any whole number of days; here at most ten years).
    access_log_retention_days: Annotated[Number, int_range(1, 3653, "a number of days")] = 365
    certificate_validity_days: Annotated[
        Number, int_range(90, 825, "a certificate lifetime in days")
    ] = 365
    data_volume_gib: Annotated[Number, int_range(10, 16384, "a volume size in GiB")] = 100
    database_instance_class: Annotated[
        str, Field(strict=True), AfterValidator(_check_database_class)
    ] = "db.t4g.small"
    database_storage_gib: Annotated[
        Number,
        int_range(
            20,
            DATABASE_STORAGE_LIMIT_GIB,
            "a storage size in GiB (the RDS maximum, less room for storage autoscaling)",
        ),
    ] = 20
    backup_retention_days: Annotated[Number, int_range(1, 35, "a number of days")] = 14

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
