"""Stack files that would open a port wider than they say, or that AWS would refuse half-way
through `pulumi up`: each is refused by the model, naming the key, before anything exists."""

from __future__ import annotations

import copy
import json
from ipaddress import IPv4Network

import pytest

from orthgate.components.config import ConfigError, parse_settings
from orthgate.components.config.deployment import planned_orthanc
from tests.harness.pulumi_run import STACKS_DIR, evaluate, read_stack_file, shipped_stacks

BASE = {
    "environment": "dev",
    "network": {"vpcCidr": "10.40.0.0/16", "natGateways": "single"},
}
VPN = {"name": "site-a", "customerGatewayIp": "203.0.113.10", "onPremCidrs": ["172.20.0.0/16"]}
DX_ID = "5f294f92-bafb-4011-916d-9b0b12345678"
CLIENT_VPN = {
    "enabled": True,
    "clientCidr": "192.168.0.0/22",
    "workstations": ["reading-room-1"],
}


def stack(network: dict | None = None, **sections) -> dict:
    config = copy.deepcopy(BASE)
    config["network"].update(network or {})
    config.update(sections)
    return config


def problems(config: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(config)
    return [str(p) for p in caught.value.problems]


def only_problem(config: dict, path: str) -> str:
    found = problems(config)
    assert len(found) == 1, found
    assert found[0].startswith(path), found
    return found[0]


# --- 1. private paths carry private ranges ------------------------------------------------


@pytest.mark.parametrize("cidr", ["8.8.8.0/24", "100.64.0.0/10", "198.18.0.0/15", "11.0.0.0/8"])
def test_an_internet_routable_on_prem_range_needs_the_opt_in(cidr):
    vpn = stack({"siteToSiteVpns": [{**VPN, "onPremCidrs": [cidr]}]})
    text = only_problem(vpn, "orthgate:network.siteToSiteVpns[0].onPremCidrs[0]")
    assert cidr in text
    assert "RFC 1918" in text
    assert "allowRoutableOnPremCidrs" in text
    dx = stack({"directConnectGatewayId": DX_ID, "directConnectOnPremCidrs": [cidr]})
    only_problem(dx, "orthgate:network.directConnectOnPremCidrs[0]")


def test_the_opt_in_forces_orthanc_off_the_internet():
    routable = {"siteToSiteVpns": [{**VPN, "onPremCidrs": ["8.8.8.0/24"]}]}
    text = only_problem(
        stack({**routable, "allowRoutableOnPremCidrs": True}),
        "orthgate:network.allowRoutableOnPremCidrs",
    )
    assert "placement: private" in text
    settings = parse_settings(
        stack({**routable, "allowRoutableOnPremCidrs": True}, orthanc={"placement": "private"})
    )
    assert [str(c) for c in settings.network.private_path_cidrs] == ["8.8.8.0/24"]


@pytest.mark.parametrize(
    "cidr", ["0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/8", "255.255.255.255/32"]
)
def test_reserved_ranges_are_never_a_site_not_even_with_the_opt_in(cidr):
    config = stack(
        {"allowRoutableOnPremCidrs": True, "siteToSiteVpns": [{**VPN, "onPremCidrs": [cidr]}]},
        orthanc={"placement": "private"},
    )
    text = only_problem(config, "orthgate:network.siteToSiteVpns[0].onPremCidrs[0]")
    assert "reserved range" in text


def test_a_private_single_host_with_a_routable_site_admits_it_only_inside_the_vpc():
    result = evaluate(
        {
            "aws:region": "eu-central-1",
            **{
                f"orthgate:{k}": v
                for k, v in stack(
                    {
                        "allowRoutableOnPremCidrs": True,
                        "siteToSiteVpns": [{**VPN, "onPremCidrs": ["8.8.8.0/24"]}],
                    },
                    orthanc={"placement": "private"},
                ).items()
            },
        }
    )
    instance = result.one("aws:ec2/instance:Instance")
    assert instance.inputs.get("associatePublicIpAddress") in (None, False)
    assert not result.of_type("aws:ec2/eipAssociation:EipAssociation")


# --- 2. the union of allow-lists is bounded -------------------------------------------------


def test_many_wide_entries_cannot_open_the_admin_ui_to_most_of_the_internet():
    wide = [f"{n}.0.0.0/8" for n in range(1, 224) if not IPv4Network(f"{n}.0.0.0/8").is_private]
    wide = [c for c in wide if c not in ("10.0.0.0/8", "100.0.0.0/8", "127.0.0.0/8")][:40]
    text = only_problem(
        stack(orthanc={"webAllowedCidrs": wide}, quotas={"inboundRulesPerSecurityGroup": 1000}),
        "orthgate:orthanc.webAllowedCidrs",
    )
    assert "HTTPS (port 443)" in text
    assert "at most 16,777,216" in text
    assert "% of IPv4" in text


def test_one_slash_8_and_narrow_sites_stay_accepted():
    parse_settings(
        stack(
            orthanc={
                "dicomAllowedCidrs": ["51.0.0.0/8"],
                "webAllowedCidrs": ["198.51.100.0/24", "203.0.113.7/32"],
            }
        )
    )


def test_the_bound_counts_every_list_that_lands_on_the_port():
    config = stack(
        orthanc={"dicomAllowedCidrs": ["51.0.0.0/8"]},
        dicomProxies=[
            {
                "name": "north",
                "sourceCidrs": ["52.0.0.0/8"],
                "aeTitle": "NORTH_GW",
                "listenAddress": "192.168.50.10",
                "acceptAnyModality": True,
            }
        ],
    )
    # Proxies add modalities only when given; the TLS port sees both /8s.
    text = problems(config)
    assert any("DICOM TLS (port 11112)" in p and "33,554,432" in p for p in text), text


# --- 3. the Client VPN's own range is private ----------------------------------------------


def test_client_cidr_must_be_private():
    text = only_problem(
        stack(clientVpn={**CLIENT_VPN, "clientCidr": "52.0.0.0/22"}),
        "orthgate:clientVpn.clientCidr",
    )
    assert "RFC 1918" in text


# --- 4. the security-group rule quota --------------------------------------------------------


def test_61_direct_tls_sources_exceed_the_default_rule_quota():
    cidrs = [f"198.51.{i}.0/24" for i in range(61)]
    text = only_problem(
        stack(orthanc={"dicomAllowedCidrs": cidrs}), "orthgate:orthanc.dicomAllowedCidrs"
    )
    assert "61 inbound rules" in text
    assert "allows 60" in text
    assert "orthgate:quotas.inboundRulesPerSecurityGroup" in text
    parse_settings(
        stack(orthanc={"dicomAllowedCidrs": cidrs}, quotas={"inboundRulesPerSecurityGroup": 100})
    )
    parse_settings(stack(orthanc={"dicomAllowedCidrs": cidrs[:60]}))


def test_private_paths_count_three_rules_per_range():
    vpns = [
        {
            "name": f"site-{i}",
            "customerGatewayIp": f"203.0.113.{i + 1}",
            "onPremCidrs": [f"172.{16 + i}.0.0/17", f"172.{16 + i}.128.0/17"],
        }
        for i in range(10)
    ]
    config = stack({"siteToSiteVpns": vpns}, orthanc={"dicomAllowedCidrs": ["198.51.100.0/24"]})
    text = " ".join(problems(config))
    assert "61 inbound rules" in text, text
    assert "3 rules" in text
    # 20 ranges x 3 = 60 rules: exactly the quota.
    parse_settings(stack({"siteToSiteVpns": vpns}))


def test_the_fleet_counts_each_load_balancer_group_on_its_own():
    cidrs = [f"198.51.{i}.0/24" for i in range(59)]
    fleet = {"environment": "prd", "network": {"vpcCidr": "10.40.0.0/16", "natGateways": "perAz"}}
    settings = parse_settings({**fleet, "orthanc": {"dicomAllowedCidrs": cidrs}})
    plan = planned_orthanc(settings)
    assert plan is not None
    assert len(plan.rules_for("lb-public")) == 59
    web = {"webAllowedCidrs": ["203.0.113.0/24", "192.0.2.0/24"]}
    text = only_problem(
        {**fleet, "orthanc": {"dicomAllowedCidrs": cidrs, **web}},
        "orthgate:orthanc.dicomAllowedCidrs",
    )
    assert "public load balancer" in text
    assert "61 inbound rules" in text


def test_the_quota_setting_is_bounded_by_aws():
    only_problem(
        stack(quotas={"inboundRulesPerSecurityGroup": 1001}),
        "orthgate:quotas.inboundRulesPerSecurityGroup",
    )
    only_problem(
        stack(quotas={"inboundRulesPerSecurityGroup": 10}),
        "orthgate:quotas.inboundRulesPerSecurityGroup",
    )


# --- 5. a source listed twice lands as one rule ----------------------------------------------

RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


def test_a_range_in_two_lists_is_declared_once_per_group_and_port():
    config = stack(
        {
            "allowRoutableOnPremCidrs": True,
            "siteToSiteVpns": [{**VPN, "onPremCidrs": ["172.20.0.0/16", "8.8.8.0/24"]}],
        },
        orthanc={
            "placement": "private",
            "dicomAllowedCidrs": ["8.8.8.0/24", "172.20.0.0/16"],
            "webAllowedCidrs": ["8.8.8.0/24"],
        },
    )
    result = evaluate(
        {"aws:region": "eu-central-1"} | {f"orthgate:{k}": v for k, v in config.items()}
    )
    keys = [
        (
            r.inputs["securityGroupId"],
            r.inputs.get("ipProtocol"),
            r.inputs.get("fromPort"),
            r.inputs.get("toPort"),
            r.inputs.get("cidrIpv4") or r.inputs.get("referencedSecurityGroupId"),
        )
        for r in result.of_type(RULE)
    ]
    assert len(keys) == len(set(keys)), "AWS refuses a duplicate rule (InvalidPermission.Duplicate)"
    tls = [k for k in keys if k[2] == 11112 and k[4] == "8.8.8.0/24"]
    assert len(tls) == 1


# --- 6. Client VPN target subnets ------------------------------------------------------------


def test_client_vpn_needs_private_subnets_of_at_least_slash_27():
    text = only_problem(
        stack({"privateSubnetPrefix": 28}, clientVpn=CLIENT_VPN),
        "orthgate:network.privateSubnetPrefix",
    )
    assert "/27" in text
    parse_settings(stack({"privateSubnetPrefix": 28}))  # no Client VPN: a /28 is fine


def test_client_vpn_needs_twenty_free_addresses_after_what_else_lives_there():
    # A /27 has 32: 5 for AWS, 2 for orthgate's fixed addresses, one per interface endpoint.
    five = ["kms", "logs", "sts", "ssm", "ssmmessages"]
    network = {"privateSubnetPrefix": 27, "interfaceEndpoints": [*five, "ec2messages"]}
    text = only_problem(
        stack(network, clientVpn=CLIENT_VPN), "orthgate:network.privateSubnetPrefix"
    )
    assert "leaves 19 free addresses" in text
    assert "6 for interface endpoints" in text
    network["interfaceEndpoints"] = five
    parse_settings(stack(network, clientVpn=CLIENT_VPN))


def test_a_fleet_in_slash_27_private_subnets_leaves_no_room_for_client_vpn():
    config = {
        "environment": "prd",
        "network": {"vpcCidr": "10.40.0.0/16", "natGateways": "perAz", "privateSubnetPrefix": 27},
        "clientVpn": CLIENT_VPN,
    }
    text = only_problem(config, "orthgate:network.privateSubnetPrefix")
    assert "Orthanc hosts" in text
    assert "index database" in text
    config["network"]["privateSubnetPrefix"] = 26
    parse_settings(config)


# --- 7. RDS storage ceiling -----------------------------------------------------------------


def test_database_storage_keeps_its_autoscaling_ceiling_within_the_rds_maximum():
    fleet = {"environment": "prd", "network": {"vpcCidr": "10.40.0.0/16", "natGateways": "perAz"}}
    only_problem(
        {**fleet, "orthanc": {"databaseStorageGib": 60000}}, "orthgate:orthanc.databaseStorageGib"
    )
    config = {**fleet, "orthanc": {"databaseStorageGib": 13108}}
    result = evaluate(
        {"aws:region": "eu-central-1"} | {f"orthgate:{k}": v for k, v in config.items()}
    )
    database = result.one("aws:rds/instance:Instance")
    assert database.inputs["allocatedStorage"] == 13108
    assert database.inputs["maxAllocatedStorage"] == 65536


# --- 8. Xen instance types -------------------------------------------------------------------


@pytest.mark.parametrize(
    "instance_type", ["t2.medium", "m4.large", "c4.xlarge", "r4.large", "i3.large"]
)
def test_xen_instance_types_are_refused(instance_type):
    text = only_problem(
        stack(orthanc={"instanceType": instance_type}), "orthgate:orthanc.instanceType"
    )
    assert "Nitro" in text


@pytest.mark.parametrize(
    "instance_type", ["t3.medium", "m5.large", "i3.metal", "t4g.small", "m7i.large"]
)
def test_nitro_instance_types_stay_accepted(instance_type):
    parse_settings(stack(orthanc={"instanceType": instance_type}))


# --- 13, 14, 17: AE titles --------------------------------------------------------------------


@pytest.mark.parametrize("title", ["PACS$1", "$HOME", "-h", "--help"])
def test_ae_titles_the_image_or_the_tools_would_change_are_refused(title):
    text = only_problem(stack(orthanc={"aeTitle": title}), "orthgate:orthanc.aeTitle")
    assert "'$'" in text or "'-'" in text


def test_ae_titles_collide_without_regard_to_case():
    config = stack(
        orthanc={
            "aeTitle": "ORTHANC",
            "modalities": [
                {"name": "ct-1", "aeTitle": "CT_SCANNER_1"},
                {"name": "ct-2", "aeTitle": "ct_scanner_1"},
                {"name": "mr-1", "aeTitle": "orthanc"},
            ],
        }
    )
    found = problems(config)
    assert any(p.startswith("orthgate:orthanc.modalities[1].aeTitle") for p in found), found
    assert any(p.startswith("orthgate:orthanc.modalities[2].aeTitle") for p in found), found


# --- 20. the login banner ---------------------------------------------------------------------


def test_the_login_banner_is_counted_in_bytes_and_refuses_control_characters():
    accented = "é" * 800  # 800 characters, 1,600 bytes
    text = only_problem(
        stack(clientVpn={**CLIENT_VPN, "loginBanner": accented}), "orthgate:clientVpn.loginBanner"
    )
    assert "1600 bytes" in text
    text = only_problem(
        stack(clientVpn={**CLIENT_VPN, "loginBanner": "Authorised use only\x1b[2J"}),
        "orthgate:clientVpn.loginBanner",
    )
    assert "U+001B" in text
    parse_settings(stack(clientVpn={**CLIENT_VPN, "loginBanner": "Line one\n\tLine two"}))


# --- the counts are the program's own -------------------------------------------------------


@pytest.mark.parametrize("path", shipped_stacks(), ids=lambda p: p.name)
def test_the_model_counts_exactly_the_rules_the_program_declares(path):
    config = read_stack_file(path)
    result = evaluate(config, stack=path.name.split(".")[1])
    raw = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("orthgate:")}
    plan = planned_orthanc(parse_settings(raw))
    assert plan is not None
    declared = {r.name for r in result.of_type(RULE) if r.name.startswith("orthanc-")}
    # The index database's group has its one fixed rule, outside the plan.
    declared.discard("orthanc-index-from-orthanc")
    assert declared == {f"orthanc-{rule.name}" for rule in plan.rules}


