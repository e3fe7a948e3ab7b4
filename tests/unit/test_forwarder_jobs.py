"""The forwarder's concurrent store jobs: how settled studies are shared out between
them, and how they behave against a scripted, in-memory proxy Orthanc.

The real Orthanc runs in tests/integration/test_proxy_forwarder.py; here the cases that
depend on the order in which jobs end (a success arriving after the link was declared
dead, two failures of one outage, a job lost to a restart, a thread that cannot start,
a stop request) are played exactly.
"""

from __future__ import annotations

import importlib.util
import itertools
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FORWARDER = Path(__file__).resolve().parents[2] / "components/render/assets/forwarder.py"


def _load():
    spec = importlib.util.spec_from_file_location("orthgate_forwarder_jobs", FORWARDER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fw = _load()


def config(**settings: Any):
    raw: dict[str, Any] = {
        "orthanc": {"url": "http://proxy-orthanc"},
        "destination": "cloud",
        "quietSeconds": 0,
        "pollSeconds": 0.1,
        "changesPollSeconds": 0.02,
        "probeSeconds": 60,  # the probe stays out of these cases
        "status": None,
        "retry": {"initialSeconds": 5, "maxSeconds": 600},
    }
    raw.update(settings)
    return fw.Config(raw)


class FakeOrthanc:
    """The REST routes the forwarder uses; each job's state is decided by a script."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.studies: dict[str, dict[str, str]] = {}  # study -> instance -> FileUuid
        self.jobs: dict[str, dict[str, Any]] = {}
        self.numbers = itertools.count(1)
        self.link = True
        self.scripts: dict[int, Callable[[dict[str, Any]], None]] = {}
        self.before: Callable[[str, str], None] | None = None
        self.stores: list[list[str]] = []  # the studies of each job, in creation order
        self.deleted: list[str] = []
        self.echoes = 0

    def add_study(self, study: str, count: int) -> None:
        self.studies[study] = {f"{study}-{i}": f"{study}-file-{i}" for i in range(count)}

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def post(self, path: str, body: Any, timeout: float | None = None) -> Any:
        return self.call("POST", path, body)

    def call(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> Any:
        if self.before:
            self.before(method, path)
        with self.lock:
            return self._answer(method, path, body)

    def _study(self, study: str) -> dict[str, Any]:
        tags = {"StudyInstanceUID": f"uid-{study}"}
        return {
            "ID": study,
            "LastUpdate": "20261202T000000",
            "IsStable": True,
            "MainDicomTags": tags,
        }

    def _answer(self, method: str, path: str, body: Any) -> Any:
        if path == "/statistics":
            count = sum(len(files) for files in self.studies.values())
            return {"CountInstances": count, "CountStudies": len(self.studies)}
        if path == "/jobs?expand":
            return []
        if path == "/changes?last":
            return {"Last": 0}
        if path.startswith("/changes?since"):
            return {"Changes": [], "Last": 0, "Done": True}
        if path == "/studies?expand":
            return [self._study(study) for study in sorted(self.studies)]
        if path.startswith("/studies/"):
            study = path.split("/")[2]
            if study not in self.studies:
                raise fw.OrthancHttpError(method, path, 404, "")
            if path.endswith("/instances"):
                files = self.studies[study].items()
                return [{"ID": i, "FileUuid": uuid, "FileSize": 1} for i, uuid in files]
            return self._study(study)
        if path == "/modalities/cloud/store":
            number = next(self.numbers)
            resources = list(body["Resources"])
            self.jobs[f"job{number}"] = {"n": number, "state": "Running", "resources": resources}
            self.stores.append(sorted({resource.split("-")[0] for resource in resources}))
            return {"ID": f"job{number}"}
        if path == "/modalities/cloud/echo":
            self.echoes += 1
            if not self.link:
                raise fw.OrthancHttpError(method, path, 500, "DICOM network failure")
            return {}
        if path.startswith("/jobs/") and path.endswith("/cancel"):
            return {}
        if path.startswith("/jobs/"):
            job = self.jobs.get(path.split("/")[2])
            if job is None:
                raise fw.OrthancHttpError(method, path, 404, "")
            self.scripts.get(job["n"], lambda job: job.update(state="Success"))(job)
            answer: dict[str, Any] = {"State": job["state"]}
            if job["state"] == "Success":
                answer["Content"] = {"InstancesCount": len(job["resources"])}
            if job["state"] == "Failure":
                answer["ErrorDescription"] = "DICOM network failure"
            return answer
        if path == "/tools/bulk-delete":
            for instance in body["Resources"]:
                for study in list(self.studies):
                    if self.studies[study].pop(instance, None) is not None:
                        self.deleted.append(instance)
                    if not self.studies[study]:
                        del self.studies[study]
            return {}
        raise AssertionError(f"unexpected {method} {path}")


class Running:
    """A forwarder's main loop in a thread, stopped (and joined) at the end of the test."""

    def __init__(self, forwarder) -> None:
        self.forwarder = forwarder
        self.thread = threading.Thread(target=forwarder.run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.forwarder.stop()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the forwarder did not stop"


def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not reached"
        time.sleep(0.01)


@pytest.fixture
def orthanc() -> FakeOrthanc:
    fake = FakeOrthanc()
    for study in "ABCD":
        fake.add_study(study, 300)
    return fake


def test_a_success_older_than_the_outage_does_not_end_its_back_off(orthanc):
    # A's job sees the link drop; B's job had already sent everything and is deleting.
    # B's success must not restart full jobs on the dead link.
    released = threading.Event()

    def link_drops(job: dict[str, Any]) -> None:
        orthanc.link = False
        job["state"] = "Failure"

    def done_before_the_drop(job: dict[str, Any]) -> None:
        if not orthanc.link:
            job["state"] = "Success"

    def slow_delete(method: str, path: str) -> None:
        if path == "/tools/bulk-delete":
            released.wait(5)

    orthanc.scripts = {1: lambda job: None, 2: done_before_the_drop}
    orthanc.before = slow_delete
    forwarder = fw.Forwarder(config(concurrentJobs=2), orthanc=orthanc)
    running = Running(forwarder)
    until(lambda: len(orthanc.stores) == 2)
    orthanc.scripts[1] = link_drops
    until(lambda: forwarder.link_down_at is not None)
    released.set()
    until(lambda: forwarder.status["forwardedStudies"] == 1)
    time.sleep(0.3)  # many cycles: none may start a job while the link is down
    running.stop()
    assert orthanc.stores == [["A"], ["B"]]
    assert forwarder.consecutive_failures == 1
    assert forwarder.next_attempt > time.monotonic()
    assert set(orthanc.studies) == {"A", "C", "D"}


def test_two_jobs_failing_in_one_outage_count_as_one_failure(orthanc):
    def fails(job: dict[str, Any]) -> None:
        orthanc.link = False
        job["state"] = "Failure"

    orthanc.scripts = {1: lambda job: None, 2: lambda job: None}
    forwarder = fw.Forwarder(config(concurrentJobs=2), orthanc=orthanc)
    running = Running(forwarder)
    until(lambda: len(orthanc.stores) == 2)
    orthanc.scripts = {1: fails, 2: fails}
    until(lambda: forwarder.status["failedJobs"] == 2)
    running.stop()
    assert orthanc.echoes == 1, "one C-ECHO per outage"
    assert forwarder.consecutive_failures == 1
    assert forwarder._backoff(forwarder.consecutive_failures) == 5  # the documented first step
    assert not orthanc.deleted


def test_a_job_lost_to_an_orthanc_restart_goes_again_without_back_off(orthanc):
    def vanishes(job: dict[str, Any]) -> None:
        del orthanc.jobs[f"job{job['n']}"]

    orthanc.scripts = {1: vanishes}
    forwarder = fw.Forwarder(config(concurrentJobs=2), orthanc=orthanc)
    running = Running(forwarder)
    until(lambda: not orthanc.studies)
    running.stop()
    assert orthanc.echoes == 0, "a lost job says nothing about the link or the study"
    assert forwarder.status["consecutiveFailures"] == 0
    assert sorted(study for job in orthanc.stores for study in job) == ["A", "A", "B", "C", "D"]
    assert len(orthanc.deleted) == 4 * 300


def test_a_job_thread_that_cannot_start_leaves_no_phantom_job(orthanc, monkeypatch):
    refused = []

    class FlakyThread(threading.Thread):
        def start(self) -> None:
            if self.name.startswith("job-") and not refused:  # the forwarder's job threads
                refused.append(self.name)
                raise RuntimeError("can't start new thread")
            super().start()

    monkeypatch.setattr(fw.threading, "Thread", FlakyThread)
    forwarder = fw.Forwarder(config(concurrentJobs=1), orthanc=orthanc)
    running = Running(forwarder)
    until(lambda: not orthanc.studies)
    running.stop()
    assert refused
    assert forwarder.in_flight == {}
    assert forwarder.status["currentJobs"] == []
    assert len(orthanc.deleted) == 4 * 300


def test_no_job_is_created_once_a_stop_is_requested(orthanc):
    forwarder = fw.Forwarder(config(concurrentJobs=2), orthanc=orthanc)

    def signal_while_choosing(method: str, path: str) -> None:
        if path.startswith("/studies/") and path.endswith("/instances"):
            forwarder.request_stop()  # what the SIGTERM handler does

    orthanc.before = signal_while_choosing
    running = Running(forwarder)
    running.thread.join(timeout=10)
    assert not running.thread.is_alive()
    assert orthanc.stores == []
    assert forwarder.stop_event.is_set()


def test_a_stop_while_two_jobs_run_leaves_them_to_orthanc_and_deletes_nothing(orthanc):
    orthanc.scripts = {1: lambda job: None, 2: lambda job: None}  # never finish
    forwarder = fw.Forwarder(config(concurrentJobs=2), orthanc=orthanc)
    running = Running(forwarder)
    until(lambda: len(orthanc.stores) == 2)
    # The status shows both jobs with their Orthanc ids once the main loop looked again.
    until(lambda: [job["job"] for job in forwarder.status["currentJobs"]] == ["job1", "job2"])
    forwarder.request_stop()
    running.thread.join(timeout=10)
    assert not running.thread.is_alive()
    assert orthanc.deleted == []
    assert forwarder.status["forwardedStudies"] == 0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"concurrentJobs": 1.5}, "concurrentJobs must be a whole number from 1 to 8"),
        ({"concurrentJobs": 0}, "concurrentJobs must be a whole number from 1 to 8"),
        ({"concurrentJobs": 9}, "concurrentJobs must be a whole number from 1 to 8"),
        ({"concurrentJobs": float("inf")}, "concurrentJobs must be a whole number"),
        ({"maxBatchInstances": 1.9}, "maxBatchInstances must be a whole number"),
        ({"quietSeconds": float("nan")}, "quietSeconds must be a number >= 0"),
        ({"pollSeconds": float("inf")}, "pollSeconds must be a number >= 0.1"),
        ({"status": {"port": 70000}}, "port must be a whole number from 1 to 65535"),
    ],
)
def test_unusable_settings_are_refused_by_name(settings, message):
    with pytest.raises(fw.ConfigError, match=message):
        config(**settings)


