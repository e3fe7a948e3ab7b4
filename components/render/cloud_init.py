"""cloud-init user data for the Orthanc host (Amazon Linux 2023).

User data carries what rarely changes: scripts, units, compose and nginx files. Secrets
(TLS key, passwords) and Orthanc's own configuration (which changes whenever a sender is
registered) are fetched from Secrets Manager by ``materialize-secrets`` at each start and
every 15 minutes, so registering a modality never replaces the instance.
"""

from __future__ import annotations

import base64
import gzip
import re
from collections.abc import Sequence
from dataclasses import dataclass

import yaml

from orthgate.components.render import paths
from orthgate.components.render.cloudwatch_agent import (
    AGENT_CONFIG,
    AGENT_CTL,
    AGENT_PACKAGE,
    AgentSpec,
    agent_config_json,
)
from orthgate.components.render.docker_networks import DAEMON_CONFIG
from orthgate.components.render.secrets_manifest import materialize_script

# docker compose is not packaged for Amazon Linux 2023: the release binary is verified
# against a checksum pinned here, not one fetched from the release next to the binary. The
# values are those the Docker Official Image pins for the same release (docker-library/docker,
# 27/cli/Dockerfile at commit 03ecb33955c16b34b7d52c7563f05c736f159875, DOCKER_COMPOSE_VERSION
# 2.32.4), for the two machine types EC2 has.
COMPOSE_VERSION = "2.32.4"
COMPOSE_SHA256 = {
    "2.32.4": {
        "x86_64": "ed1917fb54db184192ea9d0717bcd59e3662ea79db48bff36d3475516c480a6b",
        "aarch64": "0c4591cf3b1ed039adcd803dbbeddf757375fc08c11245b0154135f838495a2f",
    }
}
REFRESH_INTERVAL = "15min"
# Hosts of a fleet launched together would restart Orthanc together after a change (a new
# sender, a password rotation): spread them over ten minutes.
REFRESH_SPREAD = "10min"
# Retry a failed refresh this soon instead of at the next timer run.
REFRESH_RETRY = "1min"
SECRETS_UNIT = "orthgate-secrets.service"
MAIN_UNIT = "orthgate.service"
REFRESH_UNIT = "orthgate-refresh.service"
REFRESH_TIMER = "orthgate-refresh.timer"
# EC2 refuses user data above 16 KB (before base64). It stays plain while it fits, so
# anyone can read what the host was told in the console or with the AWS CLI.
USER_DATA_LIMIT = 16384
# Interpolated into the boot script: only characters that need no shell quoting.
_VOLUME_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
_REGION = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
# Where AWS publishes each region's RDS CA bundle (the intermediate and root certificates
# of every RDS CA of the region: rds-ca-rsa2048-g1, rds-ca-rsa4096-g1, rds-ca-ecc384-g1).
# RDS User Guide, "Using SSL/TLS to encrypt a connection to a DB instance or cluster",
# section "Certificate bundles by AWS Region"; the GovCloud (US) regions have their own
# trust store there. The guide names none for the China regions: no URL is guessed.
_RDS_TRUSTSTORES = {
    "aws": "https://truststore.pki.rds.amazonaws.com",
    "aws-us-gov": "https://truststore.pki.us-gov-west-1.rds.amazonaws.com",
}


def rds_ca_bundle_url(region: str, partition: str) -> str:
    """The region's RDS CA bundle (PEM), which verifies every RDS CA used there; with no
    region known (only under test doubles), the partition's global bundle, which holds
    every region's."""
    if region and not _REGION.fullmatch(region):
        raise ValueError(f"not a region name: {region!r}")
    if partition not in _RDS_TRUSTSTORES:
        raise ValueError(
            f"aws:region = {region}: the RDS User Guide publishes no CA bundle for the "
            f"{partition} partition, so Orthanc could not verify its PostgreSQL index "
            "(index: postgresql)"
        )
    name = region or "global"
    return f"{_RDS_TRUSTSTORES[partition]}/{name}/{name}-bundle.pem"


@dataclass(frozen=True)
class WriteFile:
    path: str
    content: str
    permissions: str = "0644"
    # Written after the packages are installed (cloud-init's write_files_deferred), so that
    # no package's own copy of the file replaces it.
    defer: bool = False


@dataclass(frozen=True)
class HostConfig:
    """The rendered configuration files the host needs (none of them secret)."""

    compose_yaml: str
    nginx_conf: str
    secrets_manifest_json: str


