"""S3, resource by resource: complete public access blocks, TLS-only bucket policies,
versioning on. (That every bucket has all of them, and KMS encryption, is checked
over the whole stack in stack.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from orthgate_policy.base import resource_policy
from orthgate_policy.values import as_list, dig, is_true, is_unknown, known

BUCKETS = frozenset({"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"})
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ACCOUNT_PUBLIC_ACCESS_BLOCK = "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
VERSIONING = frozenset(
    {"aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2"}
)
ENCRYPTION = frozenset(
    {
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
    }
)
LOGGING = frozenset(
    {"aws:s3/bucketLogging:BucketLogging", "aws:s3/bucketLoggingV2:BucketLoggingV2"}
)
PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)


def missing_public_access_flags(props: Mapping[str, Any]) -> list[str]:
    return [
        f for f in PUBLIC_ACCESS_FLAGS if not (is_unknown(props.get(f)) or is_true(props.get(f)))
    ]


def _principal_is_everyone(principal: Any) -> bool:
    if principal == "*":
        return True
    return isinstance(principal, Mapping) and "*" in as_list(principal.get("AWS"))


def _covers_objects(resources: Any) -> bool:
    """The statement reaches every object (`arn:aws:s3:::b/*`), not the bucket alone."""
    return any(str(r) == "*" or str(r).endswith("/*") for r in as_list(resources))


def _only_insecure_transport(condition: Any) -> bool:
    """The condition is `Bool aws:SecureTransport false` and nothing narrower: another
    key (an account, a VPC) would leave plain HTTP open to everyone else. Condition keys
    and operators are case-insensitive in IAM."""
    if not isinstance(condition, Mapping) or len(condition) != 1:
        return False
    operator, tests = next(iter(condition.items()))
    if str(operator).lower() != "bool" or not isinstance(tests, Mapping) or len(tests) != 1:
        return False
    key, value = next(iter(tests.items()))
    values = {str(v).lower() for v in as_list(value)}
    return str(key).lower() == "aws:securetransport" and values == {"false"}


def denies_insecure_transport(document: Any) -> bool:
    """Whether a policy document denies every S3 action on every object to everyone
    over plain HTTP."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return False
    if not isinstance(document, Mapping):
        return False
    for statement in as_list(document.get("Statement")):
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Deny":
            continue
        actions = {str(a).lower() for a in as_list(statement.get("Action"))}
        if (
            actions & {"s3:*", "*"}
            and _principal_is_everyone(statement.get("Principal"))
            and _covers_objects(statement.get("Resource"))
            and _only_insecure_transport(statement.get("Condition"))
        ):
            return True
    return False


def check_public_access_block(
    resource_type: str, props: Mapping[str, Any], args: ResourceValidationArgs
) -> Iterator[str]:
    missing = missing_public_access_flags(props)
    if missing:
        yield f"the public access block leaves {', '.join(missing)} off; set all four to true"


def check_bucket_policy(
    resource_type: str, props: Mapping[str, Any], args: ResourceValidationArgs
) -> Iterator[str]:
    document = known(props.get("policy"), "policy")
    if not denies_insecure_transport(document):
        yield (
            "the bucket policy does not deny plain-HTTP requests: add a Deny of s3:* to "
            'Principal "*" on the bucket and its objects when aws:SecureTransport is false'
        )


def check_versioning(
    resource_type: str, props: Mapping[str, Any], args: ResourceValidationArgs
) -> Iterator[str]:
    status = dig(props, "versioningConfiguration.status")
    if not (is_unknown(status) or status == "Enabled"):
        yield f"versioning is {status!r}: set versioningConfiguration.status='Enabled'"


S3_PUBLIC_ACCESS = resource_policy(
    "s3-public-access-block-complete",
    "S3 public access blocks turn on all four flags. From: FSBP S3.8.",
    {PUBLIC_ACCESS_BLOCK, ACCOUNT_PUBLIC_ACCESS_BLOCK},
    check_public_access_block,
    remediation="Set blockPublicAcls, blockPublicPolicy, ignorePublicAcls and "
    "restrictPublicBuckets to true.",
)

S3_TLS_ONLY = resource_policy(
    "s3-bucket-policy-tls-only",
    "S3 bucket policies refuse requests that do not use TLS. From: FSBP S3.5.",
    {BUCKET_POLICY},
    check_bucket_policy,
    remediation='{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": '
    '[bucket ARN, bucket ARN/*], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}',
)

S3_VERSIONING = resource_policy(
    "s3-versioning-enabled",
    "S3 bucket versioning is enabled, never suspended. From: Security Hub S3.14 (in its "
    "NIST 800-53 r5 standard, not FSBP).",
    VERSIONING,
    check_versioning,
    remediation="versioningConfiguration={status: 'Enabled'}, with a lifecycle rule that "
    "expires noncurrent versions.",
)

POLICIES = [S3_PUBLIC_ACCESS, S3_TLS_ONLY, S3_VERSIONING]
