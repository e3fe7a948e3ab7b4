"""The hosts' identity: an instance profile allowed its own secrets, bucket, key and logs."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from components.aws_context import AwsContext
from components.iam_policies import ec2_trust_policy, orthanc_host_policy
from components.naming import Naming

SSM_CORE_POLICY = "arn:{partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"


def instance_profile(
    name: str,
    *,
    context: AwsContext,
    naming: Naming,
    secret_arns: Sequence[pulumi.Output[str]],
    key: aws.kms.Key,
    logs: aws.cloudwatch.LogGroup,
    bucket: aws.s3.Bucket | None,
    opts: pulumi.ResourceOptions,
) -> aws.iam.InstanceProfile:
    role = aws.iam.Role(
        f"{name}-role",
        description="Orthanc host: its own secrets, bucket, key and logs; SSM sessions",
        assume_role_policy=json.dumps(ec2_trust_policy(context)),
        tags=naming.tags(f"{name}-role"),
        opts=opts,
    )
    aws.iam.RolePolicyAttachment(
        f"{name}-ssm-core",
        role=role.name,
        policy_arn=SSM_CORE_POLICY.format(partition=context.partition),
        opts=opts,
    )
    aws.iam.RolePolicy(
        f"{name}-host-policy",
        role=role.id,
        policy=pulumi.Output.all(
            secrets=pulumi.Output.all(*secret_arns),
            key=key.arn,
            logs=logs.arn,
            bucket=bucket.arn if bucket else None,
        ).apply(
            lambda v: json.dumps(
                orthanc_host_policy(
                    context,
                    secret_arns=list(v["secrets"]),
                    key_arn=v["key"],
                    log_group_arn=v["logs"],
                    bucket_arn=v["bucket"],
                    metrics_namespace=naming.metrics_namespace,
                )
            )
        ),
        opts=opts,
    )
    return aws.iam.InstanceProfile(
        f"{name}-profile", role=role.name, tags=naming.tags(f"{name}-profile"), opts=opts
    )
