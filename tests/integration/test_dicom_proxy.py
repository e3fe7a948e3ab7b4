"""The whole DICOM path, as the program renders it: modality -> proxy -> cloud.

A modality sends plaintext DICOM to the site's proxy (the bundle the program rendered),
whose forwarder sends each study over mutual-TLS DICOM through nginx to the cloud Orthanc
(the user data the program rendered). Faults: the cloud unreachable while images arrive,
the proxy restarted in the middle, the cloud back. Nothing may be lost or duplicated.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.certs import issue_foreign_client_cert
from tests.integration.cloud_side import CloudSide
from tests.integration.dicom_data import make_study, pixel_digest
from tests.integration.netlab import TlsClient, storescu, wait_until
from tests.integration.site_path import dev_with_site, site_path


@pytest.fixture(scope="module")
def rendered():
    return dev_with_site()


@pytest.fixture
def path(rendered, tmp_path):
    """A fresh cloud, proxy and modality for each test."""
    with site_path(rendered, tmp_path) as path:
        yield path


def send_to_proxy(path, study_dir: Path) -> None:
    path["proxy"].store_from(path["modality"], study_dir)


def assert_all_arrived_once_and_intact(cloud: CloudSide, records) -> None:
    instances = cloud.orthanc.instances()
    assert len(instances) == len(records), "every instance exactly once"
    by_sop = {cloud.orthanc.instance_tags(i)["SOPInstanceUID"]: i for i in instances}
    assert set(by_sop) == {r.sop_uid for r in records}
    for record in records:
        sop, digest = pixel_digest(cloud.orthanc.instance_file(by_sop[record.sop_uid]))
        assert (sop, digest) == (record.sop_uid, record.pixel_sha256)


def test_proxy_loses_nothing_when_the_cloud_drops_and_the_proxy_restarts(path, tmp_path):
    cloud, proxy = path["cloud"], path["proxy"]
    cloud.host.set_link(False)
    records = []
    for study in range(4):
        records += make_study(
            tmp_path / f"study-{study}",
            series_per_study=2,
            instances_per_series=13,
            seed=100 + study,
        )
    assert len(records) >= 100
    for study in range(2):
        send_to_proxy(path, tmp_path / f"study-{study}")
    time.sleep(6)  # the forwarder tries, fails and backs off; nothing may be deleted
    assert proxy.orthanc.count_instances() == 52
    proxy.restart()  # mid-way: the site machine reboots while the link is still down
    for study in range(2, 4):
        send_to_proxy(path, tmp_path / f"study-{study}")
    assert proxy.orthanc.count_instances() == len(records)
    wait_until(
        lambda: (proxy.status().get("backlog") or {}).get("instances") == len(records),
        30,
        "the forwarder to report the whole backlog",
    )
    cloud.host.set_link(True)
    wait_until(
        lambda: cloud.orthanc.count_instances() == len(records), 120, "every instance in the cloud"
    )
    wait_until(lambda: proxy.orthanc.count_instances() == 0, 60, "an empty proxy")
    assert_all_arrived_once_and_intact(cloud, records)


def test_proxy_plaintext_straight_to_the_cloud_tls_port_fails(path, tmp_path):
    cloud = path["cloud"]
    make_study(tmp_path / "study", instances_per_series=2, seed=31)
    rc, output = storescu(
        path["modality"],
        cloud.host.ip,
        cloud.tls_port,
        tmp_path / "study",
        calling_aet="SITEA_GW",
        called_aet=cloud.ae_title,
    )
    assert rc != 0, output
    assert cloud.orthanc.count_instances() == 0


def test_proxy_bundle_with_a_foreign_certificate_is_refused_by_the_cloud(path, tmp_path):
    cloud, proxy = path["cloud"], path["proxy"]
    foreign = issue_foreign_client_cert(tmp_path / "foreign", "site-a")
    # Same bundle, same forwarder; only the site's certificate and key come from elsewhere.
    (proxy.bundle_dir / "tls" / "site.crt").write_text(foreign.cert.read_text())
    (proxy.bundle_dir / "tls" / "site.key").write_text(foreign.key.read_text())
    proxy.restart()
    records = make_study(tmp_path / "study", instances_per_series=3, seed=41)
    send_to_proxy(path, tmp_path / "study")
    time.sleep(8)
    assert cloud.orthanc.count_instances() == 0
    assert proxy.orthanc.count_instances() == len(records), "kept, waiting for a fix"
    # dcmtk with the same foreign certificate is refused the same way.
    rc, output = storescu(
        path["modality"],
        cloud.host.ip,
        cloud.tls_port,
        tmp_path / "study",
        calling_aet="SITEA_GW",
        called_aet=cloud.ae_title,
        tls=TlsClient(cloud.ca_file, foreign.cert, foreign.key),
    )
    assert rc != 0, output
