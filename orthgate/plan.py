"""The offline plan: what a stack file would deploy, who could reach it, what it would cost.

``plan_stack`` validates the stack file and evaluates the whole program in-process under
the mocks the tests use (``orthgate.offline``): no Pulumi CLI, no credentials, no cloud.
It shows what the program declares from this configuration, not what a cloud account
holds: lookups (zones, AMIs) are answered by the mocks.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orthgate.components.config import Settings
from orthgate.costs import CostAssumptions, CostEstimate, estimate, render_costs
from orthgate.exposure import Exposure, exposure_of, render_exposure
from orthgate.offline.evaluation import Evaluation, evaluate
from orthgate.project import Project, stack_file_for
from orthgate.validation import read_config, validate_config

TOP_LEVEL = "(stack)"


@dataclass(frozen=True)
class PlannedResource:
    component: str  # "<name> (<component type>)", or TOP_LEVEL
    type: str
    name: str
    protect: bool
    retain_on_delete: bool
    # AWS's own guard (RDS deletionProtection): a destroy fails until it is lifted.
    deletion_protection: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "type": self.type,
            "name": self.name,
            "protect": self.protect,
            "retainOnDelete": self.retain_on_delete,
            "deletionProtection": self.deletion_protection,
        }


@dataclass
class Plan:
    stack: str
    stack_file: Path
    region: str
    settings: Settings
    resources: list[PlannedResource]
    exposure: list[Exposure]
    cost: CostEstimate
    evaluation: Evaluation = field(repr=False)
    # True when the stack file sets no aws:region: the plan then assumes one, while
    # `pulumi up` takes the provider's (AWS_REGION, the profile's region).
    region_assumed: bool = False

    def components(self) -> dict[str, list[PlannedResource]]:
        grouped: dict[str, list[PlannedResource]] = defaultdict(list)
        for resource in self.resources:
            grouped[resource.component].append(resource)
        return dict(grouped)

    def as_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "stackFile": str(self.stack_file),
            "region": self.region,
            "regionAssumed": self.region_assumed,
            "environment": self.settings.environment,
            "offline": True,
            "resources": [r.as_dict() for r in self.resources],
            "exposure": [row.as_dict() for row in self.exposure],
            "cost": self.cost.as_dict(),
        }


def plan_stack(
    stack_or_file: str,
    project: Project | None = None,
    *,
    assumptions: CostAssumptions | None = None,
) -> Plan:
    """Validate and evaluate a stack file offline; ``ConfigError`` if it is refused."""
    name, path = stack_file_for(stack_or_file, project)
    return plan_config(read_config(path), name, path, assumptions=assumptions)


def plan_config(
    config: dict[str, Any],
    stack: str,
    stack_file: Path,
    *,
    assumptions: CostAssumptions | None = None,
) -> Plan:
    settings = validate_config(config)
    evaluation = evaluate(config, stack=stack)
    region = str(evaluation.outputs.get("region") or config.get("aws:region"))
    return Plan(
        stack=stack,
        stack_file=stack_file,
        region=region,
        settings=settings,
        resources=_resources(evaluation),
        exposure=exposure_of(evaluation, settings),
        cost=estimate(evaluation, settings, region, assumptions),
        evaluation=evaluation,
        region_assumed="aws:region" not in config,
    )


def _resources(evaluation: Evaluation) -> list[PlannedResource]:
    planned = []
    for declared in evaluation.resources:
        if declared.id is None:
            continue  # a component: the group heading, not a resource of AWS
        top = evaluation.top_component(declared)
        planned.append(
            PlannedResource(
                component=f"{top.name} ({top.type})" if top else TOP_LEVEL,
                type=declared.type,
                name=declared.name,
                protect=declared.options.protect,
                retain_on_delete=declared.options.retain_on_delete,
                deletion_protection=declared.inputs.get("deletionProtection") is True,
            )
        )
    return sorted(planned, key=lambda r: (r.component, r.type, r.name))


def render_plan(plan: Plan, *, list_names: bool = True) -> str:
    """The plan as text for a terminal."""
    lines = [
        f"orthgate plan of stack {plan.stack} ({plan.stack_file}), region {plan.region}",
        "Evaluated offline (no cloud was contacted); nothing was deployed.",
    ]
    if plan.region_assumed:
        lines.append(
            f"The stack file sets no aws:region: this plan assumes {plan.region}; `pulumi up` "
            "uses the AWS provider's region (AWS_REGION, or the profile's). Set aws:region in "
            "the stack file to make both the same."
        )
    lines += ["", f"Resources: {len(plan.resources)}"]
    for component, resources in plan.components().items():
        lines.append(f"  {component}: {len(resources)}")
        by_type: dict[str, list[PlannedResource]] = defaultdict(list)
        for resource in resources:
            by_type[resource.type].append(resource)
        for type_token, same in by_type.items():
            names = ", ".join(_marked(r) for r in same) if list_names else ""
            lines.append(f"    {len(same):>3} {type_token}" + (f": {names}" if names else ""))
    if list_names and any(guard_marks(r) for r in plan.resources):
        lines.append(
            "  (protected: destroy refuses it until unprotected; kept: destroy leaves it in "
            "AWS; deletion protection: AWS refuses to delete it until that is lifted)"
        )
    lines += ["", "Exposure: who can reach what", render_exposure(plan.exposure)]
    lines += ["", render_costs(plan.cost)]
    return "\n".join(lines)


def guard_marks(resource: PlannedResource) -> list[str]:
    """What keeps a resource through a destroy: Pulumi's protect and retain, AWS's own."""
    return [
        mark
        for mark, on in (
            ("protected", resource.protect),
            ("kept", resource.retain_on_delete),
            ("deletion protection", resource.deletion_protection),
        )
        if on
    ]


def _marked(resource: PlannedResource) -> str:
    marks = guard_marks(resource)
    return resource.name + (f" ({', '.join(marks)})" if marks else "")
