"""What the hosts are told: Secrets Manager secrets (keys, passwords, orthanc.json) and
the user data (scripts, units, compose and nginx files, none of them secret).

orthanc.json travels as a secret rather than in user data so that registering a sender
updates running hosts within 15 minutes instead of replacing them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from orthgate.components.aws_context import AwsContext
from orthgate.components.config.orthanc import (
    HTTPS_PORT,
    ORTHANC_DICOM_PORT,
    ORTHANC_HTTP_PORT,
    ORTHANC_LOOPBACK_DICOM_PORT,
    OrthancSettings,
)
from orthgate.components.naming import Naming
from orthgate.components.pki import IssuedCertificate
from orthgate.components.render import paths
from orthgate.components.render.cloud_init import (
    CloudInitSpec,
    HostConfig,
    encode_user_data,
    rds_ca_bundle_url,
    render_cloud_init,
)
from orthgate.components.render.cloudwatch_agent import AgentSpec
from orthgate.components.render.compose import ComposeSpec, render_compose, to_yaml
from orthgate.components.render.docker_networks import daemon_config
from orthgate.components.render.nginx import NginxSpec, render_nginx_config
from orthgate.components.render.orthanc_config import (
    ADMIN_USER,
    Database,
    OrthancConfigSpec,
    Sender,
    render_orthanc_config,
    secret_values,
    to_json,
)
from orthgate.components.render.secrets_manifest import (
    SecretsManifestSpec,
    manifest_json,
    render_secrets_manifest,
)
from orthgate.components.render.sender_identity import render_sender_maps

# Each secret's name, by its role in the hosts' manifest. nginx's files and Orthanc's
# settings changed format with sender identity (nginx shares Orthanc's namespace, Orthanc
# checks every sender's loopback address), which hosts of an earlier release cannot use:
# they are new secrets, so that such hosts, still serving while a fleet rolls, keep reading
# the old ones (``tls`` and ``config``) until they are replaced.
SECRET_NAMES = {"tls": "nginx-files", "admin": "admin", "config": "settings"}
# The two secrets of the earlier release, by name and description, kept for one release with
# the value they had and readable by the hosts: hosts still running the earlier user data
# (while a fleet rolls, after an instance refresh rolls back, or a reboot on the way) find
# theirs. Nothing of this release reads them; the next release deletes them.
RETIRED_SECRETS = {
    "tls": "server certificate, private key and DICOM CA for nginx",
    "config": "Orthanc configuration (orthanc.json without passwords)",
}


@dataclass(frozen=True)
class HostSecrets:
    arns: dict[str, pulumi.Output[str]]  # role -> secret ARN
    # RETIRED_SECRETS' ARNs: readable by the hosts, named in no manifest.
    retired_arns: list[pulumi.Output[str]]
    admin_password: pulumi.Output[str]
    admin_secret_arn: pulumi.Output[str]


class SecretWriter:
    """Secrets of one component, encrypted with its key, named under its stack."""

    def __init__(
        self,
        name: str,
        *,
        key: aws.kms.Key,
        naming: Naming,
        protect: bool,
        opts: pulumi.ResourceOptions,
    ) -> None:
        self._name, self._key, self._naming = name, key, naming
        self._protect, self._opts = protect, opts
        # What the hosts wait for: a host must not boot before the values it reads exist.
        self.versions: list[aws.secretsmanager.SecretVersion] = []

    def secret(
        self,
        role: str,
        description: str,
        value: pulumi.Output[str],
        *,
        keep_value: bool = False,
    ) -> aws.secretsmanager.Secret:
        """``keep_value``: the value is written once and never changed by the program (a
        secret kept for hosts of an earlier release: RETIRED_SECRETS)."""
        stack = self._naming.stack
        secret = aws.secretsmanager.Secret(
            f"{self._name}-{role}-secret",
            # A prefix, so a re-deploy never waits for a deleted secret's recovery window.
            name_prefix=self._naming.secret_name_prefix("orthanc", role),
            description=f"orthgate {stack}: {description}",
            kms_key_id=self._key.arn,
            recovery_window_in_days=30 if self._protect else 7,
            tags=self._naming.tags(f"{self._name}-{role}-secret"),
            opts=self._opts,
        )
        version = aws.secretsmanager.SecretVersion(
            f"{self._name}-{role}-secret-value",
            secret_id=secret.id,
            secret_string=pulumi.Output.secret(value),
            opts=pulumi.ResourceOptions.merge(
                self._opts, pulumi.ResourceOptions(ignore_changes=["secret_string"])
            )
            if keep_value
            else self._opts,
        )
        if not keep_value:
            self.versions.append(version)
        return secret


def orthanc_spec(
    settings: OrthancSettings,
    context: AwsContext,
    naming: Naming,
    senders: Sequence[Sender],
    *,
    bucket: str | None,
    database: str | None,
) -> OrthancConfigSpec:
    return OrthancConfigSpec(
        name=f"orthgate-{naming.stack}",
        ae_title=settings.ae_title,
        senders=list(senders),
        dicom_port=ORTHANC_LOOPBACK_DICOM_PORT,
        http_port=ORTHANC_HTTP_PORT,
        storage="s3" if settings.storage == "s3" else "filesystem",
        s3_bucket=bucket,
        s3_region=context.region if settings.storage == "s3" else None,
        database=Database(host=database) if database is not None else None,
        several_writers=settings.is_fleet,
    )


def config_secret_value(spec: OrthancConfigSpec) -> str:
    """The configuration secret: orthanc.json, as a string, in a JSON object.

    It grows with every registered sender; a Secrets Manager value holds at most 64 KiB,
    which ``components.config.rendered_sizes`` checks with this very function.
    """
    return json.dumps({"orthanc.json": to_json(render_orthanc_config(spec))})


def tls_secret_value(
    certificate: str,
    private_key: str,
    ca_certificate: str,
    revocation_list: str,
    *,
    senders: Sequence[Sender],
    plaintext_sources: Sequence[str],
) -> str:
    """nginx's files, one field each (secrets_manifest.TLS_FILES). ``plaintext_sources``:
    the private-path ranges plaintext DICOM may come from."""
    return json.dumps(
        {
            "certificate": certificate,
            "privateKey": private_key,
            "caCertificate": ca_certificate,
            "revocationList": revocation_list,
            "senderMaps": render_sender_maps(
                [sender.identity for sender in senders], plaintext_sources
            ),
        }
    )


def host_secrets(
    name: str,
    writer: SecretWriter,
    *,
    settings: OrthancSettings,
    context: AwsContext,
    naming: Naming,
    server_cert: IssuedCertificate,
    ca_cert_pem: pulumi.Output[str],
    revocation_list: pulumi.Output[str],
    senders: Sequence[Sender],
    plaintext_sources: Sequence[str],
    bucket_name: pulumi.Output[str] | None,
    database_address: pulumi.Output[str] | None,
    database_secret_arn: pulumi.Output[str] | None,
    opts: pulumi.ResourceOptions,
) -> HostSecrets:
    """The TLS files, the admin password and orthanc.json, each its own secret."""
    tls = writer.secret(
        SECRET_NAMES["tls"],
        "server certificate, private key, DICOM CA, its revocation list and the sender "
        "identities for nginx",
        pulumi.Output.all(
            server_cert.cert_pem, server_cert.private_key_pem, ca_cert_pem, revocation_list
        ).apply(
            lambda v: tls_secret_value(*v, senders=senders, plaintext_sources=plaintext_sources)
        ),
    )
    password = random.RandomPassword(
        f"{name}-admin-password",
        length=32,
        # Letters and digits only: the value is merged into JSON and typed by people.
        special=False,
        min_lower=4,
        min_upper=4,
        min_numeric=4,
        opts=opts,
    )
    admin = writer.secret(
        SECRET_NAMES["admin"],
        "Orthanc administrator (REST API and web UI)",
        password.result.apply(lambda p: json.dumps({"username": ADMIN_USER, "password": p})),
    )
    config = writer.secret(
        SECRET_NAMES["config"],
        "Orthanc configuration (orthanc.json without passwords)",
        pulumi.Output.all(bucket_name, database_address).apply(
            lambda v: config_secret_value(
                orthanc_spec(settings, context, naming, senders, bucket=v[0], database=v[1])
            )
        ),
    )
    arns = {"tls": tls.arn, "admin": admin.arn, "config": config.arn}
    if database_secret_arn is not None:
        arns["database"] = database_secret_arn
    # A stack deployed before keeps what it had; a new one gets an empty placeholder, which
    # no host ever reads.
    retired = [
        writer.secret(role, description, pulumi.Output.from_input("{}"), keep_value=True).arn
        for role, description in RETIRED_SECRETS.items()
    ]
    return HostSecrets(
        arns=arns,
        retired_arns=retired,
        admin_password=pulumi.Output.secret(password.result),
        admin_secret_arn=admin.arn,
    )


def user_data(
    settings: OrthancSettings,
    context: AwsContext,
    naming: Naming,
    *,
    secret_arns: Mapping[str, str],
    log_group: str,
    volume_id: str | None,
    instance_label: str | None,
    uses_database: bool,
    disk_paths: Sequence[str],
    docker_block: IPv4Network | None = None,
) -> str:
    """The cloud-init document of a host, base64 for EC2. Plain values in, text out.

    ``docker_block``: where Docker's networks go when its defaults would hide senders
    (docker_networks.container_block); None leaves Docker as it is."""
    # Where orthanc.json takes its passwords from, at each start on the host.
    values = secret_values(
        orthanc_spec(
            settings, context, naming, [], bucket=None, database="" if uses_database else None
        )
    )
    manifest = render_secrets_manifest(
        SecretsManifestSpec(region=context.region, secret_arns=secret_arns, orthanc_values=values)
    )
    compose = render_compose(
        ComposeSpec(
            orthanc_image=settings.image,
            nginx_image=settings.nginx_image,
            dicom_tls_port=settings.dicom_tls_port,
            https_port=HTTPS_PORT,
            plain_dicom_port=ORTHANC_DICOM_PORT,
            log_group=log_group,
            region=context.region,
            instance_label=instance_label,
            data_dir=paths.HOST_DATA_DIR if volume_id else None,
            rds_ca=uses_database,
        )
    )
    cloud_init = render_cloud_init(
        CloudInitSpec(
            host=HostConfig(
                compose_yaml=to_yaml(compose),
                nginx_conf=render_nginx_config(
                    NginxSpec(
                        dicom_tls_port=settings.dicom_tls_port,
                        https_port=HTTPS_PORT,
                        plain_dicom_port=ORTHANC_DICOM_PORT,
                        orthanc_dicom_port=ORTHANC_LOOPBACK_DICOM_PORT,
                        orthanc_http_port=ORTHANC_HTTP_PORT,
                    )
                ),
                secrets_manifest_json=manifest_json(manifest),
            ),
            data_volume_id=volume_id,
            metrics=AgentSpec(namespace=naming.metrics_namespace, disk_paths=disk_paths),
            docker_daemon_json=daemon_config(docker_block) if docker_block else None,
            rds_ca_url=(
                rds_ca_bundle_url(context.region, context.partition) if uses_database else None
            ),
        )
    )
    return encode_user_data(cloud_init)
