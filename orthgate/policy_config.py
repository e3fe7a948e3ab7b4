"""The CrossGuard pack's configuration for one orthgate stack (`--policy-pack-config`).

The pack (policy/) runs in its own virtualenv and knows nothing of orthgate's model; this
turns a stack's settings into what the pack needs to judge it: its DICOM TLS port, the
on-premises ranges outside RFC 1918 it routes over a private path, and whether it is
production. Keys are the pack's policy names (tests check they exist in the pack).
"""

from __future__ import annotations

from typing import Any

from orthgate.components.address_ranges import RFC1918
from orthgate.components.config.orthanc import ORTHANC_DICOM_PORT
from orthgate.components.config.settings import Settings

DICOM_POLICIES = ("dicom-ingress-restricted", "dicom-security-groups-on-dicom-endpoints")
ENVIRONMENT_POLICIES = (
    "rds-production-backups-and-deletion-protection",
    "rds-multi-az-in-production",
    "log-retention-one-year-in-production",
)
# The pack's defaults, plus the port orthgate's hosts take plaintext DICOM on.
DICOM_PORTS = sorted({104, 2762, 11112, ORTHANC_DICOM_PORT})


def policy_pack_config(settings: Settings) -> dict[str, dict[str, Any]]:
    """{policy name: properties} for `pulumi preview --policy-pack-config FILE`."""
    # The pack treats RFC 1918 as private already; it needs to hear of the others.
    routable = [
        str(c)
        for c in settings.network.private_path_cidrs
        if not any(c.subnet_of(r) for r in RFC1918)
    ]
    dicom: dict[str, Any] = {
        "dicomPorts": DICOM_PORTS,
        "dicomTlsPort": settings.orthanc.dicom_tls_port,
        "privateCidrs": routable,
    }
    environment = {"production": settings.is_production}
    return {
        **{name: dict(dicom) for name in DICOM_POLICIES},
        **{name: dict(environment) for name in ENVIRONMENT_POLICIES},
    }
