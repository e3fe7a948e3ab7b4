"""Encryption at rest: EBS, RDS storage, CloudWatch log groups, Secrets Manager."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from orthgate_policy.base import resource_policy
from orthgate_policy.values import dig, is_true, is_unknown, items

EBS_VOLUME = "aws:ebs/volume:Volume"
INSTANCE = "aws:ec2/instance:Instance"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
LAUNCH_CONFIGURATION = "aws:ec2/launchConfiguration:LaunchConfiguration"
SPOT_INSTANCE_REQUEST = "aws:ec2/spotInstanceRequest:SpotInstanceRequest"
# Resources that launch a host from their own block device and metadata settings.
INSTANCE_LIKE = frozenset({INSTANCE, LAUNCH_CONFIGURATION, SPOT_INSTANCE_REQUEST})
HOST_TYPES = INSTANCE_LIKE | {LAUNCH_TEMPLATE}
RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
SECRET = "aws:secretsmanager/secret:Secret"  # noqa: S105 - a type token

# The AWS managed key a secret uses when none is named: any role in the account with
# secretsmanager:GetSecretValue can read it, and its policy cannot be narrowed.
AWS_MANAGED_SECRETS_KEY = "alias/aws/secretsmanager"


def _encrypted(value: Any) -> bool:
    return is_unknown(value) or is_true(value)


def check_ebs(
    resource_type: str, props: Mapping[str, Any], args: ResourceValidationArgs
) -> Iterator[str]:
    if resource_type == EBS_VOLUME:
        if not _encrypted(props.get("encrypted")):
            yield "the EBS volume is not encrypted: set encrypted=true (and a kmsKeyId)"
    elif resource_type in INSTANCE_LIKE:
        # Without a launch template, the root volume follows the AMI and the account's
        # EBS default, neither of which the pack can see.
        root = props.get("rootBlockDevice")
        if is_unknown(root):
            dig(props, "rootBlockDevice.encrypted")  # raises: judged at update
        if root is None and not props.get("launchTemplate"):
            yield (
                "the instance declares no rootBlockDevice, so its root volume's encryption "
                "depends on the AMI and the account; declare it with encrypted=true"
            )
        elif isinstance(root, Mapping) and not _encrypted(root.get("encrypted")):
            yield "rootBlockDevice is not encrypted: set encrypted=true"
        for index, device in enumerate(items(props.get("ebsBlockDevices"), "ebsBlockDevices")):
            if isinstance(device, Mapping) and not _encrypted(device.get("encrypted")):
                yield f"ebsBlockDevices[{index}] is not encrypted: set encrypted=true"
    elif resource_type == LAUNCH_TEMPLATE:
        mappings = [m for m in items(props.get("blockDeviceMappings"), "blockDeviceMappings") if m]
        ebs = [m for m in mappings if isinstance(m, Mapping) and m.get("ebs") is not None]
        if not ebs:
            yield (
                "the launch template maps no EBS device, so the root volume's encryption "
                "depends on the AMI and the account; map the root device with "
                "ebs.encrypted=true"
            )
        for index, mapping in enumerate(mappings):
            if not isinstance(mapping, Mapping) or mapping.get("ebs") is None:
                continue
            if not _encrypted(dig(mapping, "ebs.encrypted")):
                device = mapping.get("deviceName") or f"blockDeviceMappings[{index}]"
                yield f"{device} is not encrypted: set ebs.encrypted=true"


def check_rds_storage(
    resource_type: str, props: Mapping[str, Any], args: ResourceValidationArgs
) -> Iterator[str]:
    engine = str(props.get("engine") or "")
    if resource_type == RDS_INSTANCE and engine.startswith("aurora"):
        return  # an Aurora instance's storage is its cluster's
    if props.get("replicateSourceDb"):
        return  # a read replica inherits its source's encryption
    if not _encrypted(props.get("storageEncrypted")):
        kind = "cluster" if resource_type == RDS_CLUSTER else "instance"
        yield f"the RDS {kind}'s storage is not encrypted: set storageEncrypted=true"


def check_log_group(
    resource_type: str, props: Mapping[str, Any], args: ResourceValidationArgs
) -> Iterator[str]:
    if not props.get("kmsKeyId"):
        yield (
            "the log group has no kmsKeyId: its events (connection logs, Orthanc logs) "
            "carry addresses and identifiers; encrypt them with a KMS key you control"
        )


def check_secret(
    resource_type: str, props: Mapping[str, Any], args: ResourceValidationArgs
) -> Iterator[str]:
    key = props.get("kmsKeyId")
    if not key:
        yield (
            "the secret has no kmsKeyId, so it uses the AWS managed key that any role "
            "allowed secretsmanager:GetSecretValue can use; name a customer managed key"
        )
    elif isinstance(key, str) and key.endswith(AWS_MANAGED_SECRETS_KEY):
        yield f"kmsKeyId {key} is the AWS managed key; name a customer managed key"


EBS_ENCRYPTED = resource_policy(
    "ebs-encrypted",
    "EBS volumes, instance block devices and launch-template block devices are "
    "encrypted. From: FSBP EC2.3, HIPAA 164.312(a)(2)(iv).",
    {EBS_VOLUME} | HOST_TYPES,
    check_ebs,
    remediation="Set encrypted=true with a customer managed kmsKeyId on every volume and "
    "block device mapping.",
)

RDS_ENCRYPTED = resource_policy(
    "rds-storage-encrypted",
    "RDS instance and cluster storage is encrypted. From: FSBP RDS.3, HIPAA 164.312(a)(2)(iv).",
    {RDS_INSTANCE, RDS_CLUSTER},
    check_rds_storage,
    remediation="Set storageEncrypted=true and a kmsKeyId. An existing unencrypted "
    "database must be restored from an encrypted snapshot copy.",
)

LOG_GROUPS_ENCRYPTED = resource_policy(
    "cloudwatch-logs-kms",
    "CloudWatch log groups are encrypted with a KMS key. From: NIST 800-53 SC-28, HIPAA "
    "164.312(a)(2)(iv) (no FSBP control covers it).",
    {LOG_GROUP},
    check_log_group,
    remediation="Set kmsKeyId to a key whose policy lets logs.<region>.amazonaws.com use it.",
)

SECRETS_CUSTOMER_KEY = resource_policy(
    "secrets-customer-managed-key",
    "Secrets Manager secrets are encrypted with a customer managed KMS key. From: NIST "
    "800-53 SC-12, SC-28 (no FSBP control covers it).",
    {SECRET},
    check_secret,
    remediation="Set kmsKeyId to a customer managed key whose policy names the roles that "
    "may decrypt.",
)

POLICIES = [EBS_ENCRYPTED, RDS_ENCRYPTED, LOG_GROUPS_ENCRYPTED, SECRETS_CUSTOMER_KEY]
