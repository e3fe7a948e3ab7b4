"""Names derived from the Pulumi stack name: valid for AWS whatever the stack is called, and
unchanged for every stack name that worked before (a new name would replace the resource).
"""

from __future__ import annotations

import re

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from orthgate.components.naming import Naming
from tests.harness.pulumi_run import STACKS_DIR, evaluate, read_stack_file

ALIAS = "aws:kms/alias:Alias"
DATABASE = "aws:rds/instance:Instance"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
SECRET = "aws:secretsmanager/secret:Secret"
CA_CERT = "tls:index/selfSignedCert:SelfSignedCert"
AREAS = ("network", "orthanc", "clientvpn")

# What the Pulumi CLI accepts as a stack name (tokens.IsName, at most 100 characters).
STACK_NAMES = st.from_regex(r"[A-Za-z0-9_.-]{1,100}", fullmatch=True)
LONG_STACK = "hospital-" + "a" * 85 + ".prd_1"  # 100 characters


# --- AWS's rules, as the service documentation states them ----------------------------------


def valid_kms_alias(name: str) -> bool:
    # KMS CreateAlias: alias/ then [a-zA-Z0-9/_-], at most 256, not alias/aws/.
    return (
        re.fullmatch(r"alias/[a-zA-Z0-9/_-]+", name) is not None
        and len(name) <= 256
        and not name.startswith("alias/aws/")
    )


def valid_rds_identifier(name: str) -> bool:
    # RDS DBInstanceIdentifier: lowercase letters, digits, hyphens; a letter first; no "--",
    # no trailing hyphen; 1 to 63 characters.
    return (
        re.fullmatch(r"[a-z][a-z0-9-]*", name) is not None
        and "--" not in name
        and not name.endswith("-")
        and len(name) <= 63
    )


def valid_rds_identifier_prefix(prefix: str) -> bool:
    # The provider appends 26 lowercase hex and digits: the result must be an identifier.
    return valid_rds_identifier(prefix + "0" * 26)


def valid_snapshot_identifier(name: str) -> bool:
    # DBSnapshotIdentifier: letters, digits, hyphens; a letter first; no "--", no trailing
    # hyphen; at most 255.
    return (
        re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*", name) is not None
        and "--" not in name
        and not name.endswith("-")
        and len(name) <= 255
    )


def valid_log_group(name: str) -> bool:
    return re.fullmatch(r"[.\-_/#A-Za-z0-9]+", name) is not None and len(name) <= 512


def valid_secret_name(name: str) -> bool:
    return re.fullmatch(r"[A-Za-z0-9/_+=.@-]+", name) is not None and len(name) <= 512


# --- the rules hold for every stack name Pulumi accepts ---------------------------------------


@given(STACK_NAMES)
def test_every_pulumi_stack_name_derives_valid_names(stack):
    naming = Naming(stack=stack, environment="prd")
    for area in AREAS:
        assert valid_kms_alias(naming.kms_alias(area)), naming.kms_alias(area)
        assert valid_log_group(naming.log_group_prefix(area) + "containers" + "-" + "0" * 26)
        assert valid_secret_name(naming.secret_name_prefix(area, "config") + "0" * 26)
    prefix = naming.rds_identifier_prefix("orthanc")
    assert valid_rds_identifier_prefix(prefix), prefix
    assert valid_snapshot_identifier(f"{prefix}final-0123abcd")
    assert len(naming.common_name("Client VPN CA")) <= 64
    assert len(naming.label(max_length=100)) <= 100


@pytest.mark.parametrize(
    "stack",
    ["Team.Orthanc_PRD.2026", LONG_STACK, ".", "_", "-", "--a--", "9lives", "A" * 100, "a.b"],
)
def test_awkward_stack_names_derive_valid_names(stack):
    naming = Naming(stack=stack, environment="prd")
    assert valid_kms_alias(naming.kms_alias("network"))
    assert valid_rds_identifier_prefix(naming.rds_identifier_prefix("orthanc"))


def test_a_sanitised_name_stays_recognisable_and_stable():
    naming = Naming(stack="Team.Orthanc_PRD.2026", environment="prd")
    digest = naming.digest
    assert naming.kms_alias("network") == f"alias/orthgate-Team-Orthanc_PRD-2026-{digest}-network"
    assert naming.rds_identifier_prefix("orthanc") == f"orthgate-team-orthanc-{digest}-orthanc-"
    assert Naming(stack="Team.Orthanc_PRD.2026", environment="dev").kms_alias("network") == (
        naming.kms_alias("network")
    )


