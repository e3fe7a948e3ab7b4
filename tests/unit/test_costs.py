"""The cost estimate: figures from the price table, every declarable type priced or free."""

from __future__ import annotations

import copy
import importlib
import json
import re
from pathlib import Path

import pytest

from orthgate.costs import (
    FREE_TYPES,
    PRICING_RULES,
    CostAssumptions,
    UnknownRegionError,
    estimate,
    is_accounted_for,
    price_table,
    render_costs,
)
from orthgate.offline.evaluation import Declared, Evaluation
from orthgate.validation import validate_config
from tests.harness.pulumi_run import STACKS_DIR, evaluate, read_stack_file

COMPONENTS_DIR = Path(__file__).resolve().parents[2] / "components"
TABLE = price_table()
HOURS = CostAssumptions().hours_per_month


def price(region: str, key: str, section: str = "prices") -> float:
    return TABLE["regions"][region][section][key]["usd"]


def maximal_config() -> dict:
    """The shipped prod stack plus everything else the program can declare."""
    config = copy.deepcopy(read_stack_file(STACKS_DIR / "Pulumi.prod.yaml"))
    config["aws:region"] = "us-east-1"
    network = config["orthgate:network"]
    network["directConnectGatewayId"] = "5f294f92-bafb-4011-916d-9b0b45a1c3d2"
    network["directConnectOnPremCidrs"] = ["172.30.0.0/16"]
    network["siteToSiteVpns"][0]["staticRoutesOnly"] = True
    config["orthgate:clientVpn"] = {
        "enabled": True,
        "clientCidr": "192.168.0.0/22",
        "workstations": ["reading-room-1", "reading-room-2", "reading-room-3"],
        "associatedSubnets": 2,
    }
    return config


@pytest.fixture(scope="module")
def stacks():
    """(config, evaluation) of the shipped stacks and of the maximal one: three evaluations."""
    configs = {
        name: read_stack_file(STACKS_DIR / f"Pulumi.{name}.yaml") for name in ("dev", "prod")
    }
    configs["max"] = maximal_config()
    return {name: (config, evaluate(config, stack=name)) for name, config in configs.items()}


@pytest.fixture(scope="module")
def maximal(stacks):
    config, evaluation = stacks["max"]
    return evaluation, estimate(evaluation, validate_config(config), "us-east-1")


def lines_for(costs, resource_type, evaluation):
    names = {r.name for r in evaluation.of_type(resource_type)}
    return [line for line in costs.lines if line.resource in names]


# --- the table ---------------------------------------------------------------------------------


def test_the_table_has_its_date_sources_and_both_regions_with_the_same_keys():
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", TABLE["date"])
    assert TABLE["sources"]
    assert all(s["url"].startswith(("https://", "http://")) for s in TABLE["sources"].values())
    regions = TABLE["regions"]
    assert {"us-east-1", "eu-central-1"} <= set(regions)
    shape = {section: set(entries) for section, entries in regions["us-east-1"].items()}
    for region, sections in regions.items():
        assert {s: set(e) for s, e in sections.items()} == shape, region


def test_every_figure_names_its_source_and_an_unconfirmed_one_says_why():
    for region, sections in TABLE["regions"].items():
        for section, entries in sections.items():
            for key, entry in entries.items():
                where = f"{region} {section} {key}"
                assert entry["source"] in TABLE["sources"], where
                if entry["verified"]:
                    assert isinstance(entry["usd"], int | float), where
                else:
                    assert entry.get("note"), where


def test_the_instance_types_the_shipped_stacks_and_defaults_use_are_in_the_table(stacks):
    types = {"t3.medium"}  # orthgate:orthanc.instanceType's default
    for _, evaluation in stacks.values():
        types |= {t.inputs["instanceType"] for t in evaluation.of_type(TEMPLATE)}
    for region in ("us-east-1", "eu-central-1"):
        assert types <= set(TABLE["regions"][region]["ec2_instance_hour"]), region
    assert "db.t4g.small" in TABLE["regions"]["us-east-1"]["rds_postgres_instance_hour"]


# --- every type is priced or free --------------------------------------------------------------

TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
_CONSTRUCTOR = re.compile(r"\b(aws|tls|random)\.(?:([a-z0-9_]+)\.)?([A-Z][A-Za-z0-9]*)\(")
_PACKAGES = {"aws": "pulumi_aws", "tls": "pulumi_tls", "random": "pulumi_random"}


def constructed_types() -> set[str]:
    """The type token of every resource constructor called anywhere in components/."""
    tokens = set()
    for path in COMPONENTS_DIR.rglob("*.py"):
        for provider, module, name in _CONSTRUCTOR.findall(path.read_text("utf-8")):
            package = importlib.import_module(_PACKAGES[provider])
            owner = getattr(package, module) if module else package
            tokens.add(getattr(owner, name).pulumi_type)
    return tokens


