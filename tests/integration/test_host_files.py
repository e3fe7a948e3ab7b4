"""The files the program renders for the Orthanc host, checked by the real tools.

No Amazon Linux host can boot here, so: `cloud-init schema` validates the user data of
every shipped stack, `shellcheck` the boot script, and the secrets step runs for real
against a stand-in for the AWS CLI.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from components.render.orthanc_config import (
    Database,
    OrthancConfigSpec,
    render_orthanc_config,
    secret_values,
    to_json,
)
from components.render.secrets_manifest import (
    MATERIALIZE_SCRIPT,
    SecretsManifestSpec,
    render_secrets_manifest,
)
from tests.harness.pulumi_run import evaluate, read_stack_file, shipped_stacks
from tests.harness.user_data import cloud_config_text, written_files
from tests.integration.netlab import require

RUFF = Path(sys.executable).with_name("ruff")


def stack_id(path: Path) -> str:
    return path.name.removeprefix("Pulumi.").removesuffix(".yaml")


@pytest.fixture(scope="module", params=shipped_stacks(), ids=stack_id)
def templates(request):
    evaluation = evaluate(read_stack_file(request.param), stack=stack_id(request.param))
    return evaluation.of_type("aws:ec2/launchTemplate:LaunchTemplate")


def test_user_data_is_valid_cloud_config(templates, tmp_path):
    cloud_init = require("cloud-init")["cloud-init"]
    for i, template in enumerate(templates):
        path = tmp_path / f"user-data-{i}.yaml"
        path.write_text(cloud_config_text(template))
        result = subprocess.run(
            [cloud_init, "schema", "--config-file", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Valid cloud-config" in result.stdout


def test_the_boot_script_passes_shellcheck(templates, tmp_path):
    shellcheck = require("shellcheck")["shellcheck"]
    for i, template in enumerate(templates):
        script = tmp_path / f"boot-{i}"
        script.write_text(written_files(template)["/usr/local/libexec/orthgate/boot"])
        result = subprocess.run(
            [shellcheck, "--severity=style", str(script)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout


def test_shellcheck_would_catch_a_broken_script(tmp_path):
    # The check above is only worth something if shellcheck flags what we would get wrong.
    shellcheck = require("shellcheck")["shellcheck"]
    script = tmp_path / "broken"
    script.write_text("#!/bin/bash\nrm -rf $DATA_DIR/*\n")
    result = subprocess.run([shellcheck, str(script)], capture_output=True, check=False)
    assert result.returncode != 0


def test_the_materialize_script_is_valid_python_3_9():
    # Amazon Linux 2023 runs it with its system Python 3.9.
    result = subprocess.run(
        [str(RUFF), "check", "--no-cache", "--target-version", "py39", "--select", "E9,F",
         str(MATERIALIZE_SCRIPT)],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout


# --- the secrets step, run for real -----------------------------------------------------------

FAKE_AWS = """#!/usr/bin/env python3
# Stands in for `aws secretsmanager get-secret-value ... --query SecretString --output text`.
import json, os, sys
args = sys.argv[1:]
assert args[:2] == ["secretsmanager", "get-secret-value"], args
secret_id = args[args.index("--secret-id") + 1]
store = json.load(open(os.environ["FAKE_SECRETS"]))
if secret_id not in store:
    sys.exit("An error occurred (ResourceNotFoundException)")
with open(os.environ["FAKE_SECRETS"] + ".calls", "a") as calls:
    calls.write(secret_id + "\\n")
