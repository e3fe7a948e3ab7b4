"""What the program declared, indexed for the exposure table: the endpoints security groups
protect (hosts, load balancers and their listeners, interface endpoints, the database), their
public addresses, the route tables of their subnets, and the Client VPN endpoint."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Network

from orthgate.offline.evaluation import Declared, Evaluation

SUBNET = "aws:ec2/subnet:Subnet"
RTA = "aws:ec2/routeTableAssociation:RouteTableAssociation"
ROUTE = "aws:ec2/route:Route"
IGW = "aws:ec2/internetGateway:InternetGateway"
VGW = "aws:ec2/vpnGateway:VpnGateway"
INSTANCE = "aws:ec2/instance:Instance"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
ASG = "aws:autoscaling/group:Group"
EIP_ASSOCIATION = "aws:ec2/eipAssociation:EipAssociation"
LB = "aws:lb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"
VPCE = "aws:ec2/vpcEndpoint:VpcEndpoint"
RDS = "aws:rds/instance:Instance"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
CVPN_ENDPOINT = "aws:ec2clientvpn/endpoint:Endpoint"
CVPN_ASSOCIATION = "aws:ec2clientvpn/networkAssociation:NetworkAssociation"
CVPN_AUTH = "aws:ec2clientvpn/authorizationRule:AuthorizationRule"
VPN_CONNECTION = "aws:ec2/vpnConnection:VpnConnection"
CUSTOMER_GATEWAY = "aws:ec2/customerGateway:CustomerGateway"
DX_ASSOCIATION = "aws:directconnect/gatewayAssociation:GatewayAssociation"
# Resources that can carry ingress rules of their own besides INGRESS.
INLINE_RULES = (
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
)
OTHER_RULES = ("aws:ec2/securityGroupRule:SecurityGroupRule",)


@dataclass
class Endpoint:
    """Something security groups protect: a host, a load balancer, endpoints, a database."""

    kind: str  # host, hosts, nlb, vpce, rds
    label: str
    subnets: list[str]
    public: bool = False
    address: str = ""
    listeners: set[int] = field(default_factory=set)


class Declarations:
    """Indexes over one evaluation: ids, routes, endpoints by security group."""

    def __init__(self, evaluation: Evaluation) -> None:
        self.evaluation = evaluation
        res = evaluation.resources
        self.by_id = {r.id: r for r in res if r.id}
        self.subnet_cidr = {r.id: r.inputs["cidrBlock"] for r in evaluation.of_type(SUBNET)}
        self.table_of = {
            r.inputs["subnetId"]: r.inputs["routeTableId"] for r in evaluation.of_type(RTA)
        }
        self.routes: dict[str, dict[str, str]] = {}
        for route in evaluation.of_type(ROUTE):
            target = route.inputs.get("gatewayId") or route.inputs.get("natGatewayId") or ""
            self.routes.setdefault(route.inputs["routeTableId"], {})[
                route.inputs.get("destinationCidrBlock", "")
            ] = target
        self.igws = {r.id for r in evaluation.of_type(IGW)}
        self.vgws = {r.id for r in evaluation.of_type(VGW)}
        self.endpoints = self._endpoints()
        vpn = evaluation.of_type(CVPN_ENDPOINT)
        self.client_vpn = vpn[0] if vpn else None
        self.client_vpn_groups = (
            set(self.client_vpn.inputs.get("securityGroupIds", [])) if vpn else set()
        )
        self.client_vpn_subnets = [
            self.subnet_cidr.get(a.inputs["subnetId"], "")
            for a in evaluation.of_type(CVPN_ASSOCIATION)
        ]
        self.client_vpn_targets = [
            IPv4Network(a.inputs["targetNetworkCidr"]) for a in evaluation.of_type(CVPN_AUTH)
        ]

    def routes_to(self, subnets: list[str], destination: str, targets: set[str]) -> bool:
        """Every subnet's route table sends ``destination`` to one of ``targets``."""
        return bool(subnets) and all(
            self.routes.get(self.table_of.get(s, ""), {}).get(destination) in targets
            for s in subnets
        )

    def _endpoints(self) -> dict[str, list[Endpoint]]:
        found: dict[str, list[Endpoint]] = {}

        def add(groups: Iterable[str], endpoint: Endpoint) -> None:
            for group in groups:
                found.setdefault(group, []).append(endpoint)

        ev = self.evaluation
        eip_instances = {a.inputs.get("instanceId") for a in ev.of_type(EIP_ASSOCIATION)}
        for instance in ev.of_type(INSTANCE):
            template = self._template(instance)
            public = instance.id in eip_instances or _public_interface(instance, template)
            subnets = [instance.inputs.get("subnetId", "")]
            add(
                _groups(instance) | _groups(template),
                Endpoint(
                    "host",
                    "Orthanc host",
                    subnets,
                    public=public and self.routes_to(subnets, "0.0.0.0/0", self.igws),
                    address=", ".join(
                        (["Elastic IP"] if instance.id in eip_instances else [])
                        + [str(instance.inputs.get("privateIp", ""))]
                    ),
                ),
            )
        for group in ev.of_type(ASG):
            template = self._template(group)
            subnets = list(group.inputs.get("vpcZoneIdentifiers", []))
            public = _public_interface(None, template)
            add(
                _groups(template),
                Endpoint(
                    "hosts",
                    "Orthanc hosts",
                    subnets,
                    public=public and self.routes_to(subnets, "0.0.0.0/0", self.igws),
                    address="no fixed address (Auto Scaling group)",
                ),
            )
        for nlb in ev.of_type(LB):
            mappings = nlb.inputs.get("subnetMappings", [])
            subnets = [m["subnetId"] for m in mappings]
            internal = bool(nlb.inputs.get("internal"))
            add(
                nlb.inputs.get("securityGroups", []),
                Endpoint(
                    "nlb",
                    "internal NLB" if internal else "public NLB",
                    subnets,
                    public=not internal and self.routes_to(subnets, "0.0.0.0/0", self.igws),
                    address=", ".join(m["privateIpv4Address"] for m in mappings)
                    if internal
                    else f"{sum(1 for m in mappings if m.get('allocationId'))} Elastic IPs",
                    listeners={
                        int(listener.inputs["port"])
                        for listener in ev.of_type(LISTENER)
                        if listener.inputs.get("loadBalancerArn") == nlb.id
                    },
                ),
            )
        interface = [e for e in ev.of_type(VPCE) if e.inputs.get("vpcEndpointType") == "Interface"]
        by_group: dict[str, list[Declared]] = {}
        for endpoint in interface:
            for group in endpoint.inputs.get("securityGroupIds", []):
                by_group.setdefault(group, []).append(endpoint)
        for group, members in by_group.items():
            services = sorted(m.inputs["serviceName"].rsplit(".", 1)[-1] for m in members)
            add(
                [group],
                Endpoint(
                    "vpce",
                    "interface endpoints",
                    sorted({s for m in members for s in m.inputs.get("subnetIds", [])}),
                    address=", ".join(services),
                ),
            )
        for database in ev.of_type(RDS):
            add(
                database.inputs.get("vpcSecurityGroupIds", []),
                Endpoint("rds", "PostgreSQL index", [], public=False),
            )
        return found

    def _template(self, resource: Declared) -> Declared | None:
        reference = resource.inputs.get("launchTemplate") or {}
        found = self.by_id.get(reference.get("id", ""))
        return found if found is not None and found.type == TEMPLATE else None


def _groups(resource: Declared | None) -> set[str]:
    if resource is None:
        return set()
    groups = set(resource.inputs.get("vpcSecurityGroupIds", []))
    for interface in resource.inputs.get("networkInterfaces", []):
        groups.update(interface.get("securityGroups", []))
    return groups


def _public_interface(instance: Declared | None, template: Declared | None) -> bool:
    if instance is not None and instance.inputs.get("associatePublicIpAddress") in (True, "true"):
        return True
    interfaces = template.inputs.get("networkInterfaces", []) if template else []
    return any(i.get("associatePublicIpAddress") in (True, "true") for i in interfaces)
