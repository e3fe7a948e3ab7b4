"""How senders prove who they are: the config rules, the loopback identities nginx hands to
Orthanc, and what the program declares for them (TLS modality certificates, revocation,
re-issue). The real nginx and Orthanc enforce it in tests/integration/test_sender_identity.py.
"""

from __future__ import annotations

import copy
import ipaddress
import json

import pytest
from cryptography import x509

from orthgate.components.config import ConfigError, parse_settings
from orthgate.components.render.orthanc_config import (
    OrthancConfigSpec,
    Sender,
    render_orthanc_config,
)
from orthgate.components.render.sender_identity import (
    ANY_PRIVATE_PATH,
    IDENTITY_RANGE,
    SenderIdentity,
    identity_address,
    identity_collisions,
    render_sender_maps,
)
from orthgate.offline.aws_mock import AwsMock
from tests.harness.pulumi_run import STACKS_DIR, RecordingMocks, evaluate, read_stack_file
from tests.harness.user_data import written_files

BASE = {
    "environment": "dev",
    "network": {
        "vpcCidr": "10.40.0.0/16",
        "siteToSiteVpns": [
            {
                "name": "campus",
                "customerGatewayIp": "203.0.113.10",
                "bgpAsn": 65010,
                "onPremCidrs": ["172.20.0.0/16"],
            }
        ],
    },
}


def config(modalities: list, **orthanc) -> dict:
    raw = copy.deepcopy(BASE)
    raw["orthanc"] = {"modalities": modalities, **orthanc}
    return raw


def problems(raw: dict) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(raw)
    return {problem.path: str(problem) for problem in caught.value.problems}


CT = {"name": "ct", "aeTitle": "CT_A", "sourceCidrs": ["172.20.10.21/32"]}
NORTH = "CN=north-clinic,OU=DICOM,O=orthgate"


# --- identities --------------------------------------------------------------------------------


def test_an_identity_address_is_fixed_by_what_it_stands_for_not_by_its_neighbours():
    ct = SenderIdentity(source_cidrs=("172.20.10.21/32",))
    site = SenderIdentity(certificate_subject=NORTH)
    alone = identity_address(site)
    assert identity_address(site) == alone
    # The order of a range list does not matter; the other senders do not either.
    both = SenderIdentity(source_cidrs=("172.20.10.21/32", "172.20.9.0/24"))
    same = SenderIdentity(source_cidrs=("172.20.9.0/24", "172.20.10.21/32"))
    assert identity_address(both) == identity_address(same)
    addresses = {identity_address(i) for i in (ct, site, both, ANY_PRIVATE_PATH)}
    assert len(addresses) == 4
    for address in addresses:
        assert address != "127.0.0.1"
        assert ipaddress.IPv4Address(address) in IDENTITY_RANGE


def test_the_maps_send_a_known_certificate_and_a_claimed_range_to_their_addresses():
    site = SenderIdentity(certificate_subject=NORTH)
    ct = SenderIdentity(source_cidrs=("172.20.10.21/32",))
    text = render_sender_maps([site, ct, ANY_PRIVATE_PATH], ["172.20.0.0/16", "10.9.0.0/16"])
    # The whole subject, matched as a string: no pattern a crafted subject could satisfy.
    assert f'"{NORTH}" {identity_address(site)};' in text
    assert "~" not in text
    assert f"172.20.10.21/32 {identity_address(ct)};" in text
    for path in ("172.20.0.0/16", "10.9.0.0/16"):
        assert f"{path} {identity_address(ANY_PRIVATE_PATH)};" in text
    # An unknown certificate, or a source on no private path (the Docker gateway, IPv6
    # through docker-proxy), gets no address: nginx then connects from 127.0.0.1.
    assert text.count('default "";') == 2
    assert "map_hash_bucket_size" in text
    # A claim of a whole private-path range leaves it to the claimants (geo takes a range once).
    whole = SenderIdentity(source_cidrs=("10.9.0.0/16",))
    claimed = render_sender_maps([whole], ["10.9.0.0/16"])
    assert claimed.count("10.9.0.0/16") == 1
    assert f"10.9.0.0/16 {identity_address(whole)};" in claimed


