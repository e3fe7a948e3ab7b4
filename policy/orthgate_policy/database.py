"""RDS: never public; in production, backups and deletion protection (and, advised,
more than one zone)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, ResourceValidationArgs

from orthgate_policy.base import resource_policy
from orthgate_policy.encryption import RDS_CLUSTER, RDS_INSTANCE
from orthgate_policy.settings import ENVIRONMENT_PROPERTIES, is_production, resource_tags, schema
from orthgate_policy.values import is_true, is_unknown, number

# FSBP RDS.11's default minimum retention (its backupRetentionMinimum parameter).
MINIMUM_BACKUP_DAYS = 7


def _production(props: Mapping[str, Any], args: ResourceValidationArgs) -> bool:
    return is_production(args.get_config(), resource_tags(props, args), args.stack_tags)


def _is_aurora_instance(resource_type: str, props: Mapping[str, Any]) -> bool:
    return resource_type == RDS_INSTANCE and str(props.get("engine") or "").startswith("aurora")


def check_not_public(
    resource_type: str, props: Mapping[str, Any], args: ResourceValidationArgs
) -> Iterator[str]:
    if is_true(props.get("publiclyAccessible")):
        yield "the database is publicly accessible: set publiclyAccessible=false"


def check_production_safeguards(
    resource_type: str, props: Mapping[str, Any], args: ResourceValidationArgs
) -> Iterator[str]:
    if _is_aurora_instance(resource_type, props) or props.get("replicateSourceDb"):
        return  # backups and deletion protection belong to the cluster or the source
    if not _production(props, args):
        return
    days = number(props.get("backupRetentionPeriod"), "backupRetentionPeriod")
    # Unset, AWS keeps 1 day for an instance and 1 for a cluster.
    if days is None or days < MINIMUM_BACKUP_DAYS:
        shown = "unset (1 day)" if days is None else f"{days:g} days"
        yield (
            f"backupRetentionPeriod is {shown} in a production stack; keep at least "
            f"{MINIMUM_BACKUP_DAYS} days"
        )
    protection = props.get("deletionProtection")
    if not (is_unknown(protection) or is_true(protection)):
        yield "deletionProtection is off in a production stack: set deletionProtection=true"


def check_multi_az(
    resource_type: str, props: Mapping[str, Any], args: ResourceValidationArgs
) -> Iterator[str]:
    if resource_type != RDS_INSTANCE or _is_aurora_instance(resource_type, props):
        return
    if props.get("replicateSourceDb") or not _production(props, args):
        return
    multi_az = props.get("multiAz")
    if not (is_unknown(multi_az) or is_true(multi_az)):
        yield (
            "the production database runs in one Availability Zone: a zone outage stops "
            "Orthanc; set multiAz=true"
        )


RDS_NOT_PUBLIC = resource_policy(
    "rds-not-public",
    "RDS and Aurora instances are not publicly accessible. From: FSBP RDS.2.",
    {RDS_INSTANCE, "aws:rds/clusterInstance:ClusterInstance"},
    check_not_public,
    remediation="Set publiclyAccessible=false and place the database in private subnets.",
)

RDS_PRODUCTION = resource_policy(
    "rds-production-backups-and-deletion-protection",
    "In production, RDS instances and clusters keep automated backups at least 7 days "
    "and have deletion protection. From: FSBP RDS.11, RDS.8, RDS.7.",
    {RDS_INSTANCE, RDS_CLUSTER},
    check_production_safeguards,
    config_schema=schema(ENVIRONMENT_PROPERTIES),
    remediation="Set backupRetentionPeriod >= 7 and deletionProtection=true.",
)

RDS_MULTI_AZ = resource_policy(
    "rds-multi-az-in-production",
    "Advisory: production RDS instances run in more than one Availability Zone. From: FSBP RDS.5.",
    {RDS_INSTANCE},
    check_multi_az,
    enforcement=EnforcementLevel.ADVISORY,
    config_schema=schema(ENVIRONMENT_PROPERTIES),
    remediation="Set multiAz=true (about double the instance cost).",
)

POLICIES = [RDS_NOT_PUBLIC, RDS_PRODUCTION, RDS_MULTI_AZ]
