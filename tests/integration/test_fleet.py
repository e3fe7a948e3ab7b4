"""The prod fleet for real: Orthanc hosts behind the declared load balancer, one shared index.

The prod stack (`storage: s3`, `index: postgresql`) deploys identical hosts in an Auto
Scaling group behind Network Load Balancers that pass TCP through. Here every host runs the
program's rendered nginx.conf and orthanc.json (start_cloud_side) in its own namespace, all
on one TLS-only PostgreSQL (the RDS stand-in; several writers, "Lock": false) and one shared
storage folder (the S3 stand-in: Debian has no S3 plugin). HAProxy stands for the internal
NLB; its configuration comes from the listeners and target groups the program declared
(fleet_lab.py), never from constants of the test.

While modalities send over DICOM TLS and plaintext through it, and the prod stack's proxy
site forwards over TLS through it, one host is killed (every process, SIGKILL: a crashed
instance), then every host is replaced in turn as the group's rolling instance refresh does
it: launch, wait until the load balancer finds the new one healthy, drain and stop an old
one. At the end every instance sent is in the index exactly once, intact, and storage holds
exactly the files the index knows.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.harness.pulumi_run import STACKS_DIR, Declared, Evaluation, evaluate, read_stack_file
from tests.harness.user_data import deployed_orthanc_config
from tests.integration.cloud_side import CloudSide, issued_client, start_cloud_side
from tests.integration.dicom_data import InstanceRecord, make_study, pixel_digest
from tests.integration.fleet_lab import (
    LISTENER,
    LOAD_BALANCER,
    TARGET_GROUP,
    Batches,
    FleetNotDeclared,
    HAProxy,
    HealthCheck,
    HealthWatch,
    ResendingSender,
    balancer_spec,
    haproxy_config,
)
from tests.integration.netlab import Host, Lab, require
from tests.integration.postgres import INDEX_PLUGIN, Postgres
from tests.integration.proxy_side import ProxySide, start_proxy_side

INTERNAL_NLB = "orthanc-nlb-internal"
PROXY_SITE = "north-clinic"
FLEET_SIZE = 3
# Inside the prod stack's campus range (its site-to-site VPN), where private-path senders are.
PRIVATE_PATH_LAB = "172.20.77.0/24"
TLS_SENDERS = 3
# Study k of every sender goes in batch k: one at the start (the crash hits it), one while
# each new host passes its health checks, one while each healthy old host drains, one when
# the refresh is over (the new fleet's first traffic): 1 + 3 + 2 + 1.
STUDIES_PER_SENDER = 1 + FLEET_SIZE + (FLEET_SIZE - 1) + 1
INSTANCES_PER_STUDY = 30  # 2 series; 5 senders x 7 studies x 30 = 1,050 instances
SEND_BUDGET_SECONDS = 170  # everything acknowledged by then (pytest's timeout is 300 s)
PROXY_BUDGET_SECONDS = 90

# Orthanc --verbose: what each host did with the files in the shared storage.
CREATED = re.compile(r'Creating attachment "([0-9a-f-]{36})"')
DELETED = re.compile(r'Deleting attachment "([0-9a-f-]{36})"')
# Orthanc 1.10's log line when a re-sent instance replaces the stored one (it then also
# logs "New instance stored"; with OverwriteInstances false it would be "Already stored").
OVERWRITTEN = "Overwriting instance"
FORWARDER_FAILURE = re.compile(r"^(\S+ \S+) WARNING (job .* outcome=(?!success).*)$", re.MULTILINE)


@pytest.fixture(scope="module")
def prod():
    return evaluate(read_stack_file(STACKS_DIR / "Pulumi.prod.yaml"), stack="prod")


# --- the generator, on a hand-made declaration ------------------------------------------------


def _declared(type_: str, name: str, inputs: dict, arn: str | None = None) -> Declared:
    return Declared(type_, name, inputs, {"arn": arn} if arn else {}, arn)


def _hand_made_balancers() -> list[Declared]:
    # Numbers arrive as floats from the engine, as they do from the mocks.
    check = {
        "protocol": "TCP",
        "port": "traffic-port",
        "interval": 10.0,
        "timeout": 5,
        "healthyThreshold": 3,
        "unhealthyThreshold": 2,
    }
    resources = [
        _declared(LOAD_BALANCER, "orthanc-nlb-public", {"loadBalancerType": "network"}, "arn:p"),
        _declared(LOAD_BALANCER, INTERNAL_NLB, {"loadBalancerType": "network"}, "arn:i"),
    ]
    through_nginx = {
        **check,
        "protocol": "HTTPS",
        "port": "443",
        "path": "/system",
        "matcher": "401",
    }
    for key, port in (("tls", 11112), ("plain", 4242)):
        group = {
            "port": float(port),
            "protocol": "TCP",
            "targetType": "instance",
            "healthCheck": through_nginx if key == "tls" else check,
            "deregistrationDelay": 300,
            "connectionTermination": True,
        }
        listener = {
            "loadBalancerArn": "arn:i",
            "port": port,
            "protocol": "TCP",
            "tcpIdleTimeoutSeconds": 600,
            "defaultActions": [{"type": "forward", "targetGroupArn": f"arn:tg-{key}"}],
        }
        resources.append(_declared(TARGET_GROUP, f"orthanc-tg-int-{key}", group, f"arn:tg-{key}"))
        resources.append(_declared(LISTENER, f"{INTERNAL_NLB}-{key}", listener))
    # A listener of the other load balancer must not leak into this one.
    public = {"loadBalancerArn": "arn:p", "port": 443, "protocol": "TCP",
              "defaultActions": [{"targetGroupArn": "arn:tg-tls"}]}  # fmt: skip
    resources.append(_declared(LISTENER, "orthanc-nlb-public-https", public))
    return resources


def test_haproxy_config_follows_the_declared_listeners_and_target_groups(tmp_path):
    spec = balancer_spec(_hand_made_balancers(), INTERNAL_NLB)
    assert spec.ports == (4242, 11112)
    text = haproxy_config(
        spec, {"orthanc-1": "10.0.0.11", "orthanc-2": "10.0.0.12"}, stats_socket=tmp_path / "s"
    )
    assert (
        "    bind :11112\n    timeout client 600s\n    default_backend orthanc-tg-int-tls" in text
    )
    assert "    bind :4242\n" in text
    assert "bind :443" not in text
    assert text.count("    option tcp-check\n    timeout connect 5s\n    timeout check 5s") == 1
    assert "    option httpchk GET /system\n    http-check expect rstatus ^(401)$\n" in text
    assert (
        "    server orthanc-2 10.0.0.12:11112 check inter 10s fall 2 rise 3 port 443 "
        "check-ssl verify none on-marked-down shutdown-sessions\n"
    ) in text
    assert (
        "    server orthanc-2 10.0.0.12:4242 check inter 10s fall 2 rise 3 "
        "on-marked-down shutdown-sessions\n"
    ) in text
    assert "    retries 0\n" in text  # an NLB never retries a failed connection elsewhere
    backend = spec.frontend(11112).backend
    assert backend.health == HealthCheck(
        interval=10, timeout=5, healthy=3, unhealthy=2, port=443, protocol="HTTPS",
        path="/system", status_codes=(401,),
    )  # fmt: skip
    assert (backend.deregistration_delay, backend.connection_termination) == (300, True)
    assert backend.ref == "arn:tg-tls"
    # HAProxy itself accepts what was generated.
    (tmp_path / "haproxy.cfg").write_text(text)
    result = subprocess.run(
        [require("haproxy")["haproxy"], "-c", "-f", str(tmp_path / "haproxy.cfg")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    with pytest.raises(FleetNotDeclared, match="no aws:lb/loadBalancer:LoadBalancer named"):
        balancer_spec(_hand_made_balancers(), "orthanc-nlb-elsewhere")
    only_balancers = [r for r in _hand_made_balancers() if r.type == LOAD_BALANCER]
    with pytest.raises(FleetNotDeclared, match="no aws:lb/listener:Listener on"):
        balancer_spec(only_balancers, INTERNAL_NLB)
    no_groups = [r for r in _hand_made_balancers() if r.type != TARGET_GROUP]
    with pytest.raises(FleetNotDeclared, match="which is no declared"):
        balancer_spec(no_groups, INTERNAL_NLB)
    tls_terminating = _hand_made_balancers()
    next(r for r in tls_terminating if r.type == LISTENER).inputs["protocol"] = "TLS"
    with pytest.raises(ValueError, match="is not TCP"):
        balancer_spec(tls_terminating, INTERNAL_NLB)


# --- the fleet --------------------------------------------------------------------------------


@dataclass
class Fleet:
    """Launches hosts as the Auto Scaling group does: the same rendered files every time."""

    lab: Lab
    evaluation: Evaluation
    workdir: Path
    storage: Path
    db_ip: str
    endpoint: str
    extra_secrets: dict[str, str]
    rds_ca_pem: str  # what each host's boot script fetched: the test server's CA
    launched: list[CloudSide] = field(default_factory=list)
    _count: int = 0

    def new_host(self) -> Host:
        self._count += 1
        return self.lab.host(f"orthanc-{self._count}")

    def start(self, host: Host) -> CloudSide:
        cloud = start_cloud_side(
            host,
            self.evaluation,
            self.workdir / host.name,
            extra_secrets=self.extra_secrets,
            orthanc_hosts={self.endpoint: self.db_ip},
            orthanc_plugins=[str(INDEX_PLUGIN)],
            shared_storage=self.storage,
            orthanc_verbose=True,
            rds_ca_pem=self.rds_ca_pem,
        )
        self.launched.append(cloud)
        return cloud

    def launch(self) -> CloudSide:
        return self.start(self.new_host())

    def launch_initial(self, count: int) -> list[CloudSide]:
        # The first host creates the index schema; the others join it, together.
        first = self.launch()
        others = [self.new_host() for _ in range(count - 1)]
        with ThreadPoolExecutor(max_workers=len(others) or 1) as pool:
            started = [pool.submit(self.start, host) for host in others]
            return [first, *(future.result(timeout=120) for future in started)]


def _write_studies(root: Path, senders: list[str]) -> dict[str, list[list[InstanceRecord]]]:
    return {
        name: [
            make_study(
                root / name / f"study-{index}",
                series_per_study=2,
                instances_per_series=INSTANCES_PER_STUDY // 2,
                seed=f"fleet-{name}-{index}",
            )
            for index in range(STUDIES_PER_SENDER)
        ]
        for name in senders
    }


def _kill_while_busy(
    haproxy: HAProxy, hosts: list[CloudSide], after_bytes: int, timeout: float
) -> tuple[CloudSide, int, float]:
    """Wait until a host is in the middle of receiving a study (an association open and
    ``after_bytes`` passed to it) and kill it, all its processes at once: the host, how
    many connections it had open, and when."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for cloud in hosts:
            rows = haproxy.server_rows(cloud.host.name).values()
            open_connections = sum(int(row["scur"] or 0) for row in rows)
            received = sum(int(row["bin"] or 0) for row in rows)
            if open_connections and received >= after_bytes:
                killed_at = time.monotonic()
                cloud.host.kill_processes()
                return cloud, open_connections, killed_at
        time.sleep(0.01)
    raise AssertionError(f"no host was in the middle of a study within {timeout}s")