def test_stack_names_that_sanitise_alike_still_get_different_names():
    # Each of these would read "team-a" once sanitised; the digest of the raw name differs.
    stacks = ["Team.A", "Team_A", "team.a", "TEAM.A", "team_a", "team-a"]
    namings = [Naming(stack=s, environment="prd") for s in stacks]
    aliases = {n.kms_alias("network") for n in namings}
    prefixes = {n.rds_identifier_prefix("orthanc") for n in namings}
    assert len(aliases) == len(prefixes) == len(stacks)
    # Two long names that differ only past the cut keep apart too.
    long_a, long_b = LONG_STACK, LONG_STACK[:-1] + "2"
    assert Naming(stack=long_a, environment="prd").rds_identifier_prefix("orthanc") != (
        Naming(stack=long_b, environment="prd").rds_identifier_prefix("orthanc")
    )


# --- names that worked before do not change (no replacement on upgrade) ----------------------


@pytest.mark.parametrize(
    "stack",
    # The longest: 19 characters, whose identifier (with the 26 appended) is just 63.
    ["dev", "prod", "prd", "test", "hospital-a-prd", "site2-stg", "abcdefghi-klmnopqrs"],
)
def test_names_that_deployed_before_are_kept(stack):
    """The formulas main had: a stack that deployed then keeps every physical name."""
    naming = Naming(stack=stack, environment="prd")
    for area in AREAS:
        assert naming.kms_alias(area) == f"alias/orthgate-{stack}-{area}"
        assert naming.log_group_prefix(area) == f"/orthgate/{stack}/{area}/"
        assert naming.secret_name_prefix(area, "tls") == f"orthgate/{stack}/{area}/tls-"
    assert naming.rds_identifier_prefix("orthanc") == f"orthgate-{stack}-orthanc-"
    assert naming.common_name("Client VPN CA") == f"orthgate {stack} Client VPN CA"
    assert naming.metrics_namespace == f"orthgate/{stack}"
    assert naming.prefix == f"orthgate-{stack}"


@pytest.mark.parametrize(
    "stack", ["Hospital_A", "Dev", "hospital_a_prd", "abcdefghij-klmnopqrs", "x" * 100]
)
def test_a_kms_alias_that_was_valid_is_kept_even_where_rds_needs_another_name(stack):
    # These stacks could deploy without PostgreSQL before (RDS refused their identifier, or
    # found it past 63 characters): their aliases stay.
    naming = Naming(stack=stack, environment="dev")
    assert naming.kms_alias("network") == f"alias/orthgate-{stack}-network"
    assert naming.rds_identifier_prefix("orthanc") != f"orthgate-{stack}-orthanc-"


# --- what the program declares ---------------------------------------------------------------


def prod_with_client_vpn() -> dict:
    config = read_stack_file(STACKS_DIR / "Pulumi.prod.yaml")
    config["orthgate:clientVpn"] = {
        "enabled": True,
        "clientCidr": "192.168.0.0/22",
        "workstations": ["reading-room-1"],
    }
    return config


_evaluations: dict[str, object] = {}


def evaluated(stack: str):
    """One evaluation per stack name for the whole module (each takes seconds)."""
    if stack not in _evaluations:
        _evaluations[stack] = evaluate(prod_with_client_vpn(), stack=stack)
    return _evaluations[stack]


@pytest.fixture(params=["Team.Orthanc_PRD.2026", LONG_STACK])
def awkward(request):
    return request.param, evaluated(request.param)


