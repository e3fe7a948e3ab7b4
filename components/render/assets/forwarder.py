#!/usr/bin/env python3
"""orthgate: forward every study stored on the proxy Orthanc to the cloud, losing nothing.

Runs next to the on-premises proxy Orthanc and drives its REST API::

    python3 forwarder.py --config forwarder.json

Python 3.9+, standard library only. Works against Orthanc 1.10.1 (Debian 12) and the
orthancteam image (1.12/1.13): it uses only routes present in all of them.

How it works
------------
* Work is whatever the proxy still stores: ``GET /studies?expand``, oldest ``LastUpdate``
  first. Nothing depends on Orthanc events, so after a restart of Orthanc or of the
  forwarder every stored instance is picked up again (including studies that never became
  "stable": that state lives in Orthanc's memory only).
* Arrivals: Orthanc's changes feed (``GET /changes``, every ``changesPollSeconds``) names
  each instance as it is stored; the forwarder notes the time against its study. The
  feed only makes the forwarder quicker: if it fails, ``LastUpdate`` (whole seconds) is
  used instead, and the listing stays the truth about what is stored.
* A study is forwarded once it is settled: nothing arrived for it for ``quietSeconds``,
  or Orthanc reports it stable (``IsStable``), or the forwarder has known it for
  ``maxWaitSeconds`` (a modality that never stops sending must not hold a study back
  forever). Times are on the forwarder's monotonic clock, so the Orthanc container's time
  zone and clock do not matter. Waiting for quiet keeps a study in one job; forwarding
  early is never unsafe, because only the instances of a job are deleted, and what
  arrives later goes with the next job.
* Jobs: settled studies, oldest first, up to ``maxBatchInstances`` instances, go in ONE
  asynchronous ``DicomModalityStore`` job (``POST /modalities/{destination}/store`` with
  the snapshot's instance ids and ``Permissive: false``: one association, any failed
  instance fails the job), polled every 20 ms at first, then every 0.25 s, until Success
  or Failure, or cancelled (``POST /jobs/{id}/cancel``) after ``jobTimeoutSeconds``.
  Up to ``concurrentJobs`` jobs run at once, each in a thread of its own and never two
  with the same study; a study that receives more while its job runs waits for that job
  to end. While jobs fail, one job at a time, carrying a single study. The snapshot of a
  study is its instance ids and stored files (``GET /studies/{id}/instances``) when the
  job is created. Every decision on a finished job (deletion counts, back-off, logs) is
  taken by the main loop.
* Deletion: only after a job succeeded, reported exactly the snapshot's instance count and
  no failed instance; only the snapshot's instances whose stored file (``FileUuid``) is
  still the one that was sent. Instances that arrived meanwhile, and re-sent ones that
  replaced a file of the snapshot (a correction), stay and go with the next job. ``POST
  /tools/bulk-delete`` (Orthanc 1.9.4+), falling back to ``DELETE /instances/{id}``. A
  failed, timed-out or vanished job (Orthanc restarted), an interrupted wait or any doubt
  deletes nothing: the instances are sent again later. Both Orthancs have
  ``OverwriteInstances: true``: a re-sent instance replaces the stored one in place (same
  instance id), so sending again never duplicates and the last copy sent wins. The file
  check and the delete are two calls: a re-send landing in the milliseconds between them
  is deleted unsent.
* Retries: Orthanc does not retry failed jobs. After a failed job, one C-ECHO to the
  destination (``POST /modalities/{destination}/echo``) tells the two causes apart. If
  nothing answers, the link is down: every study waits ``retry.initialSeconds``,
  doubling per consecutive failure up to ``retry.maxSeconds``, and a C-ECHO every
  ``probeSeconds`` ends the wait as soon as the link answers, so a restored link is not
  left idle for the rest of a long back-off. If the destination answers, the study is the
  problem: it waits alone on its own back-off and the studies behind it go on. One
  success resets the count. With two jobs at once, a job that started before the link
  was declared dead belongs to that outage: its failure is not counted again (one
  C-ECHO, one back-off step per outage) and its success does not end the back-off (the
  probe says when the link is back). A job lost to an Orthanc restart is nobody's
  failure: it goes again at once.
* Log lines: one per forwarded study (study UID, instances, bytes, job seconds, outcome,
  ``studies_in_job`` when the job carried several; on failure the error), then one line
  saying which of the two causes it was and when the next try is.
* If the proxy Orthanc is unreachable (down, restarting), the forwarder waits and retries
  every ``pollSeconds``; it never crashes on it and never deletes on doubt. Store jobs left
  running by a previous forwarder are waited for before the first job. SIGTERM/SIGINT
  stop it cleanly (exit 0) within about 20 s: no new job is created, running jobs are
  left to Orthanc and nothing they sent is deleted (a deletion already under way, for a
  job the cloud confirmed, finishes or is logged as still busy). The next forwarder
  waits for those jobs, then sends again whatever is still stored.
* ``GET /status`` on the status address serves the backlog as JSON. A WARNING is logged
  when the backlog exceeds ``backlogWarningInstances``, at most once per
  ``backlogWarningIntervalSeconds``. The password is never logged nor served.

Configuration (JSON)
--------------------
``orthanc.url``
    Base URL of the proxy Orthanc REST API, e.g. ``http://orthanc:8042`` (http or https; no
    credentials in the URL). Required.
``orthanc.username`` / ``orthanc.password``
    HTTP basic credentials of the forwarder's Orthanc user. ``orthanc.passwordFile`` may be
    given instead of ``password`` (first line of the file, e.g. a Docker secret). Omit both
    username and password when Orthanc has authentication off.
``orthanc.requestTimeoutSeconds``
    Timeout of one REST call (default 30).
``destination``
    The name of the target in the proxy's ``DicomModalities`` (e.g. ``cloud``). Required.
``pollSeconds``
    How often the backlog is read and an unreachable Orthanc is tried again (default 2).
``changesPollSeconds``
    How often the changes feed is read for arrivals (default 0.1).
``quietSeconds``
    A study that received nothing for this long is forwarded even if Orthanc does not call
    it stable yet (default 1).
``maxBatchInstances``
    Most instances one job carries when several studies are settled (default 500: a
    backlog is shared between the concurrent jobs).
``concurrentJobs``
    Store jobs running at once (default 2; the proxy Orthanc's ``ConcurrentJobs`` must be
    as large, or the extra jobs only queue).
``probeSeconds``
    While backing off, how often a C-ECHO checks whether the link is back (default 2).
``maxWaitSeconds``
    Upper bound on how long a study may wait for quiet or stability (default 600).
``retry.initialSeconds`` / ``retry.maxSeconds``
    Exponential back-off after failed jobs (defaults 5 and 600).
``jobTimeoutSeconds``
    A job still running after this long is cancelled and counts as failed (default 3600).
``backlogWarningInstances``
    Log a WARNING while more instances than this are stored on the proxy (default 10000).
``backlogWarningIntervalSeconds``
    Minimum time between two such warnings (default 300).
``status.address`` / ``status.port``
    Where ``GET /status`` is served (defaults 127.0.0.1 and 8099). ``"status": null``
    disables it.
``logLevel``
    DEBUG, INFO (default), WARNING or ERROR.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import itertools
import json
import logging
import math
import queue
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOG = logging.getLogger("forwarder")

JOB_TYPE = "DicomModalityStore"
ACTIVE_JOB_STATES = ("Pending", "Running", "Paused", "Retry")
DELETE_CHUNK = 500
LISTING_MAX_AGE = 30.0  # seconds a study listing is reused before asking Orthanc again
JOB_POLL_FAST = 0.02  # seconds between two looks at a young job
QUICK_ECHO_SECONDS = 3  # the C-ECHO that tells a dead link from a refused study
MAX_CONCURRENT_JOBS = 8
SHUTDOWN_JOIN_SECONDS = 20  # under compose's stop_grace_period (30 s) before SIGKILL


class ConfigError(Exception):
    pass


class OrthancUnavailable(Exception):
    """No HTTP answer from Orthanc (refused, reset, timed out): try again later."""


class OrthancHttpError(Exception):
    def __init__(self, method: str, path: str, status: int, detail: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status} {detail}".strip())
        self.status = status


# --- configuration ------------------------------------------------------------------------


def _number(section: dict, key: str, default: float, minimum: float = 0.0) -> float:
    value = section.get(key, default)
    # json accepts NaN and Infinity: neither is a usable time or count.
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < minimum
    ):
        raise ConfigError(f"{key} must be a number >= {minimum:g}")
    return float(value)


def _integer(section: dict, key: str, default: int, minimum: int, maximum: int) -> int:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ConfigError(f"{key} must be a whole number from {minimum} to {maximum}")
    return value


class Config:
    def __init__(self, raw: dict) -> None:
        if not isinstance(raw, dict):
            raise ConfigError("the configuration must be a JSON object")
        orthanc = raw.get("orthanc")
        if not isinstance(orthanc, dict) or not isinstance(orthanc.get("url"), str):
            raise ConfigError("orthanc.url is required")
        parsed = urllib.parse.urlsplit(orthanc["url"])
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ConfigError("orthanc.url must be an http:// or https:// URL")
        if parsed.username is not None or parsed.password is not None:
            raise ConfigError("orthanc.url must not contain credentials; use username/password")
        self.url = orthanc["url"].rstrip("/")
        self.username = orthanc.get("username")
        self.password = orthanc.get("password")
        if self.password is None and orthanc.get("passwordFile"):
            try:
                with open(orthanc["passwordFile"], encoding="utf-8") as handle:
                    self.password = handle.readline().rstrip("\r\n")
            except OSError as exc:
                raise ConfigError(f"orthanc.passwordFile cannot be read: {exc.strerror}") from None
        if (self.username is None) != (self.password is None):
            raise ConfigError("give both orthanc.username and a password, or neither")
        self.request_timeout = _number(orthanc, "requestTimeoutSeconds", 30.0, 1.0)
        destination = raw.get("destination")
        if not isinstance(destination, str) or not destination:
            raise ConfigError("destination (a DicomModalities name) is required")
        self.destination = destination
        self.poll = _number(raw, "pollSeconds", 2.0, 0.1)
        self.changes_poll = _number(raw, "changesPollSeconds", 0.1, 0.01)
        self.quiet = _number(raw, "quietSeconds", 1.0)
        self.max_batch = _integer(raw, "maxBatchInstances", 500, 1, 100000)
        # Each job is one association and one thread; a handful is plenty.
        self.concurrent_jobs = _integer(raw, "concurrentJobs", 2, 1, MAX_CONCURRENT_JOBS)
        self.probe = _number(raw, "probeSeconds", 2.0, 0.1)
        self.max_wait = _number(raw, "maxWaitSeconds", 600.0)
        retry = raw.get("retry") or {}
        self.retry_initial = _number(retry, "initialSeconds", 5.0, 0.1)
        self.retry_max = _number(retry, "maxSeconds", 600.0, self.retry_initial)
        self.job_timeout = _number(raw, "jobTimeoutSeconds", 3600.0, 1.0)
        self.backlog_warning = _integer(raw, "backlogWarningInstances", 10000, 0, 10**9)
        self.backlog_interval = _number(raw, "backlogWarningIntervalSeconds", 300.0)
        status = raw.get("status", {})
        if status is None:
            self.status_address, self.status_port = None, 0
        elif isinstance(status, dict):
            self.status_address = str(status.get("address", "127.0.0.1"))
            self.status_port = _integer(status, "port", 8099, 1, 65535)
        else:
            raise ConfigError("status must be an object or null")
        level = str(raw.get("logLevel", "INFO")).upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError("logLevel must be DEBUG, INFO, WARNING or ERROR")
        self.log_level = level

    @classmethod
    def load(cls, path: str) -> Config:
        try:
            with open(path, encoding="utf-8") as handle:
                raw = json.load(handle)
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
        except ValueError as exc:
            raise ConfigError(f"{path} is not valid JSON: {exc}") from None
        return cls(raw)


# --- Orthanc REST client ------------------------------------------------------------------


class Orthanc:
    def __init__(self, config: Config) -> None:
        self.base = config.url
        self.timeout = config.request_timeout
        self.auth = None
        if config.username is not None:
            token = f"{config.username}:{config.password}".encode()
            self.auth = "Basic " + base64.b64encode(token).decode("ascii")
        # No proxy from the environment: Orthanc is next door.
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        # The scheme was checked when the configuration was loaded (http or https only).
        request = urllib.request.Request(self.base + path, data=data, method=method)  # noqa: S310
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.auth:
            request.add_header("Authorization", self.auth)
        try:
            with self.opener.open(request, timeout=timeout or self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            detail = ""
            with contextlib.suppress(ValueError, AttributeError, OSError):
                detail = str(json.loads(exc.read() or b"{}").get("Message", ""))
            raise OrthancHttpError(method, path, exc.code, detail) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise OrthancUnavailable(f"{method} {path}: {reason}") from None
        if not payload.strip():
            return None
        try:
            return json.loads(payload)
        except ValueError:
            raise OrthancUnavailable(f"{method} {path}: answer is not JSON") from None

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def post(self, path: str, body: Any, timeout: float | None = None) -> Any:
        return self.call("POST", path, body, timeout)


# --- state ------------------------------------------------------------------------------


class StudyTrack:
    """What the forwarder has seen of one study (monotonic times)."""

    def __init__(self, last_update: str, now: float, rank: int) -> None:
        self.last_update = last_update
        self.changed_at = now
        self.first_seen = now
        self.rank = rank  # order of first sight: oldest first
        self.failures = 0
        self.not_before = 0.0

    def observe(self, last_update: str, now: float, follows_changes: bool) -> None:
        """A fresh LastUpdate (one-second resolution) counts as an arrival only when the
        changes feed, which sees each instance as it is stored, is not being followed."""
        if last_update != self.last_update:
            self.last_update = last_update
            if not follows_changes:
                self.changed_at = now

    def arrived(self, now: float) -> None:
        self.changed_at = now


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class Snapshot:
    """The instances of one study as they were when its job was created."""

    def __init__(self, study_id: str, uid: str, files: dict[str, Any], size: int) -> None:
        self.study_id = study_id
        self.uid = uid
        self.files = files  # instance id -> FileUuid of the stored file that is sent
        self.size = size

    @classmethod
    def of(cls, study: dict, listing: list) -> Snapshot:
        items = [item for item in listing if isinstance(item, dict) and "ID" in item]
        uid = (study.get("MainDicomTags") or {}).get("StudyInstanceUID", study["ID"])
        files = {item["ID"]: item.get("FileUuid") for item in items}
        size = sum(int(item.get("FileSize", 0)) for item in items)
        return cls(study["ID"], uid, files, size)


def split_into_jobs(snapshots: list[Snapshot], jobs: int, most: int) -> list[list[Snapshot]]:
    """Consecutive runs of ``snapshots`` (oldest first), one per job, of about equal size
    and at most ``most`` instances each unless a single study is larger; what does not fit
    waits for the next free job."""
    total = sum(len(snapshot.files) for snapshot in snapshots)
    share = max(1, -(-total // max(1, jobs)))
    groups: list[list[Snapshot]] = []
    count = 0
    for snapshot in snapshots:
        size = len(snapshot.files)
        if groups and (
            count + size <= min(share, most) or (count + size <= most and len(groups) == jobs)
        ):
            groups[-1].append(snapshot)
            count += size
        elif len(groups) < jobs:
            groups.append([snapshot])
            count = size
        else:
            break
    return groups


class Job:
    """One store job: made by the main loop, filled in by its thread, handed back whole.
    The main loop reads ``job_id`` while the thread runs (for the status page)."""

    def __init__(self, key: int, batch: list[Snapshot]) -> None:
        self.key = key
        self.batch = batch
        self.started = time.monotonic()
        self.started_at = _iso(time.time())
        self.seconds = 0.0
        self.outcome = "failure"
        self.error = ""
        self.job_id: str | None = None
        self.deleted: dict[str, tuple[int, str]] = {}  # study id -> (deleted, error)


class Forwarder:
    def __init__(self, config: Config, orthanc: Orthanc | None = None) -> None:
        self.config = config
        self.orthanc = orthanc or Orthanc(config)
        self.stop_event = threading.Event()
        self.wake = threading.Event()  # a job finished, or stop: the main loop looks now
        # Set by the signal handler, which must take no lock (the main thread it
        # interrupts may hold one); the main loop turns it into stop().
        self.stop_requested = False
        # When a dead link was last declared (monotonic): jobs that started before it
        # belong to that outage and neither prolong nor end its back-off.
        self.link_down_at: float | None = None
        self.lock = threading.Lock()
        # Jobs run in worker threads; everything else, and every decision on a finished
        # job, stays in the main loop, which alone touches the study tracks.
        self.in_flight: dict[int, Job] = {}
        self.job_keys = itertools.count(1)
        self.finished: queue.Queue[Job] = queue.Queue()
        self.workers: list[threading.Thread] = []
        self.tracks: dict[str, StudyTrack] = {}
        self.stable: dict[str, bool] = {}  # study id -> IsStable, from the last listing
        self.listing_at = -1e18
        self.ranks = itertools.count()
        self.series_study: dict[str, str] = {}
        self.changes_cursor: int | None = None
        self.changes_at = -1e18
        self.follows_changes = False
        self.backlog_at = -1e18
        self.next_probe = 0.0
        self.consecutive_failures = 0
        self.next_attempt = 0.0  # monotonic
        self.bulk_delete = True
        self.orthanc_up: bool | None = None
        self.adopted = False
        self.last_warning: float | None = None
        self.status: dict[str, Any] = {
            "destination": config.destination,
            "orthancReachable": None,
            "backlog": None,
            "backlogUpdatedAt": None,
            "consecutiveFailures": 0,
            "nextAttemptAt": None,
            "currentJob": None,
            "currentJobs": [],
            "lastJob": None,
            "forwardedInstances": 0,
            "forwardedStudies": 0,
            "failedJobs": 0,
            "startedAt": _iso(time.time()),
        }

    # --- status ---

    def snapshot_status(self) -> dict[str, Any]:
        with self.lock:
            status = json.loads(json.dumps(self.status))
        wait = self.next_attempt - time.monotonic()
        status["nextAttemptInSeconds"] = round(wait, 1) if wait > 0 else 0
        return status

    def _set_status(self, **values: Any) -> None:
        with self.lock:
            self.status.update(values)

    def _set_orthanc_up(self, up: bool, error: str = "") -> None:
        if up and self.orthanc_up is not True:
            LOG.info("orthanc reachable at %s", self.config.url)
        elif not up and self.orthanc_up is not False:
            LOG.warning("orthanc not usable (%s); retrying every %gs", error, self.config.poll)
        self.orthanc_up = up
        self._set_status(orthancReachable=up)

    def refresh_backlog(self) -> bool:
        """Update the backlog from /statistics; False when Orthanc did not answer."""
        try:
            stats = self.orthanc.get("/statistics")
        except (OrthancUnavailable, OrthancHttpError) as exc:
            self._set_orthanc_up(False, str(exc))
            return False
        self._set_orthanc_up(True)
        backlog = {
            "instances": int(stats.get("CountInstances", 0)),
            "studies": int(stats.get("CountStudies", 0)),
            "bytes": int(stats.get("TotalDiskSize", 0)),
        }
        self._set_status(backlog=backlog, backlogUpdatedAt=_iso(time.time()))
        self._check_backlog(backlog)
        return True

    def _check_backlog(self, backlog: dict[str, int]) -> None:
        limit = self.config.backlog_warning
        now = time.monotonic()
        if backlog["instances"] > limit:
            if self.last_warning is None or now - self.last_warning >= self.config.backlog_interval:
                self.last_warning = now
                LOG.warning(
                    "backlog of %d instances (%d studies, %d bytes) exceeds %d; "
                    "consecutive_failures=%d",
                    backlog["instances"],
                    backlog["studies"],
                    backlog["bytes"],
                    limit,
                    self.consecutive_failures,
                )
        elif self.last_warning is not None:
            self.last_warning = None
            LOG.info("backlog of %d instances is back under %d", backlog["instances"], limit)

    # --- main loop ---

    def stop(self) -> None:
        self.stop_event.set()
        self.wake.set()

    def request_stop(self) -> None:
        """Safe in a signal handler: a plain attribute, acted on by the main loop."""
        self.stop_requested = True

    def wait(self, seconds: float) -> bool:
        """Sleep until woken (a job finished, or stop); True when stopping."""
        self.wake.wait(max(0.0, seconds))
        self.wake.clear()
        self._honour_stop_request()
        return self.stop_event.is_set()

    def _honour_stop_request(self) -> None:
        if self.stop_requested and not self.stop_event.is_set():
            LOG.info("signal received: stopping")
            self.stop()

    def run(self) -> None:
        LOG.info(
            "forwarding %s to modality %r (retry %g..%gs)",
            self.config.url,
            self.config.destination,
            self.config.retry_initial,
            self.config.retry_max,
        )
        while not self.stop_event.is_set():
            self._honour_stop_request()
            if self.stop_event.is_set():
                break
            try:
                self.cycle()
            except (OrthancUnavailable, OrthancHttpError) as exc:
                LOG.warning("orthanc request failed: %s", exc)
                self.wait(self.config.poll)
            except Exception:
                # Never die on an unexpected answer: log it, wait, start over.
                LOG.exception("unexpected error; retrying in %gs", self.config.poll)
                self.listing_at = -1e18
                self.wait(self.config.poll)
        deadline = time.monotonic() + SHUTDOWN_JOIN_SECONDS
        for worker in self.workers:
            worker.join(timeout=max(0.0, deadline - time.monotonic()))
        self.collect_finished()
        for key, job in sorted(self.in_flight.items()):
            LOG.warning(
                "stopping with job %s still busy (Orthanc job %s, studies %s): whatever it "
                "has not deleted stays on the proxy and goes again",
                key,
                job.job_id,
                ",".join(snapshot.uid for snapshot in job.batch),
            )
        LOG.info("stopped")

    def cycle(self) -> None:
        now = time.monotonic()
        if now - self.backlog_at >= self.config.poll or self.orthanc_up is not True:
            self.backlog_at = now
            if not self.refresh_backlog():
                self.wait(self.config.poll)
                return
        if not self.adopted:
            self.wait_for_running_jobs()
            self.adopted = True
            return
        self.collect_finished()
        self.follow_changes()
        now = time.monotonic()
        if now < self.next_attempt:
            self.probe_link(now)
            self.wait(min(self.config.changes_poll, self.next_attempt - now))
            return
        # While jobs fail, one at a time: a bad link costs one association.
        slots = 1 if self.consecutive_failures else self.config.concurrent_jobs
        if len(self.in_flight) >= slots:
            self.wait(self.config.changes_poll)
            return
        busy = {snapshot.study_id for job in self.in_flight.values() for snapshot in job.batch}
        batches = self.next_batches(busy, slots - len(self.in_flight))
        if not batches:
            self.wait(self.config.changes_poll)
            return
        for batch in batches:
            if self.stop_requested or self.stop_event.is_set() or not self.start_job(batch):
                break

    def probe_link(self, now: float) -> None:
        """While backing off after failures, a C-ECHO every ``probeSeconds``: a link that
        is back ends the back-off at once instead of idling until it runs out."""
        if now < self.next_probe:
            return
        self.next_probe = now + self.config.probe
        if not self.link_answers():
            return
        LOG.info("link probe: %r answers C-ECHO; retrying now", self.config.destination)
        self.next_attempt = 0.0
        self._set_status(nextAttemptAt=None)

    def link_answers(self, timeout: int | None = None) -> bool:
        """One C-ECHO to the destination through the proxy Orthanc."""
        path = f"/modalities/{urllib.parse.quote(self.config.destination, safe='')}/echo"
        timeout = timeout or max(1, int(min(self.config.probe * 2, 10)))
        try:
            self.orthanc.post(path, {"Timeout": timeout}, timeout=timeout + 5)
        except (OrthancUnavailable, OrthancHttpError) as exc:
            LOG.debug("link probe: %s", exc)
            return False
        return True

    # --- following arrivals ---

    def follow_changes(self) -> None:
        """Read Orthanc's changes feed: each new instance marks its study as just changed,
        to the tenth of a second, where LastUpdate only has whole seconds. Any error falls
        back to LastUpdate; the listing stays the source of truth for what is stored."""
        now = time.monotonic()
        if now - self.changes_at < self.config.changes_poll:
            return
        self.changes_at = now
        try:
            if self.changes_cursor is None:
                self.changes_cursor = int(self.orthanc.get("/changes?last")["Last"])
                self.follows_changes = True
                return
            for _page in range(20):
                answer = self.orthanc.get(f"/changes?since={self.changes_cursor}&limit=500")
                for change in answer.get("Changes") or []:
                    if change.get("ChangeType") == "NewInstance":
                        self._instance_arrived(str(change.get("ID")))
                last = int(answer["Last"])
                if last < self.changes_cursor:
                    self.listing_at = -1e18  # a new index (Orthanc reset): list again
                self.changes_cursor = last
                if answer.get("Done", True):
                    break
        except (OrthancHttpError, KeyError, TypeError, ValueError) as exc:
            if self.follows_changes:
                LOG.warning("changes feed unusable (%s); settling on LastUpdate", exc)
            self.follows_changes = False
            self.changes_cursor = None

    def _instance_arrived(self, instance_id: str) -> None:
        try:
            series_id = str(self.orthanc.get(f"/instances/{instance_id}")["ParentSeries"])
            study_id = self.series_study.get(series_id)
            if study_id is None:
                study_id = str(self.orthanc.get(f"/series/{series_id}")["ParentStudy"])
                if len(self.series_study) > 100000:
                    self.series_study.clear()
                self.series_study[series_id] = study_id
        except OrthancHttpError as exc:
            if exc.status == 404:
                return  # deleted meanwhile
            raise
        now = time.monotonic()
        track = self.tracks.get(study_id)
        if track is None:
            track = self.tracks[study_id] = StudyTrack("", now, next(self.ranks))
        track.arrived(now)

    # --- choosing what goes next ---

    def _track(self, study: dict, now: float) -> StudyTrack:
        """Record a fresh view of a study (never a cached one: LastUpdate must not go back)."""
        last_update = str(study.get("LastUpdate", ""))
        track = self.tracks.get(study["ID"])
        if track is None:
            track = self.tracks[study["ID"]] = StudyTrack(last_update, now, next(self.ranks))
        else:
            track.observe(last_update, now, self.follows_changes)
        return track

    def _settled(self, stable: bool, track: StudyTrack, now: float) -> bool:
        if now < track.not_before:
            return False
        return (
            stable
            or now - track.changed_at >= self.config.quiet
            or now - track.first_seen >= self.config.max_wait
        )

    def _relist(self, now: float) -> None:
        """Everything the proxy stores, oldest first: studies the changes feed never showed
        (stored before this forwarder started) join; studies gone are forgotten."""
        studies = [s for s in self.orthanc.get("/studies?expand") or [] if "ID" in s]
        studies.sort(key=lambda s: (str(s.get("LastUpdate", "")), s["ID"]))
        self.listing_at = now
        self.stable = {s["ID"]: bool(s.get("IsStable")) for s in studies}
        for gone in set(self.tracks) - set(self.stable):
            del self.tracks[gone]
        for listed in studies:
            self._track(listed, now)

    def next_batches(
        self, busy: set[str] | frozenset[str] = frozenset(), jobs: int = 1
    ) -> list[list[Snapshot]]:
        """Settled studies, oldest first, fresh from Orthanc, for up to ``jobs`` jobs of up
        to ``maxBatchInstances`` instances each, shared out evenly; a single study while
        jobs are failing (a bad link costs one at a time). Studies in ``busy`` (in a
        running job) wait for it to end."""
        limit = self.config.max_batch * jobs
        now = time.monotonic()
        if now - self.listing_at > LISTING_MAX_AGE:
            self._relist(now)
        batch: list[Snapshot] = []
        count = 0
        for study_id in sorted(self.tracks, key=lambda key: self.tracks[key].rank):
            track = self.tracks.get(study_id)
            if study_id in busy or track is None:
                continue
            if not self._settled(self.stable.get(study_id, False), track, now):
                continue
            try:
                study = self.orthanc.get(f"/studies/{study_id}")
                listing = self.orthanc.get(f"/studies/{study_id}/instances") or []
            except OrthancHttpError as exc:
                if exc.status != 404:
                    raise
                self.tracks.pop(study_id, None)
                continue
            fresh = time.monotonic()
            stable = bool(study.get("IsStable"))
            if not self._settled(stable, self._track(study, fresh), fresh):
                continue
            snapshot = Snapshot.of(study, listing)
            if not snapshot.files:
                continue
            if batch and count + len(snapshot.files) > limit:
                break
            batch.append(snapshot)
            count += len(snapshot.files)
            if self.consecutive_failures or count >= limit:
                break
        return split_into_jobs(batch, jobs, self.config.max_batch)

    # --- one job ---

    def start_job(self, batch: list[Snapshot]) -> bool:
        """The batch's job runs in a thread of its own; its end is handled here, in
        ``collect_finished``, once the thread has put its result on the queue. Only the
        main loop registers and collects jobs, so registering after start() is safe."""
        job = Job(next(self.job_keys), batch)
        worker = threading.Thread(
            target=self.run_job, args=(job,), name=f"job-{job.key}", daemon=True
        )
        try:
            worker.start()
        except RuntimeError as exc:  # "can't start new thread": out of memory or pids
            LOG.error("cannot start a job thread (%s); retrying in %gs", exc, self.config.poll)
            self.wait(self.config.poll)
            return False
        self.in_flight[job.key] = job
        self.workers = [w for w in self.workers if w.is_alive()] + [worker]
        self._show_jobs()
        return True

    def _show_jobs(self) -> None:
        jobs = [
            {
                "job": job.job_id,
                "studies": len(job.batch),
                "study": job.batch[0].uid,
                "studyUids": [snapshot.uid for snapshot in job.batch],
                "instances": sum(len(snapshot.files) for snapshot in job.batch),
                "bytes": sum(snapshot.size for snapshot in job.batch),
                "startedAt": job.started_at,
            }
            for _key, job in sorted(self.in_flight.items())
        ]
        # currentJob: the oldest running job, as before there were several.
        self._set_status(currentJobs=jobs, currentJob=jobs[0] if jobs else None)

    def run_job(self, result: Job) -> None:
        """ONE store job (one association) for every instance of the batch's snapshots;
        the snapshots are deleted only once it succeeded. Never raises: the main loop
        always gets the job back, and any doubt deletes nothing."""
        batch, started = result.batch, result.started
        try:
            ids = [instance for snapshot in batch for instance in snapshot.files]
            body = {"Resources": ids, "Asynchronous": True, "Permissive": False}
            path = f"/modalities/{urllib.parse.quote(self.config.destination, safe='')}/store"
            if self.stop_event.is_set() or self.stop_requested:
                result.outcome, result.error = "interrupted", "forwarder stopping; job not created"
                return
            try:
                answer = self.orthanc.post(path, body)
                result.job_id = str(answer["ID"])
            except (OrthancUnavailable, OrthancHttpError, KeyError, TypeError) as exc:
                result.outcome, result.error = "error", f"job not created: {exc}"
            else:
                result.outcome, result.error = self.wait_for_job(result.job_id, len(ids), started)
            if result.outcome == "success":
                for snapshot in batch:
                    result.deleted[snapshot.study_id] = self.delete_sent(
                        snapshot.study_id, snapshot.files
                    )
        except Exception as exc:  # reported as the job's outcome, never raised
            LOG.exception("job thread %d", result.key)
            if result.outcome == "success":
                result.error = f"deletion stopped: {exc}"
            else:
                result.outcome, result.error = "error", f"unexpected: {exc}"
        finally:
            result.seconds = time.monotonic() - started
            self.finished.put(result)
            self.wake.set()

    def collect_finished(self) -> None:
        while True:
            try:
                result = self.finished.get_nowait()
            except queue.Empty:
                if self.in_flight:
                    self._show_jobs()  # the Orthanc job ids the threads have learnt
                return
            self.in_flight.pop(result.key, None)
            self._show_jobs()
            self.job_finished(result)
            self.backlog_at = -1e18  # what is left, right after the job

    def job_finished(self, result: Job) -> None:
        batch, outcome, job_id = result.batch, result.outcome, result.job_id
        for snapshot in batch:
            count, note = result.deleted.get(snapshot.study_id, (0, ""))
            self.finish(
                snapshot, result.seconds, outcome, note or result.error, job_id, count, len(batch)
            )
        # A job that started before the link was declared dead belongs to that outage:
        # its success does not end the back-off (the link may still be down: the probe
        # says when it is back), and its failure is not a second failure.
        of_the_outage = self.link_down_at is not None and result.started < self.link_down_at
        if outcome == "success":
            if of_the_outage:
                return
            self.consecutive_failures = 0
            self.next_attempt = 0.0
            self.link_down_at = None
            with self.lock:
                self.status.update(consecutiveFailures=0, nextAttemptAt=None)
        elif outcome in ("interrupted", "lost"):
            # Stopping, or Orthanc restarted under the job: no one's fault, sent again.
            return
        elif of_the_outage:
            with self.lock:
                self.status["failedJobs"] += 1
            LOG.warning("job=%s failed too, in the same outage: every study still waits", job_id)
        else:
            # One C-ECHO tells the two causes apart: a link that does not answer makes
            # every study wait (the back-off, cut short by the probe); a link that answers
            # means this study is the problem: it waits alone, the rest go on.
            self.consecutive_failures += 1
            link_down = not self.link_answers(QUICK_ECHO_SECONDS)
            now = time.monotonic()
            delay = self._backoff(self.consecutive_failures) if link_down else 0.0
            self.link_down_at = now if link_down else None
            if link_down:
                LOG.warning(
                    "job=%s failed and %r does not answer C-ECHO: every study waits; "
                    "consecutive_failures=%d next_retry_in=%gs (sooner if a probe answers)",
                    job_id,
                    self.config.destination,
                    self.consecutive_failures,
                    delay,
                )
            for snapshot in [] if link_down else batch:
                track = self.tracks.get(snapshot.study_id)
                failures = 1 if track is None else track.failures + 1
                if track is not None:
                    track.failures = failures
                    track.not_before = now + self._backoff(failures)
                LOG.warning(
                    "job=%s failed but %r answers C-ECHO: study=%s waits alone; "
                    "consecutive_failures=%d next_retry_in=%gs",
                    job_id,
                    self.config.destination,
                    snapshot.uid,
                    self.consecutive_failures,
                    self._backoff(failures),
                )
            self.next_attempt = max(self.next_attempt, now + delay)
            self.next_probe = now + min(self.config.probe, delay)
            with self.lock:
                self.status["failedJobs"] += 1
                self.status.update(
                    consecutiveFailures=self.consecutive_failures,
                    nextAttemptAt=_iso(time.time() + delay) if delay else None,
                )

    def wait_for_job(self, job_id: str, count: int, started: float) -> tuple[str, str]:
        """Poll the job every 20 ms at first (a short job is seen done at once), then
        slower. Runs in the job's thread."""
        deadline = started + self.config.job_timeout
        running = False
        while True:
            if self.stop_event.is_set():
                return "interrupted", "forwarder stopping; job left to Orthanc, nothing deleted"
            try:
                job = self.orthanc.get(f"/jobs/{job_id}")
            except OrthancHttpError as exc:
                if exc.status == 404:
                    return "lost", "job vanished (Orthanc restarted?); nothing deleted"
                job = None
            except OrthancUnavailable:
                job = None
            if isinstance(job, dict):
                state = job.get("State")
                if state == "Running" and not running:
                    # Queued behind other jobs is not slow: the timeout counts from here.
                    running = True
                    deadline = time.monotonic() + self.config.job_timeout
                if state == "Success":
                    content = job.get("Content") or {}
                    sent = content.get("InstancesCount")
                    failed = content.get("FailedInstancesCount", 0)
                    if sent != count or failed:
                        return "failure", f"job reported {sent} sent, {failed} failed of {count}"
                    return "success", ""
                if state == "Failure":
                    details = job.get("ErrorDetails") or ""
                    description = job.get("ErrorDescription") or "failed"
                    return "failure", f"{description}: {details}" if details else description
            now = time.monotonic()
            if now >= deadline:
                try:
                    self.orthanc.post(f"/jobs/{job_id}/cancel", {})
                except (OrthancUnavailable, OrthancHttpError) as exc:
                    LOG.debug("cancelling job %s: %s", job_id, exc)
                return "timeout", f"job still running after {self.config.job_timeout:g}s"
            elapsed = now - started
            self.stop_event.wait(JOB_POLL_FAST if elapsed < 2 else min(0.25, self.config.poll))

    def finish(
        self,
        snapshot: Snapshot,
        seconds: float,
        outcome: str,
        error: str,
        job_id: str | None,
        deleted: int,
        studies_in_job: int,
    ) -> None:
        """One log line per study, also when a job carried several."""
        track = self.tracks.get(snapshot.study_id)
        fields = (
            f"job study={snapshot.uid} instances={len(snapshot.files)} bytes={snapshot.size} "
            f"seconds={seconds:.2f} outcome={outcome}"
        )
        shared = f" studies_in_job={studies_in_job}" if studies_in_job > 1 else ""
        last_job = {
            "study": snapshot.uid,
            "instances": len(snapshot.files),
            "bytes": snapshot.size,
            "seconds": round(seconds, 2),
            "outcome": outcome,
            "job": job_id,
            "studiesInJob": studies_in_job,
            "finishedAt": _iso(time.time()),
        }
        if outcome == "success":
            if track is not None:
                track.failures, track.not_before = 0, 0.0
                track.first_seen = time.monotonic()
            note = f" note={json.dumps(error)}" if error else ""
            LOG.info("%s deleted=%d job=%s%s%s", fields, deleted, job_id, shared, note)
            with self.lock:
                self.status["forwardedInstances"] += len(snapshot.files)
                self.status["forwardedStudies"] += 1
                self.status["lastJob"] = last_job
            return
        if outcome == "interrupted":
            LOG.info("%s error=%s job=%s%s", fields, json.dumps(error), job_id, shared)
            return
        LOG.warning("%s error=%s job=%s%s", fields, json.dumps(error), job_id, shared)
        last_job["error"] = error
        with self.lock:
            self.status["lastJob"] = last_job

    def wait_for_running_jobs(self) -> None:
        """Let store jobs a previous forwarder left running finish before starting any."""
        deadline = time.monotonic() + self.config.job_timeout
        announced = False
        while not self.stop_event.is_set() and time.monotonic() < deadline:
            jobs = self.orthanc.get("/jobs?expand") or []
            active = [
                job.get("ID")
                for job in jobs
                if isinstance(job, dict)
                and job.get("Type") == JOB_TYPE
                and job.get("State") in ACTIVE_JOB_STATES
            ]
            if not active:
                return
            if not announced:
                LOG.info("waiting for %d store job(s) started earlier: %s", len(active), active)
                announced = True
            self.wait(self.config.poll)

    def delete_sent(self, study_id: str, snapshot: dict[str, Any]) -> tuple[int, str]:
        """Delete the snapshot's instances whose stored file is still the one that was sent.

        Returns (deleted, error). An error leaves the rest stored: it is sent again later.
        """
        try:
            current = self.orthanc.get(f"/studies/{study_id}/instances") or []
        except OrthancHttpError as exc:
            if exc.status == 404:
                return 0, ""  # removed meanwhile by someone else
            return 0, f"not deleted: {exc}"
        except OrthancUnavailable as exc:
            return 0, f"not deleted: {exc}"
        stored = {item.get("ID"): item.get("FileUuid") for item in current}
        doomed = [i for i, uuid in snapshot.items() if i in stored and stored[i] == uuid]
        deleted = 0
        try:
            for start in range(0, len(doomed), DELETE_CHUNK):
                chunk = doomed[start : start + DELETE_CHUNK]
                if self.bulk_delete:
                    try:
                        self.orthanc.post("/tools/bulk-delete", {"Resources": chunk}, timeout=300)
                        deleted += len(chunk)
                        continue
                    except OrthancHttpError as exc:
                        if exc.status not in (404, 405):
                            raise
                        LOG.info("no /tools/bulk-delete here; deleting instance by instance")
                        self.bulk_delete = False
                for instance_id in chunk:
                    try:
                        self.orthanc.call("DELETE", f"/instances/{instance_id}")
                        deleted += 1
                    except OrthancHttpError as exc:
                        if exc.status != 404:
                            raise
        except (OrthancHttpError, OrthancUnavailable) as exc:
            return deleted, f"deletion stopped: {exc}"
        return deleted, ""

    def _backoff(self, failures: int) -> float:
        exponent = min(failures - 1, 60)
        return min(self.config.retry_max, self.config.retry_initial * (2**exponent))


# --- status endpoint ------------------------------------------------------------------------


def serve_status(forwarder: Forwarder, address: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/status":
                self.send_error(404)
                return
            body = json.dumps(forwarder.snapshot_status(), indent=1).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            LOG.debug("status: " + format, *args)

    server = ThreadingHTTPServer((address, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="status", daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Forward studies from the proxy Orthanc.")
    parser.add_argument("--config", required=True, help="path of the JSON configuration")
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    try:
        config = Config.load(args.config)
    except ConfigError as exc:
        LOG.error("configuration: %s", exc)
        return 2
    logging.getLogger().setLevel(config.log_level)
    forwarder = Forwarder(config)
    server = None
    if config.status_address is not None:
        try:
            server = serve_status(forwarder, config.status_address, config.status_port)
        except OSError as exc:
            LOG.error(
                "cannot serve status on %s:%d: %s",
                config.status_address,
                config.status_port,
                exc.strerror,
            )
            return 2
        LOG.info("status on http://%s:%d/status", config.status_address, config.status_port)

    def on_signal(signum: int, _frame: object) -> None:
        # No logging and no Event here: both take locks the interrupted thread may hold.
        forwarder.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        forwarder.run()
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
