"""On-premises routes: static routes for exactly the configured ranges, never propagation.

AWS has no prefix filter on a virtual private gateway's route propagation: whatever a
customer gateway advertises over BGP (a more specific prefix of another site, a default
route) would land in the route tables. SecureNetwork therefore declares one static route to
the gateway per configured range and route table, in the public table only while an Orthanc
host sits in a public subnet, and the Day-2 plans below show an existing stack moving over
without a replacement or a collision.
"""

from __future__ import annotations

import copy
import ipaddress

import pulumi
import pulumi_aws as aws
import pytest

import orthgate.components.network
import orthgate.components.stack
from orthgate.components.network import SecureNetworkArgs
from tests.harness.pulumi_run import STACKS_DIR, evaluate, read_stack_file
from tests.harness.update_plan import Deployment, UpdatePlan, plan_update

ROUTE = "aws:ec2/route:Route"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
PROPAGATION = "aws:ec2/vpnGatewayRoutePropagation:VpnGatewayRoutePropagation"
VGW = "aws:ec2/vpnGateway:VpnGateway"
IGW = "aws:ec2/internetGateway:InternetGateway"
DX_ASSOCIATION = "aws:directconnect/gatewayAssociation:GatewayAssociation"
VPN_ROUTE = "aws:ec2/vpnConnectionRoute:VpnConnectionRoute"
INSTANCE = "aws:ec2/instance:Instance"
ASG = "aws:autoscaling/group:Group"
COMPONENT = "orthgate:network:SecureNetwork"
DX_GATEWAY = "5f294f92-bafb-4011-916d-9b0b45a1c3d2"

SITE_A = {
    "name": "site-a",
    "customerGatewayIp": "203.0.113.10",
    "bgpAsn": 65010,
    "onPremCidrs": ["172.20.0.0/16", "192.168.50.0/24"],
}
SITE_B = {
    "name": "site-b",
    "customerGatewayIp": "198.51.100.20",
    "onPremCidrs": ["172.21.0.0/16"],
    "staticRoutesOnly": True,
}


def config_with(orthanc: dict | None = None, environment: str = "dev", **network) -> dict:
    config = {
        "aws:region": "eu-central-1",
        "orthgate:environment": environment,
        "orthgate:network": {"vpcCidr": "10.40.0.0/16", **network},
    }
    if orthanc:
        config["orthgate:orthanc"] = orthanc
    return config


PRIVATE_HOST = {"placement": "private"}


def shipped(stack: str) -> dict:
    return read_stack_file(STACKS_DIR / f"Pulumi.{stack}.yaml")


def table_routes(evaluation) -> dict[str, dict[str, str]]:
    """Route table name -> {destination: target} of every route declared into it."""
    tables = {t.id: t.name for t in evaluation.of_type(ROUTE_TABLE)}
    found: dict[str, dict[str, str]] = {name: {} for name in tables.values()}
    targets = {r.id: r.type for r in evaluation.of_type(VGW) + evaluation.of_type(IGW)}
    for route in evaluation.of_type(ROUTE):
        target = route.inputs.get("gatewayId") or route.inputs.get("natGatewayId")
        kind = {VGW: "vgw", IGW: "igw"}.get(targets.get(target, ""), "nat")
        found[tables[route.inputs["routeTableId"]]][route.inputs["destinationCidrBlock"]] = kind
    return found


def on_prem(routes: dict[str, str]) -> set[str]:
    return {cidr for cidr, target in routes.items() if target == "vgw"}


# --- what is declared ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def full():
    """Two VPNs (one BGP, one static) and Direct Connect, Orthanc in a private subnet."""
    return evaluate(
        config_with(
            PRIVATE_HOST,
            availabilityZones=3,
            natGateways="perAz",
            siteToSiteVpns=[SITE_A, SITE_B],
            directConnectGatewayId=DX_GATEWAY,
            directConnectOnPremCidrs=["172.30.0.0/16"],
        )
    ).within(COMPONENT)


def test_each_private_table_routes_exactly_the_configured_ranges_to_the_gateway(full):
    vgw = full.one(VGW)
    configured = {"172.20.0.0/16", "192.168.50.0/24", "172.21.0.0/16", "172.30.0.0/16"}
    routes = table_routes(full)
    for i in range(3):
        assert on_prem(routes[f"network-private-{i}-rt"]) == configured
        assert routes[f"network-private-{i}-rt"]["0.0.0.0/0"] == "nat"
    # Nothing in a public subnet answers on-premises senders: the public table has none.
    assert routes["network-public-rt"] == {"0.0.0.0/0": "igw"}
    for route in full.of_type(ROUTE):
        if route.inputs.get("gatewayId") == vgw.id:
            assert route.inputs["destinationCidrBlock"] in configured