@dataclass(frozen=True)
class CloudInitSpec:
    host: HostConfig
    data_volume_id: str | None = None
    compose_version: str = COMPOSE_VERSION
    # Disk use for the alarms (the CloudWatch agent); None: no agent.
    metrics: AgentSpec | None = None
    # dockerd's daemon.json, when Docker's default networks would hide senders.
    docker_daemon_json: str | None = None
    # index: postgresql: the RDS CA bundle to fetch at first boot (rds_ca_bundle_url).
    rds_ca_url: str | None = None


def render_boot_script(
    data_volume_id: str | None,
    compose_version: str,
    *,
    metrics_agent: bool = False,
    docker_config: bool = False,
    rds_ca_url: str | None = None,
) -> str:
    if data_volume_id is not None and not _VOLUME_ID.fullmatch(data_volume_id):
        raise ValueError(f"not a plain EBS volume id: {data_volume_id!r}")
    if not _VERSION.fullmatch(compose_version):
        raise ValueError(f"not a version: {compose_version!r}")
    if compose_version not in COMPOSE_SHA256:
        raise ValueError(f"no pinned checksum for docker compose {compose_version}")
    checksums = COMPOSE_SHA256[compose_version]
    if rds_ca_url is not None and not _RDS_CA_URL.fullmatch(rds_ca_url):
        raise ValueError(f"not an RDS trust store URL: {rds_ca_url!r}")
    # Appended to a line of its own, so that a boot script without it stays as it was.
    docker_check = "\n" + _DOCKER_CONFIG_CHECK.rstrip("\n") if docker_config else ""
    # Likewise the RDS CA bundle: a stack without PostgreSQL keeps the script it had.
    rds_ca_function = "\n" + _rds_ca_function(rds_ca_url) if rds_ca_url else ""
    rds_ca_call = "\nfetch_rds_ca" if rds_ca_url else ""
    return f"""#!/bin/bash
# orthgate first boot: docker compose plugin, data volume, services. Safe to run again.
set -euo pipefail

readonly COMPOSE_VERSION="{compose_version}"
readonly COMPOSE_SHA256_X86_64="{checksums["x86_64"]}"
readonly COMPOSE_SHA256_AARCH64="{checksums["aarch64"]}"
readonly COMPOSE_PLUGIN="{paths.COMPOSE_PLUGIN}"
readonly DATA_VOLUME_ID="{data_volume_id or ""}"
readonly DATA_DIR="{paths.HOST_DATA_DIR}"
readonly METRICS_AGENT="{"yes" if metrics_agent else ""}"

log() {{
  echo "orthgate-boot: $*"
}}

install_compose() {{
  if [ -x "$COMPOSE_PLUGIN" ]; then
    return 0
  fi
  local url work expected actual machine
  machine=$(uname -m)
  case "$machine" in
    x86_64) expected="$COMPOSE_SHA256_X86_64" ;;
    aarch64) expected="$COMPOSE_SHA256_AARCH64" ;;
    *) log "no pinned docker compose checksum for $machine"; exit 1 ;;
  esac
  url="https://github.com/docker/compose/releases/download"
  url="$url/v${{COMPOSE_VERSION}}/docker-compose-linux-$machine"
  work=$(mktemp -d)
  curl --fail --silent --show-error --location --retry 8 --retry-all-errors \\
    --output "$work/docker-compose" "$url"
  actual=$(sha256sum "$work/docker-compose" | cut -d ' ' -f 1)
  if [ -z "$expected" ] || [ "$expected" != "$actual" ]; then
    log "checksum mismatch for $url"
    exit 1
  fi
  install -D -m 0755 "$work/docker-compose" "$COMPOSE_PLUGIN"
  rm -rf "$work"
}}

mount_data_volume() {{
  if [ -z "$DATA_VOLUME_ID" ]; then
    return 0
  fi
  local device uuid
  device="/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${{DATA_VOLUME_ID//-/}}"
  # The volume is attached after the instance starts: wait up to ten minutes.
  for _ in $(seq 1 120); do
    if [ -e "$device" ]; then
      break
    fi
    sleep 5
  done
  if [ ! -e "$device" ]; then
    log "data volume $DATA_VOLUME_ID never appeared"
    exit 1
  fi
  # Format only a volume without a filesystem: never an existing archive.
  if ! blkid "$device" >/dev/null 2>&1; then
    mkfs.xfs -L orthanc-data "$device"
  fi
  uuid=$(blkid -s UUID -o value "$device")
  mkdir -p "$DATA_DIR"
  # The mount point itself, on the root volume, is made immutable: should the volume ever
  # be missing, nothing (Orthanc restarted by dockerd included) can write images there.
  if ! mountpoint -q "$DATA_DIR"; then
    chattr +i "$DATA_DIR"
  fi
  if ! grep -q "UUID=$uuid" /etc/fstab; then
    echo "UUID=$uuid $DATA_DIR xfs defaults,nofail 0 2" >> /etc/fstab
  fi
  if ! mountpoint -q "$DATA_DIR"; then
    mount "$DATA_DIR"
  fi
}}

start_metrics_agent() {{
  if [ -z "$METRICS_AGENT" ]; then
    return 0
  fi
  # Disk use for the alarms. Orthanc does not depend on it: a failure is only logged.
  if ! {AGENT_CTL} -a fetch-config -m ec2 -s -c "file:{AGENT_CONFIG}"; then
    log "the CloudWatch agent did not start: no disk alarms for this host"
  fi
}}
{rds_ca_function}
install_compose{rds_ca_call}
mount_data_volume
start_metrics_agent
systemctl daemon-reload{docker_check}
# Enabled first, so that starting Docker (now and at every boot) runs the secrets step first.
systemctl enable {SECRETS_UNIT}
systemctl enable --now docker.service
systemctl enable --now {MAIN_UNIT} {REFRESH_TIMER}
log "done"
"""


