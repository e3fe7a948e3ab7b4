"""The Orthanc hosts: a launch template, then one replaceable instance or a fleet.

Every change of the launch template (user data, image, AMI) makes a new version, and a new
version means new hosts. How they replace the old ones is the whole point of this module:
- a fleet rolls: the Auto Scaling group launches a new host, waits until the load
  balancers find it healthy, and only then retires an old one, so it never runs below the
  desired count;
- a single host cannot coexist with its replacement (fixed address, data volume), so
  Pulumi deletes it first: a few minutes without Orthanc, during which senders retry and
  proxy sites keep their images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from orthgate.components.naming import Naming
from orthgate.components.orthanc.load_balancing import Balancer

ROOT_VOLUME_GIB = 30
# The data volume appears as this device; the boot script finds it by volume id instead.
DATA_DEVICE = "/dev/sdf"
# Long enough for a refresh of a large fleet, one host at a time, each booting and
# pulling its images.
REFRESH_TIMEOUT = pulumi.CustomTimeouts(create="30m", update="60m", delete="30m")


@dataclass(frozen=True)
class HostTemplate:
    """What every host of the tier is made from."""

    ami_id: str
    architecture: str
    follow_new_amis: bool
    instance_type: str
    instance_profile_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]
    user_data: pulumi.Output[str]
    public_ip: bool = False  # fleet hosts in public subnets: an address for egress only
    # Only Orthanc's S3 plugin needs the instance role from inside a container; otherwise
    # no container reaches the instance metadata service at all.
    containers_use_instance_role: bool = True
    # What must exist before a host boots (the secret values it reads): an ordering only,
    # so that a new value never shows the hosts' user data as unknown in a preview.
    waits_for: Sequence[pulumi.Resource] = ()


def _template_name(name: str, spec: HostTemplate) -> str:
    """A template per architecture: a held AMI is held only for the architecture it was made
    for, so moving to a Graviton type (or back) gets a fresh template with a fitting AMI
    instead of the old AMI under the new type, which EC2 would refuse to launch."""
    return name if spec.architecture == "x86_64" else f"{name}-{spec.architecture}"


def launch_template(
    name: str, spec: HostTemplate, *, description: str, naming: Naming, opts: pulumi.ResourceOptions
) -> aws.ec2.LaunchTemplate:
    tags = naming.tags(name.removesuffix("-template"))
    name = _template_name(name, spec)
    network = (
        {
            # A public address for pulling images; the group still admits only the load
            # balancers. Security groups then belong to the interface, not the instance.
            "network_interfaces": [
                {
                    "device_index": 0,
                    "associate_public_ip_address": "true",
                    "security_groups": [spec.security_group_id],
                    "delete_on_termination": "true",
                }
            ]
        }
        if spec.public_ip
        else {"vpc_security_group_ids": [spec.security_group_id]}
    )
    return aws.ec2.LaunchTemplate(
        name,
        description=description,
        image_id=spec.ami_id,
        instance_type=spec.instance_type,
        iam_instance_profile={"arn": spec.instance_profile_arn},
        metadata_options={
            "http_endpoint": "enabled",
            "http_tokens": "required",  # IMDSv2 only
            # IMDSv2 answers a token request with this many hops to live; a container on a
            # Docker bridge is one hop further than the host (EC2 User Guide, "Configure the
            # instance metadata options": hop limit). 1: only the host's own agents.
            "http_put_response_hop_limit": 2 if spec.containers_use_instance_role else 1,
            "instance_metadata_tags": "disabled",
        },
        monitoring={"enabled": True},
        ebs_optimized="true",
        block_device_mappings=[
            {
                "device_name": "/dev/xvda",
                "ebs": {
                    "volume_size": ROOT_VOLUME_GIB,
                    "volume_type": "gp3",
                    "encrypted": "true",
                    "kms_key_id": spec.kms_key_arn,
                    "delete_on_termination": "true",
                },
            }
        ],
        user_data=spec.user_data,
        update_default_version=True,
        tag_specifications=[
            {"resource_type": kind, "tags": tags}
            for kind in ("instance", "volume", "network-interface")
        ],
        tags=naming.tags(name),
        # Holding the AMI is a choice (orthgate:orthanc.amiUpdates: hold), and the program
        # says so at every `pulumi up` while a newer one waits (see OrthancServer).
        opts=pulumi.ResourceOptions.merge(
            opts,
            pulumi.ResourceOptions(
                ignore_changes=[] if spec.follow_new_amis else ["image_id"],
                depends_on=list(spec.waits_for),
            ),
        ),
        **network,
    )


@dataclass(frozen=True)
class SingleHost:
    instance: aws.ec2.Instance
    template: aws.ec2.LaunchTemplate


def single_host(
    name: str,
    spec: HostTemplate,
    *,
    subnet_id: pulumi.Input[str],
    private_ip: str,
    eip: aws.ec2.Eip | None,
    volume: aws.ebs.Volume | None,
    termination_protection: bool,
    address_reservations: Sequence[pulumi.Resource],
    naming: Naming,
    opts: pulumi.ResourceOptions,
) -> SingleHost:
    """One instance at a fixed address, replaced delete-first."""
    template = launch_template(
        f"{name}-0-template",
        spec,
        description=f"orthgate {naming.stack} Orthanc host 0",
        naming=naming,
        opts=opts,
    )
    # Delete before replace: the replacement needs the same fixed address and the same
    # data volume, which the old instance holds until it is gone.
    replace_in_place = pulumi.ResourceOptions.merge(
        opts, pulumi.ResourceOptions(delete_before_replace=True)
    )
    instance = aws.ec2.Instance(
        f"{name}-0",
        launch_template={"id": template.id, "version": template.latest_version.apply(str)},
        subnet_id=subnet_id,
        private_ip=private_ip,
        # Termination protection guards against a console click; force_destroy lets Pulumi
        # itself replace or destroy the instance all the same (it lifts the protection
        # first). It works from the first `pulumi up` that records it in the state.
        disable_api_termination=termination_protection,
        force_destroy=True,
        tags=naming.tags(f"{name}-0"),
        opts=pulumi.ResourceOptions.merge(
            replace_in_place, pulumi.ResourceOptions(depends_on=list(address_reservations))
        ),
    )
    if eip is not None:
        aws.ec2.EipAssociation(
            f"{name}-0-eip-association",
            allocation_id=eip.allocation_id,
            instance_id=instance.id,
            opts=replace_in_place,
        )
    if volume is not None:
        aws.ec2.VolumeAttachment(
            f"{name}-data-attachment",
            device_name=DATA_DEVICE,
            volume_id=volume.id,
            instance_id=instance.id,
            # Stop the instance before detaching, so the filesystem is clean on the next.
            stop_instance_before_detaching=True,
            opts=replace_in_place,
        )
    return SingleHost(instance=instance, template=template)


@dataclass(frozen=True)
class FleetSizes:
    min: int
    desired: int
    max: int
    target_cpu_percent: int | None
    health_check_grace_seconds: int


def host_fleet(
    name: str,
    spec: HostTemplate,
    *,
    subnet_ids: Sequence[pulumi.Input[str]],
    sizes: FleetSizes,
    balancers: Sequence[Balancer],
    naming: Naming,
    opts: pulumi.ResourceOptions,
) -> aws.autoscaling.Group:
    """An Auto Scaling group over every zone, rolling to each new template version."""
    template = launch_template(
        f"{name}-host-template",
        spec,
        description=f"orthgate {naming.stack} Orthanc hosts",
        naming=naming,
        opts=opts,
    )
    never_below_desired = {"min_healthy_percentage": 100, "max_healthy_percentage": 200}
    grace = sizes.health_check_grace_seconds
    group = aws.autoscaling.Group(
        f"{name}-hosts",
        vpc_zone_identifiers=list(subnet_ids),
        min_size=sizes.min,
        max_size=sizes.max,
        desired_capacity=sizes.desired,
        launch_template={"id": template.id, "version": template.latest_version.apply(str)},
        target_group_arns=[g.arn for b in balancers for g in b.target_groups.values()],
        # The load balancers' health decides: a host whose nginx or Orthanc stops
        # answering is replaced, not only one whose instance fails.
        health_check_type="ELB",
        health_check_grace_period=grace,
        default_instance_warmup=grace,
        # A new template version (user data, image, AMI) starts a rolling refresh: launch,
        # wait until healthy, then retire an old host; roll back if new hosts never get
        # healthy.
        instance_refresh={
            "strategy": "Rolling",
            "preferences": {
                **never_below_desired,
                "instance_warmup": str(grace),
                "auto_rollback": True,
                "skip_matching": True,
            },
        },
        # The same for every other replacement (rebalancing, health, maintenance).
        instance_maintenance_policy=never_below_desired,
        termination_policies=["OldestLaunchTemplate", "OldestInstance"],
        # The alarms read these (fewer hosts in service than desired).
        enabled_metrics=["GroupDesiredCapacity", "GroupInServiceInstances", "GroupTotalInstances"],
        wait_for_capacity_timeout="20m",
        # The group's own tags; hosts get theirs from the launch template.
        tags=[
            {"key": k, "value": v, "propagate_at_launch": False}
            for k, v in naming.tags(f"{name}-hosts").items()
        ],
        opts=pulumi.ResourceOptions.merge(
            opts,
            pulumi.ResourceOptions(
                custom_timeouts=REFRESH_TIMEOUT,
                # With target tracking, AWS owns the desired count between min and max; a
                # `pulumi up` must not reset it to the configured start value.
                ignore_changes=["desired_capacity"] if sizes.target_cpu_percent else [],
            ),
        ),
    )
    if sizes.target_cpu_percent is not None:
        aws.autoscaling.Policy(
            f"{name}-cpu-target",
            autoscaling_group_name=group.name,
            policy_type="TargetTrackingScaling",
            estimated_instance_warmup=grace,
            target_tracking_configuration={
                "predefined_metric_specification": {
                    "predefined_metric_type": "ASGAverageCPUUtilization"
                },
                "target_value": float(sizes.target_cpu_percent),
            },
            opts=opts,
        )
    return group
