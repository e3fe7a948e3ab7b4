"""What each DICOM proxy site's machine listens on: read off the bundle the program renders
for it (its compose file's published ports, its Orthanc's registrations). These ports are on
the site's LAN, not in AWS, but orthgate deploys them and they take plaintext DICOM."""

from __future__ import annotations

import json
from typing import Any

import yaml

from orthgate.components.config import Settings
from orthgate.exposure.row import DICOM_PLAIN, Exposure
from orthgate.handover import BUNDLES_OUTPUT
from orthgate.offline.evaluation import Evaluation

_LOOPBACK = ("127.", "localhost", "[::1]")


def proxy_site_rows(evaluation: Evaluation, settings: Settings) -> list[Exposure]:
    bundles: dict[str, Any] = evaluation.outputs.get(BUNDLES_OUTPUT) or {}
    rows = []
    for site in settings.dicom_proxies:
        bundle = bundles.get(site.name) or {}
        compose = yaml.safe_load(bundle.get("docker-compose.yml") or "{}") or {}
        orthanc = json.loads(bundle.get("orthanc/orthanc.json") or "{}")
        for service in (compose.get("services") or {}).values():
            for published in service.get("ports") or []:
                host, _, rest = str(published).partition(":")
                port = rest.split(":", 1)[0]
                if host.startswith(_LOOPBACK):
                    continue  # the forwarder's status page: the site machine only
                rows.append(_listener_row(site.name, host, int(port), orthanc))
    return rows


def _listener_row(site: str, host: str, port: int, orthanc: dict[str, Any]) -> Exposure:
    senders = {
        name: entry
        for name, entry in (orthanc.get("DicomModalities") or {}).items()
        if name != "cloud" and entry.get("AllowStore")
    }
    if orthanc.get("DicomAlwaysAllowStore"):
        titles: tuple[str, ...] = ("any AE title (acceptAnyModality)",)
        who = "any host on the site's LAN may store (acceptAnyModality: true)"
    else:
        titles = tuple(sorted(entry["AET"] for entry in senders.values()))
        who = "calling AE title only (the registered modalities); the LAN is trusted"
    return Exposure(
        f"DICOM proxy {site} (the site's machine)",
        port,
        "tcp",
        DICOM_PLAIN,
        f"site LAN ({site})",
        (f"the site's LAN, to {host}",),
        ae_titles=titles,
        authentication=who,
        address=f"{host}:{port}",
        note="on premises, not in AWS: forwarded to the cloud over DICOM TLS",
    )
