"""The `orthgate` command as an operator meets it, with no Pulumi CLI on PATH."""

from __future__ import annotations

import json
import shutil
import stat

import pytest

from orthgate.cli import build_parser, main
from orthgate.commands import COMMAND_MODULES
from tests.harness.pulumi_run import PROJECT_ROOT, STACKS_DIR

PROD = STACKS_DIR / "Pulumi.prod.yaml"


@pytest.fixture(autouse=True)
def no_pulumi_cli(tmp_path, monkeypatch):
    """Every command here must work (or say what is missing) without the Pulumi CLI."""
    empty = tmp_path / "no-pulumi-here"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.chdir(PROJECT_ROOT)
    monkeypatch.delenv("ORTHGATE_PROJECT_DIR", raising=False)


def subcommands() -> dict:
    parser = build_parser()
    [action] = [a for a in parser._actions if a.dest == "command"]
    return action.choices


def test_every_command_has_help_with_an_example(capsys):
    commands = subcommands()
    assert {"validate", "plan", "diff", "up", "preview", "destroy", "profile", "bundle"} <= set(
        commands
    )
    assert len(COMMAND_MODULES) == len(set(COMMAND_MODULES))

    def leaves(name, parser):
        nested = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
        if not nested:
            yield name, parser
        for action in nested:
            for child, sub in action.choices.items():
                yield from leaves(f"{name} {child}", sub)

    for name, parser in commands.items():
        for full, leaf in leaves(name, parser):
            text = leaf.format_help()
            assert "example" in text, f"`orthgate {full} --help` shows no example"
            assert f"orthgate {name}" in text.split("example", 1)[1], full
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    assert "orthgate plan prod" in capsys.readouterr().out


def test_validate_checks_every_shipped_stack_offline(capsys):
    assert main(["validate"]) == 0
    out = capsys.readouterr().out
    assert "Pulumi.dev.yaml: valid" in out
    assert "Pulumi.prod.yaml: valid" in out


def test_validate_prints_the_refusals_pulumi_up_would(tmp_path, capsys):
    broken = tmp_path / "Pulumi.prod.yaml"
    broken.write_text(
        PROD.read_text()
        .replace("natGateways: perAz", "natGateways: everywhere")
        .replace("aeTitle: MR_SCANNER_1", "aeTitle: CT_SCANNER_1")
    )
    assert main(["validate", str(broken)]) == 1
    err = capsys.readouterr().err
    assert "orthgate:network.natGateways" in err
    assert "nothing was deployed" in err
    assert main(["validate", "--json", str(broken)]) == 1
    [result] = json.loads(capsys.readouterr().out)
    assert result["valid"] is False
    assert "orthgate:network.natGateways" in {p["key"] for p in result["problems"]}


def test_a_file_the_pulumi_cli_would_not_read_is_refused_as_such(tmp_path, capsys):
    broken = tmp_path / "Pulumi.dev.yaml"
    broken.write_text("config:\n  orthgate:environment: dev\n  orthgate:environment: prd\n")
    assert main(["validate", str(broken)]) == 1
    assert "already defined" in capsys.readouterr().err
    # A control character (a pasted terminal colour, say) is refused in words too.
    pasted = tmp_path / "Pulumi.pasted.yaml"
    pasted.write_text("config:\n  orthgate:environment: dev # \x1b[31m\n")
    assert main(["validate", "--json", str(pasted), str(broken)]) == 1
    results = json.loads(capsys.readouterr().out)
    assert [r["valid"] for r in results] == [False, False]
    assert "unacceptable character" in results[0]["problems"][0]["rule"]


def test_an_unknown_stack_names_the_ones_there_are(capsys):
    assert main(["plan", "staging"]) == 2
    assert "stacks with a file: dev, prod" in capsys.readouterr().err


def test_cloud_commands_say_how_to_install_the_cli(capsys):
    assert main(["up", "dev", "--yes"]) == 2
    err = capsys.readouterr().err
    assert "the Pulumi CLI is not installed" in err
    assert "get.pulumi.com" in err


OUTPUTS = {
    "clientVpnProfiles": {"reading-room-1": "client\n<key>\nPRIVATE\n</key>\n"},
    "dicomProxyBundles": {
        "north-clinic": {
            "docker-compose.yml": "services: {}\n",
            "tls/site.key": "PRIVATE KEY\n",
        }
    },
}


