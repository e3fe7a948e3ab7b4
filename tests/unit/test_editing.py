"""Stack-file editing (orthgate.editing, orthgate site|workstation|modality|config): on copies
of the shipped stack files, comments and layout survive, a refused edit changes no byte, and
the result validates and evaluates with the new site and workstation declared."""

from __future__ import annotations

import argparse
import difflib
import shutil
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from orthgate import editing
from orthgate.commands import edit as edit_command
from orthgate.components.config import ConfigError
from orthgate.editing import EditError, ModalitySpec, SiteSpec
from orthgate.stack_file import StackFileError, load_go_yaml, read_stack_config
from orthgate.validation import validate_file
from tests.harness.pulumi_run import STACKS_DIR, evaluate, read_stack_file

PROD = STACKS_DIR / "Pulumi.prod.yaml"
DEV = STACKS_DIR / "Pulumi.dev.yaml"
WEST = SiteSpec(
    name="west-clinic",
    source_cidrs=["198.51.100.64/29"],
    ae_title="WEST_GW",
    listen_address="192.168.60.10",
    modalities=[ModalitySpec("us-west-1", "US_WEST_1")],
)
VPN_RANGE = "192.168.0.0/22"


@pytest.fixture
def prod(tmp_path):
    return shutil.copy(PROD, tmp_path / "Pulumi.prod.yaml")


@pytest.fixture
def dev(tmp_path):
    return shutil.copy(DEV, tmp_path / "Pulumi.dev.yaml")


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """(lines removed, lines added), comparing line by line."""
    removed, added = [], []
    for line in difflib.ndiff(before.splitlines(), after.splitlines()):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


def comments(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lstrip().startswith("#")]


# --- layout --------------------------------------------------------------------------------


def test_adding_a_site_only_adds_its_lines_at_the_end_of_the_list(prod):
    before = prod.read_text()
    result = editing.add_site(prod, WEST)
    after = prod.read_text()
    assert result.written
    assert result.after == after
    removed, added = changed_lines(before, after)
    assert removed == []
    assert added == [
        "    - name: west-clinic",
        "      sourceCidrs: [198.51.100.64/29]",
        "      aeTitle: WEST_GW",
        "      listenAddress: 192.168.60.10",
        "      modalities:",
        "        - name: us-west-1",
        "          aeTitle: US_WEST_1",
    ]
    # Appended after the last line, with the file's own indentation.
    assert after == before + "\n".join(added) + "\n"
    config = read_stack_file(prod)
    assert config["orthgate:dicomProxies"][-1]["name"] == "west-clinic"


def test_a_comment_after_the_last_entry_stays_before_what_it_describes(prod):
    """ruamel.yaml keeps the comment block before orthgate:dicomProxies with the last
    modality: a new modality must go above it, not under it."""
    before = prod.read_text()
    editing.add_modality(prod, ModalitySpec("ct-scanner-2", "CT_SCANNER_2", "tls"))
    after = prod.read_text()
    assert comments(after) == comments(before)
    lines = after.splitlines()
    new = lines.index("      - name: ct-scanner-2")
    assert lines[new - 1] == "        connection: tls"  # right after dx-room-2
    assert lines[new + 3].startswith("  # A clinic without a VPN")
    assert changed_lines(before, after) == (
        [],
        ["      - name: ct-scanner-2", "        aeTitle: CT_SCANNER_2", "        connection: tls"],
    )


def test_removing_the_last_modality_keeps_the_comment_that_followed_it(prod):
    before = prod.read_text()
    editing.remove_modality(prod, "dx-room-2")
    after = prod.read_text()
    assert comments(after) == comments(before)
    assert changed_lines(before, after) == (
        ["      - name: dx-room-2", "        aeTitle: DX_ROOM_2", "        connection: tls"],
        [],
    )
    names = [m["name"] for m in read_stack_file(prod)["orthgate:orthanc"]["modalities"]]
    assert names == ["ct-scanner-1", "mr-scanner-1"]


def test_add_then_remove_a_site_gives_back_the_same_bytes(prod):
    original = prod.read_bytes()
    editing.add_site(prod, WEST)
    assert prod.read_bytes() != original
    editing.remove_site(prod, "west-clinic")
    assert prod.read_bytes() == original


