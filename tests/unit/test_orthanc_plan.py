"""The Orthanc tier's plan on its own: pure decisions, no Pulumi."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orthgate.components.config import parse_settings
from orthgate.components.network_layout import (
    FIXED_BALANCER_OFFSET,
    FIXED_HOST_OFFSET,
    plan_subnets,
)
from orthgate.components.orthanc.plan import HOST, INTERNAL_LB, PUBLIC_LB, plan_orthanc

PUBLIC = ["10.40.255.0/24", "10.40.254.0/24", "10.40.253.0/24"]
PRIVATE = ["10.40.0.0/22", "10.40.4.0/22", "10.40.8.0/22"]
ON_PREM = ["172.20.0.0/16"]


def settings(environment="prd", **orthanc):
    return parse_settings(
        {
            "environment": environment,
            "network": {"vpcCidr": "10.40.0.0/16", "natGateways": "single"},
            "orthanc": orthanc,
        }
    ).orthanc


def plan(orthanc_settings, *, nat="single", private_groups=("client-vpn",), zones=3):
    return plan_orthanc(
        orthanc_settings,
        public_subnets=PUBLIC[:zones],
        private_subnets=PRIVATE[:zones],
        private_path_cidrs=ON_PREM,
        private_source_groups=list(private_groups),
        nat_gateways=nat,
    )


def test_a_single_host_has_one_fixed_address_and_admits_every_source_itself():
    single = plan(
        settings("dev", dicomAllowedCidrs=["198.51.100.7/32"], webAllowedCidrs=["198.51.100.64/27"])
    )
    assert not single.fleet
    assert single.fixed_host_address == "10.40.255.10"
    assert single.private_endpoints == ("10.40.255.10",)
    assert single.balancers == ()
    assert {r.group for r in single.rules} == {HOST}
    assert single.direct_tls_group == HOST
    # Names are the ones earlier releases gave these rules: an upgrade does not replace them.
    assert {r.name for r in single.rules} >= {
        "dicom-tls-from-198.51.100.7-32",
        "https-from-198.51.100.64-27",
        "dicom-plain-from-172.20.0.0-16",
        "dicom-plain-from-client-vpn",
    }


def test_a_fleet_puts_allow_lists_on_the_load_balancers_and_hosts_admit_only_those():
    fleet = plan(
        settings(dicomAllowedCidrs=["198.51.100.7/32"], webAllowedCidrs=["198.51.100.64/27"])
    )
    assert fleet.fleet
    assert fleet.fixed_host_address is None
    host_sources = {r.source.group for r in fleet.rules_for(HOST)}
    assert host_sources == {PUBLIC_LB, INTERNAL_LB}
    assert all(r.source.cidr is None for r in fleet.rules_for(HOST))
    public = {(r.kind, r.source.label) for r in fleet.rules_for(PUBLIC_LB)}
    assert public == {("dicom-tls", "198.51.100.7-32"), ("https", "198.51.100.64-27")}
    internal = {(r.kind, r.source.label) for r in fleet.rules_for(INTERNAL_LB)}
    assert internal == {
        (kind, source)
        for kind in ("dicom-tls", "dicom-plain", "https")
        for source in ("172.20.0.0-16", "client-vpn")
    }
    # Plaintext DICOM is never on the Internet-facing load balancer.
    assert [listener.kind for listener in fleet.balancer("public").listeners] == [
        "dicom-tls",
        "https",
    ]
    assert fleet.direct_tls_group == PUBLIC_LB


def test_the_hosts_admit_each_load_balancer_on_exactly_its_listener_ports():
    fleet = plan(settings())
    for balancer in fleet.balancers:
        ports = {r.port for r in fleet.rules_for(HOST) if r.source.group == balancer.group}
        assert ports == {listener.port for listener in balancer.listeners}


def test_a_private_fleet_has_only_the_internal_load_balancer():
    fleet = plan(settings(placement="private", dicomAllowedCidrs=["198.51.100.7/32"]))
    assert [b.role for b in fleet.balancers] == ["internal"]
    assert fleet.direct_tls_group == INTERNAL_LB
    assert ("dicom-tls", "198.51.100.7-32") in {
        (r.kind, r.source.label) for r in fleet.rules_for(INTERNAL_LB)
    }


def test_fleet_hosts_without_nat_sit_in_public_subnets_with_an_egress_address():
    assert plan(settings(), nat="none").host_tier == "public"
    assert plan(settings(), nat="none").hosts_need_public_ip
    assert plan(settings(), nat="perAz").host_tier == "private"
    assert not plan(settings(), nat="perAz").hosts_need_public_ip


def test_the_internal_load_balancer_takes_the_fixed_balancer_address_of_each_private_subnet():
    fleet = plan(settings(), zones=3)
    internal = fleet.balancer("internal")
    assert internal.addresses == ("10.40.0.11", "10.40.4.11", "10.40.8.11")
    assert fleet.private_endpoints == internal.addresses


def test_rules_are_unique_per_group_port_and_source():
    # The same range allowed twice over different paths must give AWS one rule.
    fleet = plan(settings(placement="private", dicomAllowedCidrs=["172.20.0.0/16"]))
    keys = [(r.group, r.port, r.source.label) for r in fleet.rules]
    assert len(keys) == len(set(keys))


@given(
    prefix=st.integers(16, 24),
    public_prefix=st.integers(24, 28),
    private_prefix=st.integers(19, 28),
    zones=st.sampled_from([2, 3]),
)
def test_fixed_addresses_are_usable_hosts_of_their_subnet(
    prefix, public_prefix, private_prefix, zones
):
    vpc = IPv4Network(f"10.40.0.0/{prefix}")
    try:
        layout = plan_subnets(vpc, zones, public_prefix, private_prefix)
    except ValueError:
        return
    for subnet in (*layout.public, *layout.private):
        # AWS keeps the first four and the last address of every subnet.
        usable = range(int(subnet.network_address) + 4, int(subnet.broadcast_address))
        for offset in (FIXED_HOST_OFFSET, FIXED_BALANCER_OFFSET):
            assert int(IPv4Address(int(subnet.network_address) + offset)) in usable


@pytest.mark.parametrize("placement", ["public", "private"])
def test_no_plan_opens_a_port_to_the_world(placement):
    for decided in (
        plan(settings("dev", placement=placement)),
        plan(settings(placement=placement)),
    ):
        assert all(r.source.cidr != "0.0.0.0/0" for r in decided.rules)
