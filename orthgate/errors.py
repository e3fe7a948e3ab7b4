"""The errors the operator API raises: each message says what to do, not only what failed."""

from __future__ import annotations


class OrthgateError(Exception):
    """Something the operator has to fix; the message says what and how."""


class ProjectNotFound(OrthgateError):
    """No orthgate project directory (Pulumi.yaml with ``name: orthgate``) was found."""


class StackNotFound(OrthgateError):
    """The stack file asked for does not exist."""


class SetupError(OrthgateError):
    """A tool, a passphrase or credentials that a cloud operation needs are missing."""
