"""Kept for `make proxy-bundle` and older notes: ``orthgate bundle`` does the work.

python -m tools.proxy_bundle site-a ./site-a --stack prod
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from orthgate.cli import main as orthgate_main
from orthgate.handover import write_bundle

__all__ = ["main", "write_bundle"]


def main(argv: Sequence[str]) -> int:
    """``SITE DEST [--stack S] [--outputs F] [--force]`` as ``orthgate bundle``."""
    args = list(argv)
    stack = "dev"
    if "--stack" in args:
        at = args.index("--stack")
        stack = args[at + 1]
        del args[at : at + 2]
    return orthgate_main(["bundle", stack, *args])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