# --- Client VPN quotas ----------------------------------------------------------------------


def test_extra_ranges_stay_within_client_vpn_route_and_authorization_quotas():
    site = {"siteToSiteVpns": [{**VPN, "onPremCidrs": ["172.20.0.0/16"]}]}
    on_prem = [f"172.20.{i}.0/24" for i in range(100)]
    text = only_problem(
        stack(site, clientVpn={**CLIENT_VPN, "extraAuthorizedCidrs": on_prem}),
        "orthgate:clientVpn.extraAuthorizedCidrs",
    )
    assert "100 routes per association" in text
    parse_settings(stack(site, clientVpn={**CLIENT_VPN, "extraAuthorizedCidrs": on_prem[:99]}))
    in_vpc = [f"10.40.{i}.0/24" for i in range(16, 213)]  # 197 ranges + 4 of orthgate's
    text = only_problem(
        stack(clientVpn={**CLIENT_VPN, "extraAuthorizedCidrs": in_vpc}),
        "orthgate:clientVpn.extraAuthorizedCidrs",
    )
    assert "200 authorization rules" in text
    parse_settings(stack(clientVpn={**CLIENT_VPN, "extraAuthorizedCidrs": in_vpc[:196]}))


def test_raised_client_vpn_quotas_are_counted_against():
    site = {"siteToSiteVpns": [{**VPN, "onPremCidrs": ["172.20.0.0/16"]}]}
    on_prem = [f"172.20.{i}.0/24" for i in range(100)]
    parse_settings(
        stack(
            site,
            clientVpn={**CLIENT_VPN, "extraAuthorizedCidrs": on_prem},
            quotas={"clientVpnRoutesPerAssociation": 101},
        )
    )
    only_problem(
        stack(quotas={"clientVpnRoutesPerAssociation": 99}),
        "orthgate:quotas.clientVpnRoutesPerAssociation",
    )


