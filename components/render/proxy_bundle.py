"""The bundle a hospital site runs: an Orthanc proxy and its lossless forwarder.

Modalities send plaintext DICOM to the proxy on the site's LAN; the forwarder sends each
study over mutual-TLS DICOM to the cloud Orthanc and deletes locally only what the cloud
confirmed. Every file of the bundle comes from here; it holds the site's private key, so
the whole bundle is a secret.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orthgate.components.render.compose import to_yaml
from orthgate.components.render.container_hardening import environment, hardening
from orthgate.components.render.orthanc_config import Sender, modality_entry, sender_entry

FORWARDER_SCRIPT = Path(__file__).with_name("assets") / "forwarder.py"
FORWARDER_USER = "forwarder"
FORWARDER_JOBS = 2  # store jobs at once: the forwarder's concurrentJobs, Orthanc's ConcurrentJobs
FORWARDER_STATUS_PORT = 8099
# The proxy Orthanc's own ports inside its container; the site's listenPort maps to the first.
PROXY_DICOM_PORT = 4242
PROXY_HTTP_PORT = 8042
# Official Python image, pinned: it runs only the standard-library forwarder.
DEFAULT_FORWARDER_IMAGE = "python:3.12.8-slim-bookworm"
# The proxy's upstream, by name, among its DicomModalities (the forwarder's destination).
CLOUD_MODALITY = "cloud"
# DicomModalities entries the bundle itself declares: no site modality may take these names.
RESERVED_MODALITY_NAMES = frozenset({CLOUD_MODALITY})
# Ports the bundle keeps for itself on the site's machine, and what uses each: the
# modalities' port (listenPort) must be another. The status page is published on the
# host's loopback; the REST API port stays free so it can be published the same way.
PROXY_HOST_PORTS = {
    FORWARDER_STATUS_PORT: f"the forwarder's status page (127.0.0.1:{FORWARDER_STATUS_PORT})",
    PROXY_HTTP_PORT: "the proxy Orthanc's REST API (HttpPort in orthanc/orthanc.json)",
}

# Paths inside the proxy's containers.
TLS_DIR = "/etc/orthanc/tls"
SITE_CERT, SITE_KEY, CA_CERT = "site.crt", "site.key", "dicom-ca.crt"
STORAGE_DIR = "/var/lib/orthanc/db"


@dataclass(frozen=True)
class ProxyBundleSpec:
    site: str
    ae_title: str
    cloud_host: str
    cloud_port: int
    cloud_ae_title: str
    client_cert_pem: str
    client_key_pem: str
    ca_cert_pem: str
    forwarder_password: str
    orthanc_image: str
    forwarder_image: str = DEFAULT_FORWARDER_IMAGE
    listen_port: int = 104
    # The site machine's LAN address: the plaintext listener is published there only.
    listen_address: str = ""
    # None: any modality on the LAN may store; otherwise only these calling AE titles.
    modalities: Sequence[Sender] | None = None
    backlog_warning_instances: int = 10000
    tls_dir: str = TLS_DIR
    storage_dir: str = STORAGE_DIR
    orthanc_url: str = f"http://orthanc:{PROXY_HTTP_PORT}"
    status_address: str = "0.0.0.0"  # noqa: S104 - inside its container; published to loopback


def render_proxy_orthanc_config(spec: ProxyBundleSpec) -> dict[str, Any]:
    restricted = spec.modalities is not None
    taken = [s.name for s in spec.modalities or () if s.name in RESERVED_MODALITY_NAMES]
    if taken:  # the configuration model refuses these; never render a replaced upstream
        raise ValueError(f"modality names reserved by the proxy bundle: {taken}")
    modalities: dict[str, Any] = {
        CLOUD_MODALITY: modality_entry(
            spec.cloud_ae_title, spec.cloud_host, spec.cloud_port, may_store=False, use_tls=True
        ),
        **{sender.name: sender_entry(sender) for sender in spec.modalities or ()},
    }
    return {
        "Name": f"orthgate proxy {spec.site}",
        "DicomAet": spec.ae_title,
        "DicomPort": PROXY_DICOM_PORT,
        "HttpPort": PROXY_HTTP_PORT,
        # The LAN side is plaintext DICOM (that is the point of a proxy); the REST API is
        # reached by the forwarder only and is never published outside the compose network.
        "RemoteAccessAllowed": True,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {FORWARDER_USER: spec.forwarder_password},
        "DicomCheckCalledAet": True,
        "DicomCheckModalityHost": False,
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": not restricted,
        "DicomModalities": modalities,
        # Outgoing DICOM TLS to the cloud: this site's certificate, the DICOM CA as trust.
        "DicomTlsEnabled": False,
        "DicomTlsCertificate": f"{spec.tls_dir}/{SITE_CERT}",
        "DicomTlsPrivateKey": f"{spec.tls_dir}/{SITE_KEY}",
        "DicomTlsTrustedCertificates": f"{spec.tls_dir}/{CA_CERT}",
        "DicomTlsRemoteCertificateRequired": True,
        # A re-sent instance replaces the waiting one in place: a correction arriving before
        # its original went is what goes, and one arriving during the job stays for the next
        # (the forwarder deletes only the files it sent). The cloud overwrites the same way.
        "OverwriteInstances": True,
        "StableAge": 10,
        # The forwarder is the single source of truth for what still has to go.
        "SaveJobs": False,
        "JobsHistorySize": 1000,
        # The forwarder's store jobs, two at a time (its concurrentJobs).
        "ConcurrentJobs": FORWARDER_JOBS,
        "DicomScuTimeout": 30,
        "ExecuteLuaEnabled": False,
        "RestApiWriteToFileSystemEnabled": False,
        "HttpDescribeErrors": False,
        "StorageDirectory": spec.storage_dir,
        "IndexDirectory": spec.storage_dir,
    }


def render_forwarder_config(spec: ProxyBundleSpec) -> dict[str, Any]:
    return {
        "orthanc": {
            "url": spec.orthanc_url,
            "username": FORWARDER_USER,
            "password": spec.forwarder_password,
        },
        "destination": CLOUD_MODALITY,
        "pollSeconds": 2,
        # A study goes once nothing arrived for it for half a second (seen on Orthanc's
        # changes feed), not after StableAge: going early never loses an instance, since a
        # job deletes only the files it sent, and a study cut short goes in the next job.
        "quietSeconds": 0.5,
        # While backing off after failures, a C-ECHO this often ends the wait once the
        # link is back.
        "probeSeconds": 2,
        # Two associations at once: one transfers while the other's job is being
        # confirmed and deleted, and the cloud's Orthanc stores on two threads.
        "concurrentJobs": FORWARDER_JOBS,
        "maxBatchInstances": 500,
        "retry": {"initialSeconds": 5, "maxSeconds": 600},
        "backlogWarningInstances": spec.backlog_warning_instances,
        "status": {"address": spec.status_address, "port": FORWARDER_STATUS_PORT},
        "jobTimeoutSeconds": 3600,
    }


def render_proxy_compose(spec: ProxyBundleSpec) -> dict[str, Any]:
    # Docker publishes ports past host firewalls (ufw, firewalld): on the LAN address only.
    if not spec.listen_address or spec.listen_address.startswith("0."):
        raise ValueError("the proxy listens on the site's LAN address, never on every interface")
    return {
        "name": f"orthgate-proxy-{spec.site}",
        "services": {
            "orthanc": {
                "image": spec.orthanc_image,
                "restart": "unless-stopped",
                # DCMTK leaves Nagle on: small images would each wait for a delayed ACK.
                "environment": {"TCP_NODELAY": "1", **environment("orthanc")},
                "ports": [f"{spec.listen_address}:{spec.listen_port}:{PROXY_DICOM_PORT}"],
                "volumes": [
                    "./orthanc/orthanc.json:/etc/orthanc/orthanc.json:ro",
                    f"./tls:{spec.tls_dir}:ro",
                    f"proxy-data:{spec.storage_dir}",
                ],
                "stop_grace_period": "30s",
                # Privileges and writable paths: components.render.container_hardening.
                # The bundle's files are the operator's, 0600: read, never written.
                **hardening("orthanc", reads_bundle_files=True),
            },
            "forwarder": {
                "image": spec.forwarder_image,
                "restart": "unless-stopped",
                "depends_on": ["orthanc"],
                "command": [
                    "python3",
                    "/forwarder/forwarder.py",
                    "--config",
                    "/forwarder/forwarder.json",
                ],
                "environment": environment("forwarder"),
                "volumes": ["./forwarder:/forwarder:ro"],
                # The backlog, for the site's monitoring, on this machine only.
                "ports": [f"127.0.0.1:{FORWARDER_STATUS_PORT}:{FORWARDER_STATUS_PORT}"],
                "stop_grace_period": "30s",
                **hardening("forwarder", reads_bundle_files=True),
            },
        },
        # The images waiting to go: a named volume survives container replacement.
        "volumes": {"proxy-data": {}},
    }


def echoscu_command(spec: ProxyBundleSpec) -> list[str]:
    """The argv that checks the link to the cloud, as the site README shows it."""
    return [
        "echoscu",
        "-aet",
        spec.ae_title,
        "-aec",
        spec.cloud_ae_title,
        "+tls",
        f"tls/{SITE_KEY}",
        f"tls/{SITE_CERT}",
        "+cf",
        f"tls/{CA_CERT}",
        spec.cloud_host,
        str(spec.cloud_port),
    ]


def _shell_line(argv: Sequence[str], indent: str = "    ", break_before: int | None = None) -> str:
    """A shell command line, each word quoted: values never become more words or commands.

    dcmtk's tools take no ``--`` end of options; an option's value is read as a value even
    when it starts with ``-``, and the configuration refuses AE titles starting with it.
    """
    words = [shlex.quote(word) for word in argv]
    if break_before is None:
        return indent + " ".join(words)
    return (
        indent
        + " ".join(words[:break_before])
        + " \\\n"
        + indent
        + "  "
        + " ".join(words[break_before:])
    )


def _code(value: object) -> str:
    """A Markdown code span showing ``value`` as is, backticks included."""
    text = str(value)
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def render_site_readme(spec: ProxyBundleSpec) -> str:
    echo = _shell_line(echoscu_command(spec), break_before=5)
    status = _shell_line(["curl", "-s", f"http://127.0.0.1:{FORWARDER_STATUS_PORT}/status"])
    return f"""# orthgate DICOM proxy: site {spec.site}

