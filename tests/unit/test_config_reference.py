"""The README's configuration reference is generated from the model and cannot drift from it;
``orthgate schema`` and ``orthgate reference`` write and check what they generate."""

from __future__ import annotations

import argparse
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from orthgate import reference, schema
from orthgate.commands import schema as commands
from orthgate.components.config import Settings
from tests.harness.pulumi_run import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"


def all_models() -> set[type[BaseModel]]:
    """Every section model reachable from Settings, found by walking the annotations."""
    found: set[type[BaseModel]] = set()

    def walk(annotation: typing.Any) -> None:
        is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        if is_model and annotation not in found:
            found.add(annotation)
            for field in annotation.model_fields.values():
                walk(field.annotation)
        for argument in typing.get_args(annotation):
            walk(argument)

    walk(Settings)
    return found


def test_the_readme_region_is_the_generated_reference():
    assert reference.region(README.read_text(encoding="utf-8")) == (
        reference.configuration_reference()
    ), "run `orthgate reference --write` and commit README.md"


def test_every_field_has_a_description():
    missing = [
        f"{model.__name__}.{name}"
        for model in all_models()
        for name, field in model.model_fields.items()
        if not (field.description or "").strip()
    ]
    assert missing == []


def test_every_field_of_every_model_is_a_row_of_its_section():
    text = reference.configuration_reference()
    sections = {model: title for title, model, _ in reference.documented_models()}
    assert set(sections) == all_models()
    for model, title in sections.items():
        heading = "### Top-level keys" if model is Settings else f"# `{title}`\n"
        body = text.split(heading, 1)[1].split("\n#", 1)[0]
        for name, field in model.model_fields.items():
            key = field.alias or name
            key = f"orthgate:{key}" if model is Settings else key
            assert f"\n| `{key}` |" in body, f"{title}: {key}"
    assert "\n| `aws:region` | none |" in text


def test_defaults_come_from_the_model():
    text = reference.configuration_reference()
    assert "| `natGateways` | `none` |" in text
    assert "| `instanceType` | `t3.medium` |" in text
    assert "| `vpcCidr` | (required) |" in text
    assert "| `hosting` | `fleet` when `storage: s3` and `index: postgresql`" in text


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--project-dir", type=Path, default=None)  # as orthgate/cli.py has it
    commands.register(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    return args.handler(args)


def test_schema_writes_the_file_and_check_finds_a_stale_one(tmp_path, capsys):
    target = tmp_path / "out" / "stack.schema.json"
    assert run("schema", "--output", str(target)) == 0
    assert target.read_text() == schema.schema_text()
    assert run("schema", "--check", "--output", str(target)) == 0
    target.write_text("{}\n")
    assert run("schema", "--check", "--output", str(target)) == 1
    assert target.read_text() == "{}\n"  # --check writes nothing
    capsys.readouterr()
    assert run("schema", "--output", "-") == 0
    assert capsys.readouterr().out == schema.schema_text()


def test_schema_check_of_the_project_passes():
    assert run("--project-dir", str(PROJECT_ROOT), "schema", "--check") == 0


@pytest.fixture
def readme_copy(tmp_path):
    stale = README.read_text(encoding="utf-8").replace("| `vpcCidr` |", "| `vpcCidrOld` |")
    path = tmp_path / "README.md"
    path.write_text(stale, encoding="utf-8")
    return path


def test_reference_check_and_write_update_only_the_region(readme_copy, capsys):
    assert run("reference", "--check", str(readme_copy)) == 1
    assert run("reference", "--write", str(readme_copy)) == 0
    assert readme_copy.read_text(encoding="utf-8") == README.read_text(encoding="utf-8")
    assert run("reference", "--check", str(readme_copy)) == 0
    capsys.readouterr()
    assert run("reference") == 0
    assert capsys.readouterr().out == reference.configuration_reference()


def test_a_readme_without_markers_is_a_usage_error(tmp_path):
    path = tmp_path / "README.md"
    path.write_text("# no region here\n")
    assert run("reference", "--write", str(path)) == 2
    assert path.read_text() == "# no region here\n"
