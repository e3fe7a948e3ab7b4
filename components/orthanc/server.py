"""OrthancServer: Orthanc behind mutual-TLS terminators, on hosts that can be replaced.

Reads top to bottom as: the plan, keys and logs, security groups, data stores, load
balancers, the DICOM PKI, secrets, the hosts' identity, then the hosts themselves: one
replaceable instance, or a fleet rolling behind the load balancers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network

import pulumi
import pulumi_aws as aws

from orthgate.components.aws_context import AwsContext
from orthgate.components.config.certificates import (
    DICOM_TRUST_DOMAIN,
    TLS_MODALITY_UNIT,
    orthanc_server_common_name,
    reissue_suffix,
    tls_modality_common_name,
)
from orthgate.components.config.errors import key_path
from orthgate.components.config.orthanc import ORTHANC_DICOM_PORT, OrthancSettings
from orthgate.components.crl import issued_serial
from orthgate.components.logs import area_key
from orthgate.components.naming import Naming
from orthgate.components.network import NetworkRefs
from orthgate.components.orthanc import access, configuration, hosts, identity, load_balancing
from orthgate.components.orthanc.data import (
    DatabaseSettings,
    data_volume,
    postgresql_index,
    storage_bucket,
)
from orthgate.components.orthanc.plan import HOST, OrthancPlan, plan_orthanc
from orthgate.components.pki import CertificateAuthority, IssuedCertificate
from orthgate.components.render import paths
from orthgate.components.render.docker_networks import container_block, sender_ranges
from orthgate.components.render.orthanc_config import Sender

DICOM_CA_VALIDITY_DAYS = 3650


@dataclass(frozen=True)
class OrthancServerArgs:
    settings: OrthancSettings  # with environment defaults applied
    network: NetworkRefs
    context: AwsContext
    naming: Naming
    ami_id: str
    # A pinned AMI (orthgate:orthanc.amiId) changes only when the operator changes it.
    ami_pinned: bool = False
    architecture: str = "x86_64"  # of the instance type, and so of the AMI
    protect: bool = False
    # Senders registered besides settings.modalities (e.g. DICOM proxy sites).
    # Every sender Orthanc registers, in order (config.rendered_sizes.registered_senders).
    senders: Sequence[Sender] = ()
    # (site, CIDR): DICOM proxy sites' egress addresses, admitted to DICOM TLS.
    proxy_sources: Sequence[tuple[str, str]] = ()
    # Security groups whose members reach Orthanc privately (e.g. the Client VPN endpoint,
    # which source-NATs its clients): TLS DICOM, plaintext DICOM and HTTPS.
    private_source_groups: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # Where plaintext DICOM may come from, as Orthanc's host sees it: the private paths and
    # the Client VPN's subnets (config.sender_rules.plaintext_source_ranges, which the
    # config rules check sourceCidrs against).
    plaintext_sources: Sequence[str] = ()
    # site -> serial of its current certificate. The sites get their certificates from this
    # server's CA, so the stack fills this once they exist; it is read when the revocation
    # list resolves, which is after the program has declared everything.
    site_serials: dict[str, pulumi.Output[str | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class Monitored:
    """What the alarms watch, as the tier declared it."""

    fleet: bool
    healthy_hosts_expected: int
    # A new host fails its checks until it has booted: no alarm for that.
    boot_seconds: int
    # (load balancer role, its arn suffix, listener key, target group arn suffix)
    target_groups: list[tuple[str, pulumi.Output[str], str, pulumi.Output[str]]]
    instance_ids: list[pulumi.Output[str]]
    database_identifier: pulumi.Output[str] | None
    database_storage_gib: int
    disk_paths: list[str]


class OrthancServer(pulumi.ComponentResource):
    plan: OrthancPlan
    security_group_id: pulumi.Output[str]
    direct_tls_security_group_id: pulumi.Output[str]
    dicom_tls_port: int
    plain_dicom_port: int
    ae_title: str
    dicom_ca: CertificateAuthority
    dicom_ca_cert_pem: pulumi.Output[str]
    # TLS modality -> its certificate (the private key is a secret), and its serial.
    modality_certificates: dict[str, IssuedCertificate]
    modality_serials: dict[str, pulumi.Output[str]]
    dicom_tls_host: pulumi.Output[str]
    https_url: pulumi.Output[str]
    private_endpoints: list[str]
    instance_ids: list[pulumi.Output[str]]
    private_ips: list[str]
    public_ips: list[pulumi.Output[str]]
    autoscaling_group_name: pulumi.Output[str] | None
    load_balancers: dict[str, pulumi.Output[dict]]
    bucket_name: pulumi.Output[str] | None
    database_endpoint: pulumi.Output[str] | None
    admin_password: pulumi.Output[str]
    admin_secret_arn: pulumi.Output[str]
    ami: pulumi.Output[dict]
    monitored: Monitored

    def __init__(
        self, name: str, args: OrthancServerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("orthgate:orthanc:OrthancServer", name, None, opts)
        settings, naming, network, context = args.settings, args.naming, args.network, args.context
        if settings.storage is None or settings.index is None or settings.hosting is None:
            raise ValueError("OrthancServer needs settings with environment defaults applied")
        self._name, self._naming, self._args = name, naming, args
        child = pulumi.ResourceOptions(parent=self)
        self.dicom_tls_port = settings.dicom_tls_port
        self.plain_dicom_port = ORTHANC_DICOM_PORT
        self.ae_title = settings.ae_title

        # --- The plan: where everything sits and who may reach it ---------------------------
        plan = self.plan = plan_orthanc(
            settings,
            public_subnets=network.public_subnet_cidrs,
            private_subnets=network.private_subnet_cidrs,
            private_path_cidrs=network.private_path_cidrs,
            private_source_groups=list(args.private_source_groups),
            nat_gateways=network.nat_gateways,
            proxy_sources=args.proxy_sources,
        )
        self.private_endpoints = list(plan.private_endpoints)
        subnet_ids = {"public": network.public_subnet_ids, "private": network.private_subnet_ids}

        # --- Keys and logs ---------------------------------------------------------------------
        area = area_key(
            f"{name}-key",
            area="orthanc",
            context=context,
            naming=naming,
            protect=args.protect,
            opts=child,
        )
        key = area.key
        logs = area.log_group(
            f"{name}-logs", log_name="containers", retention_days=settings.log_retention_days
        )

        # --- Security groups -------------------------------------------------------------------
        groups = access.security_groups(
            name, plan, vpc_id=network.vpc_id, naming=naming, opts=child
        )
        self.security_group_id = groups[HOST].id
        self.direct_tls_security_group_id = groups[plan.direct_tls_group].id
        access.ingress_rules(name, plan, groups, args.private_source_groups, child)

        # --- Data stores ------------------------------------------------------------------------
        bucket = volume = database = None
        if settings.storage == "s3":
            bucket = storage_bucket(
                f"{name}-storage",
                key=key,
                context=context,
                naming=naming,
                protect=args.protect,
                access_log_retention_days=settings.access_log_retention_days,
                opts=child,
            )
        else:
            volume = data_volume(
                f"{name}-data",
                zone=network.zone_names[0],
                size_gib=settings.data_volume_gib,
                key=key,
                naming=naming,
                protect=args.protect,
                opts=child,
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
                client_security_group_id=groups[HOST].id,
                key=key,
                naming=naming,
                protect=args.protect,
                opts=child,
                address_reservations=network.address_reservations,
            )
        access.egress_rules(
            name, plan, groups, database.security_group_id if database else None, child
        )
        self.bucket_name = bucket.bucket if bucket else None
        self.database_endpoint = database.address if database else None

        # --- Stable addresses: an Elastic IP for a public single host, or load balancers ------
        eip = None
        if not plan.fleet and plan.host_tier == "public":
            eip = aws.ec2.Eip(
                f"{name}-0-eip", domain="vpc", tags=naming.tags(f"{name}-0-eip"), opts=child
            )
        balancers = load_balancing.load_balancers(
            name,
            plan,
            public_subnet_ids=network.public_subnet_ids,
            private_subnet_ids=network.private_subnet_ids,
            vpc_id=network.vpc_id,
            groups=groups,
            address_reservations=network.address_reservations,
            naming=naming,
            opts=child,
        )

        # --- The DICOM PKI: one certificate naming every address senders use ----------------
        if plan.fleet:
            dns_names = [balancers[role].dns_name for role in balancers]
            ip_addresses = [balancers[role].addresses for role in balancers]
        else:
            dns_names = [eip.public_dns] if eip else []
            dns_names.append(
                pulumi.Output.from_input(self._private_dns_name(plan.private_endpoints[0]))
            )
            ip_addresses = [
                pulumi.Output.all(eip.public_ip) if eip else pulumi.Output.from_input([])
            ]
            ip_addresses.append(pulumi.Output.from_input(list(plan.private_endpoints)))
        names = pulumi.Output.all(*dns_names).apply(
            lambda found: _unique(
                ([settings.site_name] if settings.site_name else []) + list(found)
            )
        )
        self.dicom_tls_host = names.apply(lambda found: found[0])
        self.https_url = self.dicom_tls_host.apply(lambda host: f"https://{host}/")
        self.dicom_ca = CertificateAuthority(
            f"{name}-dicom-ca",
            common_name=naming.common_name("DICOM CA"),
            trust_domain=DICOM_TRUST_DOMAIN,
            validity_days=DICOM_CA_VALIDITY_DAYS,
            longest_leaf_days=settings.certificate_validity_days,
            rsa_bits=3072,
            opts=child,
        )
        self.dicom_ca_cert_pem = self.dicom_ca.cert_pem
        # X.509 caps a common name at 64 characters, which a load balancer's DNS name can
        # pass; clients check the alternative names anyway.
        fallback = naming.common_name("Orthanc")
        common_name = self.dicom_tls_host.apply(
            lambda host: orthanc_server_common_name(host, fallback)
        )
        server_cert = self.dicom_ca.issue_server(
            f"{name}-server",
            common_name=common_name,
            dns_names=names,
            ip_addresses=pulumi.Output.all(*ip_addresses).apply(
                lambda lists: _unique([ip for found in lists for ip in found if ip])
            ),
            validity_days=settings.certificate_validity_days,
        )
        self.server_cert_expires_at = server_cert.expires_at
        # TLS modalities: a client certificate each, CN = the modality's name; a revocation
        # naming one re-issues its key and certificate under new names.
        self.modality_certificates = {
            m.name: self.dicom_ca.issue_client(
                f"{name}-modality-{m.name}{reissue_suffix(settings.certificate_generation(m.name))}",
                common_name=tls_modality_common_name(m.name),
                validity_days=settings.certificate_validity_days,
                unit=TLS_MODALITY_UNIT,
            )
            for m in settings.modalities
            if m.connection == "tls"
        }
        self.modality_serials = {
            modality: certificate.cert_pem.apply(issued_serial)
            for modality, certificate in self.modality_certificates.items()
        }
        # nginx refuses every certificate listed, a retired sender's too. The list reaches
        # the hosts only once the guard has seen every configured sender's current serial.
        listed = self.dicom_ca.revocation_list(
            [revoked.serial for revoked in settings.revoked_certificates]
        )
        self.revocation_list = pulumi.Output.all(
            _guard_current_certificates(
                settings, lambda: {**self.modality_serials, **args.site_serials}
            ),
            listed,
        ).apply(lambda v: v[1])

        # --- Secrets (Secrets Manager, encrypted with the Orthanc key) ------------------------
        senders = list(args.senders)
        writer = configuration.SecretWriter(
            name, key=key, naming=naming, protect=args.protect, opts=child
        )
        secrets = configuration.host_secrets(
            name,
            writer,
            settings=settings,
            context=context,
            naming=naming,
            server_cert=server_cert,
            ca_cert_pem=self.dicom_ca.cert_pem,
            revocation_list=self.revocation_list,
            senders=senders,
            plaintext_sources=list(args.plaintext_sources),
            bucket_name=self.bucket_name,
            database_address=self.database_endpoint,
            database_secret_arn=database.master_secret_arn if database else None,
            opts=child,
        )
        self.admin_password = secrets.admin_password
        self.admin_secret_arn = secrets.admin_secret_arn

        # --- Host identity: least privilege ----------------------------------------------------
        profile = identity.instance_profile(
            name,
            context=context,
            naming=naming,
            secret_arns=[*secrets.arns.values(), *secrets.retired_arns],
            key=key,
            logs=logs,
            bucket=bucket,
            opts=child,
            # Through a Secrets Manager endpoint, the secrets are readable from the VPC only,
            # and the policy saying so waits for the endpoint (and its private DNS).
            secrets_endpoint=network.interface_endpoints.get("secretsmanager"),
            vpc_id=network.vpc_id,
        )

        # --- Hosts --------------------------------------------------------------------------------
        follows = args.ami_pinned or settings.follows_new_amis
        disk_paths = ["/", paths.HOST_DATA_DIR] if volume else ["/"]
        allowed = [str(c) for c in (*settings.dicom_allowed_cidrs, *settings.web_allowed_cidrs)]
        docker_block = container_block(
            IPv4Network(network.vpc_cidr), sender_ranges(network.private_path_cidrs, allowed)
        )
        user_data = pulumi.Output.all(
            arns=pulumi.Output.all(**secrets.arns),
            log_group=logs.name,
            volume=volume.id if volume else None,
        ).apply(
            lambda v: configuration.user_data(
                settings,
                context,
                naming,
                secret_arns=v["arns"],
                log_group=v["log_group"],
                volume_id=v["volume"],
                instance_label=None if plan.fleet else "orthanc-0",
                uses_database=database is not None,
                disk_paths=disk_paths,
                docker_block=docker_block,
            )
        )
        template = hosts.HostTemplate(
            ami_id=args.ami_id,
            architecture=args.architecture,
            follow_new_amis=follows,
            instance_type=settings.instance_type,
            instance_profile_arn=profile.arn,
            security_group_id=groups[HOST].id,
            kms_key_arn=key.arn,
            user_data=user_data,
            public_ip=plan.hosts_need_public_ip,
            # nginx shares Orthanc's network namespace, so it can reach IMDS whenever
            # Orthanc can: only with storage: s3, whose plugin takes the instance role.
            containers_use_instance_role=settings.storage == "s3",
            # No host boots before the secret values it reads are written (a first boot
            # would otherwise find an older format, and fail until they are).
            waits_for=writer.versions,
        )
        host_subnets = subnet_ids[plan.host_tier]
        self.instance_ids, self.private_ips, self.public_ips = [], [], []
        self.autoscaling_group_name = None
        if plan.fleet:
            low, desired, high = settings.fleet_sizes
            group = hosts.host_fleet(
                name,
                template,
                subnet_ids=[host_subnets[z] for z in plan.host_zones],
                sizes=hosts.FleetSizes(
                    min=low,
                    desired=desired,
                    max=high,
                    target_cpu_percent=settings.fleet.target_cpu_percent,
                    health_check_grace_seconds=settings.fleet.health_check_grace_seconds,
                ),
                balancers=list(balancers.values()),
                naming=naming,
                opts=child,
            )
            self.autoscaling_group_name = group.name
            deployed_ami = None
        else:
            single = hosts.single_host(
                name,
                template,
                subnet_id=host_subnets[0],
                private_ip=str(plan.fixed_host_address),
                eip=eip,
                volume=volume,
                termination_protection=args.protect,
                address_reservations=network.address_reservations,
                naming=naming,
                opts=child,
            )
            self.instance_ids = [single.instance.id]
            self.private_ips = list(plan.private_endpoints)
            self.public_ips = [eip.public_ip] if eip else []
            deployed_ami = single.template.image_id
        self.ami = self._ami_report(args.ami_id, follows, deployed_ami)
        self.load_balancers = {
            role: pulumi.Output.all(b.dns_name, b.addresses).apply(
                lambda v: {"dnsName": v[0], "addresses": list(v[1])}
            )
            for role, b in balancers.items()
        }
        self.monitored = Monitored(
            fleet=plan.fleet,
            healthy_hosts_expected=settings.fleet_sizes[0] if plan.fleet else 1,
            boot_seconds=settings.fleet.health_check_grace_seconds,
            target_groups=[
                (role, b.arn_suffix, listener_key, group.arn_suffix)
                for role, b in balancers.items()
                for listener_key, group in b.target_groups.items()
            ],
            instance_ids=self.instance_ids,
            database_identifier=database.identifier if database else None,
            database_storage_gib=settings.database_storage_gib,
            disk_paths=disk_paths,
        )

        self.register_outputs(
            {
                "hosting": settings.hosting,
                "securityGroupId": self.security_group_id,
                "dicomTlsHost": self.dicom_tls_host,
                "dicomTlsPort": self.dicom_tls_port,
                "aeTitle": self.ae_title,
                "httpsUrl": self.https_url,
                "dicomCaCertificate": self.dicom_ca_cert_pem,
                "dicomRevocationList": self.revocation_list,
                "modalitySerials": self.modality_serials,
                "serverCertificateExpiresAt": self.server_cert_expires_at,
                "privateEndpoints": self.private_endpoints,
                "instanceIds": self.instance_ids,
                "privateIps": self.private_ips,
                "publicIps": self.public_ips,
                "autoscalingGroupName": self.autoscaling_group_name,
                "loadBalancers": self.load_balancers,
                "bucketName": self.bucket_name,
                "databaseEndpoint": self.database_endpoint,
                "adminSecretArn": self.admin_secret_arn,
                "ami": self.ami,
            }
        )

    # --- pieces -----------------------------------------------------------------------------

    def _private_dns_name(self, ip: str) -> str:
        region = self._args.context.region
        domain = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
        return f"ip-{ip.replace('.', '-')}.{domain}"

    def _ami_report(
        self, latest: str, follows: bool, deployed: pulumi.Output[str] | None
    ) -> pulumi.Output[dict]:
        """Which AMI the hosts run and whether a newer one waits; held ones are announced."""
        if deployed is None or follows:
            return pulumi.Output.from_input({"latest": latest, "follows": follows})

        def report(current: str) -> dict:
            if current and current != latest:
                pulumi.log.warn(
                    f"Orthanc host runs AMI {current}; {latest} is newer and held back "
                    "(orthgate:orthanc.amiUpdates: hold). Set amiUpdates: follow, or run "
                    "`pulumi up --replace` on the instance, to move to it: a few minutes "
                    "without Orthanc.",
                    resource=self,
                )
            return {"latest": latest, "deployed": current, "follows": False}

        return deployed.apply(report)


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _guard_current_certificates(
    settings: OrthancSettings, current: Callable[[], Mapping[str, pulumi.Output[str | None]]]
) -> pulumi.Output[None]:
    """Resolves once no revocation lists another configured sender's current certificate
    (a serial copied from the wrong line): that would lock the sender out with nothing
    re-issued. Naming the right sender re-issues its certificate, so its current one is
    never listed. It fails instead, before the list can reach any host."""

    def check(serials: dict[str, str | None]) -> None:
        owners = {serial: sender for sender, serial in serials.items() if serial}
        for i, revoked in enumerate(settings.revoked_certificates):
            owner = owners.get(revoked.serial)
            if owner is not None and owner != revoked.sender:
                raise pulumi.RunError(
                    f"{key_path(('orthanc', 'revokedCertificates', i))} lists "
                    f"{revoked.serial}, the serial of {owner}'s current certificate, under "
                    f"{revoked.sender}: nginx would refuse {owner} with nothing re-issued. "
                    f"If that certificate is the one to revoke, name {owner} in the entry "
                    "(its certificate is then re-issued); otherwise correct the serial"
                )

    if not settings.revoked_certificates:
        return pulumi.Output.from_input(None)
    # Deferred: the callable runs when this resolves, once the sites have been declared.
    return pulumi.Output.from_input(None).apply(
        lambda _: pulumi.Output.all(**current()).apply(check)
    )
