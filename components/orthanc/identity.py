"""The hosts' identity: an instance profile allowed its own secrets, bucket, key and logs,
and Session Manager sessions (no SSH: no port 22, no key pair)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from orthgate.components.aws_context import AwsContext
from orthgate.components.iam_policies import (
    ec2_trust_policy,
    orthanc_host_policy,
    session_manager_policy,
)
from orthgate.components.naming import Naming


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
    secrets_endpoint: pulumi.Resource | None = None,
    vpc_id: pulumi.Input[str] | None = None,
) -> aws.iam.InstanceProfile:
    """``secrets_endpoint``: the VPC's Secrets Manager interface endpoint, if any: the secrets
    are then readable from ``vpc_id`` only, once the endpoint exists (before, reads leave
    through NAT, where no VPC condition holds, and would be refused)."""
    secrets_from_vpc = vpc_id if secrets_endpoint is not None else None
    role = aws.iam.Role(
        f"{name}-role",
        description="Orthanc host: its own secrets, bucket, key and logs; SSM sessions",
        assume_role_policy=json.dumps(ec2_trust_policy(context)),
        tags=naming.tags(f"{name}-role"),
        opts=opts,
    )
    session_manager_access(name, role, opts)
    aws.iam.RolePolicy(
        f"{name}-host-policy",
        role=role.id,
        policy=pulumi.Output.all(
            secrets=pulumi.Output.all(*secret_arns),
            key=key.arn,
            logs=logs.arn,
            bucket=bucket.arn if bucket else None,
            vpc=secrets_from_vpc,
        ).apply(
            lambda v: json.dumps(
                orthanc_host_policy(
                    context,
                    secret_arns=list(v["secrets"]),
                    key_arn=v["key"],
                    log_group_arn=v["logs"],
                    bucket_arn=v["bucket"],
                    metrics_namespace=naming.metrics_namespace,
                    secrets_from_vpc=v["vpc"],
                )
            )
        ),
        opts=pulumi.ResourceOptions.merge(
            opts,
            pulumi.ResourceOptions(depends_on=[secrets_endpoint] if secrets_endpoint else []),
        ),
    )
    return aws.iam.InstanceProfile(
        f"{name}-profile", role=role.name, tags=naming.tags(f"{name}-profile"), opts=opts
    )


def session_manager_access(name: str, role: aws.iam.Role, opts: pulumi.ResourceOptions) -> None:
    """What Session Manager needs, inline on the role (see ``session_manager_policy``).

    It replaced an attachment of AmazonSSMManagedInstanceCore (``{name}-ssm-core``), which
    let the hosts read every SSM parameter of the account. On an existing stack `pulumi up`
    creates this policy, then deletes the attachment: the role and the instance profile
    stay (neither input of theirs changes), so the hosts keep running, and sessions keep
    working throughout.
    """
    aws.iam.RolePolicy(
        f"{name}-session-manager",
        role=role.id,
        policy=json.dumps(session_manager_policy()),
        opts=opts,
    )
