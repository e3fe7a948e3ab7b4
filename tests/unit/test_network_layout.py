"""Properties of the subnet layout: inside the VPC, disjoint, stable when zones are added."""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from orthgate.components.network_layout import (
    LayoutError,
    addresses_needed,
    plan_subnets,
    vpc_resolver_address,
)


@st.composite
def vpcs(draw: st.DrawFn) -> IPv4Network:
    base = draw(st.sampled_from(["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]))
    parent = IPv4Network(base)
    prefix = draw(st.integers(min_value=max(16, parent.prefixlen), max_value=24))
    index = draw(st.integers(min_value=0, max_value=2 ** (prefix - parent.prefixlen) - 1))
    return IPv4Network((int(parent.network_address) + index * 2 ** (32 - prefix), prefix))


zone_counts = st.integers(min_value=1, max_value=3)


@st.composite
def layouts(draw: st.DrawFn, zones: st.SearchStrategy[int] = zone_counts):
    """A VPC, a zone count and subnet prefixes no larger than the VPC (most of which fit)."""
    vpc = draw(vpcs())
    prefix = st.integers(min_value=vpc.prefixlen, max_value=28)
    return vpc, draw(zones), draw(prefix), draw(prefix)


def fits(vpc: IPv4Network, zones: int, public: int, private: int) -> bool:
    return (
        public >= vpc.prefixlen
        and private >= vpc.prefixlen
        and addresses_needed(zones, public, private) <= vpc.num_addresses
    )


@settings(deadline=None)
@given(layouts())
def test_every_subnet_is_inside_the_vpc_and_none_overlap(layout):
    vpc, zones, public, private = layout
    assume(fits(vpc, zones, public, private))
    layout = plan_subnets(vpc, zones, public, private)
    subnets = [*layout.public, *layout.private]
    assert len(layout.public) == len(layout.private) == zones
    for subnet in subnets:
        assert subnet.subnet_of(vpc)
    for i, a in enumerate(subnets):
        for b in subnets[i + 1 :]:
            assert not a.overlaps(b), f"{a} overlaps {b}"
    assert all(s.prefixlen == public for s in layout.public)
    assert all(s.prefixlen == private for s in layout.private)


@settings(deadline=None)
@given(layouts(zones=st.just(3)))
def test_adding_a_zone_never_renumbers_existing_subnets(layout):
    vpc, _, public, private = layout
    assume(fits(vpc, 3, public, private))
    two = plan_subnets(vpc, 2, public, private)
    three = plan_subnets(vpc, 3, public, private)
    assert three.public[:2] == two.public
    assert three.private[:2] == two.private


@settings(deadline=None)
@given(vpcs(), zone_counts, st.integers(16, 28), st.integers(16, 28))
def test_a_layout_that_does_not_fit_is_refused_not_truncated(vpc, zones, public, private):
    assume(not fits(vpc, zones, public, private))
    with pytest.raises(LayoutError):
        plan_subnets(vpc, zones, public, private)


@settings(deadline=None)
@given(layouts())
def test_the_layout_is_a_pure_function_of_its_inputs(layout):
    vpc, zones, public, private = layout
    assume(fits(vpc, zones, public, private))
    assert plan_subnets(vpc, zones, public, private) == plan_subnets(vpc, zones, public, private)


def test_the_default_layout_of_a_slash_16_is_the_documented_one():
    layout = plan_subnets(IPv4Network("10.40.0.0/16"), 3, 24, 22)
    assert [str(s) for s in layout.private] == ["10.40.0.0/22", "10.40.4.0/22", "10.40.8.0/22"]
    assert [str(s) for s in layout.public] == [
        "10.40.255.0/24",
        "10.40.254.0/24",
        "10.40.253.0/24",
    ]


def test_a_vpc_exactly_full_is_accepted():
    layout = plan_subnets(IPv4Network("10.0.0.0/24"), 2, 26, 26)
    assert {str(s) for s in [*layout.public, *layout.private]} == {
        "10.0.0.0/26",
        "10.0.0.64/26",
        "10.0.0.128/26",
        "10.0.0.192/26",
    }


def test_the_resolver_is_the_base_plus_two():
    assert vpc_resolver_address(IPv4Network("10.40.0.0/16")) == "10.40.0.2"
