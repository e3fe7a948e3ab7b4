"""The second `pulumi up`: a stack evaluated, changed, evaluated again, and the engine's
plan between the two checked for what breaks real upgrades (see tests/harness/update_plan.py).
"""

from __future__ import annotations

import copy

import pulumi
import pulumi_aws as aws
import pytest

from orthgate.offline.aws_mock import AwsMock
from tests.harness.pulumi_run import STACKS_DIR, RecordingMocks, evaluate, read_stack_file
from tests.harness.update_plan import Deployment, physical_names, plan_destroy, plan_update

INSTANCE = "aws:ec2/instance:Instance"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
ASG = "aws:autoscaling/group:Group"
LB = "aws:lb/loadBalancer:LoadBalancer"
ATTACHMENT = "aws:ec2/volumeAttachment:VolumeAttachment"
NEW_IMAGE = "orthancteam/orthanc:26.1.0"


def shipped(stack: str) -> dict:
    return read_stack_file(STACKS_DIR / f"Pulumi.{stack}.yaml")


def with_orthanc(config: dict, **orthanc) -> dict:
    changed = copy.deepcopy(config)
    changed["orthgate:orthanc"] = {**changed.get("orthgate:orthanc", {}), **orthanc}
    return changed


def two_ups(config: dict, changed: dict, *, stack: str, before=None):
    deployment = Deployment(stack=stack)
    if before:
        before(deployment)
    first = deployment.up(config)
    second = deployment.up(changed)
    return plan_update(first, second)


def assert_clean(plan) -> None:
    assert plan.collisions == [], plan.collisions
    assert plan.blocked == [], plan.blocked


# --- the harness can fail ------------------------------------------------------------------


def pet_program(user_data: str):
    """What orthgate declared before: a fixed-IP instance replaced create-first."""

    def program() -> None:
        template = aws.ec2.LaunchTemplate(
            "pet-template", image_id="ami-0123456789abcdef0", user_data=user_data
        )
        aws.ec2.Instance(
            "pet",
            launch_template={"id": template.id, "version": template.latest_version.apply(str)},
            subnet_id="subnet-0123456789abcdef0",
            private_ip="10.40.255.10",
            disable_api_termination=True,
        )

    return program


def test_the_planner_catches_what_broke_the_first_upgrade():
    deployment = Deployment()
    first = deployment.up({}, program=pet_program("one"))
    second = deployment.up({}, program=pet_program("two"))
    plan = plan_update(first, second)
    step = plan.step("pet", INSTANCE)
    assert step.op == "replace"
    assert not step.delete_first
    assert any("launchTemplate.version" in path for path in step.forced_by)
    assert any("10.40.255.10" in c for c in plan.collisions)
    assert any("termination protection" in b for b in plan.blocked)


def test_an_unchanged_stack_plans_nothing():
    plan = two_ups(shipped("prod"), shipped("prod"), stack="prod")
    assert plan.summary() == {}


# --- a single host: replaced delete-first, nothing it needs held twice ---------------------


def test_a_new_image_replaces_the_single_host_delete_first_with_its_volume_and_address():
    config = shipped("dev")
    plan = two_ups(config, with_orthanc(config, image=NEW_IMAGE), stack="dev")
    assert_clean(plan)
    assert plan.step("orthanc-0-template", TEMPLATE).op == "update"
    host = plan.step("orthanc-0", INSTANCE)
    assert host.op == "replace"
    assert host.delete_first
    attachment = plan.step("orthanc-data-attachment", ATTACHMENT)
    assert (attachment.op, attachment.delete_first) == ("replace", True)
    # The data volume and the address stay: only the instance and what binds to it move.
    assert plan.step("orthanc-data", "aws:ebs/volume:Volume").op == "same"
    assert plan.step("orthanc-0-eip", "aws:ec2/eip:Eip").op == "same"
    replaced = {s.name for s in plan.replaced}
    assert replaced == {"orthanc-0", "orthanc-data-attachment", "orthanc-0-eip-association"}


def test_a_protected_single_host_can_still_be_replaced():
    config = with_orthanc(shipped("prod"), hosting="singleHost")
    plan = two_ups(config, with_orthanc(config, image=NEW_IMAGE), stack="prod")
    assert_clean(plan)
    host = plan.step("orthanc-0", INSTANCE)
    assert (host.op, host.delete_first) == ("replace", True)
    assert host.before.inputs["disableApiTermination"] is True
    assert host.before.inputs["forceDestroy"] is True


