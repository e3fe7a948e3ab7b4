"""Attacks on sender identity, against the real nginx and Orthanc the program renders.

Certificates the DICOM CA signs but the program never issues (crafted subjects, odd
serials), padded AE titles, Orthanc's own port reached past nginx, and a retired TLS
modality's name taken by a new site: none of them may store as anyone.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from orthgate.components.config.serials import format_serial
from orthgate.offline.aws_mock import AwsMock
from tests.harness.pulumi_run import RecordingMocks, evaluate
from tests.integration.certs import issue_client_cert
from tests.integration.cloud_side import CloudSide, issued_client, start_cloud_side
from tests.integration.identity_lab import campus_stack, stores
from tests.integration.netlab import Lab, TlsClient, tls_probe

SITE = {
    "name": "north-clinic",
    "sourceCidrs": ["198.51.100.8/32"],
    "aeTitle": "NORTH_GW",
    "listenAddress": "192.168.50.10",
    "acceptAnyModality": True,
}
# Serials nginx and the config must agree on: the high bit set (DER adds a 00 byte), a
# single byte, a leading zero nibble.
ODD_SERIALS = (0xFF << 120 | 0x1234, 0x0A, 0x0FA9 << 100 | 7)


def stack_config(ct_address: str, *, retire_dx: bool = False, revoked=()) -> dict:
    config = campus_stack(ct_address, tls_modality=not retire_dx)
    sites = [SITE]
    if retire_dx:
        # The TLS modality is retired (its certificate not revoked), and later a new proxy
        # site happens to get the same name: the modality's unit keeps them apart.
        sites = [SITE, {**SITE, "name": "dx-room-2", "aeTitle": "DXSITE_GW",
                        "sourceCidrs": ["198.51.100.9/32"]}]  # fmt: skip
    if revoked:
        config["orthgate:orthanc"]["revokedCertificates"] = list(revoked)
    config["orthgate:dicomProxies"] = sites
    return config


def ca_signed(
    dest: Path, label: str, subject: x509.Name, *, ca_cert_pem: str, ca_key_pem: str, serial=None
) -> TlsClient:
    """A clientAuth leaf with any subject and serial, signed by the DICOM CA."""
    files = issue_client_cert(
        dest, label, ca_cert_pem=ca_cert_pem, ca_key_pem=ca_key_pem, subject=subject, serial=serial
    )
    (dest / "ca.crt").write_text(ca_cert_pem)
    return TlsClient(dest / "ca.crt", files.cert, files.key)


def _cn(value: str) -> x509.NameAttribute:
    return x509.NameAttribute(NameOID.COMMON_NAME, value)


def _ou(value: str) -> x509.NameAttribute:
    return x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, value)


# The subject pulumi-tls gives north-clinic's certificate (O, OU, CN, in Go's order).
NORTH_SUBJECT = x509.Name(
    [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "orthgate"), _ou("DICOM"), _cn("north-clinic")]
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("attack-identity")
    with Lab() as lab:
        cloud_host, ct, remote = (lab.host(n) for n in ("cloud", "ct", "remote"))
        account = AwsMock(region="eu-central-1", zone_count=3)
        first = evaluate(stack_config(ct.ip), stack="dev", mocks=RecordingMocks(account))
        cloud = start_cloud_side(cloud_host, first, workdir / "cloud")
        clients = workdir / "clients"
        sign = {"ca_cert_pem": cloud.ca_cert_pem, "ca_key_pem": cloud.ca_key_pem}
        certificates = {
            "north": issued_client(first, clients / "north", site="north-clinic"),
            "dx": issued_client(first, clients / "dx", modality="dx-room-2"),
            # CA-signed subjects the program never issues, to test the nginx map itself.
            "ou-escape": ca_signed(
                clients, "ou-escape", x509.Name([_ou("x,CN=north-clinic"), _cn("nobody")]), **sign
            ),
            "two-cn": ca_signed(
                clients, "two-cn", x509.Name([_cn("north-clinic"), _cn("nobody")]), **sign
            ),
            "multi-rdn": ca_signed(
                clients,
                "multi-rdn",
                x509.Name([x509.RelativeDistinguishedName([_cn("north-clinic"), _ou("z")])]),
                **sign,
            ),
        }
        for n, serial in enumerate(ODD_SERIALS):
            certificates[f"serial-{n}"] = ca_signed(
                clients, f"serial-{n}", NORTH_SUBJECT, serial=serial, **sign
            )
        yield {
            "lab": lab,
            "cloud": cloud,
            "account": account,
            "hosts": {"ct": ct, "remote": remote},
            "certificates": certificates,
            "workdir": workdir,
        }
        # The lab kills what is left on exit.


# --- the certificate map --------------------------------------------------------------------


def test_an_ou_containing_cn_is_not_the_site(lab):
    stored, output = stores(lab, "remote", "NORTH_GW", tls="ou-escape")
    assert not stored, output


def test_a_second_common_name_is_not_the_site(lab):
    stored, output = stores(lab, "remote", "NORTH_GW", tls="two-cn")
    assert not stored, output


def test_a_multi_valued_rdn_is_not_the_site(lab):
    stored, output = stores(lab, "remote", "NORTH_GW", tls="multi-rdn")
    assert not stored, output


# --- AE title padding -----------------------------------------------------------------------


@pytest.mark.parametrize("ae_title", [" NORTH_GW", "NORTH_GW "])
def test_a_padded_ae_title_never_crosses_identities(lab, ae_title):
    """Padded variants of the site's title: whatever Orthanc makes of them, a certificate of
    another sender (the TLS modality) and the plaintext path must not get in with them."""
    for tls in ("dx", None):
        stored, output = stores(lab, "ct" if tls is None else "remote", ae_title, tls=tls)
        assert not stored, f"{tls}: {output}"


# --- around nginx ---------------------------------------------------------------------------


def test_orthanc_own_port_gives_no_identity(lab):
    """Orthanc listens on every interface of nginx's namespace (4243): reached directly,
    from the CT's own registered address, it still sees no loopback identity."""
    stored, output = stores(lab, "ct", "CT_SCANNER_1", port=4243)
    assert not stored, output


