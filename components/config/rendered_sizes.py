"""Size limits AWS sets on what the program renders, checked on plain values before any
resource is declared: what the Orthanc hosts are told, in secrets and in user data.

Sizes are measured with the very functions the components render with
(``components.orthanc.configuration``), fed the stack's settings and, for what only AWS
knows at deploy time, placeholders as long as the longest real value, so the bound is
exact or errs on the safe side:

- the configuration secret (orthanc.json) grows with every registered sender, modalities
  and DICOM proxy sites alike; it holds no password or key. The other secrets do not grow
  with the configuration: the admin secret holds a 32-character password, the TLS secret
  two certificates and one RSA 2048 key of bounded size (about 6 KB);
- the user data grows with the container image references (and the stack name).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

from orthgate.components.config.certificates import (
    TLS_MODALITY_UNIT,
    client_subject,
    proxy_site_common_name,
    tls_modality_common_name,
)
from orthgate.components.config.errors import Problem
from orthgate.components.naming import UNIQUE_SUFFIX_LENGTH, Naming
from orthgate.components.render.orthanc_config import Sender
from orthgate.components.render.sender_identity import SenderIdentity

if TYPE_CHECKING:
    from orthgate.components.config.orthanc import RegisteredModality
    from orthgate.components.config.settings import Settings

# Secrets Manager quotas: a secret value (SecretString) holds at most 65,536 bytes
# (Secrets Manager User Guide, "AWS Secrets Manager quotas"; not adjustable).
SECRET_VALUE_LIMIT = 65536

# The longest value each placeholder stands for.
STACK_NAME_MAX_LENGTH = 100  # the Pulumi CLI refuses longer stack names
BUCKET_NAME_MAX_LENGTH = 63  # S3 bucket naming rules
DNS_NAME_MAX_LENGTH = 253  # the database endpoint is a DNS name (RFC 1035)
REGION_MAX_LENGTH = 20  # the longest region code today has 14 characters
PARTITION = "aws-us-gov"  # the longest partition with Secrets Manager, in ARNs


def _placeholder(length: int, seed: str) -> str:
    """Letters and digits that look random, so they compress no better than real values."""
    digest = hashlib.shake_256(seed.encode()).digest(length)
    return base64.b32encode(digest).decode().lower()[:length]


def _context():  # noqa: ANN202 - AwsContext, imported late (it needs pulumi_aws)
    from orthgate.components.aws_context import AwsContext

    return AwsContext(
        region=_placeholder(REGION_MAX_LENGTH, "region"),
        account_id="0" * 12,
        partition=PARTITION,
        dns_suffix="amazonaws.com",
    )


def _naming(settings: Settings) -> Naming:
    return Naming(
        stack=_placeholder(STACK_NAME_MAX_LENGTH, "stack"), environment=settings.environment
    )


def registered_senders(settings: Settings) -> list[Sender]:
    """What Orthanc registers, in the order OrthancServer gets it: modalities, then sites,
    each with what proves it may use its AE title."""
    return [
        Sender(m.name, m.ae_title, modality_identity(m)) for m in settings.orthanc.modalities
    ] + [
        Sender(
            site.name,
            site.ae_title,
            SenderIdentity(certificate_subject=client_subject(proxy_site_common_name(site.name))),
        )
        for site in settings.dicom_proxies
    ]


def modality_identity(modality: RegisteredModality) -> SenderIdentity:
    if modality.connection == "tls":
        return SenderIdentity(
            certificate_subject=client_subject(
                tls_modality_common_name(modality.name), TLS_MODALITY_UNIT
            )
        )
    return SenderIdentity(source_cidrs=tuple(str(c) for c in modality.source_cidrs))


def config_secret_bytes(settings: Settings, senders: list[Sender]) -> int:
    """The size of Orthanc's configuration secret with these senders, at its largest."""
    from orthgate.components.orthanc.configuration import config_secret_value, orthanc_spec

    orthanc = settings.orthanc
    spec = orthanc_spec(
        orthanc,
        _context(),
        _naming(settings),
        senders,
        bucket=_placeholder(BUCKET_NAME_MAX_LENGTH, "bucket") if orthanc.storage == "s3" else None,
        database=(
            _placeholder(DNS_NAME_MAX_LENGTH, "database") if orthanc.index == "postgresql" else None
        ),
    )
    return len(config_secret_value(spec).encode())


