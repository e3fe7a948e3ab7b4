"""Read ``stacks/Pulumi.<stack>.yaml`` the way the Pulumi CLI does, not the way PyYAML does.

The CLI (``sdk/go/common/workspace/loaders.go``, ``LoadProjectStackBytes``) decodes the file
with Go's ``gopkg.in/yaml.v3`` (v3.0.1) into ``any``, re-encodes it, decodes it again into
``config.Map``, and hands each value to the program as a string: strings as written, every
other value as the JSON that ``encoding/json`` writes (``config/object.go``,
``config/plaintext.go``). PyYAML's ``safe_load`` implements YAML 1.1 instead, so on its own
it reads a different configuration than ``pulumi up`` runs: ``NO``, ``yes`` and ``on`` are
booleans to it and strings to the CLI, ``1:20`` is 80 to it and a string to the CLI, ``09``
is a string to it and 9 to the CLI, and a date is a ``datetime.date`` (which ``json.dumps``
cannot even write) where the CLI passes Go's ``time.Time.String()``.

``GoYamlLoader`` is a PyYAML ``SafeLoader`` whose resolver and scalar constructors are a port
of yaml.v3's ``resolve()`` (``resolve.go``): YAML 1.2 booleans and nulls only
(``true``/``True``/``TRUE``, ...), Go's ``strconv.ParseInt(s, 0, 64)`` for integers (``0x1F``,
``0o17``, ``0b101``, and, as yaml.v3 still does, ``0755`` as octal; underscores dropped), its
float pattern, and its timestamp formats. Like yaml.v3 it refuses duplicate mapping keys, and
like the CLI (``SimplifyMarshalledValue``) it refuses keys that are not strings. Values the
CLI cannot pass at all (NaN, infinities, integers past int64 that fit uint64) raise
``StackFileError`` instead of reaching the program with a meaning the CLI never gives them.

Assumption: the machine running ``pulumi`` keeps local time in UTC. It only matters for a
timestamp written with a numeric offset (Go then names the zone after the local one).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

PROJECT_NAME = "orthgate"

_TAG = "tag:yaml.org,2002:"
NULL, BOOL, STR, INT, FLOAT = (_TAG + t for t in ("null", "bool", "str", "int", "float"))
TIMESTAMP, MERGE, BINARY = (_TAG + t for t in ("timestamp", "merge", "binary"))
_RESOLVABLE = {"", STR, BOOL, INT, FLOAT, NULL, TIMESTAMP}

_INT64 = 1 << 63
_UINT64 = 1 << 64


class StackFileError(ValueError):
    """The Pulumi CLI would refuse to load this stack file (or crash on it)."""


class GoUint(int):
    """An integer yaml.v3 decodes as ``uint64``: Pulumi's config model has no such type."""


# yaml.v3 resolve.go: the first character decides what a plain scalar may be.
def _hint(text: str) -> str:
    if text == "":
        return "N"
    first = text[0]
    if first in "+-":
        return "S"
    if "0" <= first <= "9":
        return "D"
    if first in "yYnNtTfFoO~":
        return "M"
    if first == ".":
        return "."
    return ""


_RESOLVE_MAP: dict[str, tuple[str, Any]] = {
    **dict.fromkeys(("true", "True", "TRUE"), (BOOL, True)),
    **dict.fromkeys(("false", "False", "FALSE"), (BOOL, False)),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), (NULL, None)),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), (FLOAT, math.nan)),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), (FLOAT, math.inf)),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), (FLOAT, -math.inf)),
}

# yaml.v3's yamlStyleFloat, matched after underscores are removed.
_YAML_STYLE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
# What Go's strconv.ParseFloat accepts of a scalar starting with '.' (digits may be separated
# by single underscores, as in Go's float literals).
_GO_DOT_FLOAT = re.compile(r"\.[0-9](?:_?[0-9])*(?:[eE][-+]?[0-9](?:_?[0-9])*)?")
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
# More digits than these cannot fit 64 bits (leading zeros aside) in each base.
_MAX_DIGITS = {2: 64, 8: 22, 10: 20, 16: 16}


def _parse_uint(text: str, base: int) -> int | None:
    """Go's ``strconv.ParseUint(text, base, 64)`` on a string without underscores."""
    if not text:
        return None
    if base == 0:
        base = 10
        if text[0] == "0":
            prefix = text[1:2].lower()
            if len(text) >= 3 and prefix in ("b", "o", "x"):
                base = {"b": 2, "o": 8, "x": 16}[prefix]
                text = text[2:]
            else:
                base = 8
                text = text[1:]
    allowed = _DIGITS[:base]
    if not all(c.isascii() and c.lower() in allowed for c in text):
        return None
    if not text:
        return 0
    if len(text.lstrip("0")) > _MAX_DIGITS[base]:
        return None  # out of range
    value = int(text, base)
    return value if value < _UINT64 else None


def _parse_int(text: str, base: int) -> int | None:
    """Go's ``strconv.ParseInt(text, base, 64)`` on a string without underscores."""
    if not text:
        return None
    negative = text[0] == "-"
    unsigned = _parse_uint(text[1:] if text[0] in "+-" else text, base)
    if unsigned is None:
        return None
    if negative:
        return -unsigned if unsigned <= _INT64 else None
    return unsigned if unsigned < _INT64 else None