def test_every_resource_constructor_in_the_components_is_priced_or_free():
    tokens = constructed_types()
    assert len(tokens) > 40  # the scan found the constructors, not nothing
    missing = sorted(t for t in tokens if not is_accounted_for(t))
    assert not missing, f"add a pricing rule or a FREE_TYPES reason for {missing}"


def test_every_type_the_stacks_declare_is_priced_or_free(stacks):
    declared = {r.type for _, evaluation in stacks.values() for r in evaluation.resources}
    assert {
        "aws:ec2clientvpn/networkAssociation:NetworkAssociation",
        "aws:directconnect/gatewayAssociation:GatewayAssociation",
        "aws:rds/instance:Instance",
        "aws:ec2/vpnConnectionRoute:VpnConnectionRoute",
    } <= declared
    assert sorted(t for t in declared if not is_accounted_for(t)) == []


def test_no_type_is_both_priced_and_free():
    assert not set(PRICING_RULES) & set(FREE_TYPES)


def test_no_line_of_the_maximal_stack_lacks_a_rule(maximal):
    _, costs = maximal
    assert not [line for line in costs.lines if "no pricing rule" in line.note]


# --- the figures come from the table -----------------------------------------------------------


def test_nat_gateways_are_priced_per_hour_from_the_table(maximal):
    evaluation, costs = maximal
    gateways = evaluation.of_type("aws:ec2/natGateway:NatGateway")
    hourly = [line for line in lines_for(costs, "aws:ec2/natGateway:NatGateway", evaluation)
              if line.unit == "hour"]  # fmt: skip
    assert len(hourly) == len(gateways) == 2
    for line in hourly:
        assert line.monthly_usd == pytest.approx(price("us-east-1", "nat_gateway_hour") * HOURS)


def test_client_vpn_is_associations_plus_connection_hours_of_the_workstations(maximal):
    evaluation, costs = maximal
    associations = lines_for(
        costs, "aws:ec2clientvpn/networkAssociation:NetworkAssociation", evaluation
    )
    assert len(associations) == 2
    assert sum(line.monthly_usd for line in associations) == pytest.approx(
        2 * HOURS * price("us-east-1", "client_vpn_association_hour")
    )
    [connections] = lines_for(costs, "aws:ec2clientvpn/endpoint:Endpoint", evaluation)
    assumed = CostAssumptions().vpn_hours_per_workstation
    assert connections.quantity == 3 * assumed
    assert connections.usage_based
    assert connections.monthly_usd == pytest.approx(
        3 * assumed * price("us-east-1", "client_vpn_connection_hour")
    )


def test_the_fleet_is_its_desired_hosts_at_the_template_instance_type(maximal):
    evaluation, costs = maximal
    group = evaluation.one("aws:autoscaling/group:Group")
    template = evaluation.one(TEMPLATE)
    [hosts] = [line for line in lines_for(costs, "aws:autoscaling/group:Group", evaluation)
               if line.unit == "instance-hour"]  # fmt: skip
    rate = price("us-east-1", template.inputs["instanceType"], "ec2_instance_hour")
    assert hosts.monthly_usd == pytest.approx(group.inputs["desiredCapacity"] * HOURS * rate)


def test_a_multi_az_database_pays_for_primary_and_standby(maximal):
    evaluation, costs = maximal
    database = evaluation.one("aws:rds/instance:Instance")
    assert database.inputs["multiAz"] is True
    lines = {line.item.split(",")[0]: line for line in
             lines_for(costs, "aws:rds/instance:Instance", evaluation)}  # fmt: skip
    klass = database.inputs["instanceClass"]
    instance_rate = price("us-east-1", klass, "rds_postgres_instance_hour")
    assert lines[f"RDS PostgreSQL {klass}"].monthly_usd == pytest.approx(2 * HOURS * instance_rate)
    assert lines["RDS gp3 storage"].monthly_usd == pytest.approx(
        2 * database.inputs["allocatedStorage"] * price("us-east-1", "rds_gp3_gb_month")
    )


def test_interface_endpoints_are_priced_per_zone(maximal):
    evaluation, costs = maximal
    endpoints = [e for e in evaluation.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
                 if e.inputs["vpcEndpointType"] == "Interface"]  # fmt: skip
    hourly = [line for line in lines_for(costs, "aws:ec2/vpcEndpoint:VpcEndpoint", evaluation)
              if line.unit == "endpoint-AZ-hour"]  # fmt: skip
    assert len(hourly) == len(endpoints) == 6
    zones = len(endpoints[0].inputs["subnetIds"])
    for line in hourly:
        assert line.monthly_usd == pytest.approx(
            zones * HOURS * price("us-east-1", "interface_endpoint_az_hour")
        )


