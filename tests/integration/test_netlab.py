"""Self-tests of the network lab: isolation, link failures, mounts, Orthanc over DICOM, TLS probe.

Everything runs inside namespaces the tests create; nothing is sent beyond them.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread

from tests.integration.dicom_data import make_study, pixel_digest
from tests.integration.netlab import (
    NGINX_STREAM_MODULE,
    Host,
    Lab,
    Nginx,
    Orthanc,
    TlsClient,
    echoscu,
    lab_namespaces,
    make_pki,
    require,
    storescu,
    tls_probe,
)


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab() as the_lab:
        yield the_lab


def _eventually(check, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def _root_namespace_address() -> str:
    # An address that exists only in the root namespace; nothing is sent to it from there.
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for index, word in enumerate(out):
        if word == "inet":
            return out[index + 1].split("/")[0]
    return "192.0.2.1"


def test_a_missing_binary_fails_with_the_install_hint():
    with pytest.raises(pytest.fail.Exception, match=r"make system-packages"):
        require("surely-not-installed-netlab-tool")


def test_hosts_reach_each_other_but_not_the_outside(lab: Lab):
    alpha = lab.host("alpha")
    beta = lab.host("beta")
    assert alpha.ip != beta.ip
    assert alpha.reachable(beta.ip)
    assert beta.reachable(alpha.ip)
    # Every lab host name resolves from the namespace's own hosts file.
    assert alpha.run(["getent", "hosts", "beta"]).stdout.split()[0] == beta.ip

    # No default route: the root namespace and the internet are out of reach.
    route = alpha.run(["ip", "route", "get", "192.0.2.200"], check=False)
    assert route.returncode != 0
    assert "unreachable" in route.stderr.lower()
    assert not alpha.reachable(_root_namespace_address())


def test_link_down_makes_a_host_unreachable_until_it_comes_back(lab: Lab):
    modality = lab.host("modality")
    cloud = lab.host("cloud")
    assert modality.reachable(cloud.ip)

    cloud.set_link(False)
    assert not modality.reachable(cloud.ip, timeout=1.0)
    assert not cloud.reachable(modality.ip, timeout=1.0)
    # The host keeps its configuration while unplugged.
    assert cloud.ip in cloud.run(["ip", "-4", "addr", "show", "dev", "eth0"]).stdout

    cloud.set_link(True)
    assert _eventually(lambda: modality.reachable(cloud.ip, timeout=1.0))


def test_a_server_in_one_host_accepts_connections_from_another(lab: Lab):
    server = lab.host("server")
    client = lab.host("client")
    listener = server.spawn(["python3", "-m", "http.server", "--bind", server.ip, "8000"])
    server.wait_for_port(8000, address=server.ip, process=listener)
    assert client.can_connect(server.ip, 8000)
    response = client.http("GET", f"http://{server.ip}:8000/")
    assert response.status == 200
    # The listener lives in the lab only.
    assert listener.pid in [int(p) for p in _netns_pids(server)]
    assert listener.stop() is not None
    assert not listener.alive


def _netns_pids(host: Host) -> list[str]:
    return subprocess.run(
        ["ip", "netns", "pids", host.netns], capture_output=True, text=True, check=True
    ).stdout.split()


def test_spawn_binds_directories_privately_and_adds_hosts(lab: Lab, tmp_path: Path):
    host = lab.host("proxy")
    etc_nginx = tmp_path / "etc-nginx"
    etc_nginx.mkdir()
    (etc_nginx / "netlab-marker").write_text("private nginx config\n")
    private_tmp = tmp_path / "private-tmp"
    private_tmp.mkdir()
    (private_tmp / "only-here").write_text("x")
    real_etc_nginx = sorted(os.listdir("/etc/nginx"))

    # /tmp is bound too: the sources under /tmp must still be found (they are opened first).
    script = (
        "cat /etc/nginx/netlab-marker; ls /tmp; getent hosts orthanc; getent hosts proxy; "
        "cat /proc/self/environ | tr '\\0' '\\n' | grep TCP_NODELAY"
    )
    process = host.spawn(
        ["sh", "-c", script],
        binds={etc_nginx: "/etc/nginx", private_tmp: "/tmp"},
        extra_hosts={"orthanc": "10.77.0.99"},
    )
    assert process.wait(timeout=10) == 0, process.log_text()
    log = process.log_text()
    assert "private nginx config" in log
    assert "only-here" in log
    assert "10.77.0.99      orthanc" in log
    assert f"{host.ip}" in log
    assert "TCP_NODELAY=1" in log

    # Nothing changed on the real filesystem, nor for other processes in the namespace.
    assert sorted(os.listdir("/etc/nginx")) == real_etc_nginx
    assert not Path("/etc/nginx/netlab-marker").exists()
    assert "netlab-marker" not in host.run(["ls", "/etc/nginx"]).stdout
    assert host.run(["getent", "hosts", "orthanc"], check=False).returncode != 0

    with pytest.raises(ValueError, match="does not exist"):
        host.spawn(["true"], binds={etc_nginx: "/etc/netlab-does-not-exist"})


def test_a_long_running_process_stops_on_sigterm(lab: Lab, tmp_path: Path):
    host = lab.host("alpha")
    process = host.spawn(["sleep", "300"], binds={tmp_path: "/mnt"})
    # ip netns exec, unshare and the mount helper exec in turn: the PID is the real server.
    assert _eventually(lambda: Path(f"/proc/{process.pid}/comm").read_text().strip() == "sleep")
    started = time.monotonic()
    process.stop(timeout=5)
    assert not process.alive
    assert time.monotonic() - started < 5


def _orthanc_config(storage: Path) -> dict:
    return {
        "Name": "netlab",
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "DicomAet": "ORTHANC",
        "DicomPort": 4242,
        "HttpPort": 8042,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {"netlab": "lab-secret"},
        "DicomCheckCalledAet": True,
        "Plugins": [],
    }


def test_orthanc_receives_a_study_over_dicom(lab: Lab, tmp_path: Path):
    cloud = lab.host("cloud")
    modality = lab.host("modality")
    records = make_study(tmp_path / "study", instances_per_series=3, seed="netlab-self-test")
    storage = tmp_path / "orthanc-storage"
    storage.mkdir()

    orthanc = Orthanc(cloud, _orthanc_config(storage)).start()
    environ = Path(f"/proc/{orthanc.process.pid}/environ").read_bytes().split(b"\0")
    assert b"TCP_NODELAY=1" in environ
    assert orthanc.request("GET", "/system", auth=None).status == 401

    rc, out = echoscu(modality, cloud.ip, 4242, "MODALITY", "ORTHANC")
    assert rc == 0, out
    started = time.monotonic()
    rc, out = storescu(modality, cloud.ip, 4242, tmp_path / "study", "MODALITY", "ORTHANC")
    assert rc == 0, out
    assert time.monotonic() - started < 10, "storescu was slow: reverse DNS or Nagle?"

    ids = orthanc.instances()
    assert len(ids) == 3
    assert orthanc.count_instances() == 3
    expected = {record.sop_uid: record.pixel_sha256 for record in records}
    received = {}
    for instance_id in ids:
        tags = orthanc.instance_tags(instance_id)
        sop_uid, digest = pixel_digest(orthanc.instance_file(instance_id))
        assert tags["SOPInstanceUID"] == sop_uid
        assert tags["StudyInstanceUID"] == records[0].study_uid
        received[sop_uid] = digest
    assert received == expected

    orthanc.delete_instance(ids[0])
    assert orthanc.count_instances() == 2
    orthanc.stop()
    assert not orthanc.alive


def test_tls_probe_really_negotiates_tls_1_0_when_a_server_allows_it(lab: Lab, tmp_path: Path):
    openssl = require("openssl")["openssl"]
    pki = make_pki(tmp_path / "pki", servers=("legacy",), clients=("client",))
    server = lab.host("legacy")
    client = lab.host("probe")
    s_server = [openssl, "s_server", "-Verify", "1", "-www", "-CAfile", pki.ca_cert]
    s_server += ["-cert", pki["legacy"].cert, "-key", pki["legacy"].key]
    # Port 4410 allows only TLS 1.0 (at security level 0), port 4413 only TLS 1.2 and 1.3;
    # both require a client certificate (-Verify).
    old = server.spawn(
        [*s_server, "-accept", "4410", "-tls1", "-cipher", "DEFAULT@SECLEVEL=0"],
        label="s_server-tls1",
    )
    new = server.spawn(
        [*s_server, "-accept", "4413", "-no_tls1", "-no_tls1_1"], label="s_server-modern"
    )
    server.wait_for_port(4410, process=old)
    server.wait_for_port(4413, process=new)
    client_cert = {"cert_file": pki["client"].cert, "key_file": pki["client"].key}
    trust = {"ca_file": pki.ca_cert}

    only_tls10 = {"min_version": "TLSv1", "max_version": "TLSv1"}
    tls10 = tls_probe(client, server.ip, 4410, **only_tls10, **trust, **client_cert)
    assert tls10.ok, tls10
    assert tls10.version == "TLSv1"

    modern_only = tls_probe(client, server.ip, 4410, min_version="TLSv1_2", **trust, **client_cert)
    assert not modern_only.handshake
    assert "PROTOCOL_VERSION" in (modern_only.error or "")

    no_cert = tls_probe(client, server.ip, 4410, **only_tls10, **trust)
    assert not no_cert.ok
    assert "HANDSHAKE_FAILURE" in (no_cert.error or "")

    tls13 = tls_probe(client, server.ip, 4413, min_version="TLSv1_3", **trust, **client_cert)
    assert tls13.ok, tls13
    assert tls13.version == "TLSv1.3"
    legacy_refused = tls_probe(client, server.ip, 4413, max_version="TLSv1_1", **trust)
    assert not legacy_refused.ok
    assert "PROTOCOL_VERSION" in (legacy_refused.error or "")
    # TLS 1.3 refuses a missing client certificate only after the handshake: still a failure.
    tls13_no_cert = tls_probe(client, server.ip, 4413, min_version="TLSv1_3", **trust)
    assert tls13_no_cert.handshake
    assert not tls13_no_cert.ok, tls13_no_cert
    assert "CERTIFICATE_REQUIRED" in (tls13_no_cert.error or "")
    # A wrong trust anchor fails verification of the server.
    other = make_pki(tmp_path / "other-pki", servers=(), clients=())
    untrusted = tls_probe(client, server.ip, 4413, ca_file=other.ca_cert, **client_cert)
    assert not untrusted.ok
    assert "CERTIFICATE_VERIFY_FAILED" in (untrusted.error or "")


def _nginx_tls_gateway(upstream: str) -> str:
    return f"""
