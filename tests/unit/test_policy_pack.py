"""The CrossGuard pack as the Pulumi engine runs it: the pack's own process, the engine's
gRPC messages, every shipped stack and a maximal one at preview and at update."""

from __future__ import annotations

import copy
import dataclasses
import re

import jsonschema
import pytest
from google.protobuf import json_format

from orthgate.offline.evaluation import Declared, Evaluation
from orthgate.policy_config import policy_pack_config
from orthgate.validation import validate_config
from orthgate_policy import PACK_NAME, POLICIES
from tests.harness.policy_pack import MOMENTS, UNKNOWN, PackProcess
from tests.harness.pulumi_run import STACKS_DIR, evaluate, read_stack_file
from tests.unit.test_costs import maximal_config

ADVISORY = {"tags-present", "log-retention-one-year-in-production", "rds-multi-az-in-production"}


def routable_config() -> dict:
    """prod, private placement, with a hospital range outside RFC 1918 over the VPN."""
    config = copy.deepcopy(read_stack_file(STACKS_DIR / "Pulumi.prod.yaml"))
    config["orthgate:network"]["allowRoutableOnPremCidrs"] = True
    config["orthgate:network"]["siteToSiteVpns"][0]["onPremCidrs"].append("100.64.0.0/16")
    orthanc = config["orthgate:orthanc"]
    orthanc["placement"] = "private"
    orthanc["dicomAllowedCidrs"] = []
    orthanc["modalities"].append(
        {"name": "us-campus", "aeTitle": "US_CAMPUS", "sourceCidrs": ["100.64.3.0/24"]}
    )
    config.pop("orthgate:dicomProxies")
    return config


@pytest.fixture(scope="module")
def pack():
    process = PackProcess()
    yield process
    process.close()


@pytest.fixture(scope="module")
def stacks():
    configs = {
        name: read_stack_file(STACKS_DIR / f"Pulumi.{name}.yaml") for name in ("dev", "prod")
    }
    configs["max"] = maximal_config()
    configs["routable"] = routable_config()
    return {
        name: (policy_pack_config(validate_config(config)), evaluate(config, stack=name))
        for name, config in configs.items()
    }


def test_the_pack_announces_every_policy_with_its_level_and_source(pack):
    info = pack.info
    assert info.name == PACK_NAME
    assert [p.name for p in info.policies] == [p.name for p in POLICIES]
    for policy in info.policies:
        assert "From: " in policy.description, policy.name
        assert policy.remediation_steps, policy.name
        level = "advisory" if policy.enforcementLevel == 0 else "mandatory"
        assert level == ("advisory" if policy.name in ADVISORY else "mandatory"), policy.name
    schemas = {p.name: p.configSchema for p in info.policies}
    assert "dicomTlsPort" in schemas["dicom-ingress-restricted"].properties


@pytest.mark.parametrize("stack", ["dev", "prod", "max", "routable"])
@pytest.mark.parametrize("moment", MOMENTS)
def test_no_mandatory_policy_fires_on_orthgates_own_stacks(pack, stacks, stack, moment):
    config, evaluation = stacks[stack]
    pack.configure(config)
    findings = pack.run(evaluation, moment)
    assert [f for f in findings if f.blocks] == []
    if moment == "update":
        # Every value is known at update: every policy ran to its end on every resource.
        assert [f for f in findings if f.skipped_for_unknowns] == []
        assert [f for f in findings if f.policy in ADVISORY] == []


def test_at_preview_unknown_values_only_postpone_a_policy(pack, stacks):
    config, evaluation = stacks["max"]
    pack.configure(config)
    postponed = [f for f in pack.run(evaluation, "preview") if f.skipped_for_unknowns]
    # The bucket policies are JSON built from the buckets' ARNs: unknown until they exist.
    assert postponed
    assert {f.policy for f in postponed} == {"s3-bucket-policy-tls-only"}
    assert all(f.level == "advisory" for f in postponed)


