"""SecureNetwork as the program declares it, evaluated under the mock harness."""

from __future__ import annotations

import copy
import json
from ipaddress import IPv4Network

import pytest

from orthgate.components.config import ConfigError
from orthgate.offline.aws_mock import AwsMock
from tests.harness.pulumi_run import RecordingMocks, evaluate

VPC = "aws:ec2/vpc:Vpc"
SUBNET = "aws:ec2/subnet:Subnet"
ROUTE = "aws:ec2/route:Route"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
NAT = "aws:ec2/natGateway:NatGateway"
VPN = "aws:ec2/vpnConnection:VpnConnection"
COMPONENT = "orthgate:network:SecureNetwork"

SITE = {
    "name": "site-a",
    "customerGatewayIp": "203.0.113.10",
    "bgpAsn": 65010,
    "onPremCidrs": ["172.20.0.0/16", "192.168.50.0/24"],
}


def evaluate_network(config: dict, **options):
    return evaluate(config, **options).within(COMPONENT)


def config_with(environment: str = "dev", **network) -> dict:
    return {
        "aws:region": "eu-central-1",
        "orthgate:environment": environment,
        "orthgate:network": {"vpcCidr": "10.40.0.0/16", **network},
    }


@pytest.fixture(scope="module")
def dev():
    return evaluate_network(config_with())


@pytest.fixture(scope="module")
def full():
    return evaluate_network(
        config_with(
            "prd",
            availabilityZones=3,
            natGateways="perAz",
            interfaceEndpoints=["kms", "secretsmanager", "ecr.api"],
            siteToSiteVpns=[
                SITE,
                {
                    **SITE,
                    "name": "site-b",
                    "customerGatewayIp": "198.51.100.20",
                    "onPremCidrs": ["172.21.0.0/16"],
                    "staticRoutesOnly": True,
                },
            ],
            directConnectGatewayId="5f294f92-bafb-4011-916d-9b0b45a1c3d2",
            directConnectOnPremCidrs=["172.30.0.0/16"],
        )
    )


def route_tables_of(evaluation, subnet) -> list[str]:
    return [
        a.inputs["routeTableId"]
        for a in evaluation.of_type(ASSOCIATION)
        if a.inputs["subnetId"] == subnet.id
    ]


def test_one_vpc_with_dns_support_and_hostnames(dev):
    vpc = dev.one(VPC)
    assert vpc.inputs["cidrBlock"] == "10.40.0.0/16"
    assert vpc.inputs["enableDnsSupport"] is True
    assert vpc.inputs["enableDnsHostnames"] is True
    assert dev.outputs["vpcId"] == vpc.id
    assert dev.outputs["vpcCidr"] == "10.40.0.0/16"


def test_subnets_follow_the_layout_one_public_and_one_private_per_zone(full):
    subnets = full.of_type(SUBNET)
    # Registration order is not declaration order: look the subnets up by name.
    public = [full.named(f"network-public-{i}") for i in range(3)]
    private = [full.named(f"network-private-{i}") for i in range(3)]
    assert all(s.inputs["tags"]["orthgate:tier"] == "public" for s in public)
    assert all(s.inputs["tags"]["orthgate:tier"] == "private" for s in private)
    zones = ["eu-central-1a", "eu-central-1b", "eu-central-1c"]
    assert [s.inputs["availabilityZone"] for s in public] == zones
    assert [s.inputs["availabilityZone"] for s in private] == zones
    assert [s.inputs["cidrBlock"] for s in private] == [
        "10.40.0.0/22",
        "10.40.4.0/22",
        "10.40.8.0/22",
    ]
    assert [s.inputs["cidrBlock"] for s in public] == [
        "10.40.255.0/24",
        "10.40.254.0/24",
        "10.40.253.0/24",
    ]
    vpc = IPv4Network("10.40.0.0/16")
    networks = [IPv4Network(s.inputs["cidrBlock"]) for s in subnets]
    assert all(n.subnet_of(vpc) for n in networks)
    assert not any(a.overlaps(b) for i, a in enumerate(networks) for b in networks[i + 1 :])
    # Nothing gets a public address by default, least of all in the private tier.
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in subnets)
    # Outputs are ordered by zone, like the availability zones output.
    assert full.outputs["availabilityZones"] == zones
    assert full.outputs["publicSubnetIds"] == [s.id for s in public]
    assert full.outputs["privateSubnetIds"] == [s.id for s in private]