This folder runs an Orthanc that receives images from the site's modalities in plaintext
DICOM and forwards each study over DICOM TLS (mutual certificates) to the cloud Orthanc.
An image leaves this machine only once the cloud has confirmed it; while the link is down
images wait here and are retried (5 s, growing to 10 minutes between tries, and a C-ECHO
every 2 s resumes sending as soon as the cloud answers again).

It holds this site's private key (`tls/{SITE_KEY}`) and the forwarder's password: keep the
folder readable by administrators only.

## Start
    docker compose up -d

The proxy listens on {_code(spec.listen_address)} only: give this machine that address for
good (static, or reserved in DHCP). Docker does not retry a bind to an address that is not
up yet when it restarts the containers at boot; on a machine whose address comes late, set
`net.ipv4.ip_nonlocal_bind=1` (sysctl) or run `docker compose up -d` from a unit ordered
after `network-online.target`.

Docker routes 172.17.0.0/16 and 172.18.0.0/16 to its own networks: if modalities sit in
either, set `bip` and `default-address-pools` in /etc/docker/daemon.json to a range the
LAN does not use first, or their stores will get no answer.

## Modalities (on the LAN)
Send to {_code(spec.listen_address)} (this machine's LAN address, the only one the proxy
listens on), port {spec.listen_port}, called AE title {_code(spec.ae_title)}.
{_modalities_line(spec)}

