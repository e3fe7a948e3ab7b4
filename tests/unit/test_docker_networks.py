"""Docker's bridge networks never hide a sender: moved off the ranges the hosts must reach,
left alone (and the user data unchanged) where they harm nothing."""

from __future__ import annotations

import copy
import json
from ipaddress import IPv4Network

import pytest

from orthgate.components.config import ConfigError, parse_settings
from orthgate.components.render.docker_networks import (
    DAEMON_CONFIG,
    container_block,
    daemon_config,
    docker_default_networks,
    sender_ranges,
)
from tests.harness.pulumi_run import STACKS_DIR, evaluate, read_stack_file
from tests.harness.user_data import cloud_config, written_files

TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
VPN = {"name": "site-a", "customerGatewayIp": "203.0.113.10"}


def networks_of(config_json: str) -> list[IPv4Network]:
    config = json.loads(config_json)
    bridge = IPv4Network(config["bip"], strict=False)
    pools = [IPv4Network(p["base"]) for p in config["default-address-pools"]]
    return [bridge, *pools]


VPC = IPv4Network("10.40.0.0/16")


def test_docker_keeps_its_defaults_when_nothing_overlaps_them():
    assert container_block(VPC, sender_ranges(["172.20.0.0/16"], [])) is None


@pytest.mark.parametrize(
    "on_prem", [["172.16.0.0/12"], ["172.18.40.0/24"], ["172.17.0.0/16", "172.16.0.0/16"]]
)
def test_docker_moves_off_an_on_premises_range_that_overlaps_its_networks(on_prem):
    senders = sender_ranges(on_prem, [])
    block = container_block(VPC, senders)
    assert block is not None
    used = networks_of(daemon_config(block))
    assert not any(u.overlaps(r) for u in used for r in [VPC, *senders])
    # docker0 and the Compose pool never meet either.
    assert not used[0].overlaps(used[1])


def test_docker_steps_aside_for_the_vpc_by_itself_so_a_vpc_there_changes_nothing():
    vpc = IPv4Network("172.17.0.0/16")
    assert docker_default_networks(vpc) == (
        IPv4Network("172.18.0.0/16"),
        IPv4Network("172.19.0.0/16"),
    )
    assert container_block(vpc, []) is None
    # ...but a site in what Docker then takes moves it.
    block = container_block(vpc, sender_ranges(["172.19.0.0/16"], []))
    assert block is not None
    assert not block.overlaps(vpc)


def test_the_block_stays_put_when_an_unrelated_range_is_added():
    senders = sender_ranges(["172.16.0.0/12"], [])
    block = container_block(VPC, senders)
    assert container_block(VPC, [*senders, IPv4Network("192.168.10.0/24")]) == block


def test_a_private_block_is_found_while_any_private_slash_20_is_free():
    senders = sender_ranges(["10.0.0.0/8", "172.16.0.0/12"], [])
    block = container_block(IPv4Network("192.168.96.0/20"), senders)
    assert block is not None
    assert block.subnet_of(IPv4Network("192.168.0.0/16"))
    assert not block.overlaps(IPv4Network("192.168.96.0/20"))


def test_public_allow_list_entries_never_move_docker():
    assert sender_ranges([], ["198.51.100.0/24"]) == []


def with_site(on_prem: list[str]) -> dict:
    config = copy.deepcopy(read_stack_file(STACKS_DIR / "Pulumi.dev.yaml"))
    config["orthgate:network"]["siteToSiteVpns"] = [{**VPN, "onPremCidrs": on_prem}]
    return config


def test_the_host_is_told_to_move_docker_after_its_packages_are_installed():
    template = evaluate(with_site(["172.16.0.0/12"])).one(TEMPLATE)
    [entry] = [e for e in cloud_config(template)["write_files"] if e["path"] == DAEMON_CONFIG]
    # write_files_deferred: after the docker package, before the boot script starts dockerd.
    assert entry["defer"] is True
    used = networks_of(entry["content"])
    assert not any(u.overlaps(IPv4Network("172.16.0.0/12")) for u in used)
    assert not any(u.overlaps(d) for u in used for d in docker_default_networks(VPC))


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_shipped_stacks_user_data_has_no_docker_configuration(stack):
    evaluation = evaluate(read_stack_file(STACKS_DIR / f"Pulumi.{stack}.yaml"), stack=stack)
    assert DAEMON_CONFIG not in written_files(evaluation.one(TEMPLATE))


def test_a_stack_whose_ranges_leave_docker_no_room_is_refused():
    ranges = [f"172.{n}.0.0/16" for n in range(16, 32)] + ["192.168.0.0/16"]
    vpns = [
        {"name": f"site-{i}", "customerGatewayIp": f"203.0.113.{i + 1}", "onPremCidrs": [c]}
        for i, c in enumerate(ranges[:10])
    ]
    config = {
        "environment": "dev",
        "network": {
            "vpcCidr": "10.0.0.0/16",
            "siteToSiteVpns": vpns,
            "directConnectGatewayId": "5f294f92-bafb-4011-916d-9b0b12345678",
            # With the VPC, the rest of 10.0.0.0/8.
            "directConnectOnPremCidrs": [
                *ranges[10:],
                *(f"10.{2**k}.0.0/{16 - k}" for k in range(8)),
            ],
        },
    }
    with pytest.raises(ConfigError) as caught:
        parse_settings(config)
    assert any(
        p.path == "orthgate:network" and "Docker" in p.rule for p in caught.value.problems
    ), [str(p) for p in caught.value.problems]
