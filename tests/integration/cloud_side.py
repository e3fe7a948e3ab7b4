"""Run the cloud side exactly as the program rendered it, on Debian's Orthanc and nginx.

From a mock evaluation of a stack: the launch template's user data (nginx.conf, orthanc.json,
the secrets manifest, the compose file), the secrets as Secrets Manager would hold them
(real certificates from the pulumi-tls mock), and the DICOM CA's key. The secrets step is
the program's own script, run against a stand-in for the AWS CLI; the compose file decides
which host file each container sees where, and the test reproduces that with bind mounts.
Only three things differ from the instance: paths under a temporary root instead of /, both
servers in one network namespace (``orthanc`` resolves to it), and nginx loading Debian's
stream module, which the container image has built in.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from orthgate.components.render import paths
from orthgate.components.render.compose import NAMESPACE_SERVICE
from orthgate.components.render.secrets_manifest import MATERIALIZE_SCRIPT
from tests.harness.pulumi_run import Evaluation
from tests.harness.user_data import written_files
from tests.integration.netlab import (
    Host,
    Orthanc,
    Process,
    TlsClient,
    require,
    require_nginx_stream,
)

FAKE_AWS = """#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
secret_id = args[args.index("--secret-id") + 1]
print(json.load(open(os.environ["FAKE_SECRETS"]))[secret_id])
"""


@dataclass
class CloudSide:
    host: Host
    orthanc: Orthanc
    nginx: Process
    ca_cert_pem: str
    ca_key_pem: str
    ca_file: Path
    admin: tuple[str, str]
    tls_port: int
    ae_title: str
    environment: dict[str, str]
    # nginx's plaintext DICOM listener (what private paths reach; Orthanc's own is loopback).
    plain_port: int = 0
    # Re-runs the secrets step against the secrets of another evaluation of the same
    # account (what the host's refresh timer does after a `pulumi up`).
    _rematerialize: Callable[[Evaluation], None] | None = None
    _nginx_pid_file: Path | None = None

    def stop(self) -> None:
        self.nginx.stop()
        self.orthanc.stop()

    def refresh_secrets(self, evaluation: Evaluation) -> None:
        assert self._rematerialize is not None
        self._rematerialize(evaluation)

    def reload_nginx(self) -> None:
        """What the TLS group's onChange does (``nginx -s reload``): SIGHUP to the master."""
        assert self._nginx_pid_file is not None
        old_workers = set(_children(int(self._nginx_pid_file.read_text())))
        os.kill(int(self._nginx_pid_file.read_text()), signal.SIGHUP)
        # The reload is done once the workers that serve connections are new ones.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            workers = set(_children(int(self._nginx_pid_file.read_text())))
            if workers and not workers & old_workers:
                return
            time.sleep(0.1)
        raise AssertionError(f"nginx did not reload: {self.nginx.log_tail()}")


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(child) for child in text.split()]


def secret_store(evaluation: Evaluation) -> dict[str, str]:
    """Secret ARN -> SecretString, as the program wrote them into Secrets Manager."""
    return {
        version.inputs["secretId"]: version.inputs["secretString"]
        for version in evaluation.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    }


def _volumes(service: dict) -> dict[str, str]:
    """container path -> host path, from a compose service (long syntax bind mounts)."""
    mounts = {}
    for volume in service.get("volumes", []):
        assert volume["type"] == "bind", volume
        mounts[volume["target"]] = volume["source"]
    return mounts


def _relocate(path: str, root: Path) -> str:
    return str(root / path.lstrip("/"))


