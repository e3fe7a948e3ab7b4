"""What every sub-command shares: the stack argument, help layout, errors and exit codes."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from orthgate.components.config import ConfigError
from orthgate.errors import OrthgateError
from orthgate.project import Project, project_at
from orthgate.stack_file import StackFileError

EXIT_OK, EXIT_REFUSED, EXIT_SETUP = 0, 1, 2


def add_command(
    subparsers: argparse._SubParsersAction,
    name: str,
    summary: str,
    example: str,
    description: str = "",
) -> argparse.ArgumentParser:
    """A sub-command whose --help shows what it does and at least one example."""
    return subparsers.add_parser(
        name,
        help=summary,
        description=description or summary,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_stack_argument(parser: argparse.ArgumentParser, *, nargs: str | None = None) -> None:
    parser.add_argument(
        "stack",
        metavar="STACK",
        nargs=nargs,
        help="a stack name (its file is stacks/Pulumi.<STACK>.yaml) or a stack file's path",
    )


def project_of(args: argparse.Namespace) -> Project:
    return project_at(getattr(args, "project_dir", None))


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=False, default=str))


def run_handler(args: argparse.Namespace) -> int:
    """Run the chosen handler; turn the errors an operator can fix into messages."""
    try:
        return int(args.handler(args))
    except ConfigError as error:
        print(str(error), file=sys.stderr)
        return EXIT_REFUSED
    except StackFileError as error:
        print(f"the Pulumi CLI would refuse to read this stack file: {error}", file=sys.stderr)
        return EXIT_REFUSED
    except OrthgateError as error:
        print(f"orthgate: {error}", file=sys.stderr)
        return EXIT_SETUP
    except OSError as error:  # a file that cannot be read or written: say which and why
        print(f"orthgate: {error.filename or ''}: {error.strerror or error}", file=sys.stderr)
        return EXIT_SETUP
    except KeyboardInterrupt:
        print("orthgate: interrupted", file=sys.stderr)
        return 130