def test_orthanc_registers_each_ae_title_once_with_its_identity_and_checks_it():
    senders = [
        Sender("ct", "CT_A", SenderIdentity(source_cidrs=("172.20.10.21/32",))),
        Sender("site", "SITE_GW", SenderIdentity(certificate_subject=NORTH)),
        Sender("mr", "MR_A"),
    ]
    rendered = render_orthanc_config(
        OrthancConfigSpec(name="t", ae_title="ORTHANC", senders=senders)
    )
    assert rendered["DicomCheckModalityHost"] is True
    assert rendered["StrictAetComparison"] is True
    assert rendered["DicomAlwaysAllowStore"] is False
    hosts = {entry["AET"]: entry["Host"] for entry in rendered["DicomModalities"].values()}
    assert hosts == {s.ae_title: identity_address(s.identity) for s in senders}


def test_colliding_identities_are_found():
    identities = [
        SenderIdentity(certificate_subject=f"CN=site-{n},OU=DICOM,O=orthgate") for n in range(3000)
    ]
    by_address: dict[str, list[str]] = {}
    for identity in identities:
        by_address.setdefault(identity_address(identity), []).append(identity.key)
    expected = sorted(tuple(sorted(keys[:2])) for keys in by_address.values() if len(keys) > 1)
    assert identity_collisions(identities) == expected


# --- config ------------------------------------------------------------------------------------


def test_modalities_default_to_a_private_path_from_anywhere():
    settings = parse_settings(config([{"name": "mr", "aeTitle": "MR_A"}]))
    [modality] = settings.orthanc.modalities
    assert modality.connection == "private"
    assert modality.source_cidrs == []


def test_source_ranges_must_lie_on_a_private_path():
    found = problems(config([{**CT, "sourceCidrs": ["10.99.0.0/24"]}]))
    message = found["orthgate:orthanc.modalities[0].sourceCidrs[0]"]
    assert "10.99.0.0/24" in message
    assert "172.20.0.0/16" in message


def test_client_vpn_senders_may_name_the_private_subnets():
    raw = config([{**CT, "sourceCidrs": ["10.40.0.0/22"]}])
    with pytest.raises(ConfigError):
        parse_settings(raw)  # without the Client VPN, nothing comes from there
    raw["clientVpn"] = {
        "enabled": True,
        "clientCidr": "192.168.0.0/22",
        "workstations": ["reading-1"],
    }
    private = parse_settings(raw)
    assert [str(c) for c in private.orthanc.modalities[0].source_cidrs] == ["10.40.0.0/22"]
    # Only a subnet the Client VPN is associated with: from the second, nothing arrives.
    raw["orthanc"]["modalities"][0]["sourceCidrs"] = ["10.40.4.0/22"]
    assert "associatedSubnets" in " ".join(problems(raw).values())
    raw["clientVpn"]["associatedSubnets"] = 2
    # Two associated subnets: AWS picks one per session, so a modality claims both or none.
    assert "list all of them whole" in " ".join(problems(raw).values())
    raw["orthanc"]["modalities"][0]["sourceCidrs"] = ["10.40.0.0/22", "10.40.4.0/22"]
    parse_settings(raw)


def test_overlapping_ranges_of_different_modalities_are_refused_identical_ones_shared():
    inner = {"name": "us", "aeTitle": "US_A", "sourceCidrs": ["172.20.10.0/24"]}
    found = problems(config([CT, inner]))
    [(path, message)] = found.items()
    assert path.startswith("orthgate:orthanc.modalities[")
    assert "overlaps" in message
    shared = {**inner, "sourceCidrs": CT["sourceCidrs"]}
    parse_settings(config([CT, shared]))  # the same list: one identity for both


@pytest.mark.parametrize(
    ("modality", "path", "words"),
    [
        ({**CT, "connection": "tls"}, "modalities[0].sourceCidrs", "only applies"),
        ({**CT, "sourceCidrs": []}, "modalities[0].sourceCidrs", "is empty"),
        ({**CT, "connection": "dicom"}, "modalities[0].connection", "private"),
        ({**CT, "sourceCidrs": ["172.20.10.21/32"] * 2}, "modalities[0].sourceCidrs[1]", "dupl"),
    ],
)
def test_malformed_modality_identities_are_refused_with_their_key_path(modality, path, words):
    found = problems(config([modality]))
    assert words in found[f"orthgate:orthanc.{path}"]


def test_malformed_serials_are_refused_with_their_key_path():
    revoked = [
        {"sender": "north", "serial": 1234},
        {"sender": "north", "serial": "0XYZ"},
        {"sender": "north", "serial": "00"},
    ]
    found = problems(config([CT], revokedCertificates=revoked))
    assert "quotes" in found["orthgate:orthanc.revokedCertificates[0].serial"]
    assert "hexadecimal" in found["orthgate:orthanc.revokedCertificates[1].serial"]
    assert "positive" in found["orthgate:orthanc.revokedCertificates[2].serial"]


