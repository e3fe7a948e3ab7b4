"""OrthancServer: Orthanc behind a mutual-TLS terminator, on hardened EC2.

Reads top to bottom as: keys and logs, the DICOM PKI, security groups, data stores,
secrets, the host identity (IAM), then per instance: launch template, instance, address.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.aws_context import AwsContext
from components.config.orthanc import (
    HTTPS_PORT,
    ORTHANC_DICOM_PORT,
    OrthancSettings,
)
from components.iam_policies import ec2_trust_policy, orthanc_host_policy
from components.logs import area_key
from components.naming import Naming
from components.network import NetworkRefs
from components.orthanc_data import (
    DatabaseSettings,
    data_volume,
    postgresql_index,
    storage_bucket,
)
from components.pki import CertificateAuthority
from components.render import paths
from components.render.cloud_init import (
    CloudInitSpec,
    HostConfig,
    encode_user_data,
    render_cloud_init,
)
from components.render.compose import ComposeSpec, render_compose, to_yaml
from components.render.nginx import NginxSpec, render_nginx_config
from components.render.orthanc_config import (
    ADMIN_USER,
    Database,
    OrthancConfigSpec,
    Sender,
    render_orthanc_config,
    secret_values,
    to_json,
)
from components.render.secrets_manifest import (
    SecretsManifestSpec,
    manifest_json,
    render_secrets_manifest,
)

DICOM_CA_VALIDITY_DAYS = 3650
# Fixed private addresses (base of the subnet + 10) let sites configure Orthanc by IP and
# let the server certificate name them before the instance exists.
PRIVATE_HOST_OFFSET = 10
ROOT_VOLUME_GIB = 30
SSM_CORE_POLICY = "arn:{partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"


@dataclass(frozen=True)
class OrthancServerArgs:
    settings: OrthancSettings  # with environment defaults applied
    network: NetworkRefs
    context: AwsContext
    naming: Naming
    ami_id: str
    # An AMI looked up (not pinned) is kept until the operator asks for a newer one:
    # a fresh AMI at every `pulumi up` would replace the instances each time.
    ami_pinned: bool = False
    protect: bool = False
    # Senders registered besides settings.modalities (e.g. DICOM proxy sites).
    extra_senders: Sequence[Sender] = ()
    # Security groups whose members reach Orthanc privately (e.g. the Client VPN endpoint,
    # which source-NATs its clients): TLS DICOM, plaintext DICOM and HTTPS.
    private_source_groups: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


class OrthancServer(pulumi.ComponentResource):
    security_group_id: pulumi.Output[str]
    dicom_tls_port: int
    plain_dicom_port: int
    ae_title: str
    dicom_ca_cert_pem: pulumi.Output[str]
    dicom_ca: CertificateAuthority
    dicom_tls_host: pulumi.Output[str]
    https_url: pulumi.Output[str]
    instance_ids: list[pulumi.Output[str]]
    private_ips: list[str]
    public_ips: list[pulumi.Output[str]]
    bucket_name: pulumi.Output[str] | None
    database_endpoint: pulumi.Output[str] | None
    admin_password: pulumi.Output[str]
    admin_secret_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: OrthancServerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("orthgate:orthanc:OrthancServer", name, None, opts)
        settings, naming, network = args.settings, args.naming, args.network
        if settings.storage is None or settings.index is None:
            raise ValueError("OrthancServer needs settings with environment defaults applied")
        self._name, self._naming, self._args = name, naming, args
        self._child = pulumi.ResourceOptions(parent=self)
        self.dicom_tls_port = settings.dicom_tls_port
        self.plain_dicom_port = ORTHANC_DICOM_PORT
        self.ae_title = settings.ae_title

        public = settings.placement == "public"
        count = settings.instance_count
        subnet_ids = network.public_subnet_ids if public else network.private_subnet_ids
        subnet_cidrs = network.public_subnet_cidrs if public else network.private_subnet_cidrs
        zones = network.zone_names[:count]
        self.private_ips = [
            str(IPv4Network(cidr).network_address + PRIVATE_HOST_OFFSET)
            for cidr in subnet_cidrs[:count]
        ]

        # --- Keys and logs ----------------------------------------------------------------
        area = area_key(
            f"{name}-key",
            area="orthanc",
            context=args.context,
            naming=naming,
            protect=args.protect,
            opts=self._child,
        )
        key = area.key
        logs = area.log_group(
            f"{name}-logs", log_name="containers", retention_days=settings.log_retention_days
        )

        # --- Addresses and the DICOM PKI --------------------------------------------------
        eips = (
            [
                aws.ec2.Eip(
                    f"{name}-{i}-eip",
                    domain="vpc",
                    tags=self._tags(f"{i}-eip"),
                    opts=self._child,
                )
                for i in range(count)
            ]
            if public
            else []
        )
        self.public_ips = [eip.public_ip for eip in eips]
        private_dns = [self._private_dns_name(ip) for ip in self.private_ips]
        public_dns = [eip.public_dns for eip in eips]
        dns_names = pulumi.Output.all(*public_dns).apply(
            lambda names: _unique(
                ([settings.site_name] if settings.site_name else [])
                + [n for n in names if n]
                + private_dns
            )
        )
        self.dicom_tls_host = dns_names.apply(lambda names: names[0])
        self.dicom_ca = CertificateAuthority(
            f"{name}-dicom-ca",
            common_name=f"orthgate {naming.stack} DICOM CA",
            trust_domain="DICOM",
            validity_days=DICOM_CA_VALIDITY_DAYS,
            longest_leaf_days=settings.certificate_validity_days,
            rsa_bits=3072,
            opts=self._child,
        )
        self.dicom_ca_cert_pem = self.dicom_ca.cert_pem
        server_cert = self.dicom_ca.issue_server(
            f"{name}-server",
            common_name=self.dicom_tls_host,
            dns_names=dns_names,
            ip_addresses=pulumi.Output.all(*self.public_ips).apply(
                lambda ips: [ip for ip in ips if ip] + self.private_ips
            ),
            validity_days=settings.certificate_validity_days,
        )
        self.server_cert_expires_at = server_cert.expires_at

        # --- Security groups ----------------------------------------------------------------
        group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=network.vpc_id,
            description="Orthanc: DICOM TLS, plaintext DICOM and HTTPS from allowed sources",
            tags=self._tags("sg"),
            opts=self._child,
        )
        self.security_group_id = group.id
        self._ingress_rules(group, settings, network, args.private_source_groups)

        # --- Data stores ------------------------------------------------------------------------
        bucket = None
        database = None
        volume = None
        if settings.storage == "s3":
            bucket = storage_bucket(
                f"{name}-storage", key=key, naming=naming, protect=args.protect, opts=self._child
            )
        else:
            volume = data_volume(
                f"{name}-data",
                zone=zones[0],
                size_gib=settings.data_volume_gib,
                key=key,
                naming=naming,
                opts=self._child,
            )
        if settings.index == "postgresql":
            database = postgresql_index(
                f"{name}-index",
                settings=DatabaseSettings(
                    instance_class=settings.database_instance_class,
                    storage_gib=settings.database_storage_gib,
                    backup_retention_days=settings.backup_retention_days,
                ),
                vpc_id=network.vpc_id,
                subnet_ids=network.private_subnet_ids,
                client_security_group_id=group.id,
                key=key,
                naming=naming,
                protect=args.protect,
                opts=self._child,
            )
        self._egress_rules(group, database.security_group_id if database else None)
        self.bucket_name = bucket.bucket if bucket else None
        self.database_endpoint = database.address if database else None

        # --- Secrets (Secrets Manager, encrypted with the Orthanc key) --------------------------
        tls_secret = self._secret(
            "tls",
            "server certificate, private key and DICOM CA for nginx",
            pulumi.Output.all(
                server_cert.cert_pem, server_cert.private_key_pem, self.dicom_ca.cert_pem
            ).apply(
                lambda v: json.dumps(
                    {"certificate": v[0], "privateKey": v[1], "caCertificate": v[2]}
                )
            ),
            key,
        )
        password = random.RandomPassword(
            f"{name}-admin-password",
            length=32,
            # Letters and digits only: the value is merged into JSON and typed by people.
            special=False,
            min_lower=4,
            min_upper=4,
            min_numeric=4,
            opts=self._child,
        )
        self.admin_password = pulumi.Output.secret(password.result)
        admin_secret = self._secret(
            "admin",
            "Orthanc administrator (REST API and web UI)",
            password.result.apply(lambda p: json.dumps({"username": ADMIN_USER, "password": p})),
            key,
        )
        self.admin_secret_arn = admin_secret.arn
        # Orthanc's configuration, without its passwords. Kept here rather than in user
        # data so that registering a sender updates the host in place (within 15 minutes)
        # instead of replacing the instance.
        senders = [Sender(m.name, m.ae_title) for m in settings.modalities]
        senders += list(args.extra_senders)
        config_secret = self._secret(
            "config",
            "Orthanc configuration (orthanc.json without passwords)",
            pulumi.Output.all(
                bucket.bucket if bucket else None, database.address if database else None
            ).apply(
                lambda v: json.dumps(
                    {
                        "orthanc.json": to_json(
                            render_orthanc_config(
                                self._orthanc_spec(senders, bucket=v[0], database=v[1])
                            )
                        )
                    }
                )
            ),
            key,
        )
        secret_arns = {
            "tls": tls_secret.arn,
            "admin": admin_secret.arn,
            "config": config_secret.arn,
        }
        if database:
            secret_arns["database"] = database.master_secret_arn
        # Where orthanc.json takes its passwords from, at each start on the host.
        self._secret_values = secret_values(
            self._orthanc_spec(senders, bucket=None, database="" if database else None)
        )

        # --- Host identity: least privilege -------------------------------------------------
        profile = self._instance_profile(
            secret_arns=list(secret_arns.values()),
            key=key,
            logs=logs,
            bucket=bucket,
        )

        # --- Instances --------------------------------------------------------------------------
        host_inputs = pulumi.Output.all(
            secrets=pulumi.Output.all(**secret_arns),
            log_group=logs.name,
            volume=volume.id if volume else None,
        )
        self.instance_ids = []
        for i in range(count):
            user_data = host_inputs.apply(
                lambda v, i=i: self._user_data(v, instance_label=f"orthanc-{i}")
            )
            template = aws.ec2.LaunchTemplate(
                f"{name}-{i}-template",
                description=f"orthgate {naming.stack} Orthanc host {i}",
                image_id=args.ami_id,
                instance_type=settings.instance_type,
                iam_instance_profile={"arn": profile.arn},
                vpc_security_group_ids=[group.id],
                metadata_options={
                    "http_endpoint": "enabled",
                    "http_tokens": "required",  # IMDSv2 only
                    "http_put_response_hop_limit": 2,  # one hop more, for containers
                    "instance_metadata_tags": "disabled",
                },
                monitoring={"enabled": True},
                ebs_optimized="true",
                block_device_mappings=[
                    {
                        "device_name": "/dev/xvda",
                        "ebs": {
                            "volume_size": ROOT_VOLUME_GIB,
                            "volume_type": "gp3",
                            "encrypted": "true",
                            "kms_key_id": key.arn,
                            "delete_on_termination": "true",
                        },
                    }
                ],
                user_data=user_data,
                update_default_version=True,
                tag_specifications=[
                    {"resource_type": kind, "tags": self._tags(str(i))}
                    for kind in ("instance", "volume", "network-interface")
                ],
                tags=self._tags(f"{i}-template"),
                opts=pulumi.ResourceOptions(
                    parent=self, ignore_changes=[] if args.ami_pinned else ["image_id"]
                ),
            )
            instance = aws.ec2.Instance(
                f"{name}-{i}",
                launch_template={
                    "id": template.id,
                    "version": template.latest_version.apply(str),
                },
                subnet_id=subnet_ids[i],
                private_ip=self.private_ips[i],
                disable_api_termination=args.protect,
                tags=self._tags(str(i)),
                opts=self._child,
            )
            self.instance_ids.append(instance.id)
            if public:
                aws.ec2.EipAssociation(
                    f"{name}-{i}-eip-association",
                    allocation_id=eips[i].allocation_id,
                    instance_id=instance.id,
                    opts=self._child,
                )
            if volume is not None and i == 0:
                aws.ec2.VolumeAttachment(
                    f"{name}-data-attachment",
                    device_name="/dev/sdf",
                    volume_id=volume.id,
                    instance_id=instance.id,
                    stop_instance_before_detaching=True,
                    opts=self._child,
                )

        self.https_url = self.dicom_tls_host.apply(lambda host: f"https://{host}/")
        self.register_outputs(
            {
                "securityGroupId": self.security_group_id,
                "dicomTlsHost": self.dicom_tls_host,
                "dicomTlsPort": self.dicom_tls_port,
                "aeTitle": self.ae_title,
                "httpsUrl": self.https_url,
                "dicomCaCertificate": self.dicom_ca_cert_pem,
                "serverCertificateExpiresAt": self.server_cert_expires_at,
                "instanceIds": self.instance_ids,
                "privateIps": self.private_ips,
                "publicIps": self.public_ips,
                "bucketName": self.bucket_name,
                "databaseEndpoint": self.database_endpoint,
                "adminSecretArn": self.admin_secret_arn,
            }
        )

    # --- pieces -----------------------------------------------------------------------------

    def _tags(self, name: str) -> dict[str, str]:
        return self._naming.tags(f"{self._name}-{name}")

    def _private_dns_name(self, ip: str) -> str:
        region = self._args.context.region
        domain = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
        return f"ip-{ip.replace('.', '-')}.{domain}"

    def _ingress_rules(
        self,
        group: aws.ec2.SecurityGroup,
        settings: OrthancSettings,
        network: NetworkRefs,
        private_groups: Mapping[str, pulumi.Input[str]],
    ) -> None:
        """Each port open to exactly the sources allowed to use it, each pair once."""
        tls, plain = settings.dicom_tls_port, ORTHANC_DICOM_PORT
        # (port, source label) -> (rule name, source arguments, description); AWS refuses a
        # duplicate rule, so a source listed twice for the same port gets one.
        rules: dict[tuple[int, str], tuple[str, dict[str, pulumi.Input[str]], str]] = {}

        def allow(kind: str, port: int, label: str, source: dict, why: str) -> None:
            rules.setdefault((port, label), (f"{kind}-from-{label}", source, why))

        for cidr in map(str, settings.dicom_allowed_cidrs):
            allow("dicom-tls", tls, _label(cidr), {"cidr_ipv4": cidr}, "DICOM TLS, direct")
        for cidr in map(str, settings.web_allowed_cidrs):
            allow("https", HTTPS_PORT, _label(cidr), {"cidr_ipv4": cidr}, "HTTPS, web users")
        private = [(_label(c), {"cidr_ipv4": c}) for c in network.private_path_cidrs] + [
            (name, {"referenced_security_group_id": group_id})
            for name, group_id in private_groups.items()
        ]
        for label, source in private:
            why = f"private path ({label})"
            allow("dicom-tls", tls, label, source, f"DICOM TLS, {why}")
            allow("dicom-plain", plain, label, source, f"DICOM plaintext, {why}")
            allow("https", HTTPS_PORT, label, source, f"HTTPS, {why}")

        for (port, _), (rule, source, description) in rules.items():
            aws.vpc.SecurityGroupIngressRule(
                f"{self._name}-{rule}",
                security_group_id=group.id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                description=description,
                opts=self._child,
                **source,
            )

    def _egress_rules(
        self, group: aws.ec2.SecurityGroup, database_group: pulumi.Output[str] | None
    ) -> None:
        # HTTPS out: container images, AWS APIs (S3, Secrets Manager, SSM, CloudWatch).
        aws.vpc.SecurityGroupEgressRule(
            f"{self._name}-https-out",
            security_group_id=group.id,
            ip_protocol="tcp",
            from_port=HTTPS_PORT,
            to_port=HTTPS_PORT,
            cidr_ipv4="0.0.0.0/0",
            description="HTTPS to AWS APIs and the container registry",
            opts=self._child,
        )
        if database_group is not None:
            aws.vpc.SecurityGroupEgressRule(
                f"{self._name}-postgresql-out",
                security_group_id=group.id,
                ip_protocol="tcp",
                from_port=5432,
                to_port=5432,
                referenced_security_group_id=database_group,
                description="PostgreSQL to the Orthanc index",
                opts=self._child,
            )

    def _secret(
        self, role: str, description: str, value: pulumi.Output[str], key: aws.kms.Key
    ) -> aws.secretsmanager.Secret:
        secret = aws.secretsmanager.Secret(
            f"{self._name}-{role}-secret",
            name_prefix=f"orthgate/{self._naming.stack}/orthanc/{role}-",
            description=f"orthgate {self._naming.stack}: {description}",
            kms_key_id=key.arn,
            recovery_window_in_days=30 if self._args.protect else 7,
            tags=self._tags(f"{role}-secret"),
            opts=self._child,
        )
        aws.secretsmanager.SecretVersion(
            f"{self._name}-{role}-secret-value",
            secret_id=secret.id,
            secret_string=pulumi.Output.secret(value),
            opts=self._child,
        )
        return secret

    def _instance_profile(
        self,
        *,
        secret_arns: list[pulumi.Output[str]],
        key: aws.kms.Key,
        logs: aws.cloudwatch.LogGroup,
        bucket: aws.s3.Bucket | None,
    ) -> aws.iam.InstanceProfile:
        context = self._args.context
        role = aws.iam.Role(
            f"{self._name}-role",
            description="Orthanc host: its own secrets, bucket, key and logs; SSM sessions",
            assume_role_policy=json.dumps(ec2_trust_policy(context)),
            tags=self._tags("role"),
            opts=self._child,
        )
        aws.iam.RolePolicyAttachment(
            f"{self._name}-ssm-core",
            role=role.name,
            policy_arn=SSM_CORE_POLICY.format(partition=context.partition),
            opts=self._child,
        )
        aws.iam.RolePolicy(
            f"{self._name}-host-policy",
            role=role.id,
            policy=pulumi.Output.all(
                secrets=pulumi.Output.all(*secret_arns),
                key=key.arn,
                logs=logs.arn,
                bucket=bucket.arn if bucket else None,
            ).apply(
                lambda v: json.dumps(
                    orthanc_host_policy(
                        context,
                        secret_arns=list(v["secrets"]),
                        key_arn=v["key"],
                        log_group_arn=v["logs"],
                        bucket_arn=v["bucket"],
                    )
                )
            ),
            opts=self._child,
        )
        return aws.iam.InstanceProfile(
            f"{self._name}-profile", role=role.name, tags=self._tags("profile"), opts=self._child
        )

    def _orthanc_spec(
        self, senders: list[Sender], *, bucket: str | None, database: str | None
    ) -> OrthancConfigSpec:
        settings = self._args.settings
        return OrthancConfigSpec(
            name=f"orthgate-{self._naming.stack}",
            ae_title=settings.ae_title,
            senders=senders,
            storage="s3" if settings.storage == "s3" else "filesystem",
            s3_bucket=bucket,
            s3_region=self._args.context.region if settings.storage == "s3" else None,
            database=Database(host=database) if database is not None else None,
        )

    def _user_data(self, values: dict, instance_label: str) -> str:
        settings, context = self._args.settings, self._args.context
        manifest = render_secrets_manifest(
            SecretsManifestSpec(
                region=context.region,
                secret_arns=values["secrets"],
                orthanc_values=self._secret_values,
            )
        )
        compose = render_compose(
            ComposeSpec(
                orthanc_image=settings.image,
                nginx_image=settings.nginx_image,
                dicom_tls_port=settings.dicom_tls_port,
                https_port=HTTPS_PORT,
                plain_dicom_port=ORTHANC_DICOM_PORT,
                log_group=values["log_group"],
                region=context.region,
                instance_label=instance_label,
                data_dir=paths.HOST_DATA_DIR if values["volume"] else None,
            )
        )
        cloud_init = render_cloud_init(
            CloudInitSpec(
                host=HostConfig(
                    compose_yaml=to_yaml(compose),
                    nginx_conf=render_nginx_config(
                        NginxSpec(dicom_tls_port=settings.dicom_tls_port)
                    ),
                    secrets_manifest_json=manifest_json(manifest),
                ),
                data_volume_id=values["volume"],
            )
        )
        return encode_user_data(cloud_init)


def _label(cidr: str) -> str:
    return cidr.replace("/", "-")


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))
