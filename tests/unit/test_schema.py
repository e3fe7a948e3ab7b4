"""The JSON Schema of a stack file (orthgate/schema.py) against the model it is generated from.

The schema must never refuse what the model accepts, and must refuse a key's shape where the
model does, at the same key. Rules between keys are the model's alone: the cross-key corpus
shows the boundary. Only the model is run here (no evaluation): it is what refuses.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from jsonschema.exceptions import ValidationError

from orthgate import schema
from orthgate.components.config import ConfigError
from orthgate.stack_file import load_go_yaml, read_stack_config
from orthgate.validation import validate_config
from tests.harness.pulumi_run import PROJECT_ROOT, shipped_stacks

CORPUS = PROJECT_ROOT / "tests" / "fixtures" / "invalid-stacks"
VALIDATOR = jsonschema.Draft7Validator(schema.stack_file_schema())


def schema_paths(document: Any) -> set[str]:
    """Each schema error of a stack file as the key path the model's refusals name."""
    return {
        _key_path(located)
        for error in VALIDATOR.iter_errors(document)
        for located in _refusals(error)
    }


def _refusals(error: ValidationError) -> list[list[str | int]]:
    """Where an error is, looking through anyOf into the branch the value was meant for:
    the one whose type matched (it has no type error at the value itself), else the one
    with the deepest error."""
    if not error.context:
        return [_located(error)]
    branches: dict[Any, list[ValidationError]] = {}
    for child in error.context:
        branches.setdefault(child.relative_schema_path[0], []).append(child)

    def fit(children: list[ValidationError]) -> tuple[bool, int]:
        mistyped = any(
            c.validator == "type" and len(c.absolute_path) == len(error.absolute_path)
            for c in children
        )
        return not mistyped, max(len(c.absolute_path) for c in children)

    best = max(branches.values(), key=fit)
    return [located for child in best for located in _refusals(child)]


def model_paths(document: Any) -> set[str]:
    config = read_stack_config(json.dumps(document))  # JSON is YAML: read as the CLI does
    with pytest.raises(ConfigError) as refused:
        validate_config(config)
    return {problem.path for problem in refused.value.problems}


def _located(error: ValidationError) -> list[str | int]:
    path = list(error.absolute_path)
    if error.validator == "required":
        path.append(re.search(r"'(.+)' is a required property", error.message)[1])
    elif error.validator == "additionalProperties":
        known = error.schema.get("properties", {})
        patterns = error.schema.get("patternProperties", {})
        unknown = [
            key
            for key in error.instance
            if key not in known and not any(re.search(p, key) for p in patterns)
        ]
        path.append(unknown[0])
    return path


def _key_path(path: list[str | int]) -> str:
    assert path[0] == "config", path
    key = str(path[1]).removeprefix("orthgate:").removeprefix("config:")
    text = f"orthgate:{key}"
    for part in path[2:]:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def corpus(prefix: str) -> list[Path]:
    files = sorted(CORPUS.glob("*.yaml"))
    return [f for f in files if f.read_text().startswith(prefix)]


def expected_paths(path: Path) -> set[str]:
    first = path.read_text().splitlines()[0]
    return {p.strip() for p in first.split(":", 1)[1].split(", ")}


def document_of(path: Path) -> Any:
    return load_go_yaml(path.read_text())


def test_the_committed_schema_is_the_generated_one():
    committed = (PROJECT_ROOT / schema.SCHEMA_FILE).read_text(encoding="utf-8")
    assert committed == schema.schema_text(), "run `orthgate schema` and commit the file"
    jsonschema.Draft7Validator.check_schema(json.loads(committed))


def test_the_shipped_stacks_name_the_schema_and_pass_both():
    for path in shipped_stacks():
        assert path.read_text().splitlines()[0] == schema.MODELINE, path
        assert schema_paths(document_of(path)) == set(), path
        validate_config(read_stack_config(path.read_text()))


@pytest.mark.parametrize("path", corpus("# refused at:"), ids=lambda p: p.stem)
def test_both_refuse_a_wrong_shape_at_the_same_key(path):
    document = document_of(path)
    expected = expected_paths(path)
    assert model_paths(document) == expected
    assert schema_paths(document) == expected


@pytest.mark.parametrize("path", corpus("# model only:"), ids=lambda p: p.stem)
def test_a_rule_between_keys_is_the_model_s_alone(path):
    document = document_of(path)
    assert schema_paths(document) == set()
    assert model_paths(document) == expected_paths(path)


def test_the_corpus_covers_every_kind_of_refusal():
    kinds = {p.stem.split("-")[0] for p in corpus("# refused at:")}
    assert {"unknown", "wrong", "bad", "missing", "pattern", "range"} <= kinds
    assert len(corpus("# model only:")) >= 4


