"""The hospital the sender-identity tests stand up: the dev stack with the lab's subnet as
the campus network behind a site-to-site VPN, a CT known by its address, an MR from
anywhere on the campus, and a TLS modality."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from tests.harness.pulumi_run import STACKS_DIR, read_stack_file
from tests.integration.dicom_data import InstanceRecord, make_study
from tests.integration.netlab import storescu

CAMPUS = "10.77.0.0/24"  # netlab.Lab's default subnet


def campus_stack(ct_address: str, *, tls_modality: bool = True) -> dict:
    config = read_stack_file(STACKS_DIR / "Pulumi.dev.yaml")
    config["orthgate:network"]["siteToSiteVpns"] = [
        {
            "name": "campus",
            "customerGatewayIp": "203.0.113.10",
            "bgpAsn": 65010,
            "onPremCidrs": [CAMPUS],
        }
    ]
    modalities = [
        {"name": "ct-scanner-1", "aeTitle": "CT_SCANNER_1", "sourceCidrs": [f"{ct_address}/32"]},
        {"name": "mr-scanner-1", "aeTitle": "MR_SCANNER_1"},
    ]
    if tls_modality:
        modalities.append({"name": "dx-room-2", "aeTitle": "DX_ROOM_2", "connection": "tls"})
    config["orthgate:orthanc"]["modalities"] = modalities
    return config


_sent = itertools.count(1)


def stores(
    lab: dict[str, Any],
    host: str,
    ae_title: str,
    *,
    tls: str | None = None,
    port: int | None = None,
    study: tuple[Path, InstanceRecord] | None = None,
) -> tuple[bool, str]:
    """Send one instance (a fresh one unless ``study``) from ``lab["hosts"][host]`` as
    ``ae_title``, over TLS with ``lab["certificates"][tls]`` or in plaintext, to the cloud
    side ``lab["cloud"]``: whether its Orthanc now holds it, and what storescu and nginx said."""
    cloud = lab["cloud"]
    if study is None:
        number = next(_sent)
        directory = lab["workdir"] / "studies" / f"{number}"
        [record] = make_study(directory, instances_per_series=1, seed=f"identity-{number}")
    else:
        directory, record = study
    rc, output = storescu(
        lab["hosts"][host],
        cloud.host.ip,
        port or (cloud.tls_port if tls else cloud.plain_port),
        directory,
        calling_aet=ae_title,
        called_aet=cloud.ae_title,
        tls=lab["certificates"][tls] if tls else None,
        timeout=60,
    )
    found = cloud.orthanc.request("POST", "/tools/lookup", body=record.sop_uid).json()
    return bool(found), f"storescu rc={rc}\n{output}\n{cloud.nginx.log_tail()}"