def test_a_revocation_may_name_any_sender_but_a_serial_only_once():
    # A modality that spoke TLS before and now comes over a private path keeps its entries:
    # its certificates stay revoked should it (or another of its name) speak TLS again.
    revoked = [{"sender": "ct", "serial": "0A1B"}]
    parse_settings(config([CT], revokedCertificates=revoked))
    twice = [*revoked, {"sender": "north", "serial": "0a:1b"}]
    found = problems(config([CT], revokedCertificates=twice))
    assert "duplicates" in found["orthgate:orthanc.revokedCertificates[1].serial"]


def test_too_many_revocations_for_one_secret_are_refused_with_how_many_fit():
    revoked = [{"sender": "old", "serial": f"{(1 << 150) + n:X}"} for n in range(1300)]
    found = problems(config([CT], revokedCertificates=revoked))
    message = found["orthgate:orthanc.revokedCertificates"]
    assert "65,536" in message
    assert "at most" in message
    fit = int(message.split("at most ")[-1].split(" fit")[0])
    parse_settings(config([CT], revokedCertificates=revoked[:fit]))


# --- declarations ------------------------------------------------------------------------------


def prod_config(revoked: list | None = None) -> dict:
    raw = read_stack_file(STACKS_DIR / "Pulumi.prod.yaml")
    if revoked is not None:
        raw["orthgate:orthanc"]["revokedCertificates"] = revoked
    return raw


def tls_secret(evaluation) -> dict:
    return json.loads(evaluation.named("orthanc-nginx-files-secret-value").inputs["secretString"])


def test_a_tls_modality_gets_a_client_certificate_in_a_secret_output_only():
    evaluation = evaluate(prod_config(), stack="prod")
    assert "dicomModalityCredentials" in evaluation.secret_outputs
    issued = evaluation.outputs["dicomModalityCredentials"]["dx-room-2"]
    cert = x509.load_pem_x509_certificate(issued["certificate"].encode())
    [cn] = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    assert cn.value == "dx-room-2"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.ExtendedKeyUsageOID.CLIENT_AUTH]
    serial = evaluation.outputs["dicomModalities"]["dx-room-2"]["certificateSerial"]
    assert serial == f"{cert.serial_number:X}".zfill(len(serial))
    assert "dicomModalities" not in evaluation.secret_outputs
    # A unit of its own: a retired modality's certificate never passes for a new site of
    # the same name. nginx maps exactly that subject to the modality's identity.
    [unit] = cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)
    assert unit.value == "DICOM modality"
    assert f'"{cert.subject.rfc4514_string()}"' in tls_secret(evaluation)["senderMaps"]


def test_revoking_a_site_certificate_lists_it_and_re_issues_only_that_site():
    account = AwsMock(region="eu-central-1", zone_count=3)
    first = evaluate(prod_config(), stack="prod", mocks=RecordingMocks(account))
    site = first.outputs["dicomProxySites"]["north-clinic"]["certificateSerial"]
    empty = x509.load_pem_x509_crl(first.outputs["dicomRevocationList"].encode())
    assert len(list(empty)) == 0

    revoked = [{"sender": "north-clinic", "serial": site}, {"sender": "gone", "serial": "0ABC"}]
    second = evaluate(prod_config(revoked), stack="prod", mocks=RecordingMocks(account))
    crl = x509.load_pem_x509_crl(second.outputs["dicomRevocationList"].encode())
    assert {entry.serial_number for entry in crl} == {int(site, 16), 0xABC}
    assert tls_secret(second)["revocationList"] == second.outputs["dicomRevocationList"]
    ca = x509.load_pem_x509_certificate(second.outputs["dicomCaCertificate"].encode())
    assert crl.is_signature_valid(ca.public_key())
    assert second.outputs["dicomCaCertificate"] == first.outputs["dicomCaCertificate"]
    # The site got a new key and certificate under new names; nothing else was re-issued.
    before = {r.name for r in first.resources if r.type.startswith("tls:")}
    after = {r.name for r in second.resources if r.type.startswith("tls:")}
    assert before - after == {
        "proxy-north-clinic-client-key",
        "proxy-north-clinic-client-csr",
        "proxy-north-clinic-client-cert",
    }
    assert after - before == {
        "proxy-north-clinic-client-r1-key",
        "proxy-north-clinic-client-r1-csr",
        "proxy-north-clinic-client-r1-cert",
    }
    assert second.outputs["dicomProxySites"]["north-clinic"]["certificateSerial"] != site
    # The same list again changes no byte of the CRL (no needless reload on the hosts).
    third = evaluate(prod_config(revoked), stack="prod", mocks=RecordingMocks(account))
    assert third.outputs["dicomRevocationList"] == second.outputs["dicomRevocationList"]


