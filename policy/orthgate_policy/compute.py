"""EC2 hosts: IMDSv2 only, no SSH key pair."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from orthgate_policy.base import resource_policy
from orthgate_policy.encryption import HOST_TYPES, INSTANCE
from orthgate_policy.values import dig, is_unknown


def check_imdsv2(
    resource_type: str, props: Mapping[str, Any], args: ResourceValidationArgs
) -> Iterator[str]:
    if (
        resource_type == INSTANCE
        and props.get("launchTemplate")
        and not props.get("metadataOptions")
    ):
        return  # the launch template's metadata options apply; that template is checked
    tokens = dig(props, "metadataOptions.httpTokens")
    if is_unknown(tokens) or tokens == "required":
        return
    if dig(props, "metadataOptions.httpEndpoint") == "disabled":
        return  # no metadata service at all
    shown = "unset (optional)" if tokens is None else repr(tokens)
    yield (
        f"metadataOptions.httpTokens is {shown}: IMDSv1 lets a forged request from the "
        "host read the role's credentials; set httpTokens='required'"
    )


def check_key_pair(
    resource_type: str, props: Mapping[str, Any], args: ResourceValidationArgs
) -> Iterator[str]:
    key = props.get("keyName")
    if key:
        shown = "a key pair (named at update)" if is_unknown(key) else f"the SSH key pair {key!r}"
        yield (
            f"the host gets {shown}; orthgate's hosts are reached only through SSM "
            "Session Manager, so no key may exist to leak"
        )


IMDSV2 = resource_policy(
    "ec2-imdsv2-required",
    "EC2 instances and launch templates require IMDSv2. From: FSBP EC2.8, EC2.170.",
    HOST_TYPES,
    check_imdsv2,
    remediation="Set metadataOptions.httpTokens='required' (hop limit 2 if containers "
    "need the role).",
)

NO_KEY_PAIR = resource_policy(
    "ec2-no-key-pair",
    "EC2 instances and launch templates name no SSH key pair. From: orthgate README "
    "(hosts are reached through SSM Session Manager), NIST 800-53 AC-17.",
    HOST_TYPES,
    check_key_pair,
    remediation="Remove keyName; use `aws ssm start-session`.",
)

POLICIES = [IMDSV2, NO_KEY_PAIR]