CLINIC_PROXY = {
    "name": "north-clinic",
    "sourceCidrs": ["198.51.100.32/29"],
    "aeTitle": "NORTH_GW",
    "listenAddress": "192.168.50.10",
    "modalities": [{"name": "us-north-1", "aeTitle": "US_NORTH_1"}],
}
# Valid configurations unlike the shipped stacks: every section, nested lists, computed
# defaults set explicitly, and the spellings the CLI and the model read besides the usual.
VALID = {
    "fleet-with-client-vpn-and-direct-connect": {
        "aws:region": "us-east-1",
        "orthgate:environment": "stg",
        "orthgate:network": {
            "vpcCidr": "10.60.0.0/16",
            "availabilityZones": 3,
            "natGateways": "single",
            "interfaceEndpoints": ["ssm", "ssmmessages", "ec2messages"],
            "directConnectGatewayId": "5f294f92-bafb-4011-916d-9b0bec0ffee0",
            "directConnectOnPremCidrs": ["172.30.0.0/16"],
            "siteToSiteVpns": [
                {
                    "name": "campus",
                    "customerGatewayIp": "203.0.113.20",
                    "bgpAsn": 4200000001,
                    "onPremCidrs": ["172.20.0.0/16"],
                    "staticRoutesOnly": True,
                }
            ],
        },
        "orthgate:orthanc": {
            "hosting": "fleet",
            "instanceCount": 3,
            "fleet": {"minSize": 2, "maxSize": 6, "targetCpuPercent": 60},
            "instanceType": "m7g.large",
            "placement": "private",
            "siteName": "pacs.example.org",
            "modalities": [
                {"name": "ct-1", "aeTitle": "CT 1", "sourceCidrs": ["172.20.10.21/32"]},
                {"name": "dx-1", "aeTitle": "DX_1", "connection": "tls"},
            ],
            "revokedCertificates": [{"sender": "dx-1", "serial": "0F:A9:BC"}],
            "amiId": "ami-0123456789abcdef0",
            "databaseStorageGib": 100,
        },
        "orthgate:clientVpn": {
            "enabled": True,
            "clientCidr": "192.168.0.0/22",
            "workstations": ["reading-room-1"],
            "associatedSubnets": 2,
            "sessionTimeoutHours": 12,
            "transportProtocol": "tcp",
            "vpnPort": 1194,
            "extraAuthorizedCidrs": ["172.20.0.0/24"],
            "loginBanner": "Authorised staff only.\nAll access is logged.",
            "revokedCertificates": [{"workstation": "old-laptop", "serial": "0x01AB"}],
        },
        "orthgate:alarms": {"emails": ["pacs-oncall@hospital.example"]},
        "orthgate:quotas": {"inboundRulesPerSecurityGroup": 120, "routesPerRouteTable": 100},
    },
    "proxy-sites-on-a-single-host": {
        "orthgate:environment": "tst",
        "orthgate:network": {"vpcCidr": "10.70.0.0/20", "privateSubnetPrefix": 24},
        "orthgate:orthanc": {
            "hosting": "singleHost",
            "amiUpdates": "follow",
            "dicomTlsPort": 2762,
            "dicomAllowedCidrs": ["203.0.113.64/28"],
            "webAllowedCidrs": ["203.0.113.80/28"],
            "image": "orthancteam/orthanc:25.12.3",
        },
        "orthgate:dicomProxies": [
            CLINIC_PROXY,
            {
                "name": "south-clinic",
                "sourceCidrs": ["198.51.100.64/29"],
                "aeTitle": "SOUTH_GW",
                "listenAddress": "10.1.2.3",
                "acceptAnyModality": True,
                "listenPort": 11113,
                "backlogWarningInstances": 500,
            },
        ],
    },
    # Bare and `orthgate:config:` keys, quoted numbers and booleans, JSON text for a
    # section, null for an optional one, other providers' keys (secrets included).
    "other-spellings": {
        "environment": "dev",
        "orthgate:config:network": {"vpcCidr": "10.40.0.0/16", "availabilityZones": "3"},
        "orthgate:orthanc": json.dumps({"dataVolumeGib": "200", "aeTitle": "0104"}),
        "orthgate:clientVpn": {"enabled": "false"},
        "orthgate:alarms": None,
        "aws:profile": "hospital",
        "aws:config:skipMetadataApiCheck": False,
        "pulumi:tags": {"team": "radiology"},
        "tls:secretThing": {"secure": "v1:c2VjcmV0"},
    },
}


@pytest.mark.parametrize("config", VALID.values(), ids=VALID.keys())
def test_the_schema_accepts_what_the_model_accepts(config):
    document = {"config": config, "secretsprovider": "passphrase", "encryptionsalt": "v1:abc"}
    validate_config(read_stack_config(json.dumps(document)))
    assert schema_paths(document) == set()


def test_every_key_the_model_knows_is_described_with_its_default():
    config = schema.stack_file_schema()["properties"]["config"]
    defs = schema.stack_file_schema()["definitions"]
    for key, ref in config["properties"].items():
        target = defs[ref["$ref"].split("/")[-1]] if "$ref" in ref else ref
        assert target.get("description"), key
    network = defs["NetworkSettings"]["properties"]
    assert network["natGateways"]["default"] == "none"
    assert (
        "Default: 2 (fleet), 1 (single host)."
        in (defs["OrthancSettings"]["properties"]["instanceCount"]["description"])
    )


def test_the_schema_text_is_stable_and_ends_with_a_newline():
    text = schema.schema_text()
    assert text == schema.schema_text()
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
