"""The pack's configuration: its JSON schemas, defaults, and the parsed settings.

Pulumi keys policy configuration by policy name (`--policy-pack-config` file, or the
Pulumi Cloud console), so each policy declares only the properties it reads; the shared
schemas below keep one spelling and one default for each.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy import PolicyConfigSchema

from orthgate_policy.ranges import PRIVATE_RANGES, Network, parse
from orthgate_policy.values import UNKNOWNS, UnknownValueError, plain

# 104: the DICOM port IANA registered first; 2762: IANA's dicom-tls; 4242: Orthanc's default
# DICOM port; 11112: IANA's "dicom" port, and orthgate's default DICOM TLS port.
DEFAULT_DICOM_PORTS = (104, 2762, 4242, 11112)
DEFAULT_DICOM_TLS_PORT = 11112
DEFAULT_ENVIRONMENT_TAG_KEYS = ("orthgate:environment", "environment")
DEFAULT_PRODUCTION_ENVIRONMENTS = ("prd", "prod", "production")
# The widest Internet range allowed on the TLS port: orthgate itself refuses wider than /8.
DEFAULT_WIDEST_TLS_PREFIX_IPV4 = 8
DEFAULT_WIDEST_TLS_PREFIX_IPV6 = 32

_PORT = {"type": "integer", "minimum": 1, "maximum": 65535}

DICOM_PROPERTIES: dict[str, dict[str, Any]] = {
    "dicomPorts": {
        "type": "array",
        "items": _PORT,
        "default": list(DEFAULT_DICOM_PORTS),
        "description": "Ports that carry DICOM. The TLS port is added to them.",
    },
    "dicomTlsPort": {
        **_PORT,
        "default": DEFAULT_DICOM_TLS_PORT,
        "description": "The stack's DICOM TLS port (orthgate:orthanc.dicomTlsPort): the "
        "only DICOM port that may be open to Internet-routable sources.",
    },
    "privateCidrs": {
        "type": "array",
        "items": {"type": "string"},
        "default": [],
        "description": "Ranges besides RFC 1918 and fc00::/7 that reach the VPC only over "
        "a private path (site-to-site VPN, Direct Connect), e.g. a hospital's own "
        "public block routed through the tunnel.",
    },
    "allowedPrefixListIds": {
        "type": "array",
        "items": {"type": "string"},
        "default": [],
        "description": "Managed prefix lists whose entries you have checked: the pack "
        "cannot see their entries, so any other prefix list on a DICOM port is refused.",
    },
    "widestTlsPrefixIpv4": {
        "type": "integer",
        "minimum": 1,
        "maximum": 32,
        "default": DEFAULT_WIDEST_TLS_PREFIX_IPV4,
        "description": "The shortest IPv4 prefix allowed on the TLS port (/8 by default).",
    },
    "widestTlsPrefixIpv6": {
        "type": "integer",
        "minimum": 1,
        "maximum": 128,
        "default": DEFAULT_WIDEST_TLS_PREFIX_IPV6,
        "description": "The shortest IPv6 prefix allowed on the TLS port (/32 by default).",
    },
}

ENVIRONMENT_PROPERTIES: dict[str, dict[str, Any]] = {
    "production": {
        "type": ["boolean", "null"],
        "default": None,
        "description": "Whether the stack is production. Unset: read from the resource's "
        "environment tag, then the stack's tags; with neither, production.",
    },
    "environmentTagKeys": {
        "type": "array",
        "items": {"type": "string"},
        "default": list(DEFAULT_ENVIRONMENT_TAG_KEYS),
        "description": "Tag keys that name the environment, first found wins.",
    },
    "productionEnvironments": {
        "type": "array",
        "items": {"type": "string"},
        "default": list(DEFAULT_PRODUCTION_ENVIRONMENTS),
        "description": "Environment tag values that mean production (case-insensitive).",
    },
}

TAG_PROPERTIES: dict[str, dict[str, Any]] = {
    "environmentTagKeys": ENVIRONMENT_PROPERTIES["environmentTagKeys"],
    "requiredTags": {
        "type": "array",
        "items": {"type": "string"},
        "default": ["orthgate:stack"],
        "description": "Tag keys every taggable resource carries, besides an environment tag.",
    },
}

RDS_TLS_PROPERTIES: dict[str, dict[str, Any]] = {
    "trustedParameterGroups": {
        "type": "array",
        "items": {"type": "string"},
        "default": [],
        "description": "Parameter groups managed outside the stack that you have checked "
        "force TLS.",
    },
}


def schema(properties: dict[str, dict[str, Any]]) -> PolicyConfigSchema:
    return PolicyConfigSchema(properties=properties)


def _value(config: Mapping[str, Any], properties: dict[str, dict[str, Any]], key: str) -> Any:
    value = config.get(key)
    return properties[key]["default"] if value is None else value


@dataclass(frozen=True)
class DicomSettings:
    ports: frozenset[int]
    tls_port: int
    private_ranges: tuple[Network, ...]
    allowed_prefix_lists: frozenset[str]
    widest_tls_prefix: dict[int, int]

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DicomSettings:
        (tls_port,) = _ports([_value(config, DICOM_PROPERTIES, "dicomTlsPort")], "dicomTlsPort")
        ports = {*_ports(_value(config, DICOM_PROPERTIES, "dicomPorts"), "dicomPorts"), tls_port}
        extra = tuple(parse(c) for c in _strings(config, DICOM_PROPERTIES, "privateCidrs"))
        return cls(
            ports=frozenset(ports),
            tls_port=tls_port,
            private_ranges=PRIVATE_RANGES + extra,
            allowed_prefix_lists=frozenset(
                _strings(config, DICOM_PROPERTIES, "allowedPrefixListIds")
            ),
            widest_tls_prefix={
                4: int(_value(config, DICOM_PROPERTIES, "widestTlsPrefixIpv4")),
                6: int(_value(config, DICOM_PROPERTIES, "widestTlsPrefixIpv6")),
            },
        )

    def plaintext_ports(self) -> frozenset[int]:
        return self.ports - {self.tls_port}


def tag_map(tags: Any) -> dict[str, str]:
    """Tags as a dict, from a map (most resources) or a key/value list (auto scaling)."""
    if isinstance(tags, Mapping):
        return {str(k): str(v) for k, v in tags.items()}
    if isinstance(tags, list):
        return {
            str(t.get("key")): str(t.get("value"))
            for t in tags
            if isinstance(t, Mapping) and "key" in t
        }
    return {}


def is_production(
    config: Mapping[str, Any], tags: Mapping[str, str], stack_tags: Mapping[str, str]
) -> bool:
    """Production unless the configuration, the resource's tags or the stack's tags say
    otherwise: an untagged stack gets the strict rules."""
    explicit = config.get("production")
    if isinstance(explicit, bool):
        return explicit
    keys = environment_keys(config)
    production = {
        v.strip().lower()
        for v in _strings(config, ENVIRONMENT_PROPERTIES, "productionEnvironments")
    }
    for source in (tags, stack_tags):
        for key in keys:
            value = source.get(key)
            if isinstance(value, str) and value in UNKNOWNS:
                raise UnknownValueError(value, ["tags", key])  # judged at update
            if value is not None and str(value).strip():
                return str(value).strip().lower() in production
    return True


def environment_keys(config: Mapping[str, Any]) -> list[str]:
    return _strings(config, ENVIRONMENT_PROPERTIES, "environmentTagKeys")


def required_tags(config: Mapping[str, Any]) -> list[str]:
    return _strings(config, TAG_PROPERTIES, "requiredTags")


def trusted_parameter_groups(config: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(_strings(config, RDS_TLS_PROPERTIES, "trustedParameterGroups"))


def _strings(
    config: Mapping[str, Any], properties: dict[str, dict[str, Any]], key: str
) -> list[str]:
    """A list-of-strings setting; anything else is refused (a finding), never iterated
    character by character."""
    value = _value(config, properties, key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"the pack's setting {key} must be a list of strings, not {value!r}")
    return value


def _ports(value: Any, key: str) -> list[int]:
    if not isinstance(value, list) or not all(_is_port(v) for v in value):
        raise ValueError(f"the pack's setting {key} must be a list of ports, not {value!r}")
    return [int(v) for v in value]


def _is_port(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and float(value).is_integer()
        and 1 <= value <= 65535
    )


def provider_default_tags(provider: Any) -> dict[str, str]:
    """Tags the AWS provider adds to every resource (its `defaultTags` setting)."""
    if provider is None:
        return {}
    value = plain(provider.props).get("defaultTags")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    if isinstance(value, Mapping):
        return tag_map(value.get("tags"))
    return {}


def resource_tags(props: Mapping[str, Any], args: Any) -> dict[str, str]:
    """The resource's tags over its provider's default tags, as AWS will apply them."""
    return {**provider_default_tags(args.provider), **tag_map(props.get("tags"))}
