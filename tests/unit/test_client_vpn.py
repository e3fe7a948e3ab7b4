"""ClientVpn: the configuration contract and what the program declares under the mocks."""

from __future__ import annotations

import json
from ipaddress import IPv4Network

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from orthgate.components.config import ConfigError, parse_settings
from orthgate.components.render.ovpn import endpoint_host
from tests.harness.pulumi_run import STACKS_DIR, evaluate, read_stack_file

COMPONENT = "orthgate:vpn:ClientVpn"
ENDPOINT = "aws:ec2clientvpn/endpoint:Endpoint"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
VPN = {
    "enabled": True,
    "clientCidr": "192.168.0.0/22",
    "workstations": ["reading-room-1", "reading-room-2"],
}


def settings_with(client_vpn: dict, network: dict | None = None):
    return parse_settings(
        {
            "environment": "dev",
            "network": {"vpcCidr": "10.40.0.0/16", **(network or {})},
            "clientVpn": client_vpn,
        }
    )


def refused(client_vpn: dict, network: dict | None = None) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        settings_with(client_vpn, network)
    return {p.path: str(p) for p in caught.value.problems}


# --- configuration ------------------------------------------------------------------------------


def test_disabled_by_default_and_nothing_else_required():
    settings = parse_settings({"environment": "dev", "network": {"vpcCidr": "10.40.0.0/16"}})
    assert settings.client_vpn.enabled is False


def test_defaults_when_enabled():
    vpn = settings_with(VPN).client_vpn
    assert (vpn.session_timeout_hours, vpn.transport_protocol, vpn.vpn_port) == (8, "udp", 443)
    assert vpn.associated_subnets == 1
    assert vpn.certificate_domain.count(".") >= 1


@pytest.mark.parametrize(
    ("change", "path"),
    [
        pytest.param({"clientCidr": "192.168.0.0/23"}, "clientCidr", id="prefix-23"),
        pytest.param({"clientCidr": "10.0.0.0/11"}, "clientCidr", id="prefix-11"),
        pytest.param({"clientCidr": "10.40.8.0/22"}, "clientCidr", id="inside-vpc"),
        pytest.param({"clientCidr": "10.32.0.0/12"}, "clientCidr", id="contains-vpc"),
        pytest.param({"clientCidr": None}, "clientCidr", id="missing"),
        pytest.param(
            {"workstations": ["reading-room-1", "reading-room-1"]}, "workstations[1]", id="dup"
        ),
        pytest.param({"workstations": []}, "workstations", id="none"),
        pytest.param({"workstations": ["Reading_Room"]}, "workstations[0]", id="not-dns"),
        pytest.param({"sessionTimeoutHours": 9}, "sessionTimeoutHours", id="timeout-9"),
        pytest.param({"vpnPort": 8443}, "vpnPort", id="port"),
        pytest.param({"transportProtocol": "quic"}, "transportProtocol", id="protocol"),
        pytest.param({"associatedSubnets": 3}, "associatedSubnets", id="more-than-zones"),
        pytest.param({"certificateDomain": "localhost"}, "certificateDomain", id="no-dot"),
        pytest.param({"loginBanner": "x" * 1401}, "loginBanner", id="banner"),
        pytest.param({"extraAuthorizedCidrs": ["0.0.0.0/0"]}, "extraAuthorizedCidrs[0]", id="w"),
        pytest.param(
            {"extraAuthorizedCidrs": ["192.168.2.0/24"]}, "clientCidr", id="overlaps-authorized"
        ),
        pytest.param({"split": False}, "split", id="unknown-key"),
    ],
)
def test_invalid_client_vpn_settings_are_refused_naming_the_key(change, path):
    client_vpn = {**VPN, **change}
    if change.get("clientCidr", "") is None:
        del client_vpn["clientCidr"]
    problems = refused(client_vpn)
    assert f"orthgate:clientVpn.{path}" in problems, problems