def _units(data_dir: str | None = None, *, rds_ca: bool = False) -> dict[str, str]:
    """Unit name -> content. ``data_dir``: the data volume's mount point, if any;
    ``rds_ca``: Orthanc checks its PostgreSQL index against the RDS CA bundle."""
    # Orthanc never starts on the root volume in place of an absent data volume (its
    # fstab entry is nofail, so that the host still boots and can be inspected).
    mounts = f"RequiresMountsFor={data_dir}\n" if data_dir else ""
    # Nor without the CA bundle the boot script fetched: the unit fails, saying which file
    # (compose would refuse the missing bind source too; this names it).
    if rds_ca:
        mounts += f"AssertFileNotEmpty={paths.RDS_CA_BUNDLE}\n"
    compose = f"{paths.COMPOSE_PLUGIN} --file {paths.COMPOSE_FILE}"
    materialize = f"{paths.MATERIALIZE_SECRETS} --manifest {paths.SECRETS_MANIFEST}"
    secrets = f"""[Unit]
Description=Write the orthgate secrets onto tmpfs before Docker starts
# After an unclean reboot dockerd restarts the containers as soon as it starts, and their
# bind sources on {paths.HOST_RUNTIME_DIR} must be there by then.
Wants=network-online.target
After=network-online.target
Before=docker.service

[Service]
Type=oneshot
ExecStart={materialize}
TimeoutStartSec=180

[Install]
# Wanted by docker.service rather than multi-user.target: whatever starts dockerd (boot,
# its socket, a restart) runs this first. A failure does not hold Docker back: containers
# without their files fail to start, and {MAIN_UNIT} retries the secrets itself.
WantedBy=docker.service
"""
    service = f"""[Unit]
Description=Orthanc and its TLS terminator (orthgate)
Requires=docker.service
After=docker.service {SECRETS_UNIT} network-online.target
Wants=network-online.target
{mounts}
[Service]
Type=oneshot
RemainAfterExit=yes
# Again here: a restart of this unit and every retry after a failure rewrite the files.
ExecStartPre={materialize}
# Recreate every container from the current files: one dockerd restarted at boot, or one
# still running from before, keeps the old mounts (a replaced orthanc.json is a new inode).
ExecStart={compose} up --detach --remove-orphans --force-recreate
ExecStop={compose} down
TimeoutStartSec=900
Restart=on-failure
RestartSec=30

[Install]
WantedBy=multi-user.target
"""
    refresh = f"""[Unit]
Description=Pick up rotated secrets (orthgate)
After={MAIN_UNIT}
Requires={MAIN_UNIT}

[Service]
Type=oneshot
ExecStart={materialize} --apply
TimeoutStartSec=600
# A failed reload or restart stays pending and exits non-zero: retry it soon. systemd
# accepts Restart=on-failure on oneshot units since 244 (Amazon Linux 2023 has 252).
Restart=on-failure
RestartSec={REFRESH_RETRY}
"""
    timer = f"""[Unit]
Description=Check Secrets Manager for rotated secrets (orthgate)

[Timer]
OnBootSec={REFRESH_INTERVAL}
OnUnitActiveSec={REFRESH_INTERVAL}
RandomizedDelaySec={REFRESH_SPREAD}

[Install]
WantedBy=timers.target
"""
    return {SECRETS_UNIT: secrets, MAIN_UNIT: service, REFRESH_UNIT: refresh, REFRESH_TIMER: timer}


_RDS_CA_URL = re.compile(
    r"^https://truststore\.pki\.(us-gov-west-1\.)?rds\.amazonaws\.com"
    r"/[a-z0-9-]+/[a-z0-9-]+-bundle\.pem$"
)


