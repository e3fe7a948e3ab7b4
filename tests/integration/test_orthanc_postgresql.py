"""The production Orthanc index on a real PostgreSQL that, like RDS here, requires TLS.

The prod stack renders `index: postgresql`; its configuration (from the config secret,
with the password merged on the host by the program's own script) runs on Debian's
Orthanc with the orthanc-postgresql plugin against a PostgreSQL 15 cluster the test
starts in a network namespace, with `hostssl` only (what `rds.force_ssl=1` enforces).
"""

from __future__ import annotations

import glob
import json
import os
import secrets
import shutil
import tempfile
import urllib.parse
from pathlib import Path

import pytest

from tests.harness.pulumi_run import STACKS_DIR, evaluate, read_stack_file
from tests.harness.user_data import deployed_orthanc_config
from tests.integration.certs import issue_client_cert
from tests.integration.cloud_side import start_cloud_side
from tests.integration.dicom_data import make_study, pixel_digest
from tests.integration.netlab import (
    INSTALL_HINT,
    Host,
    Lab,
    Process,
    TlsClient,
    make_pki,
    require,
    storescu,
)

PUNCTUATION = " \\\"'/@:%#"
INDEX_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so")


def postgres_binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found or not INDEX_PLUGIN.exists():
        pytest.fail(
            "PostgreSQL or the Orthanc PostgreSQL plugin is missing (Debian packages "
            f"postgresql, orthanc-postgresql); {INSTALL_HINT}",
            pytrace=False,
        )
    return Path(found[-1]).parent


def as_postgres(*argv: str) -> list[str]:
    # setpriv execs the command itself: the spawned PID is the server's.
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *argv]


class Postgres:
    """A throw-away cluster owned by the postgres user, accepting TLS connections only."""

    def __init__(self, host: Host, root: Path) -> None:
        require("setpriv")
        self.bin = postgres_binaries()
        self.host = host
        self.data = root / "data"
        self.process: Process | None = None

    def start(self, user: str, password: str, database: str) -> None:
        self.data.mkdir(mode=0o700)
        shutil.chown(self.data, "postgres", "postgres")
        self.host.run(as_postgres(str(self.bin / "initdb"), "-D", str(self.data), "-A", "reject"))
        pki = make_pki(self.data.parent / "pki", servers=["db.test"], clients=[])
        for source, name in (
            (pki["db.test"].cert, "server.crt"),
            (pki["db.test"].key, "server.key"),
        ):
            shutil.copy(source, self.data / name)
            shutil.chown(self.data / name, "postgres", "postgres")
        (self.data / "server.key").chmod(0o600)
        (self.data / "pg_hba.conf").write_text(
            "local all postgres peer\n"
            "hostssl all all 0.0.0.0/0 scram-sha-256\n"
            "host all all 0.0.0.0/0 reject\n"
        )
        self.process = self.host.spawn(
            as_postgres(
                str(self.bin / "postgres"), "-D", str(self.data),
                "-c", f"listen_addresses={self.host.ip}",
                "-c", f"unix_socket_directories={self.data}",
                "-c", "ssl=on",
                "-c", "password_encryption=scram-sha-256",
            ),
            label="postgres",
        )  # fmt: skip
        self.host.wait_for_port(5432, address=self.host.ip, process=self.process)
        self.sql(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
        self.sql(f"CREATE DATABASE {database} OWNER {user}")

    def sql(self, statement: str, database: str = "postgres") -> str:
        result = self.host.run(
            as_postgres(
                str(self.bin / "psql"), "-h", str(self.data), "-d", database,
                "-At", "-v", "ON_ERROR_STOP=1", "-c", statement,
            )
        )  # fmt: skip
        return result.stdout.strip()

    def stop(self) -> None:
        if self.process:
            self.process.stop()


@pytest.fixture(scope="module")
def prod():
    return evaluate(read_stack_file(STACKS_DIR / "Pulumi.prod.yaml"), stack="prod")


def test_orthanc_indexes_in_postgresql_over_tls_and_keeps_it_across_a_restart(prod, tmp_path):
    # Readable by the postgres user: pytest's own temporary folders are root-only.
    root = Path(tempfile.mkdtemp(prefix="orthgate-pg-", dir="/tmp"))
    os.chmod(root, 0o755)  # noqa: S103 - the postgres user must traverse it
    database = prod.one("aws:rds/instance:Instance")
    secret_arn = database.outputs["masterUserSecrets"][0]["secretArn"]
    uri = urllib.parse.urlsplit(deployed_orthanc_config(prod)["PostgreSQL"]["ConnectionUri"])
    endpoint, database_name = uri.hostname, uri.path.lstrip("/")
    # Characters the plugin mangles in a plain password field; the URI carries them.
    password = secrets.token_urlsafe(24) + PUNCTUATION
    password_sql = password.replace("'", "''")
    try:
        with Lab() as lab:
            db_host, cloud_host = lab.host("db"), lab.host("cloud")
            modality = lab.host("modality")
            postgres = Postgres(db_host, root)
            postgres.start(database.inputs["username"], password_sql, database_name)
            try:
                cloud = start_cloud_side(
                    cloud_host,
                    prod,
                    tmp_path / "cloud",
                    extra_secrets={
                        secret_arn: json.dumps(
                            {"username": database.inputs["username"], "password": password}
                        )
                    },
                    orthanc_hosts={endpoint: db_host.ip},
                    orthanc_plugins=[str(INDEX_PLUGIN)],
                )
                client = issue_client_cert(
                    tmp_path / "client", "ct", ca_cert_pem=cloud.ca_cert_pem,
                    ca_key_pem=cloud.ca_key_pem,
                )  # fmt: skip
                records = make_study(tmp_path / "study", instances_per_series=4, seed=5)
                registered = read_stack_file(STACKS_DIR / "Pulumi.prod.yaml")["orthgate:orthanc"]
                rc, output = storescu(
                    modality,
                    cloud_host.ip,
                    cloud.tls_port,
                    tmp_path / "study",
                    calling_aet=registered["modalities"][0]["aeTitle"],
                    called_aet=cloud.ae_title,
                    tls=TlsClient(cloud.ca_file, client.cert, client.key),
                )
                assert rc == 0, output

                # The index lives in PostgreSQL, and Orthanc reached it over TLS only.
                rows = postgres.sql("SELECT count(*) FROM resources", database_name)
                assert int(rows) >= len(records)
                user = database.inputs["username"]
                tls = postgres.sql(
                    "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a "  # noqa: S608
                    f"USING (pid) WHERE a.usename = '{user}'"
                )
                assert tls == "t"

                cloud.orthanc.restart()
                by_sop = {
                    cloud.orthanc.instance_tags(i)["SOPInstanceUID"]: i
                    for i in cloud.orthanc.instances()
                }
                assert set(by_sop) == {r.sop_uid for r in records}
                for record in records:
                    _, digest = pixel_digest(cloud.orthanc.instance_file(by_sop[record.sop_uid]))
                    assert digest == record.pixel_sha256
                cloud.stop()
            finally:
                postgres.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
