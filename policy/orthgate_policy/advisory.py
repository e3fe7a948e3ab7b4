"""Advice that does not block: tags, and log retention in production."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, ResourceValidationArgs

from orthgate_policy.base import resource_policy
from orthgate_policy.encryption import LOG_GROUP
from orthgate_policy.settings import (
    ENVIRONMENT_PROPERTIES,
    TAG_PROPERTIES,
    environment_keys,
    is_production,
    required_tags,
    resource_tags,
    schema,
)
from orthgate_policy.values import is_unknown, number

# Resource types that take tags even when a program leaves them out.
TAGGABLE = frozenset(
    {
        "aws:autoscaling/group:Group",
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:ebs/volume:Volume",
        "aws:ec2/customerGateway:CustomerGateway",
        "aws:ec2/eip:Eip",
        "aws:ec2/flowLog:FlowLog",
        "aws:ec2/instance:Instance",
        "aws:ec2/internetGateway:InternetGateway",
        "aws:ec2/launchTemplate:LaunchTemplate",
        "aws:ec2/natGateway:NatGateway",
        "aws:ec2/routeTable:RouteTable",
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/subnet:Subnet",
        "aws:ec2/vpc:Vpc",
        "aws:ec2/vpcEndpoint:VpcEndpoint",
        "aws:ec2/vpnConnection:VpnConnection",
        "aws:ec2/vpnGateway:VpnGateway",
        "aws:ec2clientvpn/endpoint:Endpoint",
        "aws:kms/key:Key",
        "aws:lb/loadBalancer:LoadBalancer",
        "aws:lb/targetGroup:TargetGroup",
        "aws:rds/instance:Instance",
        "aws:rds/cluster:Cluster",
        "aws:s3/bucket:Bucket",
        "aws:s3/bucketV2:BucketV2",
        "aws:secretsmanager/secret:Secret",
        "aws:sns/topic:Topic",
    }
)
# CloudWatch.16's default minimum retention (its minRetentionTime parameter).
MINIMUM_RETENTION_DAYS = 365


def check_tags(
    resource_type: str, props: Mapping[str, Any], args: ResourceValidationArgs
) -> Iterator[str]:
    if not resource_type.startswith("aws:") or (
        resource_type not in TAGGABLE and "tags" not in props
    ):
        return
    if is_unknown(props.get("tags")):
        return
    tags = resource_tags(props, args)
    config = args.get_config()
    keys = environment_keys(config)
    missing = [] if any(tags.get(k) for k in keys) else [" or ".join(keys)]
    missing += [k for k in required_tags(config) if not tags.get(k)]
    if missing:
        yield f"missing tag(s): {', '.join(missing)} (cost reports and incident response read them)"


def check_retention(
    resource_type: str, props: Mapping[str, Any], args: ResourceValidationArgs
) -> Iterator[str]:
    if not is_production(args.get_config(), resource_tags(props, args), args.stack_tags):
        return
    days = number(props.get("retentionInDays"), "retentionInDays")
    if days and days < MINIMUM_RETENTION_DAYS:  # 0 or unset: kept forever
        yield (
            f"the production log group keeps {days:g} days; keep at least "
            f"{MINIMUM_RETENTION_DAYS} (the record of who sent what is evidence)"
        )


TAGS = resource_policy(
    "tags-present",
    "Advisory: taggable resources carry an environment tag and orthgate:stack. From: "
    "AWS tagging best practices, NIST 800-53 CM-8 (inventory).",
    None,
    check_tags,
    enforcement=EnforcementLevel.ADVISORY,
    config_schema=schema(TAG_PROPERTIES),
    remediation="Add the tags, or set them once as the AWS provider's defaultTags.",
)

LOG_RETENTION = resource_policy(
    "log-retention-one-year-in-production",
    "Advisory: production log groups keep logs at least a year. From: Security Hub "
    "CloudWatch.16 (NIST 800-53 AU-11).",
    {LOG_GROUP},
    check_retention,
    enforcement=EnforcementLevel.ADVISORY,
    config_schema=schema(ENVIRONMENT_PROPERTIES),
    remediation="Set retentionInDays to 365 or more (or 0 to keep forever).",
)

POLICIES = [TAGS, LOG_RETENTION]
