"""The stack configuration contract: what is accepted, and how refusals read."""

from __future__ import annotations

import copy
import json

import pulumi
import pytest

from orthgate.components.config import ConfigError, load_settings, parse_settings

VALID = {
    "environment": "dev",
    "network": {"vpcCidr": "10.40.0.0/16"},
}

VPN = {
    "name": "site-a",
    "customerGatewayIp": "203.0.113.10",
    "onPremCidrs": ["172.20.0.0/16"],
}


def with_network(**network) -> dict:
    config = copy.deepcopy(VALID)
    config["network"].update(network)
    return config


def refusal(config: dict) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_settings(config)
    return caught.value


def test_only_vpc_cidr_is_required_and_defaults_are_the_documented_ones():
    network = parse_settings(VALID).network
    assert str(network.vpc_cidr) == "10.40.0.0/16"
    assert network.availability_zones == 2
    assert network.public_subnet_prefix == 24
    assert network.private_subnet_prefix == 22
    assert network.nat_gateways == "none"
    assert network.interface_endpoints == []
    assert network.flow_log_retention_days == 365
    assert network.site_to_site_vpns == []
    assert network.direct_connect_gateway_id is None


def test_a_full_network_is_accepted_and_private_paths_are_collected():
    settings = parse_settings(
        with_network(
            availabilityZones=3,
            natGateways="perAz",
            interfaceEndpoints=["kms", "ecr.dkr"],
            siteToSiteVpns=[
                {**VPN, "bgpAsn": 4200000001, "staticRoutesOnly": True},
                {
                    "name": "site-b",
                    "customerGatewayIp": "198.51.100.20",
                    "onPremCidrs": ["192.168.10.0/24", "172.21.0.0/16"],
                },
            ],
            directConnectGatewayId="5f294f92-bafb-4011-916d-9b0b45a1c3d2",
            directConnectOnPremCidrs=["172.30.0.0/16"],
        )
    )
    assert [str(c) for c in settings.network.private_path_cidrs] == [
        "172.20.0.0/16",
        "172.21.0.0/16",
        "172.30.0.0/16",
        "192.168.10.0/24",
    ]
    assert settings.network.site_to_site_vpns[0].bgp_asn == 4200000001
    assert settings.network.needs_vpn_gateway