# --- lifecycle: a retired sender's name re-used, odd serials revoked --------------------------


@pytest.fixture(scope="module")
def after_update(lab):
    cloud: CloudSide = lab["cloud"]
    # nginx logs the serial as $ssl_client_serial: the canonical form of the config.
    assert stores(lab, "remote", "NORTH_GW", tls="serial-0")[0]
    assert f"serial={format_serial(ODD_SERIALS[0])} " in cloud.nginx.log_text()
    revoked = [{"sender": "gone", "serial": f"{s:x}"} for s in ODD_SERIALS]
    second = evaluate(
        stack_config(lab["hosts"]["ct"].ip, retire_dx=True, revoked=revoked),
        stack="dev",
        mocks=RecordingMocks(lab["account"]),
    )
    cloud.refresh_secrets(second)
    cloud.orthanc.restart()  # what the config group's onChange does
    cloud.reload_nginx()
    return second


@pytest.mark.parametrize("n", range(len(ODD_SERIALS)))
def test_odd_serials_are_revoked(lab, after_update, n):
    certificate = lab["certificates"][f"serial-{n}"]
    probe = tls_probe(
        lab["hosts"]["remote"],
        lab["cloud"].host.ip,
        lab["cloud"].tls_port,
        min_version="TLSv1_2",
        ca_file=certificate.ca_file,
        cert_file=certificate.cert_file,
        key_file=certificate.key_file,
    )
    assert not probe.ok, probe


def test_a_retired_senders_certificate_is_not_the_new_sender_of_that_name(lab, after_update):
    stored, output = stores(lab, "remote", "DXSITE_GW", tls="dx")
    assert not stored, output
