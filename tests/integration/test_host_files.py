"""The files the program renders for the Orthanc host, checked by the real tools.

No Amazon Linux host can boot here, so: `cloud-init schema` validates the user data of
every shipped stack, `shellcheck` the boot script, `systemd-analyze verify` the units,
and the secrets step runs for real against a stand-in for the AWS CLI.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from orthgate.components.render import paths
from orthgate.components.render.orthanc_config import (
    Database,
    OrthancConfigSpec,
    render_orthanc_config,
    secret_values,
    to_json,
)
from orthgate.components.render.secrets_manifest import (
    MATERIALIZE_SCRIPT,
    SecretsManifestSpec,
    render_secrets_manifest,
)
from tests.harness.pulumi_run import evaluate, read_stack_file, shipped_stacks
from tests.harness.user_data import cloud_config, cloud_config_text, written_files
from tests.integration.netlab import find_binary, require

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


def test_the_python_3_9_check_would_catch_newer_syntax(tmp_path):
    script = tmp_path / "new.py"
    script.write_text("def f(x):\n    match x:\n        case _:\n            return 1\n")
    result = subprocess.run(
        [str(RUFF), "check", "--no-cache", "--target-version", "py39", "--select", "E9,F",
         str(script)],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert result.returncode != 0, result.stdout


# --- the systemd units and the compose file ----------------------------------------------------

SYSTEMD_ANALYZE_HINT = "systemd-analyze is missing (Debian package systemd)"
DEBIAN_UNITS = Path("/usr/lib/systemd/system")
# Stands in for what Amazon Linux's docker package and the boot script put on the host.
DOCKER_UNIT = "[Unit]\nDescription=stand-in\n\n[Service]\nExecStart=/usr/bin/dockerd\n"
STUB = "#!/bin/sh\nexit 0\n"


def systemd_root(template, root: Path) -> list[str]:
    """A root with the rendered host files, Debian's own units and stand-ins for Docker;
    the names of the rendered units."""
    shutil.copytree(DEBIAN_UNITS, root / DEBIAN_UNITS.relative_to("/"), symlinks=True)
    for entry in cloud_config(template)["write_files"]:
        target = root / entry["path"].lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(entry["content"])
        target.chmod(int(entry["permissions"], 8))
    for stub in (paths.COMPOSE_PLUGIN, "/usr/bin/dockerd"):
        target = root / stub.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(STUB)
        target.chmod(0o755)
    (root / "usr/lib/systemd/system/docker.service").write_text(DOCKER_UNIT)
    unit_dir = root / paths.SYSTEMD_UNIT_DIR.lstrip("/")
    return sorted(p.name for p in unit_dir.iterdir() if p.name.startswith("orthgate"))


def systemd_verify(root: Path, units: list[str]) -> subprocess.CompletedProcess:
    analyze = find_binary("systemd-analyze")
    if analyze is None:
        pytest.fail(SYSTEMD_ANALYZE_HINT, pytrace=False)
    return subprocess.run(
        [analyze, "verify", f"--root={root}", *units],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_units_pass_systemd_analyze_verify(templates, tmp_path):
    for i, template in enumerate(templates):
        root = tmp_path / f"root-{i}"
        units = systemd_root(template, root)
        assert len(units) == 4, units
        result = systemd_verify(root, units)
        output = result.stdout + result.stderr
        # Unknown keys are only warned about: any line naming one of our units counts.
        assert result.returncode == 0, output
        assert [line for line in output.splitlines() if "orthgate" in line] == [], output


def test_systemd_analyze_would_catch_a_broken_unit(templates, tmp_path):
    # The check above is only worth something if verify flags what we would get wrong.
    systemd_root(templates[0], tmp_path)
    unit = tmp_path / paths.SYSTEMD_UNIT_DIR.lstrip("/") / "orthgate-broken.service"
    good = "[Unit]\nDescription=t\n\n[Service]\nType=oneshot\nExecStart=/usr/bin/dockerd\n"
    unit.write_text(good)
    assert systemd_verify(tmp_path, [unit.name]).returncode == 0
    unit.write_text(good + "Restart=always\n")
    assert systemd_verify(tmp_path, [unit.name]).returncode != 0, "Restart=always on a oneshot"
    unit.write_text(good + "RestartSecs=1min\n")
    typo = systemd_verify(tmp_path, [unit.name])
    assert unit.name in typo.stdout + typo.stderr, "an unknown key"
    unit.write_text(good.replace("/usr/bin/dockerd", "/usr/local/bin/not-there"))
    assert systemd_verify(tmp_path, [unit.name]).returncode != 0, "a missing command"


def test_no_bind_mount_lets_docker_create_its_source(templates):
    for template in templates:
        files = written_files(template)
        manifest = json.loads(files[paths.SECRETS_MANIFEST])
        tls_dirs = {str(Path(item["path"]).parent) for item in manifest["files"]}
        on_tmpfs = {manifest["orthancConfig"]["path"]: "file", **dict.fromkeys(tls_dirs, "dir")}
        compose = yaml.safe_load(files[paths.COMPOSE_FILE])
        sources = set()
        for service in compose["services"].values():
            for volume in service.get("volumes", []):
                assert isinstance(volume, dict), f"short syntax creates missing sources: {volume}"
                assert volume["type"] == "bind"
                assert volume["bind"]["create_host_path"] is False
                sources.add(volume["source"])
                if volume["source"].startswith(paths.HOST_RUNTIME_DIR + "/"):
                    assert volume["read_only"] is True
        # What compose mounts from tmpfs is exactly what the secrets step writes there.
        assert {s for s in sources if s.startswith(paths.HOST_RUNTIME_DIR + "/")} == set(on_tmpfs)
        assert manifest["runtimeDir"] == paths.HOST_RUNTIME_DIR
        assert manifest["pendingDir"].startswith(paths.HOST_RUNTIME_DIR + "/")


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


# An onChange command: records each run, exits 3 while ``fail`` exists. It also checks that
# its pending marker is already there: the marker must be written before the command runs.
ON_CHANGE = """
import os, sys
record, fail, marker = sys.argv[1:]
if not os.path.isfile(marker):
    sys.exit("the pending marker was not written first")
