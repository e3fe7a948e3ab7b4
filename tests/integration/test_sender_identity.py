"""Who may store as whom, enforced by the real nginx and Orthanc the program renders.

The cloud side runs from a mock evaluation (Debian's Orthanc 1.10.1 and nginx, the rendered
nginx.conf, orthanc.json and TLS files). Senders are lab hosts on a private path (the
site-to-site VPN's on-premises range is the lab's subnet) and TLS clients presenting the
certificates the program issued: two proxy sites and a TLS modality. Every spoofing case
of the issue is tried with dcmtk's storescu, and the legitimate senders still store.
Then a site's certificate is revoked in the config: after the secrets refresh and an nginx
reload it is refused, the re-issued one and the other site keep working, and Orthanc is
not restarted.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from pydicom import dcmread

from orthgate.components.crl import certificate_serial
from orthgate.offline.aws_mock import AwsMock
from tests.harness.pulumi_run import RecordingMocks, evaluate
from tests.integration.certs import issue_client_cert
from tests.integration.cloud_side import CloudSide, issued_client, start_cloud_side
from tests.integration.dicom_data import InstanceRecord, make_study, pixel_digest
from tests.integration.identity_lab import campus_stack, stores
from tests.integration.netlab import (
    Lab,
    Orthanc,
    TlsClient,
    stop_together,
    tls_probe,
    wait_until,
)
from tests.integration.proxy_side import ProxySide, start_proxy_side
from tests.integration.site_path import dev_with_site, site_path

SITES = [
    {
        "name": name,
        "sourceCidrs": [cidr],
        "aeTitle": ae,
        "listenAddress": "192.168.50.10",
        "acceptAnyModality": True,
    }
    for name, ae, cidr in (
        ("north-clinic", "NORTH_GW", "198.51.100.8/32"),
        ("south-clinic", "SOUTH_GW", "198.51.100.9/32"),
    )
]


def stack_config(ct_address: str, revoked: list[dict] | None = None) -> dict:
    config = campus_stack(ct_address)
    if revoked:
        config["orthgate:orthanc"]["revokedCertificates"] = revoked
    config["orthgate:dicomProxies"] = SITES
    return config


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("identity")
    with Lab() as lab:
        cloud_host, ct, intruder, remote = (lab.host(n) for n in ("cloud", "ct", "lan", "remote"))
        account = AwsMock(region="eu-central-1", zone_count=3)
        first = evaluate(stack_config(ct.ip), stack="dev", mocks=RecordingMocks(account))
        cloud = start_cloud_side(cloud_host, first, workdir / "cloud")
        clients = workdir / "clients"
        certificates = {
            "north": issued_client(first, clients / "north", site="north-clinic"),
            "south": issued_client(first, clients / "south", site="south-clinic"),
            "dx": issued_client(first, clients / "dx", modality="dx-room-2"),
        }
        # From the DICOM CA, but for no sender: the common name of a private-path modality.
        stray = issue_client_cert(
            clients / "stray",
            "ct-scanner-1",
            ca_cert_pem=cloud.ca_cert_pem,
            ca_key_pem=cloud.ca_key_pem,
        )
        certificates["stray"] = TlsClient(cloud.ca_file, stray.cert, stray.key)
        # The Orthanc server's own certificate (serverAuth only) offered as a client's.
        tls_dir = cloud.ca_file.parent
        certificates["server"] = TlsClient(
            cloud.ca_file, tls_dir / "server.crt", tls_dir / "server.key"
        )
        yield {
            "lab": lab,
            "cloud": cloud,
            "account": account,
            "first": first,
            "hosts": {"ct": ct, "lan": intruder, "remote": remote},
            "certificates": certificates,
            "workdir": workdir,
        }
        # The lab kills what is left on exit.


@pytest.mark.parametrize(
    ("certificate", "ae_title", "allowed"),
    [
        ("north", "NORTH_GW", True),
        ("north", "SOUTH_GW", False),  # another site
        ("north", "CT_SCANNER_1", False),  # a private-path modality
        ("north", "MR_SCANNER_1", False),
        ("north", "DX_ROOM_2", False),  # a TLS modality
        ("north", "north_gw", False),  # its own title, in other case
        ("dx", "DX_ROOM_2", True),
        ("dx", "NORTH_GW", False),
        ("stray", "CT_SCANNER_1", False),  # a CA certificate naming no sender
        ("stray", "MR_SCANNER_1", False),
    ],
)
def test_a_certificate_stores_only_as_the_sender_it_was_issued_to(
    lab, certificate, ae_title, allowed
):
    stored, output = stores(lab, "remote", ae_title, tls=certificate)
    assert stored is allowed, output


@pytest.mark.parametrize(
    ("host", "ae_title", "allowed"),
    [
        ("ct", "CT_SCANNER_1", True),  # from its sourceCidrs
        ("lan", "CT_SCANNER_1", False),  # another host on the private path
        ("lan", "ct_scanner_1", False),  # ... in other case
        ("lan", "MR_SCANNER_1", True),  # no sourceCidrs: any private-path host
        ("ct", "MR_SCANNER_1", False),  # the CT's range is the CT's
        ("lan", "NORTH_GW", False),  # a site comes over TLS only
        ("lan", "DX_ROOM_2", False),  # so does a TLS modality
    ],
)
def test_plaintext_senders_are_known_by_their_source_range(lab, host, ae_title, allowed):
    stored, output = stores(lab, host, ae_title)
    assert stored is allowed, output


def test_a_server_certificate_is_no_client_certificate(lab):
    cloud: CloudSide = lab["cloud"]
    server: TlsClient = lab["certificates"]["server"]
    probe = tls_probe(
        lab["hosts"]["remote"],
        cloud.host.ip,
        cloud.tls_port,
        min_version="TLSv1_2",
        ca_file=server.ca_file,
        cert_file=server.cert_file,
        key_file=server.key_file,
    )
    assert not probe.ok, probe


def test_a_revoked_site_certificate_is_refused_after_a_refresh_without_restarting_orthanc(lab):
    cloud: CloudSide = lab["cloud"]
    first = lab["first"]
    north = lab["certificates"]["north"]
    serial = certificate_serial(north.cert_file.read_text())
    assert stores(lab, "remote", "NORTH_GW", tls="north")[0], "the site works before"
    orthanc_pid = cloud.orthanc.process.pid

    revoked = [{"sender": "north-clinic", "serial": serial}]
    second = evaluate(
        stack_config(lab["hosts"]["ct"].ip, revoked),
        stack="dev",
        mocks=RecordingMocks(lab["account"]),
    )
    assert second.outputs["dicomCaCertificate"] == first.outputs["dicomCaCertificate"]
    reissued = issued_client(second, lab["workdir"] / "clients" / "north-r1", site="north-clinic")
    assert certificate_serial(reissued.cert_file.read_text()) != serial, "a new certificate"
    lab["certificates"]["north-r1"] = reissued

    cloud.refresh_secrets(second)
    cloud.reload_nginx()

    probe = tls_probe(
        lab["hosts"]["remote"],
        cloud.host.ip,
        cloud.tls_port,
        min_version="TLSv1_2",
        ca_file=north.ca_file,
        cert_file=north.cert_file,
        key_file=north.key_file,
    )
    assert not probe.ok, f"the revoked certificate still gets through: {probe}"
    stored, output = stores(lab, "remote", "NORTH_GW", tls="north")
    assert not stored, output
    for certificate, ae_title in (("north-r1", "NORTH_GW"), ("south", "SOUTH_GW")):
        stored, output = stores(lab, "remote", ae_title, tls=certificate)
        assert stored, f"{certificate}: {output}"
    assert cloud.orthanc.process.pid == orthanc_pid, "Orthanc was restarted"
    assert cloud.orthanc.alive
    crl = json.loads(
        next(
            v
            for v in json.loads(
                Path(lab["workdir"] / "cloud" / "secret-store.json").read_text()
            ).values()
            if "revocationList" in v
        )
    )["revocationList"]
    assert crl == second.outputs["dicomRevocationList"]


def test_a_stolen_client_certificate_cannot_pose_as_the_cloud_to_a_site(lab, tmp_path):
    """Sites trust the DICOM CA, which also signs every site's and TLS modality's client
    certificate; DCMTK (the proxy Orthanc's TLS) refuses a certificate without serverAuth
    as a server's, so a stolen client key cannot impersonate the cloud to the sites."""
    cloud: CloudSide = lab["cloud"]
    first = lab["first"]
    bundle = first.outputs["dicomProxyBundles"]["south-clinic"]
    genuine = start_proxy_side(
        lab["lab"].host("proxy-a"), bundle, tmp_path / "genuine", cloud_ip=cloud.host.ip
    )
    impostor = lab["lab"].host("impostor")
    stolen = lab["certificates"]["dx"]  # a TLS modality's key and certificate
    server = impostor.spawn(
        [
            "openssl", "s_server", "-quiet", "-cert", stolen.cert_file, "-key", stolen.key_file,
            "-CAfile", stolen.ca_file, "-accept", str(cloud.tls_port),
        ],
        label="impostor",
    )  # fmt: skip
    impostor.wait_for_port(cloud.tls_port, process=server)
    fooled = start_proxy_side(
        lab["lab"].host("proxy-b"), bundle, tmp_path / "fooled", cloud_ip=impostor.ip
    )
    try:
        echo = genuine.orthanc.request("POST", "/modalities/cloud/echo", body={})
        assert echo.status == 200, echo.text
        echo = fooled.orthanc.request("POST", "/modalities/cloud/echo", body={})
        assert echo.status != 200, "the proxy accepted a site certificate as the cloud's"
        assert "certificate verify failed" in fooled.orthanc.log_text() or echo.status >= 400
    finally:
        stop_together(fooled, genuine, server)


# --- Re-sends and corrections through a site's proxy ----------------------------------------
# Re-sends through the proxy, as the program renders it: a correction wins, nothing doubles.
#
# A modality re-sends a study with the same SOP Instance UIDs, either unchanged (an operator
# sends it again) or with a corrected PatientName (the RIS fixed a typo). Orthanc's instance
# id is a hash of the patient id and the study, series and SOP Instance UIDs, so with
# ``OverwriteInstances: true`` on both Orthancs a re-sent instance replaces the stored one in
# place: the last copy sent is the one kept, and never a second one. The forwarder deletes at
# the proxy only instances whose stored file (``FileUuid``) is still the one it sent, so a
# correction that lands at the proxy while the original's job is running survives that job
# and goes with the next one.
#
# Two timings of a correction, in one lab run (the waits overlap; each forward costs the
# proxy's ``StableAge``): (a) the original was forwarded and deleted at the proxy already;
# (b) the original still waits at the proxy, its job held in the air by a cloud Orthanc
# that does not answer (SIGSTOP), when the correction arrives.

CORRECTED_NAME = "CORRECTED^PATIENT"
PER_STUDY = 3  # instances: small studies, each forward costs the proxy's StableAge anyway
UUID_NAME = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def rendered():
    return dev_with_site()


@pytest.fixture
def path(rendered, tmp_path):
    """A fresh cloud, proxy and modality."""
    with site_path(rendered, tmp_path) as path:
        yield path
        freeze(path["cloud"], False)  # a failed test may leave it frozen


def freeze(cloud: CloudSide, frozen: bool) -> None:
    """The cloud Orthanc stops answering (its sockets still accept), or answers again."""
    process = cloud.orthanc.process
    if process is not None and process.alive:
        process.popen.send_signal(signal.SIGSTOP if frozen else signal.SIGCONT)


def send_to_proxy(path, study_dir: Path) -> None:
    path["proxy"].store_from(path["modality"], study_dir)


def corrected_copy(records: list[InstanceRecord], dest: Path) -> Path:
    """The same files (same UIDs, same pixels) with the PatientName corrected."""
    dest.mkdir(parents=True)
    for record in records:
        ds = dcmread(record.path)
        ds.PatientName = CORRECTED_NAME
        ds.save_as(dest / record.path.name, enforce_file_format=True)
    return dest


def names_by_study(orthanc: Orthanc, studies: dict[str, list[InstanceRecord]]) -> dict:
    """study label -> sorted PatientNames of the stored instances of that study."""
    label = {records[0].study_uid: name for name, records in studies.items()}
    names: dict[str, list[str]] = {name: [] for name in studies}
    for instance in orthanc.instances():
        tags = orthanc.instance_tags(instance)
        names[label[tags["StudyInstanceUID"]]].append(tags["PatientName"])
    return {name: sorted(values) for name, values in names.items()}


def storage_files(root: Path) -> set[str]:
    """The files Orthanc's storage area holds under ``root`` (named by attachment UUID)."""
    return {p.name for p in root.rglob("*") if p.is_file() and UUID_NAME.match(p.name)}


def indexed_files(orthanc: Orthanc) -> set[str]:
    return {item["FileUuid"] for item in orthanc.get_json("/instances?expand")}


def successful_jobs(proxy: ProxySide, study_uid: str) -> list[int]:
    """How many instances each successful job of the study deleted, in order."""
    pattern = rf"job study={re.escape(study_uid)} .*outcome=success deleted=(\d+)"
    return [int(n) for n in re.findall(pattern, proxy.forwarder.log_text())]


def test_a_corrected_resend_through_the_proxy_ends_with_the_correction_once(path, tmp_path):
    cloud: CloudSide = path["cloud"]
    proxy: ProxySide = path["proxy"]
    # a: corrected after it went through; b: corrected while it waits at the proxy;
    # same: sent again unchanged.
    studies = {
        name: make_study(tmp_path / name, instances_per_series=PER_STUDY, seed=f"resend-{name}")
        for name in ("a", "b", "same")
    }
    total = sum(len(records) for records in studies.values())
    originals = {name: tmp_path / name for name in studies}
    original_name = {name: f"NETLAB^{rs[0].patient_id}" for name, rs in studies.items()}

    # 1. a and "same" go through: in the cloud, gone from the proxy.
    send_to_proxy(path, originals["a"])
    send_to_proxy(path, originals["same"])
    first = len(studies["a"]) + len(studies["same"])
    wait_until(lambda: cloud.orthanc.count_instances() == first, 60, "a and same in the cloud")
    wait_until(lambda: proxy.orthanc.count_instances() == 0, 30, "an empty proxy")
    ids_before = set(cloud.orthanc.instances())

    # 2. The cloud Orthanc stops answering: b's original waits at the proxy, its job open.
    freeze(cloud, True)
    send_to_proxy(path, originals["b"])
    time.sleep(1.5)  # b's LastUpdate is the oldest: b gets the first job
    send_to_proxy(path, corrected_copy(studies["a"], tmp_path / "a-corrected"))
    send_to_proxy(path, originals["same"])
    b_uid = studies["b"][0].study_uid
    wait_until(
        lambda: (proxy.status().get("currentJob") or {}).get("study") == b_uid,
        40,
        "the forwarder's job for b's original",
    )
    send_to_proxy(path, corrected_copy(studies["b"], tmp_path / "b-corrected"))
    at_proxy = {
        "instances": proxy.orthanc.count_instances(),
        "names": names_by_study(proxy.orthanc, studies),
    }
    freeze(cloud, False)

    # 3. Everything goes through; the proxy ends empty.
    wait_until(lambda: proxy.orthanc.count_instances() == 0, 60, "an empty proxy")
    sops = Counter(
        cloud.orthanc.instance_tags(i)["SOPInstanceUID"] for i in cloud.orthanc.instances()
    )
    corrected, kept = [CORRECTED_NAME] * PER_STUDY, [original_name["same"]] * PER_STUDY
    assert {
        "proxy while b waited": at_proxy,
        "cloud names": names_by_study(cloud.orthanc, studies),
        "cloud copies per SOP Instance UID": set(sops.values()),
    } == {
        # The proxy replaced b in place and kept a's correction: no second copy.
        "proxy while b waited": {
            "instances": total,
            "names": {"a": corrected, "b": corrected, "same": kept},
        },
        "cloud names": {"a": corrected, "b": corrected, "same": kept},
        "cloud copies per SOP Instance UID": {1},
    }
    assert set(sops) == {r.sop_uid for records in studies.values() for r in records}
    # Replaced in place: the instances of a and "same" kept their ids.
    assert ids_before <= set(cloud.orthanc.instances())
    # Only the content changed: every image is intact.
    by_sop = {
        cloud.orthanc.instance_tags(i)["SOPInstanceUID"]: i for i in cloud.orthanc.instances()
    }
    for record in (r for records in studies.values() for r in records):
        assert pixel_digest(cloud.orthanc.instance_file(by_sop[record.sop_uid])) == (
            record.sop_uid,
            record.pixel_sha256,
        )
    # The job that was open when b's correction landed deleted none of it (the files were
    # no longer the ones in its snapshot); a later job sent the correction and deleted it.
    b_jobs = successful_jobs(proxy, b_uid)
    assert b_jobs[0] == 0, b_jobs
    assert b_jobs[-1] == len(studies["b"]), b_jobs
    # Overwriting left no file behind: storage holds exactly what the index knows.
    assert storage_files(tmp_path / "cloud") == indexed_files(cloud.orthanc)
    assert storage_files(tmp_path / "proxy") == set()


def test_nginx_takes_the_maps_of_many_senders_with_the_longest_names(tmp_path):
    """Subjects of 63-character names are longer than nginx's default map bucket: the
    rendered maps must load all the same (``nginx -t`` on Debian's nginx)."""
    from orthgate.components.render.sender_identity import SenderIdentity, render_sender_maps
    from tests.integration.netlab import require, require_nginx_stream

    nginx = require("nginx")["nginx"]
    module = require_nginx_stream()
    subjects = [f"CN={'m' * 60}{n:03d},OU=DICOM modality,O=orthgate" for n in range(190)]
    maps = render_sender_maps(
        [SenderIdentity(certificate_subject=subject) for subject in subjects],
        ["10.0.0.0/8", "172.16.0.0/12"],
    )
    (tmp_path / "senders.conf").write_text(maps)
    (tmp_path / "nginx.conf").write_text(
        f"load_module {module};\npid {tmp_path}/nginx.pid;\nerror_log stderr;\nevents {{}}\n"
        f"stream {{\n    include {tmp_path}/senders.conf;\n    server {{\n"
        "        listen 127.0.0.1:1;\n        proxy_bind $orthgate_tls_source;\n"
        "        proxy_pass 127.0.0.1:2;\n    }\n}\n"
    )
    result = subprocess.run(
        [nginx, "-t", "-c", str(tmp_path / "nginx.conf")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
