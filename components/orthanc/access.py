"""Security groups of the Orthanc tier and the rules the plan decided, declared as is."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_aws as aws

from orthgate.components.config.orthanc import HTTPS_PORT
from orthgate.components.naming import Naming
from orthgate.components.orthanc.data import DATABASE_PORT
from orthgate.components.orthanc.plan import HOST, OrthancPlan, Rule

_GROUP_DESCRIPTIONS = {
    HOST: "Orthanc: DICOM TLS, plaintext DICOM and HTTPS from allowed sources",
    "lb-public": "Orthanc public load balancer: DICOM TLS and HTTPS from allowed sources",
    "lb-internal": "Orthanc internal load balancer: the private paths",
}


def security_groups(
    name: str,
    plan: OrthancPlan,
    *,
    vpc_id: pulumi.Input[str],
    naming: Naming,
    opts: pulumi.ResourceOptions,
) -> dict[str, aws.ec2.SecurityGroup]:
    """One group per role the plan uses: the hosts', and each load balancer's."""
    roles = [HOST, *(b.group for b in plan.balancers)]
    return {
        role: aws.ec2.SecurityGroup(
            f"{name}-sg" if role == HOST else f"{name}-{role}-sg",
            vpc_id=vpc_id,
            description=_GROUP_DESCRIPTIONS[role],
            tags=naming.tags(f"{name}-sg" if role == HOST else f"{name}-{role}-sg"),
            opts=opts,
        )
        for role in roles
    }


def ingress_rules(
    name: str,
    plan: OrthancPlan,
    groups: Mapping[str, aws.ec2.SecurityGroup],
    other_groups: Mapping[str, pulumi.Input[str]],
    opts: pulumi.ResourceOptions,
) -> None:
    """Each port open to exactly the sources the plan allows, each (group, port, source) once.

    ``other_groups``: security groups outside the tier a rule may name (the Client VPN's).
    """
    known = {role: group.id for role, group in groups.items()} | dict(other_groups)
    for rule in plan.rules:
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-{rule.name}",
            security_group_id=groups[rule.group].id,
            ip_protocol="tcp",
            from_port=rule.port,
            to_port=rule.port,
            description=rule.description,
            opts=pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(aliases=_earlier_names(rule))
            ),
            **_source(rule, known),
        )


def _earlier_names(rule: Rule) -> list[str]:
    """Where a proxy site's rule lived before: under the site's DicomProxyAccess."""
    site = rule.source.proxy_site
    if site is None or rule.kind != "dicom-tls":
        return []
    rule_type = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
    return [
        f"urn:pulumi:{pulumi.get_stack()}::{pulumi.get_project()}::orthgate:dicom:DicomProxyAccess"
        f"${rule_type}::proxy-{site}-dicom-tls-from-{rule.source.label}"
    ]


def _source(rule: Rule, known: Mapping[str, pulumi.Input[str]]) -> dict[str, pulumi.Input[str]]:
    if rule.source.cidr is not None:
        return {"cidr_ipv4": rule.source.cidr}
    return {"referenced_security_group_id": known[str(rule.source.group)]}


def egress_rules(
    name: str,
    plan: OrthancPlan,
    groups: Mapping[str, aws.ec2.SecurityGroup],
    database_group: pulumi.Output[str] | None,
    opts: pulumi.ResourceOptions,
) -> None:
    """Hosts: HTTPS out and PostgreSQL to the index. Load balancers: to the hosts only."""
    host = groups[HOST]
    # HTTPS out: container images, AWS APIs (S3, Secrets Manager, SSM, CloudWatch).
    aws.vpc.SecurityGroupEgressRule(
        f"{name}-https-out",
        security_group_id=host.id,
        ip_protocol="tcp",
        from_port=HTTPS_PORT,
        to_port=HTTPS_PORT,
        cidr_ipv4="0.0.0.0/0",
        description="HTTPS to AWS APIs and the container registry",
        opts=opts,
    )
    if database_group is not None:
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-postgresql-out",
            security_group_id=host.id,
            ip_protocol="tcp",
            from_port=DATABASE_PORT,
            to_port=DATABASE_PORT,
            referenced_security_group_id=database_group,
            description="PostgreSQL to the Orthanc index",
            opts=opts,
        )
    # A load balancer's group also filters what leaves it: traffic and health checks go to
    # the hosts' group on the listener ports, nowhere else.
    for balancer in plan.balancers:
        for listener in balancer.listeners:
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-{balancer.group}-{listener.kind}-to-hosts",
                security_group_id=groups[balancer.group].id,
                ip_protocol="tcp",
                from_port=listener.port,
                to_port=listener.port,
                referenced_security_group_id=host.id,
                description=f"{listener.kind} to the Orthanc hosts (traffic and health checks)",
                opts=opts,
            )
