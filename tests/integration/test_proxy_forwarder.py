"""The proxy's store-and-forward (components/render/assets/forwarder.py) on real Orthanc 1.10.1.

Three lab hosts: "modality" sends plain DICOM with storescu to "proxy" (Orthanc plus the
forwarder, run with the project's venv Python), which forwards to "cloud" (Orthanc with
``OverwriteInstances: true`` that accepts stores only from the proxy's AE title). Plain
DICOM towards the cloud: DICOM TLS is tested elsewhere. The forwarder's small retry values
(1 s doubling to 4 s) and the proxy's short ``DicomScuTimeout`` keep the faults fast.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.dicom_data import InstanceRecord, make_study, pixel_digest
from tests.integration.netlab import Host, Lab, Orthanc, Process, require, storescu

REPO = Path(__file__).resolve().parents[2]
FORWARDER = REPO / "components" / "render" / "assets" / "forwarder.py"
PYTHON = REPO / ".venv" / "bin" / "python"

ADMIN = ("admin", "admin-lab-secret")
FORWARDER_USER = "forwarder"
FORWARDER_PASSWORD = "fw-Pa55-never-in-a-log"
STATUS_PORT = 8099
RETRY_INITIAL = 1.0
RETRY_MAX = 4.0

JOB_LINE = re.compile(
    r"job study=(?P<study>\S+) instances=(?P<instances>\d+) bytes=(?P<bytes>\d+) "
    r"seconds=(?P<seconds>[\d.]+) outcome=(?P<outcome>\w+)(?P<rest>.*)"
)


@dataclass(frozen=True)
class JobLine:
    study: str
    instances: int
    bytes: int
    seconds: float
    outcome: str
    rest: str


def job_lines(process: Process, outcome: str | None = None) -> list[JobLine]:
    lines = [
        JobLine(
            study=m["study"],
            instances=int(m["instances"]),
            bytes=int(m["bytes"]),
            seconds=float(m["seconds"]),
            outcome=m["outcome"],
            rest=m["rest"],
        )
        for m in JOB_LINE.finditer(process.log_text())
    ]
    return [line for line in lines if outcome is None or line.outcome == outcome]


def wait_until(check: Callable[[], bool], timeout: float, describe: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout}s: {describe()}")
        time.sleep(0.2)


def max_failed_jobs(window: float, initial: float, maximum: float) -> int:
    """Failed jobs a back-off of initial, 2*initial ... maximum allows within ``window``
    seconds of the first failure, counting jobs as taking no time (a generous bound)."""
    elapsed, attempts, delay = 0.0, 1, initial
    while elapsed + delay <= window:
        elapsed += delay
        attempts += 1
        delay = min(delay * 2, maximum)
    return attempts


@dataclass
class Site:
    lab: Lab
    workdir: Path
    modality: Host
    proxy: Host
    cloud: Host
    proxy_orthanc: Orthanc
    cloud_orthanc: Orthanc
    forwarders: list[Process] = field(default_factory=list)

    def start_forwarder(self, **settings: Any) -> Process:
        config: dict[str, Any] = {
            "orthanc": {
                "url": f"http://127.0.0.1:{self.proxy_orthanc.http_port}",
                "username": FORWARDER_USER,
                "password": FORWARDER_PASSWORD,
            },
            "destination": "cloud",
            "pollSeconds": 0.5,
            "quietSeconds": 2,
            "maxWaitSeconds": 60,
            "retry": {"initialSeconds": RETRY_INITIAL, "maxSeconds": RETRY_MAX},
            "backlogWarningInstances": 10000,
            "status": {"address": "127.0.0.1", "port": STATUS_PORT},
            "jobTimeoutSeconds": 120,
        }
        config.update(settings)
        path = self.workdir / f"forwarder-{len(self.forwarders)}.json"
        path.write_text(json.dumps(config, indent=2))
        process = self.proxy.spawn(
            [PYTHON, FORWARDER, "--config", path], label=f"forwarder{len(self.forwarders)}"
        )
        self.forwarders.append(process)
        process.wait_for_log(r"status on http://", timeout=15)
        return process

    def status(self) -> dict[str, Any]:
        response = self.proxy.http("GET", f"http://127.0.0.1:{STATUS_PORT}/status")
        assert response.status == 200, (response.status, response.error)
        assert FORWARDER_PASSWORD not in response.text
        return dict(response.json())

    def send(self, files: Path | Sequence[Path]) -> None:
        rc, out = storescu(self.modality, self.proxy.ip, 4242, files, "MODALITY", "PROXY")
        assert rc == 0, out

    def cloud_sops(self) -> list[str]:
        expanded = self.cloud_orthanc.get_json("/instances?expand")
        return [item["MainDicomTags"]["SOPInstanceUID"] for item in expanded]

    def proxy_count(self) -> int:
        return self.proxy_orthanc.count_instances()

    def describe(self) -> str:
        logs = "\n".join(f"--- {p.label}:\n{p.log_tail(25)}" for p in self.forwarders)
        return (
            f"proxy holds {self.proxy_count()}, cloud holds "
            f"{self.cloud_orthanc.count_instances()}\n{logs}"
        )

    def wait_forwarded(self, expected: int, timeout: float) -> None:
        def done() -> bool:
            return self.cloud_orthanc.count_instances() >= expected and self.proxy_count() == 0

        wait_until(done, timeout, self.describe)


def _orthanc_base(storage: Path, aet: str) -> dict[str, Any]:
    storage.mkdir(parents=True)
    return {
        "Name": aet.lower(),
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "DicomAet": aet,
        "DicomPort": 4242,
        "HttpPort": 8042,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "DicomCheckCalledAet": True,
        "Plugins": [],
    }


@pytest.fixture
def make_site(tmp_path: Path) -> Iterator[Callable[..., Site]]:
    require("Orthanc", "storescu")
    assert FORWARDER.is_file(), FORWARDER
    assert PYTHON.exists(), PYTHON
    with Lab() as lab:

        def build(
            *, stable_age: int = 2, scu_timeout: int = 10, cloud_extra: dict | None = None
        ) -> Site:
            modality = lab.host("modality")
            proxy = lab.host("proxy")
            cloud = lab.host("cloud")
            cloud_config = _orthanc_base(tmp_path / "cloud-storage", "CLOUD")
            cloud_config.update(
                RegisteredUsers=dict([ADMIN]),
                OverwriteInstances=True,
                DicomAlwaysAllowStore=False,
                DicomModalities={"proxy": {"AET": "PROXY", "Host": proxy.ip, "Port": 4242}},
            )
            cloud_config.update(cloud_extra or {})
            proxy_config = _orthanc_base(tmp_path / "proxy-storage", "PROXY")
            proxy_config.update(
                RegisteredUsers={ADMIN[0]: ADMIN[1], FORWARDER_USER: FORWARDER_PASSWORD},
                DicomAlwaysAllowStore=True,
                OverwriteInstances=True,  # as the bundle renders it
                SaveJobs=False,
                StableAge=stable_age,
                DicomScuTimeout=scu_timeout,
                DicomModalities={"cloud": {"AET": "CLOUD", "Host": cloud.ip, "Port": 4242}},
            )
            return Site(
                lab=lab,
                workdir=tmp_path,
                modality=modality,
                proxy=proxy,
                cloud=cloud,
                proxy_orthanc=Orthanc(proxy, proxy_config, name="proxy-orthanc").start(),
                cloud_orthanc=Orthanc(cloud, cloud_config, name="cloud-orthanc").start(),
            )

        yield build


def _cloud_digests(site: Site) -> dict[str, str]:
    ids = site.cloud_orthanc.instances()
    return dict(pixel_digest(site.cloud_orthanc.instance_file(i)) for i in ids)


def _expected(records: Sequence[InstanceRecord]) -> dict[str, str]:
    return {record.sop_uid: record.pixel_sha256 for record in records}


def test_proxy_forwards_every_study_and_ends_empty(make_site, tmp_path: Path):
    site = make_site()
    records = make_study(tmp_path / "studies", studies=3, instances_per_series=4, seed="fw-happy")
    forwarder = site.start_forwarder()
    site.send(tmp_path / "studies")

    site.wait_forwarded(len(records), timeout=40)
    assert _cloud_digests(site) == _expected(records)
    assert site.proxy_orthanc.get_json("/studies") == []

    # One line per job, one job per study (each study arrived whole before it settled).
    lines = job_lines(forwarder)
    assert [line.outcome for line in lines] == ["success"] * 3, forwarder.log_text()
    assert {line.study for line in lines} == {record.study_uid for record in records}
    assert all(line.instances == 4 and line.bytes > 4 * 8192 for line in lines)
    assert all("deleted=4" in line.rest for line in lines)

    status = site.status()
    assert status["backlog"] == {"instances": 0, "studies": 0, "bytes": 0}
    assert status["consecutiveFailures"] == 0
    assert status["forwardedInstances"] == len(records)
    assert status["orthancReachable"] is True
    assert FORWARDER_PASSWORD not in forwarder.log_text()
    assert forwarder.stop() == 0


def test_proxy_survives_a_dead_link_and_restarts_without_losing_an_image(make_site, tmp_path):
    # StableAge 60: no study becomes "stable" in Orthanc's memory before the restarts; the
    # forwarder must still find and forward all of them.
    site = make_site(stable_age=60, scu_timeout=1)
    first = make_study(tmp_path / "first", studies=3, instances_per_series=30, seed="fw-f1")
    second = make_study(tmp_path / "second", studies=2, instances_per_series=15, seed="fw-f2")
    sent = first + second
    assert len(sent) >= 100

    site.cloud.set_link(False)
    forwarder = site.start_forwarder()
    site.send(tmp_path / "first")

    # A fixed downtime: the failed jobs are bounded by the back-off schedule.
    forwarder.wait_for_log(r"outcome=failure", timeout=20)
    window = 15.0
    time.sleep(window)
    failures = job_lines(forwarder, "failure")
    bound = max_failed_jobs(window + 1.0, RETRY_INITIAL, RETRY_MAX)
    assert 3 <= len(failures) <= bound, forwarder.log_text()
    assert not job_lines(forwarder, "success")
    assert "next_retry_in=4s" in forwarder.log_text()
    assert "TCP Initialization Error" in failures[-1].rest
    status = site.status()
    assert status["backlog"]["instances"] == len(first)
    assert status["backlog"]["studies"] == 3
    assert status["backlog"]["bytes"] > len(first) * 8192
    assert status["consecutiveFailures"] >= 3
    assert status["nextAttemptAt"]
    assert status["lastJob"]["outcome"] == "failure"
    assert site.proxy_count() == len(first)

    # More images, then the proxy Orthanc restarts under the running forwarder ...
    site.send(tmp_path / "second")
    site.proxy_orthanc.restart()
    forwarder.wait_for_log(r"orthanc not usable", timeout=10)
    time.sleep(1.5)
    assert forwarder.alive, forwarder.log_tail()
    # ... the forwarder stops cleanly, and a new one starts while Orthanc is down.
    assert forwarder.stop() == 0
    assert "stopped" in forwarder.log_tail(3)
    site.proxy_orthanc.stop()
    restarted = site.start_forwarder()
    restarted.wait_for_log(r"orthanc not usable .*(refused|Connection)", timeout=10)
    site.proxy_orthanc.start()
    restarted.wait_for_log(r"orthanc reachable", timeout=15)
    assert site.proxy_count() == len(sent)

    site.cloud.set_link(True)
    site.wait_forwarded(len(sent), timeout=60)
    sops = site.cloud_sops()
    assert len(sops) == len(sent) == site.cloud_orthanc.count_instances()
    assert set(sops) == {record.sop_uid for record in sent}
    successes = job_lines(restarted, "success")
    assert {line.study for line in successes} == {record.study_uid for record in sent}
    assert sum(line.instances for line in successes) == len(sent)
    assert restarted.alive
    final = site.status()
    assert final["backlog"]["instances"] == 0
    assert final["consecutiveFailures"] == 0
    for process in site.forwarders:
        assert FORWARDER_PASSWORD not in process.log_text()


def _throttle(site: Site, rate: str | None) -> None:
    """Limit (or unlimit) the traffic towards the cloud at its switch port."""
    port = site.cloud.interfaces[0].port
    tc = require("tc")["tc"]
    if rate is None:
        argv = [tc, "-n", site.lab.switch, "qdisc", "del", "dev", port, "root"]
    else:
        argv = [tc, "-n", site.lab.switch, "qdisc", "add", "dev", port, "root", "tbf"]
        argv += ["rate", rate, "burst", "16kb", "latency", "10s"]
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


def _running_store_job(site: Site) -> str | None:
    for job in site.proxy_orthanc.get_json("/jobs?expand"):
        if job["Type"] == "DicomModalityStore" and job["State"] == "Running":
            return str(job["ID"])
    return None


def test_proxy_keeps_instances_that_arrive_while_a_job_runs(make_site, tmp_path: Path):
    # StableAge 30 and quietSeconds 4: after the first job the late instances wait a few
    # seconds, so what the first job left on the proxy can be looked at.
    site = make_site(stable_age=30)
    records = make_study(tmp_path / "all", studies=1, instances_per_series=230, seed="fw-late")
    early = [record.path for record in records[:200]]
    late = [record.path for record in records[200:]]
    # About 1.9 MB at 2 Mbit/s: the first job runs for several seconds.
    _throttle(site, "2mbit")
    forwarder = site.start_forwarder(quietSeconds=4)
    site.send(early)

    job_id: list[str] = []

    def job_running() -> bool:
        found = _running_store_job(site)
        if found:
            job_id.append(found)
        return bool(found)

    wait_until(job_running, 30, site.describe)
    site.send(late)
    # The late images really arrived while the job was still sending.
    job = site.proxy_orthanc.get_json(f"/jobs/{job_id[0]}")
    assert job["State"] == "Running", job
    assert job["Content"]["InstancesCount"] == len(early)

    forwarder.wait_for_log(r"instances=200 \S+ \S+ outcome=success", timeout=60)
    kept = {tags["SOPInstanceUID"] for tags in _proxy_sops(site)}
    assert kept == {record.sop_uid for record in records[200:]}
    assert site.proxy_orthanc.get_json(f"/jobs/{job_id[0]}")["State"] == "Success"

    _throttle(site, None)
    site.wait_forwarded(len(records), timeout=40)
    assert set(site.cloud_sops()) == {record.sop_uid for record in records}
    assert site.cloud_orthanc.count_instances() == len(records)
    lines = job_lines(forwarder)
    assert [(line.instances, line.outcome) for line in lines] == [
        (200, "success"),
        (30, "success"),
    ]


def _proxy_sops(site: Site) -> list[dict[str, Any]]:
    return [item["MainDicomTags"] for item in site.proxy_orthanc.get_json("/instances?expand")]


def test_proxy_resends_what_the_cloud_already_holds_without_duplicates(make_site, tmp_path):
    site = make_site()
    records = make_study(tmp_path / "study", studies=1, instances_per_series=10, seed="fw-idem")
    for record in records[:5]:
        site.cloud_orthanc.upload(record.path.read_bytes())
    assert site.cloud_orthanc.count_instances() == 5

    forwarder = site.start_forwarder()
    site.send(tmp_path / "study")
    site.wait_forwarded(len(records), timeout=40)
    assert site.cloud_orthanc.count_instances() == len(records)
    assert _cloud_digests(site) == _expected(records)

    # The modality sends the whole study again: forwarded again, still no duplicate.
    site.send(tmp_path / "study")
    wait_until(lambda: len(job_lines(forwarder)) >= 2, 40, site.describe)
    site.wait_forwarded(len(records), timeout=20)
    assert site.cloud_orthanc.count_instances() == len(records)
    assert sorted(site.cloud_sops()) == sorted(record.sop_uid for record in records)
    lines = job_lines(forwarder)
    assert [(line.instances, line.outcome) for line in lines] == [(10, "success")] * 2


def test_proxy_warns_once_when_the_backlog_grows_too_large(make_site, tmp_path: Path):
    site = make_site(scu_timeout=1)
    make_study(tmp_path / "studies", studies=2, instances_per_series=6, seed="fw-backlog")
    site.cloud.set_link(False)
    forwarder = site.start_forwarder(backlogWarningInstances=5)
    time.sleep(1.5)
    assert "WARNING backlog" not in forwarder.log_text()

    site.send(tmp_path / "studies")
    forwarder.wait_for_log(r"WARNING backlog of \d+ instances .* exceeds 5", timeout=15)
    wait_until(lambda: site.status()["backlog"]["instances"] == 12, 10, site.describe)
    time.sleep(4)  # many polls and a few failed jobs later: still a single warning
    assert len(re.findall(r"WARNING backlog of", forwarder.log_text())) == 1
    assert job_lines(forwarder, "failure")

    site.cloud.set_link(True)
    site.wait_forwarded(12, timeout=40)
    forwarder.wait_for_log(r"backlog of 0 instances is back under 5", timeout=10)


def test_proxy_forwards_a_study_that_keeps_arriving_while_it_sends(make_site, tmp_path):
    # The short quiet time of the bundle: a study goes half a second after its last image,
    # so a modality sending in bursts has its study cut into several jobs while the link
    # (slowed down) is still busy with the first ones. Each instance must reach the cloud
    # once, intact, and each job carry only instances no job carried before.
    site = make_site(stable_age=60)
    records = make_study(tmp_path / "study", instances_per_series=120, seed="fw-bursts")
    _throttle(site, "8mbit")
    forwarder = site.start_forwarder(quietSeconds=0.5)
    bursts = [records[start : start + 20] for start in range(0, len(records), 20)]
    for burst in bursts:
        site.send([record.path for record in burst])
        time.sleep(0.8)  # longer than the quiet time: the study settles between bursts
    site.wait_forwarded(len(records), timeout=90)
    _throttle(site, None)

    assert _cloud_digests(site) == _expected(records)
    assert site.cloud_orthanc.count_instances() == len(records)
    lines = job_lines(forwarder)
    assert all(line.outcome == "success" for line in lines), forwarder.log_text()
    assert {line.study for line in lines} == {records[0].study_uid}
    assert len(lines) >= 2, "the study was cut short at least once"
    assert sum(line.instances for line in lines) == len(records), "no instance sent twice"


def test_a_link_back_during_a_long_back_off_is_used_at_once(make_site, tmp_path):
    site = make_site(scu_timeout=1)
    records = make_study(tmp_path / "study", instances_per_series=5, seed="fw-probe")
    site.cloud.set_link(False)
    forwarder = site.start_forwarder(
        retry={"initialSeconds": 60, "maxSeconds": 120}, probeSeconds=0.5, quietSeconds=0.5
    )
    site.send(tmp_path / "study")
    forwarder.wait_for_log(
        r"does not answer C-ECHO: every study waits.*next_retry_in=60s", timeout=20
    )
    site.cloud.set_link(True)
    # Far sooner than the 60 s back-off: the C-ECHO probe saw the link come back.
    site.wait_forwarded(len(records), timeout=20)
    assert "link probe" in forwarder.log_text()
    assert [line.outcome for line in job_lines(forwarder)] == ["failure", "success"]
    assert _cloud_digests(site) == _expected(records)


def test_a_cloud_that_answers_but_refuses_holds_each_study_back_alone(make_site, tmp_path):
    # The cloud answers C-ECHO but refuses the proxy's stores: the failure is not the
    # link's, so no link-wide back-off; each study waits on its own back-off (never a busy
    # loop) and nothing is deleted. Once the cloud accepts again, everything goes.
    site = make_site()
    config = json.loads(site.cloud_orthanc.config_path.read_text())
    refusing = {**config, "DicomModalities": {
        "proxy": {"AET": "PROXY", "Host": site.proxy.ip, "Port": 4242, "AllowStore": False}
    }}  # fmt: skip
    site.cloud_orthanc.stop()
    site.cloud_orthanc.config_path.write_text(json.dumps(refusing))
    site.cloud_orthanc.start()
    records = make_study(tmp_path / "studies", studies=2, instances_per_series=3, seed="fw-no")
    forwarder = site.start_forwarder(quietSeconds=0.5)
    site.send(tmp_path / "studies")
    for record in (records[0], records[-1]):
        forwarder.wait_for_log(f"study={record.study_uid} waits alone", timeout=20)
    window = 8.0
    time.sleep(window)
    log = forwarder.log_text()
    assert "does not answer C-ECHO" not in log
    per_study = max_failed_jobs(window + 4.0, RETRY_INITIAL, RETRY_MAX)
    for study in {record.study_uid for record in records}:
        failed = [line for line in job_lines(forwarder, "failure") if line.study == study]
        assert 2 <= len(failed) <= per_study, log
    assert site.proxy_count() == len(records), "nothing refused is deleted"

    site.cloud_orthanc.stop()
    site.cloud_orthanc.config_path.write_text(json.dumps(config))
    site.cloud_orthanc.start()
    site.wait_forwarded(len(records), timeout=30)
    assert _cloud_digests(site) == _expected(records)


def test_two_jobs_at_once_lose_nothing_when_the_link_drops_under_both(make_site, tmp_path):
    # Two settled studies go in two concurrent jobs (two associations). The link drops
    # while both are sending: both fail, nothing is deleted, and once the link is back
    # every instance reaches the cloud once, intact, in jobs that never overlap.
    site = make_site(scu_timeout=1)
    records = make_study(tmp_path / "studies", studies=2, instances_per_series=40, seed="fw-two")
    _throttle(site, "4mbit")
    forwarder = site.start_forwarder(quietSeconds=0.5, concurrentJobs=2)
    site.send(tmp_path / "studies")
    wait_until(lambda: len(site.status()["currentJobs"]) == 2, 30, site.describe)
    running = [
        job
        for job in site.proxy_orthanc.get_json("/jobs?expand")
        if job["Type"] == "DicomModalityStore" and job["State"] == "Running"
    ]
    assert len(running) == 2, running
    site.cloud.set_link(False)
    forwarder.wait_for_log(r"does not answer C-ECHO: every study waits", timeout=30)
    wait_until(lambda: not site.status()["currentJobs"], 30, site.describe)
    assert site.proxy_count() == len(records), "a failed job deleted something"
    assert not job_lines(forwarder, "success")

    _throttle(site, None)
    site.cloud.set_link(True)
    site.wait_forwarded(len(records), timeout=60)
    assert _cloud_digests(site) == _expected(records)
    assert site.cloud_orthanc.count_instances() == len(records)
    successes = job_lines(forwarder, "success")
    assert sum(line.instances for line in successes) == len(records), forwarder.log_text()
    assert {line.study for line in successes} == {record.study_uid for record in records}
    assert len(job_lines(forwarder, "failure")) >= 2
