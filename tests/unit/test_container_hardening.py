"""Every container orthgate runs, hardened: as rendered into the host's user data and into a
site's bundle (components.render.container_hardening says why each setting is what it is).

No Docker here: these check the compose files as data, against what the images write
(read in their Dockerfiles and entrypoints, cited in the module) and what orthgate itself
renders for them (nginx.conf, orthanc.json).
"""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath

import pytest
import yaml

from orthgate.components.render import container_hardening
from tests.harness.pulumi_run import STACKS_DIR, evaluate, read_stack_file
from tests.harness.user_data import deployed_orthanc_config, written_files

TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
COMPOSE = "/etc/orthgate/compose.yml"
NGINX_CONF = "/etc/orthgate/nginx.conf"

# The service keys these files may use, each one of the Compose Specification's
# (compose-spec/compose-spec schema/compose-spec.json, definitions.service.properties): a
# misspelt key (readonly, cap-drop) would be refused by `docker compose`, or worse ignored.
COMPOSE_SERVICE_KEYS = frozenset(
    {
        "image",
        "restart",
        "environment",
        "ports",
        "volumes",
        "network_mode",
        "depends_on",
        "logging",
        "command",
        "entrypoint",
        "stop_signal",
        "stop_grace_period",
        "user",
        "cap_drop",
        "cap_add",
        "security_opt",
        "read_only",
        "tmpfs",
    }
)
HARDENING_KEYS = frozenset({"user", "cap_drop", "cap_add", "security_opt", "read_only", "tmpfs"})

# What each container may keep of root's powers, and nothing else (the reasons and sources
# are in components.render.container_hardening).
CLOUD_CAPABILITIES = {
    "namespace": set(),  # holds the namespace nginx and Orthanc share: tail -f /dev/null
    "orthanc": set(),
    "nginx": {"CHOWN", "SETGID", "SETUID", "NET_BIND_SERVICE"},
}
SITE_CAPABILITIES = {"orthanc": {"DAC_READ_SEARCH"}, "forwarder": {"DAC_READ_SEARCH"}}

# Written by the orthancteam entrypoint at each start (orthanc-builder docker/orthanc:
# generateConfiguration.py writes /tmp/orthanc.json; configurator.py copies the enabled
# plugins into /run/orthanc/plugins).
ORTHANC_ENTRYPOINT_WRITES = ("/tmp/orthanc.json", "/run/orthanc/plugins/libOrthancGdcm.so")


def shipped(stack: str) -> dict:
    return read_stack_file(STACKS_DIR / f"Pulumi.{stack}.yaml")


@pytest.fixture(scope="module")
def evaluations():
    ebs_postgresql = shipped("dev")
    ebs_postgresql["orthgate:orthanc"] = {
        **ebs_postgresql["orthgate:orthanc"],
        "index": "postgresql",
    }
    return {
        # storage: ebs, index: sqlite / storage: s3, index: postgresql (a fleet, with a site
        # proxy) / storage: ebs, index: postgresql.
        "dev": evaluate(shipped("dev"), stack="dev"),
        "prod": evaluate(shipped("prod"), stack="prod"),
        "dev-postgresql": evaluate(ebs_postgresql, stack="dev"),
    }


@pytest.fixture(params=["dev", "prod", "dev-postgresql"])
def cloud(request, evaluations):
    """(compose file, nginx.conf, orthanc.json) of the stack's hosts."""
    evaluation = evaluations[request.param]
    files = written_files(evaluation.one(TEMPLATE))
    return yaml.safe_load(files[COMPOSE]), files[NGINX_CONF], deployed_orthanc_config(evaluation)


@pytest.fixture(scope="module")
def site(evaluations):
    """The shipped production stack's site: its configuration and its bundle's files."""
    (proxy,) = shipped("prod")["orthgate:dicomProxies"]
    return proxy, evaluations["prod"].outputs["dicomProxyBundles"][proxy["name"]]


@pytest.fixture
def site_compose(site):
    return yaml.safe_load(site[1]["docker-compose.yml"])


def _writable_mounts(service: dict) -> dict[str, str]:
    """Container path -> what it is, for everything the service can write to."""
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target, *mode = volume.split(":")
            if "ro" not in (mode[0].split(",") if mode else []):
                mounts[target] = f"volume {source}"
        elif not volume.get("read_only", False):
            mounts[volume["target"]] = f"{volume['type']} {volume.get('source')}"
    for entry in service.get("tmpfs", []):
        mounts[entry.split(":", 1)[0]] = "tmpfs"
    return mounts


def _covered(path: str, service: dict) -> str | None:
    """The writable mount ``path`` lies on, or None (the read-only root)."""
    inside = [m for m in _writable_mounts(service) if PurePosixPath(path).is_relative_to(m)]
    return max(inside, key=len) if inside else None


def _tmpfs_options(service: dict) -> dict[str, dict[str, str]]:
    found = {}
    for entry in service.get("tmpfs", []):
        path, _, options = entry.partition(":")
        found[path] = dict(o.partition("=")[::2] for o in options.split(",") if o)
    return found