with open(record, "a") as out:
    out.write("ran\\n")
sys.exit(3 if os.path.exists(fail) else 0)
"""


@dataclass
class FakeHost:
    root: Path
    store: Path
    manifest_path: Path
    env: dict[str, str]

    @property
    def runtime(self) -> Path:
        return self.root / "run"

    @property
    def pending(self) -> Path:
        return self.runtime / "pending"

    @property
    def config_path(self) -> Path:
        return self.runtime / "orthanc" / "orthanc.json"

    def run(self, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(MATERIALIZE_SCRIPT), "--manifest", str(self.manifest_path),
             *extra],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip

    def runs(self, group: str) -> int:
        """How often ``group``'s onChange command ran."""
        record = self.root / f"{group}.runs"
        return len(record.read_text().splitlines()) if record.exists() else 0

    def fail(self, group: str, failing: bool = True) -> None:
        flag = self.root / f"{group}.fail"
        if failing:
            flag.touch()
        else:
            flag.unlink()

    def update_secret(self, arn: str, value: str) -> None:
        secrets = json.loads(self.store.read_text())
        secrets[arn] = value
        self.store.write_text(json.dumps(secrets))

    def rotate_tls(self, n: int) -> None:
        self.update_secret(
            "arn:tls",
            json.dumps(
                {
                    "certificate": f"CERT-{n}\n",
                    "privateKey": f"KEY-{n}",
                    "caCertificate": "CA\n",
                    "revocationList": f"CRL-{n}\n",
                    "senderMaps": "MAPS\n",
                }
            ),
        )

    def register_modality(self, ae_title: str) -> None:
        secrets = json.loads(self.store.read_text())
        config = json.loads(json.loads(secrets["arn:config"])["orthanc.json"])
        config.setdefault("DicomModalities", {})[ae_title.lower()] = {
            "AET": ae_title, "Host": "127.0.0.1", "Port": 104,
        }  # fmt: skip
        self.update_secret("arn:config", json.dumps({"orthanc.json": json.dumps(config)}))


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
            {
                "certificate": "CERT\n",
                "privateKey": "KEY-1",
                "caCertificate": "CA\n",
                "revocationList": "CRL\n",
                "senderMaps": "MAPS\n",
            }
        ),
        "arn:admin": json.dumps({"username": "admin", "password": "Pw1-no-quotes"}),
        "arn:db": json.dumps({"username": "orthanc", "password": 'p"w\\with/odd@chars'}),
    }
    store = tmp_path / "secrets.json"
    spec = OrthancConfigSpec(name="t", ae_title="ORTHANC", database=Database(host="db.local"))
    secrets["arn:config"] = json.dumps({"orthanc.json": to_json(render_orthanc_config(spec))})
    store.write_text(json.dumps(secrets))
    (tmp_path / "etc").mkdir()
    runtime = tmp_path / "run"

    def on_change(group: str) -> list[str]:
        return [sys.executable, "-c", ON_CHANGE, str(tmp_path / f"{group}.runs"),
                str(tmp_path / f"{group}.fail"), str(runtime / "pending" / group)]  # fmt: skip

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
            tls_dir=str(runtime / "tls"),
            orthanc_config=str(runtime / "orthanc" / "orthanc.json"),
            runtime_dir=str(runtime),
            pending_dir=str(runtime / "pending"),
            on_change={"tls": on_change("tls"), "orthancConfig": on_change("orthancConfig")},
        )
    )
    manifest_path = tmp_path / "etc" / "secrets.json"
    manifest_path.write_text(json.dumps(manifest))
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_SECRETS": str(store)}
    return FakeHost(root=tmp_path, store=store, manifest_path=manifest_path, env=env)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def err_lines(result: subprocess.CompletedProcess) -> list[str]:
    """The lines journald records at priority err (3)."""
    return [line for line in result.stderr.splitlines() if line.startswith("<3>")]