def test_many_proxy_sites_are_counted_as_one_list():
    sites = [
        {
            "name": f"site-{i}",
            "sourceCidrs": [f"198.51.{i}.0/24"],
            "aeTitle": f"SITE_{i}",
            "listenAddress": "192.168.50.10",
            "acceptAnyModality": True,
        }
        for i in range(61)
    ]
    text = only_problem(stack(dicomProxies=sites), "orthgate:dicomProxies =")
    assert "61 rules from orthgate:dicomProxies" in text


def test_routable_on_prem_ranges_are_not_internet_exposure_behind_a_private_orthanc():
    vpn = {**VPN, "onPremCidrs": ["11.0.0.0/8", "12.0.0.0/8"]}
    parse_settings(
        stack(
            {"allowRoutableOnPremCidrs": True, "siteToSiteVpns": [vpn]},
            orthanc={"placement": "private"},
        )
    )


# --- found by the review: names that are numbers, invisible text, references Docker refuses --


@pytest.mark.parametrize("name", ["0xa9.0xfe.0xa9.0xfe", "127.0x1", "a.0x1", "10.0.0.1"])
def test_a_site_name_a_resolver_reads_as_an_address_is_refused(name):
    text = only_problem(stack(orthanc={"siteName": name}), "orthgate:orthanc.siteName")
    assert "not an IP address" in text
    parse_settings(stack(orthanc={"siteName": "pacs.0xfe.example"}))


