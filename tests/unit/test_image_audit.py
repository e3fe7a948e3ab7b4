"""The images' audit trail: S3 server access logging of the image bucket into a bucket of its
own (Security Hub S3.9), as declared, on Day 2 and at `pulumi destroy`."""

from __future__ import annotations

import copy
import json

import pytest

from orthgate.components.config import ConfigError, parse_settings
from orthgate.components.orthanc import data
from tests.harness.pulumi_run import STACKS_DIR, evaluate, read_stack_file
from tests.harness.update_plan import Deployment, plan_destroy, plan_update

BUCKET = "aws:s3/bucket:Bucket"
LOGGING = "aws:s3/bucketLogging:BucketLogging"
LOGS = "orthanc-storage-access-logs"
# Everything the audit trail adds to a stack, by type and name.
AUDIT_TRAIL = {
    (BUCKET, LOGS),
    ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", f"{LOGS}-public-access"),
    ("aws:s3/bucketOwnershipControls:BucketOwnershipControls", f"{LOGS}-ownership"),
    (
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        f"{LOGS}-encryption",
    ),
    ("aws:s3/bucketVersioning:BucketVersioning", f"{LOGS}-versioning"),
    ("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", f"{LOGS}-lifecycle"),
    ("aws:s3/bucketPolicy:BucketPolicy", f"{LOGS}-policy"),
    (LOGGING, "orthanc-storage-access-logging"),
}


def shipped(stack: str) -> dict:
    return read_stack_file(STACKS_DIR / f"Pulumi.{stack}.yaml")


def with_orthanc(config: dict, **orthanc) -> dict:
    changed = copy.deepcopy(config)
    changed["orthgate:orthanc"] = {**changed.get("orthgate:orthanc", {}), **orthanc}
    return changed


def dev_on_s3() -> dict:
    """A stack outside production with its images in S3."""
    return with_orthanc(shipped("dev"), storage="s3", index="postgresql", hosting="singleHost")


def declared(evaluation) -> set[tuple[str, str]]:
    return {(r.type, r.name) for r in evaluation.resources}


@pytest.fixture(scope="module")
def prod():
    return evaluate(shipped("prod"), stack="prod")


# --- what is declared ---------------------------------------------------------------------------


def test_the_image_bucket_logs_into_a_bucket_of_its_own(prod):
    images, logs = prod.named("orthanc-storage"), prod.named(LOGS)
    assert images.id != logs.id
    logging = prod.one(LOGGING)
    assert logging.inputs["bucket"] == images.id
    assert logging.inputs["targetBucket"] == logs.id
    assert logging.inputs["targetPrefix"] == data.ACCESS_LOG_PREFIX
    # Log delivery is granted by the bucket policy, never by ACL grants (ACLs are off).
    assert not logging.inputs.get("targetGrants")
    # The log bucket itself is not logged (the S3 User Guide: a destination should not be).
    assert len(prod.of_type(LOGGING)) == 1
    assert declared(prod) >= AUDIT_TRAIL


def test_logging_starts_after_the_log_bucket_may_receive_and_encrypts(prod):
    urns = prod.one(LOGGING).options.dependencies
    for part in ("policy", "ownership", "encryption"):
        assert prod.named(f"{LOGS}-{part}").urn in urns, part


def test_the_log_bucket_is_private_and_owner_enforced(prod):
    logs = prod.named(LOGS)
    block = prod.named(f"{LOGS}-public-access").inputs
    assert block["bucket"] == logs.id
    for flag in (
        "blockPublicAcls",
        "blockPublicPolicy",
        "ignorePublicAcls",
        "restrictPublicBuckets",
    ):
        assert block[flag] is True, flag
    ownership = prod.named(f"{LOGS}-ownership").inputs
    assert ownership["bucket"] == logs.id
    assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}


