"""The stack as a graph: which resource a property points at.

A property that takes another resource's id or ARN lists that resource among its
property dependencies, at preview and at update alike; that is the link used first. A
literal value (an id typed into the program) is matched against the declared resources'
known identifiers as a fallback.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy import PolicyResource

from orthgate_policy.values import is_unknown, plain

IDENTIFYING = ("id", "arn", "name", "bucket", "logGroupName")


@dataclass
class Node:
    resource: PolicyResource
    props: dict[str, Any]

    @property
    def type(self) -> str:
        return self.resource.resource_type

    @property
    def urn(self) -> str:
        return self.resource.urn

    @property
    def name(self) -> str:
        return self.resource.name

    def identifiers(self) -> set[str]:
        return {
            v
            for k in IDENTIFYING
            if isinstance(v := self.props.get(k), str) and v and not is_unknown(v)
        }


class Stack:
    def __init__(self, resources: Iterable[PolicyResource]) -> None:
        self.nodes = [Node(r, plain(r.props)) for r in resources]
        self.by_urn = {n.urn: n for n in self.nodes}

    def of_type(self, types: str | Collection[str]) -> list[Node]:
        wanted = {types} if isinstance(types, str) else set(types)
        return [n for n in self.nodes if n.type in wanted]

    def targets(self, node: Node, prop: str, types: str | Collection[str]) -> list[Node]:
        """The declared resources of ``types`` that ``node``'s ``prop`` points at."""
        wanted = {types} if isinstance(types, str) else set(types)
        found = {
            d.urn: self.by_urn[d.urn]
            for d in node.resource.property_dependencies.get(prop, [])
            if d.resource_type in wanted and d.urn in self.by_urn
        }
        values = set(_strings(node.props.get(prop)))
        if values:
            for candidate in self.of_type(wanted):
                if candidate.identifiers() & values:
                    found.setdefault(candidate.urn, candidate)
        return list(found.values())

    def referrers(self, target: Node, types: str | Collection[str], prop: str) -> list[Node]:
        """The resources of ``types`` whose ``prop`` points at ``target``."""
        return [
            n
            for n in self.of_type(types)
            if any(t.urn == target.urn for t in self.targets(n, prop, target.type))
        ]

    def attached_to(self, target: Node) -> Iterator[Node]:
        """Resources any of whose properties depend on ``target``."""
        for node in self.nodes:
            for deps in node.resource.property_dependencies.values():
                if any(d.urn == target.urn for d in deps):
                    yield node
                    break


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if value and not is_unknown(value):
            yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