def test_removing_a_site_removes_only_its_lines_and_its_own_comments(prod):
    before = prod.read_text()
    editing.remove_site(prod, "north-clinic")
    after = prod.read_text()
    removed, added = changed_lines(before, after)
    assert added == ["  orthgate:dicomProxies: []"]
    assert removed[0] == "  orthgate:dicomProxies:"
    assert all(line.startswith("    ") for line in removed[1:])  # only the site's own lines
    assert comments(before)[: len(comments(after))] == comments(after)
    assert read_stack_file(prod)["orthgate:dicomProxies"] == []


def test_the_schema_modeline_and_key_order_survive(dev):
    modeline = "# yaml-language-server: $schema=../orthgate/data/stack-config.schema.json\n"
    dev.write_text(modeline + dev.read_text())
    before = dev.read_text()
    editing.set_value(dev, "network.interfaceEndpoints", ["kms", "ssm"])
    after = dev.read_text()
    assert after.startswith(modeline)
    assert changed_lines(before, after) == (
        ["    interfaceEndpoints: []"],
        ["    interfaceEndpoints: [kms, ssm]"],
    )
    assert list(read_stack_file(dev)) == list(read_stack_config(before))


def test_indentation_is_read_from_the_file_not_assumed(dev):
    # The same configuration with sequences flush with their key.
    text = (
        dev.read_text()
        .replace("      - name:", "    - name:")
        .replace("        aeTitle:", "      aeTitle:")
    )
    text = text.replace("        connection:", "      connection:")
    dev.write_text(text)
    assert read_stack_file(dev) == read_stack_file(DEV)
    editing.add_modality(dev, ModalitySpec("us-1", "US_1"))
    removed, added = changed_lines(text, dev.read_text())
    assert (removed, added) == ([], ["    - name: us-1", "      aeTitle: US_1"])


def test_crlf_line_ends_a_bom_and_the_file_mode_are_kept(dev):
    dev.write_bytes(b"\xef\xbb\xbf" + DEV.read_text().replace("\n", "\r\n").encode())
    dev.chmod(0o640)
    editing.set_value(dev, "aws:region", "us-east-1")
    data = dev.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert data.count(b"\n") == data.count(b"\r\n") == DEV.read_bytes().count(b"\n")
    assert stat.S_IMODE(dev.stat().st_mode) == 0o640
    assert read_stack_file(dev)["aws:region"] == "us-east-1"