def test_a_client_cidr_overlapping_an_on_premises_range_is_refused():
    network = {
        "siteToSiteVpns": [
            {
                "name": "campus",
                "customerGatewayIp": "203.0.113.10",
                "onPremCidrs": ["192.168.0.0/16"],
            }
        ]
    }
    message = refused(VPN, network)["orthgate:clientVpn.clientCidr"]
    assert "orthgate:network.siteToSiteVpns[0].onPremCidrs[0]" in message


# --- what the program declares ------------------------------------------------------------------


@pytest.fixture(scope="module")
def vpn():
    config = read_stack_file(STACKS_DIR / "Pulumi.dev.yaml")
    config["orthgate:clientVpn"] = {**VPN, "loginBanner": "Authorised staff only."}
    return evaluate(config, stack="dev")


def cert(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def test_one_endpoint_with_split_tunnel_certificates_logging_and_its_own_group(vpn):
    [endpoint] = vpn.of_type(ENDPOINT)
    inputs = endpoint.inputs
    assert inputs["splitTunnel"] is True
    assert inputs["clientCidrBlock"] == "192.168.0.0/22"
    assert not IPv4Network(inputs["clientCidrBlock"]).overlaps(IPv4Network("10.40.0.0/16"))
    [auth] = inputs["authenticationOptions"]
    acm = vpn.one("aws:acm/certificate:Certificate")
    assert auth == {"type": "certificate-authentication", "rootCertificateChainArn": acm.id}
    assert inputs["serverCertificateArn"] == acm.id
    logging = inputs["connectionLogOptions"]
    assert logging["enabled"] is True
    log_group = vpn.named("client-vpn-logs")
    assert logging["cloudwatchLogGroup"] == log_group.outputs["name"]
    assert log_group.inputs["kmsKeyId"] == vpn.named("client-vpn-key").outputs["arn"]
    group = vpn.named("client-vpn-sg")
    assert inputs["securityGroupIds"] == [group.id]
    assert inputs["vpcId"] == vpn.one("aws:ec2/vpc:Vpc").id
    assert inputs["dnsServers"] == ["10.40.0.2"]
    assert inputs["sessionTimeoutHours"] == 8
    assert inputs["transportProtocol"] == "udp"
    assert inputs["vpnPort"] == 443
    assert inputs["clientLoginBannerOptions"] == {
        "enabled": True,
        "bannerText": "Authorised staff only.",
    }


def test_the_endpoint_group_has_egress_all_and_no_ingress(vpn):
    group = vpn.named("client-vpn-sg")
    ingress = [r for r in vpn.of_type(INGRESS) if r.inputs["securityGroupId"] == group.id]
    assert ingress == []
    [egress] = [
        r
        for r in vpn.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
        if r.inputs["securityGroupId"] == group.id
    ]
    assert (egress.inputs["ipProtocol"], egress.inputs["cidrIpv4"]) == ("-1", "0.0.0.0/0")


def test_associations_use_private_subnets(vpn):
    associations = vpn.of_type("aws:ec2clientvpn/networkAssociation:NetworkAssociation")
    assert [a.inputs["subnetId"] for a in associations] == vpn.outputs["privateSubnetIds"][:1]
    endpoint = vpn.one(ENDPOINT)
    assert all(a.inputs["clientVpnEndpointId"] == endpoint.id for a in associations)


def test_authorization_covers_orthanc_and_the_resolver_never_the_world(vpn):
    rules = vpn.of_type("aws:ec2clientvpn/authorizationRule:AuthorizationRule")
    targets = {r.inputs["targetNetworkCidr"] for r in rules}
    # The dev stack places Orthanc in the first public subnet.
    assert targets == {"10.40.255.0/24", "10.40.0.2/32"}
    assert all(r.inputs["authorizeAllGroups"] is True for r in rules)
    assert "0.0.0.0/0" not in targets


def test_orthanc_admits_dicom_and_https_from_the_vpn_group_never_the_client_cidr(vpn):
    group = vpn.named("client-vpn-sg").id
    from_vpn = {
        int(r.inputs["fromPort"])
        for r in vpn.of_type(INGRESS)
        if r.inputs.get("referencedSecurityGroupId") == group
    }
    assert from_vpn == {11112, 4242, 443}
    client = IPv4Network("192.168.0.0/22")
    for rule in vpn.of_type(INGRESS):
        if rule.inputs.get("cidrIpv4"):
            assert not IPv4Network(rule.inputs["cidrIpv4"]).overlaps(client), rule.name


def test_certificates_chain_to_the_vpn_ca_with_the_right_names_and_uses(vpn):
    ca_pem = vpn.outputs["clientVpnCaCertificate"]
    ca = cert(ca_pem)
    acm = vpn.one("aws:acm/certificate:Certificate")
    assert acm.inputs["certificateChain"] == ca_pem
    server = cert(acm.inputs["certificateBody"])
    server.verify_directly_issued_by(ca)
    assert server.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "server.clientvpn.orthgate.internal"
    )
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["server.clientvpn.orthgate.internal"]
    assert (
        ExtendedKeyUsageOID.SERVER_AUTH
        in server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    )
    key = load_pem_private_key(acm.inputs["privateKey"].encode(), password=None)
    assert key.key_size == 2048
    assert key.public_key().public_numbers() == server.public_key().public_numbers()
    request = vpn.named("client-vpn-server-csr")
    assert request.inputs["dnsNames"] == ["server.clientvpn.orthgate.internal"]
    assert ca.not_valid_after_utc > server.not_valid_after_utc


