"""Ingress rules in one shape, whichever of the four AWS resource shapes declared them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from orthgate_policy.values import as_list, is_unknown, known

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_SECURITY_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
INGRESS_TYPES = frozenset(
    {SECURITY_GROUP, DEFAULT_SECURITY_GROUP, SECURITY_GROUP_RULE, INGRESS_RULE}
)
RULE_TYPES = frozenset({SECURITY_GROUP_RULE, INGRESS_RULE, EGRESS_RULE})

ALL_PROTOCOLS = {"-1", "all"}
# Protocols that carry TCP or UDP ports: what DICOM, SSH and RDP use.
PORT_PROTOCOLS = {"tcp", "6", "udp", "17"} | ALL_PROTOCOLS


@dataclass
class Ingress:
    """One way in: a port range and where it may come from."""

    where: str  # how to find it in the resource, for the message
    protocol: str
    from_port: int
    to_port: int
    cidrs: list[str] = field(default_factory=list)
    security_groups: int = 0  # sources that are security groups (or the group itself)
    prefix_lists: list[str] = field(default_factory=list)

    def covers(self, port: int) -> bool:
        return self.protocol in PORT_PROTOCOLS and self.from_port <= port <= self.to_port

    def ports_text(self) -> str:
        if self.from_port == self.to_port:
            return str(self.from_port)
        return f"{self.from_port}-{self.to_port}"


def _ports(protocol: str, from_port: Any, to_port: Any, where: str) -> tuple[int, int]:
    if protocol in ALL_PROTOCOLS:
        return 0, 65535  # AWS ignores the ports of an all-traffic rule
    low = int(known(from_port, f"{where}.fromPort") or 0)
    high = int(known(to_port, f"{where}.toPort") or 0)
    if low == -1 or high == -1:  # "all ports" in the older rule shapes
        return 0, 65535
    return low, high


def _protocol(value: Any, where: str) -> str:
    return str(known(value, where)).strip().lower()


def _groups(*values: Any) -> int:
    """Count security group sources; an unknown id is still a security group."""
    return sum(len([v for v in as_list(value) if v]) for value in values)


def _prefix_lists(value: Any, where: str) -> list[str]:
    return [str(known(p, where)) for p in as_list(value) if p]


def _cidrs(value: Any, where: str) -> list[str]:
    return [str(known(c, where)) for c in as_list(value) if c]


@dataclass(frozen=True)
class _Shape:
    """Where one resource shape keeps a rule's protocol and sources."""

    protocol: str
    cidrs: tuple[str, ...]
    groups: str
    prefix_lists: str


_INLINE = _Shape("protocol", ("cidrBlocks", "ipv6CidrBlocks"), "securityGroups", "prefixListIds")
_LEGACY_RULE = _Shape(
    "protocol", ("cidrBlocks", "ipv6CidrBlocks"), "sourceSecurityGroupId", "prefixListIds"
)
_VPC_RULE = _Shape(
    "ipProtocol", ("cidrIpv4", "cidrIpv6"), "referencedSecurityGroupId", "prefixListId"
)


def _read(where: str, rule: Mapping[str, Any], shape: _Shape) -> Ingress:
    protocol = _protocol(rule.get(shape.protocol), f"{where}.{shape.protocol}")
    low, high = _ports(protocol, rule.get("fromPort"), rule.get("toPort"), where)
    cidrs = [c for key in shape.cidrs for c in _cidrs(rule.get(key), f"{where}.{key}")]
    return Ingress(
        where,
        protocol,
        low,
        high,
        cidrs=cidrs,
        # "self": the group itself is the source.
        security_groups=_groups(rule.get(shape.groups)) + (1 if rule.get("self") is True else 0),
        prefix_lists=_prefix_lists(rule.get(shape.prefix_lists), f"{where}.{shape.prefix_lists}"),
    )


def ingress_of(resource_type: str, props: Mapping[str, Any]) -> Iterator[Ingress]:
    """Every ingress a security group, a rule resource or an ingress rule declares."""
    if resource_type in (SECURITY_GROUP, DEFAULT_SECURITY_GROUP):
        ingress = props.get("ingress")
        if is_unknown(ingress):
            known(ingress, "ingress")
        for index, rule in enumerate(as_list(ingress)):
            where = f"ingress[{index}]"
            if is_unknown(rule):
                known(rule, where)
            yield _read(where, rule, _INLINE)
    elif resource_type == SECURITY_GROUP_RULE:
        if str(known(props.get("type"), "type")).lower() == "ingress":
            yield _read("rule", props, _LEGACY_RULE)
    elif resource_type == INGRESS_RULE:
        yield _read("rule", props, _VPC_RULE)