@pytest.mark.parametrize("banner", ["a\ud800", "Authorised\u202euse", "line\u2028two"])
def test_the_login_banner_refuses_invisible_and_broken_text(banner):
    text = only_problem(
        stack(clientVpn={**CLIENT_VPN, "loginBanner": banner}), "orthgate:clientVpn.loginBanner"
    )
    assert "codec" not in text
    assert "direction-changing characters" in text


@pytest.mark.parametrize(
    "image",
    [
        "orthancteam//orthanc:1",
        "orthancteam/:1",
        "orthancteam/orthanc:-1",
        "a" * 300 + ":1",
        "Orthancteam/orthanc:1",
    ],
)
def test_image_references_docker_refuses_are_refused(image):
    only_problem(stack(orthanc={"image": image}), "orthgate:orthanc.image")


@pytest.mark.parametrize(
    "image",
    [
        "registry.example.org:5000/orthanc:1.0",
        "123456789012.dkr.ecr.eu-central-1.amazonaws.com/orthanc:25.12.3",
        "orthancteam/orthanc@sha256:" + "0" * 64,
        "orthancteam/orthanc:latest@sha256:" + "0" * 64,  # the digest pins it
    ],
)
def test_image_references_from_private_registries_and_digests_are_accepted(image):
    parse_settings(stack(orthanc={"image": image}))