def test_every_public_address_is_charged_and_the_total_adds_up(maximal):
    evaluation, costs = maximal
    eips = lines_for(costs, "aws:ec2/eip:Eip", evaluation)
    assert len(eips) == len(evaluation.of_type("aws:ec2/eip:Eip")) > 0
    for line in eips:
        assert line.monthly_usd == pytest.approx(HOURS * price("us-east-1", "public_ipv4_hour"))
    assert costs.total_usd == pytest.approx(sum(line.monthly_usd or 0 for line in costs.lines))
    assert sum(costs.component_totals().values()) == pytest.approx(costs.total_usd)
    # The plan's components, by name (a proxy site costs nothing in the cloud).
    assert {"network", "orthanc", "client-vpn", "alarms"} <= set(costs.component_totals())


def test_an_assumption_changes_only_its_usage_line(stacks):
    config, evaluation = stacks["prod"]
    settings = validate_config(config)
    base = estimate(evaluation, settings, "us-east-1")
    more = estimate(evaluation, settings, "us-east-1", CostAssumptions(s3_image_gb=1000))
    extra = 900 * price("us-east-1", "s3_standard_gb_month")
    assert more.total_usd - base.total_usd == pytest.approx(extra)


# --- what the table does not know --------------------------------------------------------------


def test_an_unknown_region_names_the_regions_the_table_has(stacks):
    config, evaluation = stacks["dev"]
    with pytest.raises(UnknownRegionError) as caught:
        estimate(evaluation, validate_config(config), "ap-south-2")
    assert "ap-south-2" in str(caught.value)
    assert "eu-central-1" in str(caught.value)
    assert "us-east-1" in str(caught.value)


def _synthetic(instance_type: str, extra: list[Declared] = ()) -> Evaluation:
    template = Declared(TEMPLATE, "t", {"instanceType": instance_type}, {}, "lt-1")
    instance = Declared(
        "aws:ec2/instance:Instance", "host", {"launchTemplate": {"id": "lt-1"}}, {}, "i-1"
    )
    return Evaluation([template, instance, *extra], {}, set(), [], {})


def test_an_instance_type_without_a_price_is_a_line_saying_so_not_a_zero(stacks):
    settings = validate_config(stacks["dev"][0])
    costs = estimate(_synthetic("m5zn.large"), settings, "us-east-1")
    [line] = costs.unpriced
    assert "no price in the table for m5zn.large" in line.note
    assert line.monthly_usd is None
    assert costs.total_usd == 0
    assert "no price in the table for m5zn.large" in render_costs(costs)


def test_a_type_with_no_rule_is_reported_not_dropped(stacks):
    settings = validate_config(stacks["dev"][0])
    stray = Declared("aws:ec2/transitGateway:TransitGateway", "tgw", {}, {}, "tgw-1")
    costs = estimate(_synthetic("t3.medium", [stray]), settings, "us-east-1")
    assert [line.resource for line in costs.unpriced] == ["tgw"]


def test_a_figure_the_table_lacks_stays_out_of_the_total(stacks):
    config, evaluation = stacks["prod"]
    costs = estimate(evaluation, validate_config(config), "eu-central-1")
    missing = [key for key, entry in TABLE["regions"]["eu-central-1"]["prices"].items()
               if entry["usd"] is None]  # fmt: skip
    assert missing  # the table admits gaps rather than guessing
    assert costs.unpriced
    assert all(line.monthly_usd is None for line in costs.unpriced)
    assert costs.total_usd == pytest.approx(sum(line.monthly_usd or 0 for line in costs.lines))


# --- output ------------------------------------------------------------------------------------


def test_the_terminal_view_shows_date_sources_and_unverified_lines(maximal):
    _, costs = maximal
    text = render_costs(costs)
    assert TABLE["date"] in text
    for source in costs.sources.values():
        assert source["url"] in text
    assert costs.unverified
    assert f"{len(costs.unverified)} line(s) use a price no source confirmed" in text
    assert f"${costs.total_usd:,.2f}" in text


def test_the_json_view_carries_every_line_and_the_table_provenance(maximal):
    _, costs = maximal
    data = json.loads(json.dumps(costs.as_dict()))
    assert data["priceTableDate"] == TABLE["date"]
    assert set(data["sources"]) == {line.source for line in costs.lines if line.source}
    assert len(data["lines"]) == len(costs.lines)
    assert data["unverifiedLines"] == len(costs.unverified)
    assert data["totalMonthlyUsd"] == round(costs.total_usd, 2)


def test_the_lines_do_not_depend_on_the_order_the_engine_registered_resources(stacks):
    config, evaluation = stacks["max"]
    settings = validate_config(config)
    reversed_order = Evaluation(
        list(reversed(evaluation.resources)),
        evaluation.outputs,
        evaluation.secret_outputs,
        evaluation.calls,
        evaluation.registered_outputs,
    )
    forward = estimate(evaluation, settings, "us-east-1").as_dict()
    backward = estimate(reversed_order, settings, "us-east-1").as_dict()
    assert forward == backward
