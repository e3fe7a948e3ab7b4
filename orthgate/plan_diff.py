"""How an edit of a stack file changes its offline plan: resources, exposure, cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orthgate.exposure import DICOM_PLAIN, Exposure, render_exposure
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
    # The same way in (endpoint, port, path, sources) with other senders or protection.
    changed: list[tuple[Exposure, Exposure]] = field(default_factory=list)

    @property
    def costed(self) -> bool:
        return self.before.cost is not None and self.after.cost is not None

    @property
    def cost_change(self) -> float:
        if not self.costed:
            return 0.0
        return self.after.cost.total_usd - self.before.cost.total_usd

    def component_cost_changes(self) -> dict[str, tuple[float, float]]:
        if not self.costed:
            return {}
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
                "changed": [
                    {"before": old.as_dict(), "after": new.as_dict(), **_sender_change(old, new)}
                    for old, new in self.changed
                ],
            },
            "cost": self._cost_dict(),
        }

    def _cost_dict(self) -> dict[str, Any]:
        if not self.costed:
            return {"error": self.before.cost_error or self.after.cost_error}
        return {
            "beforeMonthlyUsd": round(self.before.cost.total_usd, 2),
            "afterMonthlyUsd": round(self.after.cost.total_usd, 2),
            "changeMonthlyUsd": round(self.cost_change, 2),
            # Lines without a price are in neither total: a change among them is not in the
            # figures above.
            "unpricedBefore": sorted({ln.item for ln in self.before.cost.unpriced}),
            "unpricedAfter": sorted({ln.item for ln in self.after.cost.unpriced}),
            "components": {
                name: {"before": round(old, 2), "after": round(new, 2)}
                for name, (old, new) in self.component_cost_changes().items()
            },
        }


def diff_plans(before: Plan, after: Plan) -> PlanDiff:
    def key(resource: PlannedResource) -> tuple[str, str]:
        return resource.type, resource.name

    old = {key(r): r for r in before.resources}
    new = {key(r): r for r in after.resources}
    old_rows, new_rows = _keyed(before.exposure), _keyed(after.exposure)
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
        opened=[row for key, row in new_rows.items() if key not in old_rows],
        closed=[row for key, row in old_rows.items() if key not in new_rows],
        changed=[
            (old_rows[key], row)
            for key, row in new_rows.items()
            if key in old_rows and _compared(old_rows[key]) != _compared(row)
        ],
    )


def _keyed(rows: list[Exposure]) -> dict[tuple[object, ...], Exposure]:
    keyed: dict[tuple[object, ...], Exposure] = {}
    for row in rows:
        key = _way_in(row)
        if key in keyed:  # two rows for one way in: tell them apart by their senders
            key = (*key, row.ae_titles)
        keyed[key] = row
    return keyed


def _way_in(row: Exposure) -> tuple[object, ...]:
    """What makes a row one way in: where, which port, over which path, from which sources."""
    return (row.endpoint, row.port, row.protocol, row.service, row.path, row.sources,
            row.except_sources)  # fmt: skip


def _compared(row: Exposure) -> tuple[object, ...]:
    # Notes and the ids of the rules behind a row are not exposure.
    return row.ae_titles, row.authentication, row.address


def _sender_change(old: Exposure, new: Exposure) -> dict[str, list[str]]:
    return {
        "aeTitlesAdded": sorted(set(new.ae_titles) - set(old.ae_titles)),
        "aeTitlesRemoved": sorted(set(old.ae_titles) - set(new.ae_titles)),
    }


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
    if not (diff.opened or diff.closed or diff.changed):
        lines.append("  unchanged")
    if diff.opened:
        lines += ["  opened by the edit:", _indent(render_exposure(diff.opened, answers=False))]
    if diff.closed:
        lines += ["  closed by the edit:", _indent(render_exposure(diff.closed, answers=False))]
    if diff.changed:
        lines.append("  same way in, other senders or protection:")
    for old, new in diff.changed:
        change = _sender_change(old, new)
        what = [f"+{t}" for t in change["aeTitlesAdded"]] + [
            f"-{t}" for t in change["aeTitlesRemoved"]
        ]
        if old.authentication != new.authentication:
            what.append(f"protected by: {new.authentication}")
        port = f"{new.port}/{new.protocol}" if new.port else new.protocol
        lines.append(
            f"    {new.endpoint} {port} {new.service}, {new.path}, from "
            f"{', '.join(new.sources)}: {'; '.join(what) or 'address ' + new.address}"
        )
    if any(row.service == DICOM_PLAIN and row.internet for row in diff.after.exposure):
        lines.append("  PLAINTEXT DICOM IS REACHABLE FROM THE INTERNET after the edit")
    if not diff.costed:
        error = diff.before.cost_error or diff.after.cost_error
        lines += ["", f"Monthly cost: not available: {error}"]
        return "\n".join(lines)
    before, after = diff.before.cost.total_usd, diff.after.cost.total_usd
    lines += ["", f"Monthly cost: ${before:,.2f} -> ${after:,.2f} ({diff.cost_change:+,.2f})"]
    for name, (old, new) in diff.component_cost_changes().items():
        lines.append(f"  {name}: ${old:,.2f} -> ${new:,.2f} ({new - old:+,.2f})")
    unpriced_before = {line.item for line in diff.before.cost.unpriced}
    unpriced_after = {line.item for line in diff.after.cost.unpriced}
    added = sorted(unpriced_after - unpriced_before)
    gone = sorted(unpriced_before - unpriced_after)
    if added or gone:
        parts = [f"added {', '.join(added)}"] if added else []
        parts += [f"removed {', '.join(gone)}"] if gone else []
        lines.append(f"  NOT in these figures (no price in the table): {'; '.join(parts)}")
    if diff.after.cost.unverified or diff.after.cost.unpriced:
        lines.append(
            "  (estimate from the package's price table; unverified or unpriced lines: "
            "see `orthgate plan`)"
        )
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())
