"""The base of every configuration object: camelCase keys, unknown keys refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo


class Section(BaseModel):
    """A configuration object as written in the stack file.

    Python fields are snake_case; the stack file uses the camelCase alias. Objects are frozen:
    settings are read once, validated once and then only passed around. Each field's
    docstring is its description: the rule ``orthgate reference`` and the JSON Schema show.
    """

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        frozen=True,
        validate_default=False,
        use_attribute_docstrings=True,
    )


# The key under which a field's default is described in words where no value says it (one
# the program works out from other keys); ``orthgate reference`` shows it, the schema drops it.
DEFAULT_TEXT = "x-orthgate-default"


def default_text(text: str) -> FieldInfo:
    """Field metadata: how the program fills the field when the stack leaves it unset."""
    return Field(json_schema_extra={DEFAULT_TEXT: text})
