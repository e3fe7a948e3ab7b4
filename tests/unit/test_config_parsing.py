"""Reading the configuration: stack files as the Pulumi CLI reads them, and refusals that read
like the rest whatever the input (issue 9, items 21 and 22)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orthgate.components.config import ConfigError, load_settings, parse_settings
from orthgate.stack_file import StackFileError, read_stack_config
from tests.harness.pulumi_run import (
    STACKS_DIR,
    cli_config,
    evaluate,
    read_stack_file,
    shipped_stacks,
)
from tests.harness.user_data import deployed_orthanc_config

# --- item 21: the stack file means what it means to `pulumi up` -----------------------------

# What the program receives for `orthgate:x: <text>`, as observed with gopkg.in/yaml.v3 3.0.1
# (the version the Pulumi CLI builds with) through the CLI's decode, re-encode, decode and
# JSON steps, with the local time zone UTC.
AS_THE_CLI_READS = [
    ("NO", "NO"),
    ("no", "no"),
    ("yes", "yes"),
    ("on", "on"),
    ("off", "off"),
    ("y", "y"),
    ("True", True),
    ("FALSE", False),
    ("tRUE", "tRUE"),
    ("null", None),
    ("~", None),
    ("", None),
    ("2026-12-01", "2026-12-01 00:00:00 +0000 UTC"),
    ("2026-12-01T10:00:00Z", "2026-12-01 10:00:00 +0000 UTC"),
    ("2026-12-01 10:00:00.5", "2026-12-01 10:00:00.5 +0000 UTC"),
    ("2026-12-01t10:00:00+02:00", "2026-12-01 10:00:00 +0200 +0200"),
    ("2026-02-30", "2026-02-30"),
    ("0755", 493),
    ("09", 9),
    ("0o17", 15),
    ("0x1F", 31),
    ("0b101", 5),
    ("1_000", 1000),
    ("1:20", "1:20"),
    ("+12", 12),
    ("1e3", 1000),
    ("2.0", 2),
    ("1.5", 1.5),
    (".5", 0.5),
    ("1e999", "1e999"),
    ("9223372036854775807", 9223372036854775807),
    ("18446744073709551616", 18446744073709552000),
    ("'NO'", "NO"),
    ("!!str 0755", "0755"),
    ("!!binary aGVsbG8=", "hello"),
    ("[NO, 0755, 2026-12-01]", ["NO", 493, "2026-12-01 00:00:00 +0000 UTC"]),
    ("{enabled: NO, 1:20: x}", {"1:20": "x", "enabled": "NO"}),
]


def stack_text(value_text: str) -> str:
    return f"config:\n  aws:region: eu-central-1\n  orthgate:x: {value_text}\n"


def read_value(tmp_path: Path, value_text: str) -> Any:
    path = tmp_path / "Pulumi.test.yaml"
    path.write_text(stack_text(value_text))
    return read_stack_file(path)["orthgate:x"]


@pytest.mark.parametrize(("text", "expected"), AS_THE_CLI_READS, ids=lambda v: repr(v))
def test_the_harness_reads_a_stack_file_as_the_pulumi_cli_does(tmp_path, text, expected):
    value = read_value(tmp_path, text)
    assert value == expected
    assert type(value) is type(expected)
    # And the program then gets what the CLI hands it (objects as JSON).
    handed = cli_config({"orthgate:x": value})["orthgate:x"]
    assert handed == expected if isinstance(expected, str) else json.loads(handed) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{a: 1, a: 2}", "already defined"),
        ("{a: 1, 'a': 2}", "already defined"),
        ("{1: a}", "string keys"),
        ("{true: a}", "string keys"),
        (".nan", "unsupported value"),
        ("[.inf]", "unsupported value"),
        ("9223372036854775808", "64-bit"),
        ("!!int abc", "cannot decode"),
    ],
)
def test_what_the_cli_cannot_load_is_not_loaded_either(tmp_path, text, why):
    with pytest.raises(StackFileError, match=why):
        read_value(tmp_path, text)


def test_bare_keys_take_the_project_namespace_as_the_cli_gives_them():
    config = read_stack_config("config:\n  environment: dev\n  aws:region: eu-central-1\n")
    assert config == {"orthgate:environment": "dev", "aws:region": "eu-central-1"}


def test_a_stack_file_with_a_yaml_11_word_and_a_date_deploys_what_pulumi_up_would(tmp_path):
    # PyYAML read `aeTitle: NO` as false (refused as not a string) and the banner as a date
    # (the harness then crashed with TypeError); the CLI passes both as strings.
    dev = (STACKS_DIR / "Pulumi.dev.yaml").read_text()
    text = dev.replace("aeTitle: ORTHGATE_TEST", "aeTitle: NO") + (
        "  orthgate:clientVpn:\n"
        "    enabled: true\n"
        "    clientCidr: 192.168.0.0/22\n"
        "    workstations: [reading-room-1]\n"
        "    loginBanner: 2026-12-01\n"
    )
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(text)
    evaluation = evaluate(read_stack_file(path), stack="dev")
    endpoint = evaluation.one("aws:ec2clientvpn/endpoint:Endpoint")
    banner = endpoint.inputs["clientLoginBannerOptions"]["bannerText"]
    assert banner == "2026-12-01 00:00:00 +0000 UTC"
    modalities = deployed_orthanc_config(evaluation)["DicomModalities"]
    assert modalities["test-modality"]["AET"] == "NO"


@pytest.mark.parametrize("path", shipped_stacks(), ids=lambda p: p.name)
def test_the_shipped_stacks_mean_the_same_to_pyyaml_and_to_the_cli(path):
    # Nothing in them depends on which YAML reader reads them: no yes/no/on/off, no dates,
    # no 0755, no 1:20.
    pyyaml = yaml.safe_load(path.read_text())["config"]
    assert read_stack_file(path) == pyyaml


BOOLEAN_FIELDS = [
    ({"clientVpn": {"enabled": "VALUE"}}, "orthgate:clientVpn.enabled"),
    (
        {
            "network": {
                "vpcCidr": "10.40.0.0/16",
                "siteToSiteVpns": [
                    {
                        "name": "site-a",
                        "customerGatewayIp": "203.0.113.10",
                        "onPremCidrs": ["172.20.0.0/16"],
                        "staticRoutesOnly": "VALUE",
                    }
                ],
            }
        },
        "orthgate:network.siteToSiteVpns[0].staticRoutesOnly",
    ),
]


def with_boolean(template: dict, value: Any) -> dict:
    raw = {"environment": "dev", "network": {"vpcCidr": "10.40.0.0/16"}}
    text = json.dumps(template).replace('"VALUE"', json.dumps(value))
    raw.update(json.loads(text))
    return raw


@pytest.mark.parametrize(("template", "path"), BOOLEAN_FIELDS, ids=["enabled", "staticRoutes"])
@pytest.mark.parametrize("word", ["NO", "no", "yes", "Yes", "on", "OFF", "y", "n", "True"])
def test_a_yaml_11_boolean_word_where_a_boolean_belongs_is_refused_with_a_hint(
    template, path, word
):
    with pytest.raises(ConfigError) as caught:
        parse_settings(with_boolean(template, word))
    problems = {p.path: p for p in caught.value.problems}
    assert path in problems, problems
    assert "write true or false" in problems[path].rule
    assert problems[path].value == word


@pytest.mark.parametrize(("template", "path"), BOOLEAN_FIELDS, ids=["enabled", "staticRoutes"])
@pytest.mark.parametrize("value", [1, 0, "1", "0", None, [], "enabled"])
def test_nothing_but_true_or_false_is_a_boolean(template, path, value):
    with pytest.raises(ConfigError) as caught:
        parse_settings(with_boolean(template, value))
    assert "must be true or false" in {p.path: p.rule for p in caught.value.problems}[path]


@pytest.mark.parametrize(("given", "meant"), [(True, True), (False, False), ("false", False)])
def test_true_and_false_are_booleans(given, meant):
    raw = with_boolean(BOOLEAN_FIELDS[1][0], given)
    vpn = parse_settings(raw).network.site_to_site_vpns[0]
    assert vpn.static_routes_only is meant


def test_enabled_no_in_a_stack_file_is_refused_not_read_as_false(tmp_path):
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(
        (STACKS_DIR / "Pulumi.dev.yaml").read_text() + "  orthgate:clientVpn:\n    enabled: NO\n"
    )
    raw = {k.removeprefix("orthgate:"): v for k, v in read_stack_file(path).items()}
    raw.pop("aws:region")
    with pytest.raises(ConfigError) as caught:
        parse_settings(raw)
    assert "write true or false" in str(caught.value)
    assert "orthgate:clientVpn.enabled" in str(caught.value)


# --- item 22: refusals read like refusals --------------------------------------------------

BASE = {"environment": "dev", "network": {"vpcCidr": "10.40.0.0/16"}}
PYTHON_WORDING = (
    "Python",
    "int()",
    "Traceback",
    "recursion",
    "literal",
    "pydantic",
    "Input should",
)
# "  - orthgate:<path>[ = <value>]: <rule>"
PROBLEM_LINE = re.compile(r"  - orthgate:[A-Za-z][^\s=]*( = .+)?: \S.*")


def assert_reads_like_a_refusal(error: BaseException) -> None:
    assert isinstance(error, ConfigError), f"{type(error).__name__}: {str(error)[:300]}"
    lines = str(error).splitlines()
    assert lines[0].startswith("the stack configuration has ")
    assert lines[-1].startswith("Fix them in stacks/Pulumi.<stack>.yaml")
    assert lines[1:-1], "a refusal lists its problems"
    for line in lines[1:-1]:
        assert PROBLEM_LINE.fullmatch(line), line
        for words in PYTHON_WORDING:
            assert words not in line, line


def refusal(raw: dict) -> ConfigError:
    try:
        parse_settings(raw)
    except Exception as error:
        assert_reads_like_a_refusal(error)
        return error
    raise AssertionError("accepted")


def with_network(**network) -> dict:
    raw = copy.deepcopy(BASE)
    raw["network"].update(network)
    return raw


def nested(depth: int, leaf: Any = "x") -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "cidr", ["10.40.0.0/²", "10.40.0.0/١٦", "10.40.0.0/" + "1" * 5000, "10.40.0.0/016x"]
)
def test_a_prefix_that_is_not_ascii_digits_is_refused_as_a_cidr(cidr):
    error = refusal(with_network(vpcCidr=cidr))
    assert [p.path for p in error.problems] == ["orthgate:network.vpcCidr"]
    assert "prefix" in error.problems[0].rule


@pytest.mark.parametrize(
    "change",
    [
        {"vpcCidr": 10**5000},
        {"availabilityZones": 10**5000},
        {"availabilityZones": "9" * 5000},
        {"availabilityZones": -(10**400)},
    ],
    ids=["cidr-huge-int", "zones-huge-int", "zones-huge-digits", "zones-negative"],
)
def test_numbers_of_thousands_of_digits_are_refused_like_any_other_number(change):
    refusal(with_network(**change))


@pytest.mark.parametrize(
    "raw",
    [
        {**BASE, "orthanc": {"siteName": nested(5000)}},
        {**BASE, "unknownKey": nested(5000)},
        {**BASE, "dicomProxies": nested(5000, {})},
        {**BASE, "orthanc": {"modalities": [{"name": nested(3000), "aeTitle": "X"}]}},
    ],
    ids=["string-field", "unknown-key", "list-field", "inside-a-list"],
)
def test_values_nested_thousands_deep_are_refused(raw):
    refusal(raw)


def test_pydantic_wording_is_the_project_wording():
    assert "must be an object (key: value pairs)" in str(refusal({**BASE, "network": "x"}))
    assert "must be a list" in str(refusal({**BASE, "dicomProxies": {}}))
    proxy = {"name": "a", "sourceCidrs": [], "aeTitle": "X"}
    assert "must have at least 1 entry" in str(refusal({**BASE, "dicomProxies": [proxy]}))
    assert "must be a whole number" in str(refusal(with_network(availabilityZones="٢")))


def loaded(config: dict[str, str]) -> BaseException | None:
    """What ``load_settings`` raises for the config the CLI passed (None: accepted)."""
    pulumi.runtime.set_all_config(config)
    try:
        load_settings()
    except Exception as error:
        return error
    finally:
        pulumi.runtime.set_all_config({})
    return None


def load_with(config: dict[str, str]) -> BaseException:
    error = loaded(config)
    assert error is not None, "accepted"
    return error


@pytest.mark.parametrize(
    ("network_json", "rule"),
    [
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
        ('{"vpcCidr": ' + "1" * 5000 + "}", "cannot be read"),
        ('"10.40.0.0/16"', "must be an object"),
        ("{vpc", "not a valid object"),
    ],
    ids=["deep", "huge-number", "a-string", "not-json"],
)
def test_load_settings_refuses_what_the_sdk_cannot_decode(network_json, rule):
    error = load_with({"orthgate:environment": "dev", "orthgate:network": network_json})
    assert_reads_like_a_refusal(error)
    assert rule in {p.path: p.rule for p in error.problems}["orthgate:network"]


# A fuzz run over mutated shipped stacks: every refusal is a ConfigError whose lines all read
# like the others. Small and derandomised, so it runs in a few seconds and the same each time.

SHIPPED = [
    {k.removeprefix("orthgate:"): v for k, v in read_stack_file(p).items() if k != "aws:region"}
    for p in shipped_stacks()
]
# And one with every section set, so that every section's keys get mutated.
RICH = copy.deepcopy(next(s for s in SHIPPED if s["environment"] == "prd"))
RICH["orthanc"].update(
    amiId="ami-0123456789abcdef0",
    fleet={"minSize": 2, "maxSize": 4, "targetCpuPercent": 60},
    webAllowedCidrs=["203.0.113.0/28"],
)
RICH["clientVpn"] = {
    "enabled": True,
    "clientCidr": "192.168.0.0/22",
    "workstations": ["reading-room-1"],
    "loginBanner": "Authorised staff only.",
    "extraAuthorizedCidrs": ["172.20.0.0/24"],
}
RICH["dicomProxies"][0]["modalities"] = [{"name": "ct-1", "aeTitle": "CT_1"}]
RICH["alarms"] = {"emails": ["pacs-team@example.org"]}
NASTY_STRINGS = [
    "", " ", "²", "١٢", "NO", "yes", "on", "-1", "0", "1e999", "nan", "x" * 300, "9" * 5000,
    "10.0.0.0/²", "10.0.0.0/" + "1" * 5000, "169.254.169.254", "0.0.0.0/0", "PACS$1", "-h",
    "ßtraße", "a\x00b", "\u202e", "2026-12-01 00:00:00 +0000 UTC", "{", "[", "null",
]  # fmt: skip
NASTY = st.one_of(
    st.sampled_from(NASTY_STRINGS),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([10**5000, -(10**5000), 2**63, 2**64]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.sampled_from([[], {}, [[]], {"": None}, nested(3000), {"a": nested(50, {})}]),
    st.text(max_size=12),
)


def paths(value: Any, at: tuple = ()) -> list[tuple]:
    """Every location in a decoded configuration, containers included."""
    found = [at]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*at, index))
    return found


def mutated(raw: dict, at: tuple, action: str, value: Any) -> dict:
    result = copy.deepcopy(raw)
    if not at:
        result["extraKey"] = value
        return result
    parent = result
    for part in at[:-1]:
        parent = parent[part]
    last = at[-1]
    if action == "replace":
        parent[last] = value
    elif action == "delete":
        del parent[last]
    elif action == "wrap":
        parent[last] = [parent[last]]
    elif isinstance(parent[last], dict):  # "add": an extra key where keys are
        parent[last]["extraKey"] = value
    elif isinstance(parent[last], list):
        parent[last].append(value)
    else:
        parent[last] = value
    return result


def test_the_richest_configuration_the_fuzz_mutates_is_valid():
    parse_settings(RICH)


@settings(
    max_examples=500,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_fuzz_every_refusal_of_a_mutated_shipped_stack_reads_like_a_refusal(data):
    raw = data.draw(st.sampled_from([*SHIPPED, RICH]), label="stack")
    at = data.draw(st.sampled_from(paths(raw)), label="at")
    action = data.draw(st.sampled_from(["replace", "delete", "wrap", "add"]), label="action")
    value = data.draw(NASTY, label="value")
    config = mutated(raw, at, action, value)
    try:
        parse_settings(config)
    except Exception as error:
        assert_reads_like_a_refusal(error)
    # And through the SDK, as `pulumi up` passes it, when JSON can carry the value at all.
    try:
        passed = cli_config({f"orthgate:{key}": item for key, item in config.items()})
    except (ValueError, RecursionError):
        return
    error = loaded(passed)
    if error is not None:
        assert_reads_like_a_refusal(error)
