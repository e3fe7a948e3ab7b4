"""The revocation list the program renders (clientVpnRevocationList), used by a real OpenVPN
2.6 server with ``crl-verify``: the revoked workstation certificate is refused, its re-issued
profile and another workstation's connect.

AWS Client VPN cannot run here; the OpenVPN server stands in for the endpoint as in
test_client_vpn_openvpn.py (same server configuration, plus the imported list).
"""

from __future__ import annotations

import re

import pytest

from tests.harness.pulumi_run import STACKS_DIR, read_stack_file
from tests.harness.update_plan import Deployment
from tests.integration.netlab import Lab, require
from tests.integration.test_client_vpn_openvpn import (
    CLIENT_CIDR,
    READY,
    server_config,
    with_remote,
)

PORT = 443


def config_with(**client_vpn) -> dict:
    config = read_stack_file(STACKS_DIR / "Pulumi.dev.yaml")
    config["orthgate:clientVpn"] = {
        "enabled": True,
        "clientCidr": CLIENT_CIDR,
        "workstations": ["reading-room-1", "reading-room-2"],
        **client_vpn,
    }
    return config


@pytest.fixture(scope="module")
def rendered():
    """Deployed, then reading-room-1's certificate revoked (its serial copied from the
    stack output, as an operator would), in the same account."""
    deployment = Deployment(stack="dev")
    first = deployment.up(config_with())
    serial = first.outputs["clientVpnCertificateSerials"]["reading-room-1"]
    revoked = deployment.up(
        config_with(revokedCertificates=[{"workstation": "reading-room-1", "serial": serial}])
    )
    assert revoked.outputs["clientVpnCaCertificate"] == first.outputs["clientVpnCaCertificate"]
    return {"before": first.outputs["clientVpnProfiles"], "after": revoked, "serial": serial}


@pytest.fixture(scope="module")
def endpoint(rendered, tmp_path_factory):
    openvpn = require("openvpn")["openvpn"]
    workdir = tmp_path_factory.mktemp("openvpn-crl")
    after = rendered["after"]
    acm = after.one("aws:acm/certificate:Certificate")
    (workdir / "server").mkdir()
    crl = workdir / "server" / "crl.pem"
    crl.write_text(after.outputs["clientVpnRevocationList"])
    config = server_config(
        workdir / "server",
        ca=after.outputs["clientVpnCaCertificate"],
        cert=acm.inputs["certificateBody"],
        key=acm.inputs["privateKey"],
        vpc_cidr=after.outputs["vpcCidr"],
        port=PORT,
    )
    (workdir / "server.conf").write_text(config + f"crl-verify {crl}\n")
    with Lab() as lab:
        server = lab.host("endpoint")
        process = server.spawn([openvpn, "--config", str(workdir / "server.conf")], label="server")
        process.wait_for_log(READY, timeout=30)

        def connect(profile: str, label: str):
            path = workdir / f"{label}.ovpn"
            path.write_text(with_remote(profile, server.ip, PORT))
            path.chmod(0o600)
            return lab.host(label).spawn([openvpn, "--config", str(path)], label=label)

        yield {"connect": connect, "server": process}


def test_the_revoked_certificate_is_refused(rendered, endpoint):
    tunnel = endpoint["connect"](rendered["before"]["reading-room-1"], "revoked")
    try:
        decimal = int(rendered["serial"], 16)  # OpenVPN prints the serial in decimal
        endpoint["server"].wait_for_log(
            re.compile(
                r"VERIFY ERROR: depth=0, error=certificate revoked: .*"
                rf"CN=reading-room-1\.clientvpn\.orthgate\.internal, serial={decimal}\b"
            ),
            timeout=20,
        )
        assert READY not in tunnel.log_text(), tunnel.log_tail()
    finally:
        tunnel.stop()


def test_the_reissued_profile_and_another_workstation_connect(rendered, endpoint):
    profiles = rendered["after"].outputs["clientVpnProfiles"]
    # reading-room-2 kept its certificate: the profile it already has still works.
    assert profiles["reading-room-2"] == rendered["before"]["reading-room-2"]
    tunnels = [
        endpoint["connect"](profiles["reading-room-1"], "reissued"),
        endpoint["connect"](profiles["reading-room-2"], "unrevoked"),
    ]
    try:
        for tunnel in tunnels:
            tunnel.wait_for_log(READY, timeout=30)
    finally:
        for tunnel in tunnels:
            tunnel.stop()
