"""How each of orthgate's containers runs: one place for its privileges and writable paths.

Every service gets no capability but those listed here (``cap_drop: [ALL]``), no new
privileges through setuid binaries, and a read-only root filesystem with tmpfs for exactly
the paths its image writes. Data stays on the volumes and bind mounts the renderers declare
(the site's ``proxy-data``, the host's data volume): those stay writable under a read-only
root. The renderers merge ``hardening(kind)`` into each service and ``environment(kind)``
into its environment.

Read at the pinned versions (components.config.orthanc, components.render.proxy_bundle):

- orthancteam/orthanc 25.12.3: orthanc-server/orthanc-builder at tag 25.12.3,
  docker/orthanc/{Dockerfile, docker-entrypoint.sh, configurator.py, orthanc-defaults.json}.
- nginx 1.28.0-alpine: nginx/docker-nginx at 7f1d49f ("stable 1.28.0"),
  stable/alpine-slim/{Dockerfile, docker-entrypoint.sh, 10-...sh, 20-...sh, 30-...sh};
  nginx/nginx at release-1.28.0, src/os/unix/ngx_process_cycle.c, src/core/ngx_file.c.
- python 3.12.8-slim-bookworm: docker-library/python at 3186ee4,
  3.12/slim-bookworm/Dockerfile.
- Docker: moby/moby daemon/oci_linux.go (tmpfs options, sysctls); moby/moby#36587 (a
  non-root user gets no effective capability, whatever ``cap_add`` says); docker/compose
  pkg/compose/create.go (``tmpfs: ["path:options"]`` becomes HostConfig.Tmpfs); Docker docs
  engine/storage/tmpfs.md (``size``, ``mode``, ``exec``). Key names: compose-spec
  05-services.md and schema/compose-spec.json.
"""

from __future__ import annotations

import copy
from typing import Any

NO_NEW_PRIVILEGES = "no-new-privileges:true"

# dockerd mounts every tmpfs noexec,nosuid,nodev and appends the options given here, the
# last of a pair winning (moby daemon/oci_linux.go: "noexec", "nosuid", "nodev" + data).
ORTHANC_TMP = "/tmp"  # noqa: S108 - the container's own /tmp
ORTHANC_PLUGINS = "/run/orthanc/plugins"
NGINX_TMP = "/tmp"  # noqa: S108 - the container's own /tmp

# The orthancteam entrypoint writes a random id to /etc/hostid at every start unless told not
# to (docker-entrypoint.sh: GENERATE_HOST_ID_IF_MISSING), under `set -o errexit`: on a
# read-only root that write would stop the container. /etc/hostid then keeps the image's
# "not-generated", which glibc's gethostid() reads as the id (sysdeps/unix/sysv/linux/
# gethostid.c): no DNS lookup (the entrypoint's reason), but every container of the image
# shares that one component of the DICOM UIDs DCMTK generates.
_ORTHANC_ENVIRONMENT = {"GENERATE_HOST_ID_IF_MISSING": "false"}

# Orthanc (cloud and site), as root without capabilities. The image has an `orthanc` user
# (uid 999, Dockerfile), but what Orthanc reads is root's or the site operator's, mode 0600:
# orthanc.json from materialize-secrets on the host, the bundle's orthanc.json and site.key
# (tools/proxy_bundle.py), and its data already on the host volume and in existing
# proxy-data volumes was written by root. It listens above 1024 only (DicomPort, HttpPort)
# and switches no user: no capability at all.
_ORTHANC: dict[str, Any] = {
    "user": "0:0",
    "cap_drop": ["ALL"],
    "security_opt": [NO_NEW_PRIVILEGES],
    "read_only": True,
    "tmpfs": [
        # The entrypoint generates the configuration Orthanc runs with into /tmp/orthanc.json
        # (generateConfiguration.py; CMD ["/tmp/orthanc.json"]): passwords included, so on
        # tmpfs it never reaches a disk. Orthanc's own temporary files (TemporaryDirectory
        # defaults to the system's, e.g. asynchronous archives) go here too: 1 GiB at most.
        f"{ORTHANC_TMP}:size=1g,mode=1777",
        # Enabled plugins are copied from plugins-available to /run/orthanc/plugins when that
        # directory exists, meant for read-only containers with a tmpfs there
        # (configurator.py; release notes 21.9.0), and Orthanc loads from there
        # (orthanc-defaults.json "Plugins"). exec: a shared object on a noexec mount cannot
        # be mapped executable (mmap(2), EPERM), so dlopen() would fail. Root-only writable.
        f"{ORTHANC_PLUGINS}:size=512m,mode=0755,exec",
    ],
}