def test_a_held_ami_does_not_replace_the_single_host_but_a_followed_one_does():
    config = shipped("dev")

    def ups(changed: dict):
        deployment = Deployment(stack="dev")
        first = deployment.up(changed)
        deployment.account.ami_release += 1  # AWS publishes a new Amazon Linux AMI
        return plan_update(first, deployment.up(changed))

    held = ups(config)
    assert held.step("orthanc-0-template", TEMPLATE).op == "same"
    assert held.step("orthanc-0", INSTANCE).op == "same"
    followed = ups(with_orthanc(config, amiUpdates="follow"))
    assert_clean(followed)
    assert followed.step("orthanc-0", INSTANCE).op == "replace"
    assert followed.step("orthanc-0", INSTANCE).delete_first


# --- a fleet: rolling, never replaced as a whole ---------------------------------------------


def test_a_new_image_rolls_the_fleet_without_replacing_anything():
    config = shipped("prod")
    plan = two_ups(config, with_orthanc(config, image=NEW_IMAGE), stack="prod")
    assert_clean(plan)
    assert plan.replaced == []
    assert plan.step("orthanc-host-template", TEMPLATE).op == "update"
    group = plan.step("orthanc-hosts", ASG)
    assert group.op == "update"
    assert group.changed == ["launchTemplate"]
    refresh = group.after.inputs["instanceRefresh"]["preferences"]
    assert refresh["minHealthyPercentage"] == 100
    for balancer in plan.with_op("same", LB):
        assert balancer.name.startswith("orthanc-nlb-")
    assert len(plan.with_op("same", LB)) == 2


def test_a_new_ami_rolls_the_fleet_too():
    deployment = Deployment(stack="prod")
    first = deployment.up(shipped("prod"))
    deployment.account.ami_release += 1
    plan = plan_update(first, deployment.up(shipped("prod")))
    assert_clean(plan)
    assert plan.step("orthanc-host-template", TEMPLATE).changed == ["imageId"]
    assert plan.step("orthanc-hosts", ASG).op == "update"
    assert plan.replaced == []


def test_a_third_zone_adds_subnets_and_widens_the_fleet_in_place():
    config = shipped("prod")
    wider = copy.deepcopy(config)
    wider["orthgate:network"]["availabilityZones"] = 3
    plan = two_ups(config, wider, stack="prod")
    assert_clean(plan)
    # The server certificate is issued again to name the new zone's address; nginx picks
    # it up from Secrets Manager. Nothing else is replaced.
    assert {s.name for s in plan.replaced} == {
        "orthanc-server-csr",
        "orthanc-server-cert",
        "orthanc-nginx-files-secret-value",
    }
    assert plan.step("orthanc-server-key").op == "same"
    for balancer in plan.with_op("update", LB):
        assert balancer.changed == ["subnetMappings"]
    created = {s.name for s in plan.with_op("create")}
    assert {"network-private-2", "network-public-2", "network-private-2-fixed-addresses"} <= created
    assert plan.step("orthanc-hosts", ASG).changed == ["vpcZoneIdentifiers"]


def test_growing_the_fleet_changes_only_its_counts():
    config = shipped("prod")
    plan = two_ups(config, with_orthanc(config, instanceCount=4), stack="prod")
    assert_clean(plan)
    assert set(plan.summary()) == {"update"}
    assert sorted(plan.step("orthanc-hosts", ASG).changed) == [
        "desiredCapacity",
        "maxSize",
        "minSize",
    ]
    # The healthy-host alarms follow the new minimum; nothing else moves.
    alarms = [s for s in plan.with_op("update") if s.type != ASG]
    assert alarms
    assert all(s.name.endswith("-healthy-hosts") for s in alarms)
    assert all(s.changed == ["alarmDescription", "threshold"] for s in alarms)