def test_declared_names_follow_aws_rules_for_awkward_stack_names(awkward):
    stack, evaluation = awkward
    aliases = [r.inputs["name"] for r in evaluation.of_type(ALIAS)]
    assert len(aliases) == 3
    assert all(valid_kms_alias(a) for a in aliases), aliases
    [database] = evaluation.of_type(DATABASE)
    assert valid_rds_identifier_prefix(database.inputs["identifierPrefix"])
    assert valid_rds_identifier(database.outputs["identifier"])
    assert valid_snapshot_identifier(database.inputs["finalSnapshotIdentifier"])
    for group in evaluation.of_type(LOG_GROUP):
        name = group.inputs.get("name") or group.inputs["namePrefix"] + "0" * 26
        assert valid_log_group(name), name
    for secret in evaluation.of_type(SECRET):
        assert valid_secret_name(secret.inputs["namePrefix"] + "0" * 26)
    # Tags keep the stack name as it is: a tag value takes any of its characters.
    assert all(r.inputs["tags"]["orthgate:stack"] == stack for r in evaluation.of_type(SECRET))


def test_the_client_vpn_ca_common_name_fits_x509(awkward):
    _, evaluation = awkward
    [ca] = [
        r
        for r in evaluation.of_type(CA_CERT)
        if r.inputs["subject"]["organizationalUnit"] == "Client VPN"
    ]
    assert len(ca.inputs["subject"]["commonName"]) <= 64
    certificate = x509.load_pem_x509_certificate(ca.outputs["certPem"].encode())
    [common_name] = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert common_name.value.startswith("orthgate ")


def test_an_ordinary_stack_declares_exactly_the_names_it_had():
    evaluation = evaluate(prod_with_client_vpn(), stack="hospital-a-prd")
    assert sorted(r.inputs["name"] for r in evaluation.of_type(ALIAS)) == [
        "alias/orthgate-hospital-a-prd-clientvpn",
        "alias/orthgate-hospital-a-prd-network",
        "alias/orthgate-hospital-a-prd-orthanc",
    ]
    [database] = evaluation.of_type(DATABASE)
    assert database.inputs["identifierPrefix"] == "orthgate-hospital-a-prd-orthanc-"
    assert re.fullmatch(
        r"orthgate-hospital-a-prd-orthanc-final-[0-9a-f]{8}",
        database.inputs["finalSnapshotIdentifier"],
    )
    # nginx's files and Orthanc's settings took new names with sender identity (a format
    # hosts of earlier releases cannot use: components.orthanc.configuration.SECRET_NAMES);
    # the earlier two keep theirs for one release (RETIRED_SECRETS).
    roles = ("admin", "config", "nginx-files", "settings", "tls")
    assert sorted(r.inputs["namePrefix"] for r in evaluation.of_type(SECRET)) == [
        f"orthgate/hospital-a-prd/orthanc/{role}-" for role in roles
    ]


def test_every_common_name_naming_the_stack_fits_x509():
    evaluation = evaluated(LONG_STACK)
    subjects = [
        r.inputs["subject"]
        for r in evaluation.resources
        if r.type.startswith("tls:") and "subject" in r.inputs
    ]
    assert subjects
    assert all(len(s["commonName"]) <= 64 for s in subjects), [s["commonName"] for s in subjects]


def test_a_ca_deployed_under_a_long_name_is_kept_on_upgrade(monkeypatch):
    """Earlier releases wrote the whole stack name into the CAs' common names; the CAs they
    deployed keep it, so no CA (and no certificate it signed) is replaced by the upgrade."""
    from tests.harness.update_plan import Deployment, plan_update

    stack = "hospital-" + "a" * 50  # "orthgate <stack> DICOM CA" is 76 characters
    config = read_stack_file(STACKS_DIR / "Pulumi.dev.yaml")
    config["orthgate:clientVpn"] = {
        "enabled": True,
        "clientCidr": "192.168.0.0/22",
        "workstations": ["reading-room-1"],
    }
    deployment = Deployment(stack=stack)
    with monkeypatch.context() as earlier:
        earlier.setattr(
            Naming, "common_name", lambda self, suffix: f"orthgate {self.stack} {suffix}"
        )
        first = deployment.up(config)
    second = deployment.up(config)
    plan = plan_update(first, second)
    cas = [s for s in plan.steps if s.type == CA_CERT]
    assert len(cas) == 2
    assert all(s.op == "same" for s in cas), [(s.name, s.op) for s in cas]
    assert plan.replaced == [], plan.summary()
    # A stack deployed anew gets names that fit X.509.
    fresh = [
        r.inputs["subject"]["commonName"] for r in deployment.fresh("2").up(config).of_type(CA_CERT)
    ]
    assert all(len(name) <= 64 for name in fresh), fresh
