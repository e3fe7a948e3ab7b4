"""The offline evaluation (orthgate.offline.evaluation) as the tests use it: by default on
the project's own ``__main__.py``, run as the Pulumi language host runs it."""

from __future__ import annotations

import runpy
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from orthgate import stack_file
from orthgate.offline.evaluation import Declared, Evaluation, Options, RecordingMocks, cli_config
from orthgate.offline.evaluation import evaluate as evaluate_program

__all__ = ["Declared", "Evaluation", "Options", "RecordingMocks", "cli_config", "evaluate"]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STACKS_DIR = PROJECT_ROOT / "stacks"


def read_stack_file(path: Path) -> dict[str, Any]:
    """The ``config:`` block of a ``stacks/Pulumi.<stack>.yaml`` file, read as the Pulumi CLI
    reads it (Go's yaml.v3, not PyYAML's YAML 1.1: see orthgate/stack_file.py)."""
    return stack_file.read_stack_file(path)


def shipped_stacks() -> list[Path]:
    return sorted(STACKS_DIR.glob("Pulumi.*.yaml"))


def run_main() -> None:
    """Run ``__main__.py`` exactly as the Pulumi language host would."""
    runpy.run_path(str(PROJECT_ROOT / "__main__.py"), run_name="__main__")


def evaluate(
    config: Mapping[str, Any],
    *,
    program: Callable[[], None] | None = None,
    **options: Any,
) -> Evaluation:
    """``orthgate.offline.evaluation.evaluate`` on ``__main__.py`` unless told otherwise."""
    return evaluate_program(config, program=program or run_main, **options)
