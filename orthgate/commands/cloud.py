"""``orthgate preview``, ``up``, ``refresh``, ``destroy`` and ``outputs``: the Pulumi CLI,
driven through the Automation API on the project directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orthgate.commands.common import (
    EXIT_OK,
    EXIT_REFUSED,
    add_command,
    add_stack_argument,
    print_json,
    project_of,
)
from orthgate.errors import SetupError

_NEEDS = (
    "Needs the Pulumi CLI on PATH, AWS credentials for the stack's account and, for state "
    "on this machine (the default, file://~), the secrets passphrase in "
    "PULUMI_CONFIG_PASSPHRASE_FILE or PULUMI_CONFIG_PASSPHRASE. The stack file is validated "
    "offline first."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    for name, summary, example in (
        ("preview", "what `up` would change, from the Pulumi CLI", "orthgate preview prod"),
        ("up", "preview, confirm, then deploy the stack", "orthgate up dev --yes"),
        ("refresh", "read the real state of the stack's resources", "orthgate refresh prod"),
        (
            "destroy",
            "delete the stack's resources (production keeps its data)",
            "orthgate destroy dev",
        ),
    ):
        parser = add_command(subparsers, name, summary, example, f"{summary}. {_NEEDS}")
        add_stack_argument(parser)
        _add_cli_options(parser)
        if name in ("up", "destroy", "refresh"):
            parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        if name in ("preview", "up"):
            parser.add_argument(
                "--no-policy-pack",
                dest="guardrails",
                action="store_false",
                help="skip the CrossGuard pack in policy/ (run by default, with the stack's "
                "`orthgate policy-config`)",
            )
        parser.set_defaults(handler=run_operation, operation=name)

    outputs = add_command(
        subparsers,
        "outputs",
        "the stack's outputs (endpoints, certificates, serials)",
        "orthgate outputs prod --json",
        f"The stack outputs, secret ones hidden unless --show-secrets. {_NEEDS}",
    )
    add_stack_argument(outputs)
    _add_cli_options(outputs)
    outputs.add_argument("--show-secrets", action="store_true", help="print secret values too")
    outputs.add_argument("--json", action="store_true", help="as JSON")
    outputs.set_defaults(handler=run_outputs)


def _add_cli_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend-url", help="Pulumi state backend (default: $PULUMI_BACKEND_URL, else file://~)"
    )
    parser.add_argument(
        "--pulumi-root",
        type=Path,
        help="where the Pulumi CLI is installed (the folder holding bin/pulumi)",
    )


def open_from(args: argparse.Namespace, *, create: bool):  # noqa: ANN201 - OrthgateStack
    from orthgate.automation import open_stack

    return open_stack(
        args.stack,
        project_dir=project_of(args).root,
        create=create,
        backend_url=args.backend_url,
        pulumi_root=args.pulumi_root,
    )


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        raise SetupError(f"{question.rstrip('?')}: no terminal to confirm on; pass --yes")
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")


def run_operation(args: argparse.Namespace) -> int:
    from orthgate.progress import Progress

    stack = open_from(args, create=args.operation in ("preview", "up"))
    progress = Progress()
    print(f"{args.operation} of stack {stack.name} ({stack.stack_file})", file=sys.stderr)
    if args.operation == "preview":
        result = stack.preview(on_event=progress, guardrails=args.guardrails)
        print(result.stdout)
        return EXIT_OK
    if args.operation == "up" and not args.yes:
        preview = stack.preview(on_event=Progress(), guardrails=args.guardrails)
        print(preview.stdout)
        if not _confirm(f"Deploy these changes to {stack.name}?"):
            print("nothing deployed", file=sys.stderr)
            return EXIT_REFUSED
    if args.operation == "destroy" and not args.yes:
        kept = (
            ""
            if not stack.settings.is_production
            else (" Production data (images, index, keys) is protected and kept.")
        )
        if not _confirm(f"Delete every resource of {stack.name}?{kept} Continue?"):
            print("nothing deleted", file=sys.stderr)
            return EXIT_REFUSED
    if (
        args.operation == "refresh"
        and not args.yes
        and not _confirm(f"Update {stack.name}'s state from what AWS holds?")
    ):
        return EXIT_REFUSED
    if args.operation == "up":
        result = stack.up(on_event=progress, guardrails=args.guardrails)
    else:
        operation = {"refresh": stack.refresh, "destroy": stack.destroy}
        result = operation[args.operation](on_event=progress)
    print(result.stdout)
    return EXIT_OK


def run_outputs(args: argparse.Namespace) -> int:
    stack = open_from(args, create=False)
    values = stack.outputs(show_secrets=args.show_secrets)
    if args.json:
        print_json(values)
    else:
        for key, value in sorted(values.items()):
            print(f"{key}: {value}")
    return EXIT_OK
