"""The cloud Orthanc as the dev stack renders it, driven by dcmtk over the network.

Orthanc 1.10.1 and nginx from Debian run the configuration, certificates and secrets
the program produced under the mocks (see cloud_side.py); a "modality" host in another
network namespace speaks DICOM to it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.harness.pulumi_run import STACKS_DIR, evaluate, read_stack_file
from tests.integration.certs import issue_client_cert, issue_foreign_client_cert
from tests.integration.cloud_side import CloudSide, issued_client, start_cloud_side
from tests.integration.dicom_data import make_study, pixel_digest
from tests.integration.netlab import Lab, TlsClient, echoscu, storescu, tls_probe

DEV_STACK = STACKS_DIR / "Pulumi.dev.yaml"


@pytest.fixture(scope="module")
def dev_config():
    return read_stack_file(DEV_STACK)


TLS_MODALITY = "test-tls-modality"


@pytest.fixture(scope="module")
def registered_ae(dev_config) -> str:
    """The AE title of the dev stack's TLS modality, the sender the valid certificate is for."""
    [modality] = [
        m for m in dev_config["orthgate:orthanc"]["modalities"] if m["name"] == TLS_MODALITY
    ]
    return modality["aeTitle"]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, dev_config):
    evaluation = evaluate(dev_config, stack="dev")
    workdir = tmp_path_factory.mktemp("cloud")
    with Lab() as lab:
        cloud = lab.host("cloud")
        modality = lab.host("modality")
        side = start_cloud_side(cloud, evaluation, workdir)
        certs = workdir / "clients"
        # The certificate the program issued the TLS modality (dicomModalityCredentials).
        valid = issued_client(evaluation, certs / "valid", modality=TLS_MODALITY)
        past = datetime.now(UTC) - timedelta(days=3)
        expired = issue_client_cert(
            certs,
            "expired",
            ca_cert_pem=side.ca_cert_pem,
            ca_key_pem=side.ca_key_pem,
            not_before=past - timedelta(days=1),
            not_after=past,
        )
        foreign = issue_foreign_client_cert(certs / "foreign", "modality")
        yield {
            "side": side,
            "modality": modality,
            "valid": valid,
            "expired": TlsClient(side.ca_file, expired.cert, expired.key),
            "foreign": TlsClient(side.ca_file, foreign.cert, foreign.key),
            "anonymous": TlsClient(side.ca_file),
            "workdir": workdir,
        }
        # The lab kills what is left on exit.


def send(deployment, study_dir, calling_ae, tls, port=None, called=None):
    side: CloudSide = deployment["side"]
    return storescu(
        deployment["modality"],
        side.host.ip,
        port or side.tls_port,
        study_dir,
        calling_aet=calling_ae,
        called_aet=called or side.ae_title,
        tls=tls,
    )


def stored_sops(side: CloudSide) -> set[str]:
    return {side.orthanc.instance_tags(i)["SOPInstanceUID"] for i in side.orthanc.instances()}


def test_the_deployed_orthanc_runs_with_tcp_nodelay(deployment):
    assert deployment["side"].environment["TCP_NODELAY"] == "1"


def test_a_registered_modality_with_a_dicom_ca_certificate_stores_intact(
    deployment, registered_ae, tmp_path
):
    side: CloudSide = deployment["side"]
    study = make_study(tmp_path / "study", instances_per_series=5, seed=1)
    rc, output = send(deployment, tmp_path / "study", registered_ae, deployment["valid"])
    assert rc == 0, output
    by_sop = {side.orthanc.instance_tags(i)["SOPInstanceUID"]: i for i in side.orthanc.instances()}
    for record in study:
        assert record.sop_uid in by_sop
        sop, digest = pixel_digest(side.orthanc.instance_file(by_sop[record.sop_uid]))
        assert (sop, digest) == (record.sop_uid, record.pixel_sha256)


def test_echo_succeeds_over_mutual_tls(deployment, registered_ae):
    side: CloudSide = deployment["side"]
    rc, output = echoscu(
        deployment["modality"],
        side.host.ip,
        side.tls_port,
        calling_aet=registered_ae,
        called_aet=side.ae_title,
        tls=deployment["valid"],
    )
    assert rc == 0, output