### Speed: Nagle's algorithm on the modality
Many DICOM stacks (dcmtk, and products built on it) leave Nagle's algorithm on unless
told otherwise; dcmtk turns it off only when its process has `TCP_NODELAY=1` in the
environment. With it on, the end of each image waits for a delayed acknowledgement from
this machine, and a study takes several times longer to arrive here (orthgate's
benchmark, `bench/dicom_path.py`, measures both cases). The proxy itself runs with
`TCP_NODELAY=1`. Ask the modality's vendor whether its DICOM sender disables Nagle
(`TCP_NODELAY`). To see it, capture a send on this machine:

    sudo tcpdump -ttt -nn -i any 'tcp dst port {spec.listen_port}'

Pauses of about 40 ms (Linux senders) or 200 ms (Windows senders) before a short
segment, once per image, mean Nagle is on; a steady stream of full segments means it
is off.

## Firewall
- Outbound: TCP to {_code(spec.cloud_host)} port {spec.cloud_port} only (DICOM TLS).
- Inbound: TCP {spec.listen_port} from the modalities' LAN only. Nothing from the Internet.

## Check the link to the cloud
{echo}

## Watch the backlog
{status}
    docker compose logs -f forwarder    # one line per forwarded study

The site certificate expires; when orthgate renews it, write the new bundle over this
folder and run `docker compose up -d` again. Waiting images are kept in the `proxy-data`
volume across restarts and updates.
"""


def _modalities_line(spec: ProxyBundleSpec) -> str:
    if spec.modalities is None:
        return "Any calling AE title is accepted."
    titles = ", ".join(_code(m.ae_title) for m in spec.modalities)
    return f"Only these calling AE titles are accepted: {titles}."


def render_proxy_bundle(spec: ProxyBundleSpec) -> dict[str, str]:
    """Relative path -> file content: everything a site needs, ready to run."""
    return {
        "README.md": render_site_readme(spec),
        "docker-compose.yml": to_yaml(render_proxy_compose(spec)),
        "orthanc/orthanc.json": json.dumps(render_proxy_orthanc_config(spec), indent=2) + "\n",
        "forwarder/forwarder.py": FORWARDER_SCRIPT.read_text(),
        "forwarder/forwarder.json": json.dumps(render_forwarder_config(spec), indent=2) + "\n",
        f"tls/{SITE_CERT}": spec.client_cert_pem,
        f"tls/{SITE_KEY}": spec.client_key_pem,
        f"tls/{CA_CERT}": spec.ca_cert_pem,
    }


# Files an operator must protect when the bundle is written to disk.
PRIVATE_FILES = frozenset({f"tls/{SITE_KEY}", "orthanc/orthanc.json", "forwarder/forwarder.json"})