def test_secrets_become_owner_only_files_and_a_merged_orthanc_config(host):
    result = host.run()
    assert result.returncode == 0, result.stderr
    tls = host.runtime / "tls"
    assert (tls / "server.key").read_text() == "KEY-1\n"
    assert mode(tls / "server.key") == 0o600
    assert mode(tls) == 0o700
    assert (tls / "server.crt").read_text() == "CERT\n"
    assert mode(host.config_path) == 0o600
    config = json.loads(host.config_path.read_text())
    assert config["RegisteredUsers"] == {"admin": "Pw1-no-quotes"}
    # Any character RDS may put in a password survives: URL-encoded into the URI.
    assert config["PostgreSQL"]["ConnectionUri"] == (
        "postgresql://orthanc:p%22w%5Cwith%2Fodd%40chars@db.local:5432/orthanc"
        "?sslmode=verify-full&sslrootcert=/etc/orthanc/rds-ca.pem"
    )
    # Each secret is fetched once, and nothing secret is printed.
    calls = Path(f"{host.store}.calls").read_text().split()
    assert sorted(calls) == ["arn:admin", "arn:config", "arn:db", "arn:tls"]
    assert "KEY-1" not in result.stdout + result.stderr
    assert "Pw1" not in result.stdout + result.stderr
    # Without --apply nothing is marked pending: the containers are created afterwards.
    assert not host.pending.exists()


def test_a_second_run_changes_nothing_and_a_rotation_is_applied(host):
    assert host.run().returncode == 0
    again = host.run("--apply")
    assert again.returncode == 0
    assert again.stdout == ""
    assert host.runs("tls") == 0

    host.rotate_tls(2)
    rotated = host.run("--apply")
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.strip() == "orthgate: tls changed"
    assert host.runs("tls") == 1, "the tls onChange command ran"
    assert (host.runtime / "tls" / "server.key").read_text() == "KEY-2\n"
    assert list(host.pending.iterdir()) == [], "success clears the marker"


def test_a_missing_secret_fails_loudly_before_orthanc_gets_a_config(host):
    secrets = json.loads(host.store.read_text())
    del secrets["arn:db"]
    host.store.write_text(json.dumps(secrets))
    result = host.run()
    assert result.returncode != 0
    assert not host.config_path.exists()


def test_a_new_orthanc_configuration_restarts_orthanc_only(host):
    assert host.run().returncode == 0
    host.register_modality("MR")
    result = host.run("--apply")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "orthgate: orthancConfig changed"
    assert host.runs("orthancConfig") == 1
    assert host.runs("tls") == 0, "nginx is not reloaded for an Orthanc change"
    merged = json.loads(host.config_path.read_text())
    assert merged["DicomModalities"]["mr"]["AET"] == "MR"
    assert merged["RegisteredUsers"] == {"admin": "Pw1-no-quotes"}


# --- day 2: what a reboot leaves behind, and commands that fail --------------------------------


def test_a_directory_dockerd_made_in_place_of_orthanc_json_is_replaced_by_the_file(host):
    # What dockerd does for a missing bind source: mkdir -p, mode 0755.
    host.config_path.mkdir(parents=True)
    for directory in (host.runtime, host.config_path.parent, host.config_path):
        directory.chmod(0o755)
    result = host.run()
    assert result.returncode == 0, result.stderr
    assert host.config_path.is_file()
    assert mode(host.config_path) == 0o600
    assert json.loads(host.config_path.read_text())["RegisteredUsers"] == {"admin": "Pw1-no-quotes"}
    assert f"{host.config_path} was a directory" in result.stderr
    # And the directories dockerd left world-readable are owner-only again.
    assert mode(host.runtime) == mode(host.config_path.parent) == 0o700
    assert host.run().returncode == 0, "and the next run finds the file"