# nginx: the master must be root to read the TLS directory (root's, 0700, key 0600, from
# materialize-secrets); a root master runs its workers as the build's default user
# (NGX_USER, src/core/nginx.c: the config sets no `user`; the image creates `nginx`, 101).
_NGINX: dict[str, Any] = {
    "user": "0:0",
    "cap_drop": ["ALL"],
    "cap_add": [
        # ngx_worker_process_init(): setgid(), initgroups() and setuid() to the worker user
        # when the master is root (ngx_process_cycle.c); a refused setgid/setuid is fatal.
        "SETGID",
        "SETUID",
        # ngx_create_paths(): the root master creates the temporary directories and chowns
        # each to the worker user (ngx_file.c), fatal if refused.
        "CHOWN",
        # The HTTPS listener is 443. Docker also sets net.ipv4.ip_unprivileged_port_start=0
        # in a container's own network namespace (moby daemon/oci_linux.go), which alone
        # would do; kept so 443 binds whatever the engine's or the host's sysctl setting.
        "NET_BIND_SERVICE",
    ],
    "security_opt": [NO_NEW_PRIVILEGES],
    "read_only": True,
    "tmpfs": [
        # The rendered nginx.conf puts the pid file and every temporary path here
        # (components.render.nginx runtime_dir); a path left unset would fall back to
        # the build's default (ngx_conf_merge_path_value) and fail on the read-only root at
        # start, never later. Responses to slow clients are buffered to proxy_temp_path
        # up to proxy_max_temp_file_size (1024m by default): 1 GiB.
        f"{NGINX_TMP}:size=1g,mode=1777",
    ],
    # Nothing else is written: the entrypoint's scripts skip a read-only /etc/nginx
    # (10-listen-on-ipv6-by-default.sh: "can not modify ... (read-only file system?)"),
    # 20-envsubst-on-templates.sh has no /etc/nginx/templates, 30-tune-worker-processes.sh
    # and 15-local-resolvers.envsh run only when asked; logs go to /dev/stdout and stderr.
}

# The forwarder: one standard-library script. The image has no user of its own and runs
# root; the script reads forwarder.json, 0600 and the bundle writer's (tools/proxy_bundle.py).
# Under another uid it could not, and a capability does not reach a non-root process
# (moby/moby#36587): root it stays, without capabilities. It writes no file and binds 8099.
_FORWARDER: dict[str, Any] = {
    "user": "0:0",
    "cap_drop": ["ALL"],
    "security_opt": [NO_NEW_PRIVILEGES],
    "read_only": True,
}
# The image deletes its *.pyc (Dockerfile): without this Python tries (and silently fails)
# to write them next to the standard library at each start.
_FORWARDER_ENVIRONMENT = {"PYTHONDONTWRITEBYTECODE": "1"}

# The namespace holder (components.render.compose): `tail -f /dev/null`, nothing to read,
# write or bind (the ports are published by dockerd, outside it). Nobody, no capability.
_NAMESPACE: dict[str, Any] = {
    "user": "65534:65534",
    "cap_drop": ["ALL"],
    "security_opt": [NO_NEW_PRIVILEGES],
    "read_only": True,
}

_KINDS = {
    "orthanc": _ORTHANC,
    "nginx": _NGINX,
    "forwarder": _FORWARDER,
    "namespace": _NAMESPACE,
}
_ENVIRONMENTS = {"orthanc": _ORTHANC_ENVIRONMENT, "forwarder": _FORWARDER_ENVIRONMENT}

# The site's files belong to whoever wrote the bundle (tools/proxy_bundle.py: secrets 0600,
# the folder 0700), rarely root. Reading them as root without capabilities needs
# CAP_DAC_READ_SEARCH: it lets a process read any file it can see (and search any
# directory), never write one; what the containers write is root's own.
READ_BUNDLE_FILES = "DAC_READ_SEARCH"


def hardening(kind: str, *, reads_bundle_files: bool = False) -> dict[str, Any]:
    """Compose service keys for a container of ``kind`` (a fresh copy, to merge)."""
    settings = copy.deepcopy(_KINDS[kind])
    if reads_bundle_files:
        settings["cap_add"] = [*settings.get("cap_add", []), READ_BUNDLE_FILES]
    return settings


def environment(kind: str) -> dict[str, str]:
    """Environment variables a container of ``kind`` needs to run hardened (a fresh copy)."""
    return dict(_ENVIRONMENTS.get(kind, {}))