def test_the_routable_range_needs_the_stacks_pack_config(pack, stacks):
    config, evaluation = stacks["routable"]
    assert config["dicom-ingress-restricted"]["privateCidrs"] == ["100.64.0.0/16"]
    pack.configure({})
    blocking = [f for f in pack.run(evaluation, "update") if f.blocks]
    assert {f.policy for f in blocking} == {"dicom-ingress-restricted"}
    assert all("100.64.0.0/16" in f.message for f in blocking)


def test_orthgates_pack_config_names_real_policies_and_fits_their_schemas(pack, stacks):
    schemas = {p.name: p.configSchema for p in pack.info.policies}
    for config, _ in stacks.values():
        for name, properties in config.items():
            assert name in schemas
            schema = {
                "type": "object",
                "properties": json_format.MessageToDict(schemas[name].properties),
                "additionalProperties": False,
            }
            jsonschema.validate(properties, schema)


# --- seeded violations through the engine path ------------------------------------------


def _edited(evaluation: Evaluation, name: str, **inputs) -> Evaluation:
    """``evaluation`` with one resource's inputs (and outputs) changed."""
    resources = []
    for resource in evaluation.resources:
        if resource.name == name:
            changed = {**resource.raw_inputs, **inputs}
            changed = {k: v for k, v in changed.items() if v is not None}
            # A literal value depends on no other resource.
            links = {
                k: v for k, v in resource.options.property_dependencies.items() if k not in inputs
            }
            resource = dataclasses.replace(
                resource,
                inputs=changed,
                raw_inputs=changed,
                outputs={**resource.outputs, **inputs},
                options=dataclasses.replace(resource.options, property_dependencies=links),
            )
        resources.append(resource)
    return dataclasses.replace(evaluation, resources=resources)


def _without(evaluation: Evaluation, name: str) -> Evaluation:
    kept = [r for r in evaluation.resources if r.name != name]
    return dataclasses.replace(evaluation, resources=kept)


def _added(evaluation: Evaluation, resource: Declared) -> Evaluation:
    return dataclasses.replace(evaluation, resources=[*evaluation.resources, resource])


def _rule(evaluation: Evaluation, name: str, **inputs) -> Declared:
    template = next(r for r in evaluation.resources if r.name == "orthanc-dicom-tls-from-lb-public")
    changed = {k: v for k, v in {**template.raw_inputs, **inputs}.items() if v is not None}
    return dataclasses.replace(
        template,
        name=name,
        urn=template.urn.rsplit("::", 1)[0] + f"::{name}",
        inputs=changed,
        raw_inputs=changed,
        outputs=changed,
    )


