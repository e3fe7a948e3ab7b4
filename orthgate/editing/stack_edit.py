"""One edit of a stack file: the change worked out on the configuration as the Pulumi CLI
reads it, carried over to the file's text, read back, validated, and only then written
(atomically)."""

from __future__ import annotations

import copy
import difflib
import os
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orthgate.editing.errors import EditError
from orthgate.editing.plain import same
from orthgate.editing.yaml_tree import render
from orthgate.stack_file import read_stack_config
from orthgate.validation import validate_config


@dataclass(frozen=True)
class Edit:
    """What an edit did (or, with ``write=False``, would do) to one stack file."""

    path: Path
    before: str
    after: str
    summary: str
    written: bool
    warnings: tuple[str, ...] = field(default=())

    def diff(self) -> str:
        """The change as a unified diff."""
        return "".join(
            difflib.unified_diff(
                self.before.splitlines(keepends=True),
                self.after.splitlines(keepends=True),
                fromfile=f"{self.path} (now)",
                tofile=f"{self.path} (edited)",
            )
        )


Change = Callable[[dict[str, Any]], str]  # mutates the config map, returns the summary


def edit_stack_file(path: Path, change: Change, *, write: bool = True) -> Edit:
    """Apply ``change`` to the config map of ``path``; write only a valid result.

    Raises ``EditError``, ``StackFileError`` or ``ConfigError`` and leaves the file as it was.
    """
    raw = path.read_bytes()
    bom = raw.startswith(b"\xef\xbb\xbf")
    before = raw.decode("utf-8-sig")
    old = read_stack_config(before)
    new = copy.deepcopy(old)
    summary = change(new)
    if same(old, new):
        raise EditError(f"nothing to change in {path}: {summary}")
    after, warnings = render(before, old, new)
    if not same(read_stack_config(after), new):
        raise EditError(
            f"could not write the edit to {path} so that the Pulumi CLI reads what was meant "
            "(anchors or merge keys?); edit the file by hand"
        )
    validate_config(new)
    if write:
        _write_atomically(path, (b"\xef\xbb\xbf" if bom else b"") + after.encode("utf-8"))
    return Edit(path, before, after, summary, write, warnings)


def _write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` (its target, if a link) in one step, keeping its permissions."""
    target = Path(os.path.realpath(path))
    mode = stat.S_IMODE(target.stat().st_mode)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