def _wait_for_sessions(haproxy: HAProxy, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while haproxy.sessions(name) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)


def _rolling_refresh(
    fleet: Fleet,
    haproxy: HAProxy,
    old_hosts: list[CloudSide],
    health: HealthCheck,
    batches: Batches,
    crashed: CloudSide,
    killed_at: float,
) -> list[dict[str, Any]]:
    """Replace each old host in turn: a new one in and healthy first, then an old one out."""
    steps = []
    for old in old_hosts:
        new = fleet.launch()
        haproxy.register(new.host.name, new.host.ip)
        batches.release()  # traffic while the new host passes its checks
        healthy_after = haproxy.wait_healthy(
            new.host.name, timeout=health.interval * (health.healthy + 2) + 10
        )
        if old is crashed:
            # What the group acts on: the load balancer's checks found the host dead.
            down_at = haproxy.wait_down(
                old.host.name, timeout=health.interval * (health.unhealthy + 1) + 5
            )
            noticed = {"crashed_down_after_kill_s": round(down_at - killed_at, 1)}
        else:
            # Traffic while the old host drains: wait (briefly) until it has some of it.
            batches.release()
            _wait_for_sessions(haproxy, old.host.name, timeout=5)
            noticed = {}
        rows = haproxy.server_rows(old.host.name).values()
        served = sum(int(row["stot"] or 0) for row in rows)
        # The declared delay (300 s) bounds the wait; associations here take a second or two.
        drained = haproxy.deregister(old.host.name, max_wait=60)
        old.stop()  # SIGTERM, waiting for the PIDs; nothing left to stop on the crashed host
        steps.append(
            {"old": old.host.name, "new": new.host.name, "new_healthy_after_s":
             round(healthy_after, 1), "old_connections_total": served,
             "removed_at": time.monotonic(), **drained, **noticed}
        )  # fmt: skip
    return steps