@pytest.fixture
def outputs_file(tmp_path):
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(OUTPUTS))
    return path


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_profile_is_written_owner_only_and_never_over_a_file(tmp_path, outputs_file, capsys):
    dest = tmp_path / "ws.ovpn"
    args = ["profile", "prod", "reading-room-1", str(dest), "--outputs", str(outputs_file)]
    assert main(args) == 0
    assert dest.read_text() == OUTPUTS["clientVpnProfiles"]["reading-room-1"]
    assert mode(dest) == 0o600
    dest.write_text("kept")
    assert main(args) == 2
    assert dest.read_text() == "kept"
    assert main([*args, "--force"]) == 0
    assert main(["profile", "prod", "nobody", "--outputs", str(outputs_file)]) == 2
    assert "workstations: reading-room-1" in capsys.readouterr().err


def test_a_bundle_is_written_with_its_key_owner_only(tmp_path, outputs_file, capsys):
    dest = tmp_path / "north"
    assert main(["bundle", "prod", "north-clinic", str(dest), "--outputs", str(outputs_file)]) == 0
    assert mode(dest) == 0o700
    assert mode(dest / "tls" / "site.key") == 0o600
    assert mode(dest / "docker-compose.yml") == 0o644
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"dicomProxyBundles": "[secret]"}))
    assert (
        main(["bundle", "prod", "north-clinic", str(tmp_path / "x"), "--outputs", str(secret)]) == 2
    )
    assert "--show-secrets" in capsys.readouterr().err


def test_the_makefile_alias_still_writes_a_bundle(tmp_path, outputs_file):
    from tools.proxy_bundle import main as alias

    dest = tmp_path / "site"
    assert (
        alias(["north-clinic", str(dest), "--stack", "prod", "--outputs", str(outputs_file)]) == 0
    )
    assert (dest / "tls" / "site.key").read_text() == "PRIVATE KEY\n"


def test_the_project_is_found_from_a_subdirectory_and_from_elsewhere(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(PROJECT_ROOT / "stacks")
    assert main(["validate", "dev"]) == 0
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "dev"]) == 2
    assert "ORTHGATE_PROJECT_DIR" in capsys.readouterr().err
    assert main(["--project-dir", str(PROJECT_ROOT), "validate", "dev"]) == 0
    monkeypatch.setenv("ORTHGATE_PROJECT_DIR", str(PROJECT_ROOT))
    assert main(["validate", "dev"]) == 0
    assert shutil.which("pulumi") is None


def test_a_key_never_lands_in_an_open_file_nor_through_a_link(tmp_path, outputs_file, capsys):
    source = ["--outputs", str(outputs_file)]
    open_file = tmp_path / "open.ovpn"
    open_file.write_text("old")
    open_file.chmod(0o644)
    assert main(["profile", "prod", "reading-room-1", str(open_file), *source, "--force"]) == 0
    assert mode(open_file) == 0o600
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("not yours")
    link = tmp_path / "link.ovpn"
    link.symlink_to(elsewhere)
    assert main(["profile", "prod", "reading-room-1", str(link), *source, "--force"]) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert elsewhere.read_text() == "not yours"
    # A bundle folder whose subfolder points elsewhere is refused too.
    dest = tmp_path / "bundle"
    dest.mkdir()
    (tmp_path / "outside").mkdir()
    (dest / "tls").symlink_to(tmp_path / "outside")
    assert main(["bundle", "prod", "north-clinic", str(dest), *source, "--force"]) == 2
    assert not (tmp_path / "outside" / "site.key").exists()


def test_a_forced_bundle_names_the_files_it_left(tmp_path, outputs_file, capsys):
    dest = tmp_path / "site"
    dest.mkdir()
    (dest / "notes.txt").write_text("the site's own")
    assert main(["bundle", "prod", "north-clinic", str(dest), "--outputs", str(outputs_file),
                 "--force"]) == 0  # fmt: skip
    assert "not part of this bundle: notes.txt" in capsys.readouterr().err


def test_schema_and_reference_check_the_committed_files_without_the_cli(capsys):
    assert main(["schema", "--check"]) == 0
    assert main(["reference", "--check"]) == 0


def test_policy_config_prints_the_packs_settings_for_a_stack(tmp_path, capsys):
    assert main(["policy-config", "prod"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert config["dicom-ingress-restricted"]["dicomTlsPort"] == 11112
    assert config["rds-production-backups-and-deletion-protection"] == {"production": True}
    moved = tmp_path / "Pulumi.prod.yaml"
    moved.write_text(
        PROD.read_text().replace("placement: public", "placement: public\n    dicomTlsPort: 2762")
    )
    assert main(["policy-config", str(moved)]) == 0
    assert json.loads(capsys.readouterr().out)["dicom-ingress-restricted"]["dicomTlsPort"] == 2762
    broken = tmp_path / "Pulumi.dev.yaml"
    broken.write_text(PROD.read_text().replace("natGateways: perAz", "natGateways: everywhere"))
    assert main(["policy-config", str(broken)]) == 1
    assert "orthgate:network.natGateways" in capsys.readouterr().err
