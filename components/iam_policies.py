"""IAM and KMS policy documents as plain dicts: pure functions, easy to read and to test."""

from __future__ import annotations

from typing import Any

from components.aws_context import AwsContext

Policy = dict[str, Any]


def document(*statements: dict[str, Any]) -> Policy:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def log_key_policy(context: AwsContext, log_group_prefix: str) -> Policy:
    """A KMS key for CloudWatch log groups under one name prefix, and nothing else.

    The account keeps administration through IAM (the KMS default); CloudWatch Logs may use
    the key only for log groups whose name starts with the prefix.
    """
    log_groups = context.arn("logs", f"log-group:{log_group_prefix}*")
    return document(
        {
            "Sid": "AccountAdministersThroughIam",
            "Effect": "Allow",
            "Principal": {"AWS": context.arn("iam", "root", region=False)},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "CloudWatchLogsEncryptsTheseGroups",
            "Effect": "Allow",
            "Principal": {"Service": context.regional_service_principal("logs")},
            "Action": [
                "kms:Encrypt*",
                "kms:Decrypt*",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:Describe*",
            ],
            "Resource": "*",
            "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups}},
        },
    )


def service_trust_policy(context: AwsContext, service: str, source_arn: str) -> Policy:
    """Let an AWS service assume a role for this account's resources only (confused deputy)."""
    return document(
        {
            "Effect": "Allow",
            "Principal": {"Service": context.service_principal(service)},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": context.account_id},
                "ArnLike": {"aws:SourceArn": source_arn},
            },
        }
    )


def flow_log_delivery_policy(log_group_arn: str) -> Policy:
    """What VPC Flow Logs needs to write into one log group."""
    return document(
        {
            "Sid": "WriteFlowLogs",
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "logs:DescribeLogGroups",
                "logs:DescribeLogStreams",
            ],
            "Resource": [log_group_arn, f"{log_group_arn}:*"],
        }
    )
