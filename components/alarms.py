"""OperatorAlarms: what an operator must hear about, sent to the people in stack config.

One encrypted SNS topic (subscribers: ``orthgate:alarms.emails``) and CloudWatch alarms on
what the other components declared: hosts failing health checks or fewer healthy hosts
than expected, a single host failing its status checks, site-to-site tunnels down, the
index database running out of storage or CPU, and host disks filling up. Each alarm also
tells the topic when it is OK again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from orthgate.components.aws_context import AwsContext
from orthgate.components.iam_policies import alarm_topic_key_policy
from orthgate.components.naming import Naming
from orthgate.components.orthanc import Monitored

# Free storage below this share of the configured size: RDS storage autoscaling (up to five
# times the size, see components/orthanc/data.py) acts at 10 %, so an alarm here means it
# could not keep up or reached its limit.
FREE_STORAGE_ALARM_SHARE = 0.05
DATABASE_CPU_PERCENT = 80
DISK_USED_PERCENT = 80
GIB = 1024**3


@dataclass(frozen=True)
class OperatorAlarmsArgs:
    emails: Sequence[str]
    orthanc: Monitored
    # Site-to-site VPN name -> connection id.
    vpn_connections: Mapping[str, pulumi.Input[str]]
    context: AwsContext
    naming: Naming


class OperatorAlarms(pulumi.ComponentResource):
    topic_arn: pulumi.Output[str]
    alarm_names: list[pulumi.Output[str]]

    def __init__(
        self, name: str, args: OperatorAlarmsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("orthgate:monitoring:OperatorAlarms", name, None, opts)
        self._name, self._naming = name, args.naming
        self._child = pulumi.ResourceOptions(parent=self)
        naming, watched = args.naming, args.orthanc

        # --- Where alarms go ---------------------------------------------------------------
        key = aws.kms.Key(
            f"{name}-key",
            description=f"orthgate {naming.stack}: encrypts the alarm topic",
            enable_key_rotation=True,
            deletion_window_in_days=7,
            policy=json.dumps(alarm_topic_key_policy(args.context)),
            tags=naming.tags(f"{name}-key"),
            opts=self._child,
        )
        topic = aws.sns.Topic(
            f"{name}-topic",
            # SNS caps a display name at 100 characters (SNS API, SetTopicAttributes).
            display_name=naming.label(max_length=100),
            kms_master_key_id=key.arn,
            tags=naming.tags(f"{name}-topic"),
            opts=self._child,
        )
        self.topic_arn = topic.arn
        for email in args.emails:
            # Named by the address, not its position: removing one never re-subscribes others.
            digest = hashlib.sha256(email.lower().encode()).hexdigest()[:10]
            aws.sns.TopicSubscription(
                f"{name}-email-{digest}",
                topic=topic.arn,
                protocol="email",
                endpoint=email,
                opts=self._child,
            )

        # --- The alarms ------------------------------------------------------------------------
        self.alarm_names = []
        if watched.fleet:
            self._fleet_alarms(watched)
        for i, instance_id in enumerate(watched.instance_ids):
            self._alarm(
                f"host-{i}-status",
                f"Orthanc host {i} fails its EC2 status checks (instance or system)",
                namespace="AWS/EC2",
                metric="StatusCheckFailed",
                dimensions={"InstanceId": instance_id},
                statistic="Maximum",
                comparison="GreaterThanOrEqualToThreshold",
                threshold=1,
                periods=2,
            )
        for vpn, connection_id in args.vpn_connections.items():
            self._vpn_alarms(vpn, connection_id)
        if watched.database_identifier is not None:
            self._database_alarms(watched)
        for path in watched.disk_paths:
            label = "root" if path == "/" else path.strip("/").replace("/", "-")
            # Published by the CloudWatch agent on each host, aggregated over the hosts:
            # the maximum is the fullest host's disk. A data volume that stops reporting is
            # not mounted: that is an alarm too (Orthanc will not start without it).
            data = path != "/"
            self._alarm(
                f"disk-{label}",
                f"a host's disk {path} is over {DISK_USED_PERCENT} % full"
                + (" or not mounted" if data else ""),
                namespace=naming.metrics_namespace,
                metric="disk_used_percent",
                dimensions={"path": path},
                statistic="Maximum",
                comparison="GreaterThanThreshold",
                threshold=DISK_USED_PERCENT,
                period=300,
                periods=2,
                missing="breaching" if data else "missing",
            )
        self.register_outputs({"topicArn": self.topic_arn, "alarmNames": self.alarm_names})

    # --- pieces -------------------------------------------------------------------------------

    def _alarm(
        self,
        label: str,
        description: str,
        *,
        namespace: str,
        metric: str,
        dimensions: Mapping[str, pulumi.Input[str]],
        statistic: str,
        comparison: str,
        threshold: float,
        periods: int,
        period: int = 60,
        missing: str = "missing",
    ) -> None:
        alarm = aws.cloudwatch.MetricAlarm(
            f"{self._name}-{label}",
            alarm_description=f"orthgate {self._naming.stack}: {description}",
            namespace=namespace,
            metric_name=metric,
            dimensions=dict(dimensions),
            statistic=statistic,
            comparison_operator=comparison,
            threshold=threshold,
            period=period,
            evaluation_periods=periods,
            treat_missing_data=missing,
            alarm_actions=[self.topic_arn],
            ok_actions=[self.topic_arn],
            tags=self._naming.tags(f"{self._name}-{label}"),
            opts=self._child,
        )
        self.alarm_names.append(alarm.name)

    def _fleet_alarms(self, watched: Monitored) -> None:
        # Every new host (a refresh, a scale-out) fails its checks while it boots: only a host
        # unhealthy for longer than that, which the group failed to replace, is news.
        booting = watched.boot_seconds // 60 + 2
        for role, lb_suffix, listener, group_suffix in watched.target_groups:
            dimensions = {"LoadBalancer": lb_suffix, "TargetGroup": group_suffix}
            self._alarm(
                f"{role}-{listener}-unhealthy-hosts",
                f"a host fails the {listener} health check of the {role} load balancer",
                namespace="AWS/NetworkELB",
                metric="UnHealthyHostCount",
                dimensions=dimensions,
                statistic="Maximum",
                comparison="GreaterThanThreshold",
                threshold=0,
                periods=booting,
            )
            self._alarm(
                f"{role}-{listener}-healthy-hosts",
                f"fewer than {watched.healthy_hosts_expected} healthy hosts answer {listener} "
                f"behind the {role} load balancer",
                namespace="AWS/NetworkELB",
                metric="HealthyHostCount",
                dimensions=dimensions,
                statistic="Minimum",
                comparison="LessThanThreshold",
                threshold=watched.healthy_hosts_expected,
                periods=3,
                # No data from a load balancer means nobody healthy reported.
                missing="breaching",
            )

    def _vpn_alarms(self, vpn: str, connection_id: pulumi.Input[str]) -> None:
        # TunnelState per connection: 1 both tunnels up, 0 both down, between: one down.
        self._alarm(
            f"vpn-{vpn}-down",
            f"site-to-site VPN {vpn}: both tunnels are down; the site cannot reach Orthanc",
            namespace="AWS/VPN",
            metric="TunnelState",
            dimensions={"VpnId": connection_id},
            statistic="Maximum",
            comparison="LessThanOrEqualToThreshold",
            threshold=0,
            period=300,
            periods=1,
        )
        self._alarm(
            f"vpn-{vpn}-redundancy",
            f"site-to-site VPN {vpn}: one tunnel is down; the site has no redundancy",
            namespace="AWS/VPN",
            metric="TunnelState",
            dimensions={"VpnId": connection_id},
            statistic="Minimum",
            comparison="LessThanThreshold",
            threshold=1,
            period=300,
            periods=2,
        )

    def _database_alarms(self, watched: Monitored) -> None:
        dimensions = {"DBInstanceIdentifier": watched.database_identifier}
        self._alarm(
            "index-free-storage",
            "the index database is running out of storage",
            namespace="AWS/RDS",
            metric="FreeStorageSpace",
            dimensions=dimensions,
            statistic="Minimum",
            comparison="LessThanThreshold",
            threshold=watched.database_storage_gib * GIB * FREE_STORAGE_ALARM_SHARE,
            period=300,
            periods=2,
        )
        self._alarm(
            "index-cpu",
            f"the index database's CPU is over {DATABASE_CPU_PERCENT} %",
            namespace="AWS/RDS",
            metric="CPUUtilization",
            dimensions=dimensions,
            statistic="Average",
            comparison="GreaterThanThreshold",
            threshold=DATABASE_CPU_PERCENT,
            period=300,
            periods=3,
        )
