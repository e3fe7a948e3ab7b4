"""A fleet as the program declares it: hosts in an Auto Scaling group behind NLBs."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.harness.pulumi_run import STACKS_DIR, evaluate, read_stack_file
from tests.harness.user_data import deployed_orthanc_config, written_files

ASG = "aws:autoscaling/group:Group"
LB = "aws:lb/loadBalancer:LoadBalancer"
TG = "aws:lb/targetGroup:TargetGroup"
LISTENER = "aws:lb/listener:Listener"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
RESERVATION = "aws:ec2/subnetCidrReservation:SubnetCidrReservation"


def config(network: dict | None = None, **orthanc) -> dict:
    return {
        "aws:region": "eu-central-1",
        "orthgate:environment": "prd",
        "orthgate:network": {
            "vpcCidr": "10.40.0.0/16",
            "availabilityZones": 3,
            "natGateways": "perAz",
            **(network or {}),
        },
        "orthgate:orthanc": {"modalities": [{"name": "ct-1", "aeTitle": "CT_ONE"}], **orthanc},
    }


@pytest.fixture(scope="module")
def prod():
    return evaluate(read_stack_file(STACKS_DIR / "Pulumi.prod.yaml"), stack="prod")


@pytest.fixture(scope="module")
def fleet():
    return evaluate(config(instanceCount=3, fleet={"maxSize": 6}))


def test_production_is_a_fleet_with_no_instance_of_its_own(prod):
    assert prod.outputs["orthancHosting"] == "fleet"
    assert prod.of_type("aws:ec2/instance:Instance") == []
    assert prod.one(ASG)
    assert "orthancInstanceIds" not in prod.outputs


def test_an_image_change_rolls_through_the_group_never_below_the_desired_count(fleet):
    group = fleet.one(ASG)
    template = fleet.one(TEMPLATE)
    # Each template version is a new launch template reference: the provider starts an
    # instance refresh on it.
    assert group.inputs["launchTemplate"] == {
        "id": template.id,
        "version": str(template.outputs["latestVersion"]),
    }
    refresh = group.inputs["instanceRefresh"]
    assert refresh["strategy"] == "Rolling"
    preferences = refresh["preferences"]
    assert preferences["minHealthyPercentage"] == 100
    assert preferences["maxHealthyPercentage"] == 200
    assert preferences["autoRollback"] is True
    assert group.inputs["instanceMaintenancePolicy"] == {
        "minHealthyPercentage": 100,
        "maxHealthyPercentage": 200,
    }
    assert (group.inputs["minSize"], group.inputs["desiredCapacity"], group.inputs["maxSize"]) == (
        3,
        3,
        6,
    )


def test_the_load_balancers_health_decides_after_a_grace_long_enough_for_boot(fleet):
    group = fleet.one(ASG)
    assert group.inputs["healthCheckType"] == "ELB"
    assert group.inputs["healthCheckGracePeriod"] >= 300
    assert sorted(group.inputs["targetGroupArns"]) == sorted(t.id for t in fleet.of_type(TG))
    assert group.inputs["vpcZoneIdentifiers"] == fleet.outputs["privateSubnetIds"]
    # Nothing a host is launched with is fixed: no address, no name.
    template = fleet.one(TEMPLATE)
    assert "networkInterfaces" not in template.inputs
    assert "name" not in template.inputs
    assert "name" not in group.inputs


def test_each_listener_passes_tcp_through_to_a_health_checked_target_group(fleet):
    groups = {t.id: t for t in fleet.of_type(TG)}
    balancers = {b.id: b for b in fleet.of_type(LB)}
    seen = set()
    for listener in fleet.of_type(LISTENER):
        assert listener.inputs["protocol"] == "TCP"
        [action] = listener.inputs["defaultActions"]
        target = groups[action["targetGroupArn"]]
        assert target.inputs["protocol"] == "TCP"
        assert target.inputs["port"] == listener.inputs["port"]
        assert target.inputs["targetType"] == "instance"
        check = target.inputs["healthCheck"]
        # Every kind passes nginx (plaintext DICOM too, since it hands Orthanc the sender's
        # identity): the check goes through nginx to Orthanc, which answers 401 without
        # credentials; nginx alone (Orthanc dead) answers 502.
        assert (check["protocol"], check["port"], check["matcher"]) == ("HTTPS", "443", "401")
        assert check["path"] == "/system"
        assert check["interval"] <= 30
        role = (
            "internal"
            if balancers[listener.inputs["loadBalancerArn"]].inputs["internal"]
            else "public"
        )
        seen.add((role, listener.inputs["port"]))
    assert seen == {
        ("public", 11112),
        ("public", 443),
        ("internal", 11112),
        ("internal", 4242),
        ("internal", 443),
    }


def test_the_internal_load_balancer_holds_reserved_fixed_addresses_in_every_zone(fleet):
    [internal] = [b for b in fleet.of_type(LB) if b.inputs["internal"]]
    mappings = internal.inputs["subnetMappings"]
    assert [m["subnetId"] for m in mappings] == fleet.outputs["privateSubnetIds"]
    addresses = [m["privateIpv4Address"] for m in mappings]
    assert addresses == ["10.40.0.11", "10.40.4.11", "10.40.8.11"]
    reserved = {(r.inputs["subnetId"], r.inputs["cidrBlock"]) for r in fleet.of_type(RESERVATION)}
    for mapping in mappings:
        block = mapping["privateIpv4Address"].rsplit(".", 1)[0] + ".10/31"
        assert (mapping["subnetId"], block) in reserved
    assert all(r.inputs["reservationType"] == "explicit" for r in fleet.of_type(RESERVATION))
    # Declared after the reservations, so nothing else can take those addresses first.
    reservation_urns = {r.urn for r in fleet.of_type(RESERVATION)}
    assert reservation_urns <= set(internal.options.dependencies)
    placing_interfaces = [
        *fleet.of_type("aws:rds/instance:Instance"),
        *fleet.of_type("aws:ec2/natGateway:NatGateway"),
        *[
            e
            for e in fleet.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
            if e.inputs["vpcEndpointType"] == "Interface"
        ],
    ]
    assert placing_interfaces
    for resource in placing_interfaces:
        assert reservation_urns <= set(resource.options.dependencies), resource.name


def test_the_public_load_balancer_has_an_elastic_ip_per_zone_and_security_groups_from_birth(fleet):
    [public] = [b for b in fleet.of_type(LB) if not b.inputs["internal"]]
    mappings = public.inputs["subnetMappings"]
    assert [m["subnetId"] for m in mappings] == fleet.outputs["publicSubnetIds"]
    eips = {e.id for e in fleet.of_type("aws:ec2/eip:Eip") if e.name.startswith("orthanc-nlb")}
    assert {m["allocationId"] for m in mappings} == eips
    for balancer in fleet.of_type(LB):
        assert balancer.inputs["loadBalancerType"] == "network"
        assert len(balancer.inputs["securityGroups"]) == 1
        assert balancer.inputs["enableCrossZoneLoadBalancing"] is True


def test_the_fleet_shares_one_index_and_one_bucket_as_several_writers(fleet):
    orthanc = deployed_orthanc_config(fleet)
    assert orthanc["PostgreSQL"]["Lock"] is False
    assert orthanc["PostgreSQL"]["IndexConnectionsCount"] > 1
    assert orthanc["SaveJobs"] is False
    assert orthanc["StorageAccessOnFind"] == "Never"
    assert orthanc["CheckRevisions"] is True
    # A re-send to another writer replaces the instance there too (its id is a hash of
    # the UIDs, so the shared index still holds one): no duplicate, the last copy wins.
    assert orthanc["OverwriteInstances"] is True
    assert orthanc["AwsS3Storage"]["BucketName"] == fleet.named("orthanc-storage").id


def test_a_single_host_locks_its_index():
    single = evaluate(config(hosting="singleHost"))
    orthanc = deployed_orthanc_config(single)
    assert orthanc["PostgreSQL"]["Lock"] is True
    assert orthanc["SaveJobs"] is True
    assert "IndexConnectionsCount" not in orthanc["PostgreSQL"]


def test_target_tracking_owns_the_desired_count_once_enabled():
    tracked = evaluate(config(fleet={"targetCpuPercent": 60}))
    policy = tracked.one("aws:autoscaling/policy:Policy")
    assert policy.inputs["policyType"] == "TargetTrackingScaling"
    target = policy.inputs["targetTrackingConfiguration"]
    assert target["targetValue"] == 60
    assert (
        target["predefinedMetricSpecification"]["predefinedMetricType"]
        == "ASGAverageCPUUtilization"
    )
    assert policy.inputs["autoscalingGroupName"] == tracked.one(ASG).outputs["name"]
    assert "desiredCapacity" in tracked.one(ASG).options.ignore_changes


def test_without_target_tracking_there_is_no_policy_and_the_count_is_the_configured_one(fleet):
    assert fleet.of_type("aws:autoscaling/policy:Policy") == []
    assert fleet.one(ASG).options.ignore_changes == ()


def test_fleet_hosts_without_nat_get_an_egress_address_but_no_open_port():
    public_hosts = evaluate(config(network={"natGateways": "none"}))
    template = public_hosts.one(TEMPLATE)
    [interface] = template.inputs["networkInterfaces"]
    assert interface["associatePublicIpAddress"] == "true"
    assert interface["securityGroups"] == [public_hosts.named("orthanc-sg").id]
    assert "vpcSecurityGroupIds" not in template.inputs
    assert (
        public_hosts.one(ASG).inputs["vpcZoneIdentifiers"]
        == public_hosts.outputs["publicSubnetIds"]
    )
    host_rules = [
        r
        for r in public_hosts.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs["securityGroupId"] == public_hosts.named("orthanc-sg").id
    ]
    assert host_rules
    assert all("cidrIpv4" not in r.inputs for r in host_rules)


def test_fleet_hosts_log_to_a_stream_per_container_never_a_shared_one(fleet):
    compose = yaml.safe_load(written_files(fleet.one(TEMPLATE))["/etc/orthgate/compose.yml"])
    logged = {n: s for n, s in compose["services"].items() if s["logging"]["driver"] == "awslogs"}
    # The namespace holder alone logs nothing (it runs `tail -f /dev/null`).
    assert set(compose["services"]) - set(logged) == {"namespace"}
    for name, service in logged.items():
        options = service["logging"]["options"]
        assert "awslogs-stream" not in options
        assert options["tag"] == f"{name}/{{{{.ID}}}}"


def test_the_outputs_point_senders_at_the_load_balancers(prod):
    balancers = prod.outputs["orthancLoadBalancers"]
    assert prod.outputs["dicomTlsEndpoint"]["host"] == "pacs.example.org"
    assert [e["host"] for e in prod.outputs["dicomPrivateEndpoints"]] == balancers["internal"][
        "addresses"
    ]
    assert prod.outputs["orthancAutoScalingGroup"] == prod.one(ASG).outputs["name"]
    # A proxy site forwards to the public entry, which the server certificate names.
    bundle = prod.outputs["dicomProxyBundles"]["north-clinic"]
    cloud = json.loads(bundle["orthanc/orthanc.json"])["DicomModalities"]["cloud"]
    assert (cloud["Host"], cloud["Port"], cloud["UseDicomTls"]) == ("pacs.example.org", 11112, True)


def test_a_load_balancer_that_must_be_replaced_goes_before_its_successor(fleet):
    for balancer in fleet.of_type(LB):
        assert balancer.options.delete_before_replace is True


def test_hosts_restart_orthanc_at_different_times_after_a_change(fleet):
    timer = written_files(fleet.one(TEMPLATE))["/etc/systemd/system/orthgate-refresh.timer"]
    assert "RandomizedDelaySec=10min" in timer
