"""``orthgate profile`` and ``orthgate bundle``: the secret files an operator hands over."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from orthgate.commands.common import EXIT_OK, add_command, add_stack_argument
from orthgate.handover import (
    BUNDLES_OUTPUT,
    PROFILES_OUTPUT,
    outputs_from_file,
    pick,
    stale_files,
    write_bundle,
    write_profile,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    profile = add_command(
        subparsers,
        "profile",
        "write a workstation's Client VPN profile (it holds the workstation's key)",
        "orthgate profile prod reading-room-1 ./reading-room-1.ovpn",
        "Write the OpenVPN profile of one workstation of orthgate:clientVpn.workstations, "
        "owner-only (0600). The outputs are read from the stack (Pulumi CLI and passphrase "
        "needed) or from --outputs FILE (`pulumi stack output --json --show-secrets`).",
    )
    add_stack_argument(profile)
    profile.add_argument("workstation", help="the workstation's name")
    profile.add_argument("dest", nargs="?", type=Path, help="file (default ./WORKSTATION.ovpn)")
    _add_source_options(profile)
    profile.set_defaults(handler=run_profile)

    bundle = add_command(
        subparsers,
        "bundle",
        "write a DICOM proxy site's bundle (it holds the site's key)",
        "orthgate bundle prod north-clinic ./north-clinic   # then on the site: "
        "docker compose up -d",
        "Write the proxy bundle of one orthgate:dicomProxies site into a folder: the folder "
        "0700, its key files 0600. The outputs are read from the stack (Pulumi CLI and "
        "passphrase needed) or from --outputs FILE.",
    )
    add_stack_argument(bundle)
    bundle.add_argument("site", help="the site's name")
    bundle.add_argument("dest", nargs="?", type=Path, help="folder (default ./proxy-SITE)")
    _add_source_options(bundle)
    bundle.set_defaults(handler=run_bundle)


def _add_source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--outputs", type=Path, help="JSON of `pulumi stack output --json --show-secrets`"
    )
    parser.add_argument("--force", action="store_true", help="replace existing files")
    parser.add_argument("--backend-url", help="Pulumi state backend (default as `orthgate up`)")
    parser.add_argument("--pulumi-root", type=Path, help="where the Pulumi CLI is installed")


def _outputs(args: argparse.Namespace) -> dict[str, Any]:
    if args.outputs is not None:
        return outputs_from_file(args.outputs)
    from orthgate.commands.cloud import open_from

    return open_from(args, create=False).outputs(show_secrets=True)


def run_profile(args: argparse.Namespace) -> int:
    profile = pick(_outputs(args), PROFILES_OUTPUT, args.workstation, "workstation")
    dest = args.dest or Path(f"{args.workstation}.ovpn")
    write_profile(profile, dest, force=args.force)
    print(f"wrote {dest} (0600): import it into the workstation's OpenVPN client")
    return EXIT_OK


def run_bundle(args: argparse.Namespace) -> int:
    files = pick(_outputs(args), BUNDLES_OUTPUT, args.site, "site")
    dest = args.dest or Path(f"proxy-{args.site}")
    stale = stale_files(files, dest)
    written = write_bundle(files, dest, force=args.force)
    print(f"wrote {len(written)} files for site {args.site} to {dest}")
    if stale:
        print(f"left in place, not part of this bundle: {', '.join(stale)}", file=sys.stderr)
    print(f"on the site's machine: cd {dest.name} && docker compose up -d")
    return EXIT_OK
