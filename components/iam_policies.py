"""IAM and KMS policy documents as plain dicts: pure functions, easy to read and to test."""

from __future__ import annotations

from typing import Any

from orthgate.components.aws_context import AwsContext

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
    secrets_from_vpc: str | None = None,
) -> Policy:
    """What the Orthanc host may do: read its own secrets, write its own logs, objects and
    metrics (disk use, for the alarms).

    ``secrets_from_vpc``: the VPC id, when the hosts reach Secrets Manager through an
    interface endpoint in it; the secrets can then be read from that VPC only.
    """
    read_secrets: dict[str, Any] = {
        "Sid": "ReadOwnSecrets",
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": secret_arns,
    }
    if secrets_from_vpc:
        # aws:SourceVpc is in the request context only for requests that arrive through a
        # VPC endpoint (IAM User Guide, "AWS global condition context keys", aws:SourceVpc),
        # so stolen role credentials used from anywhere else read nothing. Without an
        # endpoint the hosts reach Secrets Manager over the Internet (NAT or a public
        # address), where the key is absent: the condition would lock the hosts out, so
        # the statement stays unconditioned. aws:SourceVpc rather than aws:SourceVpce: any
        # endpoint of this VPC is ours, and the VPC id is known before the endpoint is.
        read_secrets["Condition"] = {"StringEquals": {"aws:SourceVpc": secrets_from_vpc}}
    statements: list[dict[str, Any]] = [
        read_secrets,
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


# What the SSM agent needs for Session Manager and nothing else: AWS Systems Manager User
# Guide, "Create a custom IAM role for Session Manager", section "Creating an IAM role with
# minimal Session Manager permissions"
# (https://docs.aws.amazon.com/systems-manager/latest/userguide/getting-started-create-iam-instance-profile.html,
# linked from "Step 2: Verify or add instance permissions for Session Manager"). The guide's
# further statements are for options orthgate does not turn on: kms:Decrypt for KMS
# encryption of session data, s3:GetEncryptionConfiguration for session logs in S3.
# AmazonSSMManagedInstanceCore, which this replaces, also grants ssm:GetParameter(s) on every
# parameter of the account, Run Command (ec2messages:*), documents and associations.
SESSION_MANAGER_ACTIONS = (
    "ssm:UpdateInstanceInformation",
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
)


def session_manager_policy() -> Policy:
    """Session Manager sessions to the host: the agent registers and opens its channels."""
    return document(
        {
            "Sid": "SessionManagerSessions",
            "Effect": "Allow",
            "Action": list(SESSION_MANAGER_ACTIONS),
            # As in the guide: the ssmmessages actions take no resource ARN.
            "Resource": "*",
        }
    )


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


def access_log_bucket_policy(
    log_bucket_arn: str, *, source_bucket_arn: str, prefix: str, account_id: str
) -> Policy:
    """The server access log bucket: TLS only, and S3's log delivery may write one bucket's
    logs under one prefix.

    S3 User Guide, "Enabling Amazon S3 server access logging", "Permissions for log
    delivery" (https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html):
    with Object Ownership "bucket owner enforced" ACLs are off and the bucket policy must
    grant s3:PutObject to logging.s3.amazonaws.com; the guide's example conditions it on
    the source bucket (aws:SourceArn) and account (aws:SourceAccount), as here.

    The guide warns that Deny statements must not stop delivery. The one deny here refuses
    requests without TLS (Security Hub S3.5 asks it of every bucket; access log buckets
    carry it in e.g. nozaq/terraform-aws-secure-baseline PR #129, HHS/simpler-grants-gov PR
    #1219). No deny on a missing encryption header: log delivery sends none and would be
    refused (aws-quickstart/quickstart-compliance-common issue #29); the bucket's default
    encryption covers the objects instead.
    """
    tls_only = tls_only_bucket_policy(log_bucket_arn)["Statement"]
    return document(
        *tls_only,
        {
            "Sid": "S3ServerAccessLogsPolicy",
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": f"{log_bucket_arn}/{prefix}*",
            "Condition": {
                "ArnLike": {"aws:SourceArn": source_bucket_arn},
                "StringEquals": {"aws:SourceAccount": account_id},
            },
        },
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