def test_growing_from_two_to_three_zones_keeps_every_existing_subnet():
    two = evaluate_network(config_with(availabilityZones=2))
    three = evaluate_network(config_with(availabilityZones=3))
    before = {
        s.name: (s.inputs["cidrBlock"], s.inputs["availabilityZone"]) for s in two.of_type(SUBNET)
    }
    after = {
        s.name: (s.inputs["cidrBlock"], s.inputs["availabilityZone"]) for s in three.of_type(SUBNET)
    }
    assert len(after) == len(before) + 2
    for name, placement in before.items():
        assert after[name] == placement


def test_public_routes_go_to_the_internet_gateway_and_private_ones_nowhere_without_nat(dev):
    igw = dev.one("aws:ec2/internetGateway:InternetGateway")
    vpc = dev.one(VPC)
    assert igw.inputs["vpcId"] == vpc.id
    routes = dev.of_type(ROUTE)
    assert len(routes) == 1
    public_rt = dev.named("network-public-rt")
    assert routes[0].inputs == {
        **routes[0].inputs,
        "routeTableId": public_rt.id,
        "destinationCidrBlock": "0.0.0.0/0",
        "gatewayId": igw.id,
    }
    assert dev.of_type(NAT) == []
    assert dev.outputs["natGatewayPublicIps"] == []


def test_each_private_subnet_has_its_own_route_table(full):
    private_tables = full.outputs["privateRouteTableIds"]
    assert len(set(private_tables)) == 3
    for i, subnet_id in enumerate(full.outputs["privateSubnetIds"]):
        assert route_tables_of(full, full.by_id(subnet_id)) == [private_tables[i]]
    public_rt = full.named("network-public-rt").id
    for subnet_id in full.outputs["publicSubnetIds"]:
        assert route_tables_of(full, full.by_id(subnet_id)) == [public_rt]


def test_per_az_nat_gives_each_private_table_the_nat_of_its_own_zone(full):
    nats = full.of_type(NAT)
    assert len(nats) == 3
    for i, table_id in enumerate(full.outputs["privateRouteTableIds"]):
        [default] = [
            r
            for r in full.of_type(ROUTE)
            if r.inputs["routeTableId"] == table_id
            and r.inputs["destinationCidrBlock"] == "0.0.0.0/0"
        ]
        nat = full.by_id(default.inputs["natGatewayId"])
        assert nat.inputs["subnetId"] == full.outputs["publicSubnetIds"][i]
        eip = full.by_id(nat.inputs["allocationId"])
        assert eip.inputs["domain"] == "vpc"
    assert sorted(full.outputs["natGatewayPublicIps"]) == sorted(
        n.outputs["publicIp"] for n in full.of_type("aws:ec2/eip:Eip")
    )


def test_a_single_nat_serves_every_private_table():
    evaluation = evaluate_network(config_with(natGateways="single", availabilityZones=3))
    [nat] = evaluation.of_type(NAT)
    defaults = [r for r in evaluation.of_type(ROUTE) if "natGatewayId" in r.inputs]
    assert len(defaults) == 3
    assert {r.inputs["natGatewayId"] for r in defaults} == {nat.id}
    assert {r.inputs["routeTableId"] for r in defaults} == set(
        evaluation.outputs["privateRouteTableIds"]
    )


def test_the_s3_gateway_endpoint_is_on_every_route_table(dev):
    [s3] = [e for e in dev.of_type(ENDPOINT) if e.inputs["vpcEndpointType"] == "Gateway"]
    assert s3.inputs["serviceName"] == "com.amazonaws.eu-central-1.s3"
    tables = {t.id for t in dev.of_type(ROUTE_TABLE)}
    assert set(s3.inputs["routeTableIds"]) == tables
    assert len(tables) == 3


def test_interface_endpoints_sit_in_private_subnets_behind_https_from_the_vpc_only(full):
    interfaces = [e for e in full.of_type(ENDPOINT) if e.inputs["vpcEndpointType"] == "Interface"]
    assert sorted(e.inputs["serviceName"] for e in interfaces) == [
        "com.amazonaws.eu-central-1.ecr.api",
        "com.amazonaws.eu-central-1.kms",
        "com.amazonaws.eu-central-1.secretsmanager",
    ]
    [group] = full.of_type(SG)
    for endpoint in interfaces:
        assert endpoint.inputs["subnetIds"] == full.outputs["privateSubnetIds"]
        assert endpoint.inputs["privateDnsEnabled"] is True
        assert endpoint.inputs["securityGroupIds"] == [group.id]
    rules = [r for r in full.of_type(INGRESS) if r.inputs["securityGroupId"] == group.id]
    assert len(rules) == 1
    assert rules[0].inputs["cidrIpv4"] == "10.40.0.0/16"
    assert (rules[0].inputs["fromPort"], rules[0].inputs["toPort"]) == (443, 443)
    assert rules[0].inputs["ipProtocol"] == "tcp"
    assert not group.inputs.get("ingress")
    assert not group.inputs.get("egress")
    assert [r for r in full.of_type(EGRESS) if r.inputs["securityGroupId"] == group.id] == []