def _rds_ca_function(url: str) -> str:
    """The boot script's step that fetches the RDS CA bundle Orthanc verifies RDS with."""
    return f"""fetch_rds_ca() {{
  # Over HTTPS only, the trust store's server checked against the system CAs: that is what
  # authenticates the bundle. AWS publishes no checksum for it, so none is pinned here.
  # Fetched again on every run and swapped in whole, so a re-run is safe.
  local url="{url}" bundle="{paths.RDS_CA_BUNDLE}" work
  work=$(mktemp -d)
  if ! curl --fail --silent --show-error --location --proto '=https' --tlsv1.2 \\
    --retry 8 --retry-all-errors --output "$work/rds-ca.pem" "$url"; then
    log "could not fetch the RDS CA bundle $url: Orthanc cannot verify its database"
    exit 1
  fi
  if ! grep -q -e "-----BEGIN CERTIFICATE-----" "$work/rds-ca.pem"; then
    log "$url holds no PEM certificate: Orthanc cannot verify its database"
    exit 1
  fi
  install -D -m 0644 "$work/rds-ca.pem" "$bundle.new"
  mv -f "$bundle.new" "$bundle"
  rm -rf "$work"
}}
"""


# Docker must not start on its default networks when they would hide senders: should this
# image's cloud-init skip deferred files, stop here, loudly, rather than run unreachable.
_DOCKER_CONFIG_CHECK = f"""if [ ! -s {DAEMON_CONFIG} ]; then
  log "{DAEMON_CONFIG} was not written: Docker would hide senders; not starting"
  exit 1
fi
"""


def host_files(spec: CloudInitSpec) -> list[WriteFile]:
    """Every file the host gets from user data."""
    host = spec.host
    return [
        WriteFile(paths.COMPOSE_FILE, host.compose_yaml),
        WriteFile(paths.NGINX_CONF, host.nginx_conf),
        WriteFile(paths.SECRETS_MANIFEST, host.secrets_manifest_json),
        WriteFile(paths.MATERIALIZE_SECRETS, materialize_script(), "0755"),
        WriteFile(
            paths.BOOT_SCRIPT,
            render_boot_script(
                spec.data_volume_id,
                spec.compose_version,
                metrics_agent=spec.metrics is not None,
                docker_config=spec.docker_daemon_json is not None,
                rds_ca_url=spec.rds_ca_url,
            ),
            "0755",
        ),
        *(
            WriteFile(f"{paths.SYSTEMD_UNIT_DIR}/{name}", text)
            for name, text in _units(
                paths.HOST_DATA_DIR if spec.data_volume_id else None,
                rds_ca=spec.rds_ca_url is not None,
            ).items()
        ),
        *([WriteFile(AGENT_CONFIG, agent_config_json(spec.metrics))] if spec.metrics else []),
        *([_docker_waits_for(paths.HOST_DATA_DIR)] if spec.data_volume_id else []),
        *(
            [WriteFile(DAEMON_CONFIG, spec.docker_daemon_json, defer=True)]
            if spec.docker_daemon_json
            else []
        ),
    ]


def _docker_waits_for(data_dir: str) -> WriteFile:
    """dockerd restarts Orthanc's container by itself after a reboot, before any unit of
    ours: it must not run before the data volume is mounted (nor at all without it)."""
    return WriteFile(
        f"{paths.SYSTEMD_UNIT_DIR}/docker.service.d/orthgate-data-volume.conf",
        f"[Unit]\nRequiresMountsFor={data_dir}\n",
    )


class _LiteralDumper(yaml.SafeDumper):
    """Multi-line file contents as YAML literal blocks: readable in the console's user data."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_LiteralDumper.add_representer(str, _represent_str)


def render_cloud_init(spec: CloudInitSpec) -> str:
    files: Sequence[WriteFile] = host_files(spec)
    document = {
        "packages": ["docker", *([AGENT_PACKAGE] if spec.metrics else [])],
        "write_files": [
            {
                "path": f.path,
                "content": f.content,
                "permissions": f.permissions,
                "owner": "root:root",
                **({"defer": True} if f.defer else {}),
            }
            for f in files
        ],
        "runcmd": [[paths.BOOT_SCRIPT]],
    }
    return "#cloud-config\n" + yaml.dump(
        document, Dumper=_LiteralDumper, sort_keys=False, width=1000
    )


def encode_user_data(text: str) -> str:
    """Base64 for EC2: plain text when it fits, gzip (which cloud-init reads) when not."""
    raw = text.encode()
    if len(raw) > USER_DATA_LIMIT:
        raw = gzip.compress(raw, mtime=0)
        if len(raw) > USER_DATA_LIMIT:
            raise ValueError(f"user data is {len(raw)} B gzipped; EC2 allows {USER_DATA_LIMIT}")
    return base64.b64encode(raw).decode()