def _senders_that_fit(settings: Settings, senders: list[Sender]) -> int:
    """How many of the first senders fit in one secret value (the size only grows)."""
    low, high = 0, len(senders)
    while low < high:
        middle = (low + high + 1) // 2
        if config_secret_bytes(settings, senders[:middle]) <= SECRET_VALUE_LIMIT:
            low = middle
        else:
            high = middle - 1
    return low


def config_secret_problems(settings: Settings) -> Iterator[Problem]:
    senders = registered_senders(settings)
    size = config_secret_bytes(settings, senders)
    if size <= SECRET_VALUE_LIMIT:
        return
    modalities, sites = len(settings.orthanc.modalities), len(settings.dicom_proxies)
    fit = _senders_that_fit(settings, senders)
    registered = f"{modalities} modalities and {sites} DICOM proxy sites"
    rule = (
        f"Orthanc registers {registered}; its configuration would be {size:,} bytes, and a "
        f"Secrets Manager secret holds at most {SECRET_VALUE_LIMIT:,} (AWS quota, not "
        f"adjustable): at most {fit} senders of this size fit"
    )
    if modalities:
        spare = fit - sites
        rule += (
            f", so at most {spare} modalities besides the sites"
            if spare > 0
            else ", fewer than the sites of orthgate:dicomProxies alone"
        )
        yield Problem(("orthanc", "modalities"), rule, modalities)
    else:
        yield Problem(("dicomProxies",), rule, sites)


# The TLS secret (components.orthanc.configuration.tls_secret_value): nginx's certificate,
# key, the DICOM CA, its revocation list and the sender maps, as JSON strings (a line break
# is two bytes there). Its certificates and key are of fixed size: an RSA 2048 key and
# server certificate (a handful of alternative names) and the RSA 3072 CA, together under
# 6,000 bytes of PEM; 10,000 leaves room.
TLS_PEMS_BOUND = 10_000
# The CRL in DER: at most 1,200 bytes besides its entries (the CA's subject, two times, two
# extensions and an RSA 3072 signature), and 40 per entry (a sequence of a serial of at
# most 20 bytes, RFC 5280 section 4.1.2.2, and a UTCTime).
CRL_FIXED_DER_BOUND = 1_200
CRL_ENTRY_DER_BOUND = 40