def test_no_interface_endpoints_means_no_endpoint_security_group(dev):
    assert dev.of_type(SG) == []
    assert [e for e in dev.of_type(ENDPOINT) if e.inputs["vpcEndpointType"] == "Interface"] == []


def test_flow_logs_capture_all_traffic_into_a_kms_encrypted_group_with_retention(dev):
    flow_log = dev.one("aws:ec2/flowLog:FlowLog")
    vpc = dev.one(VPC)
    group = dev.named("network-flow-logs")
    key = dev.one("aws:kms/key:Key")
    assert flow_log.inputs["vpcId"] == vpc.id
    assert flow_log.inputs["trafficType"] == "ALL"
    assert flow_log.inputs["logDestinationType"] == "cloud-watch-logs"
    assert flow_log.inputs["logDestination"] == group.outputs["arn"]
    assert group.inputs["kmsKeyId"] == key.outputs["arn"]
    assert group.inputs["retentionInDays"] == 365
    assert group.inputs["name"] == "/orthgate/test/network/flow-logs"
    assert key.inputs["enableKeyRotation"] is True

    role = dev.one("aws:iam/role:Role")
    assert flow_log.inputs["iamRoleArn"] == role.outputs["arn"]
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    delivery = json.loads(dev.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    [statement] = delivery["Statement"]
    assert statement["Resource"] == [group.outputs["arn"], group.outputs["arn"] + ":*"]
    assert "*" not in json.dumps(statement["Action"])


def test_the_log_key_lets_cloudwatch_use_it_only_for_this_stacks_network_groups(dev):
    policy = json.loads(dev.one("aws:kms/key:Key").inputs["policy"])
    [logs] = [s for s in policy["Statement"] if s["Principal"].get("Service")]
    assert logs["Principal"]["Service"] == "logs.eu-central-1.amazonaws.com"
    groups = "arn:aws:logs:eu-central-1:123456789012:log-group:/orthgate/test/network/*"
    assert logs["Condition"]["ArnLike"] == {"kms:EncryptionContext:aws:logs:arn": groups}
    group = dev.named("network-flow-logs").inputs["name"]
    assert group.startswith("/orthgate/test/network/")


def test_production_keeps_logs_and_keys_longer(full, dev):
    assert full.one("aws:kms/key:Key").inputs["deletionWindowInDays"] == 30
    assert dev.one("aws:kms/key:Key").inputs["deletionWindowInDays"] == 7
    assert all(
        g.inputs["skipDestroy"] is True for g in full.of_type("aws:cloudwatch/logGroup:LogGroup")
    )
    assert dev.named("network-flow-logs").inputs["skipDestroy"] is False


def test_production_keeps_the_keys_of_what_it_keeps_and_names_kept_groups_uniquely(full, dev):
    assert full.one("aws:kms/key:Key").options.retain_on_delete is True
    assert dev.one("aws:kms/key:Key").options.retain_on_delete is False
    # The alias goes: a stack deployed again takes the same alias name.
    assert full.one("aws:kms/alias:Alias").options.retain_on_delete is False
    for group in full.of_type("aws:cloudwatch/logGroup:LogGroup"):
        assert "name" not in group.inputs
        assert group.inputs["namePrefix"].startswith("/orthgate/test/network/")
    assert dev.named("network-flow-logs").inputs["name"] == "/orthgate/test/network/flow-logs"


def test_every_subnet_reserves_orthgates_fixed_addresses_before_interfaces_land(full):
    reservations = {
        r.inputs["subnetId"]: r
        for r in full.of_type("aws:ec2/subnetCidrReservation:SubnetCidrReservation")
    }
    subnets = full.of_type(SUBNET)
    assert set(reservations) == {s.id for s in subnets}
    for subnet in subnets:
        reservation = reservations[subnet.id]
        block = IPv4Network(reservation.inputs["cidrBlock"])
        base = IPv4Network(subnet.inputs["cidrBlock"]).network_address
        assert [str(a) for a in block] == [str(base + 10), str(base + 11)]
        assert reservation.inputs["reservationType"] == "explicit"
    urns = {r.urn for r in reservations.values()}
    interfaces = full.of_type(NAT) + [
        e for e in full.of_type(ENDPOINT) if e.inputs["vpcEndpointType"] == "Interface"
    ]
    for resource in interfaces:
        assert urns <= set(resource.options.dependencies), resource.name


def test_the_default_security_group_is_managed_with_no_rules(dev):
    default = dev.one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert default.inputs["vpcId"] == dev.one(VPC).id
    assert default.inputs.get("ingress", []) == []
    assert default.inputs.get("egress", []) == []


def test_site_to_site_vpns_declare_gateways_connections_logging_and_propagation(full):
    vpc = full.one(VPC)
    [vgw] = full.of_type("aws:ec2/vpnGateway:VpnGateway")
    assert vgw.inputs["vpcId"] == vpc.id
    assert vgw.inputs["amazonSideAsn"] == "64512"
    gateways = {
        g.inputs["deviceName"]: g for g in full.of_type("aws:ec2/customerGateway:CustomerGateway")
    }
    assert gateways["site-a"].inputs["ipAddress"] == "203.0.113.10"
    assert gateways["site-a"].inputs["bgpAsn"] == "65010"
    assert gateways["site-a"].inputs["type"] == "ipsec.1"
    assert gateways["site-b"].inputs["ipAddress"] == "198.51.100.20"

    connections = {c.name: c for c in full.of_type(VPN)}
    tunnel_logs = full.named("network-vpn-logs")
    for site in ("site-a", "site-b"):
        connection = connections[f"network-vpn-{site}"]
        assert connection.inputs["customerGatewayId"] == gateways[site].id
        assert connection.inputs["vpnGatewayId"] == vgw.id
        assert connection.inputs["type"] == "ipsec.1"
        for tunnel in (1, 2):
            logging = connection.inputs[f"tunnel{tunnel}LogOptions"]["cloudwatchLogOptions"]
            assert logging["logEnabled"] is True
            assert logging["logGroupArn"] == tunnel_logs.outputs["arn"]
            assert connection.inputs[f"tunnel{tunnel}IkeVersions"] == ["ikev2"]
            assert "SHA1" not in connection.inputs[f"tunnel{tunnel}Phase1IntegrityAlgorithms"]
    assert tunnel_logs.inputs["kmsKeyId"] == full.one("aws:kms/key:Key").outputs["arn"]
    assert connections["network-vpn-site-a"].inputs["staticRoutesOnly"] is False
    assert connections["network-vpn-site-b"].inputs["staticRoutesOnly"] is True

    # Nothing learned over BGP reaches a route table: static routes to the gateway for the
    # configured ranges only (tests/unit/test_route_filtering.py has the details).
    assert full.of_type("aws:ec2/vpnGatewayRoutePropagation:VpnGatewayRoutePropagation") == []
    configured = {*SITE["onPremCidrs"], "172.21.0.0/16", "172.30.0.0/16"}
    to_gateway = [
        r for r in full.of_type("aws:ec2/route:Route") if r.inputs.get("gatewayId") == vgw.id
    ]
    assert {r.inputs["destinationCidrBlock"] for r in to_gateway} == configured


def test_static_routes_exist_only_for_the_static_site(full):
    routes = full.of_type("aws:ec2/vpnConnectionRoute:VpnConnectionRoute")
    static = full.named("network-vpn-site-b")
    assert [(r.inputs["destinationCidrBlock"], r.inputs["vpnConnectionId"]) for r in routes] == [
        ("172.21.0.0/16", static.id)
    ]


def test_tunnel_addresses_are_plain_outputs_and_keys_are_secret(full):
    public = full.outputs["siteToSiteVpns"]["site-a"]
    connection = full.named("network-vpn-site-a")
    assert public["tunnels"][0]["outsideAddress"] == connection.outputs["tunnel1Address"]
    assert public["tunnels"][1]["outsideAddress"] == connection.outputs["tunnel2Address"]
    assert public["tunnels"][0]["cgwInsideAddress"] == connection.outputs["tunnel1CgwInsideAddress"]
    assert "siteToSiteVpns" not in full.secret_outputs
    assert "siteToSiteVpnSecrets" in full.secret_outputs
    secrets = full.outputs["siteToSiteVpnSecrets"]["site-a"]
    assert secrets["tunnel1PresharedKey"] == connection.outputs["tunnel1PresharedKey"]
    assert secrets["customerGatewayConfiguration"].startswith("<?xml")
    # No pre-shared key leaks into a plain output.
    plain = json.dumps({k: v for k, v in full.outputs.items() if k not in full.secret_outputs})
    assert connection.outputs["tunnel1PresharedKey"] not in plain


def test_direct_connect_associates_the_virtual_private_gateway(full):
    association = full.one("aws:directconnect/gatewayAssociation:GatewayAssociation")
    vgw = full.one("aws:ec2/vpnGateway:VpnGateway")
    assert association.inputs["dxGatewayId"] == "5f294f92-bafb-4011-916d-9b0b45a1c3d2"
    assert association.inputs["associatedGatewayId"] == vgw.id
    assert association.inputs["allowedPrefixes"] == ["10.40.0.0/16"]


def test_direct_connect_alone_still_gets_a_gateway_and_propagation():
    evaluation = evaluate_network(
        config_with(
            directConnectGatewayId="5f294f92-bafb-4011-916d-9b0b45a1c3d2",
            directConnectOnPremCidrs=["172.30.0.0/16"],
        )
    )
    assert evaluation.of_type("aws:ec2/customerGateway:CustomerGateway") == []
    [vgw] = evaluation.of_type("aws:ec2/vpnGateway:VpnGateway")
    routes = [
        r for r in evaluation.of_type("aws:ec2/route:Route") if r.inputs.get("gatewayId") == vgw.id
    ]
    # Both private tables, and the public one: the default dev host sits in a public subnet.
    assert sorted(r.inputs["destinationCidrBlock"] for r in routes) == ["172.30.0.0/16"] * 3
    assert evaluation.outputs["privatePathCidrs"] == ["172.30.0.0/16"]


def test_an_extended_asn_goes_to_the_extended_field():
    evaluation = evaluate_network(config_with(siteToSiteVpns=[{**SITE, "bgpAsn": 4200000001}]))
    gateway = evaluation.one("aws:ec2/customerGateway:CustomerGateway")
    assert gateway.inputs["bgpAsnExtended"] == "4200000001"
    assert "bgpAsn" not in gateway.inputs


def test_no_private_path_declares_no_vpn_gateway(dev):
    assert dev.of_type("aws:ec2/vpnGateway:VpnGateway") == []
    assert dev.outputs["privatePathCidrs"] == []


def test_private_path_cidrs_list_every_on_premises_range(full):
    assert full.outputs["privatePathCidrs"] == [
        "172.20.0.0/16",
        "172.21.0.0/16",
        "172.30.0.0/16",
        "192.168.50.0/24",
    ]


def test_every_resource_is_a_child_of_the_component_and_tagged(full):
    [component] = full.of_type(COMPONENT)
    assert component.name == "network"
    children = [r for r in full.resources if r.type != COMPONENT]
    assert children
    for resource in children:
        assert resource.parent_types[:1] == [COMPONENT], resource.urn
        if "tags" in resource.inputs:
            assert resource.inputs["tags"]["orthgate:stack"] == "test"
            assert resource.inputs["tags"]["Name"].startswith("orthgate-test-")


def test_no_rule_anywhere_is_open_to_the_world(full):
    for rule in full.of_type(INGRESS):
        assert rule.inputs.get("cidrIpv4") not in ("0.0.0.0/0", None)
    assert "::/0" not in json.dumps([r.inputs for r in full.resources])


def test_the_component_registers_the_outputs_later_components_use(full):
    registered = full.component_outputs(COMPONENT, "network")
    assert registered["vpcId"] == full.one(VPC).id
    assert registered["vpcCidr"] == "10.40.0.0/16"
    assert registered["availabilityZones"] == full.outputs["availabilityZones"]
    assert registered["publicSubnetIds"] == full.outputs["publicSubnetIds"]
    assert registered["privateSubnetIds"] == full.outputs["privateSubnetIds"]
    assert registered["privateRouteTableIds"] == [
        full.named(f"network-private-{i}-rt").id for i in range(3)
    ]
    assert registered["privatePathCidrs"] == full.outputs["privatePathCidrs"]


def test_a_region_without_enough_zones_is_refused_naming_the_key():
    with pytest.raises(Exception, match=r"orthgate:network.availabilityZones = 3"):
        evaluate_network(config_with(availabilityZones=3), zone_count=2)


def test_the_zone_lookup_skips_local_zones():
    mocks = RecordingMocks(AwsMock())
    evaluate_network(config_with(), mocks=mocks)
    [(_, args)] = [c for c in mocks.calls if c[0].endswith("getAvailabilityZones")]
    assert args["state"] == "available"
    assert {"name": "opt-in-status", "values": ["opt-in-not-required"]} in args["filters"]


def test_an_invalid_configuration_declares_nothing():
    mocks = RecordingMocks(AwsMock())
    broken = copy.deepcopy(config_with(natGateways="sometimes"))
    with pytest.raises(ConfigError, match=r"orthgate:network.natGateways"):
        evaluate(broken, mocks=mocks)
    assert mocks.declared == []
