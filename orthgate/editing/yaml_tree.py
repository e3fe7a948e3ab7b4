"""Carrying a change of the plain configuration over to the file's round-trip tree: only the
keys and list entries that differ change, and comments stay where they were in the text."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from orthgate import stack_file
from orthgate.editing.comment_tails import Slot, put_tail, take_tail
from orthgate.editing.errors import EditError
from orthgate.editing.layout import dump, indentation, new_node, round_trip_yaml, scalar
from orthgate.editing.plain import same
from orthgate.stack_file import StackFileError


def render(before: str, old: dict[str, Any], new: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """The file's text with ``new`` in place of ``old``, all else kept."""
    try:
        document = round_trip_yaml().load(before)
        yaml = round_trip_yaml(indentation(document, before))
        document = yaml.load(before)
    except YAMLError as error:
        raise StackFileError(f"cannot edit this file: {error}") from None
    warnings = []
    if dump(yaml, document, before) != before:
        warnings.append(
            "this file's layout is not one ruamel.yaml reproduces exactly (mixed indentation?): "
            "lines other than the edited ones may be re-indented; check the diff"
        )
    if document is None:
        document = CommentedMap()
    if not isinstance(document.get("config"), CommentedMap):
        document["config"] = CommentedMap()
    _sync_map(document["config"], old, new, (document, "config"), stack_file._config_key)
    return dump(yaml, document, before), tuple(warnings)


def _sync(container: Any, key: Any, old: Any, new: Any) -> None:
    """Make ``container[key]`` hold ``new`` (it holds ``old``), changing as little as possible."""
    child = container[key]
    if isinstance(old, dict) and isinstance(new, dict) and isinstance(child, CommentedMap):
        _sync_map(child, old, new, (container, key))
    elif old and new and isinstance(new, list) and isinstance(child, CommentedSeq):
        # (An empty list is replaced instead: ruamel.yaml keeps no style for it.)
        _sync_seq(child, old, new, (container, key))
    else:
        tail = take_tail(container, key)
        container[key] = new_node(new)
        put_tail(container, key, tail)


def _sync_map(
    node: CommentedMap,
    old: dict[str, Any],
    new: dict[str, Any],
    slot: Slot,
    plain_key: Callable[[str], str] = str,
) -> None:
    written = {plain_key(k): k for k in node}
    if set(written) != set(old):
        raise EditError("this file uses anchors or merge keys the editor cannot follow")
    for key in old:
        if key not in new:
            _delete(node, written[key], slot)
    for key, value in new.items():
        if key not in old:
            _append(node, scalar(key), new_node(value))
        elif not same(old[key], value):
            _sync(node, written[key], old[key], value)


def _sync_seq(node: CommentedSeq, old: list[Any], new: list[Any], slot: Slot) -> None:
    if len(node) != len(old):
        raise EditError("this file uses anchors the editor cannot follow")
    dumps = json.dumps
    matcher = difflib.SequenceMatcher(None, [dumps(v) for v in old], [dumps(v) for v in new])
    # From the end, so that the indexes of what is still to do stay valid.
    for op, i1, i2, j1, j2 in reversed(matcher.get_opcodes()):
        if op == "equal":
            continue
        if op == "replace" and i2 - i1 == j2 - j1:
            for offset in range(i2 - i1):
                _sync(node, i1 + offset, old[i1 + offset], new[j1 + offset])
            continue
        for i in reversed(range(i1, i2)):
            _delete(node, i, slot)
        for j in range(j1, j2):
            _insert(node, i1 + (j - j1), new_node(new[j]))


def _append(node: CommentedMap, key: Any, value: Any) -> None:
    tail = take_tail(node, next(reversed(node))) if node else ""
    node[key] = value
    put_tail(node, key, tail)


def _insert(node: CommentedSeq, index: int, value: Any) -> None:
    at_end = index == len(node)
    tail = take_tail(node, index - 1) if at_end and node else ""
    node.insert(index, value)
    put_tail(node, index, tail)


def _delete(node: CommentedMap | CommentedSeq, key: Any, slot: Slot) -> None:
    """Remove an entry; what followed it in the text stays, after the entry before it."""
    tail = take_tail(node, key)
    keys = list(node) if isinstance(node, CommentedMap) else list(range(len(node)))
    position = keys.index(key)
    if isinstance(node, CommentedMap):
        before = node.ca.items.pop(key, None)
        following = keys[position + 1] if position + 1 < len(keys) else None
        # Comments before the key (after a flow collection) go to the key that follows.
        if before and before[1] and following is not None:
            entry = node.ca.items.setdefault(following, [None, None, None, None])
            entry[1] = [*before[1], *(entry[1] or [])]
    del node[key]
    if position > 0:
        put_tail(node, keys[position - 1] if isinstance(node, CommentedMap) else key - 1, tail)
    else:
        put_tail(*slot, tail)