load_module {NGINX_STREAM_MODULE};
events {{}}
stream {{
    server {{
        listen 11112 ssl;
        ssl_certificate /etc/nginx/gateway.crt;
        ssl_certificate_key /etc/nginx/gateway.key;
        ssl_client_certificate /etc/nginx/ca.crt;
        ssl_verify_client on;
        ssl_protocols TLSv1.2 TLSv1.3;
        proxy_pass {upstream};
    }}
}}
"""


def test_nginx_terminates_mutual_tls_in_front_of_a_dicom_receiver(lab: Lab, tmp_path: Path):
    pki = make_pki(tmp_path / "pki", servers=("gateway",), clients=("modality",))
    receiver = lab.host("receiver")
    gateway = lab.host("gateway")
    modality = lab.host("modality")
    received = tmp_path / "received"
    received.mkdir()
    scp = receiver.spawn(["storescp", "-aet", "RECEIVER", "-od", received, "4242"])
    receiver.wait_for_port(4242, process=scp)

    etc_nginx = tmp_path / "etc-nginx"
    etc_nginx.mkdir()
    for source in (pki.ca_cert, pki["gateway"].cert, pki["gateway"].key):
        (etc_nginx / source.name).write_bytes(source.read_bytes())
    real_logs = sorted(os.listdir("/var/log/nginx"))
    Nginx(
        gateway,
        _nginx_tls_gateway("dicom-backend:4242"),
        ports=[11112],
        binds={etc_nginx: "/etc/nginx"},
        extra_hosts={"dicom-backend": receiver.ip},
    ).start()

    mutual = TlsClient(pki.ca_cert, pki["modality"].cert, pki["modality"].key)
    records = make_study(tmp_path / "study", instances_per_series=2)
    rc, out = storescu(modality, gateway.ip, 11112, tmp_path / "study", "MODALITY", "RECEIVER",
                       mutual)  # fmt: skip
    assert rc == 0, out
    digests = {pixel_digest(path) for path in received.iterdir()}
    assert digests == {(record.sop_uid, record.pixel_sha256) for record in records}

    rc, out = echoscu(modality, gateway.ip, 11112, "MODALITY", "RECEIVER", TlsClient(pki.ca_cert))
    assert rc != 0, out
    # nginx completes the handshake and then closes: the probe must not count that as accepted.
    refused = tls_probe(modality, gateway.ip, 11112, ca_file=pki.ca_cert)
    assert refused.handshake
    assert not refused.ok, refused
    accepted = tls_probe(
        modality, gateway.ip, 11112, ca_file=pki.ca_cert,
        cert_file=pki["modality"].cert, key_file=pki["modality"].key,
    )  # fmt: skip
    assert accepted.ok, accepted
    assert not tls_probe(modality, gateway.ip, 11112, max_version="TLSv1_1").handshake
    assert sorted(os.listdir("/var/log/nginx")) == real_logs


def test_the_lab_leaves_nothing_behind_even_after_a_failure():
    names: list[str] = []
    pids: list[int] = []
    workdirs: list[Path] = []

    def failing_test() -> None:
        with Lab() as lab:
            first = lab.host("first")
            second = lab.host("second")
            names.extend([lab.switch, first.netns, second.netns])
            pids.append(first.spawn(["sleep", "300"]).pid)
            workdirs.append(lab.workdir)
            assert set(names) <= set(lab_namespaces())
            assert all(Path("/etc/netns", name).is_dir() for name in names)
            raise RuntimeError("test body failed")

    with pytest.raises(RuntimeError, match="test body failed"):
        failing_test()
    present = set(lab_namespaces())
    assert not [name for name in names if name in present]
    assert not [name for name in names if Path("/etc/netns", name).exists()]
    assert not workdirs[0].exists()
    assert not Path(f"/proc/{pids[0]}").exists()


def test_generated_studies_stay_valid_dicom_past_24_studies_and_at_ct_slice_size(tmp_path):
    # StudyTime once came out as "240000", "250000"... past 24 studies; pixels must stay
    # 12-bit values whatever the image size.
    records = make_study(tmp_path / "many", studies=30, instances_per_series=1, seed="tm")
    times = {dcmread(record.path).StudyTime for record in records}
    assert len(times) == 30
    for value in times:
        assert len(value) == 6, value
        assert int(value[:2]) < 24, value
        assert int(value[2:4]) < 60, value
    names = [record.path.name for record in records]
    assert names == sorted(names), "file names sort in sending order"
    big = make_study(tmp_path / "big", rows=360, columns=360, seed="slice")[0]
    dataset = dcmread(big.path)
    assert (dataset.Rows, dataset.Columns) == (360, 360)
    words = memoryview(dataset.PixelData).cast("H")
    assert len(words) == 360 * 360
    assert max(words) <= 4095
    assert len(set(words)) > 4000
    assert pixel_digest(big.path) == (big.sop_uid, big.pixel_sha256)