# Each case: a broken configuration and the key path its refusal must name.
INVALID_NETWORKS = [
    pytest.param({"vpcCidr": "10.0.0.0/33"}, "orthgate:network.vpcCidr", id="prefix-33"),
    pytest.param({"vpcCidr": "banana"}, "orthgate:network.vpcCidr", id="not-a-cidr"),
    pytest.param({"vpcCidr": "10.0.0.1/16"}, "orthgate:network.vpcCidr", id="host-bits"),
    pytest.param({"vpcCidr": "8.8.0.0/16"}, "orthgate:network.vpcCidr", id="public-vpc"),
    pytest.param({"vpcCidr": "10.0.0.0/8"}, "orthgate:network.vpcCidr", id="vpc-too-big"),
    pytest.param({"vpcCidr": "10.0.0.0/25"}, "orthgate:network.vpcCidr", id="vpc-too-small"),
    pytest.param({"vpcCidr": 167772160}, "orthgate:network.vpcCidr", id="number-not-cidr"),
    pytest.param({"availabilityZones": 7}, "orthgate:network.availabilityZones", id="7-azs"),
    pytest.param({"availabilityZones": 1}, "orthgate:network.availabilityZones", id="1-az"),
    pytest.param({"availabilityZones": True}, "orthgate:network.availabilityZones", id="bool"),
    pytest.param({"publicSubnetPrefix": 29}, "orthgate:network.publicSubnetPrefix", id="pub-29"),
    pytest.param({"privateSubnetPrefix": 33}, "orthgate:network.privateSubnetPrefix", id="priv-33"),
    pytest.param(
        {"vpcCidr": "10.0.0.0/24"}, "orthgate:network.vpcCidr", id="subnets-larger-than-vpc"
    ),
    pytest.param(
        {"vpcCidr": "10.0.0.0/20", "availabilityZones": 3, "publicSubnetPrefix": 22},
        "orthgate:network.vpcCidr",
        id="subnets-do-not-fit",
    ),
    pytest.param({"natGateways": "always"}, "orthgate:network.natGateways", id="nat-mode"),
    pytest.param(
        {"interfaceEndpoints": ["secretmanager"]},
        "orthgate:network.interfaceEndpoints[0]",
        id="endpoint-typo",
    ),
    pytest.param(
        {"interfaceEndpoints": ["s3"]}, "orthgate:network.interfaceEndpoints[0]", id="s3-iface"
    ),
    pytest.param(
        {"interfaceEndpoints": ["kms", "ssm", "kms"]},
        "orthgate:network.interfaceEndpoints[2]",
        id="endpoint-twice",
    ),
    pytest.param(
        {"flowLogRetentionDays": 100}, "orthgate:network.flowLogRetentionDays", id="retention"
    ),
    pytest.param({"vpcCdir": "10.0.0.0/16"}, "orthgate:network.vpcCdir", id="unknown-key"),
    pytest.param(
        {"siteToSiteVpns": [{**VPN, "name": "Site_A"}]},
        "orthgate:network.siteToSiteVpns[0].name",
        id="vpn-name-not-dns",
    ),
    pytest.param(
        {"siteToSiteVpns": [VPN, {**VPN, "customerGatewayIp": "198.51.100.1"}]},
        "orthgate:network.siteToSiteVpns[1].name",
        id="vpn-name-twice",
    ),
    pytest.param(
        {"siteToSiteVpns": [{**VPN, "customerGatewayIp": "192.168.1.1"}]},
        "orthgate:network.siteToSiteVpns[0].customerGatewayIp",
        id="cgw-private",
    ),
    pytest.param(
        {"siteToSiteVpns": [{**VPN, "customerGatewayIp": "100.64.1.1"}]},
        "orthgate:network.siteToSiteVpns[0].customerGatewayIp",
        id="cgw-cgnat",
    ),
    pytest.param(
        {"siteToSiteVpns": [{**VPN, "bgpAsn": 64512}]},
        "orthgate:network.siteToSiteVpns[0].bgpAsn",
        id="asn-amazon-side",
    ),
    pytest.param(
        {"siteToSiteVpns": [{**VPN, "bgpAsn": 23456}]},
        "orthgate:network.siteToSiteVpns[0].bgpAsn",
        id="asn-reserved",
    ),
    pytest.param(
        {"siteToSiteVpns": [{**VPN, "bgpAsn": 4294967295}]},
        "orthgate:network.siteToSiteVpns[0].bgpAsn",
        id="asn-too-large",
    ),
    pytest.param(
        {"siteToSiteVpns": [{**VPN, "onPremCidrs": ["10.40.8.0/24"]}]},
        "orthgate:network.siteToSiteVpns[0].onPremCidrs[0]",
        id="onprem-overlaps-vpc",
    ),
    pytest.param(
        {
            "siteToSiteVpns": [
                VPN,
                {
                    "name": "site-b",
                    "customerGatewayIp": "198.51.100.1",
                    "onPremCidrs": ["172.20.128.0/17"],
                },
            ]
        },
        "orthgate:network.siteToSiteVpns[1].onPremCidrs[0]",
        id="onprem-overlap-each-other",
    ),
    pytest.param(
        {"siteToSiteVpns": [{**VPN, "onPremCidrs": ["0.0.0.0/0"]}]},
        "orthgate:network.siteToSiteVpns[0].onPremCidrs[0]",
        id="onprem-world",
    ),
    pytest.param(
        {"siteToSiteVpns": [{**VPN, "onPremCidrs": []}]},
        "orthgate:network.siteToSiteVpns[0].onPremCidrs",
        id="onprem-empty",
    ),
    pytest.param(
        {"siteToSiteVpns": [{k: v for k, v in VPN.items() if k != "customerGatewayIp"}]},
        "orthgate:network.siteToSiteVpns[0].customerGatewayIp",
        id="cgw-missing",
    ),
    pytest.param(
        {
            "siteToSiteVpns": [
                {
                    **VPN,
                    "name": f"s{i}",
                    "customerGatewayIp": f"203.0.113.{i}",
                    "onPremCidrs": [f"172.{16 + i}.0.0/16"],
                }
                for i in range(11)
            ]
        },
        "orthgate:network.siteToSiteVpns",
        id="too-many-vpns",
    ),
    pytest.param(
        {"directConnectGatewayId": "dxgw-123"},
        "orthgate:network.directConnectGatewayId",
        id="dx-id-format",
    ),
    pytest.param(
        {"directConnectGatewayId": "5f294f92-bafb-4011-916d-9b0b45a1c3d2"},
        "orthgate:network.directConnectOnPremCidrs",
        id="dx-without-ranges",
    ),
]