# --- sharing settled studies out between the jobs ---


def studies(*sizes: int) -> list:
    return [
        fw.Snapshot(f"s{n}", f"1.2.{n}", {f"s{n}-i{i}": f"f{i}" for i in range(size)}, 0)
        for n, size in enumerate(sizes)
    ]


def shape(groups: list) -> list[list[int]]:
    return [[len(snapshot.files) for snapshot in group] for group in groups]


@pytest.mark.parametrize(
    ("sizes", "jobs", "most", "expected"),
    [
        ((40, 40), 2, 500, [[40], [40]]),  # two settled studies: two associations
        ((50,) * 8, 2, 500, [[50] * 4, [50] * 4]),
        ((50,) * 8, 1, 500, [[50] * 8]),
        ((100,) * 20, 2, 500, [[100] * 5, [100] * 5]),  # a backlog: the rest waits
        ((10, 300, 10), 2, 500, [[10], [300, 10]]),
        ((2000, 10), 2, 500, [[2000], [10]]),  # a study is never split
        ((2000, 10), 1, 500, [[2000]]),
        ((7,), 2, 500, [[7]]),
        ((), 2, 500, []),
    ],
)
def test_settled_studies_are_shared_out_in_order(sizes, jobs, most, expected):
    snapshots = studies(*sizes)
    groups = fw.split_into_jobs(snapshots, jobs, most)
    assert shape(groups) == expected
    flat = [snapshot for group in groups for snapshot in group]
    assert flat == snapshots[: len(flat)], "oldest first, nothing skipped"
    assert len(groups) <= jobs
    assert all(sum(len(s.files) for s in g) <= most or len(g) == 1 for g in groups)
