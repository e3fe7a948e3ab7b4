"""The whole stack configuration checked offline, by the code ``pulumi up`` runs.

``validate_config`` hands the keys to the program's own ``load_settings`` exactly as the
Pulumi CLI would (objects as JSON text), so it refuses what ``pulumi up`` refuses, in the
same words, with no CLI, no credentials and no cloud.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from orthgate import stack_file
from orthgate.components.config import Settings, load_settings
from orthgate.components.config.errors import NAMESPACE
from orthgate.offline.evaluation import cli_config


def validate_config(config: Mapping[str, Any]) -> Settings:
    """The settings of a stack's config map (``orthgate:network`` -> decoded value).

    Raises ``ConfigError`` with every problem, as ``pulumi up`` would print them.
    """

    def load() -> Settings:
        runtime_config.set_all_config(cli_config(config))
        return load_settings(pulumi.Config(NAMESPACE))

    # A copied context: the process's own Pulumi configuration (if any) is left as it was.
    return contextvars.copy_context().run(load)


def read_config(path: Path | str) -> dict[str, Any]:
    """A stack file's ``config:`` block as the Pulumi CLI reads it.

    Raises ``StackFileError`` for a file the CLI would refuse to load.
    """
    return stack_file.read_stack_file(path)


def validate_file(path: Path | str) -> Settings:
    """Read a stack file as the CLI does and validate its whole configuration."""
    return validate_config(read_config(path))