print(store[secret_id])
"""


@pytest.fixture
def host(tmp_path):
    """A directory tree standing in for the host, with a fake AWS CLI on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    aws = bin_dir / "aws"
    aws.write_text(FAKE_AWS)
    aws.chmod(0o755)
    secrets = {
        "arn:tls": json.dumps(
            {"certificate": "CERT\n", "privateKey": "KEY-1", "caCertificate": "CA\n"}
        ),
        "arn:admin": json.dumps({"username": "admin", "password": "Pw1-no-quotes"}),
        "arn:db": json.dumps({"username": "orthanc", "password": 'p"w\\with/odd@chars'}),
    }
    store = tmp_path / "secrets.json"
    store.write_text(json.dumps(secrets))
    spec = OrthancConfigSpec(name="t", ae_title="ORTHANC", database=Database(host="db.local"))
    secrets["arn:config"] = json.dumps({"orthanc.json": to_json(render_orthanc_config(spec))})
    store.write_text(json.dumps(secrets))
    (tmp_path / "etc").mkdir()
    marker = tmp_path / "reloaded"
    manifest = render_secrets_manifest(
        SecretsManifestSpec(
            region="eu-central-1",
            secret_arns={
                "tls": "arn:tls",
                "admin": "arn:admin",
                "database": "arn:db",
                "config": "arn:config",
            },
            orthanc_values=secret_values(spec),
            tls_dir=str(tmp_path / "run" / "tls"),
            orthanc_config=str(tmp_path / "run" / "orthanc" / "orthanc.json"),
            on_change={"tls": ["touch", str(marker)]},
        )
    )
    manifest_path = tmp_path / "etc" / "secrets.json"
    manifest_path.write_text(json.dumps(manifest))
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_SECRETS": str(store)}

    def run(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(MATERIALIZE_SCRIPT), "--manifest", str(manifest_path), *extra],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    return tmp_path, run, store, marker


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secrets_become_owner_only_files_and_a_merged_orthanc_config(host):
    root, run, store, _ = host
    result = run()
    assert result.returncode == 0, result.stderr
    tls = root / "run" / "tls"
    assert (tls / "server.key").read_text() == "KEY-1\n"
    assert mode(tls / "server.key") == 0o600
    assert mode(tls) == 0o700
    assert (tls / "server.crt").read_text() == "CERT\n"
    config_path = root / "run" / "orthanc" / "orthanc.json"
    assert mode(config_path) == 0o600
    config = json.loads(config_path.read_text())
    assert config["RegisteredUsers"] == {"admin": "Pw1-no-quotes"}
    # Any character RDS may put in a password survives: URL-encoded into the URI.
    assert config["PostgreSQL"]["ConnectionUri"] == (
        "postgresql://orthanc:p%22w%5Cwith%2Fodd%40chars@db.local:5432/orthanc?sslmode=require"
    )
    # Each secret is fetched once, and nothing secret is printed.
    calls = Path(f"{store}.calls").read_text().split()
    assert sorted(calls) == ["arn:admin", "arn:config", "arn:db", "arn:tls"]
    assert "KEY-1" not in result.stdout + result.stderr
    assert "Pw1" not in result.stdout + result.stderr


def test_a_second_run_changes_nothing_and_a_rotation_is_applied(host):
    root, run, store, marker = host
    assert run().returncode == 0
    again = run("--apply")
    assert again.returncode == 0
    assert again.stdout == ""
    assert not marker.exists()

    secrets = json.loads(store.read_text())
    secrets["arn:tls"] = json.dumps(
        {"certificate": "CERT-2\n", "privateKey": "KEY-2", "caCertificate": "CA\n"}
    )
    store.write_text(json.dumps(secrets))
    rotated = run("--apply")
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.strip() == "orthgate: tls changed"
    assert marker.exists(), "the tls onChange command ran"
    assert (root / "run" / "tls" / "server.key").read_text() == "KEY-2\n"


def test_a_missing_secret_fails_loudly_before_orthanc_gets_a_config(host):
    root, run, store, _ = host
    secrets = json.loads(store.read_text())
    del secrets["arn:db"]
    store.write_text(json.dumps(secrets))
    result = run()
    assert result.returncode != 0
    assert not (root / "run" / "orthanc" / "orthanc.json").exists()


def test_a_new_orthanc_configuration_restarts_orthanc_only(host):
    root, run, store, marker = host
    assert run().returncode == 0
    secrets = json.loads(store.read_text())
    config = json.loads(json.loads(secrets["arn:config"])["orthanc.json"])
    config["DicomModalities"] = {"mr": {"AET": "MR", "Host": "127.0.0.1", "Port": 104}}
    secrets["arn:config"] = json.dumps({"orthanc.json": json.dumps(config)})
    store.write_text(json.dumps(secrets))
    result = run("--apply")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "orthgate: orthancConfig changed"
    assert not marker.exists(), "nginx is not reloaded for an Orthanc change"
    merged = json.loads((root / "run" / "orthanc" / "orthanc.json").read_text())
    assert merged["DicomModalities"]["mr"]["AET"] == "MR"
    assert merged["RegisteredUsers"] == {"admin": "Pw1-no-quotes"}
