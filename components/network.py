"""SecureNetwork: the VPC every orthgate path leads into.

Reads top to bottom as: VPC and subnets, routing (Internet, NAT, endpoints), logging and
lock-down, then the private paths from on-premises (site-to-site VPN, Direct Connect).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network

import pulumi
import pulumi_aws as aws

from orthgate.components.aws_context import AwsContext
from orthgate.components.config.network import (
    AMAZON_SIDE_ASN,
    NetworkSettings,
    SiteToSiteVpnSettings,
)
from orthgate.components.iam_policies import (
    flow_log_delivery_policy,
    service_trust_policy,
)
from orthgate.components.logs import area_key
from orthgate.components.naming import Naming
from orthgate.components.network_layout import (
    fixed_address_block,
    plan_subnets,
    vpc_resolver_address,
)

# Tunnel crypto every current IPsec device supports; AWS's defaults still admit SHA-1,
# AES-128 and DH group 2.
_TUNNEL_CRYPTO = {
    "ike_versions": ["ikev2"],
    "phase1_encryption_algorithms": ["AES256", "AES256-GCM-16"],
    "phase1_integrity_algorithms": ["SHA2-256", "SHA2-384", "SHA2-512"],
    "phase1_dh_group_numbers": [14, 19, 20, 21],
    "phase2_encryption_algorithms": ["AES256", "AES256-GCM-16"],
    "phase2_integrity_algorithms": ["SHA2-256", "SHA2-384", "SHA2-512"],
    "phase2_dh_group_numbers": [14, 19, 20, 21],
    # Bring a dropped tunnel back by itself: an idle modality must not find it down.
    "dpd_timeout_action": "restart",
}


@dataclass(frozen=True)
class NetworkRefs:
    """What other components need to know about the network: plain values and ids."""

    vpc_id: pulumi.Output[str]
    vpc_cidr: str
    zone_names: list[str]
    public_subnet_ids: list[pulumi.Output[str]]
    private_subnet_ids: list[pulumi.Output[str]]
    public_subnet_cidrs: list[str]
    private_subnet_cidrs: list[str]
    private_path_cidrs: list[str]
    resolver_address: str
    nat_gateways: str
    # The reservations of orthgate's fixed addresses: whatever puts a network interface
    # into these subnets is declared after them, so it can never take a fixed address.
    address_reservations: list[pulumi.Resource]
    # Interface endpoints by service ("secretsmanager", ...): what a policy tied to them
    # waits for.
    interface_endpoints: dict[str, pulumi.Resource] = field(default_factory=dict)


@dataclass(frozen=True)
class SecureNetworkArgs:
    settings: NetworkSettings
    zone_names: Sequence[str]
    context: AwsContext
    naming: Naming
    # Production keeps its logs and encryption keys longer and past `pulumi destroy`.
    protect: bool = False
    # Something in a public subnet answers on-premises senders (a public single host, a
    # fleet's hosts without NAT: components/orthanc/plan.py): the public route table then
    # gets the on-premises routes too, or its replies would leave through the Internet
    # gateway. Otherwise the public table has none.
    public_subnets_answer_on_prem: bool = False


class SecureNetwork(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    vpc_cidr: str
    availability_zones: list[str]
    public_subnet_ids: list[pulumi.Output[str]]
    private_subnet_ids: list[pulumi.Output[str]]
    public_subnet_cidrs: list[str]
    private_subnet_cidrs: list[str]
    public_route_table_id: pulumi.Output[str]
    private_route_table_ids: list[pulumi.Output[str]]
    nat_gateway_public_ips: list[pulumi.Output[str]]
    private_path_cidrs: list[str]
    resolver_address: str
    vpn_gateway_id: pulumi.Output[str] | None
    site_to_site_vpns: dict[str, pulumi.Output[dict]]
    site_to_site_vpn_secrets: pulumi.Output[dict]
    flow_log_group_name: pulumi.Output[str]
    refs: NetworkRefs

    def __init__(
        self, name: str, args: SecureNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("orthgate:network:SecureNetwork", name, None, opts)
        settings, naming = args.settings, args.naming
        if len(args.zone_names) != settings.availability_zones:
            raise ValueError("zone_names must hold one name per configured availability zone")
        self._name = name
        self._naming = naming
        self._child = pulumi.ResourceOptions(parent=self)

        layout = plan_subnets(
            settings.vpc_cidr,
            settings.availability_zones,
            settings.public_subnet_prefix,
            settings.private_subnet_prefix,
        )
        self.vpc_cidr = str(settings.vpc_cidr)
        self.availability_zones = list(args.zone_names)
        self.public_subnet_cidrs = [str(c) for c in layout.public]
        self.private_subnet_cidrs = [str(c) for c in layout.private]
        self.private_path_cidrs = [str(c) for c in settings.private_path_cidrs]
        self.resolver_address = vpc_resolver_address(settings.vpc_cidr)

        # --- VPC and subnets -------------------------------------------------------------
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=self.vpc_cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags=self._tags("vpc"),
            opts=self._child,
        )
        self.vpc_id = vpc.id
        public_subnets = self._subnets("public", vpc, self.public_subnet_cidrs)
        private_subnets = self._subnets("private", vpc, self.private_subnet_cidrs)
        self.public_subnet_ids = [s.id for s in public_subnets]
        self.private_subnet_ids = [s.id for s in private_subnets]
        reservations = self._reserve_fixed_addresses(
            [("public", public_subnets, self.public_subnet_cidrs),
             ("private", private_subnets, self.private_subnet_cidrs)]
        )  # fmt: skip
        # NAT gateways and endpoints place interfaces too: they wait for the reservations.
        self._after_reservations = pulumi.ResourceOptions(parent=self, depends_on=reservations)

        # --- Routing ---------------------------------------------------------------------
        igw = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, tags=self._tags("igw"), opts=self._child
        )
        public_rt = self._route_table("public", vpc, public_subnets, "public")
        aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_rt.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=igw.id,
            opts=self._child,
        )
        private_rts = [
            self._route_table(f"private-{i}", vpc, [subnet], "private", first_index=i)
            for i, subnet in enumerate(private_subnets)
        ]
        self.public_route_table_id = public_rt.id
        self.private_route_table_ids = [rt.id for rt in private_rts]
        self.nat_gateway_public_ips = self._nat_gateways(
            settings.nat_gateways, igw, public_subnets, private_rts
        )

        all_route_tables = [public_rt, *private_rts]
        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=args.context.endpoint_service_name("s3"),
            vpc_endpoint_type="Gateway",
            route_table_ids=[rt.id for rt in all_route_tables],
            tags=self._tags("s3"),
            opts=self._child,
        )
        endpoints = self._interface_endpoints(
            settings.interface_endpoints, vpc, private_subnets, args
        )

        # --- Logging and lock-down --------------------------------------------------------
        key = area_key(
            f"{name}-logs-key",
            area="network",
            context=args.context,
            naming=naming,
            protect=args.protect,
            opts=self._child,
        )
        flow_logs = key.log_group(
            f"{name}-flow-logs",
            log_name="flow-logs",
            retention_days=settings.flow_log_retention_days,
        )
        self.flow_log_group_name = flow_logs.name
        self._flow_log(vpc, flow_logs, args.context)

        # Security Hub EC2.2: the default security group must allow nothing, so a resource
        # launched without an explicit group is isolated rather than open.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=vpc.id,
            ingress=[],
            egress=[],
            tags=self._tags("default-sg-unused"),
            opts=self._child,
        )

        # --- Private paths from on-premises -------------------------------------------------
        self.vpn_gateway_id = None
        self.site_to_site_vpns = {}
        vpn_secrets: dict[str, pulumi.Output[dict]] = {}
        if settings.needs_vpn_gateway:
            vgw = aws.ec2.VpnGateway(
                f"{name}-vgw",
                vpc_id=vpc.id,
                amazon_side_asn=str(AMAZON_SIDE_ASN),
                tags=self._tags("vgw"),
                opts=self._child,
            )
            self.vpn_gateway_id = vgw.id
            # With Direct Connect, routes to the gateway are added only once it is associated
            # with the Direct Connect gateway (AWS Direct Connect User Guide).
            routes_after: list[pulumi.Resource] = []
            if settings.direct_connect_gateway_id:
                routes_after.append(
                    aws.directconnect.GatewayAssociation(
                        f"{name}-dx",
                        dx_gateway_id=settings.direct_connect_gateway_id,
                        associated_gateway_id=vgw.id,
                        # Only the VPC is advertised to the data centre.
                        allowed_prefixes=[self.vpc_cidr],
                        opts=self._child,
                    )
                )
            on_prem_tables = [(f"private-{i}", rt) for i, rt in enumerate(private_rts)]
            if args.public_subnets_answer_on_prem:
                on_prem_tables.insert(0, ("public", public_rt))
            self._on_prem_routes(vgw, on_prem_tables, routes_after)
            if settings.site_to_site_vpns:
                tunnel_logs = key.log_group(
                    f"{name}-vpn-logs",
                    log_name="site-to-site-vpn",
                    retention_days=settings.flow_log_retention_days,
                )
                for vpn in settings.site_to_site_vpns:
                    public, secret = self._site_to_site_vpn(vpn, vgw, tunnel_logs)
                    self.site_to_site_vpns[vpn.name] = public
                    vpn_secrets[vpn.name] = secret
        self.site_to_site_vpn_secrets = pulumi.Output.secret(vpn_secrets)

        self.refs = NetworkRefs(
            vpc_id=self.vpc_id,
            vpc_cidr=self.vpc_cidr,
            zone_names=self.availability_zones,
            public_subnet_ids=self.public_subnet_ids,
            private_subnet_ids=self.private_subnet_ids,
            public_subnet_cidrs=self.public_subnet_cidrs,
            private_subnet_cidrs=self.private_subnet_cidrs,
            private_path_cidrs=self.private_path_cidrs,
            resolver_address=self.resolver_address,
            nat_gateways=settings.nat_gateways,
            address_reservations=reservations,
            interface_endpoints=endpoints,
        )
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "vpcCidr": self.vpc_cidr,
                "availabilityZones": self.availability_zones,
                "publicSubnetIds": self.public_subnet_ids,
                "privateSubnetIds": self.private_subnet_ids,
                "publicRouteTableId": self.public_route_table_id,
                "privateRouteTableIds": self.private_route_table_ids,
                "privatePathCidrs": self.private_path_cidrs,
                "vpnGatewayId": self.vpn_gateway_id,
                "siteToSiteVpns": self.site_to_site_vpns,
                "siteToSiteVpnSecrets": self.site_to_site_vpn_secrets,
                "flowLogGroupName": self.flow_log_group_name,
            }
        )

    # --- pieces ---------------------------------------------------------------------------

    def _tags(self, name: str) -> dict[str, str]:
        return self._naming.tags(f"{self._name}-{name}")

    def _subnets(self, tier: str, vpc: aws.ec2.Vpc, cidrs: list[str]) -> list[aws.ec2.Subnet]:
        # Named by index, not AZ letter: the layout is by index, and names never change.
        return [
            aws.ec2.Subnet(
                f"{self._name}-{tier}-{i}",
                vpc_id=vpc.id,
                cidr_block=cidr,
                availability_zone=zone,
                # Public addresses are given deliberately (Elastic IPs), never by default
                # (Security Hub EC2.15).
                map_public_ip_on_launch=False,
                tags={**self._tags(f"{tier}-{zone}"), "orthgate:tier": tier},
                opts=self._child,
            )
            for i, (cidr, zone) in enumerate(zip(cidrs, self.availability_zones, strict=True))
        ]

    def _reserve_fixed_addresses(
        self, tiers: list[tuple[str, list[aws.ec2.Subnet], list[str]]]
    ) -> list[aws.ec2.SubnetCidrReservation]:
        """Set aside the single host's and the internal load balancer's addresses."""
        return [
            aws.ec2.SubnetCidrReservation(
                f"{self._name}-{tier}-{i}-fixed-addresses",
                subnet_id=subnet.id,
                cidr_block=str(fixed_address_block(IPv4Network(cidr))),
                # explicit: AWS never hands these out by itself; orthgate assigns them.
                reservation_type="explicit",
                description="orthgate fixed addresses: Orthanc host and internal load balancer",
                opts=self._child,
            )
            for tier, subnets, cidrs in tiers
            for i, (subnet, cidr) in enumerate(zip(subnets, cidrs, strict=True))
        ]

    def _route_table(
        self,
        label: str,
        vpc: aws.ec2.Vpc,
        subnets: list[aws.ec2.Subnet],
        tier: str,
        first_index: int = 0,
    ) -> aws.ec2.RouteTable:
        table = aws.ec2.RouteTable(
            f"{self._name}-{label}-rt",
            vpc_id=vpc.id,
            tags=self._tags(f"{label}-rt"),
            opts=self._child,
        )
        for i, subnet in enumerate(subnets, start=first_index):
            aws.ec2.RouteTableAssociation(
                f"{self._name}-{tier}-{i}-rta",
                subnet_id=subnet.id,
                route_table_id=table.id,
                opts=self._child,
            )
        return table

    def _nat_gateways(
        self,
        mode: str,
        igw: aws.ec2.InternetGateway,
        public_subnets: list[aws.ec2.Subnet],
        private_rts: list[aws.ec2.RouteTable],
    ) -> list[pulumi.Output[str]]:
        if mode == "none":
            return []
        count = 1 if mode == "single" else len(public_subnets)
        nat_ids, public_ips = [], []
        for i in range(count):
            eip = aws.ec2.Eip(
                f"{self._name}-nat-{i}-eip",
                domain="vpc",
                tags=self._tags(f"nat-{i}"),
                opts=self._child,
            )
            nat = aws.ec2.NatGateway(
                f"{self._name}-nat-{i}",
                allocation_id=eip.allocation_id,
                subnet_id=public_subnets[i].id,
                connectivity_type="public",
                tags=self._tags(f"nat-{i}"),
                opts=pulumi.ResourceOptions.merge(
                    self._after_reservations, pulumi.ResourceOptions(depends_on=[igw])
                ),
            )
            nat_ids.append(nat.id)
            public_ips.append(eip.public_ip)
        for i, rt in enumerate(private_rts):
            aws.ec2.Route(
                f"{self._name}-private-{i}-default",
                route_table_id=rt.id,
                destination_cidr_block="0.0.0.0/0",
                nat_gateway_id=nat_ids[i % count],
                opts=self._child,
            )
        return public_ips

    def _on_prem_routes(
        self,
        vgw: aws.ec2.VpnGateway,
        tables: list[tuple[str, aws.ec2.RouteTable]],
        after: list[pulumi.Resource],
    ) -> None:
        """Static routes to the virtual private gateway for exactly the configured ranges.

        Never route propagation: AWS has no prefix filter on it, and a site advertising a
        default route or any prefix outside the configured ranges would capture the replies
        to Internet senders, web users and AWS APIs. Behind the gateway BGP still picks the
        tunnel, longest prefix first: a BGP site advertising a more specific part of another
        site's configured range can still draw that part (README, "On-premises routes").
        Named by table and range, never by site: adding or moving a range renames nothing.
        """
        opts = pulumi.ResourceOptions(parent=self, depends_on=after)
        for label, table in tables:
            for cidr in self.private_path_cidrs:
                aws.ec2.Route(
                    f"{self._name}-{label}-on-prem-{cidr.replace('/', '-')}",
                    route_table_id=table.id,
                    destination_cidr_block=cidr,
                    gateway_id=vgw.id,
                    opts=opts,
                )

    def _interface_endpoints(
        self,
        services: list[str],
        vpc: aws.ec2.Vpc,
        private_subnets: list[aws.ec2.Subnet],
        args: SecureNetworkArgs,
    ) -> dict[str, pulumi.Resource]:
        if not services:
            return {}
        group = aws.ec2.SecurityGroup(
            f"{self._name}-endpoints-sg",
            vpc_id=vpc.id,
            description="Interface endpoints: HTTPS from inside the VPC only",
            tags=self._tags("endpoints-sg"),
            opts=self._child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{self._name}-endpoints-https-from-vpc",
            security_group_id=group.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_ipv4=self.vpc_cidr,
            description="HTTPS from the VPC",
            opts=self._child,
        )
        endpoints: dict[str, pulumi.Resource] = {}
        for service in services:
            endpoints[service] = aws.ec2.VpcEndpoint(
                f"{self._name}-{service.replace('.', '-')}",
                vpc_id=vpc.id,
                service_name=args.context.endpoint_service_name(service),
                vpc_endpoint_type="Interface",
                subnet_ids=[s.id for s in private_subnets],
                security_group_ids=[group.id],
                private_dns_enabled=True,
                tags=self._tags(f"{service}-endpoint"),
                opts=self._after_reservations,
            )
        return endpoints

    def _flow_log(
        self, vpc: aws.ec2.Vpc, logs: aws.cloudwatch.LogGroup, context: AwsContext
    ) -> None:
        role = aws.iam.Role(
            f"{self._name}-flow-logs-role",
            description="VPC Flow Logs delivers to its own log group",
            assume_role_policy=json.dumps(
                service_trust_policy(context, "vpc-flow-logs", context.arn("ec2", "vpc-flow-log/*"))
            ),
            tags=self._tags("flow-logs-role"),
            opts=self._child,
        )
        policy = aws.iam.RolePolicy(
            f"{self._name}-flow-logs-delivery",
            role=role.id,
            policy=logs.arn.apply(lambda arn: json.dumps(flow_log_delivery_policy(arn))),
            opts=self._child,
        )
        aws.ec2.FlowLog(
            f"{self._name}-flow-log",
            vpc_id=vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=logs.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            tags=self._tags("flow-log"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )

    def _site_to_site_vpn(
        self,
        vpn: SiteToSiteVpnSettings,
        vgw: aws.ec2.VpnGateway,
        tunnel_logs: aws.cloudwatch.LogGroup,
    ) -> tuple[pulumi.Output[dict], pulumi.Output[dict]]:
        label = f"{self._name}-vpn-{vpn.name}"
        asn_key = "bgp_asn" if vpn.bgp_asn <= 2147483647 else "bgp_asn_extended"
        cgw = aws.ec2.CustomerGateway(
            f"{label}-cgw",
            type="ipsec.1",
            ip_address=str(vpn.customer_gateway_ip),
            device_name=vpn.name,
            tags=self._tags(f"vpn-{vpn.name}-cgw"),
            opts=self._child,
            **{asn_key: str(vpn.bgp_asn)},
        )
        cloudwatch = {
            "log_enabled": True,
            "log_group_arn": tunnel_logs.arn,
            "log_output_format": "json",
        }
        if not vpn.static_routes_only:
            # With BGP, a route withdrawn by the site is the first thing to look for.
            cloudwatch |= {
                "bgp_log_enabled": True,
                "bgp_log_group_arn": tunnel_logs.arn,
                "bgp_log_output_format": "json",
            }
        log_options = {"cloudwatch_log_options": cloudwatch}
        tunnels = {
            f"tunnel{n}_{option}": value
            for n in (1, 2)
            for option, value in {**_TUNNEL_CRYPTO, "log_options": log_options}.items()
        }
        connection = aws.ec2.VpnConnection(
            label,
            type="ipsec.1",
            customer_gateway_id=cgw.id,
            vpn_gateway_id=vgw.id,
            static_routes_only=vpn.static_routes_only,
            tags=self._tags(f"vpn-{vpn.name}"),
            opts=self._child,
            **tunnels,
        )
        if vpn.static_routes_only:
            for cidr in vpn.on_prem_cidrs:
                aws.ec2.VpnConnectionRoute(
                    f"{label}-route-{str(cidr).replace('/', '-')}",
                    vpn_connection_id=connection.id,
                    destination_cidr_block=str(cidr),
                    opts=self._child,
                )
        public = pulumi.Output.all(
            connection.id,
            connection.tunnel1_address,
            connection.tunnel2_address,
            connection.tunnel1_cgw_inside_address,
            connection.tunnel2_cgw_inside_address,
            connection.tunnel1_vgw_inside_address,
            connection.tunnel2_vgw_inside_address,
        ).apply(
            lambda v: {
                "vpnConnectionId": v[0],
                "customerGatewayIp": str(vpn.customer_gateway_ip),
                "tunnels": [
                    {"outsideAddress": v[1], "cgwInsideAddress": v[3], "vgwInsideAddress": v[5]},
                    {"outsideAddress": v[2], "cgwInsideAddress": v[4], "vgwInsideAddress": v[6]},
                ],
            }
        )
        secret = pulumi.Output.secret(
            pulumi.Output.all(
                connection.tunnel1_preshared_key,
                connection.tunnel2_preshared_key,
                connection.customer_gateway_configuration,
            ).apply(
                lambda v: {
                    "tunnel1PresharedKey": v[0],
                    "tunnel2PresharedKey": v[1],
                    "customerGatewayConfiguration": v[2],
                }
            )
        )
        return public, secret
