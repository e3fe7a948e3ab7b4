"""The workstation profiles the program renders, used by a real OpenVPN 2.6 client.

AWS Client VPN cannot run here, so an OpenVPN server stands in for the endpoint, set up
the way the program sets up the endpoint: the program's server certificate and VPN CA,
the client pool = clientCidr, split tunnel (only the VPC route is pushed). Behind it a
"VPC" host answers on the VPC's address range.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from tests.harness.pulumi_run import STACKS_DIR, evaluate, read_stack_file
from tests.integration.certs import issue_client_cert, issue_foreign_client_cert
from tests.integration.netlab import Lab, Process, require

CLIENT_CIDR = "192.168.0.0/22"
READY = "Initialization Sequence Completed"


def server_config(workdir: Path, *, ca: str, cert: str, key: str, vpc_cidr: str, port: int) -> str:
    """An OpenVPN server playing the AWS endpoint (TLS 1.2+, AES-256-GCM, no tls-auth)."""
    for name, pem in (("ca.crt", ca), ("server.crt", cert), ("server.key", key)):
        (workdir / name).write_text(pem)
    (workdir / "server.key").chmod(0o600)
    pool, vpc = IPv4Network(CLIENT_CIDR), IPv4Network(vpc_cidr)
    return f"""port {port}
proto udp
dev tun
topology subnet
ca {workdir}/ca.crt
cert {workdir}/server.crt
key {workdir}/server.key
dh none
tls-version-min 1.2
data-ciphers AES-256-GCM
server {pool.network_address} {pool.netmask}
push "route {vpc.network_address} {vpc.netmask}"
keepalive 5 30
verb 3
"""


def with_remote(profile: str, address: str, port: int) -> str:
    """Point a profile at the test server; everything else stays as rendered."""
    replaced, count = re.subn(r"^remote \S+ \d+$", f"remote {address} {port}", profile, flags=re.M)
    assert count == 1
    return replaced


def with_client_cert(profile: str, cert: Path, key: Path) -> str:
    profile = re.sub(r"<cert>.*?</cert>", f"<cert>\n{cert.read_text().strip()}\n</cert>", profile,
                     flags=re.S)  # fmt: skip
    return re.sub(r"<key>.*?</key>", f"<key>\n{key.read_text().strip()}\n</key>", profile,
                  flags=re.S)  # fmt: skip


@pytest.fixture(scope="module")
def rendered():
    config = read_stack_file(STACKS_DIR / "Pulumi.dev.yaml")
    config["orthgate:clientVpn"] = {
        "enabled": True,
        "clientCidr": CLIENT_CIDR,
        "workstations": ["reading-room-1"],
    }
    return evaluate(config, stack="dev")


@pytest.fixture(scope="module")
def vpn_lab(rendered, tmp_path_factory):
    openvpn = require("openvpn")["openvpn"]
    workdir = tmp_path_factory.mktemp("openvpn")
    acm = rendered.one("aws:acm/certificate:Certificate")
    vpc_cidr = rendered.outputs["vpcCidr"]
    port = 443
    with Lab() as lab:
        server = lab.host("endpoint")
        client = lab.host("workstation")
        vpc = lab.segment("vpc", "10.40.0.0/24")
        server.attach(vpc, "10.40.0.5/24")
        target = lab.host("orthanc", segment=vpc, address="10.40.0.10/24")
        target.add_route(CLIENT_CIDR, "10.40.0.5")
        server.enable_forwarding()
        (workdir / "server").mkdir()
        (workdir / "server.conf").write_text(
            server_config(
                workdir / "server",
                ca=rendered.outputs["clientVpnCaCertificate"],
                cert=acm.inputs["certificateBody"],
                key=acm.inputs["privateKey"],
                vpc_cidr=vpc_cidr,
                port=port,
            )
        )
        endpoint = server.spawn([openvpn, "--config", str(workdir / "server.conf")], label="server")
        endpoint.wait_for_log(READY, timeout=30)
        listener = target.spawn(
            ["python3", "-m", "http.server", "--bind", "10.40.0.10", "8042"], label="http"
        )
        target.wait_for_port(8042, address="10.40.0.10", process=listener)

        def connect(profile: str, label: str) -> Process:
            path = workdir / f"{label}.ovpn"
            path.write_text(with_remote(profile, server.ip, port))
            path.chmod(0o600)
            return client.spawn([openvpn, "--config", str(path)], label=label)

        yield {
            "lab": lab,
            "client": client,
            "connect": connect,
            "endpoint": endpoint,
            "workdir": workdir,
        }


def test_the_rendered_profile_brings_the_tunnel_up_with_only_the_vpc_route(rendered, vpn_lab):
    profile = rendered.outputs["clientVpnProfiles"]["reading-room-1"]
    tunnel = vpn_lab["connect"](profile, "reading-room-1")
    try:
        tunnel.wait_for_log(READY, timeout=30)
        routes = vpn_lab["client"].run(["ip", "route"]).stdout
        # Split tunnel: the VPC is routed through the tunnel, nothing else (no default route).
        assert re.search(r"^10\.40\.0\.0/16 via 192\.168\.\d+\.\d+ dev tun", routes, re.M), routes
        assert "default" not in routes
        address = vpn_lab["client"].run(["ip", "-4", "addr", "show", "dev", "tun0"]).stdout
        assert "inet 192.168." in address
        assert vpn_lab["client"].can_connect("10.40.0.10", 8042, timeout=3)
    finally:
        tunnel.stop()


def never_ready(process: Process, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if READY in process.log_text():
            return False
        time.sleep(0.25)
    return True


def refused_then_never_ready(
    tunnel: Process, endpoint: Process, since: int, refusal: str, grace: float = 2.0
) -> bool:
    """The endpoint logs the refusal (after log offset ``since``), and the client still has
    no tunnel ``grace`` seconds later: OpenVPN clients keep retrying quietly, so waiting for
    the server's verdict is what makes the negative check short and still meaningful."""
    deadline = time.monotonic() + 30
    while refusal not in endpoint.log_text()[since:]:
        if READY in tunnel.log_text() or time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return never_ready(tunnel, grace)


