"""The configuration reference in the README, generated from the model's descriptions.

Every key of every section, with its default and its rule: the rule is the field's
docstring, the section's prose is the class docstring. ``orthgate reference --write``
replaces the README region between the markers; a test keeps the two equal.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from orthgate.components.config import Settings
from orthgate.components.config.base import DEFAULT_TEXT
from orthgate.components.config.errors import NAMESPACE
from orthgate.errors import OrthgateError
from orthgate.schema import AWS_REGION_DESCRIPTION, prose

BEGIN = "<!-- orthgate:config-reference:begin -->"
END = "<!-- orthgate:config-reference:end -->"

_INTRO = (
    "Generated from the configuration model (`orthgate reference --write`; a test keeps it "
    "current): every key of the `config:` block of `stacks/Pulumi.<stack>.yaml`, its default "
    "and its rule. Editors check the same keys with the JSON Schema "
    "`schema/orthgate-stack.schema.json` (`orthgate schema`); rules between keys are checked "
    "by `orthgate validate`. A key is written `orthgate:<key>` (a bare `<key>` means the "
    "same to Pulumi)."
)


def configuration_reference() -> str:
    """The Markdown of the whole reference (what sits between the README's markers)."""
    parts = ["## Configuration reference", _INTRO]
    for title, model, level in documented_models():
        heading = "Top-level keys" if model is Settings else f"`{title}`"
        parts.append(f"{'#' * level} {heading}")
        if model.__doc__ and model is not Settings:
            parts.append(prose(model.__doc__))
        parts.append(_table(model, top=model is Settings))
    return "\n\n".join(parts) + "\n"


def documented_models() -> list[tuple[str, type[BaseModel], int]]:
    """``(title, model, heading level)`` of every section, in the order the README has them."""
    found: list[tuple[str, type[BaseModel], int]] = [("config", Settings, 3)]
    for name, field in Settings.model_fields.items():
        found += _nested(f"{NAMESPACE}:{field.alias or name}", field, 3)
    return found


def replace_region(readme: str, reference: str) -> str:
    """``readme`` with the text between the markers replaced by ``reference``."""
    before, _, rest = readme.partition(BEGIN)
    _, found, after = rest.partition(END)
    if not found or BEGIN not in readme:
        raise OrthgateError(f"the README has no region between {BEGIN} and {END}")
    return f"{before}{BEGIN}\n{reference}{END}{after}"


def region(readme: str) -> str:
    """The text between the README's markers (without them)."""
    rest = readme.partition(BEGIN)[2]
    if END not in rest:
        raise OrthgateError(f"the README has no region between {BEGIN} and {END}")
    return rest.partition(END)[0].removeprefix("\n")


def _nested(title: str, field: FieldInfo, level: int) -> Iterator[tuple[str, Any, int]]:
    model, is_list = _model_of(field.annotation)
    if model is None:
        return
    title += "[]" if is_list else ""
    yield title, model, level
    for name, child in model.model_fields.items():
        yield from _nested(f"{title}.{child.alias or name}", child, 4)


def _table(model: type[BaseModel], *, top: bool) -> str:
    rows = ["| Key | Default | Rule |", "|---|---|---|"]
    for name, field in model.model_fields.items():
        key = f"{NAMESPACE}:{field.alias or name}" if top else field.alias or name
        rows.append(_row(key, _default(field), field.description or ""))
        if top and name == "environment":
            rows.append(_row("aws:region", "none", AWS_REGION_DESCRIPTION))
    return "\n".join(rows)


def _row(key: str, default: str, description: str) -> str:
    rule = " ".join(prose(description).split("\n\n")).replace("|", "\\|")
    return f"| `{key}` | {default} | {rule} |"


def _default(field: FieldInfo) -> str:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    if DEFAULT_TEXT in extra:
        return str(extra[DEFAULT_TEXT])
    if field.is_required():
        return "(required)"
    value = field.default
    if value is None:
        return "none"
    if isinstance(value, BaseModel):
        return "`{}`"
    shown = value if isinstance(value, str) else json.dumps(value)
    return f"`{shown}`"


def _model_of(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The section model an annotation holds, and whether as a list."""
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    if origin is list:
        return _model_of(typing.get_args(annotation)[0])[0], True
    for member in typing.get_args(annotation) if origin is not None else ():
        model, is_list = _model_of(member)
        if model is not None:
            return model, is_list
    return None, False
