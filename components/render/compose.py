"""The docker compose file the Orthanc host runs: Orthanc and its nginx terminator.

nginx and Orthanc share one network namespace: nginx reaches Orthanc on loopback, from the
address that stands for each sender (components.render.sender_identity), and only nginx's
listeners are published. The namespace belongs to a container of its own that does nothing
and is never restarted or reloaded: a container that joins another's namespace stays in it
when that one restarts, cut off from the published ports (docker/compose#6626), so neither
nginx nor Orthanc may own it. Either can restart (Orthanc does at every configuration
change) and joins the same namespace again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from orthgate.components.render import paths
from orthgate.components.render.container_hardening import environment, hardening


@dataclass(frozen=True)
class ComposeSpec:
    orthanc_image: str
    nginx_image: str
    dicom_tls_port: int
    https_port: int
    plain_dicom_port: int
    log_group: str
    region: str
    # The log stream prefix of a host with a name of its own (a single host); None for a
    # fleet's identical hosts, whose streams are then named by container.
    instance_label: str | None
    # storage: ebs keeps files (and SQLite) on the data volume; s3 needs no local data.
    data_dir: str | None = None
    # index: postgresql: Orthanc checks the database's certificate against the RDS CA bundle.
    rds_ca: bool = False


def _logging(spec: ComposeSpec, service: str) -> dict[str, Any]:
    # Every host of a fleet renders the same file: a fixed stream name would interleave
    # their logs. The awslogs driver's tag names the stream by container instead.
    stream = (
        {"awslogs-stream": f"{spec.instance_label}/{service}"}
        if spec.instance_label
        else {"tag": f"{service}/{{{{.ID}}}}"}
    )
    return {
        "driver": "awslogs",
        "options": {
            "awslogs-region": spec.region,
            "awslogs-group": spec.log_group,
            **stream,
            # Never block Orthanc on CloudWatch; a small buffer absorbs short outages.
            "mode": "non-blocking",
            "max-buffer-size": "8m",
        },
    }


def _bind(source: str, target: str, *, read_only: bool = True) -> dict[str, Any]:
    """A bind mount whose missing source is an error, never an empty directory.

    The short syntax (and the long one without ``create_host_path: false``) lets compose
    and dockerd create a missing source as a directory. After a reboot dockerd restarts
    the containers before the secrets are back on tmpfs: orthanc.json would become a
    directory that the secrets step then cannot replace by a file.
    """
    return {
        "type": "bind",
        "source": source,
        "target": target,
        "read_only": read_only,
        "bind": {"create_host_path": False},
    }


# The service holding the network namespace nginx and Orthanc share (and the ports).
NAMESPACE_SERVICE = "namespace"


def render_compose(spec: ComposeSpec) -> dict[str, Any]:
    orthanc_volumes = [_bind(paths.HOST_ORTHANC_CONFIG, paths.ORTHANC_CONFIG_IN_CONTAINER)]
    if spec.data_dir:
        orthanc_volumes.append(_bind(spec.data_dir, paths.ORTHANC_DB_IN_CONTAINER, read_only=False))
    if spec.rds_ca:
        # Missing (the boot script could not fetch it), Orthanc does not start: never
        # without the check.
        orthanc_volumes.append(_bind(paths.RDS_CA_BUNDLE, paths.RDS_CA_IN_CONTAINER))
    return {
        "name": "orthgate",
        "services": {
            NAMESPACE_SERVICE: {
                # The image at hand (no other to pin); it only holds the namespace open.
                "image": spec.nginx_image,
                "entrypoint": ["tail", "-f", "/dev/null"],
                "restart": "unless-stopped",
                # Plaintext DICOM is for private paths only: security groups decide who.
                "ports": [
                    f"{spec.dicom_tls_port}:{spec.dicom_tls_port}",
                    f"{spec.https_port}:{spec.https_port}",
                    f"{spec.plain_dicom_port}:{spec.plain_dicom_port}",
                ],
                # tail as PID 1 ignores SIGTERM: stop it at once, it holds no state.
                "stop_signal": "SIGKILL",
                "logging": {"driver": "none"},
                **hardening("namespace"),
            },
            "orthanc": {
                "image": spec.orthanc_image,
                "restart": "unless-stopped",
                "environment": {
                    # DCMTK leaves Nagle on: 200 small images took 18 s instead of < 1 s.
                    "TCP_NODELAY": "1",
                    **environment("orthanc"),
                },
                "volumes": orthanc_volumes,
                # The shared namespace: Orthanc's ports are reachable through nginx only.
                "network_mode": f"service:{NAMESPACE_SERVICE}",
                "depends_on": [NAMESPACE_SERVICE],
                "logging": _logging(spec, "orthanc"),
                # Privileges and writable paths: components.render.container_hardening.
                **hardening("orthanc"),
            },
            "nginx": {
                "image": spec.nginx_image,
                "restart": "unless-stopped",
                "network_mode": f"service:{NAMESPACE_SERVICE}",
                "depends_on": [NAMESPACE_SERVICE],
                "volumes": [
                    _bind(paths.NGINX_CONF, paths.NGINX_CONF_IN_CONTAINER),
                    _bind(paths.HOST_TLS_DIR, paths.TLS_DIR_IN_CONTAINER),
                ],
                "logging": _logging(spec, "nginx"),
                **hardening("nginx"),
            },
        },
    }


def to_yaml(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