def test_no_route_propagation_is_declared(full):
    assert full.of_type(PROPAGATION) == []


def test_route_names_come_from_the_table_and_the_range_only(full):
    names = {r.name for r in full.of_type(ROUTE) if r.name.split("-on-prem-")[1:]}
    assert names == {
        f"network-private-{i}-on-prem-{cidr}"
        for i in range(3)
        for cidr in ("172.20.0.0-16", "192.168.50.0-24", "172.21.0.0-16", "172.30.0.0-16")
    }


def test_routes_to_the_gateway_wait_for_the_direct_connect_association(full):
    association = full.one(DX_ASSOCIATION)
    vgw = full.one(VGW)
    routes = [r for r in full.of_type(ROUTE) if r.inputs.get("gatewayId") == vgw.id]
    assert routes
    for route in routes:
        assert association.urn in route.options.dependencies, route.name


def test_the_static_site_keeps_its_vpn_connection_routes(full):
    static = full.named("network-vpn-site-b")
    assert [
        (r.inputs["destinationCidrBlock"], r.inputs["vpnConnectionId"])
        for r in full.of_type(VPN_ROUTE)
    ] == [("172.21.0.0/16", static.id)]
    # BGP stays on for the dynamic site: the gateway still picks the tunnel by it.
    assert full.named("network-vpn-site-a").inputs["staticRoutesOnly"] is False


def test_direct_connect_alone_routes_its_ranges_without_a_customer_gateway():
    evaluation = evaluate(
        config_with(
            PRIVATE_HOST,
            natGateways="single",
            directConnectGatewayId=DX_GATEWAY,
            directConnectOnPremCidrs=["172.30.0.0/16", "172.31.0.0/16"],
        )
    ).within(COMPONENT)
    assert evaluation.of_type("aws:ec2/customerGateway:CustomerGateway") == []
    association = evaluation.one(DX_ASSOCIATION)
    routes = table_routes(evaluation)
    for i in range(2):
        assert on_prem(routes[f"network-private-{i}-rt"]) == {"172.30.0.0/16", "172.31.0.0/16"}
    assert on_prem(routes["network-public-rt"]) == set()
    vgw_routes = [r for r in evaluation.of_type(ROUTE) if "-on-prem-" in r.name]
    assert len(vgw_routes) == 4
    assert all(association.urn in r.options.dependencies for r in vgw_routes)
    assert evaluation.of_type(PROPAGATION) == []


def test_without_a_private_path_there_is_no_gateway_and_no_on_prem_route():
    evaluation = evaluate(config_with()).within(COMPONENT)
    assert evaluation.of_type(VGW) == []
    assert [r.name for r in evaluation.of_type(ROUTE) if "-on-prem-" in r.name] == []


def test_a_network_declared_on_its_own_keeps_on_prem_routes_out_of_the_public_table():
    # SecureNetworkArgs' default: nothing in a public subnet answers on-premises senders.
    assert SecureNetworkArgs.__dataclass_fields__["public_subnets_answer_on_prem"].default is False


# --- the public table: only while an Orthanc host sits in a public subnet ----------------------


def _host_subnet_ids(evaluation) -> set[str]:
    subnets = {i.inputs["subnetId"] for i in evaluation.of_type(INSTANCE) if "subnetId" in i.inputs}
    for group in evaluation.of_type(ASG):
        subnets.update(group.inputs["vpcZoneIdentifiers"])
    return subnets