def test_registering_a_sender_leaves_the_host_user_data_and_other_identities_alone():
    account = AwsMock(region="eu-central-1", zone_count=3)
    first = evaluate(prod_config(), stack="prod", mocks=RecordingMocks(account))
    raw = prod_config()
    raw["orthgate:orthanc"]["modalities"].append(
        {"name": "us-room-4", "aeTitle": "US_ROOM_4", "sourceCidrs": ["172.20.30.0/24"]}
    )
    second = evaluate(raw, stack="prod", mocks=RecordingMocks(account))
    template = "aws:ec2/launchTemplate:LaunchTemplate"
    assert second.one(template).inputs["userData"] == first.one(template).inputs["userData"]
    old, new = (
        {
            e["AET"]: e["Host"]
            for e in json.loads(
                json.loads(r.named("orthanc-settings-secret-value").inputs["secretString"])[
                    "orthanc.json"
                ]
            )["DicomModalities"].values()
        }
        for r in (first, second)
    )
    assert {k: new[k] for k in old} == old


def test_a_re_issued_certificate_may_not_take_another_modality_s_names():
    modalities = [
        {"name": "x", "aeTitle": "X_A", "connection": "tls"},
        {"name": "x-r1", "aeTitle": "X_B", "connection": "tls"},
    ]
    parse_settings(config(modalities))  # generation 0: no clash
    found = problems(config(modalities, revokedCertificates=[{"sender": "x", "serial": "0A"}]))
    assert "re-issued" in found["orthgate:orthanc.modalities[1].name"]


def test_the_declared_maps_and_their_size_bound_come_from_the_validated_config():
    """What OrthancServer declares equals what the config rules measured and checked."""
    from orthgate.components.config.rendered_sizes import registered_senders, tls_secret_bytes
    from orthgate.components.config.sender_rules import plaintext_source_ranges

    raw = prod_config(
        [{"sender": "retired-site", "serial": f"{(1 << 158) + n:X}"} for n in range(300)]
    )
    raw["orthgate:clientVpn"] = {
        "enabled": True,
        "clientCidr": "192.168.0.0/22",
        "workstations": ["reading-1"],
    }
    settings = parse_settings(
        {k.split(":", 1)[1]: v for k, v in raw.items() if ":" in k and k.startswith("orthgate:")}
    )
    evaluation = evaluate(raw, stack="prod")
    declared = tls_secret(evaluation)
    identities = [sender.identity for sender in registered_senders(settings)]
    assert declared["senderMaps"] == render_sender_maps(
        identities, plaintext_source_ranges(settings)
    )
    # The Client VPN's subnets count as a private path: its clients arrive from there, and
    # only from the subnets it is associated with (one here, of the stack's two).
    on_prem = {str(c) for c in settings.network.private_path_cidrs}
    subnets = set(plaintext_source_ranges(settings)) - on_prem
    assert len(subnets) == settings.client_vpn.associated_subnets == 1
    assert settings.network.availability_zones == 2
    for subnet in subnets:
        assert f"{subnet} " in declared["senderMaps"]
    size = len(evaluation.named("orthanc-nginx-files-secret-value").inputs["secretString"])
    assert size <= tls_secret_bytes(settings)


def _site(name: str, cidr: str, ae: str) -> dict:
    return {
        "name": name,
        "sourceCidrs": [cidr],
        "aeTitle": ae,
        "listenAddress": "192.168.50.10",
        "acceptAnyModality": True,
    }


def _colliding_site_names() -> tuple[str, str]:
    seen: dict[str, str] = {}
    for n in range(100_000):
        name = f"clinic-{n}"
        subject = f"CN={name},OU=DICOM,O=orthgate"
        address = identity_address(SenderIdentity(certificate_subject=subject))
        if address in seen:
            return seen[address], name
        seen[address] = name
    raise AssertionError("no collision found")


def test_two_sites_whose_identities_collide_are_refused_at_the_site():
    first, second = _colliding_site_names()  # a few thousand tries
    raw = copy.deepcopy(BASE)
    raw["dicomProxies"] = [
        _site(first, "198.51.100.8/32", "A_GW"),
        _site(second, "198.51.100.9/32", "B_GW"),
    ]
    found = problems(raw)
    [(path, message)] = found.items()
    assert path.startswith("orthgate:dicomProxies[")
    assert "another name" in message


