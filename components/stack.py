"""The composition: validated settings in, components declared, stack outputs out.

``__main__.py`` calls ``program()``; the Automation API can pass ``program`` as an inline
program and get the very same stack.
"""

from __future__ import annotations

from typing import Any

import pulumi

from orthgate.components.alarms import OperatorAlarms, OperatorAlarmsArgs
from orthgate.components.aws_context import (
    check_ami_architecture,
    lookup_al2023_ami,
    lookup_architecture,
    lookup_aws_context,
    lookup_zone_names,
)
from orthgate.components.client_vpn import ClientVpn, ClientVpnArgs
from orthgate.components.config import Settings, load_settings
from orthgate.components.config.deployment import planned_orthanc, proxy_sources
from orthgate.components.config.rendered_sizes import registered_senders
from orthgate.components.config.sender_rules import plaintext_source_ranges
from orthgate.components.dicom_proxy import DicomProxyAccess, DicomProxyAccessArgs
from orthgate.components.naming import Naming
from orthgate.components.network import SecureNetwork, SecureNetworkArgs
from orthgate.components.orthanc import OrthancServer, OrthancServerArgs
from orthgate.components.orthanc.plan import CLIENT_VPN_SOURCE


def build(settings: Settings) -> dict[str, Any]:
    """Declare every component the settings ask for; return the stack outputs."""
    # Lookups first: a region or instance type that cannot work stops us before any
    # resource is declared.
    context = lookup_aws_context()
    zone_names = lookup_zone_names(settings.network.availability_zones)
    orthanc = settings.orthanc
    architecture = lookup_architecture(orthanc.instance_type)
    if orthanc.ami_id:
        check_ami_architecture(orthanc.ami_id, architecture, orthanc.instance_type)
    ami_id = orthanc.ami_id or lookup_al2023_ami(architecture)
    naming = Naming(stack=pulumi.get_stack(), environment=settings.environment)

    network = SecureNetwork(
        "network",
        SecureNetworkArgs(
            settings=settings.network,
            zone_names=zone_names,
            context=context,
            naming=naming,
            protect=settings.is_production,
            # Orthanc hosts in public subnets answer on-premises senders through the tunnel.
            public_subnets_answer_on_prem=getattr(planned_orthanc(settings), "host_tier", "")
            == "public",
        ),
    )

    # Where workstations find Orthanc: a fleet's internal load balancer spans the private
    # subnets; a single host sits in one subnet of its placement.
    if orthanc.is_fleet:
        orthanc_subnets = network.private_subnet_cidrs
    elif orthanc.placement == "public":
        orthanc_subnets = network.public_subnet_cidrs[:1]
    else:
        orthanc_subnets = network.private_subnet_cidrs[:1]
    client_vpn = None
    private_source_groups = {}
    if settings.client_vpn.enabled:
        client_vpn = ClientVpn(
            "client-vpn",
            ClientVpnArgs(
                settings=settings.client_vpn,
                network=network.refs,
                orthanc_subnet_cidrs=orthanc_subnets,
                context=context,
                naming=naming,
                protect=settings.is_production,
            ),
        )
        # Client VPN source-NATs its clients: Orthanc sees the endpoint's group, never
        # the client range.
        private_source_groups[CLIENT_VPN_SOURCE] = client_vpn.security_group_id

    server_args = OrthancServerArgs(
        settings=orthanc,
        network=network.refs,
        context=context,
        naming=naming,
        ami_id=ami_id,
        ami_pinned=orthanc.ami_id is not None,
        architecture=architecture,
        protect=settings.is_production,
        private_source_groups=private_source_groups,
        senders=registered_senders(settings),
        proxy_sources=proxy_sources(settings.dicom_proxies),
        plaintext_sources=plaintext_source_ranges(settings),
    )
    server = OrthancServer("orthanc", server_args)

    proxies = [
        DicomProxyAccess(
            f"proxy-{site.name}",
            DicomProxyAccessArgs(
                settings=site,
                dicom_ca=server.dicom_ca,
                cloud_host=server.dicom_tls_host,
                cloud_port=server.dicom_tls_port,
                cloud_ae_title=server.ae_title,
                orthanc_image=orthanc.image,
                certificate_validity_days=orthanc.certificate_validity_days,
                naming=naming,
                certificate_generation=orthanc.certificate_generation(site.name),
            ),
        )
        for site in settings.dicom_proxies
    ]

    # The revocation guard (OrthancServer) sees the sites' current certificates too.
    server_args.site_serials.update({p.site: p.certificate_serial for p in proxies})

    alarms = OperatorAlarms(
        "alarms",
        OperatorAlarmsArgs(
            emails=settings.alarms.emails,
            orthanc=server.monitored,
            vpn_connections={
                vpn: details.apply(lambda d: d["vpnConnectionId"])
                for vpn, details in network.site_to_site_vpns.items()
            },
            context=context,
            naming=naming,
        ),
    )

    outputs = {
        "environment": settings.environment,
        "region": context.region,
        "vpcId": network.vpc_id,
        "vpcCidr": network.vpc_cidr,
        "availabilityZones": network.availability_zones,
        "publicSubnetIds": network.public_subnet_ids,
        "privateSubnetIds": network.private_subnet_ids,
        "privateRouteTableIds": network.private_route_table_ids,
        "privatePathCidrs": network.private_path_cidrs,
        "natGatewayPublicIps": network.nat_gateway_public_ips,
        "flowLogGroupName": network.flow_log_group_name,
        "siteToSiteVpns": network.site_to_site_vpns,
        "siteToSiteVpnSecrets": network.site_to_site_vpn_secrets,
        "dicomTlsEndpoint": pulumi.Output.all(server.dicom_tls_host).apply(
            lambda v: {"host": v[0], "port": server.dicom_tls_port, "aeTitle": server.ae_title}
        ),
        "dicomPrivateEndpoints": [
            {"host": ip, "tlsPort": server.dicom_tls_port, "plainPort": server.plain_dicom_port}
            for ip in server.private_endpoints
        ],
        "httpsUrl": server.https_url,
        "dicomCaCertificate": server.dicom_ca_cert_pem,
        "dicomRevocationList": server.revocation_list,
        "orthancServerCertificateExpiresAt": server.server_cert_expires_at,
        "dicomCaExpiresAt": server.dicom_ca.expires_at,
        "orthancHosting": orthanc.hosting,
        "orthancAmi": server.ami,
        "orthancBucket": server.bucket_name,
        "orthancDatabaseEndpoint": server.database_endpoint,
        "orthancAdminSecretArn": server.admin_secret_arn,
        "orthancAdminPassword": server.admin_password,
        "alarmTopicArn": alarms.topic_arn,
    }
    if server.modality_certificates:
        outputs |= {
            "dicomModalities": {
                modality: {
                    "aeTitle": next(m.ae_title for m in orthanc.modalities if m.name == modality),
                    "certificateExpiresAt": certificate.expires_at,
                    "certificateSerial": server.modality_serials[modality],
                }
                for modality, certificate in server.modality_certificates.items()
            },
            # What a TLS modality is configured with: its key, its certificate, the CA.
            "dicomModalityCredentials": pulumi.Output.secret(
                {
                    modality: pulumi.Output.all(
                        certificate.cert_pem,
                        certificate.private_key_pem,
                        server.dicom_ca_cert_pem,
                    ).apply(
                        lambda v: {"certificate": v[0], "privateKey": v[1], "caCertificate": v[2]}
                    )
                    for modality, certificate in server.modality_certificates.items()
                }
            ),
        }
    if orthanc.is_fleet:
        outputs |= {
            "orthancAutoScalingGroup": server.autoscaling_group_name,
            "orthancLoadBalancers": server.load_balancers,
        }
    else:
        outputs |= {
            "orthancInstanceIds": server.instance_ids,
            "orthancPrivateIps": server.private_ips,
            "orthancPublicIps": server.public_ips,
        }
    if proxies:
        outputs |= {
            "dicomProxySites": {
                p.site: {
                    "aeTitle": p.ae_title,
                    "sourceCidrs": p.source_cidrs,
                    "certificateExpiresAt": p.certificate_expires_at,
                    "certificateSerial": p.certificate_serial,
                }
                for p in proxies
            },
            "dicomProxyBundles": pulumi.Output.secret({p.site: p.bundle for p in proxies}),
        }
    if client_vpn is not None:
        outputs |= {
            "clientVpnEndpointId": client_vpn.endpoint_id,
            "clientVpnDnsName": client_vpn.dns_name,
            "clientVpnSecurityGroupId": client_vpn.security_group_id,
            "clientVpnCaCertificate": client_vpn.ca_cert_pem,
            "clientVpnCertificatesExpireAt": client_vpn.client_certificates_expire_at,
            "clientVpnCaExpiresAt": client_vpn.ca_expires_at,
            "clientVpnProfiles": client_vpn.profiles,
            "clientVpnCertificateSerials": client_vpn.certificate_serials,
            "clientVpnRevocationList": client_vpn.revocation_list,
        }
    return outputs


def program() -> None:
    """The Pulumi program: validate the whole configuration first, then declare."""
    settings = load_settings()
    for name, value in build(settings).items():
        pulumi.export(name, value)
