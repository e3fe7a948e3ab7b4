"""The engine's event stream shown as one progress line (a terminal) or a line per step.

Pass ``Progress(...)`` as ``on_event`` to any ``OrthgateStack`` operation.
"""

from __future__ import annotations

import sys
from typing import TextIO

from pulumi.automation import EngineEvent, OpType

# Steps that leave a resource as it was: counted, never announced.
_QUIET = {OpType.SAME, OpType.READ}


class Progress:
    """Counts the steps of an operation and shows what the engine is doing."""

    def __init__(self, out: TextIO | None = None, *, line: bool | None = None) -> None:
        self.out = out or sys.stderr
        self.line = self.out.isatty() if line is None else line
        self.started = 0
        self.finished = 0
        self.failed = 0
        self._width = 0

    def __call__(self, event: EngineEvent) -> None:
        if event.resource_pre_event is not None:
            meta = event.resource_pre_event.metadata
            self.started += 1
            if meta.op not in _QUIET:
                self._show(f"{meta.op.value} {meta.type} {meta.urn.rsplit('::', 1)[-1]}")
        elif event.res_outputs_event is not None:
            self.finished += 1
            self._show(None)
        elif event.res_op_failed_event is not None:
            self.failed += 1
            self._show(None)
        elif event.diagnostic_event is not None:
            diagnostic = event.diagnostic_event
            if diagnostic.severity in ("error", "warning") and not diagnostic.ephemeral:
                self._say(f"{diagnostic.severity}: {diagnostic.message.strip()}")
        elif event.summary_event is not None:
            changes = event.summary_event.resource_changes
            counts = ", ".join(f"{count} {op}" for op, count in sorted(changes.items()))
            self._say(f"done in {event.summary_event.duration_seconds} s: {counts or 'no changes'}")

    def _show(self, step: str | None) -> None:
        counts = f"[{self.finished}/{self.started} done" + (
            f", {self.failed} failed]" if self.failed else "]"
        )
        if self.line:
            text = f"{counts} {step or ''}".rstrip()[:120]
            self.out.write("\r" + text.ljust(self._width))
            self._width = len(text)
            self.out.flush()
        elif step:
            self.out.write(f"{counts} {step}\n")

    def _say(self, text: str) -> None:
        if self.line and self._width:
            self.out.write("\r" + " " * self._width + "\r")
            self._width = 0
        self.out.write(text + "\n")
        self.out.flush()