@pytest.mark.parametrize(
    ("orthanc", "nat", "public_routes"),
    [
        pytest.param({"placement": "public"}, "none", True, id="single-host-public"),
        pytest.param({"placement": "private"}, "single", False, id="single-host-private"),
        pytest.param({"placement": "public"}, "single", True, id="single-host-public-with-nat"),
        pytest.param(
            {"hosting": "fleet", "placement": "public"}, "none", True, id="fleet-hosts-public"
        ),
        pytest.param(
            {"hosting": "fleet", "placement": "public"}, "perAz", False, id="fleet-hosts-private"
        ),
        pytest.param(
            {"hosting": "fleet", "placement": "private"}, "single", False, id="fleet-private"
        ),
    ],
)
def test_the_public_table_routes_on_prem_ranges_only_while_a_host_sits_in_a_public_subnet(
    orthanc, nat, public_routes
):
    environment = "prd" if orthanc.get("hosting") == "fleet" else "dev"
    evaluation = evaluate(
        config_with(orthanc, environment, natGateways=nat, siteToSiteVpns=[SITE_A])
    )
    routes = table_routes(evaluation)
    expected = {"172.20.0.0/16", "192.168.50.0/24"}
    assert on_prem(routes["network-public-rt"]) == (expected if public_routes else set())
    for i in range(2):
        assert on_prem(routes[f"network-private-{i}-rt"]) == expected
    # Whatever subnet an Orthanc host lands in, its table answers the sites.
    table_of = {
        a.inputs["subnetId"]: a.inputs["routeTableId"] for a in evaluation.of_type(ASSOCIATION)
    }
    names = {t.id: t.name for t in evaluation.of_type(ROUTE_TABLE)}
    host_subnets = _host_subnet_ids(evaluation)
    assert host_subnets
    for subnet in host_subnets:
        assert on_prem(routes[names[table_of[subnet]]]) == expected, subnet


# --- Day 2 -------------------------------------------------------------------------------------


def _previous_on_prem_routes(self, vgw, tables, after) -> None:
    """What orthgate declared before this change (components/network.py at dc2abcf)."""
    for i, (_label, rt) in enumerate(tables):
        aws.ec2.VpnGatewayRoutePropagation(
            f"{self._name}-vgw-propagation-{i}",
            vpn_gateway_id=vgw.id,
            route_table_id=rt.id,
            opts=pulumi.ResourceOptions(parent=self, depends_on=after),
        )


def _previous_args(**kwargs) -> SecureNetworkArgs:
    # The previous program propagated into every table, the public one first (index 0).
    return SecureNetworkArgs(**{**kwargs, "public_subnets_answer_on_prem": True})


