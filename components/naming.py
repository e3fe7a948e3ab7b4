"""Physical names and tags, so every AWS object says which stack owns it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Naming:
    stack: str
    environment: str

    @property
    def prefix(self) -> str:
        return f"orthgate-{self.stack}"

    @property
    def metrics_namespace(self) -> str:
        """Where the hosts publish their own metrics (disk use)."""
        return f"orthgate/{self.stack}"

    def log_group_prefix(self, area: str) -> str:
        return f"/orthgate/{self.stack}/{area}/"

    def tags(self, name: str) -> dict[str, str]:
        return {
            "Name": f"{self.prefix}-{name}",
            "orthgate:stack": self.stack,
            "orthgate:environment": self.environment,
            "managed-by": "pulumi-orthgate",
        }