def start_cloud_side(
    host: Host,
    evaluation: Evaluation,
    workdir: Path,
    *,
    extra_secrets: dict[str, str] | None = None,
    orthanc_hosts: dict[str, str] | None = None,
    orthanc_plugins: list[str] | None = None,
    shared_storage: Path | None = None,
    orthanc_verbose: bool = False,
    before_secrets: Callable[[Path], None] | None = None,
    rds_ca_pem: str | None = None,
) -> CloudSide:
    """``extra_secrets``: secrets AWS itself would create (the RDS-managed password).
    ``orthanc_hosts``: names Orthanc must resolve (the database endpoint).
    ``orthanc_plugins``: Debian's Orthanc loads a plugin only when listed, where the
    orthancteam image loads it when its configuration section is present.
    ``before_secrets``: called with the stand-in root once cloud-init's files are there
    and before the secrets step (a reboot: what the host does, or finds, at that point).
    ``rds_ca_pem``: what the boot script fetched from the RDS trust store (index:
    postgresql), for the test the CA of its PostgreSQL server."""
    require("Orthanc", "nginx")
    stream_module = require_nginx_stream()
    template = evaluation.of_type("aws:ec2/launchTemplate:LaunchTemplate")[0]
    files = written_files(template)
    root = workdir / "host"  # stands for the instance's /

    # 1. What cloud-init writes, under the stand-in root.
    for path, content in files.items():
        target = Path(_relocate(path, root))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    if before_secrets is not None:
        before_secrets(root)

    # 2. The secrets step, with its host paths moved under the root.
    manifest = json.loads(files[paths.SECRETS_MANIFEST])
    for item in manifest["files"]:
        item["path"] = _relocate(item["path"], root)
    manifest["orthancConfig"]["path"] = _relocate(manifest["orthancConfig"]["path"], root)
    for key in ("runtimeDir", "pendingDir"):
        manifest[key] = _relocate(manifest[key], root)
    manifest["onChange"] = {}
    manifest_path = workdir / "secrets.json"
    manifest_path.write_text(json.dumps(manifest))
    store = workdir / "secret-store.json"
    bin_dir = workdir / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "aws").write_text(FAKE_AWS)
    (bin_dir / "aws").chmod(0o755)

    def materialize(source: Evaluation) -> None:
        store.write_text(json.dumps({**secret_store(source), **(extra_secrets or {})}))
        subprocess.run(
            [sys.executable, str(MATERIALIZE_SCRIPT), "--manifest", str(manifest_path)],
            env={
                **os.environ,
                "PATH": f"{bin_dir}:{os.environ['PATH']}",
                "FAKE_SECRETS": str(store),
            },
            check=True,
            capture_output=True,
        )

    materialize(evaluation)

    compose = yaml.safe_load(files[paths.COMPOSE_FILE])
    orthanc_service, nginx_service = compose["services"]["orthanc"], compose["services"]["nginx"]
    environment = {k: str(v) for k, v in orthanc_service.get("environment", {}).items()}

    # 3. Orthanc sees its config and data where compose mounts them.
    orthanc_mounts = _volumes(orthanc_service)
    config_file = Path(_relocate(orthanc_mounts[paths.ORTHANC_CONFIG_IN_CONTAINER], root))
    if orthanc_plugins:
        materialized = json.loads(config_file.read_text())
        config_file.write_text(json.dumps({**materialized, "Plugins": orthanc_plugins}))
    var_lib = workdir / "orthanc-var-lib"  # bound on /var/lib/orthanc, which Debian has
    data_host = orthanc_mounts.get(paths.ORTHANC_DB_IN_CONTAINER)
    (var_lib / "db").mkdir(parents=True, exist_ok=True)
    binds = {var_lib: "/var/lib/orthanc"}
    if data_host:
        data_dir = Path(_relocate(data_host, root))
        data_dir.mkdir(parents=True, exist_ok=True)
        binds[data_dir] = paths.ORTHANC_DB_IN_CONTAINER
    if shared_storage is not None:
        # ``shared_storage``: the S3 bucket's stand-in (Debian has no S3 plugin), one folder
        # every host of a fleet writes to, bound where the configuration stores files.
        storage_dir = json.loads(config_file.read_text())["StorageDirectory"]
        binds[shared_storage] = storage_dir
    rds_ca_host = orthanc_mounts.get(paths.RDS_CA_IN_CONTAINER)
    if rds_ca_host:
        # Where the boot script put the bundle; like compose, refuse to start without it.
        rds_ca = Path(_relocate(rds_ca_host, root))
        if rds_ca_pem is not None:
            rds_ca.parent.mkdir(parents=True, exist_ok=True)
            rds_ca.write_text(rds_ca_pem)
        if not rds_ca.is_file():
            raise FileNotFoundError(f"compose mounts {rds_ca_host} for Orthanc: not there")
        etc_orthanc = workdir / "etc-orthanc"  # bound on /etc/orthanc, which Debian has
        etc_orthanc.mkdir(exist_ok=True)
        target = Path(paths.RDS_CA_IN_CONTAINER)
        (etc_orthanc / target.name).touch()
        binds[etc_orthanc] = str(target.parent)
        binds[rds_ca] = str(target)
    orthanc = Orthanc(
        host,
        config_file,
        binds=binds,
        env=environment,
        extra_hosts=orthanc_hosts,
        verbose=orthanc_verbose,  # e.g. to see which attachments it created or deleted
    ).start()

    # 4. nginx: the rendered nginx.conf, unchanged, included from a two-line main file.
    nginx_mounts = _volumes(nginx_service)
    etc_nginx = workdir / "etc-nginx"
    (etc_nginx / "tls").mkdir(parents=True, exist_ok=True)
    (etc_nginx / "nginx.conf").write_text("")
    (etc_nginx / "orthgate-test.conf").write_text(
        f"load_module {stream_module};\ninclude {paths.NGINX_CONF_IN_CONTAINER};\n"
    )
    private = {}
    for name, target in (("tmp", "/tmp"), ("var-lib-nginx", "/var/lib/nginx"),
                         ("var-log-nginx", "/var/log/nginx")):  # fmt: skip
        (workdir / name).mkdir(exist_ok=True)
        private[workdir / name] = target
    nginx = host.spawn(
        [require("nginx")["nginx"], "-c", "/etc/nginx/orthgate-test.conf", "-g", "daemon off;"],
        binds={
            etc_nginx: "/etc/nginx",
            Path(_relocate(nginx_mounts[paths.NGINX_CONF_IN_CONTAINER], root)): (
                paths.NGINX_CONF_IN_CONTAINER
            ),
            Path(_relocate(nginx_mounts[paths.TLS_DIR_IN_CONTAINER], root)): (
                paths.TLS_DIR_IN_CONTAINER
            ),
            **private,
        },
        extra_hosts={"orthanc": "127.0.0.1"},
        label="nginx",
    )
    # Published on the same port numbers (compose "host:container"): TLS, HTTPS, plaintext.
    # The namespace nginx and Orthanc share publishes them (compose.NAMESPACE_SERVICE).
    owner = compose["services"][NAMESPACE_SERVICE]
    tls_port, _, plain_port = (int(port.split(":")[-1]) for port in owner["ports"])
    host.wait_for_port(tls_port, process=nginx)

    ca_key_pem = next(
        r.outputs["privateKeyPem"]
        for r in evaluation.of_type("tls:index/privateKey:PrivateKey")
        if r.name.endswith("dicom-ca-key")
    )
    tls_dir = Path(manifest["files"][0]["path"]).parent
    admin = json.loads(
        next(
            v for arn, v in secret_store(evaluation).items() if arn == manifest["secrets"]["admin"]
        )
    )
    settings = json.loads(config_file.read_text())
    return CloudSide(
        host=host,
        orthanc=orthanc,
        nginx=nginx,
        ca_cert_pem=(tls_dir / paths.CLIENT_CA).read_text(),
        ca_key_pem=ca_key_pem,
        ca_file=tls_dir / paths.CLIENT_CA,
        admin=(admin["username"], admin["password"]),
        tls_port=tls_port,
        ae_title=settings["DicomAet"],
        environment=environment,
        plain_port=plain_port,
        _rematerialize=materialize,
        _nginx_pid_file=workdir / "tmp" / "nginx.pid",
    )


def issued_client(
    evaluation: Evaluation, dest: Path, *, modality: str = "", site: str = ""
) -> TlsClient:
    """The client certificate the program issued to a TLS modality (stack output
    ``dicomModalityCredentials``) or to a proxy site (its bundle), as dcmtk files."""
    dest.mkdir(parents=True, exist_ok=True)
    if modality:
        issued = evaluation.outputs["dicomModalityCredentials"][modality]
        cert, key, ca = issued["certificate"], issued["privateKey"], issued["caCertificate"]
    else:
        bundle = evaluation.outputs["dicomProxyBundles"][site]
        cert, key, ca = bundle["tls/site.crt"], bundle["tls/site.key"], bundle["tls/dicom-ca.crt"]
    files = {"client.crt": cert, "client.key": key, "ca.crt": ca}
    for name, text in files.items():
        (dest / name).write_text(text)
    (dest / "client.key").chmod(0o600)
    return TlsClient(dest / "ca.crt", dest / "client.crt", dest / "client.key")
