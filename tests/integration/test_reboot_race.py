"""The reboot race, reproduced: after an unclean restart dockerd restarts the containers
before the secrets are back on the fresh tmpfs.

Docker used to create the missing bind source /run/orthgate/orthanc/orthanc.json as a
directory, and the secrets step then failed on it at every retry. Here the stand-in root
gets exactly that directory; then the start sequence runs as the rendered units define it
(their order from Before=/After=, their ExecStartPre=/ExecStart= commands with paths moved
under the root; dockerd and the compose plugin are stand-ins, as no Docker engine runs
here), and Debian's Orthanc and nginx start from the resulting files and take a DICOM TLS
store from a registered modality.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest
import yaml

from orthgate.components.render import paths
from tests.harness.pulumi_run import STACKS_DIR, evaluate, read_stack_file
from tests.harness.user_data import cloud_config, written_files
from tests.integration.cloud_side import FAKE_AWS, issued_client, secret_store, start_cloud_side
from tests.integration.dicom_data import make_study
from tests.integration.netlab import Lab, storescu

DEV_STACK = STACKS_DIR / "Pulumi.dev.yaml"
DOCKER = "docker.service"
# Targets that start the units enabled at boot (docker.service pulls in what it wants).
BOOT_TARGETS = {"multi-user.target", DOCKER}
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Stands in for the compose plugin: records each call and, for `up`, does what the engine
# does with each bind mount: refuse a missing source when create_host_path is false,
# create it as a directory otherwise (the short syntax).
FAKE_COMPOSE = """#!{python}
import json, os, sys
import yaml
root, calls = {root!r}, {calls!r}
args = sys.argv[1:]
with open(calls, "a") as out:
    out.write(json.dumps(args) + "\\n")
if "up" in args:
    compose = yaml.safe_load(open(args[args.index("--file") + 1]))
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            if isinstance(volume, str):
                os.makedirs(root + volume.split(":")[0], exist_ok=True)
            elif not os.path.exists(root + volume["source"]):
                if volume.get("bind", {{}}).get("create_host_path", True):
                    os.makedirs(root + volume["source"])
                else:
                    sys.exit("invalid mount config for type bind: bind source path does "
                             "not exist: " + volume["source"])