def revocation_list_bytes(entries: int) -> int:
    """An upper bound of the CRL's PEM inside the secret's JSON."""
    der = CRL_FIXED_DER_BOUND + CRL_ENTRY_DER_BOUND * entries
    base64 = 4 * -(-der // 3)
    return base64 + 2 * -(-base64 // 64) + 64  # escaped line breaks, BEGIN/END lines


def tls_secret_bytes(settings: Settings, revoked: int | None = None) -> int:
    from orthgate.components.config.sender_rules import plaintext_source_ranges
    from orthgate.components.render.sender_identity import render_sender_maps

    entries = len(settings.orthanc.revoked_certificates) if revoked is None else revoked
    maps = render_sender_maps(
        [s.identity for s in registered_senders(settings)], plaintext_source_ranges(settings)
    )
    return TLS_PEMS_BOUND + revocation_list_bytes(entries) + len(json.dumps(maps)) + 200


def tls_secret_problems(settings: Settings) -> Iterator[Problem]:
    size = tls_secret_bytes(settings)
    if size <= SECRET_VALUE_LIMIT:
        return
    revoked = len(settings.orthanc.revoked_certificates)
    fit = 0  # the size only grows with the entries: count up in large, then single steps
    for step in (1000, 100, 10, 1):
        while tls_secret_bytes(settings, fit + step) <= SECRET_VALUE_LIMIT:
            fit += step
    yield Problem(
        ("orthanc", "revokedCertificates"),
        f"lists {revoked} certificates; with the senders' identities nginx's TLS secret would "
        f"reach about {size:,} bytes, and a Secrets Manager secret holds at most "
        f"{SECRET_VALUE_LIMIT:,} (AWS quota, not adjustable): at most {fit} fit. Entries stay "
        "(each one counts towards its sender's re-issued certificate names); past this many, "
        "replace the DICOM CA (`pulumi up --replace` on its key re-issues every certificate; "
        "every site then needs its new bundle), after which the entries can go",
        revoked,
    )


# Rendering takes milliseconds; the same Orthanc settings are often validated many times.
_user_data_sizes: dict[tuple[str, str], int | None] = {}


def user_data_bytes(settings: Settings) -> int | None:
    """The size of a host's user data as EC2 receives it (gzipped when over the limit) at its
    largest, or None when even gzipped it exceeds the limit."""
    orthanc = settings.orthanc
    # The hosts' user data registers no sender and opens no port: only the rest counts.
    key = (
        orthanc.model_dump_json(exclude={"modalities", "dicom_allowed_cidrs", "web_allowed_cidrs"}),
        settings.environment,
    )
    if key not in _user_data_sizes:
        if len(_user_data_sizes) > 256:
            _user_data_sizes.clear()
        _user_data_sizes[key] = _render_user_data_bytes(settings)
    return _user_data_sizes[key]


def user_data_problems(settings: Settings) -> Iterator[Problem]:
    """EC2 takes at most 16 KiB of user data (EC2 User Guide, "Run commands when you launch
    an EC2 instance with user data input"); the renderer gzips what is longer."""
    from orthgate.components.render.cloud_init import USER_DATA_LIMIT

    if user_data_bytes(settings) is not None:
        return
    orthanc = settings.orthanc
    yield Problem(
        ("orthanc", "image"),
        f"with orthgate:orthanc.nginxImage ({len(orthanc.nginx_image)} characters), the hosts' "
        f"user data would exceed {USER_DATA_LIMIT:,} bytes even gzipped, the most EC2 takes: "
        "use shorter image references",
        orthanc.image,
    )


def _render_user_data_bytes(settings: Settings) -> int | None:
    from orthgate.components.orthanc.configuration import SECRET_NAMES, user_data
    from orthgate.components.render.docker_networks import LONGEST_BLOCK
    from orthgate.components.render.paths import HOST_DATA_DIR

    orthanc = settings.orthanc
    naming, context = _naming(settings), _context()
    roles = ["tls", "admin", "config"] + (["database"] if orthanc.index == "postgresql" else [])
    arn = f"arn:{PARTITION}:secretsmanager:{context.region}:{context.account_id}:secret:"
    arns = {
        role: arn
        + (
            f"rds!db-{_placeholder(36, role)}"
            if role == "database"
            else naming.secret_name_prefix("orthanc", SECRET_NAMES[role])
            + _placeholder(UNIQUE_SUFFIX_LENGTH, role)
        )
        + f"-{_placeholder(6, role + '-suffix')}"
        for role in roles
    }
    log_group = naming.log_group_prefix("orthanc") + "containers"
    if settings.is_production:
        log_group += "-" + _placeholder(UNIQUE_SUFFIX_LENGTH, "log-group")
    volume = orthanc.storage == "ebs"
    try:
        encoded = user_data(
            orthanc,
            context,
            naming,
            secret_arns=arns,
            log_group=log_group,
            volume_id=f"vol-{_placeholder(17, 'volume')}" if volume else None,
            instance_label=None if orthanc.is_fleet else "orthanc-0",
            uses_database=orthanc.index == "postgresql",
            disk_paths=["/", HOST_DATA_DIR] if volume else ["/"],
            # As if Docker's networks had to move, to the block with the longest addresses.
            docker_block=LONGEST_BLOCK,
        )
    except ValueError:  # encode_user_data: too long even gzipped
        return None
    return len(base64.b64decode(encoded))


def rendered_size_problems(settings: Settings) -> Iterator[Problem]:
    yield from config_secret_problems(settings)
    yield from tls_secret_problems(settings)
    yield from user_data_problems(settings)