SEEDS = {
    "dicom-ingress-restricted": lambda e: _added(
        e,
        _rule(
            e,
            "seed",
            referencedSecurityGroupId=None,
            cidrIpv4="8.8.8.0/24",
            fromPort=4242.0,
            toPort=4242.0,
        ),
    ),
    "no-remote-admin-ingress": lambda e: _added(e, _rule(e, "seed", fromPort=22.0, toPort=22.0)),
    "default-security-group-closed": lambda e: _edited(
        e,
        "network-default-sg",
        ingress=[{"protocol": "tcp", "fromPort": 443, "toPort": 443, "self": True}],
    ),
    "ebs-encrypted": lambda e: _edited(e, "orthanc-host-template", blockDeviceMappings=[]),
    "rds-storage-encrypted": lambda e: _edited(e, "orthanc-index", storageEncrypted=False),
    "cloudwatch-logs-kms": lambda e: _edited(e, "orthanc-logs", kmsKeyId=None),
    "secrets-customer-managed-key": lambda e: _edited(e, "orthanc-admin-secret", kmsKeyId=None),
    "s3-public-access-block-complete": lambda e: _edited(
        e, "orthanc-storage-public-access", restrictPublicBuckets=False
    ),
    "s3-bucket-policy-tls-only": lambda e: _edited(e, "orthanc-storage-tls-only", policy="{}"),
    "s3-versioning-enabled": lambda e: _edited(
        e, "orthanc-storage-versioning", versioningConfiguration={"status": "Suspended"}
    ),
    "rds-not-public": lambda e: _edited(e, "orthanc-index", publiclyAccessible=True),
    "rds-production-backups-and-deletion-protection": lambda e: _edited(
        e, "orthanc-index", backupRetentionPeriod=3.0
    ),
    "rds-multi-az-in-production": lambda e: _edited(e, "orthanc-index", multiAz=False),
    "ec2-imdsv2-required": lambda e: _edited(e, "orthanc-host-template", metadataOptions={}),
    "ec2-no-key-pair": lambda e: _edited(e, "orthanc-host-template", keyName="ops"),
    "client-vpn-endpoint-hardened": lambda e: _edited(e, "client-vpn-endpoint", splitTunnel=False),
    "client-vpn-no-world-authorization": lambda e: _edited(
        e, "client-vpn-authorize-10.50.0.2-32", targetNetworkCidr="0.0.0.0/0"
    ),
    "site-to-site-vpn-hardened": lambda e: _edited(
        e, "network-vpn-main-campus", tunnel1IkeVersions=["ikev1", "ikev2"]
    ),
    "vpc-flow-logs": lambda e: _without(e, "network-flow-log"),
    "s3-bucket-safeguards": lambda e: _without(e, "orthanc-storage-access-logs-versioning"),
    "rds-tls-forced": lambda e: _edited(
        e, "orthanc-index-parameters", parameters=[{"name": "rds.force_ssl", "value": "0"}]
    ),
    "ec2-no-public-ip-on-private-placement": lambda e: _edited(
        e, "network-private-0", mapPublicIpOnLaunch=True
    ),
    "dicom-security-groups-on-dicom-endpoints": lambda e: _edited(
        e, "orthanc-nlb-internal", internal=False
    ),
    "default-security-group-no-added-rules": lambda e: _added(
        e,
        dataclasses.replace(
            _rule(e, "seed", securityGroupId="sg-default"),
            options=dataclasses.replace(
                _rule(e, "seed").options,
                property_dependencies={
                    "securityGroupId": (
                        next(r.urn for r in e.resources if r.name == "network-default-sg"),
                    )
                },
            ),
        ),
    ),
    "client-vpn-logs-declared": lambda e: _edited(
        e,
        "client-vpn-endpoint",
        connectionLogOptions={"enabled": True, "cloudwatchLogGroup": "/elsewhere"},
    ),
    "tags-present": lambda e: _edited(e, "network-vpc", tags={}),
    "log-retention-one-year-in-production": lambda e: _edited(
        e, "orthanc-logs", retentionInDays=90.0
    ),
}


def test_every_policy_has_a_seeded_violation():
    assert set(SEEDS) == {p.name for p in POLICIES}


@pytest.mark.parametrize("policy", sorted(SEEDS))
def test_each_seeded_violation_is_caught_through_the_engine_path(pack, stacks, policy):
    config, evaluation = stacks["max"]
    pack.configure(config)
    findings = pack.run(SEEDS[policy](evaluation), "update")
    assert {f.policy for f in findings} == {policy}, [f.message for f in findings]
    level = "advisory" if policy in ADVISORY else "mandatory"
    assert all(f.level == level for f in findings)


def test_a_finding_carries_the_rule_and_the_resource(pack, stacks):
    config, evaluation = stacks["max"]
    pack.configure(config)
    (finding,) = pack.run(SEEDS["rds-not-public"](evaluation), "update")
    assert finding.urn.endswith("::orthanc-index")
    assert "FSBP RDS.2" in finding.message
    assert "publiclyAccessible=false" in finding.message


def test_preview_blanks_what_other_resources_compute(stacks):
    _, evaluation = stacks["max"]
    from tests.harness.policy_pack import preview_inputs

    by_urn = {r.urn: r for r in evaluation.resources}
    rule = next(r for r in evaluation.resources if r.name == "orthanc-dicom-tls-from-lb-public")
    inputs = preview_inputs(rule, by_urn)
    assert inputs["securityGroupId"] == UNKNOWN
    assert inputs["referencedSecurityGroupId"] == UNKNOWN
    assert inputs["fromPort"] == 11112.0  # declared, not computed


def test_the_readme_lists_every_policy():
    readme = (STACKS_DIR.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Guardrails as code", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([a-z0-9-]+)` \|", section, flags=re.MULTILINE))
    assert listed == {p.name for p in POLICIES}
