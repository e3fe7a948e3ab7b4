"""The error of an edit that cannot be made."""

from __future__ import annotations

from orthgate.errors import OrthgateError


class EditError(OrthgateError):
    """The edit cannot be made as asked (or would change nothing); the file is unchanged."""