def test_a_client_certificate_from_a_foreign_ca_never_connects(rendered, vpn_lab):
    foreign = issue_foreign_client_cert(vpn_lab["workdir"] / "foreign", "reading-room-1")
    profile = with_client_cert(
        rendered.outputs["clientVpnProfiles"]["reading-room-1"], foreign.cert, foreign.key
    )
    since = len(vpn_lab["endpoint"].log_text())
    tunnel = vpn_lab["connect"](profile, "foreign")
    try:
        assert refused_then_never_ready(tunnel, vpn_lab["endpoint"], since, "VERIFY ERROR"), (
            tunnel.log_tail()
        )
        assert not vpn_lab["client"].can_connect("10.40.0.10", 8042, timeout=1)
    finally:
        tunnel.stop()


def test_an_expired_client_certificate_from_the_right_ca_never_connects(rendered, vpn_lab):
    ca_key = next(
        r.outputs["privateKeyPem"]
        for r in rendered.of_type("tls:index/privateKey:PrivateKey")
        if r.name == "client-vpn-ca-key"
    )
    past = datetime.now(UTC) - timedelta(days=2)
    expired = issue_client_cert(
        vpn_lab["workdir"] / "expired",
        "reading-room-1.clientvpn.orthgate.internal",
        ca_cert_pem=rendered.outputs["clientVpnCaCertificate"],
        ca_key_pem=ca_key,
        not_before=past - timedelta(days=1),
        not_after=past,
    )
    profile = with_client_cert(
        rendered.outputs["clientVpnProfiles"]["reading-room-1"], expired.cert, expired.key
    )
    since = len(vpn_lab["endpoint"].log_text())
    tunnel = vpn_lab["connect"](profile, "expired")
    try:
        assert refused_then_never_ready(
            tunnel, vpn_lab["endpoint"], since, "certificate expired"
        ), tunnel.log_tail()
    finally:
        tunnel.stop()
