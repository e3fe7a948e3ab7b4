"""Client VPN revocation: orthgate:clientVpn.revokedCertificates, the re-issue of a revoked
workstation's certificate, and the revocation list the program builds for the endpoint."""

from __future__ import annotations

import json
import re

import pytest
from cryptography import x509

from orthgate.components.config import ConfigError, parse_settings
from orthgate.components.config.client_vpn import MAX_REVOKED_CERTIFICATES
from orthgate.components.config.serials import format_serial
from orthgate.components.crl import build_crl, certificate_serial
from orthgate.stack_file import read_stack_config
from tests.harness.pulumi_run import STACKS_DIR, read_stack_file
from tests.harness.update_plan import Deployment, plan_update

VPN = {
    "enabled": True,
    "clientCidr": "192.168.0.0/22",
    "workstations": ["reading-room-1", "reading-room-2"],
}
# A certificate of a workstation retired earlier (the example serial of parse_serial).
RETIRED = {"workstation": "old-laptop", "serial": "0FA9BCD4972010B5EAC32A1B072AE657C7EEEDE6"}
KEY = "tls:index/privateKey:PrivateKey"
COMPONENT = "orthgate:vpn:ClientVpn"


def settings_with(**client_vpn):
    return parse_settings(
        {
            "environment": "dev",
            "network": {"vpcCidr": "10.40.0.0/16"},
            "clientVpn": {**VPN, **client_vpn},
        }
    ).client_vpn


def refusals(**client_vpn) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        settings_with(**client_vpn)
    return {p.path: str(p) for p in caught.value.problems}


# --- configuration ------------------------------------------------------------------------------


def test_entries_are_read_with_canonical_serials_and_count_as_generations():
    vpn = settings_with(
        revokedCertificates=[
            {"workstation": "reading-room-1", "serial": "0a:b1:c2"},
            {"workstation": "reading-room-1", "serial": "0x0D"},
            RETIRED,
        ]
    )
    assert [r.serial for r in vpn.revoked_certificates] == ["0AB1C2", "0D", RETIRED["serial"]]
    assert vpn.certificate_generation("reading-room-1") == 2
    assert vpn.certificate_generation("reading-room-2") == 0
    assert settings_with().revoked_certificates == []


P = "orthgate:clientVpn.revokedCertificates"


@pytest.mark.parametrize(
    ("entries", "path", "words"),
    [
        pytest.param(
            [{"workstation": "reading-room-1", "serial": 1234}],
            f"{P}[0].serial",
            "written as a string in quotes",
            id="unquoted-serial",
        ),
        pytest.param(
            [{"workstation": "reading-room-1", "serial": "0G"}],
            f"{P}[0].serial",
            "hexadecimal",
            id="not-hex",
        ),
        pytest.param(
            [{"workstation": "reading-room-1", "serial": "00"}],
            f"{P}[0].serial",
            "positive number",
            id="zero",
        ),
        pytest.param(
            [{"workstation": "reading-room-1"}], f"{P}[0].serial", "is required", id="no-serial"
        ),
        pytest.param(
            [{**RETIRED, "reason": "lost"}], f"{P}[0].reason", "not a known key", id="unknown-key"
        ),
        pytest.param(
            [{**RETIRED, "workstation": "Old_Laptop"}], f"{P}[0].workstation", "DNS label", id="dns"
        ),
        pytest.param(
            [RETIRED, {"workstation": "reading-room-1", "serial": RETIRED["serial"].lower()}],
            f"{P}[1].serial",
            "duplicates entry [0]",
            id="duplicate-serial",
        ),
        pytest.param({"workstation": "reading-room-1", "serial": "0A"}, P, "", id="not-a-list"),
    ],
)
def test_bad_entries_are_refused_naming_the_key_value_and_rule(entries, path, words):
    problems = refusals(revokedCertificates=entries)
    assert path in problems, problems
    assert words in problems[path]


def test_an_unquoted_serial_in_the_stack_file_is_refused_with_the_reason():
    """YAML (as Pulumi's CLI reads it) makes numbers of 1234 and 0x0A: not what was copied."""
    text = """config:
  orthgate:clientVpn:
    revokedCertificates:
      - {workstation: old-laptop, serial: 1234}
      - {workstation: old-laptop, serial: 0x0A}
      - {workstation: old-laptop, serial: "1235"}
      - {workstation: old-laptop, serial: 0A:B1}
"""
    entries = read_stack_config(text)["orthgate:clientVpn"]["revokedCertificates"]
    problems = refusals(revokedCertificates=entries)
    assert set(problems) == {f"{P}[0].serial", f"{P}[1].serial"}
    assert all("written as a string in quotes" in message for message in problems.values())
    accepted = settings_with(revokedCertificates=entries[2:]).revoked_certificates
    assert [r.serial for r in accepted] == ["1235", "0AB1"]


