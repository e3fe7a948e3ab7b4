"""Run a site's DICOM proxy bundle, as the program rendered it, on Debian's Orthanc.

The bundle is written to disk with the operator tool (orthgate.handover). Its proxy
Orthanc configuration and forwarder run unchanged; the test reproduces the compose mounts
(./tls on /etc/orthanc/tls, the data volume on /var/lib/orthanc/db) with bind mounts, and
resolves the cloud's host name and `orthanc` the way DNS and compose would.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from orthgate.components.render.proxy_bundle import FORWARDER_STATUS_PORT
from orthgate.handover import write_bundle
from tests.integration.netlab import Host, Orthanc, Process, storescu


@dataclass
class ProxySide:
    host: Host
    orthanc: Orthanc
    forwarder: Process | None
    bundle_dir: Path
    ae_title: str
    environment: dict[str, str]
    _forwarder_extra_hosts: dict[str, str]

    def store_from(self, modality: Host, study_dir: Path, calling_aet: str = "CT_SCANNER") -> None:
        """A modality on the site's LAN stores a study into the proxy (plaintext)."""
        rc, output = storescu(
            modality,
            self.host.ip,
            self.orthanc.dicom_port,
            study_dir,
            calling_aet=calling_aet,
            called_aet=self.ae_title,
        )
        assert rc == 0, output

    def start_forwarder(self) -> Process:
        self.forwarder = self.host.spawn(
            [
                sys.executable,
                str(self.bundle_dir / "forwarder" / "forwarder.py"),
                "--config",
                str(self.bundle_dir / "forwarder" / "forwarder.json"),
            ],
            extra_hosts=self._forwarder_extra_hosts,
            label="forwarder",
        )
        self.host.wait_for_port(FORWARDER_STATUS_PORT, process=self.forwarder)
        return self.forwarder

    def stop(self) -> None:
        if self.forwarder is not None:
            self.forwarder.stop()
        self.orthanc.stop()

    def restart(self) -> None:
        """The site machine reboots: both containers stop and start again; data stays."""
        self.stop()
        self.orthanc.start()
        self.start_forwarder()

    def status(self) -> dict:
        response = self.host.http("GET", f"http://127.0.0.1:{FORWARDER_STATUS_PORT}/status")
        assert response.status == 200, response
        return dict(response.json())


def start_proxy_side(
    host: Host, bundle: dict[str, str], workdir: Path, *, cloud_ip: str
) -> ProxySide:
    bundle_dir = workdir / "bundle"
    write_bundle(bundle, bundle_dir)
    config = json.loads((bundle_dir / "orthanc" / "orthanc.json").read_text())
    compose = yaml.safe_load((bundle_dir / "docker-compose.yml").read_text())
    service = compose["services"]["orthanc"]
    environment = {k: str(v) for k, v in service.get("environment", {}).items()}
    mounts = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"]}

    # /etc/orthanc (Debian has it) shows the bundle's tls/ where compose mounts it.
    etc_orthanc = workdir / "etc-orthanc"
    tls_target = next(t for t, s in mounts.items() if s == "./tls")
    (etc_orthanc / Path(tls_target).relative_to("/etc/orthanc")).mkdir(parents=True)
    var_lib = workdir / "var-lib-orthanc"
    data_target = next(t for t, s in mounts.items() if s == "proxy-data")
    (var_lib / Path(data_target).relative_to("/var/lib/orthanc")).mkdir(parents=True)
    cloud_host = config["DicomModalities"]["cloud"]["Host"]
    orthanc = Orthanc(
        host,
        bundle_dir / "orthanc" / "orthanc.json",
        binds={
            etc_orthanc: "/etc/orthanc",
            bundle_dir / "tls": tls_target,
            var_lib: "/var/lib/orthanc",
        },
        extra_hosts={cloud_host: cloud_ip},
        env=environment,
    ).start()
    side = ProxySide(
        host=host,
        orthanc=orthanc,
        forwarder=None,
        bundle_dir=bundle_dir,
        ae_title=config["DicomAet"],
        environment=environment,
        _forwarder_extra_hosts={"orthanc": "127.0.0.1"},
    )
    side.start_forwarder()
    return side