def test_the_vpn_ca_is_not_the_dicom_ca(vpn):
    assert vpn.outputs["clientVpnCaCertificate"] != vpn.outputs["dicomCaCertificate"]
    vpn_ca = cert(vpn.outputs["clientVpnCaCertificate"])
    dicom_ca = cert(vpn.outputs["dicomCaCertificate"])
    assert vpn_ca.public_key().public_numbers() != dicom_ca.public_key().public_numbers()


def test_each_workstation_gets_a_secret_profile_with_its_own_client_certificate(vpn):
    assert "clientVpnProfiles" in vpn.secret_outputs
    profiles = vpn.outputs["clientVpnProfiles"]
    assert set(profiles) == {"reading-room-1", "reading-room-2"}
    ca = cert(vpn.outputs["clientVpnCaCertificate"])
    host = endpoint_host(vpn.one(ENDPOINT).outputs["dnsName"])
    assert host.startswith("orthgate.cvpn-endpoint-")
    for workstation, profile in profiles.items():
        assert f"remote {host} 443\n" in profile
        assert "proto udp\n" in profile
        assert "remote-cert-tls server\n" in profile
        client_pem = profile.split("<cert>\n")[1].split("</cert>")[0]
        client = cert(client_pem)
        client.verify_directly_issued_by(ca)
        cn = client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        assert cn == f"{workstation}.clientvpn.orthgate.internal"
        usage = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
        key_pem = profile.split("<key>\n")[1].split("</key>")[0]
        key = load_pem_private_key(key_pem.encode(), password=None)
        assert key.public_key().public_numbers() == client.public_key().public_numbers()
        assert ca.not_valid_after_utc > client.not_valid_after_utc
    plain = json.dumps({k: v for k, v in vpn.outputs.items() if k not in vpn.secret_outputs})
    assert "PRIVATE KEY" not in plain


def test_every_client_vpn_resource_is_a_child_of_the_component(vpn):
    mine = vpn.within(COMPONENT).resources
    assert {r.type for r in mine} >= {
        ENDPOINT,
        "aws:acm/certificate:Certificate",
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2clientvpn/authorizationRule:AuthorizationRule",
    }
    registered = vpn.component_outputs(COMPONENT, "client-vpn")
    assert registered["securityGroupId"] == vpn.named("client-vpn-sg").id


def test_certificate_expiries_are_exported(vpn):
    ca = cert(vpn.outputs["clientVpnCaCertificate"])
    assert vpn.outputs["clientVpnCaExpiresAt"].startswith(str(ca.not_valid_after_utc.year))
    assert set(vpn.outputs["clientVpnCertificatesExpireAt"]) == {"reading-room-1", "reading-room-2"}
    dicom_ca = cert(vpn.outputs["dicomCaCertificate"])
    assert vpn.outputs["dicomCaExpiresAt"].startswith(str(dicom_ca.not_valid_after_utc.year))
