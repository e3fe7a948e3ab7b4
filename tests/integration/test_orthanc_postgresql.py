"""The production Orthanc index on a real PostgreSQL that, like RDS here, requires TLS.

The prod stack renders `index: postgresql`; its configuration (from the config secret,
with the password merged on the host by the program's own script) runs on Debian's
Orthanc with the orthanc-postgresql plugin against a PostgreSQL 15 cluster the test
starts in a network namespace, with `hostssl` only (what `rds.force_ssl=1` enforces).
Orthanc verifies it (sslmode=verify-full) against the file where the boot script puts the
RDS CA bundle, here holding the CA of the test's server, whose certificate names the
endpoint. The refusals (another CA, another name) are in test_database_tls.py.
"""

from __future__ import annotations

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
from tests.integration.cloud_side import issued_client, start_cloud_side
from tests.integration.dicom_data import make_study, pixel_digest
from tests.integration.netlab import Lab, storescu
from tests.integration.postgres import INDEX_PLUGIN, Postgres

PUNCTUATION = " \\\"'/@:%#"


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
            postgres.start(
                database.inputs["username"], password_sql, database_name, server_name=endpoint
            )
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
                    rds_ca_pem=postgres.ca.bundle_pem,
                )
                records = make_study(tmp_path / "study", instances_per_series=4, seed=5)
                registered = read_stack_file(STACKS_DIR / "Pulumi.prod.yaml")["orthgate:orthanc"]
                # The prod stack's TLS modality, with the certificate the program issued it.
                [sender] = [m for m in registered["modalities"] if m.get("connection") == "tls"]
                client = issued_client(prod, tmp_path / "client", modality=sender["name"])
                rc, output = storescu(
                    modality,
                    cloud_host.ip,
                    cloud.tls_port,
                    tmp_path / "study",
                    calling_aet=sender["aeTitle"],
                    called_aet=cloud.ae_title,
                    tls=client,
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
