"""The offline plan: what a stack file would deploy, who could reach it, what it would cost.

``plan_stack`` validates the stack file and evaluates the whole program in-process under
the mocks the tests use (``orthgate.offline``): no Pulumi CLI, no credentials, no cloud.
It shows what the program declares from this configuration, not what a cloud account
holds: lookups (zones, AMIs) are answered by the mocks.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orthgate.components.config import Settings
from orthgate.costs import (
    CostAssumptions,
    CostEstimate,
    UnknownRegionError,
    estimate,
    render_costs,
)
from orthgate.errors import OrthgateError
from orthgate.exposure import Exposure, exposure_of, render_exposure
from orthgate.offline.aws_mock import DEFAULT_REGION
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
    cost: CostEstimate | None  # None: the price table has no prices for the region
    evaluation: Evaluation = field(repr=False)
    cost_error: str = ""
    # Where the region came from: "aws:region", "AWS_REGION", "AWS_DEFAULT_REGION", or ""
    # (assumed: `pulumi up` would take the AWS profile's region).
    region_from: str = "aws:region"

    @property
    def region_assumed(self) -> bool:
        return not self.region_from

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
            "regionFrom": self.region_from or "assumed",
            "environment": self.settings.environment,
            "offline": True,
            "resources": [r.as_dict() for r in self.resources],
            "exposure": [row.as_dict() for row in self.exposure],
            "cost": self.cost.as_dict() if self.cost else {"error": self.cost_error},
        }


def plan_stack(
    stack_or_file: str,
    project: Project | None = None,
    *,
    assumptions: CostAssumptions | None = None,
    price_region: str | None = None,
) -> Plan:
    """Validate and evaluate a stack file offline; ``ConfigError`` if it is refused.

    ``price_region`` prices the stack with another region's prices (for a region the
    price table lacks: an approximation, and the plan says so).
    """
    name, path = stack_file_for(stack_or_file, project)
    return plan_config(
        read_config(path), name, path, assumptions=assumptions, price_region=price_region
    )


def plan_config(
    config: dict[str, Any],
    stack: str,
    stack_file: Path,
    *,
    assumptions: CostAssumptions | None = None,
    price_region: str | None = None,
) -> Plan:
    settings = validate_config(config)
    region, region_from = stack_region(config)
    evaluation = evaluate(config, stack=stack, region=region)
    cost, cost_error = None, ""
    try:
        cost = estimate(evaluation, settings, price_region or region, assumptions)
    except UnknownRegionError as error:
        # The resources and the exposure stand without prices: never lose them for a price.
        cost_error = f"{error}; `--price-region` prices it with one of those instead"
    return Plan(
        stack=stack,
        stack_file=stack_file,
        region=region,
        settings=settings,
        resources=_resources(evaluation),
        exposure=exposure_of(evaluation, settings),
        cost=cost,
        cost_error=cost_error,
        evaluation=evaluation,
        region_from=region_from,
    )


def stack_region(config: dict[str, Any]) -> tuple[str, str]:
    """The region `pulumi up` would deploy to, and where that came from.

    The stack file's ``aws:region`` first; else, as the AWS provider does, the environment
    (``AWS_REGION``, then ``AWS_DEFAULT_REGION``); else the mocks' default, said as such.
    """
    given = config.get("aws:region")
    if given:
        return _region_name(given, "aws:region"), "aws:region"
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if os.environ.get(variable):
            return _region_name(os.environ[variable], variable), variable
    return DEFAULT_REGION, ""


# AWS region names: eu-central-1, us-gov-west-1, cn-north-1, ap-southeast-5, ...
_REGION_NAME = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")


def _region_name(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise RegionError(
            f"{where} is not a plain region name (a secret or an object?): the offline plan "
            "needs to know the region; write it in clear, e.g. eu-central-1"
        )
    if not _REGION_NAME.fullmatch(value):
        raise RegionError(f"{where} = {value!r} is not an AWS region name such as eu-central-1")
    return value


class RegionError(OrthgateError):
    """The region a plan would deploy to cannot be read or is not a region."""


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
            f"The stack file sets no aws:region, nor does AWS_REGION: this plan assumes "
            f"{plan.region}; `pulumi up` would use the AWS profile's region. Set aws:region in "
            "the stack file to make both the same."
        )
    elif plan.region_from != "aws:region":
        lines.append(
            f"The stack file sets no aws:region: the region is {plan.region} from "
            f"{plan.region_from}, as the AWS provider would take it."
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
    if plan.cost is None:
        lines += ["", f"Monthly cost estimate: not available: {plan.cost_error}"]
    else:
        if plan.cost.region != plan.region:
            lines += ["", f"Priced with {plan.cost.region}'s prices (--price-region): an "
                      f"approximation for {plan.region}."]  # fmt: skip
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
