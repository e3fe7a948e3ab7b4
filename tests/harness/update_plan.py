"""What a second `pulumi up` would do, predicted from two evaluations of the program.

A test evaluates a stack, changes its configuration, evaluates again (``Deployment``), and
asks ``plan_update`` how the engine would get from one to the other: each resource is kept,
updated in place, replaced (create-before-delete, Pulumi's default, or delete-before-replace)
or deleted. The plan then answers the questions that break real upgrades:

- ``collisions``: a resource created while an old one still holds the same exclusive thing
  (a fixed private address, an attached volume, an associated Elastic IP, an explicit name):
  EC2 answers ``InvalidIPAddress.InUse``, ``VolumeInUse``, ``AlreadyExists``...
- ``blocked``: a delete AWS refuses (termination protection without ``force_destroy``,
  deletion protection, a protected resource).

Replacement comes from ``replacement.REPLACE_ON_CHANGE`` (what the provider forces new) and
the ``replaceOnChanges`` option; a replaced resource changes the ids its dependents read, so
their inputs from it count as changed (the engine shows them as unknown in a preview).

``plan_destroy`` does the same for `pulumi destroy`: what is deleted, what is kept (retained
or skipped by the provider), and whether what is kept can still be read.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from orthgate.offline.aws_mock import AwsMock
from tests.harness.pulumi_run import Declared, Evaluation, RecordingMocks, evaluate
from tests.harness.replacement import REPLACE_ON_CHANGE, forces_replacement

Op = Literal["same", "update", "replace", "create", "delete"]


@dataclass
class Step:
    op: Op
    urn: str
    type: str
    name: str
    before: Declared | None
    after: Declared | None
    changed: list[str] = field(default_factory=list)  # top-level input names
    forced_by: list[str] = field(default_factory=list)  # paths that force the replacement
    delete_first: bool = False  # replace: delete-before-replace

    def __repr__(self) -> str:
        extra = f" forced by {self.forced_by}" if self.forced_by else ""
        order = " (delete first)" if self.delete_first else ""
        return f"<{self.op}{order} {self.type} {self.name}{extra}>"


@dataclass
class UpdatePlan:
    steps: list[Step]
    collisions: list[str]
    blocked: list[str]

    def step(self, name: str, type_token: str | None = None) -> Step:
        found = [
            s for s in self.steps if s.name == name and (type_token is None or s.type == type_token)
        ]
        assert len(found) == 1, f"expected one step for {name}, found {found}"
        return found[0]

    def with_op(self, op: Op, type_token: str | None = None) -> list[Step]:
        return [s for s in self.steps if s.op == op and (type_token in (None, s.type))]

    @property
    def replaced(self) -> list[Step]:
        return self.with_op("replace")

    def summary(self) -> dict[str, list[str]]:
        ops: dict[str, list[str]] = {}
        for s in self.steps:
            if s.op != "same":
                ops.setdefault(s.op, []).append(f"{s.type}::{s.name}")
        return ops


class Deployment:
    """One stack in one (mocked) AWS account, evaluated again after each change.

    The account remembers what EC2 remembers between two `pulumi up`s (launch template
    versions); ``fresh()`` is the same stack deployed anew after a destroy.
    """

    def __init__(self, *, stack: str = "test", region: str = "eu-central-1", zone_count: int = 3,
                 deployment: str = "1") -> None:  # fmt: skip
        self.stack, self.region, self.zone_count = stack, region, zone_count
        self.account = AwsMock(region=region, zone_count=zone_count, deployment=deployment)
        self.history: list[Evaluation] = []

    def up(self, config: Mapping[str, Any], **options: Any) -> Evaluation:
        evaluation = evaluate(
            config,
            stack=self.stack,
            region=self.region,
            mocks=RecordingMocks(self.account),
            **options,
        )
        self.history.append(evaluation)
        return evaluation

    def fresh(self, deployment: str) -> Deployment:
        return Deployment(stack=self.stack, region=self.region, zone_count=self.zone_count,
                          deployment=deployment)  # fmt: skip


# --- exclusive things: what two live resources can never share -------------------------------


def _mapping_values(inputs: dict, key: str, field_name: str) -> list[str]:
    return [m[field_name] for m in inputs.get(key) or [] if m.get(field_name)]


def _sg_rule(direction: str) -> Callable[[dict], list[tuple[str, ...]]]:
    """A security group holds a rule once: a second identical one is InvalidPermission.Duplicate."""

    def claim(i: dict) -> list[tuple[str, ...]]:
        source = next(
            (
                str(i[k])
                for k in ("cidrIpv4", "cidrIpv6", "prefixListId", "referencedSecurityGroupId")
                if i.get(k)
            ),
            "",
        )
        ports = (str(_norm(i.get("fromPort"))), str(_norm(i.get("toPort"))))
        return [
            (
                "sg-rule",
                direction,
                str(i.get("securityGroupId")),
                str(i.get("ipProtocol")),
                *ports,
                source,
            )
        ]

    return claim


# type -> function of inputs giving the exclusive claims of one resource
_CLAIMS: dict[str, Callable[[dict], list[tuple[str, ...]]]] = {
    "aws:ec2/instance:Instance": lambda i: (
        [("private-ip", i["privateIp"])] if i.get("privateIp") else []
    ),
    "aws:ec2/networkInterface:NetworkInterface": lambda i: [
        ("private-ip", ip) for ip in [i.get("privateIp"), *(i.get("privateIps") or [])] if ip
    ],
    "aws:ec2/volumeAttachment:VolumeAttachment": lambda i: [("attached-volume", i["volumeId"])],
    "aws:ec2/eipAssociation:EipAssociation": lambda i: [("associated-eip", i["allocationId"])],
    "aws:lb/loadBalancer:LoadBalancer": lambda i: (
        [("private-ip", ip) for ip in _mapping_values(i, "subnetMappings", "privateIpv4Address")]
        + [("associated-eip", a) for a in _mapping_values(i, "subnetMappings", "allocationId")]
    ),
    "aws:ec2/subnetCidrReservation:SubnetCidrReservation": lambda i: [
        ("reservation", i["subnetId"], i["cidrBlock"])
    ],
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": _sg_rule("ingress"),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": _sg_rule("egress"),
}
# type -> the input holding an explicit physical name (absent: the provider makes one up)
_EXPLICIT_NAMES = {
    "aws:cloudwatch/logGroup:LogGroup": "name",
    "aws:kms/alias:Alias": "name",
    "aws:ec2/securityGroup:SecurityGroup": "name",
    "aws:autoscaling/group:Group": "name",
    "aws:iam/role:Role": "name",
    "aws:iam/instanceProfile:InstanceProfile": "name",
    "aws:secretsmanager/secret:Secret": "name",
    "aws:rds/instance:Instance": "identifier",
    "aws:rds/subnetGroup:SubnetGroup": "name",
    "aws:rds/parameterGroup:ParameterGroup": "name",
    "aws:s3/bucket:Bucket": "bucket",
    "aws:lb/loadBalancer:LoadBalancer": "name",
    "aws:lb/targetGroup:TargetGroup": "name",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "name",
    "aws:sns/topic:Topic": "name",
    "aws:ec2/launchTemplate:LaunchTemplate": "name",
}


def claims(resource: Declared) -> list[tuple[str, ...]]:
    found = list(_CLAIMS.get(resource.type, lambda _: [])(resource.inputs))
    name_field = _EXPLICIT_NAMES.get(resource.type)
    if name_field and resource.inputs.get(name_field):
        found.append(("name", resource.type, str(resource.inputs[name_field])))
    return found


# --- deletes AWS refuses -------------------------------------------------------------------


def delete_blocker(resource: Declared) -> str | None:
    """Why deleting this resource (as the state last recorded it) would fail, if it would."""
    inputs = resource.inputs
    if resource.options.protect:
        return "it is protected (pulumi state unprotect first)"
    instance = resource.type == "aws:ec2/instance:Instance"
    if instance and inputs.get("disableApiTermination") and not inputs.get("forceDestroy"):
        return "termination protection is on and force_destroy is not recorded"
    if resource.type == "aws:rds/instance:Instance" and inputs.get("deletionProtection"):
        return "deletion protection is on"
    return None


# --- the plan --------------------------------------------------------------------------------


def _matches(after: Declared, before_by_urn: Mapping[str, Declared]) -> Declared | None:
    """The old resource this one continues: same URN, or one of its aliases."""
    if after.urn in before_by_urn:
        return before_by_urn[after.urn]
    for alias in after.options.aliases:
        if alias in before_by_urn:
            return before_by_urn[alias]
        kind, _, name = alias.partition("::")
        for before in before_by_urn.values():
            if (before.type, before.name) == (kind, name):
                return before
    return None


def _top_level_changes(before: Declared, after: Declared) -> list[str]:
    ignored = set(after.options.ignore_changes)
    keys = set(before.inputs) | set(after.inputs)
    return sorted(
        k
        for k in keys
        if k not in ignored
        and k != "__defaults"
        and _norm(before.inputs.get(k)) != _norm(after.inputs.get(k))
    )


def _norm(value: Any) -> Any:
    # Mocks hand numbers back as floats; the engine compares values, not types.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_norm(v) for v in value]
    return value


def plan_update(before: Evaluation, after: Evaluation) -> UpdatePlan:
    before_by_urn = {r.urn: r for r in before.resources if r.urn}
    steps: list[Step] = []
    matched: set[str] = set()
    for resource in after.resources:
        old = _matches(resource, before_by_urn)
        if old is None:
            steps.append(Step("create", resource.urn, resource.type, resource.name, None, resource))
            continue
        matched.add(old.urn)
        changed = _top_level_changes(old, resource)
        steps.append(
            Step(
                "update" if changed else "same",
                resource.urn,
                resource.type,
                resource.name,
                old,
                resource,
                changed,
            )
        )
    for resource in before.resources:
        if resource.urn and resource.urn not in matched:
            steps.append(Step("delete", resource.urn, resource.type, resource.name, resource, None))

    # Replacements, then what they force on dependents, until nothing more changes.
    replaced_urns: set[str] = set()
    while True:
        grew = False
        for step in steps:
            if step.op not in ("update", "same") or step.after is None or step.before is None:
                continue
            forced = _forced(step, replaced_urns)
            if forced:
                step.op, step.forced_by = "replace", forced
                step.delete_first = step.after.options.delete_before_replace
                replaced_urns.add(step.before.urn)
                grew = True
        if not grew:
            break
    # A delete-first replacement takes its replaced dependents with it, deleted first too.
    delete_first_urns = {
        s.before.urn for s in steps if s.op == "replace" and s.delete_first and s.before
    }
    for step in steps:
        if step.op == "replace" and step.before and _depends_on_any(step.before, delete_first_urns):
            step.delete_first = True
            delete_first_urns.add(step.before.urn)

    return UpdatePlan(steps, _collisions(steps, before, after), _blocked(steps))


def _forced(step: Step, replaced_urns: set[str]) -> list[str]:
    """The paths that make the engine replace this resource, if any."""
    assert step.before is not None
    assert step.after is not None
    if step.type.startswith("orthgate:"):
        return []  # components have no provider: they are never replaced
    ignored = set(step.after.options.ignore_changes)
    # Raises for a type the table does not know: never guess "updated in place".
    forced = [
        p
        for p in forces_replacement(step.type, step.before.inputs, step.after.inputs)
        if p.split(".")[0].split("[")[0] not in ignored
    ]
    forced += [p for p in step.after.options.replace_on_changes if p in step.changed or p == "*"]
    # Inputs read from a replaced resource change with it (new id, new ARN).
    paths = REPLACE_ON_CHANGE[step.type]
    for prop, urns in step.after.options.property_dependencies.items():
        if prop not in ignored and any(u in replaced_urns for u in urns):
            hits = sorted(p for p in paths if p == prop or p.startswith((f"{prop}.", f"{prop}[")))
            forced += [f"{h} (from a replaced resource)" for h in hits]
    return forced


def _depends_on_any(resource: Declared, urns: set[str]) -> bool:
    return any(u in urns for u in resource.options.dependencies)


def _collisions(steps: list[Step], before: Evaluation, after: Evaluation) -> list[str]:
    # While new resources are created, every old one still exists except those deleted
    # first (delete-before-replace, and the dependents that go with them).
    gone_first = {s.before.urn for s in steps if s.op == "replace" and s.delete_first and s.before}
    live: dict[tuple[str, ...], str] = {}
    for resource in before.resources:
        if resource.urn not in gone_first:
            for claim in claims(resource):
                live[claim] = f"{resource.type}::{resource.name}"
    found = []
    live_subnets = [r for r in before.resources if r.type == _SUBNET and r.urn not in gone_first]
    for step in steps:
        if step.after is None or step.op not in ("create", "replace") or step.delete_first:
            continue
        for claim in claims(step.after):
            if claim in live:
                found.append(f"{step.type}::{step.name} needs {claim} while {live[claim]} holds it")
        if step.type == _SUBNET:
            found += _overlapping(step.after, live_subnets)
    # Two resources of the new program can never share one either.
    owners: dict[tuple[str, ...], list[str]] = {}
    for resource in after.resources:
        for claim in claims(resource):
            owners.setdefault(claim, []).append(f"{resource.type}::{resource.name}")
    found += [
        f"{sorted(names)} all claim {claim}" for claim, names in owners.items() if len(names) > 1
    ]
    return sorted(set(found))


_SUBNET = "aws:ec2/subnet:Subnet"


def _overlapping(subnet: Declared, live: list[Declared]) -> list[str]:
    """A new subnet overlapping one that still exists: EC2 answers InvalidSubnet.Conflict."""
    new = ipaddress.ip_network(subnet.inputs["cidrBlock"])
    return [
        f"{_SUBNET}::{subnet.name} ({new}) overlaps {old.name} ({old.inputs['cidrBlock']}),"
        " which still exists"
        for old in live
        if old.inputs.get("vpcId") == subnet.inputs.get("vpcId")
        and old.urn != subnet.urn
        and new.overlaps(ipaddress.ip_network(old.inputs["cidrBlock"]))
    ] + [
        f"{_SUBNET}::{subnet.name} is replaced by an overlapping one while it still exists"
        for old in live
        if old.urn == subnet.urn and new.overlaps(ipaddress.ip_network(old.inputs["cidrBlock"]))
    ]


def _blocked(steps: list[Step]) -> list[str]:
    found = []
    for step in steps:
        if step.op in ("replace", "delete") and step.before is not None:
            why = delete_blocker(step.before)
            if why:
                found.append(f"{step.op} of {step.type}::{step.name} fails: {why}")
    return found


# --- destroy ---------------------------------------------------------------------------------

# Types the provider keeps on delete when told to (skip_destroy), besides retain_on_delete.
_SKIP_DESTROY = {"aws:cloudwatch/logGroup:LogGroup": "skipDestroy"}
# What a kept resource needs to stay readable: the input naming its KMS key.
KMS_INPUTS = {
    "aws:cloudwatch/logGroup:LogGroup": "kmsKeyId",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        "rules[0].applyServerSideEncryptionByDefault.kmsMasterKeyId"
    ),
    "aws:rds/instance:Instance": "kmsKeyId",
    "aws:ebs/volume:Volume": "kmsKeyId",
    "aws:secretsmanager/secret:Secret": "kmsKeyId",
}


@dataclass
class DestroyPlan:
    deleted: list[Declared]
    kept: list[Declared]
    blocked: list[str]
    # What AWS itself leaves behind with a name: final snapshots, secrets in their recovery
    # window (kind, physical name, KMS key ARN or None).
    leftovers: list[tuple[str, str, str | None]]

    def unreadable(self, keys: Iterable[Declared]) -> list[str]:
        """Kept things encrypted with a key that is not kept."""
        kept_arns = {k.outputs.get("arn") for k in keys if k in self.kept}
        problems = []
        for resource in self.kept:
            key = _path(resource.inputs, KMS_INPUTS.get(resource.type, ""))
            if key and key not in kept_arns:
                problems.append(
                    f"{resource.type}::{resource.name} is kept but its key {key} is not"
                )
        for kind, name, key in self.leftovers:
            if key and key not in kept_arns:
                problems.append(f"{kind} {name} is left behind but its key {key} is not kept")
        return problems


def _path(inputs: dict, path: str) -> Any:
    value: Any = inputs
    for part in path.replace("[", ".[").split(".") if path else []:
        if part.startswith("["):
            index = int(part[1:-1])
            value = value[index] if isinstance(value, list) and len(value) > index else None
        else:
            value = value.get(part) if isinstance(value, dict) else None
    return value if path else None


def plan_destroy(evaluation: Evaluation) -> DestroyPlan:
    deleted, kept, blocked, leftovers = [], [], [], []
    for resource in evaluation.resources:
        if not resource.urn or resource.type.startswith("orthgate:"):
            continue
        skip = _SKIP_DESTROY.get(resource.type)
        if resource.options.retain_on_delete or (skip and resource.inputs.get(skip)):
            kept.append(resource)
            continue
        deleted.append(resource)
        why = delete_blocker(resource)
        if why:
            blocked.append(f"delete of {resource.type}::{resource.name} fails: {why}")
        if resource.type == "aws:rds/instance:Instance" and not resource.inputs.get(
            "skipFinalSnapshot"
        ):
            leftovers.append(
                (
                    "final snapshot",
                    str(resource.inputs.get("finalSnapshotIdentifier")),
                    resource.inputs.get("kmsKeyId"),
                )
            )
        if resource.type == "aws:secretsmanager/secret:Secret":
            leftovers.append(
                ("secret in its recovery window", resource.outputs.get("name", ""), None)
            )
    return DestroyPlan(deleted, kept, blocked, leftovers)


def physical_names(resources: Iterable[Declared]) -> dict[tuple[str, str], str]:
    """(kind, physical name) -> resource name, for what AWS keys by name."""
    names = {}
    for resource in resources:
        field_name = _EXPLICIT_NAMES.get(resource.type)
        value = resource.outputs.get(field_name or "", None) if field_name else None
        if value:
            names[(resource.type, str(value))] = resource.name
    return names
