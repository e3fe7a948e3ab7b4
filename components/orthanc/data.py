"""Where Orthanc keeps its data: an S3 bucket, a PostgreSQL index, or an EBS volume.

Functions, not components: each declares its resources as children of the OrthancServer
that calls it, so they appear under that server in every preview.

What `pulumi destroy` does to them in production (``protect``): the bucket and its
settings are kept, with every image (its KMS key is kept too, see ``components.logs``), and
so is the bucket holding its server access logs;
the database refuses to go while deletion protection is on, and once an operator lifts it
leaves a final snapshot under a name no earlier destroy used, encrypted with the kept key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from orthgate.components.aws_context import AwsContext
from orthgate.components.config.orthanc import database_storage_ceiling_gib
from orthgate.components.iam_policies import access_log_bucket_policy, tls_only_bucket_policy
from orthgate.components.naming import Naming

POSTGRES_MAJOR_VERSION = "16"
DATABASE_NAME = "orthanc"
DATABASE_PORT = 5432
# Where the image bucket's server access logs land in their bucket.
ACCESS_LOG_PREFIX = "images/"


def storage_bucket(
    name: str,
    *,
    key: aws.kms.Key,
    context: AwsContext,
    naming: Naming,
    protect: bool,
    access_log_retention_days: int,
    opts: pulumi.ResourceOptions,
) -> aws.s3.Bucket:
    """A private, versioned, KMS-encrypted bucket reachable over TLS only, whose every
    request is logged (S3 server access logging) into a bucket of its own."""
    # Images must never vanish with a `pulumi destroy` in production: the bucket stays, and
    # so do the settings that keep it private, encrypted and versioned.
    opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(retain_on_delete=protect))
    bucket, _ = _private_bucket(name, naming=naming, protect=protect, opts=opts)
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-encryption",
        bucket=bucket.id,
        rules=[
            {
                "apply_server_side_encryption_by_default": {
                    "sse_algorithm": "aws:kms",
                    "kms_master_key_id": key.arn,
                },
                "bucket_key_enabled": True,
            }
        ],
        opts=opts,
    )
    aws.s3.BucketVersioning(
        f"{name}-versioning",
        bucket=bucket.id,
        versioning_configuration={"status": "Enabled"},
        opts=opts,
    )
    # A deleted image stays recoverable for a while, then stops costing money.
    aws.s3.BucketLifecycleConfiguration(
        f"{name}-lifecycle",
        bucket=bucket.id,
        rules=[
            {
                "id": "expire-deleted-images",
                "status": "Enabled",
                "filter": {},
                "noncurrent_version_expiration": {"noncurrent_days": 365 if protect else 30},
                "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
            }
        ],
        opts=opts,
    )
    aws.s3.BucketPolicy(
        f"{name}-tls-only",
        bucket=bucket.id,
        policy=bucket.arn.apply(lambda arn: json.dumps(tls_only_bucket_policy(arn))),
        opts=opts,
    )
    access_logging(
        name,
        bucket,
        context=context,
        naming=naming,
        protect=protect,
        retention_days=access_log_retention_days,
        opts=opts,
    )
    return bucket


def _private_bucket(
    name: str, *, naming: Naming, protect: bool, opts: pulumi.ResourceOptions
) -> tuple[aws.s3.Bucket, aws.s3.BucketOwnershipControls]:
    """A bucket no one outside the account can reach: public access blocked on all four
    settings, ACLs off (the bucket owner owns every object). Emptied by `destroy` only
    outside production."""
    bucket = aws.s3.Bucket(name, force_destroy=not protect, tags=naming.tags(name), opts=opts)
    aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=opts,
    )
    ownership = aws.s3.BucketOwnershipControls(
        f"{name}-ownership",
        bucket=bucket.id,
        rule={"object_ownership": "BucketOwnerEnforced"},
        opts=opts,
    )
    return bucket, ownership


def access_logging(
    name: str,
    source: aws.s3.Bucket,
    *,
    context: AwsContext,
    naming: Naming,
    protect: bool,
    retention_days: int,
    opts: pulumi.ResourceOptions,
) -> aws.s3.Bucket:
    """The audit trail of the images (Security Hub S3.9): S3 server access logging of
    ``source`` into a bucket of its own, private, encrypted, TLS only, versioned, expiring
    its logs after ``retention_days``.

    S3 User Guide, "Enabling Amazon S3 server access logging"
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html;
    awsdocs/amazon-s3-userguide doc_source/enable-server-access-logging.md):

    - the destination's default encryption may only be SSE-S3; SSE-KMS is not supported.
      The logs are therefore encrypted with S3's own key (AES256), not the Orthanc key. They
      record requests: object keys (Orthanc's attachment UUIDs), requesters, addresses;
    - with Object Ownership "bucket owner enforced" (ACLs off) log delivery is granted by
      the bucket policy to logging.s3.amazonaws.com, the guide's recommended way;
    - the destination must not use Object Lock or a default retention period, and should
      not itself be logged: it is not (a log of the log bucket would be a loop).

    ``opts`` carry the image bucket's retain_on_delete: in production `pulumi destroy`
    keeps the log bucket, its settings and the logging of the image bucket, with it.
    """
    logs, ownership = _private_bucket(
        f"{name}-access-logs", naming=naming, protect=protect, opts=opts
    )
    encryption = aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-access-logs-encryption",
        bucket=logs.id,
        rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
        opts=opts,
    )
    # Versioned, so that a log overwritten or deleted (by a stolen role, say) keeps its
    # earlier copy: the audit trail is evidence (Security Hub S3.14).
    aws.s3.BucketVersioning(
        f"{name}-access-logs-versioning",
        bucket=logs.id,
        versioning_configuration={"status": "Enabled"},
        opts=opts,
    )
    aws.s3.BucketLifecycleConfiguration(
        f"{name}-access-logs-lifecycle",
        bucket=logs.id,
        rules=[
            {
                "id": "expire-access-logs",
                "status": "Enabled",
                "filter": {},
                "expiration": {"days": retention_days},
                "noncurrent_version_expiration": {"noncurrent_days": 365 if protect else 30},
            }
        ],
        opts=opts,
    )
    policy = aws.s3.BucketPolicy(
        f"{name}-access-logs-policy",
        bucket=logs.id,
        policy=pulumi.Output.all(logs.arn, source.arn).apply(
            lambda arns: json.dumps(
                access_log_bucket_policy(
                    arns[0],
                    source_bucket_arn=arns[1],
                    prefix=ACCESS_LOG_PREFIX,
                    account_id=context.account_id,
                )
            )
        ),
        opts=opts,
    )
    # Logging starts once S3 may deliver into a bucket that encrypts what it receives.
    aws.s3.BucketLogging(
        f"{name}-access-logging",
        bucket=source.id,
        target_bucket=logs.id,
        target_prefix=ACCESS_LOG_PREFIX,
        opts=pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(depends_on=[ownership, encryption, policy])
        ),
    )
    return logs


@dataclass(frozen=True)
class DatabaseSettings:
    instance_class: str
    storage_gib: int
    backup_retention_days: int


@dataclass(frozen=True)
class Database:
    identifier: pulumi.Output[str]
    address: pulumi.Output[str]
    port: int
    name: str
    master_secret_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]


def postgresql_index(
    name: str,
    *,
    settings: DatabaseSettings,
    vpc_id: pulumi.Input[str],
    subnet_ids: Sequence[pulumi.Input[str]],
    client_security_group_id: pulumi.Input[str],
    key: aws.kms.Key,
    naming: Naming,
    protect: bool,
    opts: pulumi.ResourceOptions,
    address_reservations: Sequence[pulumi.Resource] = (),
) -> Database:
    """An encrypted PostgreSQL in the private subnets, reachable from Orthanc only, over TLS.

    ``address_reservations``: its network interface must not take orthgate's fixed addresses.
    """
    group = aws.ec2.SecurityGroup(
        f"{name}-sg",
        vpc_id=vpc_id,
        description="Orthanc index: PostgreSQL from the Orthanc hosts only",
        tags=naming.tags(f"{name}-sg"),
        opts=opts,
    )
    aws.vpc.SecurityGroupIngressRule(
        f"{name}-from-orthanc",
        security_group_id=group.id,
        referenced_security_group_id=client_security_group_id,
        ip_protocol="tcp",
        from_port=DATABASE_PORT,
        to_port=DATABASE_PORT,
        description="PostgreSQL from the Orthanc hosts",
        opts=opts,
    )
    subnets = aws.rds.SubnetGroup(
        f"{name}-subnets",
        subnet_ids=list(subnet_ids),
        description="Orthanc index: private subnets",
        tags=naming.tags(f"{name}-subnets"),
        opts=opts,
    )
    parameters = aws.rds.ParameterGroup(
        f"{name}-parameters",
        family=f"postgres{POSTGRES_MAJOR_VERSION}",
        description="Orthanc index: TLS required",
        parameters=[{"name": "rds.force_ssl", "value": "1"}],
        tags=naming.tags(f"{name}-parameters"),
        opts=opts,
    )
    # Both names follow RDS's identifier rules for any stack name (see Naming).
    identifier_prefix = naming.rds_identifier_prefix("orthanc")
    # A final snapshot name is used once per destroy: a fresh suffix per deployment keeps a
    # second destroy (after a re-deploy) from colliding with the first one's snapshot.
    final_snapshot = None
    if protect:
        suffix = random.RandomId(f"{name}-final-snapshot-suffix", byte_length=4, opts=opts)
        final_snapshot = suffix.hex.apply(lambda h: f"{identifier_prefix}final-{h}")
    instance = aws.rds.Instance(
        name,
        identifier_prefix=identifier_prefix,
        engine="postgres",
        engine_version=POSTGRES_MAJOR_VERSION,
        instance_class=settings.instance_class,
        allocated_storage=settings.storage_gib,
        max_allocated_storage=database_storage_ceiling_gib(settings.storage_gib),
        storage_type="gp3",
        storage_encrypted=True,
        kms_key_id=key.arn,
        db_name=DATABASE_NAME,
        username="orthanc",
        # RDS generates the password and keeps it in Secrets Manager, under our key.
        manage_master_user_password=True,
        master_user_secret_kms_key_id=key.arn,
        db_subnet_group_name=subnets.name,
        vpc_security_group_ids=[group.id],
        parameter_group_name=parameters.name,
        publicly_accessible=False,
        multi_az=protect,
        backup_retention_period=settings.backup_retention_days,
        copy_tags_to_snapshot=True,
        deletion_protection=protect,
        skip_final_snapshot=not protect,
        final_snapshot_identifier=final_snapshot,
        auto_minor_version_upgrade=True,
        tags=naming.tags(name),
        opts=pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(depends_on=list(address_reservations))
        ),
    )
    return Database(
        identifier=instance.identifier,
        address=instance.address,
        port=DATABASE_PORT,
        name=DATABASE_NAME,
        master_secret_arn=instance.master_user_secrets.apply(
            lambda secrets: secrets[0].secret_arn if secrets else None
        ),
        security_group_id=group.id,
    )


def data_volume(
    name: str,
    *,
    zone: str,
    size_gib: int,
    key: aws.kms.Key,
    naming: Naming,
    protect: bool,
    opts: pulumi.ResourceOptions,
) -> aws.ebs.Volume:
    """A separate encrypted volume: it survives the replacement of the instance, and in
    production a `pulumi destroy` too (it holds the images and the index). EBS volumes
    only grow: a smaller ``dataVolumeGib`` is refused by AWS."""
    return aws.ebs.Volume(
        name,
        availability_zone=zone,
        size=size_gib,
        type="gp3",
        encrypted=True,
        kms_key_id=key.arn,
        tags=naming.tags(name),
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(retain_on_delete=protect)),
    )
