"""Key paths (``clientVpn.clientCidr``, ``network.siteToSiteVpns[0].bgpAsn``, ``aws:region``):
reading and writing them, and walking the configuration along one."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from orthgate import stack_file
from orthgate.editing.errors import EditError
from orthgate.stack_file import StackFileError

KeyPath = tuple[str, tuple[str | int, ...]]  # (top-level key with namespace, the rest)

_HEAD = re.compile(r"[^.\[\]]+")
_PART = re.compile(r"\.([^.\[\]\"]+)|\[([0-9]+)\]|\[\"([^\"]*)\"\]")


def parse_key_path(text: str) -> KeyPath:
    """``clientVpn.clientCidr`` -> ``("orthgate:clientVpn", ("clientCidr",))``."""
    head = _HEAD.match(text)
    if not head:
        raise EditError(f"{text!r} is not a key path (e.g. clientVpn.clientCidr, aws:region)")
    try:
        top = stack_file._config_key(head.group())  # the CLI's own namespacing of keys
    except StackFileError as error:
        raise EditError(str(error)) from None
    rest: list[str | int] = []
    at = head.end()
    while at < len(text):
        part = _PART.match(text, at)
        if not part:
            raise EditError(
                f"{text!r}: cannot read the key path from {text[at:]!r} (write .key, [0] or "
                '["key.with.dots"])'
            )
        name, index, quoted = part.groups()
        rest.append(int(index) if index is not None else name if name is not None else quoted)
        at = part.end()
    return top, tuple(rest)


def format_key_path(top: str, rest: Sequence[str | int]) -> str:
    text = top
    for part in rest:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[^.\[\]\"]+", part):
            text += f".{part}"
        else:
            text += f'["{part}"]'
    return text


def walk(
    config: dict[str, Any], top: str, rest: Sequence[str | int], *, create: bool
) -> tuple[Any, str | int]:
    """The container holding the key path's last part, and that part."""
    parent: Any = config
    key: str | int = top
    walked = top
    for part in rest:
        if not has(parent, key):
            if not create:
                raise KeyError(walked)
            _put(parent, key, [] if isinstance(part, int) else {}, walked)
        child = parent[key]
        wanted = list if isinstance(part, int) else dict
        if not isinstance(child, wanted):
            kind = "a list" if wanted is list else "an object"
            raise EditError(f"{walked} is {json.dumps(child)}, not {kind}: cannot go into it")
        parent, key = child, part
        walked = format_key_path(walked, [part])
    if isinstance(parent, list) and isinstance(key, int) and key > len(parent):
        raise _past_the_end(walked, len(parent))
    return parent, key


def _past_the_end(where: str, length: int) -> EditError:
    return EditError(
        f"{where}: the list has {length} entr{'y' if length == 1 else 'ies'}; use an index "
        f"up to {length} (that one appends)"
    )


def has(container: Any, key: str | int) -> bool:
    if isinstance(container, list):
        return isinstance(key, int) and key < len(container)
    return key in container


def _put(container: Any, key: str | int, value: Any, where: str) -> None:
    if isinstance(container, list):
        if key != len(container):
            raise _past_the_end(where, len(container))
        container.append(value)
    else:
        container[key] = value