# --- refusals leave every byte ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "error", "said"),
    [
        pytest.param(
            lambda p: editing.add_site(p, replace(WEST, name="north-clinic")),
            EditError,
            "site north-clinic already exists (sites: north-clinic)",
            id="duplicate-site",
        ),
        pytest.param(
            lambda p: editing.add_site(p, replace(WEST, source_cidrs=["x"])),
            ConfigError,
            "orthgate:dicomProxies[1].sourceCidrs[0]",
            id="bad-cidr",
        ),
        pytest.param(
            lambda p: editing.set_value(p, "clientVpn.clientCIDR", VPN_RANGE),
            ConfigError,
            "did you mean clientCidr?",
            id="unknown-key-path",
        ),
        pytest.param(
            # A cross-key rule: the proxy's AE title is already a modality's.
            lambda p: editing.add_site(p, replace(WEST, ae_title="MR_SCANNER_1")),
            ConfigError,
            "is already registered at orthgate:orthanc.modalities[1].aeTitle",
            id="cross-key",
        ),
        pytest.param(
            lambda p: editing.remove_site(p, "south-clinic"),
            EditError,
            "no site named south-clinic in orthgate:dicomProxies (sites: north-clinic)",
            id="no-such-site",
        ),
        pytest.param(
            lambda p: editing.remove_modality(p, "us-north-1", site="north-clinic"),
            ConfigError,
            "is an empty list",
            id="last-proxy-modality",
        ),
        pytest.param(
            lambda p: editing.add_workstation(p, "reading-room-1"),
            EditError,
            "orthgate:clientVpn is not enabled",
            id="workstation-vpn-disabled",
        ),
        pytest.param(
            lambda p: editing.add_workstation(p, "reading-room-1", enable=True),
            ConfigError,
            "orthgate:clientVpn.clientCidr: is required when the Client VPN is enabled",
            id="workstation-no-client-cidr",
        ),
        pytest.param(
            lambda p: editing.set_value(p, "network.siteToSiteVpns[2].bgpAsn", 65011),
            EditError,
            "the list has 1 entry; use an index up to 1",
            id="index-past-the-end",
        ),
        pytest.param(
            lambda p: editing.set_value(p, "environment.name", "x"),
            EditError,
            'orthgate:environment is "prd", not an object',
            id="into-a-scalar",
        ),
        pytest.param(
            lambda p: editing.set_value(p, "orthanc.instanceType", "m6i.large"),
            EditError,
            'orthgate:orthanc.instanceType is already "m6i.large"',
            id="no-op-set",
        ),
        pytest.param(
            lambda p: editing.unset_value(p, "clientVpn.clientCidr"),
            EditError,
            "orthgate:clientVpn.clientCidr is not set",
            id="no-op-unset",
        ),
        pytest.param(
            lambda p: editing.set_value(p, "network.availabilityZones", 1 << 63),
            StackFileError,
            "does not fit a signed 64-bit integer",
            id="uint64",
        ),
    ],
)
def test_a_refused_edit_leaves_the_file_byte_identical(prod, edit, error, said):
    original = prod.read_bytes()
    with pytest.raises(error) as raised:
        edit(prod)
    assert said in str(raised.value)
    assert prod.read_bytes() == original
    assert sorted(p.name for p in prod.parent.iterdir()) == [prod.name]  # no temp file left


def test_revocations_naming_a_removed_site_are_kept(prod):
    editing.set_value(
        prod, "orthanc.revokedCertificates", [{"sender": "north-clinic", "serial": "0a1b"}]
    )
    editing.remove_site(prod, "north-clinic")
    config = read_stack_file(prod)
    assert config["orthgate:orthanc"]["revokedCertificates"] == [
        {"sender": "north-clinic", "serial": "0a1b"}
    ]
    validate_file(prod)


# --- values: quoting and key paths -----------------------------------------------------------


# ruamel.yaml on its own would write 0b-101 and 2001-1-1 plain: yaml.v3 reads -5 and a time.
@pytest.mark.parametrize(
    "text",
    ["NO", "yes", "0104", "1:20", "true", "~", "", "2024-01-01", "0x1F", "0b-101", "2001-1-1"],
)
def test_text_yaml_v3_would_read_otherwise_is_written_so_the_cli_reads_the_same_text(dev, text):
    # The login banner takes any text, so the model accepts every one of these.
    result = editing.set_value(dev, "clientVpn.loginBanner", text)
    assert read_stack_file(dev)["orthgate:clientVpn"] == {"loginBanner": text}
    (line,) = [line for line in result.after.splitlines() if "loginBanner" in line]
    value = line.split(": ", 1)[1] if ": " in line else ""
    assert load_go_yaml(value) == text  # what yaml.v3 reads back


def test_set_on_nested_and_indexed_paths(prod):
    before = read_stack_file(prod)
    editing.set_value(prod, "orthgate:network.siteToSiteVpns[0].bgpAsn", 65011)
    editing.set_value(prod, "clientVpn.clientCidr", VPN_RANGE)  # creates orthgate:clientVpn
    editing.set_value(prod, "orthanc.modalities[3]", {"name": "us-1", "aeTitle": "US_1"})
    editing.set_value(prod, "aws:region", "us-east-1")
    after = read_stack_file(prod)
    expected = before
    expected["orthgate:network"]["siteToSiteVpns"][0]["bgpAsn"] = 65011
    expected["orthgate:clientVpn"] = {"clientCidr": VPN_RANGE}
    expected["orthgate:orthanc"]["modalities"].append({"name": "us-1", "aeTitle": "US_1"})
    expected["aws:region"] = "us-east-1"
    assert after == expected
    validate_file(prod)


