"""Refusals of the stack configuration, written for the person who edits the stack file."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

NAMESPACE = "orthgate"

# A location inside the configuration: the top-level key, then nested keys and list indexes.
Loc = tuple[str | int, ...]

_MISSING = object()


def key_path(loc: Loc) -> str:
    """``("network", "vpns", 1, "name")`` -> ``orthgate:network.vpns[1].name``."""
    if not loc:
        return NAMESPACE
    text = f"{NAMESPACE}:{loc[0]}"
    for part in loc[1:]:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


@dataclass(frozen=True)
class Problem:
    """One broken rule: where it is, what was given and what the rule is."""

    loc: Loc
    rule: str
    value: Any = _MISSING

    @property
    def path(self) -> str:
        return key_path(self.loc)

    def __str__(self) -> str:
        if self.value is _MISSING:
            return f"{self.path}: {self.rule}"
        return f"{self.path} = {_show(self.value)}: {self.rule}"


class ConfigError(pulumi.RunError):
    """The stack configuration breaks one or more rules; nothing has been declared yet.

    A ``pulumi.RunError`` is printed without a Python traceback, which would only hide the
    message from the operator.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        lines = [
            f"the stack configuration has {count} problem{'s' if count != 1 else ''}; "
            "nothing was deployed:"
        ]
        lines += [f"  - {problem}" for problem in self.problems]
        lines.append(
            "Fix them in stacks/Pulumi.<stack>.yaml (by hand, with `orthgate config set "
            "<stack> <key path> <value>`, or `pulumi config set --path '<key path>' <value>`); "
            "`orthgate validate` checks the file offline; README.md lists every key."
        )
        super().__init__("\n".join(lines))


def raise_if_any(problems: Iterable[Problem]) -> None:
    found = list(problems)
    if found:
        raise ConfigError(found)


def duplicates(
    at: Loc,
    values: Sequence[str],
    field: str | None = None,
    *,
    key: Callable[[str], str] | None = None,
    compared: str = "",
) -> Iterator[Problem]:
    """A problem for each repeated value of a list (or of one field of its entries).

    ``key`` says when two values are the same (e.g. without regard to case), ``compared``
    tells the reader how they were compared.
    """
    first: dict[str, int] = {}
    for index, value in enumerate(values):
        same = key(value) if key else value
        if same in first:
            loc = (*at, index, field) if field else (*at, index)
            yield Problem(
                loc, f"duplicates entry [{first[same]}]{compared}; each must be unique", value
            )
        else:
            first.setdefault(same, index)
