"""The layout of a stack file's round-trip tree: the ruamel.yaml settings that reproduce it
(indentation as the file has it), its text, and new values written the way the file writes
them (flow lists, quoting)."""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from orthgate.stack_file import STR, go_resolve


def round_trip_yaml(indent: tuple[int, int, int] = (2, 4, 2)) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long flow list or string
    yaml.indent(mapping=indent[0], sequence=indent[1], offset=indent[2])
    return yaml


def dump(yaml: YAML, document: Any, before: str) -> str:
    out = io.StringIO()
    yaml.dump(document, out)
    text = out.getvalue()
    if not before.endswith("\n") and text.endswith("\n"):
        text = text[:-1]
    if "\r\n" in before:
        text = text.replace("\r\n", "\n").replace("\n", "\r\n")
    return text


def indentation(document: Any, text: str) -> tuple[int, int, int]:
    """(mapping indent, sequence indent, dash offset) as the file's first nested block
    mapping and first block sequence under a key have them; ruamel.yaml's defaults else."""
    lines = text.splitlines()
    mapping = sequence = offset = None
    stack = [document]
    while stack and (mapping is None or sequence is None):
        node = stack.pop(0)
        if not isinstance(node, CommentedMap):
            if isinstance(node, CommentedSeq):
                stack.extend(node)
            continue
        for key, value in node.items():
            key_col = node.lc.key(key)[1]
            if isinstance(value, CommentedMap) and value and not value.fa.flow_style():
                mapping = mapping if mapping is not None else value.lc.col - key_col
            if isinstance(value, CommentedSeq) and value and not value.fa.flow_style():
                line, col = value.lc.item(0)
                dash = lines[line].rfind("-", 0, col)
                if sequence is None and dash >= key_col:
                    sequence, offset = col - key_col, dash - key_col
            stack.append(value)
    mapping = mapping if mapping and mapping > 0 else 2
    if sequence is None or sequence <= (offset or 0):
        sequence, offset = mapping + 2, mapping
    return mapping, sequence, offset or 0


def new_node(value: Any) -> Any:
    """A new value as the round-trip tree should write it: lists of scalars in flow style
    (as the shipped files write them), and any text yaml.v3 would read as something else
    quoted."""
    if isinstance(value, dict):
        node = CommentedMap()
        for key, item in value.items():
            node[scalar(key)] = new_node(item)
        return node
    if isinstance(value, list):
        seq = CommentedSeq(new_node(item) for item in value)
        if value and not any(isinstance(item, dict | list) for item in value):
            seq.fa.set_flow_style()
        return seq
    return scalar(value)


def scalar(value: Any) -> Any:
    if isinstance(value, str) and go_resolve(value)[0] != STR:
        return DoubleQuotedScalarString(value)
    return value
