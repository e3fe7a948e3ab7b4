"""Certificate names: a DNS name is a name, and no common name passes X.509's 64 characters.

Issue 9, item 18. The length checks run in the model (components/config/certificates.py);
the last test checks, against what the program declares under the mocks, that the model
computes the very names the program issues.
"""

from __future__ import annotations

import copy

import pytest

from orthgate.components.config import ConfigError, parse_settings
from orthgate.components.config.certificates import (
    COMMON_NAME_MAX_LENGTH,
    client_vpn_server_name,
    orthanc_server_common_name,
    proxy_site_common_name,
    tls_modality_common_name,
    workstation_common_name,
)
from tests.harness.pulumi_run import STACKS_DIR, evaluate, read_stack_file

BASE = {"environment": "dev", "network": {"vpcCidr": "10.40.0.0/16"}}
VPN = {"enabled": True, "clientCidr": "192.168.0.0/22", "workstations": ["reading-room-1"]}
PROXY = {
    "name": "north-clinic",
    "sourceCidrs": ["198.51.100.32/29"],
    "aeTitle": "NORTH_GW",
    "listenAddress": "192.168.50.10",
    "acceptAnyModality": True,
}


def config(**sections) -> dict:
    result = copy.deepcopy(BASE)
    result.update(copy.deepcopy(sections))
    return result


def refusals(raw: dict) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(raw)
    return {p.path: p.rule for p in caught.value.problems}


def name_of_length(length: int, tld: str = "org") -> str:
    """A valid DNS name of exactly ``length`` characters: labels of at most 63, then ``tld``."""
    remaining = length - len(tld)
    pieces = []
    while remaining:
        size = min(64, remaining)  # a label and its dot
        if remaining - size == 1:
            size -= 1  # leave room for a label, not a lone dot
        pieces.append("a" * (size - 1) + ".")
        remaining -= size
    name = "".join(pieces) + tld
    assert len(name) == length
    return name


# --- a DNS name is a name ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "site_name", ["169.254.169.254", "127.0.0.1", "10.0.0.1", "pacs.example.123", "1.2"]
)
def test_a_site_name_whose_top_level_label_is_all_digits_is_refused(site_name):
    rule = refusals(config(orthanc={"siteName": site_name}))["orthgate:orthanc.siteName"]
    assert "not an IP address" in rule
    assert "RFC 1123" in rule


@pytest.mark.parametrize("site_name", ["pacs.example.org", "1.example.org", "pacs.123.io"])
def test_names_with_digits_elsewhere_are_still_names(site_name):
    assert parse_settings(config(orthanc={"siteName": site_name})).orthanc.site_name == site_name


def test_the_client_vpn_certificate_domain_is_not_an_address_either():
    raw = config(clientVpn={**VPN, "certificateDomain": "10.1.2.3"})
    assert "not an IP address" in refusals(raw)["orthgate:clientVpn.certificateDomain"]


# --- common names within 64 characters ---------------------------------------------------------


def test_a_site_name_of_64_characters_is_accepted_and_65_refused():
    accepted = name_of_length(64)
    assert parse_settings(config(orthanc={"siteName": accepted})).orthanc.site_name == accepted
    refused = name_of_length(65)
    problems = refusals(config(orthanc={"siteName": refused}))
    assert list(problems) == ["orthgate:orthanc.siteName"]
    rule = problems["orthgate:orthanc.siteName"]
    assert "65 characters" in rule
    assert "RFC 5280" in rule


def test_a_certificate_domain_that_makes_the_vpn_server_name_long_is_refused():
    # server.<domain>: 7 characters plus the domain.
    accepted = name_of_length(COMMON_NAME_MAX_LENGTH - 7)
    parse_settings(config(clientVpn={**VPN, "workstations": ["ws"], "certificateDomain": accepted}))
    refused = name_of_length(COMMON_NAME_MAX_LENGTH - 6)
    problems = refusals(
        config(clientVpn={**VPN, "workstations": ["ws"], "certificateDomain": refused})
    )
    assert list(problems) == ["orthgate:clientVpn.certificateDomain"]
    assert "at most 57 characters" in problems["orthgate:clientVpn.certificateDomain"]


def test_a_workstation_whose_certificate_name_is_long_is_refused_naming_both_keys():
    domain = "clientvpn.orthgate.internal"  # the default: 27 characters
    fits = "w" * (COMMON_NAME_MAX_LENGTH - len(domain) - 1)
    too_long = "x" * (COMMON_NAME_MAX_LENGTH - len(domain))
    problems = refusals(config(clientVpn={**VPN, "workstations": [fits, too_long]}))
    assert list(problems) == ["orthgate:clientVpn.workstations[1]"]
    rule = problems["orthgate:clientVpn.workstations[1]"]
    assert "orthgate:clientVpn.certificateDomain" in rule
    assert f"{too_long}.{domain}" in rule


def test_a_disabled_client_vpn_issues_no_certificate_and_is_not_checked():
    raw = config(clientVpn={"certificateDomain": name_of_length(100)})
    assert not parse_settings(raw).client_vpn.enabled


def test_every_common_name_the_program_issues_is_the_one_the_model_checks():
    stack = read_stack_file(STACKS_DIR / "Pulumi.dev.yaml")
    site_name = name_of_length(COMMON_NAME_MAX_LENGTH)
    domain = name_of_length(COMMON_NAME_MAX_LENGTH - 7, tld="internal")
    workstation = "w" * (COMMON_NAME_MAX_LENGTH - len(domain) - 1)
    stack["orthgate:orthanc"] = {**stack["orthgate:orthanc"], "siteName": site_name}
    stack["orthgate:clientVpn"] = {**VPN, "workstations": [workstation, "ws-2"]}
    stack["orthgate:clientVpn"]["certificateDomain"] = domain
    stack["orthgate:dicomProxies"] = [PROXY]
    evaluation = evaluate(stack, stack="dev")

    def common_name(resource_name: str) -> str:
        return evaluation.named(resource_name).inputs["subject"]["commonName"]

    assert common_name("orthanc-server-csr") == orthanc_server_common_name(site_name, "")
    assert common_name("client-vpn-server-csr") == client_vpn_server_name(domain)
    assert common_name(f"client-vpn-{workstation}-csr") == workstation_common_name(
        workstation, domain
    )
    assert common_name("client-vpn-ws-2-csr") == workstation_common_name("ws-2", domain)
    assert common_name("proxy-north-clinic-client-csr") == proxy_site_common_name(PROXY["name"])
    assert common_name("orthanc-modality-test-tls-modality-csr") == tls_modality_common_name(
        "test-tls-modality"
    )
    # Every subject the program declares, CAs included, fits.
    subjects = [
        resource.inputs["subject"]["commonName"]
        for resource in evaluation.resources
        if resource.type.startswith("tls:") and "subject" in resource.inputs
    ]
    # 2 CAs, the server, the VPN server, 2 workstations, 1 site, the dev stack's TLS modality
    assert len(subjects) == 8
    assert all(len(name) <= COMMON_NAME_MAX_LENGTH for name in subjects), subjects