def test_key_paths():
    assert editing.parse_key_path("clientVpn.clientCidr") == (
        "orthgate:clientVpn",
        ("clientCidr",),
    )
    assert editing.parse_key_path("orthgate:network.siteToSiteVpns[0].bgpAsn") == (
        "orthgate:network",
        ("siteToSiteVpns", 0, "bgpAsn"),
    )
    assert editing.parse_key_path('aws:defaultTags["a.b"]') == ("aws:defaultTags", ("a.b",))
    assert editing.parse_key_path("aws:region") == ("aws:region", ())
    with pytest.raises(EditError, match="cannot read the key path"):
        editing.parse_key_path("network..vpcCidr")


def test_dry_run_writes_nothing_and_shows_the_diff(prod):
    original = prod.read_bytes()
    result = editing.remove_modality(prod, "mr-scanner-1", write=False)
    assert prod.read_bytes() == original
    assert not result.written
    assert "-      - name: mr-scanner-1\n" in result.diff()


# --- the commands ----------------------------------------------------------------------------


def run(argv):
    parser = argparse.ArgumentParser(prog="orthgate")
    parser.add_argument("--project-dir", type=Path)
    edit_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)


def test_site_add_command_writes_and_says_what_to_do_next(prod, capsys):
    status = run(
        ["site", "add", str(prod), "west-clinic", "--source-cidr", "198.51.100.64/29",
         "--ae-title", "WEST_GW", "--listen-address", "192.168.60.10",
         "--modality", "us-west-1=US_WEST_1"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0
    assert "added site west-clinic" in out
    assert "orthgate bundle prod west-clinic DEST" in out
    assert read_stack_file(prod)["orthgate:dicomProxies"][1]["modalities"] == [
        {"name": "us-west-1", "aeTitle": "US_WEST_1"}
    ]


def test_a_refused_command_prints_the_refusal_and_exits_1(prod, capsys):
    original = prod.read_bytes()
    status = run(["config", "set", str(prod), "clientVpn.enabled", "true"])
    err = capsys.readouterr().err
    assert status == 1
    assert "not changed" in err
    assert "orthgate:clientVpn.clientCidr: is required when the Client VPN is enabled" in err
    assert prod.read_bytes() == original


def test_config_set_reads_the_value_as_yaml_unless_string(dev, capsys):
    assert run(["config", "set", str(dev), "network.interfaceEndpoints", "[kms, ssm]"]) == 0
    assert run(["config", "set", str(dev), "clientVpn.loginBanner", "0104", "--string"]) == 0
    assert run(["config", "set", str(dev), "network.flowLogRetentionDays", "60"]) == 0
    config = read_stack_file(dev)
    assert config["orthgate:network"]["interfaceEndpoints"] == ["kms", "ssm"]
    assert config["orthgate:network"]["flowLogRetentionDays"] == 60
    assert config["orthgate:clientVpn"]["loginBanner"] == "0104"


def test_dry_run_command_prints_a_diff(prod, capsys):
    original = prod.read_bytes()
    assert run(["modality", "remove", str(prod), "us-north-1", "--site", "north-clinic",
                "--dry-run"]) == 1  # fmt: skip
    assert run(["workstation", "add", str(prod), "rr-1", "--enable", "--client-cidr",
                VPN_RANGE, "--dry-run"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "+    workstations: [rr-1]" in out
    assert "(not written)" in out
    assert prod.read_bytes() == original


def test_a_stack_name_is_resolved_in_the_project(tmp_path, capsys):
    (tmp_path / "Pulumi.yaml").write_text("name: orthgate\nstackConfigDir: stacks\n")
    (tmp_path / "stacks").mkdir()
    shutil.copy(DEV, tmp_path / "stacks" / "Pulumi.dev.yaml")
    status = run(["--project-dir", str(tmp_path), "config", "unset", "dev", "orthanc.placement"])
    assert status == 0
    assert (
        "placement"
        not in read_stack_file(tmp_path / "stacks" / "Pulumi.dev.yaml")["orthgate:orthanc"]
    )
    assert run(["--project-dir", str(tmp_path), "config", "unset", "qa", "x"]) == 2
    assert "stacks with a file: dev" in capsys.readouterr().err


def test_every_edit_parser_has_a_description_and_an_example():
    parser = argparse.ArgumentParser(prog="orthgate")
    subparsers = parser.add_subparsers()
    edit_command.register(subparsers)
    seen = 0
    for group in ("site", "workstation", "modality", "config"):
        top = subparsers.choices[group]
        assert "orthgate " in top.epilog
        (actions,) = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
        for leaf in actions.choices.values():
            assert leaf.description
            assert "orthgate " in leaf.epilog
            seen += 1
    assert seen == 8


# --- the edited stack evaluates --------------------------------------------------------------


@pytest.fixture(scope="module")
def edited_prod(tmp_path_factory):
    path = shutil.copy(PROD, tmp_path_factory.mktemp("edited") / "Pulumi.prod.yaml")
    editing.add_site(path, WEST)
    editing.add_workstation(path, "reading-room-1", enable=True, client_cidr=VPN_RANGE)
    return evaluate(read_stack_file(path), stack="prod")


def test_the_edited_stack_declares_the_new_site(edited_prod):
    proxies = {r.name for r in edited_prod.of_type("orthgate:dicom:DicomProxyAccess")}
    assert proxies == {"proxy-north-clinic", "proxy-west-clinic"}
    assert set(edited_prod.outputs["dicomProxySites"]) == {"north-clinic", "west-clinic"}


def test_the_edited_stack_issues_the_new_workstation_a_profile(edited_prod):
    assert "clientVpnProfiles" in edited_prod.secret_outputs
    profiles = edited_prod.outputs["clientVpnProfiles"]
    assert set(profiles) == {"reading-room-1"}
    assert "<cert>\n" in profiles["reading-room-1"]


def test_edits_made_at_the_same_time_all_land(prod):
    import threading

    errors = []

    def add(name: str) -> None:
        try:
            editing.add_workstation(prod, name, enable=True, client_cidr="192.168.0.0/22")
        except (EditError, ConfigError) as error:  # a refusal would say why; none is expected
            errors.append(error)

    threads = [threading.Thread(target=add, args=(f"ws-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    workstations = read_stack_file(prod)["orthgate:clientVpn"]["workstations"]
    assert sorted(workstations) == [f"ws-{i}" for i in range(4)]


def test_a_file_changed_under_the_edit_is_not_overwritten(prod, monkeypatch):
    from orthgate.editing import stack_edit

    real = stack_edit.validate_config

    def meanwhile(config):
        prod.write_text(prod.read_text() + "# an operator's edit\n")
        return real(config)

    monkeypatch.setattr(stack_edit, "validate_config", meanwhile)
    with pytest.raises(EditError, match="changed while the edit was being checked"):
        editing.remove_site(prod, "north-clinic")
    assert prod.read_text().endswith("# an operator's edit\n")
    assert "north-clinic" in prod.read_text()


def test_a_read_only_file_is_refused_and_the_owner_is_kept(prod):
    import os

    prod.chmod(0o444)
    before = prod.read_bytes()
    with pytest.raises(EditError, match="read-only"):
        editing.remove_site(prod, "north-clinic")
    assert prod.read_bytes() == before
    prod.chmod(0o640)
    owner = (65534, 65534) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    os.chown(prod, *owner)
    editing.remove_site(prod, "north-clinic")
    assert (prod.stat().st_uid, prod.stat().st_gid) == owner
    assert stat.S_IMODE(prod.stat().st_mode) == 0o640


def test_an_edit_waiting_on_another_gives_up_and_says_so(prod, monkeypatch):
    import fcntl
    import os

    from orthgate.editing import stack_edit

    monkeypatch.setattr(stack_edit, "LOCK_WAIT_SECONDS", 0.2)
    before = prod.read_bytes()
    holder = os.open(prod.parent, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        with pytest.raises(EditError, match="another edit of a stack file"):
            editing.remove_site(prod, "north-clinic")
    finally:
        os.close(holder)
    assert prod.read_bytes() == before
    editing.remove_site(prod, "north-clinic")  # once the other edit is done, it goes through
