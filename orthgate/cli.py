"""The ``orthgate`` command: one sub-command per operator task.

Offline commands (validate, plan, diff, schema, reference, and the stack-file edits) need
neither the Pulumi CLI nor credentials. Cloud commands (preview, up, refresh, destroy,
outputs, profile, bundle) drive the Pulumi CLI through the Automation API.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
from collections.abc import Sequence
from pathlib import Path

from orthgate.commands import COMMAND_MODULES
from orthgate.commands.common import run_handler

EPILOG = """\
examples:
  orthgate validate                       check every stack file of the project, offline
  orthgate plan prod                      resources, exposure and monthly cost, offline
  orthgate site add prod east-clinic --source-cidr 198.51.100.64/29 \\
      --ae-title EAST_GW --listen-address 192.168.60.10 --modality us-east-1=US_EAST_1
  orthgate up prod                        preview, confirm, deploy (needs the Pulumi CLI)
  orthgate bundle prod east-clinic ./east-clinic

Run `orthgate <command> --help` for a command's options and an example.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orthgate",
        description="Deploy and operate Orthanc on AWS with secure device connectivity.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=None,
        help="the orthgate project (default: $ORTHGATE_PROJECT_DIR, else the nearest "
        "directory up from here with an orthgate Pulumi.yaml)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(f"orthgate.commands.{module_name}").register(subparsers)
    return parser


def _version() -> str:
    try:
        return importlib.metadata.version("orthgate")
    except importlib.metadata.PackageNotFoundError:  # a checkout that was never installed
        return "(not installed: a checkout)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_handler(args)


if __name__ == "__main__":
    sys.exit(main())