_TS_ISO = re.compile(
    r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})[Tt]([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})"
    r"(?:[.,]([0-9]+))?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_TS_SPACE = re.compile(
    r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2}) ([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})"
    r"(?:[.,]([0-9]+))?"
)
_TS_DATE = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})")


def _days_in(month: int, year: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _go_timestamp(text: str) -> str | None:
    """yaml.v3's ``parseTimestamp``, rendered as the CLI passes it: ``time.Time.String()``.

    Go's ``time.Parse`` as of Go 1.20: any number of fractional digits, cut to nanoseconds
    (Go 1.19 and older refuse more than nine, and the scalar stays a string).

    The CLI decodes a timestamp into ``time.Time`` (yaml.v3 no longer keeps it a string, as
    yaml.v2 did) and ``config.unmarshalObject`` stores ``v.String()``.
    """
    if not re.match(r"[0-9]{4}-", text):
        return None
    for pattern in (_TS_ISO, _TS_SPACE, _TS_DATE):
        match = pattern.fullmatch(text)
        if match:
            break
    else:
        return None
    parts = match.groups()
    year, month, day = (int(p) for p in parts[:3])
    hour, minute, second = (int(p) for p in parts[3:6]) if len(parts) > 3 else (0, 0, 0)
    if not 1 <= month <= 12 or not 1 <= day <= _days_in(month, year):
        return None
    if hour >= 24 or minute >= 60 or second >= 60:
        return None
    fraction = (parts[6] or "")[:9].ljust(9, "0").rstrip("0") if len(parts) > 6 else ""
    zone = parts[7] if len(parts) > 7 else "Z"
    if zone == "Z":
        offset = "+0000 UTC"
    else:
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 24 or minutes > 60:
            return None
        numeric = f"{zone[0]}{hours:02d}{minutes:02d}"
        total = hours * 60 + minutes
        # Go names a zone after Local when the offset matches it (Local = UTC assumed).
        offset = "+0000 UTC" if total == 0 else f"{numeric} {numeric}"
    clock = f"{hour:02d}:{minute:02d}:{second:02d}" + (f".{fraction}" if fraction else "")
    return f"{year:04d}-{month:02d}-{day:02d} {clock} {offset}"


def go_resolve(text: str, tag: str = "") -> tuple[str, Any]:
    """yaml.v3's ``resolve(tag, in)``: the tag and value of a scalar (``tag`` "" if plain)."""
    if tag not in _RESOLVABLE:
        return tag, text
    rtag, value = _resolve(text, tag)
    if tag in ("", rtag, STR):
        return rtag, value
    if tag == FLOAT and rtag == INT:
        return FLOAT, float(value)
    raise StackFileError(f"yaml: cannot decode {_short(rtag)} `{text}` as a {_short(tag)}")


def _short(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


def _resolve(text: str, tag: str) -> tuple[str, Any]:
    hint = _hint(text)
    if not hint or tag == STR:
        return STR, text
    if text in _RESOLVE_MAP:
        return _RESOLVE_MAP[text]
    if hint == ".":
        if _GO_DOT_FLOAT.fullmatch(text):
            value = float(text.replace("_", ""))
            if not math.isinf(value):  # Go's ParseFloat reports a range error
                return FLOAT, value
    elif hint in "DS":
        if tag in ("", TIMESTAMP):
            stamp = _go_timestamp(text)
            if stamp is not None:
                return TIMESTAMP, stamp
        plain = text.replace("_", "")
        signed = _parse_int(plain, 0)
        if signed is not None:
            return INT, signed
        unsigned = _parse_uint(plain, 0)
        if unsigned is not None:
            return INT, GoUint(unsigned)
        if _YAML_STYLE_FLOAT.fullmatch(plain):
            value = float(plain)
            if not math.isinf(value):
                return FLOAT, value
        # yaml.v3 then retries 0b.. and 0o.. with the prefix cut off (so "0b-101" is -5).
        for prefix, base in (("0b", 2), ("0o", 8)):
            if plain.startswith(prefix):
                signed = _parse_int(plain[2:], base)
                if signed is not None:
                    return INT, signed
                unsigned = _parse_uint(plain[2:], base)
                if unsigned is not None:
                    return INT, GoUint(unsigned)
            elif plain.startswith("-" + prefix):
                signed = _parse_int("-" + plain[3:], base)
                if signed is not None:
                    return INT, signed
    return STR, text


class GoYamlLoader(yaml.SafeLoader):
    """PyYAML with yaml.v3's schema (see the module docstring)."""

    def resolve(self, kind: type[Node], value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode:
            if implicit[0]:
                return MERGE if value == "<<" else go_resolve(value)[0]
            return STR
        if kind is SequenceNode:
            return _TAG + "seq"
        return _TAG + "map"

    def compose_mapping_node(self, anchor: str | None) -> MappingNode:
        node = super().compose_mapping_node(anchor)
        seen: dict[tuple[str, str], Any] = {}
        for key, _ in node.value:
            if not (isinstance(key, ScalarNode) and key.tag in (STR, MERGE)):
                raise StackFileError(
                    f"expected only string keys, got '{getattr(key, 'value', key)}' "
                    f"(line {key.start_mark.line + 1})"
                )
            # yaml.v3 compares keys by their text, however they are quoted.
            if (key.id, key.value) in seen:
                first = seen[(key.id, key.value)]
                raise StackFileError(
                    f"line {key.start_mark.line + 1}: mapping key {key.value!r} already "
                    f"defined at line {first.line + 1}"
                )
            seen[(key.id, key.value)] = key.start_mark
        return node

    def _scalar(self, node: ScalarNode) -> Any:
        return go_resolve(node.value, node.tag)[1]

    def _binary(self, node: ScalarNode) -> str:
        # yaml.v3 decodes !!binary into a Go string of those bytes; JSON then replaces any
        # invalid UTF-8.
        return yaml.SafeLoader.construct_yaml_binary(self, node).decode("utf-8", "replace")

    def _generic(self, node: Node) -> Any:
        # yaml.v3 decodes a node of any other tag (!!set, !!omap, !custom...) by its kind.
        if isinstance(node, ScalarNode):
            return node.value
        if isinstance(node, SequenceNode):
            return yaml.SafeLoader.construct_yaml_seq(self, node)
        return yaml.SafeLoader.construct_yaml_map(self, node)


for _tag in (NULL, BOOL, INT, FLOAT, TIMESTAMP):
    GoYamlLoader.add_constructor(_tag, GoYamlLoader._scalar)
GoYamlLoader.add_constructor(BINARY, GoYamlLoader._binary)
for _tag in (_TAG + "set", _TAG + "omap", _TAG + "pairs", _TAG + "value", None):
    GoYamlLoader.add_constructor(_tag, GoYamlLoader._generic)


def load_go_yaml(text: str) -> Any:
    """The first YAML document of ``text`` decoded as yaml.v3 decodes it into ``any``.

    Like yaml.v3's ``Unmarshal`` ("decodes the first document found"), what follows the
    first document is not read. A file that is not YAML raises ``StackFileError`` naming
    the line and column, as the CLI would refuse it.
    """
    loader = None
    try:
        loader = GoYamlLoader(text)  # its reader already refuses control characters
        return loader.get_data() if loader.check_data() else None
    except RecursionError:
        raise StackFileError("the document is nested too deeply to be read") from None
    except yaml.MarkedYAMLError as error:
        raise StackFileError(_yaml_problem(error)) from None
    except yaml.YAMLError as error:
        raise StackFileError(f"not valid YAML: {error}") from None
    finally:
        if loader is not None:
            loader.dispose()


def _yaml_problem(error: yaml.MarkedYAMLError) -> str:
    mark = error.problem_mark or error.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    what = " ".join(part for part in (error.context, error.problem) if part)
    return f"{where}not valid YAML ({what})"


def pulumi_value(value: Any, where: str) -> Any:
    """A decoded value as the program receives it: through Pulumi's object model and JSON."""
    if isinstance(value, GoUint):
        # config.unmarshalObject has no case for uint64: the CLI stops (contract.Failf).
        raise StackFileError(f"{where}: {value} does not fit a signed 64-bit integer")
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise StackFileError(f"{where}: json: unsupported value: {value}")
        # encoding/json writes an integral float64 below 1e21 as its shortest digits padded
        # with zeros, without a fraction or exponent: the program reads an integer.
        if value.is_integer() and abs(value) < 1e21:
            return int(Decimal(repr(value)))
        return value
    if isinstance(value, dict):
        return {key: pulumi_value(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [pulumi_value(item, f"{where}[{i}]") for i, item in enumerate(value)]
    return value


def _config_key(key: str) -> str:
    """``config.ParseKey`` after the loader namespaces bare keys with the project name."""
    if ":" not in key:
        return f"{PROJECT_NAME}:{key}"
    parts = key.split(":")
    if len(parts) == 2:
        return key
    if len(parts) == 3 and parts[1] == "config":
        return f"{parts[0]}:{parts[2]}"
    raise StackFileError(
        f"could not parse {key} as a configuration key "
        "(configuration keys should be of the form `<namespace>:<name>`)"
    )


def read_stack_config(text: str) -> dict[str, Any]:
    """The ``config:`` block of a stack file: key -> the value the program will see."""
    document = load_go_yaml(text)
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise StackFileError(f"expected project to be an object, was {type(document).__name__}")
    config = document.get("config")
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise StackFileError("config: expected a map of configuration keys")
    result: dict[str, Any] = {}
    for key, value in config.items():
        name = _config_key(key)
        if name in result:
            raise StackFileError(f"configuration key {name} is given twice")
        result[name] = pulumi_value(value, name)
    return result


def read_stack_file(path: Path | str) -> dict[str, Any]:
    """The ``config:`` block of the stack file at ``path``, as the Pulumi CLI reads it."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise StackFileError(
            f"{path}: byte {error.start} is not UTF-8; save the file as UTF-8"
        ) from None
    return read_stack_config(text)
