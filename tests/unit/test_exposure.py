"""The exposure table of `orthgate plan`: every way in, as the program declared it.

The expected rows are written by hand from each stack's configuration (which ranges, which
path, which senders), not copied from the output.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from orthgate.exposure import DICOM_PLAIN, UNEXPLAINED, Exposure, exposure_of, render_exposure
from orthgate.offline.evaluation import Declared, Evaluation
from orthgate.validation import validate_config
from tests.harness.pulumi_run import STACKS_DIR, evaluate, read_stack_file

INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
TLS, PLAIN, HTTPS = "DICOM TLS", DICOM_PLAIN, "HTTPS"
DX_ID = "5f294f92-bafb-4011-916d-9b0b12345678"

# Direct Connect, Client VPN, a public single host, and every kind of sender.
DIRECT_CONNECT = {
    "aws:region": "eu-central-1",
    "orthgate:environment": "dev",
    "orthgate:network": {
        "vpcCidr": "10.40.0.0/16",
        "natGateways": "single",
        "directConnectGatewayId": DX_ID,
        "directConnectOnPremCidrs": ["172.30.0.0/16", "192.168.100.0/24"],
    },
    "orthgate:clientVpn": {
        "enabled": True,
        "clientCidr": "192.168.0.0/22",
        "workstations": ["reading-room-1"],
    },
    "orthgate:orthanc": {
        "dicomAllowedCidrs": ["198.51.100.7/32"],
        "webAllowedCidrs": ["203.0.113.0/28"],
        "modalities": [
            {"name": "ct-1", "aeTitle": "CT_ONE", "sourceCidrs": ["172.30.1.0/24"]},
            {"name": "mr-1", "aeTitle": "MR_ONE"},
            {"name": "dx-1", "aeTitle": "DX_ONE", "connection": "tls"},
        ],
    },
}
# A fleet off the Internet: internal NLB only, Client VPN over TCP, a static VPN.
PRIVATE_FLEET = {
    "aws:region": "us-east-1",
    "orthgate:environment": "prd",
    "orthgate:network": {
        "vpcCidr": "10.60.0.0/16",
        "availabilityZones": 3,
        "natGateways": "single",
        "siteToSiteVpns": [
            {
                "name": "site-a",
                "customerGatewayIp": "203.0.113.10",
                "onPremCidrs": ["172.20.0.0/16"],
                "staticRoutesOnly": True,
            }
        ],
    },
    "orthgate:clientVpn": {
        "enabled": True,
        "clientCidr": "192.168.0.0/22",
        "workstations": ["ws-1", "ws-2"],
        "transportProtocol": "tcp",
        "vpnPort": 1194,
    },
    "orthgate:orthanc": {
        "placement": "private",
        "hosting": "fleet",
        "storage": "s3",
        "index": "postgresql",
        "modalities": [
            {"name": "ct-1", "aeTitle": "CT_ONE", "sourceCidrs": ["172.20.1.0/24"]},
            {"name": "us-1", "aeTitle": "US_ONE"},
        ],
    },
}
# A private single host whose site is a routable range: its allow-listed Internet address
# has a rule but no way in.
PRIVATE_HOST = {
    "aws:region": "eu-central-1",
    "orthgate:environment": "dev",
    "orthgate:network": {
        "vpcCidr": "10.70.0.0/16",
        "natGateways": "single",
        "allowRoutableOnPremCidrs": True,
        "siteToSiteVpns": [
            {"name": "hq", "customerGatewayIp": "203.0.113.20", "onPremCidrs": ["8.8.8.0/24"]}
        ],
    },
    "orthgate:orthanc": {
        "placement": "private",
        "dicomAllowedCidrs": ["198.51.100.7/32"],
        "modalities": [{"name": "ct-1", "aeTitle": "CT_ONE"}],
    },
}


def _shipped(name: str) -> dict:
    return read_stack_file(STACKS_DIR / f"Pulumi.{name}.yaml")


CONFIGS = {
    "dev": (_shipped, "dev"),
    "prod": (_shipped, "prod"),
    "direct-connect": (lambda c: c, DIRECT_CONNECT),
    "private-fleet": (lambda c: c, PRIVATE_FLEET),
    "private-host": (lambda c: c, PRIVATE_HOST),
}


@pytest.fixture(scope="module")
def evaluated() -> dict[str, tuple[Evaluation, list[Exposure]]]:
    """One evaluation per stack, shared by every test here (each costs seconds)."""
    found = {}
    for name, (read, source) in CONFIGS.items():
        config = read(source)
        evaluation = evaluate(config, stack=name)
        found[name] = (evaluation, exposure_of(evaluation, validate_config(config)))
    return found


def _rows(rows: list[Exposure]) -> set[tuple]:
    return {
        (
            r.endpoint,
            r.port,
            r.protocol,
            r.service,
            r.path,
            r.sources,
            r.except_sources,
            r.ae_titles,
        )
        for r in rows
    }


def _tunnels(site: str, gateway: str) -> set[tuple]:
    endpoint = f"site-to-site VPN {site} tunnels"
    return {
        (endpoint, 500, "udp", "IPsec (IKE)", "Internet (IPsec)", (gateway,), (), ()),
        (endpoint, 4500, "udp", "IPsec (NAT traversal)", "Internet (IPsec)", (gateway,), (), ()),
        (endpoint, None, "esp", "IPsec (ESP)", "Internet (IPsec)", (gateway,), (), ()),
    }


def _client_vpn_endpoint(port: int, protocol: str) -> tuple:
    # Any address may knock; the workstation certificate decides.
    service = "OpenVPN (Client VPN)"
    return ("Client VPN endpoint", port, protocol, service, "Internet", ("any address",), (), ())


def test_dev_admits_nothing(evaluated):
    # No allow-list, no private path: the Elastic IP is there, but no group admits anyone.
    evaluation, rows = evaluated["dev"]
    assert evaluation.of_type(INGRESS) == []
    assert rows == []
    assert "Nothing is reachable" in render_exposure(rows)


def test_prod_exactly(evaluated):
    campus = "site-to-site VPN main-campus"
    certificates = ("DX_ROOM_2", "NORTH_CLINIC_GW")  # a TLS modality and a proxy site
    assert _rows(evaluated["prod"][1]) == {
        # The site's proxy machine: plaintext on its LAN address only, from its one modality
        # (the stack file's listenAddress, listenPort default 104 and modalities).
        (
            "DICOM proxy north-clinic (the site's machine)",
            104,
            "tcp",
            PLAIN,
            "site LAN (north-clinic)",
            ("the site's LAN, to 192.168.50.10",),
            (),
            ("US_NORTH_1",),
        ),
        # No webAllowedCidrs: the public HTTPS listener admits no one.
        ("public NLB", 443, "tcp", HTTPS, "none", (), (), ()),
        (
            "public NLB",
            11112,
            "tcp",
            TLS,
            "Internet (DICOM proxy north-clinic)",
            ("198.51.100.32/29",),
            (),
            certificates,
        ),
        ("public NLB", 11112, "tcp", TLS, "Internet (TLS)", ("203.0.113.64/28",), (), certificates),
        ("internal NLB", 443, "tcp", HTTPS, campus, ("172.20.0.0/16",), (), ()),
        ("internal NLB", 11112, "tcp", TLS, campus, ("172.20.0.0/16",), (), certificates),
        # The CT owns its /32; the MR may send from the rest of the campus.
        ("internal NLB", 4242, "tcp", PLAIN, campus, ("172.20.10.21/32",), (), ("CT_SCANNER_1",)),
        (
            "internal NLB",
            4242,
            "tcp",
            PLAIN,
            campus,
            ("172.20.0.0/16",),
            ("172.20.10.21/32",),
            ("MR_SCANNER_1",),
        ),
        (
            "PostgreSQL index",
            5432,
            "tcp",
            "PostgreSQL",
            "inside the VPC",
            ("Orthanc hosts' security group",),
            (),
            (),
        ),
        (
            "interface endpoints",
            443,
            "tcp",
            "HTTPS (AWS APIs)",
            "inside the VPC",
            ("10.50.0.0/16",),
            (),
            (),
        ),
    } | _tunnels("main-campus", "203.0.113.10/32")


def test_direct_connect_client_vpn_and_a_public_host_exactly(evaluated):
    clients = ("Client VPN workstations 192.168.0.0/22",)
    host, dx = "Orthanc host", "Direct Connect"
    expected = {
        _client_vpn_endpoint(443, "udp"),
        (host, 443, "tcp", HTTPS, "Internet (TLS)", ("203.0.113.0/28",), (), ()),
        (host, 11112, "tcp", TLS, "Internet (TLS)", ("198.51.100.7/32",), (), ("DX_ONE",)),
        (host, 443, "tcp", HTTPS, "Client VPN", clients, (), ()),
        (host, 11112, "tcp", TLS, "Client VPN", clients, (), ("DX_ONE",)),
        # Client VPN workstations are private-path senders: the any-path modality only.
        (host, 4242, "tcp", PLAIN, "Client VPN", clients, (), ("MR_ONE",)),
    }
    for cidr in ("172.30.0.0/16", "192.168.100.0/24"):
        expected |= {
            (host, 443, "tcp", HTTPS, dx, (cidr,), (), ()),
            (host, 11112, "tcp", TLS, dx, (cidr,), (), ("DX_ONE",)),
        }
    expected |= {
        (host, 4242, "tcp", PLAIN, dx, ("172.30.1.0/24",), (), ("CT_ONE",)),
        (host, 4242, "tcp", PLAIN, dx, ("172.30.0.0/16",), ("172.30.1.0/24",), ("MR_ONE",)),
        (host, 4242, "tcp", PLAIN, dx, ("192.168.100.0/24",), (), ("MR_ONE",)),
    }
    assert _rows(evaluated["direct-connect"][1]) == expected


def test_a_private_fleet_exactly(evaluated):
    clients = ("Client VPN workstations 192.168.0.0/22",)
    nlb, site = "internal NLB", "site-to-site VPN site-a"
    expected = {
        _client_vpn_endpoint(1194, "tcp"),
        (nlb, 443, "tcp", HTTPS, site, ("172.20.0.0/16",), (), ()),
        (nlb, 443, "tcp", HTTPS, "Client VPN", clients, (), ()),
        # No TLS modality, no proxy site: the TLS port stores for no one.
        (nlb, 11112, "tcp", TLS, site, ("172.20.0.0/16",), (), ()),
        (nlb, 11112, "tcp", TLS, "Client VPN", clients, (), ()),
        (nlb, 4242, "tcp", PLAIN, site, ("172.20.1.0/24",), (), ("CT_ONE",)),
        (nlb, 4242, "tcp", PLAIN, site, ("172.20.0.0/16",), ("172.20.1.0/24",), ("US_ONE",)),
        (nlb, 4242, "tcp", PLAIN, "Client VPN", clients, (), ("US_ONE",)),
        (
            "PostgreSQL index",
            5432,
            "tcp",
            "PostgreSQL",
            "inside the VPC",
            ("Orthanc hosts' security group",),
            (),
            (),
        ),
    } | _tunnels("site-a", "203.0.113.10/32")
    assert _rows(evaluated["private-fleet"][1]) == expected
    assert not any(r.endpoint == "public NLB" for r in evaluated["private-fleet"][1])


def test_a_private_host_with_a_routable_site_exactly(evaluated):
    host, hq = "Orthanc host", "site-to-site VPN hq"
    assert _rows(evaluated["private-host"][1]) == {
        (host, 443, "tcp", HTTPS, hq, ("8.8.8.0/24",), (), ()),
        (host, 11112, "tcp", TLS, hq, ("8.8.8.0/24",), (), ()),
        (host, 4242, "tcp", PLAIN, hq, ("8.8.8.0/24",), (), ("CT_ONE",)),
        # The rule exists, the Internet cannot use it: no public address.
        (
            host,
            11112,
            "tcp",
            TLS,
            "unreachable (Orthanc host has no public address)",
            ("198.51.100.7/32",),
            (),
            (),
        ),
    } | _tunnels("hq", "203.0.113.20/32")


def test_a_fleets_host_rules_are_the_second_hop_of_its_load_balancers(evaluated):
    rows = evaluated["prod"][1]
    proxy = next(r for r in rows if r.path == "Internet (DICOM proxy north-clinic)")
    assert "orthanc-dicom-tls-from-lb-public" in proxy.rules
    plain = [r for r in rows if r.service == PLAIN and not r.path.startswith("site LAN")]
    assert all("orthanc-dicom-plain-from-lb-internal" in r.rules for r in plain)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_every_declared_ingress_rule_is_accounted_for_and_none_unexplained(evaluated, name):
    evaluation, rows = evaluated[name]
    declared = {r.name for r in evaluation.of_type(INGRESS)}
    assert {rule for row in rows for rule in row.rules} == declared
    assert [r for r in rows if r.path == UNEXPLAINED] == []
    assert "Ingress rules not explained: none" in render_exposure(rows)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_plaintext_dicom_never_has_an_internet_path(evaluated, name):
    rows = evaluated[name][1]
    for row in rows:
        if row.service == PLAIN:
            assert not row.internet, row
            assert row.path == "Client VPN" or row.path.startswith(
                ("site-to-site VPN ", "Direct Connect", "site LAN (")
            ), row
    assert "Plaintext DICOM reachable from the Internet: no" in render_exposure(rows)


def _with(evaluation: Evaluation, *extra: Declared) -> Evaluation:
    return replace(evaluation, resources=[*evaluation.resources, *extra])


def _rogue(name: str, **inputs) -> Declared:
    rule = {"ipProtocol": "tcp", "fromPort": 4242, "toPort": 4242, **inputs}
    return Declared(INGRESS, name, rule, dict(rule), f"sgr-{name}")


def test_a_rule_the_mapping_cannot_explain_is_shown_not_hidden(evaluated):
    evaluation, _ = evaluated["prod"]
    host_group = evaluation.named("orthanc-sg").id
    internal = evaluation.named("orthanc-lb-internal-sg").id
    rogue = _with(
        evaluation,
        # plaintext from the whole Internet, straight onto the hosts
        _rogue("rogue-open", securityGroupId=host_group, cidrIpv4="0.0.0.0/0"),
        # a configured TLS source, but on the plaintext port
        _rogue("rogue-plain", securityGroupId=internal, cidrIpv4="203.0.113.64/28"),
        # a group nothing in the stack uses
        _rogue("rogue-orphan", securityGroupId="sg-0123", cidrIpv4="172.20.0.0/16"),
        # every port
        _rogue("rogue-range", securityGroupId=internal, cidrIpv4="172.20.0.0/16", toPort=65535),
    )
    rows = exposure_of(rogue, validate_config(_shipped("prod")))
    unexplained = {rule for r in rows if r.path == UNEXPLAINED for rule in r.rules}
    assert unexplained == {"rogue-open", "rogue-plain", "rogue-orphan", "rogue-range"}
    assert "Ingress rules not explained: rogue-" in render_exposure(rows)


def test_rows_are_sorted_deterministically_and_serialise(evaluated):
    evaluation, rows = evaluated["prod"]
    again = exposure_of(evaluation, validate_config(_shipped("prod")))
    assert again == rows
    shuffled = _with(replace(evaluation, resources=list(reversed(evaluation.resources))))
    assert exposure_of(shuffled, validate_config(_shipped("prod"))) == rows
    assert [r.endpoint for r in rows[:3]] == ["public NLB"] * 3
    decoded = json.loads(json.dumps([r.as_dict() for r in rows]))
    assert decoded[1]["sources"] == list(rows[1].sources)


def test_the_table_shows_every_row(evaluated):
    rows = evaluated["direct-connect"][1]
    text = render_exposure(rows)
    assert text.splitlines()[0].split()[:3] == ["ENDPOINT", "PORT", "SERVICE"]
    for expected in ("11112/tcp", "4242/tcp", "443/udp", "except 172.30.1.0/24", "CT_ONE"):
        assert expected in text
    assert "Direct Connect" in text


def test_a_proxy_accepting_any_modality_says_so():
    from orthgate.exposure.proxy_sites import proxy_site_rows

    config = read_stack_file(STACKS_DIR / "Pulumi.prod.yaml")
    site = config["orthgate:dicomProxies"][0]
    del site["modalities"]
    site["acceptAnyModality"] = True
    site["listenPort"] = 11104
    settings = validate_config(config)
    evaluation = evaluate(config, stack="prod")  # the row is read off the rendered bundle
    [row] = proxy_site_rows(evaluation, settings)
    assert (row.port, row.address) == (11104, "192.168.50.10:11104")
    assert row.ae_titles == ("any AE title (acceptAnyModality)",)
    assert "any host on the site's LAN" in row.authentication
