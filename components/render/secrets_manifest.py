"""The manifest telling the host which secrets to fetch and where they go.

It names secrets by ARN and says where each field lands; it holds no secret itself.
Orthanc's configuration travels the same way (as the "config" secret, without passwords),
so it can change without touching user data.
``assets/materialize_secrets.py`` carries it out on the instance (and in the tests).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from orthgate.components.render import paths
from orthgate.components.render.orthanc_config import SecretValue

MATERIALIZE_SCRIPT = Path(__file__).with_name("assets") / "materialize_secrets.py"

# Fields of the TLS secret (a JSON object) and the files nginx reads: a change of any of
# them is an nginx reload, never a restart.
TLS_FILES = (
    ("certificate", paths.SERVER_CERT, "0644"),
    ("privateKey", paths.SERVER_KEY, "0600"),
    ("caCertificate", paths.CLIENT_CA, "0644"),
    ("revocationList", paths.REVOCATION_LIST, "0644"),
    ("senderMaps", paths.SENDER_MAPS, "0644"),
)


@dataclass(frozen=True)
class SecretsManifestSpec:
    region: str
    # role -> secret ARN: "tls", "admin", "config" (orthanc.json without its passwords),
    # and "database" when PostgreSQL holds the index.
    secret_arns: Mapping[str, str]
    orthanc_values: Sequence[SecretValue]
    tls_dir: str = paths.HOST_TLS_DIR
    orthanc_config: str = paths.HOST_ORTHANC_CONFIG
    # tmpfs: a directory found here in place of a file is replaced (dockerd made it).
    runtime_dir: str = paths.HOST_RUNTIME_DIR
    # Groups whose onChange command has yet to succeed; on tmpfs, as a reboot recreates
    # every container from the current files anyway.
    pending_dir: str = paths.HOST_PENDING_DIR
    # What to run when a group of files changed after a rotation.
    on_change: Mapping[str, Sequence[str]] | None = None


def default_on_change() -> dict[str, list[str]]:
    compose = [paths.COMPOSE_PLUGIN, "--file", paths.COMPOSE_FILE]
    return {
        "tls": [*compose, "exec", "-T", "nginx", "nginx", "-s", "reload"],
        "orthancConfig": [*compose, "restart", "orthanc"],
    }


def render_secrets_manifest(spec: SecretsManifestSpec) -> dict[str, Any]:
    missing = {"tls", "admin", "config"} - set(spec.secret_arns)
    missing |= {v.secret for v in spec.orthanc_values} - set(spec.secret_arns)
    if missing:
        raise ValueError(f"no secret ARN for {sorted(missing)}")
    pending, runtime = PurePosixPath(spec.pending_dir), PurePosixPath(spec.runtime_dir)
    if pending == runtime or not pending.is_relative_to(runtime):
        raise ValueError(f"the pending directory {spec.pending_dir} is not on the runtime tmpfs")
    return {
        "region": spec.region,
        "secrets": dict(spec.secret_arns),
        "runtimeDir": spec.runtime_dir,
        "pendingDir": spec.pending_dir,
        "files": [
            {
                "group": "tls",
                "secret": "tls",
                "key": key,
                "path": f"{spec.tls_dir}/{name}",
                "mode": mode,
            }
            for key, name, mode in TLS_FILES
        ],
        "orthancConfig": {
            "secret": "config",
            "path": spec.orthanc_config,
            "values": [value.manifest_entry() for value in spec.orthanc_values],
        },
        "onChange": dict(spec.on_change if spec.on_change is not None else default_on_change()),
    }


def manifest_json(manifest: dict[str, Any]) -> str:
    # Compact: the manifest travels in user data, which EC2 caps at 16 KB.
    return json.dumps(manifest, separators=(",", ":")) + "\n"


def materialize_script() -> str:
    return MATERIALIZE_SCRIPT.read_text()
