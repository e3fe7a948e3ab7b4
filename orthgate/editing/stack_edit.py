"""One edit of a stack file: the change worked out on the configuration as the Pulumi CLI
reads it, carried over to the file's text, read back, validated, and only then written
(atomically)."""

from __future__ import annotations

import contextlib
import copy
import difflib
import fcntl
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
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
    Edits of one folder's stack files take turns (a lock on the folder), and a file that
    changed between reading and writing (an editor, another tool) is not overwritten.
    """
    target = Path(os.path.realpath(path))
    # The mode bits too: root may write any file, but a read-only one was made so on purpose.
    if write and (not os.access(target, os.W_OK) or not target.stat().st_mode & 0o222):
        raise EditError(f"{path} is read-only: nothing was changed (chmod u+w to edit it)")
    with _folder_lock(target.parent) if write else contextlib.nullcontext():
        return _edit(path, target, change, write=write)


def _edit(path: Path, target: Path, change: Change, *, write: bool) -> Edit:
    raw = target.read_bytes()
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
        if target.read_bytes() != raw:
            raise EditError(
                f"{path} changed while the edit was being checked (another editor or tool?): "
                "nothing was written; run the command again"
            )
        _write_atomically(target, (b"\xef\xbb\xbf" if bom else b"") + after.encode("utf-8"))
    return Edit(path, before, after, summary, write, warnings)


# How long an edit waits for another one to finish before it gives up and says so.
LOCK_WAIT_SECONDS = 30.0


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on the folder itself: no lock file is left behind.

    Not re-entrant: an edit started from within another edit's change waits, then fails.
    """
    try:
        handle = os.open(folder, os.O_RDONLY)
    except PermissionError as error:
        raise EditError(f"{folder}: cannot open the folder to lock it ({error.strerror})") from None
    try:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise EditError(
                        f"another edit of a stack file in {folder} has been running for "
                        f"{LOCK_WAIT_SECONDS:g} s: nothing was changed; try again"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(handle)  # closing releases the lock


def _write_atomically(target: Path, data: bytes) -> None:
    """Replace the file ``target`` in one step, keeping its permissions and owner."""
    info = target.stat()
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, stat.S_IMODE(info.st_mode))
        # Only root may give a file away; a member of the file's group may keep the group.
        with contextlib.suppress(PermissionError):
            os.chown(temporary, info.st_uid, -1)
        with contextlib.suppress(PermissionError):
            os.chown(temporary, -1, info.st_gid)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