def test_the_log_bucket_is_encrypted_with_s3_managed_keys(prod):
    # Server access logging destinations support default encryption with SSE-S3 only
    # (S3 User Guide, "Enabling Amazon S3 server access logging").
    encryption = prod.named(f"{LOGS}-encryption").inputs
    assert encryption["bucket"] == prod.named(LOGS).id
    [rule] = encryption["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}


def test_the_log_bucket_takes_tls_only_and_s3_log_delivery_for_the_image_bucket_only(prod):
    logs, images = prod.named(LOGS), prod.named("orthanc-storage")
    policy = prod.named(f"{LOGS}-policy")
    assert policy.inputs["bucket"] == logs.id
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    assert set(statements) == {"DenyInsecureTransport", "S3ServerAccessLogsPolicy"}
    deny = statements["DenyInsecureTransport"]
    assert deny["Effect"] == "Deny"
    assert deny["Principal"] == "*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert set(deny["Resource"]) == {logs.outputs["arn"], logs.outputs["arn"] + "/*"}
    delivery = statements["S3ServerAccessLogsPolicy"]
    assert delivery["Effect"] == "Allow"
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Action"] == "s3:PutObject"
    assert delivery["Resource"] == f"{logs.outputs['arn']}/{data.ACCESS_LOG_PREFIX}*"
    assert delivery["Condition"] == {
        "ArnLike": {"aws:SourceArn": images.outputs["arn"]},
        "StringEquals": {"aws:SourceAccount": "123456789012"},
    }
    # Nothing denies a missing encryption header, which log delivery does not send.
    assert "s3:x-amz-server-side-encryption" not in policy.inputs["policy"]


def test_the_hosts_cannot_touch_the_access_logs(prod):
    host = prod.named("orthanc-host-policy").inputs["policy"]
    assert prod.named(LOGS).outputs["arn"] not in host


def test_access_logs_expire_after_the_configured_days(prod):
    [rule] = prod.named(f"{LOGS}-lifecycle").inputs["rules"]
    assert rule["status"] == "Enabled"
    assert rule["expiration"] == {"days": 365}
    assert rule["filter"] == {}
    longer = evaluate(with_orthanc(shipped("prod"), accessLogRetentionDays=2192), stack="prod")
    [rule] = longer.named(f"{LOGS}-lifecycle").inputs["rules"]
    assert rule["expiration"] == {"days": 2192}


def test_production_keeps_the_log_bucket_past_a_destroy_and_refuses_to_empty_it(prod):
    for _kind, name in AUDIT_TRAIL:
        assert prod.named(name).options.retain_on_delete is True, name
    assert prod.named(LOGS).inputs["forceDestroy"] is False


def test_outside_production_the_log_bucket_goes_with_the_stack():
    evaluation = evaluate(dev_on_s3(), stack="dev")
    assert declared(evaluation) >= AUDIT_TRAIL
    for _kind, name in AUDIT_TRAIL:
        assert evaluation.named(name).options.retain_on_delete is False, name
    assert evaluation.named(LOGS).inputs["forceDestroy"] is True


def test_without_s3_storage_there_is_nothing_to_log():
    evaluation = evaluate(shipped("dev"), stack="dev")
    assert evaluation.of_type(BUCKET) == []
    assert evaluation.of_type(LOGGING) == []


# --- the configuration key ---------------------------------------------------------------------


def orthanc(**given):
    return parse_settings(
        {"environment": "prd", "network": {"vpcCidr": "10.40.0.0/16"}, "orthanc": given}
    ).orthanc


def test_the_retention_defaults_to_a_year():
    assert orthanc().access_log_retention_days == 365
    assert orthanc(accessLogRetentionDays=1).access_log_retention_days == 1
    assert orthanc(accessLogRetentionDays=3653).access_log_retention_days == 3653


@pytest.mark.parametrize("value", [0, -1, 3654, 1.5, "a year", True, None])
def test_a_retention_that_is_not_a_number_of_days_is_refused(value):
    with pytest.raises(ConfigError) as caught:
        orthanc(accessLogRetentionDays=value)
    paths = [p.path for p in caught.value.problems]
    assert paths == ["orthgate:orthanc.accessLogRetentionDays"], paths


# --- Day 2 and destroy -------------------------------------------------------------------------


def test_adding_logging_to_a_deployed_production_stack_only_creates(monkeypatch):
    deployment = Deployment(stack="prod")
    with monkeypatch.context() as shipped_program:
        # The shipped program: the image bucket without server access logging.
        shipped_program.setattr(data, "access_logging", lambda *args, **kwargs: None)
        first = deployment.up(shipped("prod"))
    assert first.of_type(LOGGING) == []
    second = deployment.up(shipped("prod"))
    plan = plan_update(first, second)
    assert plan.collisions == []
    assert plan.blocked == []
    assert plan.replaced == []
    assert {(s.type, s.name) for s in plan.with_op("create")} == AUDIT_TRAIL
    assert plan.with_op("delete") == []
    # The image bucket and every setting of it stay as they are.
    for step in plan.steps:
        if step.name.startswith("orthanc-storage") and (step.type, step.name) not in AUDIT_TRAIL:
            assert step.op == "same", step


def test_versioning_the_log_bucket_of_a_deployed_stack_replaces_nothing(monkeypatch):
    """The release before the CrossGuard pack left the log bucket unversioned and its
    lifecycle without a noncurrent rule: upgrading creates one resource, updates one."""
    real = data.aws.s3

    class Unversioned:
        def __getattr__(self, name):
            return getattr(real, name)

        @staticmethod
        def BucketVersioning(name, **kwargs):
            if name.endswith("access-logs-versioning"):
                return None
            return real.BucketVersioning(name, **kwargs)

        @staticmethod
        def BucketLifecycleConfiguration(name, rules, **kwargs):
            if name.endswith("access-logs-lifecycle"):
                rules = [
                    {k: v for k, v in r.items() if k != "noncurrent_version_expiration"}
                    for r in rules
                ]
            return real.BucketLifecycleConfiguration(name, rules=rules, **kwargs)

    deployment = Deployment(stack="prod")
    with monkeypatch.context() as previous_release:
        previous_release.setattr(data.aws, "s3", Unversioned())
        first = deployment.up(shipped("prod"))
    second = deployment.up(shipped("prod"))
    plan = plan_update(first, second)
    assert plan.replaced == []
    assert plan.collisions == []
    assert plan.blocked == []
    assert plan.summary() == {
        "create": [f"aws:s3/bucketVersioning:BucketVersioning::{LOGS}-versioning"],
        "update": [
            f"aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration::{LOGS}-lifecycle"
        ],
    }


def test_changing_the_retention_updates_the_lifecycle_in_place():
    deployment = Deployment(stack="prod")
    first = deployment.up(shipped("prod"))
    second = deployment.up(with_orthanc(shipped("prod"), accessLogRetentionDays=731))
    plan = plan_update(first, second)
    assert plan.replaced == []
    assert plan.summary() == {
        "update": [
            f"aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration::{LOGS}-lifecycle"
        ]
    }


def test_a_production_destroy_keeps_both_buckets_and_the_logging():
    evaluation = Deployment(stack="prod").up(shipped("prod"))
    plan = plan_destroy(evaluation)
    kept = {(r.type, r.name) for r in plan.kept}
    assert (BUCKET, "orthanc-storage") in kept
    assert kept >= AUDIT_TRAIL
    deleted = {(r.type, r.name) for r in plan.deleted}
    assert not AUDIT_TRAIL & deleted
    # SSE-S3 needs no key: the kept logs stay readable whatever happens to the KMS keys.
    assert plan.unreadable(evaluation.of_type("aws:kms/key:Key")) == []


def test_outside_production_a_destroy_removes_the_log_bucket_too():
    evaluation = Deployment(stack="dev").up(dev_on_s3())
    plan = plan_destroy(evaluation)
    assert plan.kept == []
    assert {(r.type, r.name) for r in plan.deleted} >= AUDIT_TRAIL


def test_access_log_retention_without_an_image_bucket_is_refused():
    with pytest.raises(ConfigError) as caught:
        parse_settings(
            {
                "environment": "dev",
                "network": {"vpcCidr": "10.40.0.0/16"},
                "orthanc": {"storage": "ebs", "accessLogRetentionDays": 90},
            }
        )
    [problem] = caught.value.problems
    assert problem.path == "orthgate:orthanc.accessLogRetentionDays"
    assert "storage: s3" in problem.rule
