"""The Automation API wiring, without the real Pulumi CLI: which workspace, which stack file,
which config, and which errors an operator gets when something is missing."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from pulumi import automation as auto

from orthgate.automation import check_passphrase, inline_program, open_stack, pulumi_command
from orthgate.components.config import ConfigError
from orthgate.components.stack import program
from orthgate.errors import SetupError, StackNotFound
from orthgate.validation import validate_config
from tests.harness.pulumi_run import PROJECT_ROOT, STACKS_DIR, read_stack_file
from tests.operator.fake_pulumi import calls, install_fake_pulumi


@pytest.fixture
def fake_cli(tmp_path, monkeypatch):
    log = install_fake_pulumi(tmp_path / "pulumi")
    monkeypatch.setenv("PATH", f"{tmp_path / 'pulumi' / 'bin'}:/usr/bin:/bin")
    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    monkeypatch.delenv("FAKE_PULUMI_STDERR", raising=False)
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("not a real one\n")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE_FILE", str(passphrase))
    return log


def test_the_stack_is_the_project_directory_itself_with_its_stack_file(fake_cli):
    stack = open_stack("prod", project_dir=PROJECT_ROOT)
    assert stack.stack.workspace.work_dir == str(PROJECT_ROOT)
    assert stack.stack_file == STACKS_DIR / "Pulumi.prod.yaml"
    assert stack.settings.environment == "prd"
    [select] = calls(fake_cli)
    assert select["cwd"] == str(PROJECT_ROOT)
    assert select["argv"][:3] == ["--non-interactive", "stack", "select"]
    assert select["argv"][select["argv"].index("--stack") + 1] == "prod"
    # The same state as `make up`: the local backend, unless the operator chose another.
    assert select["env"]["PULUMI_BACKEND_URL"] == "file://~"


def test_an_explicit_backend_is_used_and_needs_no_passphrase_when_it_is_the_service(
    fake_cli, monkeypatch
):
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE")
    open_stack("dev", project_dir=PROJECT_ROOT, backend_url="https://api.pulumi.com")
    [select] = calls(fake_cli)
    assert select["env"]["PULUMI_BACKEND_URL"] == "https://api.pulumi.com"


def test_a_missing_passphrase_stops_before_the_cli_runs(fake_cli, monkeypatch):
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE")
    with pytest.raises(SetupError, match="PULUMI_CONFIG_PASSPHRASE_FILE"):
        open_stack("dev", project_dir=PROJECT_ROOT)
    assert calls(fake_cli) == []


def test_a_passphrase_file_that_does_not_exist_is_named(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(SetupError, match="nowhere, which is not a file"):
        check_passphrase(
            STACKS_DIR / "Pulumi.dev.yaml",
            "file://~",
            {"PULUMI_CONFIG_PASSPHRASE_FILE": str(missing)},
        )


def test_a_stack_file_naming_another_secrets_provider_needs_no_passphrase(tmp_path):
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(
        "secretsprovider: awskms://alias/orthgate\n" + (STACKS_DIR / "Pulumi.dev.yaml").read_text()
    )
    check_passphrase(stack_file, "s3://state-bucket", {})


def test_a_refused_config_stops_before_the_cli_runs(fake_cli, tmp_path):
    project = tmp_path / "project"
    (project / "stacks").mkdir(parents=True)
    (project / "Pulumi.yaml").write_text((PROJECT_ROOT / "Pulumi.yaml").read_text())
    text = (
        (STACKS_DIR / "Pulumi.dev.yaml")
        .read_text()
        .replace("natGateways: none", "natGateways: two")
    )
    (project / "stacks" / "Pulumi.dev.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"orthgate:network\.natGateways"):
        open_stack("dev", project_dir=project)
    assert calls(fake_cli) == []


def test_without_the_cli_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SetupError, match=r"not installed on PATH: install the Pulumi CLI"):
        open_stack("dev", project_dir=PROJECT_ROOT)
    with pytest.raises(SetupError, match="at /opt/none/bin/pulumi"):
        pulumi_command(pulumi_root=Path("/opt/none"))


def test_an_unknown_stack_lists_the_stacks_that_have_a_file(fake_cli):
    with pytest.raises(StackNotFound, match="dev, prod"):
        open_stack("staging", project_dir=PROJECT_ROOT)


@pytest.mark.parametrize(
    ("stderr", "advice"),
    [
        ("error: passphrase must be set with PULUMI_CONFIG_PASSPHRASE", "passphrase is missing"),
        (
            "error: getting secrets manager: incorrect passphrase, "
            "please set PULUMI_CONFIG_PASSPHRASE",
            "passphrase is missing or wrong",
        ),
        (
            "error: unable to validate AWS credentials.\nNo valid credential sources found",
            "AWS credentials are missing",
        ),
        ("error: PULUMI_ACCESS_TOKEN must be set for login", "no Pulumi backend"),
    ],
)
def test_the_cli_s_failures_are_explained(fake_cli, monkeypatch, stderr, advice):
    stack = open_stack("dev", project_dir=PROJECT_ROOT)
    monkeypatch.setenv("FAKE_PULUMI_STDERR", stderr)
    with pytest.raises(SetupError, match=advice) as caught:
        stack.preview()
    assert stderr.splitlines()[-1] in str(caught.value)  # what the CLI said is kept
    preview = calls(fake_cli)[-1]
    assert preview["argv"][:2] == ["--non-interactive", "preview"]
    assert preview["cwd"] == str(PROJECT_ROOT)


def test_an_unexplained_cli_failure_is_raised_as_it_is(fake_cli, monkeypatch):
    stack = open_stack("dev", project_dir=PROJECT_ROOT)
    monkeypatch.setenv("FAKE_PULUMI_STDERR", "error: something else entirely")
    with pytest.raises(auto.CommandError, match="something else entirely"):
        stack.up()


def test_an_inline_program_gets_the_program_and_the_config_the_cli_would_pass():
    inline = inline_program(str(STACKS_DIR / "Pulumi.prod.yaml"))
    assert inline.program is program
    assert inline.project_name == "orthgate"
    expected = read_stack_file(STACKS_DIR / "Pulumi.prod.yaml")
    assert set(inline.config) == set(expected)
    assert json.loads(inline.config["orthgate:network"].value) == expected["orthgate:network"]
    assert inline.config["aws:region"].value == "eu-central-1"
    # The program reads these texts as it reads what the CLI passes.
    as_passed = {key: value.value for key, value in inline.config.items()}
    assert validate_config(as_passed) == inline.settings


def test_preview_and_up_run_under_the_projects_policy_pack(fake_cli):
    stack = open_stack("prod", project_dir=PROJECT_ROOT)
    # The fake CLI writes no engine events; only its arguments matter here.
    with pytest.raises(RuntimeError, match="summary event"):
        stack.preview()
    with contextlib.suppress(Exception):
        stack.up()
    runs = [c["argv"] for c in calls(fake_cli) if c["argv"][1] in ("preview", "up")]
    assert [argv[1] for argv in runs] == ["preview", "up"]
    for argv in runs:
        assert argv[argv.index("--policy-pack") + 1] == str(PROJECT_ROOT / "policy")
        config = argv[argv.index("--policy-pack-config") + 1]
        assert config.endswith("policy-config.prod.json")
        assert not Path(config).exists()  # written for the run, then removed


def test_the_policy_pack_can_be_left_out(fake_cli):
    stack = open_stack("dev", project_dir=PROJECT_ROOT)
    with pytest.raises(RuntimeError, match="summary event"):
        stack.preview(guardrails=False)
    assert "--policy-pack" not in calls(fake_cli)[-1]["argv"]
