"""``orthgate validate``, ``plan`` and ``diff``: offline, no Pulumi CLI, no credentials."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from orthgate.commands.common import (
    EXIT_OK,
    EXIT_REFUSED,
    add_command,
    add_stack_argument,
    print_json,
    project_of,
)
from orthgate.components.config import ConfigError
from orthgate.components.config.errors import Problem
from orthgate.errors import StackNotFound
from orthgate.project import names_a_file, stack_file_for
from orthgate.stack_file import StackFileError
from orthgate.validation import validate_file


def register(subparsers: argparse._SubParsersAction) -> None:
    validate = add_command(
        subparsers,
        "validate",
        "check stack files with the program's own rules, offline",
        "orthgate validate prod            (or: orthgate validate ./my-edit.yaml)",
        "Run the whole configuration model on each stack file, as `pulumi up` would before "
        "declaring anything, and print the same refusals. Without STACK: every stack file "
        "of the project.",
    )
    add_stack_argument(validate, nargs="*")
    validate.add_argument("--json", action="store_true", help="machine-readable results")
    validate.set_defaults(handler=run_validate)

    plan = add_command(
        subparsers,
        "plan",
        "resources, exposure and monthly cost of a stack, offline",
        "orthgate plan prod --json > prod-plan.json",
        "Evaluate the program offline (the same evaluation the tests run: mocked AWS, real "
        "certificates) and print (a) the resources it would declare, by component, (b) "
        "every reachable port with its sources, path and AE titles, (c) a monthly cost "
        "estimate from the price table in the package.",
    )
    add_stack_argument(plan)
    plan.add_argument("--json", action="store_true", help="the plan as JSON, for tools")
    plan.add_argument(
        "--summary", action="store_true", help="count resources per type, without names"
    )
    _add_assumptions(plan)
    plan.set_defaults(handler=run_plan)

    diff = add_command(
        subparsers,
        "diff",
        "how resources, exposure and cost change with an edited stack file, offline",
        "orthgate diff prod --against /tmp/Pulumi.prod.yaml",
    )
    add_stack_argument(diff)
    diff.add_argument(
        "--against", required=True, type=Path, metavar="FILE", help="the edited stack file"
    )
    diff.add_argument("--json", action="store_true", help="the changes as JSON")
    _add_assumptions(diff)
    diff.set_defaults(handler=run_diff)

    policy_config = add_command(
        subparsers,
        "policy-config",
        "the CrossGuard pack's configuration for a stack (--policy-pack-config)",
        "orthgate policy-config prod > policy-config.json && pulumi preview "
        "--policy-pack policy --policy-pack-config policy-config.json",
        "Print, as JSON, what the pack in policy/ needs to judge the stack: its DICOM TLS "
        "port, the on-premises ranges outside RFC 1918 it routes over a private path, and "
        "whether it is production.",
    )
    add_stack_argument(policy_config)
    policy_config.set_defaults(handler=run_policy_config)


def _add_assumptions(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--price-region",
        metavar="REGION",
        help="price with this region's prices (for a region the price table lacks)",
    )
    parser.add_argument(
        "--vpn-hours",
        type=float,
        default=None,
        metavar="H",
        help="Client VPN hours each workstation is connected a month (cost estimate)",
    )


def _assumptions(args: argparse.Namespace) -> Any:
    from orthgate.costs import CostAssumptions

    if args.vpn_hours is None:
        return CostAssumptions()
    return CostAssumptions(vpn_hours_per_workstation=args.vpn_hours)


def _problem_dict(problem: Problem) -> dict[str, Any]:
    return {"key": problem.path, "rule": problem.rule, "message": str(problem)}


def run_validate(args: argparse.Namespace) -> int:
    if args.stack:
        project = None if all(names_a_file(s) for s in args.stack) else project_of(args)
        targets = [stack_file_for(s, project) for s in args.stack]
    else:
        project = project_of(args)
        targets = [(name, project.stack_file(name)) for name in project.stacks()]
    results = []
    for name, path in targets:
        try:
            settings = validate_file(path)
        except ConfigError as error:
            results.append((name, path, None, error.problems, str(error)))
        except StackFileError as error:
            problem = Problem((), f"the Pulumi CLI would refuse to read it: {error}")
            results.append((name, path, None, [problem], str(problem)))
        else:
            results.append((name, path, settings, [], ""))
    if args.json:
        print_json(
            [
                {
                    "stack": name,
                    "file": str(path),
                    "valid": settings is not None,
                    "problems": [_problem_dict(p) for p in problems],
                }
                for name, path, settings, problems, _ in results
            ]
        )
    else:
        for name, path, settings, _, text in results:
            if settings is not None:
                print(f"{path}: valid (stack {name}, environment {settings.environment})")
            else:
                print(f"{path}: refused\n{text}", file=sys.stderr)
    return EXIT_REFUSED if any(r[2] is None for r in results) else EXIT_OK


def run_plan(args: argparse.Namespace) -> int:
    from orthgate.plan import plan_stack, render_plan

    project = None if names_a_file(args.stack) else project_of(args)
    plan = plan_stack(
        args.stack, project, assumptions=_assumptions(args), price_region=args.price_region
    )
    if args.json:
        print_json(plan.as_dict())
    else:
        print(render_plan(plan, list_names=not args.summary))
    return EXIT_OK


def run_diff(args: argparse.Namespace) -> int:
    from orthgate.plan import plan_config, plan_stack
    from orthgate.plan_diff import diff_plans, render_diff
    from orthgate.validation import read_config

    project = None if names_a_file(args.stack) else project_of(args)
    assumptions = _assumptions(args)
    before = plan_stack(
        args.stack, project, assumptions=assumptions, price_region=args.price_region
    )
    if not args.against.is_file():
        raise StackNotFound(f"{args.against}: no such stack file")
    # Evaluated under the same stack name: names derive from it, and only the edit differs.
    after = plan_config(
        read_config(args.against),
        before.stack,
        args.against,
        assumptions=assumptions,
        price_region=args.price_region,
    )
    changes = diff_plans(before, after)
    if args.json:
        print_json(changes.as_dict())
    else:
        print(render_diff(changes))
    return EXIT_OK


def run_policy_config(args: argparse.Namespace) -> int:
    from orthgate.policy_config import policy_pack_config

    project = None if names_a_file(args.stack) else project_of(args)
    _, path = stack_file_for(args.stack, project)
    try:
        settings = validate_file(path)
    except ConfigError as error:
        print(f"{path}: refused\n{error}", file=sys.stderr)
        return EXIT_REFUSED
    print_json(policy_pack_config(settings))
    return EXIT_OK