def _hardened(services: dict, capabilities: dict[str, set[str]]) -> None:
    assert set(services) == set(capabilities)
    for name, service in services.items():
        assert set(service) <= COMPOSE_SERVICE_KEYS, name
        assert service["cap_drop"] == ["ALL"], name
        assert set(service.get("cap_add", [])) == capabilities[name], name
        assert len(service.get("cap_add", [])) == len(capabilities[name]), name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["read_only"] is True, name
        # Chosen, never whatever the image's USER says (root where files must be read, see
        # the module for why; nobody for the namespace holder, which reads nothing).
        assert service["user"] == ("65534:65534" if name == "namespace" else "0:0"), name
        for path, options in _tmpfs_options(service).items():
            assert {"size", "mode"} <= set(options), (name, path)
            # dockerd's default is noexec,nosuid,nodev: only plugins may be mapped to run.
            assert not {"suid", "dev"} & set(options), (name, path)
            assert ("exec" in options) == (path == container_hardening.ORTHANC_PLUGINS)


def test_the_cloud_containers_are_hardened(cloud):
    compose, _, _ = cloud
    _hardened(compose["services"], CLOUD_CAPABILITIES)


def test_the_site_containers_are_hardened(site_compose):
    _hardened(site_compose["services"], SITE_CAPABILITIES)


def test_the_plaintext_listener_is_on_the_site_lan_address_only(site, site_compose):
    proxy, _ = site
    services = site_compose["services"]
    port = proxy.get("listenPort", 104)
    assert services["orthanc"]["ports"] == [f"{proxy['listenAddress']}:{port}:4242"]
    assert [p.split(":")[0] for p in services["forwarder"]["ports"]] == ["127.0.0.1"]


def _orthanc_writes(config: dict) -> list[str]:
    """Where Orthanc itself writes, given the orthanc.json it runs with."""
    writes = [*ORTHANC_ENTRYPOINT_WRITES]
    if "AwsS3Storage" not in config:
        writes.append(f"{config['StorageDirectory']}/file")
    if not config.get("PostgreSQL", {}).get("EnableIndex", False):
        writes.append(f"{config['IndexDirectory']}/index")
    return writes


def _orthanc_can_write_where_it_must(service: dict, config: dict) -> None:
    for path in _orthanc_writes(config):
        assert _covered(path, service), path
    # Images and the index never land on a tmpfs: lost at every restart.
    for directory in ("StorageDirectory", "IndexDirectory"):
        mount = _covered(f"{config[directory]}/x", service)
        assert mount is None or _writable_mounts(service)[mount] != "tmpfs", directory
    # The plugins are loaded from where they are copied to (orthanc-defaults.json).
    assert "Plugins" not in config
    # The entrypoint's /etc/hostid write would stop it on the read-only root.
    assert service["environment"]["GENERATE_HOST_ID_IF_MISSING"] == "false"
    # Listening above 1024 is why Orthanc keeps no capability.
    assert config["DicomPort"] > 1024
    assert config["HttpPort"] > 1024


def test_the_cloud_orthanc_writes_only_to_its_volumes_and_tmpfs(cloud):
    compose, _, config = cloud
    _orthanc_can_write_where_it_must(compose["services"]["orthanc"], config)


def test_the_site_orthanc_writes_only_to_its_volume_and_tmpfs(site, site_compose):
    config = json.loads(site[1]["orthanc/orthanc.json"])
    service = site_compose["services"]["orthanc"]
    _orthanc_can_write_where_it_must(service, config)
    assert _writable_mounts(service)[config["StorageDirectory"]] == "volume proxy-data"


def test_nginx_writes_its_pid_and_temporary_files_to_its_tmpfs(cloud):
    compose, nginx_conf, _ = cloud
    service = compose["services"]["nginx"]
    written = re.findall(r"^\s*(?:pid|\w+_temp_path)\s+(\S+);", nginx_conf, re.MULTILINE)
    # The pid file and all five http temporary paths: none left to the build's default.
    assert len(written) == 6
    for path in written:
        assert _writable_mounts(service).get(_covered(path, service)) == "tmpfs", path
    # Its configuration and certificates are read-only.
    assert all(v.get("read_only") for v in service["volumes"])


def test_the_forwarder_writes_nothing(site_compose):
    service = site_compose["services"]["forwarder"]
    assert _writable_mounts(service) == {}
    assert service["environment"] == {"PYTHONDONTWRITEBYTECODE": "1"}


@pytest.mark.parametrize("kind", ["orthanc", "nginx", "forwarder", "namespace"])
def test_hardening_sets_only_its_own_keys(kind):
    # Merged last into each service: it must never replace what the renderers set.
    assert set(container_hardening.hardening(kind, reads_bundle_files=True)) <= HARDENING_KEYS


def test_hardening_hands_out_copies():
    first = container_hardening.hardening("nginx", reads_bundle_files=True)
    assert (
        container_hardening.READ_BUNDLE_FILES
        not in container_hardening.hardening("nginx")["cap_add"]
    )
    first["tmpfs"].append("/x")
    assert "/x" not in container_hardening.hardening("nginx")["tmpfs"]


def test_nginx_and_orthanc_share_a_namespace_neither_of_them_owns(cloud):
    """A container that joins another's namespace is cut off when that one restarts
    (docker/compose#6626): the owner does nothing, publishes the ports and runs as nobody."""
    compose, _, _ = cloud
    services = compose["services"]
    owner = services["namespace"]
    assert owner["entrypoint"] == ["tail", "-f", "/dev/null"]
    assert owner["user"] == "65534:65534"
    assert [p.split(":")[0] for p in owner["ports"]] == [p.split(":")[1] for p in owner["ports"]]
    for name in ("nginx", "orthanc"):
        assert services[name]["network_mode"] == "service:namespace"
        assert "ports" not in services[name]
