"""OperatorAlarms: an encrypted topic for the people in stack config, and alarms on what the
other components declared."""

from __future__ import annotations

import json

import pytest

from tests.harness.pulumi_run import STACKS_DIR, evaluate, read_stack_file

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
COMPONENT = "orthgate:monitoring:OperatorAlarms"


def prod_config(**alarms) -> dict:
    config = read_stack_file(STACKS_DIR / "Pulumi.prod.yaml")
    if alarms:
        config["orthgate:alarms"] = alarms
    return config


@pytest.fixture(scope="module")
def prod():
    return evaluate(prod_config(emails=["pacs-oncall@hospital.example"]), stack="prod")


@pytest.fixture(scope="module")
def dev():
    return evaluate(read_stack_file(STACKS_DIR / "Pulumi.dev.yaml"), stack="dev")


def alarms(evaluation) -> dict[str, dict]:
    return {a.name: a.inputs for a in evaluation.of_type(ALARM)}


def test_every_alarm_tells_the_topic_when_it_fires_and_when_it_is_ok_again(prod, dev):
    for evaluation in (prod, dev):
        topic = evaluation.one("aws:sns/topic:Topic")
        assert alarms(evaluation)
        for name, alarm in alarms(evaluation).items():
            assert alarm["alarmActions"] == [topic.id], name
            assert alarm["okActions"] == [topic.id], name
            assert alarm["alarmDescription"].startswith("orthgate ")


def test_the_topic_is_encrypted_with_a_key_cloudwatch_may_use(prod):
    topic = prod.one("aws:sns/topic:Topic")
    key = prod.named("alarms-key")
    assert topic.inputs["kmsMasterKeyId"] == key.outputs["arn"]
    statements = {s["Sid"]: s for s in json.loads(key.inputs["policy"])["Statement"]}
    publish = statements["CloudWatchAlarmsPublish"]
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert publish["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_subscribers_come_from_stack_config_and_keep_their_names(prod):
    [subscription] = prod.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert subscription.inputs["protocol"] == "email"
    assert subscription.inputs["endpoint"] == "pacs-oncall@hospital.example"
    assert subscription.inputs["topic"] == prod.one("aws:sns/topic:Topic").id
    # Named by the address: adding a second one leaves this subscription alone.
    more = evaluate(
        prod_config(emails=["radiology@hospital.example", "pacs-oncall@hospital.example"]),
        stack="prod",
    )
    names = {s.name for s in more.of_type("aws:sns/topicSubscription:TopicSubscription")}
    assert subscription.name in names


def test_a_fleet_alarms_on_unhealthy_targets_and_too_few_healthy_hosts(prod):
    found = alarms(prod)
    groups = {g.outputs["arnSuffix"]: g for g in prod.of_type("aws:lb/targetGroup:TargetGroup")}
    assert len(groups) == 5
    watched_unhealthy = {
        a["dimensions"]["TargetGroup"]
        for a in found.values()
        if a["metricName"] == "UnHealthyHostCount"
    }
    watched_healthy = {
        a["dimensions"]["TargetGroup"]: a
        for a in found.values()
        if a["metricName"] == "HealthyHostCount"
    }
    assert watched_unhealthy == set(groups)
    assert set(watched_healthy) == set(groups)
    for alarm in watched_healthy.values():
        assert alarm["namespace"] == "AWS/NetworkELB"
        assert alarm["comparisonOperator"] == "LessThanThreshold"
        assert alarm["threshold"] == 2  # the fleet's minimum in the prod stack
        assert alarm["treatMissingData"] == "breaching"
        balancers = {
            b.outputs["arnSuffix"] for b in prod.of_type("aws:lb/loadBalancer:LoadBalancer")
        }
        assert alarm["dimensions"]["LoadBalancer"] in balancers


def test_a_single_host_alarms_on_its_status_checks(dev):
    [status] = [a for a in alarms(dev).values() if a["metricName"] == "StatusCheckFailed"]
    assert status["dimensions"] == {"InstanceId": dev.one("aws:ec2/instance:Instance").id}
    assert not [a for a in alarms(dev).values() if a["namespace"] == "AWS/NetworkELB"]


def test_each_site_to_site_vpn_alarms_when_a_tunnel_or_both_are_down(prod):
    vpn = prod.one("aws:ec2/vpnConnection:VpnConnection")
    tunnel = [a for a in alarms(prod).values() if a["metricName"] == "TunnelState"]
    assert {a["dimensions"]["VpnId"] for a in tunnel} == {vpn.id}
    down = {a["comparisonOperator"]: a["threshold"] for a in tunnel}
    assert down == {"LessThanOrEqualToThreshold": 0, "LessThanThreshold": 1}


def test_the_index_database_alarms_on_storage_and_cpu(prod):
    database = prod.one("aws:rds/instance:Instance")
    rds = {a["metricName"]: a for a in alarms(prod).values() if a["namespace"] == "AWS/RDS"}
    assert set(rds) == {"FreeStorageSpace", "CPUUtilization"}
    for alarm in rds.values():
        assert alarm["dimensions"] == {"DBInstanceIdentifier": database.outputs["identifier"]}
    gib = database.inputs["allocatedStorage"]
    assert 0 < rds["FreeStorageSpace"]["threshold"] < gib * 1024**3 * 0.1


def test_host_disks_are_watched_in_the_stacks_own_namespace(dev, prod):
    dev_disks = {
        a["dimensions"]["path"]
        for a in alarms(dev).values()
        if a["metricName"] == "disk_used_percent"
    }
    assert dev_disks == {"/", "/data/orthanc"}
    prod_disks = [a for a in alarms(prod).values() if a["metricName"] == "disk_used_percent"]
    assert {a["dimensions"]["path"] for a in prod_disks} == {"/"}
    assert {a["namespace"] for a in prod_disks} == {"orthgate/prod"}


def test_alarm_names_are_left_to_pulumi_so_a_replacement_never_collides(prod):
    assert all("name" not in alarm for alarm in alarms(prod).values())
    assert all(a.parent_types == [COMPONENT] for a in prod.of_type(ALARM))


def test_a_booting_host_is_not_an_alarm_but_one_left_unhealthy_is(prod):
    grace = prod.one("aws:autoscaling/group:Group").inputs["healthCheckGracePeriod"]
    unhealthy = [a for a in alarms(prod).values() if a["metricName"] == "UnHealthyHostCount"]
    assert unhealthy
    for alarm in unhealthy:
        assert alarm["period"] * alarm["evaluationPeriods"] > grace


def test_a_data_volume_that_stops_reporting_is_an_alarm(dev):
    [data] = [
        a
        for a in alarms(dev).values()
        if a["metricName"] == "disk_used_percent" and a["dimensions"]["path"] == "/data/orthanc"
    ]
    assert data["treatMissingData"] == "breaching"
    [root] = [
        a
        for a in alarms(dev).values()
        if a["metricName"] == "disk_used_percent" and a["dimensions"]["path"] == "/"
    ]
    assert root["treatMissingData"] == "missing"