def _wait_for_empty_proxy(proxy: ProxySide, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = proxy.status()
        backlog = (status.get("backlog") or {}).get("instances")
        if backlog == 0 and status.get("currentJob") is None:
            return status
        assert time.monotonic() < deadline, f"the proxy still has a backlog: {status}"
        time.sleep(1)


def _rows(postgres: Postgres, statement: str, database: str) -> list[list[str]]:
    return [line.split("|") for line in postgres.sql(statement, database).splitlines() if line]


def _check_index_and_storage(
    postgres: Postgres,
    database: str,
    survivor: CloudSide,
    storage: Path,
    records: list[InstanceRecord],
) -> list[str]:
    """Everything sent is indexed once and intact; every indexed file is in storage.
    Returns the files in storage that the index does not know (judged by the caller)."""
    expected = {r.sop_uid: r for r in records}
    # The index itself, in SQL: resource type 3 is an instance; (0008,0018) its SOP UID.
    rows = _rows(
        postgres,
        "SELECT r.publicid, d.value FROM resources r JOIN dicomidentifiers d "
        "ON d.id = r.internalid AND d.taggroup = 8 AND d.tagelement = 24 "
        "WHERE r.resourcetype = 3",
        database,
    )
    sops = [sop for _, sop in rows]
    assert len(sops) == len(set(sops)), "a SOP Instance UID is indexed twice"
    assert set(sops) == set(expected), "the index holds exactly the instances sent"
    count = postgres.sql("SELECT count(*) FROM resources WHERE resourcetype = 3", database)
    assert int(count) == len(expected)
    # ... and as Orthanc reports it, through a host of the refreshed fleet.
    assert survivor.orthanc.count_instances() == len(expected)
    sop_of = dict(rows)

    attachments = _rows(
        postgres,
        "SELECT r.publicid, a.filetype, a.uuid, a.uncompressedsize, a.uncompressedhash "
        "FROM attachedfiles a JOIN resources r ON r.internalid = a.id",
        database,
    )
    files = {path.name: path for path in storage.rglob("*") if path.is_file()}
    known = {uuid for _, _, uuid, _, _ in attachments}
    missing = sorted(known - set(files))
    assert not missing, f"{len(missing)} attachments have no file in storage: {missing[:5]}"
    assert len(known) == len(attachments), "two attachments share a file"
    dicom = {public: uuid for public, kind, uuid, _, _ in attachments if kind == "1"}
    assert set(dicom) == set(sop_of), "every instance has its DICOM file"
    for _, _, uuid, size, md5 in attachments:
        data = files[uuid].read_bytes()
        assert (len(data), hashlib.md5(data).hexdigest()) == (int(size), md5)  # noqa: S324

    # Intact: the pixels of ALL instances, read from the storage the hosts wrote, and a
    # sample (every 70th) of the same through the REST API of a host of the new fleet.
    for public, uuid in dicom.items():
        sop, digest = pixel_digest(files[uuid])
        assert (sop, digest) == (sop_of[public], expected[sop_of[public]].pixel_sha256)
    for public in sorted(dicom)[::70]:
        sop, digest = pixel_digest(survivor.orthanc.instance_file(public))
        assert (sop, digest) == (sop_of[public], expected[sop_of[public]].pixel_sha256)
    return sorted(set(files) - known)


def _forwarder_failures(proxy: ProxySide) -> list[tuple[float, str]]:
    """The forwarder's failed jobs from its log: (wall-clock time, line)."""
    assert proxy.forwarder is not None
    failures = []
    for stamp, line in FORWARDER_FAILURE.findall(proxy.forwarder.log_text()):
        at = datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")  # local time, as logged
        failures.append((at.timestamp(), line))
    return failures


def test_fleet_survives_a_crash_and_a_rolling_refresh_losing_and_duplicating_nothing(
    prod, tmp_path
):
    try:
        spec = balancer_spec(prod.resources, INTERNAL_NLB)
    except FleetNotDeclared as exc:
        pytest.fail(
            f"the prod stack does not declare the fleet's load balancer yet: {exc}. This "
            f"test builds its HAProxy stand-in only from the declared {LOAD_BALANCER} "
            f"{INTERNAL_NLB!r}, its TCP {LISTENER}s and their {TARGET_GROUP}s; it has no "
            "ports of its own to fall back on.",
            pytrace=False,
        )
    require("haproxy", "storescu", "Orthanc", "nginx")
    rendered = deployed_orthanc_config(prod)
    assert rendered["PostgreSQL"]["Lock"] is False, "several writers need Lock: false"
    # The stand-in registers hosts where the Auto Scaling group does, from its template, and
    # runs as many as the group may (one more while a replacement comes up).
    group = prod.one("aws:autoscaling/group:Group")
    template = prod.one("aws:ec2/launchTemplate:LaunchTemplate")  # what start_cloud_side runs
    assert group.inputs["launchTemplate"]["id"] == template.id
    assert {b.ref for b in spec.backends} <= set(group.inputs["targetGroupArns"])
    assert group.inputs["minSize"] <= FLEET_SIZE < FLEET_SIZE + 1 <= group.inputs["maxSize"]
    assert group.inputs["healthCheckType"] == "ELB", "the group replaces what the NLB finds dead"
    config = read_stack_file(STACKS_DIR / "Pulumi.prod.yaml")
    modalities = config["orthgate:orthanc"]["modalities"]
    [vpn] = config["orthgate:network"]["siteToSiteVpns"]
    assert ipaddress.IPv4Network(PRIVATE_PATH_LAB).subnet_of(
        ipaddress.IPv4Network(vpn["onPremCidrs"][0])
    )
    # Over TLS: the stack's TLS modality, with the certificate the program issued it (from
    # several hosts at once). Plaintext over the VPN: a modality without sourceCidrs, as the
    # stand-in load balancer does not keep the sender's address (an NLB does).
    [tls_modality] = [m for m in modalities if m.get("connection") == "tls"]
    [vpn_modality] = [m for m in modalities if m.get("connection", "private") == "private"
                      and not m.get("sourceCidrs")]  # fmt: skip
    database = prod.one("aws:rds/instance:Instance")
    secret_arn = database.outputs["masterUserSecrets"][0]["secretArn"]
    uri = urllib.parse.urlsplit(rendered["PostgreSQL"]["ConnectionUri"])
    endpoint, database_name = uri.hostname, uri.path.lstrip("/")
    user, password = database.inputs["username"], secrets.token_urlsafe(24)

    tls_senders = [f"modality-{n}" for n in range(1, TLS_SENDERS + 1)]
    sender_names = [*tls_senders, "vpn-mr", "clinic-us"]
    studies = _write_studies(tmp_path / "studies", sender_names)
    records = [r for by_sender in studies.values() for study in by_sender for r in study]
    assert len(records) >= 1000
    instance_size = records[0].path.stat().st_size
    storage = tmp_path / "bucket"  # the S3 bucket's stand-in, shared by every host
    storage.mkdir()
    # Readable by the postgres user: pytest's own temporary folders are root-only.
    pg_root = Path(tempfile.mkdtemp(prefix="orthgate-fleet-pg-", dir="/tmp"))
    os.chmod(pg_root, 0o755)  # noqa: S103 - the postgres user must traverse it
    postgres: Postgres | None = None
    try:
        # The lab's hosts sit in the campus range the prod stack routes over its VPN: the
        # plaintext sender is on a private path (nginx takes plaintext from nowhere else).
        with Lab(subnet=PRIVATE_PATH_LAB) as lab:
            db_host, nlb_host = lab.host("db"), lab.host("nlb")
            postgres = Postgres(db_host, pg_root)
            postgres.start(user, password, database_name, server_name=endpoint)
            secret = json.dumps({"username": user, "password": password})
            fleet = Fleet(
                lab, prod, tmp_path, storage, db_host.ip, endpoint, {secret_arn: secret},
                postgres.ca.bundle_pem,
            )  # fmt: skip
            initial = fleet.launch_initial(FLEET_SIZE)
            first = initial[0]
            tls_port = first.tls_port  # nginx's DICOM TLS port, as compose publishes it
            assert tls_port in spec.ports, f"the internal NLB has no DICOM TLS listener: {spec}"
            plain_port = first.plain_port  # nginx's plaintext DICOM port, likewise
            assert plain_port in spec.ports, f"the internal NLB has no plaintext listener: {spec}"
            health = spec.frontend(tls_port).backend.health

            haproxy = HAProxy(nlb_host, spec, {c.host.name: c.host.ip for c in initial})
            haproxy.start()
            # At creation the NLB and its first targets come up together: a passed check.
            for cloud in initial:
                haproxy.wait_healthy(cloud.host.name, timeout=health.interval * 2 + 10)

            proxy_host = lab.host(PROXY_SITE)
            bundle = prod.outputs["dicomProxyBundles"][PROXY_SITE]
            proxy = start_proxy_side(proxy_host, bundle, tmp_path / "proxy", cloud_ip=nlb_host.ip)

            def study_dirs(name: str) -> list[Path]:
                return [
                    tmp_path / "studies" / name / f"study-{i}" for i in range(len(studies[name]))
                ]

            senders = []
            issued = issued_client(prod, tmp_path / "certs", modality=tls_modality["name"])
            for name in tls_senders:
                senders.append(
                    ResendingSender(
                        name, lab.host(name), nlb_host.ip, tls_port, tls_modality["aeTitle"],
                        first.ae_title, study_dirs(name), tls=issued,
                    )
                )  # fmt: skip
            # Plaintext over a private path (the site-to-site VPN) to the internal NLB; this
            # modality also sends its first study a second time at the end, as operators do.
            again = study_dirs("vpn-mr")
            senders.append(
                ResendingSender(
                    "vpn-mr", lab.host("vpn-mr"), nlb_host.ip, plain_port, vpn_modality["aeTitle"],
                    first.ae_title, [*again, again[0]],
                )
            )  # fmt: skip
            # Plaintext on the clinic's LAN to its proxy, which forwards over TLS, from the
            # modality the stack lets store there.
            [site] = [p for p in config["orthgate:dicomProxies"] if p["name"] == PROXY_SITE]
            clinic_ae = site["modalities"][0]["aeTitle"]
            senders.append(
                ResendingSender(
                    "clinic-us", lab.host("clinic-us"), proxy_host.ip, proxy.orthanc.dicom_port,
                    clinic_ae, proxy.ae_title, study_dirs("clinic-us"),
                )
            )  # fmt: skip

            batches = Batches(STUDIES_PER_SENDER)
            with HealthWatch(haproxy) as watch:
                started = time.monotonic()
                deadline = started + SEND_BUDGET_SECONDS

                def pace(index: int) -> None:
                    batches.wait(index, deadline)

                threads = [sender.thread(deadline, pace) for sender in senders]
                for thread in threads:
                    thread.start()
                batches.release()
                # A crash in the middle of the first studies: a few instances into one.
                victim, open_at_kill, killed_at = _kill_while_busy(
                    haproxy, initial, after_bytes=5 * instance_size, timeout=30
                )
                killed_wall = time.time() - (time.monotonic() - killed_at)
                survivors = [c for c in initial if c is not victim]
                steps = _rolling_refresh(
                    fleet, haproxy, [victim, *survivors], health, batches, victim, killed_at
                )
                refreshed_at = time.monotonic()
                assert batches.left == 1, batches.left
                batches.release_all()  # the refreshed fleet's own traffic
                for thread in threads:
                    thread.join(timeout=max(1.0, deadline - time.monotonic()))
                status = _wait_for_empty_proxy(proxy, PROXY_BUDGET_SECONDS)
            victim_removed = steps[0]["removed_at"]
            victim_removed_wall = killed_wall + (victim_removed - killed_at)

            logs = {c.host.name: c.orthanc.log_text() for c in fleet.launched}
            forwarder_failures = _forwarder_failures(proxy)
            failed = [
                (s.name, round(a.started + a.seconds - killed_at, 1), a.error[:160])
                for s in senders
                for a in s.attempts
                if not a.ok
            ]
            report = {
                "victim": victim.host.name,
                "connections_open_at_kill": open_at_kill,
                "killed_after_s": round(killed_at - started, 1),
                "refresh": [{k: v for k, v in s.items() if k != "removed_at"} for s in steps],
                "refresh_s": round(refreshed_at - killed_at, 1),
                "sending_s": round(time.monotonic() - started, 1),
                "failed_attempts_s_after_kill": failed,
                "forwarder": {k: status.get(k) for k in ("forwardedInstances", "failedJobs")},
                "forwarder_failures_s_after_kill": [
                    (round(at - killed_wall, 1), line[-200:]) for at, line in forwarder_failures
                ],
                "min_healthy": watch.minimum(),
                "stored_per_host": {n: t.count("New instance stored") for n, t in logs.items()},
                "overwritten_per_host": {n: t.count(OVERWRITTEN) for n, t in logs.items()},
                # Several writers on one index: PostgreSQL refuses, Orthanc retries.
                "serialization_failures_retried": postgres.process.log_text().count(
                    "could not serialize access"
                )
                if postgres.process
                else None,
            }
            print("fleet report:", json.dumps(report, indent=1))

            # Every sender got every study acknowledged, in time.
            assert [s.failure for s in senders] == [None] * len(senders), report
            assert all(len(s.delivered) == len(s.studies) for s in senders), report

            # The crash hit traffic: associations broke (or went to the dead host before the
            # load balancer noticed) and were resent, by a modality or by the forwarder.
            assert failed or forwarder_failures, f"the kill hit no traffic: {report}"
            assert status["failedJobs"] == len(forwarder_failures), status
            # ... and only the crash: replacing healthy hosts cost no sender a single retry.
            assert all(0 <= after <= victim_removed - killed_at for _, after, _ in failed), report
            assert all(
                killed_wall - 1 <= at <= victim_removed_wall + 5 for at, _ in forwarder_failures
            ), (forwarder_failures, killed_wall, victim_removed_wall)

            # Healthy hosts at all times (the dead one counts until its checks fail); each
            # new host took traffic only after `healthy` passed checks.
            assert watch.minimum() >= FLEET_SIZE - 1, report
            assert watch.minimum(since=victim_removed) >= FLEET_SIZE, report
            for step in steps:
                assert step["new_healthy_after_s"] >= (health.healthy - 1) * health.interval
            # The checks noticed the crash within `unhealthy` intervals (and a check's timeout).
            limit = health.unhealthy * health.interval + health.timeout + 1
            assert steps[0]["crashed_down_after_kill_s"] <= limit, steps[0]
            assert all(step["reset"] == 0 for step in steps[1:]), "a drain cut associations"

            # Every host but the crashed one stored instances, the last ones too: each
            # replacement took traffic once healthy.
            for cloud in fleet.launched:
                if cloud is not victim:
                    name, text = cloud.host.name, logs[cloud.host.name]
                    assert text.count("New instance stored"), name

            # Every instance once and intact; storage holds the index's files and no other
            # file, except one a crashed writer stored but never indexed (see _crash_orphans).
            survivor = fleet.launched[-1]
            orphans = _check_index_and_storage(postgres, database_name, survivor, storage, records)
            print(f"fleet: {len(orphans)} file(s) left in storage by the crash: {orphans}")
            _crash_orphans(orphans, victim.host.name, logs, open_at_kill)
            # The resent study replaced its first copies in place (OverwriteInstances: the
            # index check above found each instance once, storage no file of the old copies).
            assert sum(t.count(OVERWRITTEN) for t in logs.values()) >= INSTANCES_PER_STUDY

            # The proxy site's backlog is empty and all it had went through.
            assert proxy.orthanc.count_instances() == 0
            assert status["forwardedInstances"] >= STUDIES_PER_SENDER * INSTANCES_PER_STUDY
    finally:
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(pg_root, ignore_errors=True)


def _crash_orphans(
    orphans: list[str], victim: str, logs: dict[str, str], open_at_kill: int
) -> None:
    """Orthanc writes a file to storage, then indexes it. A writer killed in between leaves
    the file unindexed: on S3, an object nothing refers to (no data is lost; the sender
    resends). Only such files may be left: created by the killed host (its own log says
    so), never deleted, at most one per association it had open (Orthanc stores the
    instances of one association one after the other). Any other unknown file, e.g. from a
    duplicate whose second copy was not removed, fails."""
    created = {name: set(CREATED.findall(text)) for name, text in logs.items()}
    deleted = {uuid for text in logs.values() for uuid in DELETED.findall(text)}
    for uuid in orphans:
        writers = sorted(name for name, uuids in created.items() if uuid in uuids)
        assert writers == [victim], f"unindexed file {uuid} was written by {writers or 'nobody'}"
        assert uuid not in deleted, f"unindexed file {uuid} was deleted, yet it is still there"
    assert len(orphans) <= open_at_kill, (orphans, open_at_kill)
