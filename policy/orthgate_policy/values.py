"""Property values as the engine hands them to a policy: proxied, possibly unknown.

At preview time a property computed from another resource's outputs arrives as one of the
engine's unknown sentinels. The policies read plain data (``plain``), say explicitly which
values they need known (``known``), and let an unknown value that does not change the
verdict (a security group id, a log group name) pass as what it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)

UNKNOWNS = frozenset(
    {
        UNKNOWN_ARCHIVE_VALUE,
        UNKNOWN_ARRAY_VALUE,
        UNKNOWN_ASSET_VALUE,
        UNKNOWN_BOOLEAN_VALUE,
        UNKNOWN_NUMBER_VALUE,
        UNKNOWN_OBJECT_VALUE,
        UNKNOWN_STRING_VALUE,
    }
)


def plain(value: Any) -> Any:
    """The data behind the SDK's unknown-checking proxies (sentinels left in place)."""
    try:
        target = value["__target"]
    except (KeyError, TypeError, IndexError):
        target = value
    if isinstance(target, Mapping):
        return {key: plain(item) for key, item in target.items()}
    if isinstance(target, Sequence) and not isinstance(target, str | bytes):
        return [plain(item) for item in target]
    return target


def is_unknown(value: Any) -> bool:
    return isinstance(value, str) and value in UNKNOWNS


def known(value: Any, path: str) -> Any:
    """``value``, or the SDK's UnknownValueError (reported as "can't run during preview")."""
    if is_unknown(value):
        raise UnknownValueError(value, path.split("."))
    if isinstance(value, Mapping):
        for key, item in value.items():
            known(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            known(item, f"{path}[{index}]")
    return value


def dig(props: Mapping[str, Any], path: str, default: Any = None) -> Any:
    """A nested value by dotted path (``metadataOptions.httpTokens``), or ``default``."""
    value: Any = props
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value or value[key] is None:
            return default
        value = value[key]
    return value


def as_list(value: Any) -> list:
    """A list property: None is empty; an unknown list stays one unknown element."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def is_true(value: Any) -> bool:
    """True for true and "true" (launch templates carry booleans as strings)."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


def is_false(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "false"
    return value is False


def number(value: Any, path: str) -> float | None:
    """A numeric property (the engine sends numbers as floats), None when absent."""
    value = known(value, path)
    if value is None or value == "":
        return None
    return float(value)
