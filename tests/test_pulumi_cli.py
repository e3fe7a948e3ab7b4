"""What only the Pulumi CLI can show: that it finds the stack files and hands over config
our loader accepts. Skipped (the only skip allowed) where the CLI is not installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from orthgate.components.config import parse_settings
from tests.harness.pulumi_run import PROJECT_ROOT, shipped_stacks

pytestmark = pytest.mark.requires_pulumi_cli


@pytest.mark.parametrize("stack_file", shipped_stacks(), ids=lambda p: p.name)
def test_the_cli_reads_the_stack_from_the_stacks_folder(stack_file, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT, project, ignore=shutil.ignore_patterns(".venv", ".git"))
    env = {
        **os.environ,
        "PULUMI_BACKEND_URL": f"file://{tmp_path / 'state'}",
        "PULUMI_CONFIG_PASSPHRASE": "test only",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
    }
    (tmp_path / "state").mkdir()
    stack = stack_file.name.removeprefix("Pulumi.").removesuffix(".yaml")

    def pulumi(*args: str) -> str:
        return subprocess.run(
            ["pulumi", *args], cwd=project, env=env, capture_output=True, text=True, check=True
        ).stdout

    pulumi("stack", "init", stack)
    values = json.loads(pulumi("config", "--stack", stack, "--json"))
    # Objects come back parsed in "objectValue", scalars in "value".
    raw = {
        key.removeprefix("orthgate:"): entry.get("objectValue", entry.get("value"))
        for key, entry in values.items()
        if key.startswith("orthgate:")
    }
    settings = parse_settings(raw)
    assert settings.environment == raw["environment"]


def test_open_stack_drives_the_project_directory_and_its_stacks_folder(tmp_path, monkeypatch):
    from orthgate.automation import open_stack

    project = tmp_path / "project"
    shutil.copytree(
        PROJECT_ROOT, project, symlinks=True, ignore=shutil.ignore_patterns(".venv", ".git")
    )
    (tmp_path / "state").mkdir()
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("test only\n")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE_FILE", str(passphrase))
    stack = open_stack("prod", project_dir=project, backend_url=f"file://{tmp_path / 'state'}")
    config = stack.stack.get_all_config()
    assert config["orthgate:environment"].value == "prd"
    network = json.loads(config["orthgate:network"].value)
    assert network["vpcCidr"] == "10.50.0.0/16"
    # The CLI wrote its secrets salt into the stack file in stacks/, not next to Pulumi.yaml.
    assert not (project / "Pulumi.prod.yaml").exists()


PROBE_PROGRAM = """name: policy-probe
runtime: yaml
resources:
  dicom:
    type: aws:ec2:SecurityGroup
    properties:
      description: orthgate policy pack probe
      ingress:
        - protocol: tcp
          fromPort: 4242
          toPort: 4242
          cidrBlocks: ["{cidr}"]
"""


def test_pulumi_preview_runs_the_policy_pack(tmp_path):
    """The pack as users run it: `pulumi preview --policy-pack policy/` on a one-resource
    program (no AWS call: a preview of a new security group only checks its inputs)."""
    project = tmp_path / "probe"
    project.mkdir()
    pack = tmp_path / "policy"
    shutil.copytree(PROJECT_ROOT / "policy", pack, ignore=shutil.ignore_patterns("venv"))
    (tmp_path / "state").mkdir()
    env = {
        **os.environ,
        "PULUMI_BACKEND_URL": f"file://{tmp_path / 'state'}",
        "PULUMI_CONFIG_PASSPHRASE": "test only",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
    }

    def pulumi(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["pulumi", "--non-interactive", *args],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            check=check,
        )

    (project / "Pulumi.yaml").write_text(PROBE_PROGRAM.format(cidr="10.0.0.0/8"))
    pulumi("stack", "init", "probe")
    for key, value in (
        ("aws:region", "us-east-1"),
        ("aws:accessKey", "AKIAPROBE"),
        ("aws:skipCredentialsValidation", "true"),
        ("aws:skipRequestingAccountId", "true"),
        ("aws:skipMetadataApiCheck", "true"),
    ):
        pulumi("config", "set", key, value)
    pulumi("config", "set", "--secret", "aws:secretKey", "probe")
    # Plaintext DICOM from RFC 1918: allowed.
    allowed = pulumi("preview", "--policy-pack", str(pack), check=False)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "dicom-ingress-restricted" not in allowed.stdout + allowed.stderr
    # From an Internet range: a mandatory violation stops the preview.
    (project / "Pulumi.yaml").write_text(PROBE_PROGRAM.format(cidr="8.8.8.0/24"))
    refused = pulumi("preview", "--policy-pack", str(pack), check=False)
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0, output
    assert "dicom-ingress-restricted" in output
    assert "8.8.8.0/24" in output