def test_a_directory_outside_the_runtime_directory_is_refused(host):
    manifest = json.loads(host.manifest_path.read_text())
    manifest["runtimeDir"] = str(host.root / "elsewhere")
    host.manifest_path.write_text(json.dumps(manifest))
    host.config_path.mkdir(parents=True)
    (host.config_path / "keep").write_text("not ours")
    result = host.run()
    assert result.returncode != 0
    # Nothing is written outside the runtime directory at all, let alone removed there.
    assert f"outside {host.root / 'elsewhere'}" in result.stderr
    assert result.stderr.startswith("<3>orthgate: ")
    assert (host.config_path / "keep").read_text() == "not ours"


def test_a_symbolic_link_never_leads_a_secret_out_of_the_runtime_directory(host, tmp_path):
    manifest = json.loads(host.manifest_path.read_text())
    tls_dir = Path(manifest["files"][0]["path"]).parent
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o755)
    tls_dir.parent.mkdir(parents=True, exist_ok=True)
    tls_dir.symlink_to(outside, target_is_directory=True)
    result = host.run()
    assert result.returncode != 0
    assert "leads outside" in result.stderr
    assert list(outside.iterdir()) == [], "no key written through the link"
    assert outside.stat().st_mode & 0o777 == 0o755, "no chmod through the link"


def test_a_failed_on_change_command_stays_pending_and_is_retried_until_it_succeeds(host):
    assert host.run().returncode == 0
    host.fail("tls")
    host.rotate_tls(2)
    failed = host.run("--apply")
    assert failed.returncode != 0, "the unit must show failed"
    assert host.runs("tls") == 1
    assert (host.pending / "tls").is_file()
    [line] = err_lines(failed)
    assert line.startswith("<3>orthgate: tls: ")
    assert f"{sys.executable} -c" in line, "names the command"
    assert "exit status 3" in line
    assert "KEY-2" not in failed.stdout + failed.stderr

    # The secrets have not changed since, yet the command runs again: still failing ...
    again = host.run("--apply")
    assert again.returncode != 0
    assert host.runs("tls") == 2
    assert len(err_lines(again)) == 1
    assert (host.pending / "tls").is_file()

    # ... until it succeeds, which clears the marker; after that it is not run again.
    host.fail("tls", False)
    fixed = host.run("--apply")
    assert fixed.returncode == 0, fixed.stderr
    assert "tls still pending" in fixed.stdout
    assert host.runs("tls") == 3
    assert not (host.pending / "tls").exists()
    assert err_lines(fixed) == []
    assert host.run("--apply").returncode == 0
    assert host.runs("tls") == 3


def test_one_failing_group_does_not_keep_the_others_from_running(host):
    assert host.run().returncode == 0
    host.fail("orthancConfig")
    host.rotate_tls(2)
    host.register_modality("MR")
    result = host.run("--apply")
    assert result.returncode != 0
    assert host.runs("orthancConfig") == 1
    assert host.runs("tls") == 1, "tls sorts after orthancConfig and still ran"
    assert sorted(p.name for p in host.pending.iterdir()) == ["orthancConfig"]
    [line] = err_lines(result)
    assert line.startswith("<3>orthgate: orthancConfig: ")


def test_a_command_that_cannot_even_start_stays_pending(host):
    manifest = json.loads(host.manifest_path.read_text())
    manifest["onChange"]["tls"] = [str(host.root / "no-such-command")]
    host.manifest_path.write_text(json.dumps(manifest))
    assert host.run().returncode == 0
    host.rotate_tls(2)
    result = host.run("--apply")
    assert result.returncode != 0
    [line] = err_lines(result)
    assert "no-such-command" in line
    assert "could not start" in line
    assert (host.pending / "tls").is_file()


def test_a_change_made_without_apply_is_not_left_pending(host):
    # At start (no --apply) the containers are (re)created from the files afterwards.
    assert host.run().returncode == 0
    host.rotate_tls(2)
    assert host.run().returncode == 0
    assert not host.pending.exists()
    assert host.run("--apply").returncode == 0
    assert host.runs("tls") == 0