def test_a_new_site_or_modality_touches_no_host():
    config = shipped("prod")
    more = copy.deepcopy(config)
    more["orthgate:dicomProxies"].append(
        {
            "name": "south-clinic",
            "sourceCidrs": ["198.51.100.64/29"],
            "aeTitle": "SOUTH_GW",
            "listenAddress": "192.168.50.10",
            "acceptAnyModality": True,
        }
    )
    more["orthgate:orthanc"]["modalities"].append({"name": "us-1", "aeTitle": "US_ONE"})
    plan = two_ups(config, more, stack="prod")
    assert_clean(plan)
    assert plan.step("orthanc-host-template", TEMPLATE).op == "same"
    assert plan.step("orthanc-hosts", ASG).op == "same"
    # orthanc.json travels as a secret: a new version, picked up by the hosts' refresh.
    assert plan.step("orthanc-settings-secret-value").op == "replace"
    assert all(s.type != INSTANCE for s in plan.steps)


def test_moving_a_single_host_to_a_fleet_never_reuses_an_address_the_old_host_holds():
    for placement in ("public", "private"):
        config = with_orthanc(shipped("prod"), hosting="singleHost", placement=placement)
        if placement == "private":
            del config["orthgate:dicomProxies"]  # a proxy site needs a public address
        fleet = with_orthanc(config, hosting="fleet")
        plan = two_ups(config, fleet, stack="prod")
        assert plan.collisions == [], (placement, plan.collisions)
        assert plan.step("orthanc-0", INSTANCE).op == "delete"
        assert plan.step("orthanc-hosts", ASG).op == "create"


# --- destroy, and deploying again ----------------------------------------------------------


@pytest.fixture(scope="module")
def prod_lifetimes():
    first = Deployment(stack="prod", deployment="first")
    second = first.fresh("second")
    return first.up(shipped("prod")), second.up(shipped("prod"))


def test_production_destroy_keeps_images_and_logs_readable(prod_lifetimes):
    evaluation, _ = prod_lifetimes
    plan = plan_destroy(evaluation)
    kept = {(r.type, r.name) for r in plan.kept}
    assert ("aws:s3/bucket:Bucket", "orthanc-storage") in kept
    # The bucket stays private, encrypted and versioned: its settings are kept with it.
    for part in ("public-access", "encryption", "versioning", "tls-only", "ownership"):
        assert any(name == f"orthanc-storage-{part}" for _, name in kept), part
    for group in evaluation.of_type("aws:cloudwatch/logGroup:LogGroup"):
        assert ("aws:cloudwatch/logGroup:LogGroup", group.name) in kept
    keys = evaluation.of_type("aws:kms/key:Key")
    assert plan.unreadable(keys) == []
    # The only thing standing in the way is the database's deletion protection: the
    # README says how to lift it.
    assert plan.blocked == [
        "delete of aws:rds/instance:Instance::orthanc-index fails: deletion protection is on"
    ]


def test_a_production_stack_deployed_again_after_a_destroy_collides_with_nothing_it_left(
    prod_lifetimes,
):
    first, second = prod_lifetimes
    left = plan_destroy(first)
    kept_names = physical_names(left.kept)
    new_names = physical_names(second.resources)
    assert set(kept_names) & set(new_names) == set()
    left_names = {name for _, name, _ in left.leftovers}
    second_left = {name for _, name, _ in plan_destroy(second).leftovers}
    assert left_names & second_left == set(), "a second destroy would reuse a snapshot name"
    snapshot = [n for kind, n, _ in left.leftovers if kind == "final snapshot"]
    assert len(snapshot) == 1
    assert snapshot[0].startswith("orthgate-prod-orthanc-final-")


def test_outside_production_destroy_removes_everything_and_nothing_blocks_it():
    evaluation = Deployment(stack="dev").up(shipped("dev"))
    plan = plan_destroy(evaluation)
    assert plan.kept == []
    assert plan.blocked == []


def test_the_program_says_so_while_a_held_ami_waits(monkeypatch):
    warnings = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *a, **k: warnings.append(message))
    deployment = Deployment(stack="dev")
    first = deployment.up(shipped("dev"))
    assert warnings == []
    deployment.account.ami_release += 1
    second = deployment.up(shipped("dev"))
    [warning] = warnings
    deployed = first.one(TEMPLATE).inputs["imageId"]
    latest = second.outputs["orthancAmi"]["latest"]
    assert deployed != latest
    assert deployed in warning
    assert latest in warning
    assert "amiUpdates" in warning
    assert second.outputs["orthancAmi"] == {
        "latest": latest,
        "deployed": deployed,
        "follows": False,
    }


# --- security group rules move with what they admit, not with who asked --------------------


