"""Limits AWS enforces at deploy time, refused or honoured before anything is declared:
the Secrets Manager value size, the EC2 user data size, the order Direct Connect needs, and
Client VPN routes for the extra ranges it authorizes.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json

import pytest

from orthgate.components.config import ConfigError, parse_settings
from orthgate.components.config.rendered_sizes import (
    SECRET_VALUE_LIMIT,
    config_secret_bytes,
    registered_senders,
    user_data_bytes,
)
from orthgate.components.render.cloud_init import USER_DATA_LIMIT
from orthgate.offline.aws_mock import AwsMock
from tests.harness.pulumi_run import STACKS_DIR, RecordingMocks, evaluate, read_stack_file

SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
PROPAGATION = "aws:ec2/vpnGatewayRoutePropagation:VpnGatewayRoutePropagation"
DX_ASSOCIATION = "aws:directconnect/gatewayAssociation:GatewayAssociation"
VPN_ASSOCIATION = "aws:ec2clientvpn/networkAssociation:NetworkAssociation"
VPN_ROUTE = "aws:ec2clientvpn/route:Route"
AUTHORIZATION = "aws:ec2clientvpn/authorizationRule:AuthorizationRule"
LONGEST_STACK = "s" * 100  # Pulumi's longest stack name
DX_GATEWAY = "5f294f92-bafb-4011-916d-9b0b45a1c3d2"
SITE = {"name": "campus", "customerGatewayIp": "203.0.113.10", "onPremCidrs": ["172.20.0.0/16"]}


def shipped(stack: str) -> dict:
    return read_stack_file(STACKS_DIR / f"Pulumi.{stack}.yaml")


def raw_settings(config: dict) -> dict:
    """Stack file values as parse_settings takes them (top-level keys without namespace)."""
    return {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("orthgate:")}


def refused(config: dict) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(raw_settings(config))
    return {p.path: str(p) for p in caught.value.problems}


def modalities(count: int) -> list[dict]:
    # The longest a modality entry gets: a 63-character name, a 16-character AE title.
    return [
        {"name": f"modality-{i:04d}-" + "x" * 49, "aeTitle": f"MODALITY_{i:07d}"}
        for i in range(count)
    ]


def with_modalities(count: int) -> dict:
    config = copy.deepcopy(shipped("prod"))
    config["orthgate:orthanc"]["modalities"] = modalities(count)
    return config


def mocks_with_client_vpn_routes() -> RecordingMocks:
    return RecordingMocks(AwsMock(region="eu-central-1", zone_count=3))


# --- Secrets Manager: orthanc.json grows with every registered sender ---------------------------


def test_300_modalities_are_refused_naming_the_key_the_count_and_the_limit():
    message = refused(with_modalities(300))["orthgate:orthanc.modalities"]
    assert message.startswith("orthgate:orthanc.modalities = 300:")
    assert "65,536" in message
    assert "Secrets Manager" in message
    assert "1 DICOM proxy sites" in message  # the shipped prod stack has one


def test_a_refused_sender_list_declares_nothing():
    mocks = RecordingMocks(AwsMock())
    with pytest.raises(ConfigError, match=r"orthgate:orthanc.modalities"):
        evaluate(with_modalities(300), mocks=mocks)
    assert mocks.declared == []


@pytest.fixture(scope="module")
def largest_accepted() -> int:
    """The most modalities of the longest kind the prod stack accepts."""
    low, high = 0, 300
    while low < high:
        middle = (low + high + 1) // 2
        try:
            parse_settings(raw_settings(with_modalities(middle)))
            low = middle
        except ConfigError:
            high = middle - 1
    return low


def test_the_largest_accepted_sender_list_really_fits_and_one_more_is_refused(largest_accepted):
    assert 100 < largest_accepted < 300
    assert "orthgate:orthanc.modalities" in refused(with_modalities(largest_accepted + 1))
    config = with_modalities(largest_accepted)
    # The program's own secret, from the real render on mocked AWS values, at the longest
    # stack name: within the limit, and within the model's bound.
    evaluation = evaluate(config, stack=LONGEST_STACK)
    stored = evaluation.named("orthanc-settings-secret-value").inputs["secretString"]
    assert len(stored.encode()) <= SECRET_VALUE_LIMIT
    settings = parse_settings(raw_settings(config))
    bound = config_secret_bytes(settings, registered_senders(settings))
    assert len(stored.encode()) <= bound <= SECRET_VALUE_LIMIT
    # The bound is tight: off by less than the placeholders' slack (bucket, host, region).
    assert bound - len(stored.encode()) < 400
    assert json.loads(json.loads(stored)["orthanc.json"])["DicomModalities"]


def test_the_other_secrets_stay_far_below_the_limit():
    evaluation = evaluate(with_modalities(2), stack=LONGEST_STACK)
    for role in ("nginx-files", "admin"):
        value = evaluation.named(f"orthanc-{role}-secret-value").inputs["secretString"]
        assert len(value.encode()) < SECRET_VALUE_LIMIT // 8, role


def test_proxy_sites_count_as_senders_too():
    settings = parse_settings(raw_settings(shipped("prod")))
    names = [s.name for s in registered_senders(settings)]
    assert names == ["ct-scanner-1", "mr-scanner-1", "dx-room-2", "north-clinic"]


# --- EC2 user data: 16 KiB, gzipped when longer ------------------------------------------------


def test_the_shipped_stacks_user_data_fits_at_the_longest_stack_name():
    for stack in ("dev", "prod"):
        config = shipped(stack)
        settings = parse_settings(raw_settings(config))
        bound = user_data_bytes(settings)
        assert bound is not None
        assert bound <= USER_DATA_LIMIT
        [template] = evaluate(config, stack=LONGEST_STACK).of_type(TEMPLATE)
        assert len(base64.b64decode(template.inputs["userData"])) <= bound


def test_the_longest_image_references_accepted_still_fit_the_user_data():
    config = copy.deepcopy(shipped("prod"))
    # Incompressible names as long as the reference grammar allows (255), the longest tag.
    for key in ("image", "nginxImage"):
        name = "registry.example.org/" + hashlib.shake_256(key.encode()).hexdigest(117)
        config["orthgate:orthanc"][key] = f"{name}:{'t' * 128}@sha256:{'0' * 64}"
    settings = parse_settings(raw_settings(config))
    bound = user_data_bytes(settings)
    assert bound is not None
    assert bound <= USER_DATA_LIMIT


def test_user_data_past_the_limit_is_refused_naming_the_images(monkeypatch):
    import orthgate.components.render.cloud_init as cloud_init

    # No configuration grows the user data that far today; the rule still holds if one does.
    monkeypatch.setattr(cloud_init, "USER_DATA_LIMIT", 2000)
    config = copy.deepcopy(shipped("dev"))
    config["orthgate:orthanc"]["image"] = "registry.example.org/orthanc/orthanc:9.9.9"
    message = refused(config)["orthgate:orthanc.image"]
    assert "2,000" in message


# --- Client VPN: extra ranges are routed, or refused when nothing routes them ------------------
# (Direct Connect's order, association before routes: tests/unit/test_route_filtering.py)


def network_config(**network) -> dict:
    return {
        "aws:region": "eu-central-1",
        "orthgate:environment": "dev",
        "orthgate:network": {"vpcCidr": "10.40.0.0/16", **network},
    }


def client_vpn_config(extra: list[str], **network) -> dict:
    config = network_config(**network)
    config["orthgate:clientVpn"] = {
        "enabled": True,
        "clientCidr": "192.168.0.0/22",
        "workstations": ["reading-room-1"],
        "associatedSubnets": 2,
        "extraAuthorizedCidrs": extra,
    }
    return config


@pytest.mark.parametrize(
    ("extra", "network"),
    [
        pytest.param("198.51.100.0/24", {}, id="internet-no-private-path"),
        pytest.param("198.51.100.0/24", {"siteToSiteVpns": [SITE]}, id="internet"),
        pytest.param("172.21.0.0/16", {"siteToSiteVpns": [SITE]}, id="beside-on-prem"),
        pytest.param("172.16.0.0/12", {"siteToSiteVpns": [SITE]}, id="wider-than-on-prem"),
        pytest.param("10.0.0.0/8", {}, id="wider-than-the-vpc"),
    ],
)
def test_an_extra_range_nothing_routes_to_is_refused(extra, network):
    problems = refused(client_vpn_config(["10.40.4.0/24", extra], **network))
    message = problems["orthgate:clientVpn.extraAuthorizedCidrs[1]"]
    assert extra in message
    assert "10.40.0.0/16" in message
    assert "orthgate:clientVpn.extraAuthorizedCidrs[0]" not in problems


def test_on_premises_ranges_get_a_route_through_every_associated_subnet():
    mocks = mocks_with_client_vpn_routes()
    config = client_vpn_config(
        ["172.20.10.0/24", "172.30.0.0/16", "10.40.4.0/24"],
        siteToSiteVpns=[SITE],
        directConnectGatewayId=DX_GATEWAY,
        directConnectOnPremCidrs=["172.30.0.0/16"],
    )
    evaluation = evaluate(config, mocks=mocks)
    associations = evaluation.of_type(VPN_ASSOCIATION)
    assert len(associations) == 2
    routes = evaluation.of_type(VPN_ROUTE)
    # Inside the VPC needs none: every association routes the VPC's range by itself.
    assert sorted(
        (r.inputs["destinationCidrBlock"], r.inputs["targetVpcSubnetId"]) for r in routes
    ) == sorted(
        (cidr, a.inputs["subnetId"])
        for cidr in ("172.20.10.0/24", "172.30.0.0/16")
        for a in associations
    )
    by_subnet = {a.inputs["subnetId"]: a for a in associations}
    endpoint = evaluation.one("aws:ec2clientvpn/endpoint:Endpoint")
    for route in routes:
        assert route.inputs["clientVpnEndpointId"] == endpoint.id
        assert by_subnet[route.inputs["targetVpcSubnetId"]].urn in route.options.dependencies
        assert route.options.custom_timeouts  # Client VPN routes take minutes
    authorized = {r.inputs["targetNetworkCidr"] for r in evaluation.of_type(AUTHORIZATION)}
    assert {"172.20.10.0/24", "172.30.0.0/16", "10.40.4.0/24"} <= authorized
    assert evaluation.component_outputs("orthgate:vpn:ClientVpn", "client-vpn")["routedCidrs"] == [
        "172.20.10.0/24",
        "172.30.0.0/16",
    ]
