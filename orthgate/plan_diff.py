"""How an edit of a stack file changes its offline plan: resources, exposure, cost."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orthgate.exposure import Exposure, render_exposure
from orthgate.plan import Plan, PlannedResource, guard_marks


@dataclass
class PlanDiff:
    before: Plan
    after: Plan
    added: list[PlannedResource]
    removed: list[PlannedResource]
    # Same type and name, other protection: what destroy would keep changes.
    reprotected: list[tuple[PlannedResource, PlannedResource]]
    opened: list[Exposure]
    closed: list[Exposure]

    @property
    def cost_change(self) -> float:
        return self.after.cost.total_usd - self.before.cost.total_usd

    def component_cost_changes(self) -> dict[str, tuple[float, float]]:
        old, new = self.before.cost.component_totals(), self.after.cost.component_totals()
        return {
            name: (old.get(name, 0.0), new.get(name, 0.0))
            for name in sorted(set(old) | set(new))
            if round(old.get(name, 0.0), 2) != round(new.get(name, 0.0), 2)
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "before": str(self.before.stack_file),
            "after": str(self.after.stack_file),
            "resources": {
                "added": [r.as_dict() for r in self.added],
                "removed": [r.as_dict() for r in self.removed],
                "protectionChanged": [
                    {"before": old.as_dict(), "after": new.as_dict()}
                    for old, new in self.reprotected
                ],
            },
            "exposure": {
                "opened": [row.as_dict() for row in self.opened],
                "closed": [row.as_dict() for row in self.closed],
            },
            "cost": {
                "beforeMonthlyUsd": round(self.before.cost.total_usd, 2),
                "afterMonthlyUsd": round(self.after.cost.total_usd, 2),
                "changeMonthlyUsd": round(self.cost_change, 2),
                "components": {
                    name: {"before": round(old, 2), "after": round(new, 2)}
                    for name, (old, new) in self.component_cost_changes().items()
                },
            },
        }


def diff_plans(before: Plan, after: Plan) -> PlanDiff:
    def key(resource: PlannedResource) -> tuple[str, str]:
        return resource.type, resource.name

    old = {key(r): r for r in before.resources}
    new = {key(r): r for r in after.resources}
    old_rows, new_rows = set(before.exposure), set(after.exposure)
    return PlanDiff(
        before=before,
        after=after,
        added=[new[k] for k in sorted(new.keys() - old.keys())],
        removed=[old[k] for k in sorted(old.keys() - new.keys())],
        reprotected=[
            (old[k], new[k])
            for k in sorted(old.keys() & new.keys())
            if _guards(old[k]) != _guards(new[k])
        ],
        opened=[row for row in after.exposure if row not in old_rows],
        closed=[row for row in before.exposure if row not in new_rows],
    )


def _guards(resource: PlannedResource) -> tuple[bool, bool, bool]:
    return resource.protect, resource.retain_on_delete, resource.deletion_protection


def render_diff(diff: PlanDiff) -> str:
    lines = [
        f"orthgate diff: {diff.before.stack_file} -> {diff.after.stack_file} "
        f"(stack {diff.before.stack}, offline)",
        "",
        f"Resources: {len(diff.added)} added, {len(diff.removed)} removed",
    ]
    lines += [f"  + {r.type} {r.name}  [{r.component}]" for r in diff.added]
    lines += [f"  - {r.type} {r.name}  [{r.component}]" for r in diff.removed]
    for old, new in diff.reprotected:
        lines.append(
            f"  ~ {new.type} {new.name}: {', '.join(guard_marks(old)) or 'unguarded'} -> "
            f"{', '.join(guard_marks(new)) or 'unguarded'}"
        )
    lines += ["", "Exposure"]
    if not diff.opened and not diff.closed:
        lines.append("  unchanged")
    if diff.opened:
        lines += ["  opened by the edit:", _indent(render_exposure(diff.opened))]
    if diff.closed:
        lines += ["  closed by the edit:", _indent(render_exposure(diff.closed))]
    before, after = diff.before.cost.total_usd, diff.after.cost.total_usd
    lines += ["", f"Monthly cost: ${before:,.2f} -> ${after:,.2f} ({diff.cost_change:+,.2f})"]
    for name, (old, new) in diff.component_cost_changes().items():
        lines.append(f"  {name}: ${old:,.2f} -> ${new:,.2f} ({new - old:+,.2f})")
    if diff.after.cost.unverified or diff.after.cost.unpriced:
        lines.append(
            "  (estimate from the package's price table; unverified or unpriced lines: "
            "see `orthgate plan`)"
        )
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())