@pytest.mark.parametrize("client", ["foreign", "anonymous", "expired"])
def test_a_client_without_a_valid_dicom_ca_certificate_is_refused(
    deployment, registered_ae, client, tmp_path
):
    side: CloudSide = deployment["side"]
    study = make_study(tmp_path / "study", instances_per_series=2, seed=hash(client) % 1000)
    rc, output = send(deployment, tmp_path / "study", registered_ae, deployment[client])
    assert rc != 0, output
    assert not {r.sop_uid for r in study} & stored_sops(side)
    tls: TlsClient = deployment[client]
    probe = tls_probe(
        deployment["modality"],
        side.host.ip,
        side.tls_port,
        min_version="TLSv1_2",
        ca_file=tls.ca_file,
        cert_file=tls.cert_file,
        key_file=tls.key_file,
    )
    assert not probe.ok, probe


def test_plaintext_dicom_to_the_tls_port_is_refused(deployment, registered_ae, tmp_path):
    side: CloudSide = deployment["side"]
    study = make_study(tmp_path / "study", instances_per_series=2, seed=7)
    rc, output = send(deployment, tmp_path / "study", registered_ae, tls=None)
    assert rc != 0, output
    assert not {r.sop_uid for r in study} & stored_sops(side)


@pytest.mark.parametrize(
    ("version", "accepted"),
    [("TLSv1", False), ("TLSv1_1", False), ("TLSv1_2", True), ("TLSv1_3", True)],
)
def test_only_tls_1_2_and_1_3_are_accepted(deployment, version, accepted):
    side: CloudSide = deployment["side"]
    tls: TlsClient = deployment["valid"]
    probe = tls_probe(
        deployment["modality"],
        side.host.ip,
        side.tls_port,
        min_version=version,
        max_version=version,
        ca_file=tls.ca_file,
        cert_file=tls.cert_file,
        key_file=tls.key_file,
    )
    assert probe.ok is accepted, probe
    if accepted:
        assert probe.version == version.replace("_", ".")


def test_an_unregistered_calling_ae_title_cannot_store(deployment, tmp_path):
    side: CloudSide = deployment["side"]
    study = make_study(tmp_path / "study", instances_per_series=2, seed=11)
    rc, output = send(deployment, tmp_path / "study", "INTRUDER", deployment["valid"])
    # The sender is told (Orthanc aborts the association; storescu 3.6.7 then sometimes
    # exits 0 all the same, having printed the failure), and nothing is stored.
    assert rc != 0 or "Store Failed" in output, output
    assert not {r.sop_uid for r in study} & stored_sops(side)


def test_a_wrong_called_ae_title_is_rejected(deployment, registered_ae, tmp_path):
    make_study(tmp_path / "study", instances_per_series=1, seed=12)
    rc, output = send(
        deployment, tmp_path / "study", registered_ae, deployment["valid"], called="NOT_ORTHANC"
    )
    assert rc != 0, output


def test_https_reaches_the_rest_api_and_requires_the_admin_password(deployment):
    side: CloudSide = deployment["side"]
    modality = deployment["modality"]
    base = [
        "curl", "--silent", "--output", "/dev/null", "--write-out", "%{http_code}",
        "--cacert", str(side.ca_file), "--resolve", f"orthanc.test:443:{side.host.ip}",
    ]  # fmt: skip
    url = "https://orthanc.test/system"
    # The server certificate names the instance, not orthanc.test: check the chain only.
    anonymous = modality.run([*base, "--insecure", url], check=False)
    assert anonymous.stdout == "401"
    user, password = side.admin
    authorised = modality.run([*base, "--insecure", "--user", f"{user}:{password}", url])
    assert authorised.stdout == "200"
    # And the certificate does chain to the DICOM CA that the program exported.
    verified = modality.run(
        ["curl", "--silent", "--cacert", str(side.ca_file), "--user", f"{user}:{password}",
         "--resolve", f"{_first_san(side)}:443:{side.host.ip}", f"https://{_first_san(side)}/system"],
        check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["DicomAet"] == side.ae_title


def _first_san(side: CloudSide) -> str:
    from cryptography import x509

    server_cert = (side.ca_file.parent / "server.crt").read_bytes()
    names = x509.load_pem_x509_certificate(server_cert).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    return names.value.get_values_for_type(x509.DNSName)[0]