def test_a_modality_from_anywhere_keeps_somewhere_to_send_from():
    whole = {"name": "ct", "aeTitle": "CT_A", "sourceCidrs": ["172.20.0.0/16"]}
    found = problems(config([whole, {"name": "mr", "aeTitle": "MR_A"}]))
    assert "could never store" in found["orthgate:orthanc.modalities[1].aeTitle"]
    # Part of the range left, or the claimant alone: accepted.
    part = {**whole, "sourceCidrs": ["172.20.0.0/17"]}
    parse_settings(config([part, {"name": "mr", "aeTitle": "MR_A"}]))
    parse_settings(config([whole]))


@pytest.mark.parametrize(
    ("victim", "named"),
    [("dx-room-2", "north-clinic"), ("north-clinic", "dx-room-2")],
)
def test_a_serial_listed_under_another_configured_sender_stops_before_any_host_gets_it(
    victim, named
):
    """It would lock that sender out with nothing re-issued (and re-key the named one):
    the deployment stops, and nginx's secret never gets a value holding that list."""
    account = AwsMock(region="eu-central-1", zone_count=3)
    first = evaluate(prod_config(), stack="prod", mocks=RecordingMocks(account))
    outputs = {**first.outputs["dicomModalities"], **first.outputs["dicomProxySites"]}
    serial = outputs[victim]["certificateSerial"]
    mocks = RecordingMocks(account)
    with pytest.raises(Exception, match=rf"revokedCertificates\[0\] lists .* {victim}'s current"):
        evaluate(prod_config([{"sender": named, "serial": serial}]), stack="prod", mocks=mocks)
    declared = [d for d in mocks.declared if d.name == "orthanc-nginx-files-secret-value"]
    assert declared == [], "the list reached the secret before the guard stopped it"


def test_the_secrets_of_the_earlier_release_stay_for_its_hosts():
    """Hosts still running the earlier user data (a fleet rolling, an instance refresh that
    rolls back) read the earlier secrets: they stay, with the value they had, readable."""
    account = AwsMock(region="eu-central-1", zone_count=3)
    first = evaluate(prod_config(), stack="prod", mocks=RecordingMocks(account))
    policy = json.loads(first.named("orthanc-host-policy").inputs["policy"])
    readable = {
        resource
        for statement in policy["Statement"]
        if "secretsmanager:GetSecretValue" in statement["Action"]
        for resource in statement["Resource"]
    }
    template = first.one("aws:ec2/launchTemplate:LaunchTemplate")
    manifest = json.loads(written_files(template)["/etc/orthgate/secrets.json"])
    for role in ("tls", "config"):
        secret = first.named(f"orthanc-{role}-secret")
        assert secret.inputs["namePrefix"].endswith(f"/orthanc/{role}-")
        assert secret.outputs["arn"] in readable
        assert secret.outputs["arn"] not in manifest["secrets"].values()
        value = first.named(f"orthanc-{role}-secret-value")
        assert list(value.options.ignore_changes) == ["secretString"]


def test_a_new_sender_leaves_the_host_user_data_known_in_a_preview():
    """A new sender gives the secrets new values (new SecretVersions, unknown in a preview).
    The hosts wait for those values by ordering alone: their user data does not come from
    them, so a preview shows no host change for a routine registration."""
    from tests.harness.update_plan import Deployment, plan_update

    config = read_stack_file(STACKS_DIR / "Pulumi.dev.yaml")
    changed = copy.deepcopy(config)
    changed["orthgate:orthanc"]["modalities"].append(
        {"name": "us-room-4", "aeTitle": "US_ROOM_4", "connection": "tls"}
    )
    deployment = Deployment(stack="dev")
    plan = plan_update(deployment.up(config), deployment.up(changed))
    version = "aws:secretsmanager/secretVersion:SecretVersion"
    replaced = {s.after.urn for s in plan.replaced if s.type == version}
    assert {s.name for s in plan.replaced if s.type == version} == {
        "orthanc-nginx-files-secret-value",
        "orthanc-settings-secret-value",
    }
    template = plan.step("orthanc-0-template", "aws:ec2/launchTemplate:LaunchTemplate")
    assert template.op == "same"
    assert not replaced & set(template.after.options.property_dependencies["userData"])
    # ...yet no host boots before the values it reads exist.
    assert replaced <= set(template.after.options.dependencies)