def test_the_aws_quota_of_crl_entries_is_enforced():
    # AWS Client VPN quotas: 20,000 entries per revocation list, not adjustable.
    assert MAX_REVOKED_CERTIFICATES == 20_000
    entries = [
        {"workstation": "old-laptop", "serial": f"{n:06X}"}
        for n in range(1, MAX_REVOKED_CERTIFICATES + 2)
    ]
    message = refusals(revokedCertificates=entries)[P]
    assert f"= {MAX_REVOKED_CERTIFICATES + 1}:" in message
    assert "at most 20000" in message
    assert len(settings_with(revokedCertificates=entries[:-1]).revoked_certificates) == 20_000


@pytest.mark.parametrize("name", ["server", "ca"])
def test_a_workstation_cannot_take_the_names_of_the_vpn_ca_or_server(name):
    problems = refusals(workstations=["reading-room-1", name])
    assert "kept for the Client VPN's own" in problems["orthgate:clientVpn.workstations[1]"]


def test_a_reissued_certificate_may_not_take_another_workstations_names():
    problems = refusals(
        workstations=["ws", "ws-r1"], revokedCertificates=[{"workstation": "ws", "serial": "0A"}]
    )
    message = problems["orthgate:clientVpn.workstations[1]"]
    assert "with workstation ws (both named ws-r1)" in message
    assert "after 1 revocation in orthgate:clientVpn.revokedCertificates" in message
    # Without the revocation the two names never meet.
    assert settings_with(workstations=["ws", "ws-r1"]).workstations == ["ws", "ws-r1"]


# --- what the program declares ------------------------------------------------------------------


def config_with(**client_vpn) -> dict:
    config = read_stack_file(STACKS_DIR / "Pulumi.dev.yaml")
    config["orthgate:clientVpn"] = {**VPN, **client_vpn}
    return config


@pytest.fixture(scope="module")
def ups():
    """One stack, one account: deployed, then a retired workstation's certificate revoked,
    then reading-room-1's current one, then its re-issued one too. Between two of these
    `pulumi up`s, unchanged resources keep their keys and certificates."""
    deployment = Deployment(stack="dev")
    first = deployment.up(config_with())
    old_serial = first.outputs["clientVpnCertificateSerials"]["reading-room-1"]
    retired = deployment.up(config_with(revokedCertificates=[RETIRED]))
    once = [RETIRED, {"workstation": "reading-room-1", "serial": old_serial}]
    revoked = deployment.up(config_with(revokedCertificates=once))
    new_serial = revoked.outputs["clientVpnCertificateSerials"]["reading-room-1"]
    twice = [*once, {"workstation": "reading-room-1", "serial": new_serial}]
    again = deployment.up(config_with(revokedCertificates=twice))
    return {
        "first": first,
        "retired": retired,
        "revoked": revoked,
        "again": again,
        "deployment": deployment,
    }


def crl_of(evaluation) -> x509.CertificateRevocationList:
    return x509.load_pem_x509_crl(evaluation.outputs["clientVpnRevocationList"].encode())


def declarations(evaluation) -> dict[str, dict]:
    return {r.urn: r.raw_inputs for r in evaluation.resources}


def test_the_workstation_certificates_keep_todays_names(ups):
    names = {r.name for r in ups["first"].of_type(KEY)}
    assert {"client-vpn-reading-room-1-key", "client-vpn-reading-room-2-key"} <= names
    assert not any("-r1" in name for name in names)


def test_revoking_only_retired_certificates_changes_no_declaration(ups):
    first, retired = ups["first"], ups["retired"]
    assert declarations(retired) == declarations(first)
    assert plan_update(first, retired).summary() == {}
    assert retired.outputs["clientVpnProfiles"] == first.outputs["clientVpnProfiles"]