def proxy(name: str, *cidrs: str, ae: str) -> dict:
    return {
        "name": name,
        "sourceCidrs": list(cidrs),
        "aeTitle": ae,
        "listenAddress": "192.168.50.10",
        "acceptAnyModality": True,
    }


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_range_moving_to_a_proxy_site_keeps_its_rule(stack):
    config = with_orthanc(shipped(stack), dicomAllowedCidrs=["198.51.100.40/29"])
    config["orthgate:dicomProxies"] = [proxy("north-clinic", "198.51.100.32/29", ae="NORTH_GW")]
    moved = with_orthanc(config, dicomAllowedCidrs=[])
    moved["orthgate:dicomProxies"] = [
        proxy("north-clinic", "198.51.100.32/29", ae="NORTH_GW"),
        proxy("south-clinic", "198.51.100.40/29", ae="SOUTH_GW"),
    ]
    plan = two_ups(config, moved, stack=stack)
    assert_clean(plan)
    [step] = [s for s in plan.steps if s.name.endswith("dicom-tls-from-198.51.100.40-29")]
    assert (step.op, step.changed) == ("update", ["description"])


def test_renaming_a_site_or_moving_a_range_between_sites_replaces_no_rule():
    config = shipped("prod")
    renamed = copy.deepcopy(config)
    renamed["orthgate:dicomProxies"][0]["name"] = "north-clinic-2"
    plan = two_ups(config, renamed, stack="prod")
    assert_clean(plan)
    rules = [s for s in plan.steps if s.type.endswith("SecurityGroupIngressRule")]
    assert {s.op for s in rules} <= {"same", "update"}


def test_the_planner_catches_a_rule_aws_would_refuse_as_a_duplicate():
    def program() -> None:
        for name in ("one", "two"):
            aws.vpc.SecurityGroupIngressRule(
                name, security_group_id="sg-0123", ip_protocol="tcp", from_port=443,
                to_port=443, cidr_ipv4="198.51.100.0/24",
            )  # fmt: skip

    deployment = Deployment()
    first = deployment.up({}, program=program)
    plan = plan_update(first, deployment.up({}, program=program))
    assert any("sg-rule" in c and "all claim" in c for c in plan.collisions)


# --- what replaces load balancers, and architectures -----------------------------------


def test_removing_a_zone_replaces_the_load_balancers_delete_first_not_beside_themselves():
    config = copy.deepcopy(shipped("prod"))
    config["orthgate:network"]["availabilityZones"] = 3
    fewer = copy.deepcopy(config)
    fewer["orthgate:network"]["availabilityZones"] = 2
    plan = two_ups(config, fewer, stack="prod")
    assert_clean(plan)
    for name in ("orthanc-nlb-public", "orthanc-nlb-internal"):
        step = plan.step(name, LB)
        assert (step.op, step.delete_first) == ("replace", True)
    # The Elastic IPs of the remaining zones and the target groups stay.
    assert plan.step("orthanc-nlb-public-0-eip", "aws:ec2/eip:Eip").op == "same"
    assert plan.with_op("replace", "aws:lb/targetGroup:TargetGroup") == []


def test_a_held_single_host_moving_to_graviton_gets_an_arm64_ami_not_its_old_one():
    config = shipped("dev")
    deployment = Deployment(stack="dev")
    first = deployment.up(config)
    second = deployment.up(with_orthanc(config, instanceType="t4g.medium"))
    plan = plan_update(first, second)
    assert_clean(plan)
    assert plan.step("orthanc-0-template", TEMPLATE).op == "delete"
    template = second.named("orthanc-0-template-arm64")
    assert template.inputs["imageId"] != first.named("orthanc-0-template").inputs["imageId"]
    assert template.inputs["instanceType"] == "t4g.medium"
    host = plan.step("orthanc-0", INSTANCE)
    assert (host.op, host.delete_first) == ("replace", True)


def test_a_pinned_ami_of_the_wrong_architecture_is_refused_before_anything_is_declared():
    account = AwsMock()
    account.ami_architectures["ami-0123456789abcdef0"] = "x86_64"
    mocks = RecordingMocks(account)
    config = with_orthanc(shipped("dev"), instanceType="m7g.large", amiId="ami-0123456789abcdef0")
    with pytest.raises(Exception, match=r"orthgate:orthanc\.amiId .* x86_64 image") as caught:
        evaluate(config, stack="dev", mocks=mocks)
    assert "arm64" in str(caught.value)
    assert mocks.declared == []
