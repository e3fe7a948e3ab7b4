"""``orthgate site|workstation|modality|config``: edit a stack file, keeping its comments.

Each edit is validated with the program's own model before the file is written; a refused
edit leaves the file byte-identical (exit 1). ``--dry-run`` prints the diff instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from orthgate import editing
from orthgate.commands.common import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_SETUP,
    add_command,
    add_stack_argument,
    project_of,
)
from orthgate.components.config import ConfigError
from orthgate.errors import OrthgateError
from orthgate.project import stack_file_for
from orthgate.stack_file import StackFileError, load_go_yaml


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_site(subparsers)
    _register_workstation(subparsers)
    _register_modality(subparsers)
    _register_config(subparsers)


def _group(
    subparsers: argparse._SubParsersAction, name: str, summary: str, example: str
) -> argparse._SubParsersAction:
    parser = add_command(subparsers, name, summary, example)
    actions = parser.add_subparsers(dest=f"{name}_action", metavar="ACTION", required=True)
    return actions


def _leaf(
    actions: argparse._SubParsersAction,
    name: str,
    summary: str,
    example: str,
    handler: Callable[[argparse.Namespace], int],
) -> argparse.ArgumentParser:
    parser = add_command(
        actions,
        name,
        summary,
        example,
        summary + ". The edit is validated with the program's own rules first; a refused "
        "edit leaves the file unchanged (exit status 1). Comments and layout are kept.",
    )
    add_stack_argument(parser)
    parser.set_defaults(handler=handler)
    return parser


def _dry_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dry-run", action="store_true", help="print the change as a diff; write nothing"
    )


def _remove_leaf(
    actions: argparse._SubParsersAction,
    what: str,
    example: str,
    handler: Callable[[argparse.Namespace], int],
    *,
    site_help: str | None = None,
) -> None:
    """The ``remove NAME`` action of a group (with ``--site`` when ``site_help`` is given)."""
    remove = _leaf(
        actions, "remove", f"remove {what} (revocations naming it are kept)", example, handler
    )
    remove.add_argument("name", metavar="NAME")
    if site_help is not None:
        remove.add_argument("--site", metavar="SITE", help=site_help)
    _dry_run(remove)


def _register_site(subparsers: argparse._SubParsersAction) -> None:
    actions = _group(
        subparsers,
        "site",
        "add or remove a DICOM proxy site (orthgate:dicomProxies)",
        "orthgate site add prod west-clinic --source-cidr 198.51.100.64/29 "
        "--ae-title WEST_GW --listen-address 192.168.60.10 --modality us-west-1=US_WEST_1",
    )
    add = _leaf(
        actions,
        "add",
        "add a DICOM proxy site",
        "orthgate site add prod west-clinic --source-cidr 198.51.100.64/29 "
        "--ae-title WEST_GW --listen-address 192.168.60.10 --modality us-west-1=US_WEST_1",
        run_site_add,
    )
    add.add_argument("name", metavar="NAME", help="the site's name (a DNS label)")
    add.add_argument(
        "--source-cidr",
        action="append",
        required=True,
        metavar="CIDR",
        help="the site's Internet egress range, as the cloud sees it (repeatable)",
    )
    add.add_argument("--ae-title", required=True, metavar="AET", help="the proxy's AE title")
    add.add_argument(
        "--listen-address",
        required=True,
        metavar="IP",
        help="the proxy machine's private LAN address (its plaintext listener is there only)",
    )
    add.add_argument(
        "--modality",
        action="append",
        default=[],
        type=_name_and_ae,
        metavar="NAME=AET",
        help="a modality on the site's LAN allowed to store (repeatable)",
    )
    add.add_argument(
        "--accept-any-modality",
        action="store_true",
        help="let any host on the site's LAN store, instead of listing --modality",
    )
    add.add_argument("--listen-port", type=int, metavar="N", help="the plaintext port (104)")
    _dry_run(add)
    _remove_leaf(
        actions,
        "a DICOM proxy site",
        "orthgate site remove prod north-clinic --dry-run",
        run_site_remove,
    )


def _register_workstation(subparsers: argparse._SubParsersAction) -> None:
    actions = _group(
        subparsers,
        "workstation",
        "add or remove a Client VPN workstation (orthgate:clientVpn.workstations)",
        "orthgate workstation add prod reading-room-1",
    )
    add = _leaf(
        actions,
        "add",
        "add a Client VPN workstation",
        "orthgate workstation add prod reading-room-1 --enable --client-cidr 192.168.0.0/22",
        run_workstation_add,
    )
    add.add_argument("name", metavar="NAME", help="the workstation's name (a DNS label)")
    add.add_argument(
        "--enable", action="store_true", help="also set orthgate:clientVpn.enabled: true"
    )
    add.add_argument(
        "--client-cidr",
        metavar="CIDR",
        help="also set orthgate:clientVpn.clientCidr (a private range used nowhere else)",
    )
    _dry_run(add)
    _remove_leaf(
        actions,
        "a Client VPN workstation",
        "orthgate workstation remove prod reading-room-1",
        run_workstation_remove,
    )


def _register_modality(subparsers: argparse._SubParsersAction) -> None:
    actions = _group(
        subparsers,
        "modality",
        "add or remove a sender (orthgate:orthanc.modalities, or a proxy site's)",
        "orthgate modality add prod ct-scanner-2 --ae-title CT_SCANNER_2",
    )
    add = _leaf(
        actions,
        "add",
        "add a modality allowed to store",
        "orthgate modality add prod ct-scanner-2 --ae-title CT_SCANNER_2 "
        "--source-cidr 172.20.10.22/32\n  orthgate modality add prod us-north-2 "
        "--ae-title US_NORTH_2 --site north-clinic",
        run_modality_add,
    )
    add.add_argument("name", metavar="NAME", help="the modality's name (a DNS label)")
    add.add_argument("--ae-title", required=True, metavar="AET")
    add.add_argument(
        "--connection",
        choices=("private", "tls"),
        help="private (plaintext over a private path, the default) or tls",
    )
    add.add_argument(
        "--source-cidr",
        action="append",
        default=[],
        metavar="CIDR",
        help="with connection private: the only ranges it may send from (repeatable)",
    )
    add.add_argument("--site", metavar="SITE", help="add it to this proxy site instead")
    _dry_run(add)
    _remove_leaf(
        actions,
        "a modality",
        "orthgate modality remove prod mr-scanner-1",
        run_modality_remove,
        site_help="remove it from this proxy site",
    )


def _register_config(subparsers: argparse._SubParsersAction) -> None:
    actions = _group(
        subparsers,
        "config",
        "set or remove any key of a stack file",
        "orthgate config set prod clientVpn.clientCidr 192.168.0.0/22",
    )
    set_ = _leaf(
        actions,
        "set",
        "set one key (missing objects on the way are created)",
        "orthgate config set prod network.siteToSiteVpns[0].bgpAsn 65011\n"
        "  orthgate config set dev network.interfaceEndpoints '[kms, ssm]'\n"
        "  orthgate config set dev orthanc.aeTitle 0104 --string",
        run_config_set,
    )
    set_.add_argument(
        "key_path",
        metavar="KEY.PATH",
        help="orthgate:clientVpn.clientCidr, clientVpn.clientCidr, a[0].b or aws:region",
    )
    set_.add_argument(
        "value", metavar="VALUE", help="a YAML value, read as the Pulumi CLI reads the file"
    )
    set_.add_argument("--string", action="store_true", help="take VALUE as text, as it is")
    _dry_run(set_)
    unset = _leaf(
        actions,
        "unset",
        "remove one key or list entry",
        "orthgate config unset prod orthanc.instanceType",
        run_config_unset,
    )
    unset.add_argument("key_path", metavar="KEY.PATH")
    _dry_run(unset)


def _name_and_ae(text: str) -> editing.ModalitySpec:
    name, sep, ae_title = text.partition("=")
    if not sep or not name or not ae_title:
        raise argparse.ArgumentTypeError(f"{text!r}: write NAME=AET, e.g. us-west-1=US_WEST_1")
    return editing.ModalitySpec(name, ae_title)


# --- handlers ------------------------------------------------------------------------------


def run_site_add(args: argparse.Namespace) -> int:
    site = editing.SiteSpec(
        name=args.name,
        source_cidrs=args.source_cidr,
        ae_title=args.ae_title,
        listen_address=args.listen_address,
        modalities=args.modality,
        accept_any_modality=args.accept_any_modality,
        listen_port=args.listen_port,
    )
    return _run(
        args,
        lambda path: editing.add_site(path, site, write=not args.dry_run),
        lambda stack: (
            f"{_pulumi_up(stack)}, then hand the site its bundle with "
            f"`orthgate bundle {stack} {args.name} DEST`"
        ),
    )


def run_site_remove(args: argparse.Namespace) -> int:
    return _run(
        args,
        lambda path: editing.remove_site(path, args.name, write=not args.dry_run),
        lambda stack: f"{_pulumi_up(stack)}, then retire the site's proxy machine",
    )


def run_workstation_add(args: argparse.Namespace) -> int:
    return _run(
        args,
        lambda path: editing.add_workstation(
            path,
            args.name,
            enable=args.enable,
            client_cidr=args.client_cidr,
            write=not args.dry_run,
        ),
        lambda stack: (
            f"{_pulumi_up(stack)}, then write its profile with "
            f"`orthgate profile {stack} {args.name}`"
        ),
    )


def run_workstation_remove(args: argparse.Namespace) -> int:
    return _run(
        args,
        lambda path: editing.remove_workstation(path, args.name, write=not args.dry_run),
        _pulumi_up,
    )


def run_modality_add(args: argparse.Namespace) -> int:
    modality = editing.ModalitySpec(args.name, args.ae_title, args.connection, args.source_cidr)
    return _run(
        args,
        lambda path: editing.add_modality(path, modality, site=args.site, write=not args.dry_run),
        _pulumi_up,
    )


def run_modality_remove(args: argparse.Namespace) -> int:
    return _run(
        args,
        lambda path: editing.remove_modality(
            path, args.name, site=args.site, write=not args.dry_run
        ),
        _pulumi_up,
    )


def run_config_set(args: argparse.Namespace) -> int:
    def edit(path: Path) -> editing.Edit:
        value = args.value if args.string else load_go_yaml(args.value)
        if isinstance(value, int) and not isinstance(value, bool) and str(value) != args.value:
            # The README's pitfall: yaml.v3 reads 0104 as octal (68), 1_000 as 1000.
            print(
                f"note: the Pulumi CLI reads {args.value} as the number {value}; "
                "pass --string to keep it as text",
                file=sys.stderr,
            )
        return editing.set_value(path, args.key_path, value, write=not args.dry_run)

    return _run(args, edit, _pulumi_up)


def run_config_unset(args: argparse.Namespace) -> int:
    return _run(
        args,
        lambda path: editing.unset_value(path, args.key_path, write=not args.dry_run),
        _pulumi_up,
    )


def _pulumi_up(stack: str) -> str:
    return f"`orthgate plan {stack}` to review, then `orthgate up {stack}`"


def _run(
    args: argparse.Namespace,
    edit: Callable[[Path], editing.Edit],
    next_step: Callable[[str], str],
) -> int:
    try:
        stack, path = _stack_file(args.stack, args)
    except OrthgateError as error:
        print(f"orthgate: {error}", file=sys.stderr)
        return EXIT_SETUP
    try:
        result = edit(path)
    except ConfigError as error:
        count = len(error.problems)
        print(
            f"orthgate: {path} not changed: the edit would break {count} "
            f"rule{'s' if count != 1 else ''}:",
            file=sys.stderr,
        )
        for problem in error.problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_REFUSED
    except StackFileError as error:
        print(f"orthgate: {path} not changed: {error}", file=sys.stderr)
        return EXIT_REFUSED
    except editing.EditError as error:
        print(f"orthgate: {path} not changed: {error}", file=sys.stderr)
        return EXIT_REFUSED
    for warning in result.warnings:
        print(f"orthgate: warning: {warning}", file=sys.stderr)
    if args.dry_run:
        print(result.diff(), end="")
        print(f"dry run: {result.summary} in {path} (not written)")
    else:
        print(f"{result.summary} in {path}. Next: {next_step(stack)}.")
    return EXIT_OK


def _stack_file(stack_or_file: str, args: argparse.Namespace) -> tuple[str, Path]:
    candidate = Path(stack_or_file)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        return stack_file_for(stack_or_file)  # a file: no project needed
    return stack_file_for(stack_or_file, project_of(args))
