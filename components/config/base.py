"""The base of every configuration object: camelCase keys, unknown keys refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class Section(BaseModel):
    """A configuration object as written in the stack file.

    Python fields are snake_case; the stack file uses the camelCase alias. Objects are frozen:
    settings are read once, validated once and then only passed around.
    """

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        frozen=True,
        validate_default=False,
    )
