"""``orthgate schema`` and ``orthgate reference``: the JSON Schema of a stack file and the
README's configuration reference, both generated from the configuration model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orthgate import reference, schema
from orthgate.errors import OrthgateError
from orthgate.project import find_project

README = "README.md"


def register(subparsers: argparse._SubParsersAction) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    schema_parser = subparsers.add_parser(
        "schema",
        help="write the JSON Schema of a stack file",
        description="Write the JSON Schema (draft 7) of stacks/Pulumi.<stack>.yaml, "
        "generated from the configuration model. Each shipped stack file names it in its "
        "first line, so editors with a YAML language server complete and check keys.",
        epilog="examples:\n"
        "  orthgate schema                 # writes <project>/schema/orthgate-stack.schema.json\n"
        "  orthgate schema --check         # exit 1 if the committed file is out of date\n"
        "  orthgate schema --output -      # print it",
        formatter_class=formatter,
    )
    schema_parser.add_argument(
        "--output",
        metavar="FILE",
        help=f"where to write it, '-' for standard output (default: <project>/"
        f"{schema.SCHEMA_FILE})",
    )
    schema_parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the file differs from the generated schema",
    )
    schema_parser.set_defaults(handler=run_schema)

    reference_parser = subparsers.add_parser(
        "reference",
        help="print or update the README's configuration reference",
        description="Print the configuration reference (every key, its default and its "
        "rule) generated from the model, or check or update the README region between "
        f"{reference.BEGIN} and {reference.END}.",
        epilog="examples:\n"
        "  orthgate reference                 # print the Markdown\n"
        "  orthgate reference --check         # exit 1 if README.md is out of date\n"
        "  orthgate reference --write         # update README.md in place",
        formatter_class=formatter,
    )
    mode = reference_parser.add_mutually_exclusive_group()
    for flag, verb in (("--check", "check"), ("--write", "update")):
        mode.add_argument(
            flag,
            metavar="README",
            nargs="?",
            const="",
            help=f"{verb} the region of README (default: the project's {README})",
        )
    reference_parser.set_defaults(handler=run_reference)


def run_schema(args: argparse.Namespace) -> int:
    text = schema.schema_text()
    try:
        if args.output == "-":
            if args.check:
                return _usage("--check compares a file: give --output FILE, not -")
            sys.stdout.write(text)
            return 0
        path = Path(args.output) if args.output else _project_root(args) / schema.SCHEMA_FILE
    except OrthgateError as error:
        return _usage(str(error))
    if args.check:
        return _compare(path, text, "orthgate schema")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0


def run_reference(args: argparse.Namespace) -> int:
    text = reference.configuration_reference()
    given = args.check if args.check is not None else args.write
    if given is None:
        sys.stdout.write(text)
        return 0
    try:
        path = Path(given) if given else _project_root(args) / README
        readme = path.read_text(encoding="utf-8")
        updated = reference.replace_region(readme, text)
    except (OrthgateError, OSError) as error:
        return _usage(str(error))
    if args.check is not None:
        if updated == readme:
            return 0
        print(f"{path}: the configuration reference is out of date; run `orthgate reference "
              "--write` and commit it", file=sys.stderr)  # fmt: skip
        return 1
    if updated != readme:
        path.write_text(updated, encoding="utf-8")
        print(f"updated {path}")
    return 0


def _compare(path: Path, text: str, command: str) -> int:
    try:
        current = path.read_text(encoding="utf-8")
    except OSError as error:
        print(f"{path}: cannot be read ({error.strerror}); run `{command}`", file=sys.stderr)
        return 1
    if current != text:
        print(f"{path} is out of date; run `{command}` and commit it", file=sys.stderr)
        return 1
    return 0


def _project_root(args: argparse.Namespace) -> Path:
    return find_project(getattr(args, "project_dir", None)).root


def _usage(message: str) -> int:
    print(f"orthgate: {message}", file=sys.stderr)
    return 2
