"""IAM and KMS policy documents as plain dicts: pure functions, easy to read and to test."""

from __future__ import annotations

from typing import Any

from components.aws_context import AwsContext

Policy = dict[str, Any]


def document(*statements: dict[str, Any]) -> Policy:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _account_administers_key(context: AwsContext) -> dict[str, Any]:
    """The KMS default: the account decides through IAM who may use and manage the key."""
    return {
        "Sid": "AccountAdministersThroughIam",
        "Effect": "Allow",
        "Principal": {"AWS": context.arn("iam", "root", region=False)},
        "Action": "kms:*",
        "Resource": "*",
    }


def area_key_policy(context: AwsContext, log_group_prefix: str) -> Policy:
    """A KMS key for CloudWatch log groups under one name prefix, and nothing else.

    The account keeps administration through IAM (the KMS default); CloudWatch Logs may use
    the key only for log groups whose name starts with the prefix.
    """
    log_groups = context.arn("logs", f"log-group:{log_group_prefix}*")
    return document(
        _account_administers_key(context),
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


def ec2_trust_policy(context: AwsContext) -> Policy:
    return document(
        {
            "Effect": "Allow",
            "Principal": {"Service": context.service_principal("ec2")},
            "Action": "sts:AssumeRole",
        }
    )


def orthanc_host_policy(
    context: AwsContext,
    *,
    secret_arns: list[str],
    key_arn: str,
    log_group_arn: str,
    bucket_arn: str | None,
    metrics_namespace: str,
) -> Policy:
    """What the Orthanc host may do: read its own secrets, write its own logs, objects and
    metrics (disk use, for the alarms)."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ReadOwnSecrets",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": secret_arns,
        },
        {
            "Sid": "DecryptThroughSecretsManagerAndS3",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": key_arn,
            "Condition": {
                "StringEquals": {
                    "kms:ViaService": [
                        f"secretsmanager.{context.region}.{context.dns_suffix}",
                        f"s3.{context.region}.{context.dns_suffix}",
                    ]
                }
            },
        },
        {
            "Sid": "WriteOwnContainerLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            "Resource": [log_group_arn, f"{log_group_arn}:*"],
        },
        {
            "Sid": "PutOwnMetrics",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            # PutMetricData has no resource ARN; the namespace condition scopes it.
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": metrics_namespace}},
        },
    ]
    if bucket_arn:
        statements += [
            {
                "Sid": "ListOwnBucket",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                "Resource": bucket_arn,
            },
            {
                "Sid": "ReadWriteOwnObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": f"{bucket_arn}/*",
            },
        ]
    return document(*statements)


def tls_only_bucket_policy(bucket_arn: str) -> Policy:
    """Refuse every request to the bucket that does not arrive over TLS."""
    return document(
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    )


def alarm_topic_key_policy(context: AwsContext) -> Policy:
    """A KMS key for the alarm topic: CloudWatch alarms of this account may publish.

    CloudWatch cannot publish to a topic under the AWS-managed SNS key, hence a key of our
    own that lets CloudWatch encrypt messages for the topic and nothing else.
    """
    return document(
        _account_administers_key(context),
        {
            "Sid": "CloudWatchAlarmsPublish",
            "Effect": "Allow",
            "Principal": {"Service": context.service_principal("cloudwatch")},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": context.account_id}},
        },
    )
