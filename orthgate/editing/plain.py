"""Helpers on the plain configuration (the config map as the Pulumi CLI reads it): comparing
values, and finding the objects, lists and named entries an edit changes."""

from __future__ import annotations

import json
from typing import Any

from orthgate.editing.errors import EditError


def same(a: Any, b: Any) -> bool:
    """Equal as the program sees them (``True`` is not ``1``, ``1`` is not ``1.0``)."""
    return json.dumps(a) == json.dumps(b)


def map_at(config: dict[str, Any], key: str, *, create: bool = False) -> dict[str, Any]:
    if key not in config and create:
        config[key] = {}
    value = config.get(key)
    if not isinstance(value, dict):
        state = "is not set" if value is None else "is not an object"
        raise EditError(f"{key} {state}: fix it first (orthgate validate shows what is wrong)")
    return value


def list_at(config: dict[str, Any], key: str, *, create: bool = False) -> list[Any]:
    if key not in config and create:
        config[key] = []
    return list_in(config, key, key, create=False)


def list_in(owner: dict[str, Any], key: str, where: str, *, create: bool = True) -> list[Any]:
    if key not in owner and create:
        owner[key] = []
    value = owner.get(key, [])
    if not isinstance(value, list):
        raise EditError(f"{where} is not a list: fix it first (orthgate validate shows how)")
    return value


def entry_names(entries: list[Any]) -> list[str]:
    return [e.get("name") for e in entries if isinstance(e, dict)]


def listing(entries: list[Any], what: str) -> str:
    return plain_listing(entry_names(entries), what)


def plain_listing(names: list[Any], what: str = "workstations") -> str:
    return f"{what}: {', '.join(map(str, names))}" if names else f"no {what} yet"


def index_of(entries: list[Any], name: str, what: str, where: str) -> int:
    names = entry_names(entries)
    if name not in names:
        raise EditError(f"no {what} named {name} in {where} ({plain_listing(names, what + 's')})")
    return names.index(name)
