"""The fleet's stable addresses: Network Load Balancers passing TCP through to the hosts.

TCP pass-through keeps mutual TLS end to end between sender and nginx on a host: the load
balancer never holds a key and never sees a DICOM byte in the clear.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from orthgate.components.naming import Naming
from orthgate.components.orthanc import plan as fleet
from orthgate.components.orthanc.plan import BalancerPlan

# An idle DICOM association may wait between studies as long as nginx lets it (600 s);
# the NLB's default (350 s) would cut it first.
TCP_IDLE_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class Balancer:
    role: str
    dns_name: pulumi.Output[str]
    arn_suffix: pulumi.Output[str]
    # Public: the Elastic IPs; internal: the fixed private addresses.
    addresses: pulumi.Output[list[str]]
    target_groups: dict[str, aws.lb.TargetGroup]  # listener key -> target group


def load_balancer(
    name: str,
    balancer: BalancerPlan,
    *,
    subnet_ids: Sequence[pulumi.Input[str]],
    vpc_id: pulumi.Input[str],
    security_group: aws.ec2.SecurityGroup,
    address_reservations: Sequence[pulumi.Resource],
    naming: Naming,
    opts: pulumi.ResourceOptions,
) -> Balancer:
    """One NLB over every zone, a TCP listener and target group per port of the plan."""
    short = "pub" if balancer.role == "public" else "int"
    label = f"{name}-nlb-{balancer.role}"
    if balancer.role == "public":
        eips = [
            aws.ec2.Eip(
                f"{label}-{zone}-eip", domain="vpc", tags=naming.tags(f"{label}-{zone}"), opts=opts
            )
            for zone in balancer.zones
        ]
        mappings = [
            {"subnet_id": subnet_ids[zone], "allocation_id": eip.allocation_id}
            for zone, eip in zip(balancer.zones, eips, strict=True)
        ]
        addresses = pulumi.Output.all(*[eip.public_ip for eip in eips])
    else:
        mappings = [
            {"subnet_id": subnet_ids[zone], "private_ipv4_address": address}
            for zone, address in zip(balancer.zones, balancer.addresses, strict=True)
        ]
        addresses = pulumi.Output.from_input(list(balancer.addresses))
    nlb = aws.lb.LoadBalancer(
        label,
        load_balancer_type="network",
        internal=balancer.role == "internal",
        subnet_mappings=mappings,
        # An NLB gets security groups only at creation, never later: declare it with them.
        security_groups=[security_group.id],
        # A zone with no healthy host still answers at its address: hosts of other zones
        # take its traffic (a fleet of two spans only two of three zones).
        enable_cross_zone_load_balancing=True,
        tags=naming.tags(label),
        opts=pulumi.ResourceOptions.merge(
            opts,
            pulumi.ResourceOptions(
                depends_on=list(address_reservations),
                # What replaces an NLB (a zone removed, other subnets) needs the same fixed
                # addresses and Elastic IPs, and its target groups can serve only one load
                # balancer: the old one goes first. An interruption, but never a failed up.
                delete_before_replace=True,
            ),
        ),
    )
    groups = {}
    for listener in balancer.listeners:
        # Short logical names: Pulumi appends 8 characters and AWS allows 32.
        group = aws.lb.TargetGroup(
            f"{name}-tg-{short}-{listener.key}",
            port=listener.port,
            protocol="TCP",
            target_type="instance",
            vpc_id=vpc_id,
            deregistration_delay=fleet.DEREGISTRATION_DELAY_SECONDS,
            connection_termination=True,
            health_check={
                "protocol": listener.health.protocol,
                "port": listener.health.port,
                **({"path": listener.health.path} if listener.health.path else {}),
                **({"matcher": listener.health.matcher} if listener.health.matcher else {}),
                "interval": fleet.HEALTH_CHECK_INTERVAL_SECONDS,
                "timeout": fleet.HEALTH_CHECK_TIMEOUT_SECONDS,
                "healthy_threshold": fleet.HEALTHY_THRESHOLD,
                "unhealthy_threshold": fleet.UNHEALTHY_THRESHOLD,
            },
            tags=naming.tags(f"{label}-{listener.key}"),
            opts=opts,
        )
        aws.lb.Listener(
            f"{label}-{listener.key}",
            load_balancer_arn=nlb.arn,
            port=listener.port,
            protocol="TCP",
            tcp_idle_timeout_seconds=TCP_IDLE_TIMEOUT_SECONDS,
            default_actions=[{"type": "forward", "target_group_arn": group.arn}],
            tags=naming.tags(f"{label}-{listener.key}"),
            opts=opts,
        )
        groups[listener.key] = group
    return Balancer(
        role=balancer.role,
        dns_name=nlb.dns_name,
        arn_suffix=nlb.arn_suffix,
        addresses=addresses,
        target_groups=groups,
    )


def load_balancers(
    name: str,
    plan: fleet.OrthancPlan,
    *,
    public_subnet_ids: Sequence[pulumi.Input[str]],
    private_subnet_ids: Sequence[pulumi.Input[str]],
    vpc_id: pulumi.Input[str],
    groups: Mapping[str, aws.ec2.SecurityGroup],
    address_reservations: Sequence[pulumi.Resource],
    naming: Naming,
    opts: pulumi.ResourceOptions,
) -> dict[str, Balancer]:
    return {
        balancer.role: load_balancer(
            name,
            balancer,
            subnet_ids=public_subnet_ids if balancer.tier == "public" else private_subnet_ids,
            vpc_id=vpc_id,
            security_group=groups[balancer.group],
            address_reservations=address_reservations,
            naming=naming,
            opts=opts,
        )
        for balancer in plan.balancers
    }