"""


# --- reading the rendered units ----------------------------------------------------------------


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """section -> key -> every value given (keys may repeat; no line continuations)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        assert not line.endswith("\\"), f"line continuations are not parsed here: {line}"
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        assert current is not None, f"a setting outside any section: {line}"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def words(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> set[str]:
    return {word for value in unit.get(section, {}).get(key, []) for word in value.split()}


def rendered_units(files: dict[str, str]) -> dict[str, dict[str, dict[str, list[str]]]]:
    prefix = paths.SYSTEMD_UNIT_DIR + "/"
    return {
        path.removeprefix(prefix): parse_unit(text)
        for path, text in files.items()
        if path.startswith(prefix)
    }


def started_at_boot(units: dict) -> set[str]:
    """Our units an enabled [Install] section starts at boot, and docker.service."""
    return {
        name for name, unit in units.items() if words(unit, "Install", "WantedBy") & BOOT_TARGETS
    } | {DOCKER}


def start_order(units: dict, names: Iterable[str]) -> list[str]:
    """``names`` in the order systemd starts them, from Before= and After= (either side)."""
    names = set(names)
    after: dict[str, set[str]] = {name: set() for name in names}  # name -> what comes first
    for name, unit in units.items():
        if name not in names:
            continue
        for other in words(unit, "Unit", "After") & names:
            after[name].add(other)
        for other in words(unit, "Unit", "Before") & names:
            after[other].add(name)
    order: list[str] = []
    while after:
        ready = sorted(name for name, first in after.items() if not first - set(order))
        assert ready, f"an ordering cycle among {sorted(after)}"
        order.append(ready[0])
        del after[ready[0]]
    return order


def commands(unit: dict, root: Path) -> list[list[str]]:
    """ExecStartPre= then ExecStart=, each absolute path moved under ``root``."""
    service = unit["Service"]
    argvs = []
    for line in [*service.get("ExecStartPre", []), *service.get("ExecStart", [])]:
        argv = shlex.split(line)
        assert argv[0].startswith("/"), f"no systemd prefixes expected: {line}"
        argvs.append([relocate(arg, root) if arg.startswith("/") else arg for arg in argv])
    return argvs


def relocate(path: str, root: Path) -> str:
    return str(root / path.lstrip("/"))


def relocate_all(value, root: Path):
    """Every absolute path in a JSON document moved under ``root``."""
    if isinstance(value, dict):
        return {key: relocate_all(item, root) for key, item in value.items()}
    if isinstance(value, list):
        return [relocate_all(item, root) for item in value]
    if isinstance(value, str) and value.startswith("/"):
        return relocate(value, root)
    return value


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dev_config():
    return read_stack_file(DEV_STACK)


@pytest.fixture(scope="module")
def dev_evaluation(dev_config):
    return evaluate(dev_config, stack="dev")


@pytest.fixture(scope="module")
def host_files(dev_evaluation):
    return written_files(dev_evaluation.of_type("aws:ec2/launchTemplate:LaunchTemplate")[0])


# --- the order alone ---------------------------------------------------------------------------


def test_the_secrets_are_on_tmpfs_before_dockerd_starts_and_orthanc_after_both(host_files):
    units = rendered_units(host_files)
    order = start_order(units, started_at_boot(units))
    assert order == ["orthgate-secrets.service", DOCKER, "orthgate.service"]
    secrets = units["orthgate-secrets.service"]
    [step] = secrets["Service"]["ExecStart"]
    assert shlex.split(step)[0] == paths.MATERIALIZE_SECRETS
    assert "--apply" not in step, "no reload or restart before the containers even exist"
    # The refresh is not part of the start; the timer runs it later.
    assert "orthgate-refresh.service" not in order
    refresh = units["orthgate-refresh.service"]["Service"]
    assert refresh["Restart"] == ["on-failure"], "a failed reload is retried before the timer"
    assert refresh["RestartSec"]


def test_the_boot_script_enables_every_unit_and_the_secrets_step_before_docker(host_files):
    units = rendered_units(host_files)
    installable = {name for name, unit in units.items() if "Install" in unit}
    script = host_files[paths.BOOT_SCRIPT].splitlines()
    enabled: dict[str, int] = {}
    for number, line in enumerate(script):
        argv = line.split()
        if argv[:2] == ["systemctl", "enable"]:
            for name in argv[2:]:
                enabled.setdefault(name, number)
    assert installable <= set(enabled), f"never enabled: {sorted(installable - set(enabled))}"
    assert enabled["orthgate-secrets.service"] < enabled[DOCKER]


def test_the_order_check_sees_a_unit_without_the_secrets_step(host_files):
    units = rendered_units(host_files)
    del units["orthgate-secrets.service"]
    assert start_order(units, started_at_boot(units)) == [DOCKER, "orthgate.service"]


# --- the race, for real ------------------------------------------------------------------------


def dockerd_restore_problems(compose: dict, manifest: dict, root: Path) -> list[str]:
    """What would go wrong if dockerd restarted the containers now (sources under ``root``)."""
    files = {manifest["orthancConfig"]["path"]}
    directories = {str(Path(item["path"]).parent) for item in manifest["files"]}
    problems = []
    for service, spec in compose["services"].items():
        for volume in spec.get("volumes", []):
            # The short syntax too, so that the check also reads the compose file of old.
            name = volume.split(":")[0] if isinstance(volume, str) else volume["source"]
            source = Path(relocate(name, root))
            if not source.exists():
                problems.append(f"{service}: {name} is missing")
            elif name in files and not source.is_file():
                problems.append(f"{service}: {name} is not a file")
            elif name in directories and not source.is_dir():
                problems.append(f"{service}: {name} is not a directory")
    return problems


def test_after_an_unclean_reboot_orthanc_comes_back_and_stores_over_tls(
    tmp_path_factory, dev_config, dev_evaluation, host_files
):
    template = dev_evaluation.of_type("aws:ec2/launchTemplate:LaunchTemplate")[0]
    permissions = {
        e["path"]: int(e["permissions"], 8) for e in cloud_config(template)["write_files"]
    }
    manifest = json.loads(host_files[paths.SECRETS_MANIFEST])
    compose = yaml.safe_load(host_files[paths.COMPOSE_FILE])
    units = rendered_units(host_files)
    workdir = tmp_path_factory.mktemp("reboot")
    calls = workdir / "compose-calls"
    bin_dir = workdir / "bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(FAKE_AWS)
    (bin_dir / "aws").chmod(0o755)
    store = workdir / "secret-store.json"
    store.write_text(json.dumps(secret_store(dev_evaluation)))
    # The system's PATH behind the stand-in for the AWS CLI, nothing of this shell's: the
    # scripts run by their #! lines, and a wrapper (pyenv's) may put a real aws first.
    env = {"PATH": f"{bin_dir}:{SYSTEM_PATH}", "FAKE_SECRETS": str(store)}
    config_host_path = manifest["orthancConfig"]["path"]
    seen: dict = {}

    def reboot(root: Path) -> None:
        # What the first boot left: executable scripts, the compose plugin, the data
        # volume's mount point. The manifest's paths move under the root like the units'.
        for path, mode in permissions.items():
            Path(relocate(path, root)).chmod(mode)
        plugin = Path(relocate(paths.COMPOSE_PLUGIN, root))
        plugin.parent.mkdir(parents=True, exist_ok=True)
        plugin.write_text(
            FAKE_COMPOSE.format(python=sys.executable, root=str(root), calls=str(calls))
        )
        plugin.chmod(0o755)
        Path(relocate(paths.HOST_DATA_DIR, root)).mkdir(parents=True, exist_ok=True)
        manifest_file = Path(relocate(paths.SECRETS_MANIFEST, root))
        manifest_file.write_text(json.dumps(relocate_all(manifest, root)))
        # What dockerd did with the missing bind sources on the fresh tmpfs, before the fix.
        for source in (config_host_path, paths.HOST_TLS_DIR):
            Path(relocate(source, root)).mkdir(mode=0o755, parents=True)
        assert Path(relocate(config_host_path, root)).is_dir()

        seen["order"] = start_order(units, started_at_boot(units))
        for name in seen["order"]:
            if name == DOCKER:
                # dockerd starts and restarts the containers left from before the crash.
                assert dockerd_restore_problems(compose, manifest, root) == []
                continue
            for argv in commands(units[name], root):
                # In the lab host's namespace (``cloud``, below): no network reachable.
                result = cloud.run(argv, env=env, check=False)
                assert result.returncode == 0, f"{name}: {argv}\n{result.stdout}{result.stderr}"
        seen["config"] = Path(relocate(config_host_path, root))
        seen["tls"] = Path(relocate(paths.HOST_TLS_DIR, root))

    with Lab() as lab:
        cloud = lab.host("cloud")
        modality = lab.host("modality")
        side = start_cloud_side(cloud, dev_evaluation, workdir, before_secrets=reboot)
        try:
            assert seen["order"] == ["orthgate-secrets.service", DOCKER, "orthgate.service"]
            config = seen["config"]
            assert config.is_file()
            assert config.stat().st_mode & 0o777 == 0o600
            # dockerd's directories were 0755; the secrets step made them owner-only.
            assert config.parent.stat().st_mode & 0o777 == 0o700
            assert seen["tls"].stat().st_mode & 0o777 == 0o700
            ups = [json.loads(line) for line in calls.read_text().splitlines()]
            [up] = [argv for argv in ups if "up" in argv]
            assert "--force-recreate" in up, "containers dockerd restored are recreated"

            # The dev stack's TLS modality, with the certificate the program issued it.
            [sender] = [
                m
                for m in dev_config["orthgate:orthanc"]["modalities"]
                if m.get("connection") == "tls"
            ]
            tls = issued_client(dev_evaluation, workdir / "clients", modality=sender["name"])
            study = make_study(workdir / "study", instances_per_series=3, seed=5)
            rc, output = storescu(
                modality,
                side.host.ip,
                side.tls_port,
                workdir / "study",
                calling_aet=sender["aeTitle"],
                called_aet=side.ae_title,
                tls=tls,
            )
            assert rc == 0, output
            stored = {
                side.orthanc.instance_tags(i)["SOPInstanceUID"] for i in side.orthanc.instances()
            }
            assert {record.sop_uid for record in study} <= stored
        finally:
            side.stop()
