"""Customer-managed KMS keys and the encrypted log groups every orthgate component keeps."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from components.aws_context import AwsContext
from components.iam_policies import area_key_policy
from components.naming import Naming


def area_key(
    name: str,
    *,
    area: str,
    context: AwsContext,
    naming: Naming,
    protect: bool,
    opts: pulumi.ResourceOptions,
) -> aws.kms.Key:
    """A customer-managed key for one area (network, orthanc, ...) of the stack.

    IAM decides who else may use it; CloudWatch Logs may use it for the area's log groups
    (``/orthgate/<stack>/<area>/``) only.
    """
    key = aws.kms.Key(
        name,
        description=f"orthgate {naming.stack}: encrypts the {area} data and logs",
        enable_key_rotation=True,
        # A deleted key makes its logs unreadable: give production a month to notice.
        deletion_window_in_days=30 if protect else 7,
        policy=json.dumps(area_key_policy(context, naming.log_group_prefix(area))),
        tags=naming.tags(f"{area}-key"),
        opts=opts,
    )
    aws.kms.Alias(
        f"{name}-alias",
        name=f"alias/{naming.prefix}-{area}",
        target_key_id=key.key_id,
        opts=opts,
    )
    return key


def log_group(
    name: str,
    *,
    log_name: str,
    key: aws.kms.Key,
    retention_days: int,
    naming: Naming,
    protect: bool,
    opts: pulumi.ResourceOptions,
) -> aws.cloudwatch.LogGroup:
    """A log group encrypted with ``key``; in production it survives ``pulumi destroy``."""
    return aws.cloudwatch.LogGroup(
        name,
        name=log_name,
        kms_key_id=key.arn,
        retention_in_days=retention_days,
        skip_destroy=protect,
        tags=naming.tags(name),
        opts=opts,
    )
