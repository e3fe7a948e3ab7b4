"""The hospital the sender-identity tests stand up: the dev stack with the lab's subnet as
the campus network behind a site-to-site VPN, a CT known by its address, an MR from
anywhere on the campus, and a TLS modality."""

from __future__ import annotations

from tests.harness.pulumi_run import STACKS_DIR, read_stack_file

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
