"""Orthanc authenticates its PostgreSQL index: sslmode=verify-full, for real.

The prod stack's rendered configuration (its ConnectionUri unchanged, the password merged on
the host by the program's own script) runs on Debian's Orthanc 1.10.1 with orthanc-postgresql
4.0 against a PostgreSQL 15 that accepts TLS only. The file the boot script would fetch from
the RDS trust store holds the test's CA instead (a root and an intermediate, as a region
bundle does), bound where compose mounts it; the endpoint's DNS name resolves to the test's
server. Orthanc then connects when the server's certificate comes from that CA and names the
endpoint, and refuses, before it sends the password, a certificate from another CA (what an
impostor inside the VPC could present) or one for another name (another RDS instance).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness.pulumi_run import STACKS_DIR, Evaluation, evaluate, read_stack_file
from tests.harness.user_data import deployed_orthanc_config
from tests.integration.cloud_side import start_cloud_side
from tests.integration.netlab import Host, Lab, Process
from tests.integration.postgres import INDEX_PLUGIN, Postgres, RdsCaStandIn

# Another instance's endpoint, in the same form as the mock's.
OTHER_ENDPOINT = "orthgate-other-1.c9akciq32.eu-central-1.rds.amazonaws.com"
# What the index plugin logs when libpq fails to connect. It then retries (10 times, 5 s
# apart, by default) before Orthanc gives up: the test stops Orthanc at the first refusal.
CONNECTION_FAILED = "PostgreSQL error"


@dataclass
class Database:
    lab: Lab
    evaluation: Evaluation
    postgres: Postgres
    db_host: Host
    cloud_host: Host
    root: Path
    endpoint: str
    user: str
    secret: dict[str, str]

    def start_orthanc(self, workdir: Path):
        return start_cloud_side(
            self.cloud_host,
            self.evaluation,
            workdir,
            extra_secrets=self.secret,
            orthanc_hosts={self.endpoint: self.db_host.ip},
            orthanc_plugins=[str(INDEX_PLUGIN)],
            rds_ca_pem=self.postgres.ca.bundle_pem,
        )

    def server_log(self) -> str:
        assert self.postgres.process is not None
        return self.postgres.process.log_text()

    def refused(self, workdir: Path) -> str:
        """Orthanc's start-up, expected to fail on the database: what it logged then."""
        known = set(map(id, self.lab.processes))
        with ThreadPoolExecutor(max_workers=1) as pool:
            starting = pool.submit(self.start_orthanc, workdir)
            orthanc = self._new_orthanc(known, starting)
            deadline = time.monotonic() + 30
            while CONNECTION_FAILED not in orthanc.log_text():
                assert time.monotonic() < deadline, orthanc.log_text()
                time.sleep(0.1)
            orthanc.stop()
            with pytest.raises(AssertionError, match="exited"):
                starting.result(timeout=30).stop()
        return orthanc.log_text()

    def _new_orthanc(self, known: set[int], starting: Future) -> Process:
        deadline = time.monotonic() + 30
        while True:
            for process in self.lab.processes:
                if id(process) not in known and process.label == f"{self.cloud_host.name}/orthanc":
                    return process
            if starting.done():
                starting.result()  # raises what went wrong before Orthanc was spawned
            assert time.monotonic() < deadline, "Orthanc was never started"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def database() -> Iterator[Database]:
    prod = evaluate(read_stack_file(STACKS_DIR / "Pulumi.prod.yaml"), stack="prod")
    instance = prod.one("aws:rds/instance:Instance")
    uri = urllib.parse.urlsplit(deployed_orthanc_config(prod)["PostgreSQL"]["ConnectionUri"])
    assert urllib.parse.parse_qs(uri.query)["sslmode"] == ["verify-full"]
    user, password = instance.inputs["username"], secrets.token_urlsafe(24)
    secret_arn = instance.outputs["masterUserSecrets"][0]["secretArn"]
    # Readable by the postgres user: pytest's own temporary folders are root-only.
    root = Path(tempfile.mkdtemp(prefix="orthgate-pg-tls-", dir="/tmp"))
    os.chmod(root, 0o755)  # noqa: S103 - the postgres user must traverse it
    try:
        with Lab() as lab:
            db_host, cloud_host = lab.host("db"), lab.host("cloud")
            postgres = Postgres(db_host, root)
            postgres.start(user, password, uri.path.lstrip("/"), server_name=uri.hostname)
            try:
                yield Database(
                    lab, prod, postgres, db_host, cloud_host, root, uri.hostname, user,
                    {secret_arn: json.dumps({"username": user, "password": password})},
                )  # fmt: skip
            finally:
                postgres.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_verify_full_connects_to_the_endpoint_named_by_the_bundle_s_ca(database, tmp_path):
    database.postgres.serve_certificate(database.postgres.ca.issue(database.endpoint))
    mark = len(database.server_log())
    cloud = database.start_orthanc(tmp_path / "cloud")
    try:
        # Orthanc answers from its index: it reached it, over TLS, as the stack's user.
        assert cloud.orthanc.request("GET", "/statistics").status == 200
        assert f"connection authorized: user={database.user} " in database.server_log()[mark:]
        tls = database.postgres.sql(
            "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a "  # noqa: S608
            f"USING (pid) WHERE a.usename = '{database.user}'"
        )
        assert tls == "t"
    finally:
        cloud.stop()


def test_a_server_certificate_from_another_ca_is_refused(database, tmp_path):
    impostor = RdsCaStandIn(database.root / "impostor-ca", name="impostor")
    database.postgres.serve_certificate(impostor.issue(database.endpoint))
    mark = len(database.server_log())
    log = database.refused(tmp_path / "cloud")
    assert "SSL error: certificate verify failed" in log
    # Orthanc's libpq broke off the handshake (the server saw it refuse its CA); no login.
    server = database.server_log()[mark:]
    assert "could not accept SSL connection: tlsv1 alert unknown ca" in server
    assert "connection authorized" not in server


def test_a_certificate_for_another_host_name_is_refused(database, tmp_path):
    database.postgres.serve_certificate(database.postgres.ca.issue(OTHER_ENDPOINT))
    mark = len(database.server_log())
    log = database.refused(tmp_path / "cloud")
    assert f'"{OTHER_ENDPOINT}" does not match host name "{database.endpoint}"' in log
    # The right CA, the wrong name: libpq hangs up after the handshake, before logging in.
    assert "connection authorized" not in database.server_log()[mark:]
