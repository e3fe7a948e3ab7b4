"""Customer-managed KMS keys and the encrypted log groups every orthgate component keeps."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from orthgate.components.aws_context import AwsContext
from orthgate.components.iam_policies import area_key_policy
from orthgate.components.naming import Naming


@dataclass(frozen=True)
class AreaKey:
    """One area's KMS key, and the log groups it encrypts under ``/orthgate/<stack>/<area>/``."""

    key: aws.kms.Key
    area: str
    naming: Naming
    protect: bool
    opts: pulumi.ResourceOptions

    def log_group(
        self, name: str, *, log_name: str, retention_days: int
    ) -> aws.cloudwatch.LogGroup:
        """An encrypted log group; in production it survives ``pulumi destroy``.

        A kept group keeps its name, so production names end in a suffix AWS picks: a
        stack deployed again after a destroy gets new groups instead of colliding with the
        kept ones. Elsewhere the name is fixed and the group goes with the stack.
        """
        full_name = f"{self.naming.log_group_prefix(self.area)}{log_name}"
        return aws.cloudwatch.LogGroup(
            name,
            name=None if self.protect else full_name,
            name_prefix=f"{full_name}-" if self.protect else None,
            kms_key_id=self.key.arn,
            retention_in_days=retention_days,
            skip_destroy=self.protect,
            tags=self.naming.tags(name),
            opts=self.opts,
        )


def area_key(
    name: str,
    *,
    area: str,
    context: AwsContext,
    naming: Naming,
    protect: bool,
    opts: pulumi.ResourceOptions,
) -> AreaKey:
    """A customer-managed key for one area (network, orthanc, ...) of the stack.

    IAM decides who else may use it; CloudWatch Logs may use it for the area's log groups
    only.
    """
    key = aws.kms.Key(
        name,
        description=f"orthgate {naming.stack}: encrypts the {area} data and logs",
        enable_key_rotation=True,
        # Outside production a deleted key goes after a week.
        deletion_window_in_days=30 if protect else 7,
        policy=json.dumps(area_key_policy(context, naming.log_group_prefix(area))),
        tags=naming.tags(f"{area}-key"),
        # Production keeps its logs, bucket and snapshots past `pulumi destroy`; without
        # their key they would be unreadable, so the key stays too (about $1 a month).
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(retain_on_delete=protect)),
    )
    # The alias goes with the stack (a kept key is found by its tags and description), so
    # a stack deployed again after a destroy can take the same alias name.
    aws.kms.Alias(
        f"{name}-alias",
        name=naming.kms_alias(area),
        target_key_id=key.key_id,
        opts=opts,
    )
    return AreaKey(key=key, area=area, naming=naming, protect=protect, opts=opts)
