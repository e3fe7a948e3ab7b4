"""Call the pack's policies the way its analyzer server does: properties through the SDK's
deserializer and unknown-checking proxy, findings through a report callback."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from orthgate_policy import POLICIES

BY_NAME = {p.name: p for p in POLICIES}
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def _options() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)


def _props(props: Mapping[str, Any]) -> Any:
    return unknown_checking_proxy(deserialize_properties(dict(props)))


def check(
    policy: str,
    resource_type: str,
    props: Mapping[str, Any],
    config: Mapping[str, Any] | None = None,
    stack_tags: Mapping[str, str] | None = None,
    provider: Mapping[str, Any] | None = None,
) -> list[str]:
    """The messages ``policy`` reports on one resource (``provider``: the AWS provider's
    properties, e.g. its defaultTags)."""
    found, postponed = check_preview(policy, resource_type, props, config, stack_tags, provider)
    if postponed is not None:
        raise postponed
    return found


def check_preview(
    policy: str,
    resource_type: str,
    props: Mapping[str, Any],
    config: Mapping[str, Any] | None = None,
    stack_tags: Mapping[str, str] | None = None,
    provider: Mapping[str, Any] | None = None,
) -> tuple[list[str], UnknownValueError | None]:
    """The messages reported, and the UnknownValueError that postponed the rest (the SDK
    keeps the first and reports the second as "can't run during preview")."""
    chosen = BY_NAME[policy]
    assert isinstance(chosen, ResourceValidationPolicy)
    found: list[str] = []
    args = ResourceValidationArgs(
        resource_type,
        _props(props),
        f"urn:pulumi:test::p::{resource_type}::r",
        "r",
        _options(),
        None
        if provider is None
        else PolicyProviderResource("pulumi:providers:aws", _props(provider), "urn:p", "aws"),
        dict(config or {}),
        dict(stack_tags or {}),
    )
    try:
        chosen.validate(args, lambda message, urn=None: found.append(message))
    except UnknownValueError as error:
        return found, error
    return found, None


class StackBuilder:
    """Resources for a stack policy, linked by property dependencies as the engine links
    them."""

    def __init__(self) -> None:
        self.resources: dict[str, PolicyResource] = {}

    def add(
        self, name: str, resource_type: str, props: Mapping[str, Any], **links: str | list[str]
    ) -> str:
        urn = f"urn:pulumi:test::p::{resource_type}::{name}"
        deps = {}
        for prop, targets in links.items():
            names = [targets] if isinstance(targets, str) else targets
            deps[prop] = [self.resources[self.urn(n)] for n in names]
        self.resources[urn] = PolicyResource(
            resource_type, _props(props), urn, name, _options(), None, None, [], deps
        )
        return urn

    def urn(self, name: str) -> str:
        return next(u for u in self.resources if u.endswith(f"::{name}"))

    def check(self, policy: str, config: Mapping[str, Any] | None = None) -> list[str]:
        chosen = BY_NAME[policy]
        assert isinstance(chosen, StackValidationPolicy)
        found: list[str] = []
        args = StackValidationArgs(list(self.resources.values()), dict(config or {}))
        chosen.validate(args, lambda message, urn=None: found.append(message))
        return found
