"""Where an orthgate project lives: its ``Pulumi.yaml`` and its stack files.

The stack files are found the way the Pulumi CLI finds them: ``Pulumi.<stack>.yaml`` in
the project's ``stackConfigDir`` (``stacks/`` in orthgate), so the operator API and
``pulumi up`` always read the same file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from orthgate.errors import ProjectNotFound, StackNotFound

PROJECT_NAME = "orthgate"
PROJECT_FILE = "Pulumi.yaml"
# Overrides the search from the working directory (for tools that run elsewhere).
PROJECT_DIR_ENV = "ORTHGATE_PROJECT_DIR"


@dataclass(frozen=True)
class Project:
    """An orthgate project directory, as the Pulumi CLI sees it."""

    root: Path
    stack_config_dir: Path

    def stack_file(self, stack: str) -> Path:
        """The file ``pulumi`` reads for ``stack`` (which need not exist yet)."""
        return self.stack_config_dir / f"Pulumi.{stack}.yaml"

    def stacks(self) -> list[str]:
        """The stacks that have a file, sorted."""
        names = (p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in self._files())
        return sorted(names)

    def _files(self) -> list[Path]:
        return sorted(self.stack_config_dir.glob("Pulumi.*.yaml"))


def load_project(root: Path) -> Project:
    """The project in ``root``; refused when ``root`` holds no orthgate ``Pulumi.yaml``."""
    root = root.resolve()
    manifest = root / PROJECT_FILE
    if not manifest.is_file():
        raise ProjectNotFound(f"{root} has no {PROJECT_FILE}: not an orthgate project directory")
    document = yaml.safe_load(manifest.read_text(encoding="utf-8")) or {}
    if not isinstance(document, dict) or document.get("name") != PROJECT_NAME:
        raise ProjectNotFound(
            f"{manifest} is the project {document.get('name')!r}, not {PROJECT_NAME!r}"
            if isinstance(document, dict)
            else f"{manifest} is not a Pulumi project file"
        )
    config_dir = document.get("stackConfigDir") or "."
    return Project(root=root, stack_config_dir=(root / config_dir).resolve())


def find_project(start: Path | None = None) -> Project:
    """The project at ``$ORTHGATE_PROJECT_DIR``, else the nearest one up from ``start``
    (default: the working directory)."""
    override = os.environ.get(PROJECT_DIR_ENV)
    if override:
        return load_project(Path(override))
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / PROJECT_FILE).is_file():
            try:
                return load_project(directory)
            except ProjectNotFound:
                continue  # another Pulumi project: keep looking further up
    raise ProjectNotFound(
        f"no orthgate project (a {PROJECT_FILE} with name: {PROJECT_NAME}) in {here} or "
        f"above it; run from a checkout of orthgate, pass --project-dir, or set "
        f"{PROJECT_DIR_ENV}"
    )


def project_at(directory: Path | None = None) -> Project:
    """The project in ``directory`` when given, else the one ``find_project`` finds."""
    return load_project(directory) if directory is not None else find_project()


def names_a_file(stack_or_file: str) -> bool:
    """Whether a STACK argument is a stack file's path rather than a stack name."""
    candidate = Path(stack_or_file)
    return candidate.suffix in (".yaml", ".yml") or candidate.is_file()


def stack_file_for(stack_or_file: str, project: Project | None = None) -> tuple[str, Path]:
    """``(stack name, file)`` for a stack name (``dev``) or a stack file's path.

    A path is anything that names an existing file or ends in ``.yaml``/``.yml``; its
    stack name is read off ``Pulumi.<stack>.yaml`` (else the file's stem).
    """
    candidate = Path(stack_or_file)
    if names_a_file(stack_or_file):
        if not candidate.is_file():
            raise StackNotFound(f"{candidate}: no such stack file")
        name = candidate.name
        if name.startswith("Pulumi.") and name.endswith(".yaml"):
            return name.removeprefix("Pulumi.").removesuffix(".yaml"), candidate
        return candidate.stem, candidate
    project = project or find_project()
    path = project.stack_file(stack_or_file)
    if not path.is_file():
        known = ", ".join(project.stacks()) or "none"
        raise StackNotFound(
            f"stack {stack_or_file!r} has no file {path} (stacks with a file: {known})"
        )
    return stack_or_file, path