def test_a_revoked_workstation_gets_a_new_key_certificate_and_profile(ups):
    first, revoked = ups["first"], ups["revoked"]
    plan = plan_update(first, revoked)
    prefix = "tls:index/"
    assert plan.summary() == {
        "create": [
            f"{prefix}privateKey:PrivateKey::client-vpn-reading-room-1-r1-key",
            f"{prefix}certRequest:CertRequest::client-vpn-reading-room-1-r1-csr",
            f"{prefix}locallySignedCert:LocallySignedCert::client-vpn-reading-room-1-r1-cert",
        ],
        "delete": [
            f"{prefix}privateKey:PrivateKey::client-vpn-reading-room-1-key",
            f"{prefix}certRequest:CertRequest::client-vpn-reading-room-1-csr",
            f"{prefix}locallySignedCert:LocallySignedCert::client-vpn-reading-room-1-cert",
        ],
    }
    before, after = first.outputs, revoked.outputs
    old = before["clientVpnCertificateSerials"]
    new = after["clientVpnCertificateSerials"]
    assert new["reading-room-1"] != old["reading-room-1"]
    assert new["reading-room-2"] == old["reading-room-2"]
    profiles_before, profiles_after = before["clientVpnProfiles"], after["clientVpnProfiles"]
    assert profiles_after["reading-room-1"] != profiles_before["reading-room-1"]
    assert profiles_after["reading-room-2"] == profiles_before["reading-room-2"]
    cert = profiles_after["reading-room-1"].split("<cert>\n")[1].split("</cert>")[0]
    assert certificate_serial(cert) == new["reading-room-1"]
    again = {r.name for r in ups["again"].of_type(KEY)}
    assert "client-vpn-reading-room-1-r2-key" in again
    assert "client-vpn-reading-room-1-r1-key" not in again


def test_the_revocation_list_holds_exactly_the_configured_serials_signed_by_the_vpn_ca(ups):
    ca_pem = ups["first"].outputs["clientVpnCaCertificate"]
    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    old_serial = ups["first"].outputs["clientVpnCertificateSerials"]["reading-room-1"]
    new_serial = ups["revoked"].outputs["clientVpnCertificateSerials"]["reading-room-1"]
    for stage, serials in (
        ("first", set()),
        ("retired", {RETIRED["serial"]}),
        ("revoked", {RETIRED["serial"], old_serial}),
        ("again", {RETIRED["serial"], old_serial, new_serial}),
    ):
        crl = crl_of(ups[stage])
        assert {format_serial(r.serial_number) for r in crl} == serials, stage
        assert crl.is_signature_valid(ca.public_key())
        assert crl.next_update_utc == ca.not_valid_after_utc
    # The same CA and serials give the same bytes: an unchanged list needs no new import.
    ca_key = ups["first"].named("client-vpn-ca-key").outputs["privateKeyPem"]
    assert ups["retired"].outputs["clientVpnRevocationList"] == build_crl(
        ca_pem, ca_key, [RETIRED["serial"]]
    )


def test_serials_and_revocation_list_are_plain_and_no_private_key_is(ups):
    for evaluation in (ups[stage] for stage in ("first", "retired", "revoked", "again")):
        assert {"clientVpnCertificateSerials", "clientVpnRevocationList"}.isdisjoint(
            evaluation.secret_outputs
        )
        assert "clientVpnProfiles" in evaluation.secret_outputs
        registered = evaluation.component_outputs(COMPONENT, "client-vpn")
        assert registered["revocationList"] == evaluation.outputs["clientVpnRevocationList"]
        plain = json.dumps(
            {k: v for k, v in evaluation.outputs.items() if k not in evaluation.secret_outputs}
        )
        assert "PRIVATE KEY" not in plain
        ca_key = evaluation.named("client-vpn-ca-key").outputs["privateKeyPem"]
        # Neither as PEM nor as its base64 body cut into other lines.
        body = "".join(ca_key.strip().splitlines()[1:-1])
        assert ca_key not in plain
        assert body[:64] not in plain.replace("\\n", "")


def test_an_entry_listing_a_current_certificate_under_another_workstation_is_refused(ups):
    """A mix-up: the serial is reading-room-2's current one, the entry names reading-room-1.
    Imported, the list would lock reading-room-2 out while nobody re-issued its certificate."""
    serial = ups["again"].outputs["clientVpnCertificateSerials"]["reading-room-2"]
    mixed_up = [{"workstation": "reading-room-1", "serial": serial}]
    with pytest.raises(Exception, match=re.escape(f"{P}[0] lists {serial},")) as caught:
        ups["deployment"].up(config_with(revokedCertificates=mixed_up))
    assert "would lock reading-room-2 out" in str(caught.value)