@pytest.mark.parametrize(
    ("key", "value"),
    [("instanceType", "mac2.metal"), ("databaseInstanceClass", "db.t2.micro"),
     ("databaseInstanceClass", "db..")],
)  # fmt: skip
def test_instance_classes_orthgate_cannot_run_on_are_refused(key, value):
    only_problem(stack(orthanc={key: value}), f"orthgate:orthanc.{key}")


@pytest.mark.parametrize("cidr", ["0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/8", "169.254.0.0/16"])
@pytest.mark.parametrize("key", ["dicomAllowedCidrs", "webAllowedCidrs"])
def test_allow_lists_refuse_ranges_no_sender_can_be_in(key, cidr):
    text = only_problem(stack(orthanc={key: [cidr]}), f"orthgate:orthanc.{key}[0]")
    assert "reserved range" in text


def test_no_rendered_orthanc_configuration_holds_what_envsubst_would_replace():
    """The orthancteam image runs envsubst over /etc/orthanc/*.json at start: nothing of ours
    may contain '$' (Debian's Orthanc in the integration tests does not do this)."""
    from tests.harness.user_data import deployed_orthanc_config

    config = read_stack_file(STACKS_DIR / "Pulumi.prod.yaml")
    result = evaluate(config, stack="prod")
    cloud = json.dumps(deployed_orthanc_config(result))
    assert "$" not in cloud
    for site, bundle in result.outputs["dicomProxyBundles"].items():
        for path, text in bundle.items():
            if path.endswith(".json"):
                assert "$" not in text, (site, path)


def test_the_login_banner_keeps_what_scripts_need():
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # a zero-width non-joiner
    banner = f"{persian} soft\u00adhyphen \U0001f468\u200d\U0001f4bb\r\n"
    parse_settings(stack(clientVpn={**CLIENT_VPN, "loginBanner": banner}))


def test_on_premises_ranges_stay_within_the_routes_per_table_quota():
    def vpns(count: int) -> list[dict]:
        return [
            {
                "name": f"site-{i}",
                "customerGatewayIp": f"203.0.113.{i + 1}",
                "onPremCidrs": [f"172.{16 + i}.{j * 16}.0/20" for j in range(count)],
            }
            for i in range(10)
        ]

    # 10 sites x 5 ranges = 50 routes, plus the default and S3 routes: past 50.
    text = " ".join(problems(stack({"siteToSiteVpns": vpns(5)})))
    assert "routes per route table" in text
    quotas = {"inboundRulesPerSecurityGroup": 1000, "routesPerRouteTable": 100}
    parse_settings(stack({"siteToSiteVpns": vpns(5)}, quotas=quotas))
