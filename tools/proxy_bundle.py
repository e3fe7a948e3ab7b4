"""Write one site's DICOM proxy bundle to a folder, from the stack outputs.

    python -m tools.proxy_bundle site-a ./site-a --stack prod
    python -m tools.proxy_bundle site-a ./site-a --outputs outputs.json

The bundle holds the site's private key: the folder is created owner-only, secret files are
written 0600, and an existing non-empty folder is only replaced with --force.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from orthgate.components.render.proxy_bundle import PRIVATE_FILES

OUTPUT = "dicomProxyBundles"


class BundleError(Exception):
    """Something an operator has to fix; the message says what."""


def stack_bundles(stack: str | None) -> dict[str, dict[str, str]]:
    """The ``dicomProxyBundles`` output of a stack, through the Pulumi CLI."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise BundleError("the Pulumi CLI is not installed; use --outputs with a JSON file")
    command = [pulumi, "stack", "output", OUTPUT, "--show-secrets", "--json"]
    if stack:
        command += ["--stack", stack]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise BundleError(f"pulumi stack output failed: {result.stderr.strip()}")
    return json.loads(result.stdout)


def bundles_from_file(path: Path) -> dict[str, dict[str, str]]:
    """Either the whole ``pulumi stack output --json`` or just the bundles object."""
    document = json.loads(path.read_text())
    return document.get(OUTPUT, document)


def write_bundle(files: Mapping[str, str], dest: Path, *, force: bool = False) -> list[Path]:
    for relative in files:
        if Path(relative).is_absolute() or ".." in Path(relative).parts:
            raise BundleError(f"refusing a bundle path outside the folder: {relative}")
    if dest.exists() and any(dest.iterdir()) and not force:
        raise BundleError(f"{dest} is not empty; use --force to replace the bundle in it")
    dest.mkdir(parents=True, exist_ok=True)
    dest.chmod(0o700)
    written = []
    for relative, content in sorted(files.items()):
        path = dest / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = 0o600 if relative in PRIVATE_FILES else 0o644
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(content)
        path.chmod(mode)
        written.append(path)
    return written


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description="Write a site's DICOM proxy bundle.")
    parser.add_argument("site", help="the site name (orthgate:dicomProxies[].name)")
    parser.add_argument("dest", type=Path, help="folder to write the bundle into")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--stack", help="stack to read the outputs of (default: selected)")
    source.add_argument("--outputs", type=Path, help="JSON from `pulumi stack output --json`")
    parser.add_argument("--force", action="store_true", help="replace files in a full folder")
    args = parser.parse_args(argv)
    try:
        bundles = bundles_from_file(args.outputs) if args.outputs else stack_bundles(args.stack)
        if args.site not in bundles:
            known = ", ".join(sorted(bundles)) or "none"
            raise BundleError(f"no bundle for site {args.site!r} (sites: {known})")
        written = write_bundle(bundles[args.site], args.dest, force=args.force)
    except BundleError as error:
        print(f"proxy bundle: {error}", file=sys.stderr)
        return 1
    print(f"wrote {len(written)} files for site {args.site} to {args.dest}")
    print(f"on the site: cd {args.dest} && docker compose up -d")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
