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


def dig(props: Any, path: str, default: Any = None) -> Any:
    """A nested value by dotted path (``metadataOptions.httpTokens``), or ``default``.

    An unknown object on the way (an Output of a whole dict) is not "absent": it raises
    UnknownValueError. An unknown value at the end is returned for the caller to judge.
    """
    value: Any = props
    walked: list[str] = []
    for key in path.split("."):
        if is_unknown(value):
            raise UnknownValueError(value, walked or [path])
        if not isinstance(value, Mapping) or key not in value or value[key] is None:
            return default
        value = value[key]
        walked.append(key)
    return value


def as_list(value: Any, path: str = "") -> list:
    """A list property: None is empty, a single value is a list of one. An unknown list
    (an Output of a whole list) raises UnknownValueError rather than read as empty."""
    if value is None:
        return []
    if is_unknown(value):
        raise UnknownValueError(value, [path or "list"])
    if isinstance(value, list):
        return value
    return [value]


def items(value: Any, path: str) -> list:
    """``as_list``, and no element may be unknown: for lists whose members are read."""
    found = as_list(value, path)
    for index, item in enumerate(found):
        if is_unknown(item):
            raise UnknownValueError(item, [f"{path}[{index}]"])
    return found


def is_true(value: Any) -> bool:
    """True for true, "true" and "1" (launch templates carry booleans as strings, and
    Terraform reads "1" as true)."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return value is True


def whole(value: Any) -> str:
    """A protocol or number as text: 6.0 (the engine sends numbers as floats) is "6"."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip().lower()


def number(value: Any, path: str) -> float | None:
    """A numeric property (the engine sends numbers as floats), None when absent."""
    value = known(value, path)
    if value is None or value == "":
        return None
    return float(value)