def up_previous(deployment: Deployment, config: dict):
    """`pulumi up` with the previous program: route propagation into every table."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            orthgate.components.network.SecureNetwork, "_on_prem_routes", _previous_on_prem_routes
        )
        patch.setattr(orthgate.components.stack, "SecureNetworkArgs", _previous_args)
        return deployment.up(config)


def route_collisions(plan: UpdatePlan) -> list[str]:
    """A route created while a live one holds its table and destination: RouteAlreadyExists.

    The Terraform provider behind aws.ec2.Route refuses a create only when a route of origin
    CreateRoute holds the destination; a propagated one does not stop it.
    """
    gone_first = {s.before.urn for s in plan.steps if s.op == "replace" and s.delete_first}
    live = {
        (s.before.inputs["routeTableId"], s.before.inputs.get("destinationCidrBlock")): s.name
        for s in plan.steps
        if s.before is not None and s.type == ROUTE and s.before.urn not in gone_first
    }
    return [
        f"{s.name} needs {claim} while {live[claim]} holds it"
        for s in plan.steps
        if s.type == ROUTE and s.op in ("create", "replace") and not s.delete_first
        for claim in [(s.after.inputs["routeTableId"], s.after.inputs.get("destinationCidrBlock"))]
        if claim in live
    ]


# An on-premises range is where nginx takes plaintext DICOM from (its geo map, in nginx's
# TLS secret): a new value of that secret, which the hosts pick up with a reload.
NEW_SECRET_VALUE = "orthanc-nginx-files-secret-value"


def assert_clean(plan: UpdatePlan) -> None:
    assert plan.collisions == [], plan.collisions
    assert plan.blocked == [], plan.blocked
    assert route_collisions(plan) == []
    assert [s for s in plan.replaced if s.name != NEW_SECRET_VALUE] == [], plan.replaced


def with_network(config: dict, **network) -> dict:
    changed = copy.deepcopy(config)
    changed["orthgate:network"] = {**changed["orthgate:network"], **network}
    return changed


def on_prem_steps(plan: UpdatePlan, op: str) -> set[str]:
    return {s.name for s in plan.with_op(op, ROUTE) if "-on-prem-" in s.name}


def test_the_emulated_previous_program_declares_what_it_did_before():
    deployment = Deployment(stack="prod")
    before = up_previous(deployment, shipped("prod"))
    propagations = before.of_type(PROPAGATION)
    tables = {t.id: t.name for t in before.of_type(ROUTE_TABLE)}
    assert {(p.name, tables[p.inputs["routeTableId"]]) for p in propagations} == {
        ("network-vgw-propagation-0", "network-public-rt"),
        ("network-vgw-propagation-1", "network-private-0-rt"),
        ("network-vgw-propagation-2", "network-private-1-rt"),
    }
    assert [r.name for r in before.of_type(ROUTE) if "-on-prem-" in r.name] == []


def test_upgrading_shipped_prod_adds_static_routes_and_then_drops_propagation():
    deployment = Deployment(stack="prod")
    before = up_previous(deployment, shipped("prod"))
    after = deployment.up(shipped("prod"))
    plan = plan_update(before, after)
    assert_clean(plan)
    assert on_prem_steps(plan, "create") == {
        "network-private-0-on-prem-172.20.0.0-16",
        "network-private-1-on-prem-172.20.0.0-16",
    }
    assert {s.name for s in plan.with_op("delete")} == {
        "network-vgw-propagation-0",
        "network-vgw-propagation-1",
        "network-vgw-propagation-2",
    }
    # Nothing else moves: the creates are the routes, the deletes the propagations.
    summary = plan.summary()
    assert set(summary) == {"create", "delete"}
    assert sorted(summary["create"]) == sorted(
        f"{ROUTE}::{n}" for n in on_prem_steps(plan, "create")
    )
    assert sorted(summary["delete"]) == [
        f"{PROPAGATION}::network-vgw-propagation-{i}" for i in range(3)
    ]
    # The engine deletes what the program no longer declares only after the program has
    # exited, i.e. after every create has finished (pulumi/pulumi developer-docs,
    # architecture/resource-registration.md); no new route depends on a propagation, so
    # nothing ties a create to a delete.
    old = {s.before.urn for s in plan.with_op("delete")}
    for step in plan.with_op("create"):
        assert not old & set(step.after.options.dependencies), step.name


def test_upgrading_a_public_single_host_with_a_vpn_keeps_the_public_table_answering():
    config = with_network(shipped("dev"), siteToSiteVpns=[SITE_A])
    deployment = Deployment(stack="dev")
    before = up_previous(deployment, config)
    after = deployment.up(config)
    plan = plan_update(before, after)
    assert_clean(plan)
    assert on_prem_steps(plan, "create") == {
        f"network-{table}-on-prem-{cidr}"
        for table in ("public", "private-0", "private-1")
        for cidr in ("172.20.0.0-16", "192.168.50.0-24")
    }
    assert {s.type for s in plan.with_op("delete")} == {PROPAGATION}
    assert set(plan.summary()) == {"create", "delete"}


@pytest.fixture(scope="module")
def upgraded_prod():
    """Shipped prod deployed by the previous program, then upgraded: the second `up`."""
    deployment = Deployment(stack="prod")
    up_previous(deployment, shipped("prod"))
    return deployment, deployment.up(shipped("prod"))


def test_an_upgraded_prod_plans_nothing_on_the_next_up(upgraded_prod):
    deployment, upgraded = upgraded_prod
    plan = plan_update(upgraded, deployment.up(shipped("prod")))
    assert plan.summary() == {}


def _vpns(config: dict) -> list[dict]:
    return copy.deepcopy(config["orthgate:network"]["siteToSiteVpns"])


def test_adding_a_range_to_an_upgraded_prod_adds_its_routes_and_renames_none(upgraded_prod):
    deployment, upgraded = upgraded_prod
    config = shipped("prod")
    vpns = _vpns(config)
    vpns[0]["onPremCidrs"] = [*vpns[0]["onPremCidrs"], "172.22.0.0/16"]
    plan = plan_update(upgraded, deployment.up(with_network(config, siteToSiteVpns=vpns)))
    assert_clean(plan)
    assert on_prem_steps(plan, "create") == {
        "network-private-0-on-prem-172.22.0.0-16",
        "network-private-1-on-prem-172.22.0.0-16",
    }
    assert on_prem_steps(plan, "same") == {
        "network-private-0-on-prem-172.20.0.0-16",
        "network-private-1-on-prem-172.20.0.0-16",
    }
    assert plan.with_op("delete") == []
    # Besides the routes, only what admits the new range is created; nothing is updated but
    # nginx's secret value, whose plaintext map now takes the range too.
    assert set(plan.summary()) == {"create", "replace"}
    assert [s.name for s in plan.with_op("replace")] == [NEW_SECRET_VALUE]
    for step in plan.with_op("create"):
        assert step.name.endswith("172.22.0.0-16"), step


def test_removing_a_range_deletes_only_its_routes():
    config = with_network(
        shipped("prod"),
        siteToSiteVpns=[
            {**_vpns(shipped("prod"))[0], "onPremCidrs": ["172.20.0.0/16", "172.22.0.0/16"]}
        ],
    )
    deployment = Deployment(stack="prod")
    first = deployment.up(config)
    plan = plan_update(first, deployment.up(shipped("prod")))
    assert_clean(plan)
    assert on_prem_steps(plan, "delete") == {
        "network-private-0-on-prem-172.22.0.0-16",
        "network-private-1-on-prem-172.22.0.0-16",
    }
    assert on_prem_steps(plan, "same") == {
        "network-private-0-on-prem-172.20.0.0-16",
        "network-private-1-on-prem-172.20.0.0-16",
    }
    assert plan.with_op("create") == []


def test_adding_a_vpn_adds_its_gateway_connection_and_routes_and_replaces_nothing(upgraded_prod):
    deployment, upgraded = upgraded_prod
    config = shipped("prod")
    second = {**SITE_B, "name": "east-campus", "onPremCidrs": ["172.23.0.0/16"]}
    plan = plan_update(
        upgraded, deployment.up(with_network(config, siteToSiteVpns=[*_vpns(config), second]))
    )
    assert_clean(plan)
    created = {s.name for s in plan.with_op("create")}
    assert {
        "network-vpn-east-campus",
        "network-vpn-east-campus-cgw",
        "network-vpn-east-campus-route-172.23.0.0-16",
        "network-private-0-on-prem-172.23.0.0-16",
        "network-private-1-on-prem-172.23.0.0-16",
    } <= created
    assert on_prem_steps(plan, "same") == {
        "network-private-0-on-prem-172.20.0.0-16",
        "network-private-1-on-prem-172.20.0.0-16",
    }
    assert set(plan.summary()) == {"create", "replace"}
    assert [s.name for s in plan.with_op("replace")] == [NEW_SECRET_VALUE]
    for step in plan.with_op("create"):
        assert "east-campus" in step.name or step.name.endswith("172.23.0.0-16"), step


def test_a_range_moving_from_a_vpn_to_direct_connect_keeps_its_routes():
    config = with_network(
        shipped("prod"),
        siteToSiteVpns=[
            {**_vpns(shipped("prod"))[0], "onPremCidrs": ["172.20.0.0/16", "172.22.0.0/16"]}
        ],
    )
    moved = with_network(
        shipped("prod"),
        directConnectGatewayId=DX_GATEWAY,
        directConnectOnPremCidrs=["172.22.0.0/16"],
    )
    deployment = Deployment(stack="prod")
    first = deployment.up(config)
    plan = plan_update(first, deployment.up(moved))
    assert_clean(plan)
    # The same table and range keep the same name: no second route for a live destination.
    for i in range(2):
        step = plan.step(f"network-private-{i}-on-prem-172.22.0.0-16", ROUTE)
        assert step.op in ("same", "update")
    assert on_prem_steps(plan, "create") == set()


def test_the_collision_check_sees_a_route_renamed_over_a_live_destination():
    def program(label: str):
        def run() -> None:
            aws.ec2.Route(
                f"to-{label}",
                route_table_id="rtb-0123456789abcdef0",
                destination_cidr_block="172.20.0.0/16",
                gateway_id="vgw-0123456789abcdef0",
            )

        return run

    deployment = Deployment()
    first = deployment.up({}, program=program("site-a"))
    plan = plan_update(first, deployment.up({}, program=program("site-b")))
    assert route_collisions(plan) == [
        "to-site-b needs ('rtb-0123456789abcdef0', '172.20.0.0/16') while to-site-a holds it"
    ]


def test_every_on_prem_route_is_a_configured_range_and_never_wider(full):
    for route in full.of_type(ROUTE):
        if "-on-prem-" in route.name:
            network = ipaddress.ip_network(route.inputs["destinationCidrBlock"])
            assert network.prefixlen >= 8
            assert not network.overlaps(ipaddress.ip_network("10.40.0.0/16"))
