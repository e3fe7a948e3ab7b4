"""ClientVpn: AWS Client VPN with certificate authentication, for a few workstations.

Reads top to bottom as: logs, the VPN PKI (its own CA) and the ACM import, the endpoint's
security group, the endpoint, its subnet associations, authorization rules and routes, then
one client profile per workstation, and the revocation list to import into the endpoint
(no Pulumi resource imports one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network

import pulumi
import pulumi_aws as aws

from orthgate.components.aws_context import AwsContext
from orthgate.components.config.certificates import client_vpn_server_name, workstation_common_name
from orthgate.components.config.client_vpn import (
    CA_LABEL,
    SERVER_LABEL,
    ClientVpnSettings,
    workstation_label,
)
from orthgate.components.config.errors import key_path
from orthgate.components.crl import certificate_serial
from orthgate.components.logs import area_key
from orthgate.components.naming import Naming
from orthgate.components.network import NetworkRefs
from orthgate.components.pki import CertificateAuthority, IssuedCertificate
from orthgate.components.render.ovpn import ClientProfileSpec, endpoint_host, render_client_profile

VPN_CA_VALIDITY_DAYS = 3650
# Client VPN operations are slow: associations take minutes, routes about 90 s.
SLOW = pulumi.CustomTimeouts(create="30m", update="30m", delete="30m")


@dataclass(frozen=True)
class ClientVpnArgs:
    settings: ClientVpnSettings
    network: NetworkRefs
    # Where workstations may go: the subnets Orthanc lives in (besides the resolver and
    # settings.extra_authorized_cidrs).
    orthanc_subnet_cidrs: Sequence[str]
    context: AwsContext
    naming: Naming
    protect: bool = False


class ClientVpn(pulumi.ComponentResource):
    endpoint_id: pulumi.Output[str]
    dns_name: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    ca_cert_pem: pulumi.Output[str]
    ca_expires_at: pulumi.Output[str]
    server_certificate_arn: pulumi.Output[str]
    authorized_cidrs: list[str]
    routed_cidrs: list[str]
    profiles: pulumi.Output[dict[str, str]]
    client_certificates_expire_at: pulumi.Output[dict[str, str]]
    certificate_serials: pulumi.Output[dict[str, str]]
    revocation_list: pulumi.Output[str]

    def __init__(
        self, name: str, args: ClientVpnArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("orthgate:vpn:ClientVpn", name, None, opts)
        settings, naming, network = args.settings, args.naming, args.network
        if not settings.enabled or settings.client_cidr is None or not settings.workstations:
            raise ValueError("ClientVpn needs validated, enabled settings")
        self._name, self._naming = name, naming
        child = pulumi.ResourceOptions(parent=self)
        slow = pulumi.ResourceOptions(parent=self, custom_timeouts=SLOW)
        domain = settings.certificate_domain

        # --- Connection logs -------------------------------------------------------------------
        logs = area_key(
            f"{name}-key",
            area="clientvpn",
            context=args.context,
            naming=naming,
            protect=args.protect,
            opts=child,
        ).log_group(
            f"{name}-logs", log_name="connections", retention_days=settings.log_retention_days
        )

        # --- PKI: a CA for this trust domain only; RSA 2048, as AWS requires ------------------
        ca = CertificateAuthority(
            f"{name}-{CA_LABEL}",
            common_name=naming.common_name("Client VPN CA"),
            trust_domain="Client VPN",
            validity_days=VPN_CA_VALIDITY_DAYS,
            longest_leaf_days=settings.certificate_validity_days,
            rsa_bits=2048,
            opts=child,
        )
        self.ca_cert_pem = ca.cert_pem
        self.ca_expires_at = ca.expires_at
        server_name = client_vpn_server_name(domain)
        server = ca.issue_server(
            f"{name}-{SERVER_LABEL}",
            common_name=server_name,
            dns_names=[server_name],
            validity_days=settings.certificate_validity_days,
        )
        imported = aws.acm.Certificate(
            f"{name}-server-certificate",
            certificate_body=server.cert_pem,
            private_key=server.private_key_pem,
            certificate_chain=ca.cert_pem,
            tags=self._tags("server-certificate"),
            opts=child,
        )
        self.server_certificate_arn = imported.arn
        # A revoked certificate's workstation gets new resource names: a new key, a new
        # certificate, a new profile.
        generation = settings.certificate_generation
        clients: dict[str, IssuedCertificate] = {
            workstation: ca.issue_client(
                f"{name}-{workstation_label(workstation, generation(workstation))}",
                common_name=workstation_common_name(workstation, domain),
                validity_days=settings.certificate_validity_days,
            )
            for workstation in settings.workstations
        }

        # --- The endpoint's own group: SNAT makes it the source Orthanc sees --------------------
        group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=network.vpc_id,
            description="Client VPN endpoint: no inbound; outbound to what is authorized",
            tags=self._tags("sg"),
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-egress-all",
            security_group_id=group.id,
            ip_protocol="-1",
            cidr_ipv4="0.0.0.0/0",
            description="Client traffic leaves through the endpoint; authorization rules limit it",
            opts=child,
        )
        self.security_group_id = group.id

        # --- Endpoint -----------------------------------------------------------------------------
        banner = (
            {"enabled": True, "banner_text": settings.login_banner}
            if settings.login_banner
            else {"enabled": False}
        )
        endpoint = aws.ec2clientvpn.Endpoint(
            f"{name}-endpoint",
            description=f"orthgate {naming.stack}: workstations to Orthanc",
            client_cidr_block=str(settings.client_cidr),
            server_certificate_arn=imported.arn,
            authentication_options=[
                {
                    "type": "certificate-authentication",
                    # One CA signs server and clients, so the server's import is the chain.
                    "root_certificate_chain_arn": imported.arn,
                }
            ],
            connection_log_options={
                "enabled": True,
                "cloudwatch_log_group": logs.name,
            },
            # Only VPC traffic enters the tunnel; the workstation's other traffic stays local.
            split_tunnel=True,
            vpc_id=network.vpc_id,
            security_group_ids=[group.id],
            dns_servers=[network.resolver_address],
            session_timeout_hours=settings.session_timeout_hours,
            disconnect_on_session_timeout=True,
            transport_protocol=settings.transport_protocol,
            vpn_port=settings.vpn_port,
            self_service_portal="disabled",
            client_login_banner_options=banner,
            tags=self._tags("endpoint"),
            opts=slow,
        )
        self.endpoint_id = endpoint.id
        self.dns_name = endpoint.dns_name

        # Associations are the cost lever: one per zone, as many as configured. Their
        # interfaces must not take orthgate's fixed addresses: declared after the reservations.
        associations = [
            aws.ec2clientvpn.NetworkAssociation(
                f"{name}-association-{i}",
                client_vpn_endpoint_id=endpoint.id,
                subnet_id=subnet_id,
                opts=pulumi.ResourceOptions.merge(
                    slow, pulumi.ResourceOptions(depends_on=network.address_reservations)
                ),
            )
            for i, subnet_id in enumerate(network.private_subnet_ids[: settings.associated_subnets])
        ]

        # With mutual authentication there are no groups: a rule applies to every client,
        # so rules name exactly what workstations need and never 0.0.0.0/0.
        targets = dict.fromkeys(args.orthanc_subnet_cidrs, "Orthanc")
        targets[f"{network.resolver_address}/32"] = "the VPC DNS resolver"
        for cidr in settings.extra_authorized_cidrs:
            targets.setdefault(str(cidr), "extra authorized range")
        self.authorized_cidrs = list(targets)
        for cidr, why in targets.items():
            aws.ec2clientvpn.AuthorizationRule(
                f"{name}-authorize-{cidr.replace('/', '-')}",
                client_vpn_endpoint_id=endpoint.id,
                target_network_cidr=cidr,
                authorize_all_groups=True,
                description=f"workstations to {why}",
                opts=pulumi.ResourceOptions(
                    parent=self, custom_timeouts=SLOW, depends_on=associations
                ),
            )

        # Each association routes the VPC's range by itself. An extra range outside it (the
        # model admits only on-premises ranges, reached through the VPN gateway's propagated
        # routes) needs a route through every associated subnet, which split tunnel pushes
        # to the workstations; a route's subnet must be associated first.
        self.routed_cidrs = [
            str(cidr)
            for cidr in settings.extra_authorized_cidrs
            if not cidr.subnet_of(IPv4Network(network.vpc_cidr))
        ]
        for cidr in self.routed_cidrs:
            for i, association in enumerate(associations):
                aws.ec2clientvpn.Route(
                    f"{name}-route-{cidr.replace('/', '-')}-{i}",
                    client_vpn_endpoint_id=endpoint.id,
                    destination_cidr_block=cidr,
                    target_vpc_subnet_id=association.subnet_id,
                    description="workstations to an on-premises range, through the VPC",
                    opts=pulumi.ResourceOptions(
                        parent=self, custom_timeouts=SLOW, depends_on=[association]
                    ),
                )

        # --- Profiles: one per workstation, secret (each holds a private key) --------------------
        names = list(clients)
        self.profiles = pulumi.Output.secret(
            pulumi.Output.all(
                endpoint.dns_name,
                ca.cert_pem,
                *[clients[n].cert_pem for n in names],
                *[clients[n].private_key_pem for n in names],
            ).apply(
                lambda v: {
                    workstation: render_client_profile(
                        ClientProfileSpec(
                            remote_host=endpoint_host(v[0]),
                            port=settings.vpn_port,
                            protocol=settings.transport_protocol,
                            server_name=server_name,
                            ca_pem=v[1],
                            cert_pem=v[2 + i],
                            key_pem=v[2 + len(names) + i],
                        )
                    )
                    for i, workstation in enumerate(names)
                }
            )
        )
        self.client_certificates_expire_at = pulumi.Output.all(
            *[clients[n].expires_at for n in names]
        ).apply(lambda ends: dict(zip(names, ends, strict=True)))

        # --- Revocation: serials to copy into revokedCertificates, and the list to import ------
        self.certificate_serials = pulumi.Output.all(*[clients[n].cert_pem for n in names]).apply(
            lambda pems: _current_serials(settings, dict(zip(names, pems, strict=True)))
        )
        # Public (it holds serials and the CA's signature); the endpoint refuses its entries
        # once imported with `aws ec2 import-client-vpn-client-certificate-revocation-list`.
        self.revocation_list = ca.revocation_list(
            [revoked.serial for revoked in settings.revoked_certificates]
        )

        self.register_outputs(
            {
                "endpointId": self.endpoint_id,
                "dnsName": self.dns_name,
                "securityGroupId": self.security_group_id,
                "caCertificate": self.ca_cert_pem,
                "serverCertificateArn": self.server_certificate_arn,
                "authorizedCidrs": self.authorized_cidrs,
                "routedCidrs": self.routed_cidrs,
                "profiles": self.profiles,
                "clientCertificatesExpireAt": self.client_certificates_expire_at,
                "certificateSerials": self.certificate_serials,
                "revocationList": self.revocation_list,
            }
        )

    def _tags(self, name: str) -> dict[str, str]:
        return self._naming.tags(f"{self._name}-{name}")


def _current_serials(settings: ClientVpnSettings, cert_pems: dict[str, str]) -> dict[str, str]:
    """Each workstation's current serial. One that the revocation list holds would lock the
    workstation out once the list is imported: an entry naming another workstation (a
    mix-up) is the only way there, since naming the right one re-issues its certificate."""
    serials = {
        workstation: certificate_serial(pem)
        for workstation, pem in cert_pems.items()
        if pem  # pulumi-tls always returns one; a mock that only echoes inputs does not
    }
    owners = {serial: workstation for workstation, serial in serials.items()}
    for i, revoked in enumerate(settings.revoked_certificates):
        if revoked.serial in owners:
            current = owners[revoked.serial]
            raise pulumi.RunError(
                f"{key_path(('clientVpn', 'revokedCertificates', i))} lists {revoked.serial}, "
                f"the serial of {current}'s current certificate, under the workstation "
                f"{revoked.workstation}: once imported, the list would lock {current} out. If "
                f"that certificate is the one to revoke, name {current} in the entry (its "
                "certificate is then re-issued); otherwise correct the serial"
            )
    return serials
