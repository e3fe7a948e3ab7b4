"""Ingress rules in one shape, whichever of the four AWS resource shapes declared them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from orthgate_policy.values import UnknownValueError, as_list, is_unknown, known, whole

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
    # Sources not known before the update (paths), judged then.
    unknown_sources: list[str] = field(default_factory=list)

    def covers(self, port: int) -> bool:
        return self.protocol in PORT_PROTOCOLS and self.from_port <= port <= self.to_port

    @property
    def span(self) -> int:
        return self.to_port - self.from_port + 1

    def ports_text(self) -> str:
        if self.from_port == self.to_port:
            return str(self.from_port)
        return f"{self.from_port}-{self.to_port}"


def _port(value: Any, path: str) -> int:
    value = known(value, path)
    if value is None or value == "":
        return 0
    return int(float(value))  # 4242.0 from the engine, "4242" from an untyped program


def _ports(protocol: str, from_port: Any, to_port: Any, where: str) -> tuple[int, int]:
    if protocol in ALL_PROTOCOLS:
        return 0, 65535  # AWS ignores the ports of an all-traffic rule
    low = _port(from_port, f"{where}.fromPort")
    high = _port(to_port, f"{where}.toPort")
    if low == -1 or high == -1:  # "all ports" in the older rule shapes
        return 0, 65535
    return low, high


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


def _sources(value: Any, path: str, unknown: list[str]) -> list[str]:
    """Known source strings; unknown ones are noted in ``unknown``."""
    if is_unknown(value):
        unknown.append(path)
        return []
    found = []
    for index, item in enumerate(as_list(value)):
        if is_unknown(item):
            unknown.append(f"{path}[{index}]")
        elif item:
            found.append(str(item).strip())
    return found


def _read(where: str, rule: Any, shape: _Shape) -> Ingress:
    if not isinstance(rule, Mapping):
        raise TypeError(f"{where} is {rule!r}, not a rule")
    protocol = whole(known(rule.get(shape.protocol), f"{where}.{shape.protocol}"))
    low, high = _ports(protocol, rule.get("fromPort"), rule.get("toPort"), where)
    unknown: list[str] = []
    cidrs = [c for key in shape.cidrs for c in _sources(rule.get(key), f"{where}.{key}", unknown)]
    prefix_lists = _sources(rule.get(shape.prefix_lists), f"{where}.{shape.prefix_lists}", unknown)
    groups = rule.get(shape.groups)
    # An unknown group id is still a security group.
    group_count = 1 if is_unknown(groups) else len([g for g in as_list(groups) if g])
    return Ingress(
        where,
        protocol,
        low,
        high,
        cidrs=cidrs,
        # "self": the group itself is the source.
        security_groups=group_count + (1 if rule.get("self") is True else 0),
        prefix_lists=prefix_lists,
        unknown_sources=unknown,
    )


def _raw_rules(resource_type: str, props: Mapping[str, Any]) -> Iterator[tuple[str, Any, _Shape]]:
    if resource_type in (SECURITY_GROUP, DEFAULT_SECURITY_GROUP):
        for index, rule in enumerate(as_list(props.get("ingress"), "ingress")):
            yield f"ingress[{index}]", rule, _INLINE
    elif resource_type == SECURITY_GROUP_RULE:
        if whole(known(props.get("type"), "type")) == "ingress":
            yield "rule", props, _LEGACY_RULE
    elif resource_type == INGRESS_RULE:
        yield "rule", props, _VPC_RULE


def read_ingress(
    resource_type: str, props: Mapping[str, Any]
) -> tuple[list[Ingress], UnknownValueError | None]:
    """Every ingress the resource declares that can be read now, and the first reason
    (a value unknown at preview) another could not be."""
    rules: list[Ingress] = []
    postponed: UnknownValueError | None = None
    for where, rule, shape in _raw_rules(resource_type, props):
        try:
            if is_unknown(rule):
                known(rule, where)
            rules.append(_read(where, rule, shape))
        except UnknownValueError as error:
            postponed = postponed or error
    return rules, postponed


def ingress_of(resource_type: str, props: Mapping[str, Any]) -> Iterator[Ingress]:
    """Every ingress; raises UnknownValueError after the readable ones if one was not."""
    rules, postponed = read_ingress(resource_type, props)
    yield from rules
    if postponed is not None:
        raise postponed
