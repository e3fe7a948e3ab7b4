"""Moving the comments that follow an entry when entries are added after it or it is removed.

Comment lines after an entry are kept by ruamel.yaml with the last scalar before them,
however deep: the "tail" of an entry. When entries are added after it or it is removed, its
tail (which belongs to what follows) is moved, so that it stays where it was in the text.
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken

Slot = tuple[Any, Any]  # (container, key or index): where a node sits


def _chain(container: Any, key: Any) -> list[Slot]:
    """The slot, then the last entry of its value, and so on down (block collections)."""
    slots = [(container, key)]
    value = container[key]
    while isinstance(value, CommentedMap | CommentedSeq) and value and not value.fa.flow_style():
        last = next(reversed(value)) if isinstance(value, CommentedMap) else len(value) - 1
        slots.append((value, last))
        value = value[last]
    return slots


def _post_index(container: Any) -> int:
    return 2 if isinstance(container, CommentedMap) else 0


def take_tail(container: Any, key: Any) -> str:
    tail = ""
    for node, last in reversed(_chain(container, key)):
        entry = node.ca.items.get(last)
        token = entry[_post_index(node)] if entry else None
        if token is None or "\n" not in token.value:
            continue
        keep, rest = token.value.split("\n", 1)
        tail += rest
        if keep:
            token.value = keep + "\n"
        else:
            entry[_post_index(node)] = None
    return tail


def put_tail(container: Any, key: Any, tail: str) -> None:
    if not tail:
        return
    node, last = _chain(container, key)[-1]
    entry = node.ca.items.setdefault(last, [None, None, None, None])
    token = entry[_post_index(node)]
    if token is None:
        entry[_post_index(node)] = CommentToken("\n" + tail, CommentMark(0), None)
    else:
        token.value = (token.value if token.value.endswith("\n") else token.value + "\n") + tail