@pytest.mark.parametrize(("network", "path"), INVALID_NETWORKS)
def test_invalid_network_is_refused_naming_its_key_path(network, path):
    error = refusal(with_network(**network))
    paths = [problem.path for problem in error.problems]
    assert path in paths, str(error)
    assert path in str(error)
    assert "orthgate:network" in str(error)


def test_a_missing_network_and_environment_are_both_reported():
    error = refusal({})
    assert {p.path for p in error.problems} == {"orthgate:environment", "orthgate:network"}
    assert all(p.rule == "is required" for p in error.problems)


def test_several_problems_are_reported_together_with_value_and_rule():
    network = {"vpcCidr": "10.0.0.0/33", "availabilityZones": 7}
    error = refusal({"environment": "production", "network": network})
    text = str(error)
    assert len(error.problems) == 3
    assert "orthgate:environment = \"production\": must be 'dev', 'tst', 'stg' or 'prd'" in text
    assert 'orthgate:network.vpcCidr = "10.0.0.0/33": the prefix /33 is out of range' in text
    assert "orthgate:network.availabilityZones = 7: must be" in text
    assert text.startswith("the stack configuration has 3 problems")


def test_unknown_keys_are_refused_at_every_level_with_a_suggestion():
    error = refusal(
        {
            **with_network(siteToSiteVpns=[{**VPN, "bgpAns": 65001}]),
            "netwrk": {},
        }
    )
    by_path = {p.path: p.rule for p in error.problems}
    assert "did you mean network?" in by_path["orthgate:netwrk"]
    assert "did you mean bgpAsn?" in by_path["orthgate:network.siteToSiteVpns[0].bgpAns"]


def test_host_bits_refusal_names_the_network_address():
    error = refusal(with_network(vpcCidr="10.40.3.0/16"))
    assert "10.40.0.0/16" in str(error)


def test_layout_refusal_says_how_many_addresses_are_needed():
    error = refusal(with_network(vpcCidr="10.0.0.0/21"))
    assert "2 zones" in str(error)
    assert "need 2560 addresses; the VPC 10.0.0.0/21 has 2048" in str(error)


def test_documentation_addresses_are_accepted_as_customer_gateways():
    # Shipped examples use RFC 5737 addresses; they must evaluate.
    for address in ("203.0.113.10", "198.51.100.7", "192.0.2.1"):
        parse_settings(with_network(siteToSiteVpns=[{**VPN, "customerGatewayIp": address}]))


def test_an_extended_asn_is_accepted():
    settings = parse_settings(with_network(siteToSiteVpns=[{**VPN, "bgpAsn": 4200000000}]))
    assert settings.network.site_to_site_vpns[0].bgp_asn == 4200000000


def test_load_settings_reads_the_pulumi_config_and_refuses_unknown_top_level_keys():
    pulumi.runtime.set_all_config(
        {
            "orthgate:environment": "prd",
            "orthgate:network": json.dumps({"vpcCidr": "10.50.0.0/16"}),
            "orthgate:orthank": json.dumps({}),
            "aws:region": "eu-central-1",
        }
    )
    try:
        with pytest.raises(ConfigError) as caught:
            load_settings()
        assert [p.path for p in caught.value.problems] == ["orthgate:orthank"]
    finally:
        pulumi.runtime.set_all_config({})


def test_load_settings_reports_an_object_that_is_not_json_with_the_other_problems():
    pulumi.runtime.set_all_config(
        {"orthgate:environment": "dve", "orthgate:network": "{vpc", "orthgate:extra": "plain"}
    )
    try:
        with pytest.raises(ConfigError) as caught:
            load_settings()
        by_path = {p.path: p.rule for p in caught.value.problems}
        assert set(by_path) == {"orthgate:environment", "orthgate:network", "orthgate:extra"}
        assert "not a valid object" in by_path["orthgate:network"]
        assert "is not a known key" in by_path["orthgate:extra"]
    finally:
        pulumi.runtime.set_all_config({})


def test_load_settings_accepts_a_valid_stack():
    pulumi.runtime.set_all_config(
        {"orthgate:environment": "tst", "orthgate:network": json.dumps({"vpcCidr": "10.1.0.0/16"})}
    )
    try:
        settings = load_settings()
    finally:
        pulumi.runtime.set_all_config({})
    assert settings.environment == "tst"
    assert not settings.is_production
