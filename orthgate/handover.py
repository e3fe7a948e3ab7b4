"""Hand-over files written from stack outputs: a site's proxy bundle, a workstation's
Client VPN profile. Both hold a private key: folders are created owner-only (0700), secret
files 0600, and nothing is replaced without ``force``.

The outputs come from the stack (through the Automation API) or from a JSON file of
``pulumi stack output --json --show-secrets``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orthgate.components.render.proxy_bundle import PRIVATE_FILES
from orthgate.errors import OrthgateError

BUNDLES_OUTPUT = "dicomProxyBundles"
PROFILES_OUTPUT = "clientVpnProfiles"


class HandoverError(OrthgateError):
    """A bundle or profile that cannot be written; the message says why."""


def outputs_from_file(path: Path) -> dict[str, Any]:
    """The whole ``pulumi stack output --json --show-secrets`` document."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise HandoverError(f"{path}: cannot read stack outputs as JSON: {error}") from None
    if not isinstance(document, dict):
        raise HandoverError(f"{path}: expected the JSON object `pulumi stack output --json` prints")
    return document


def pick(outputs: Mapping[str, Any], output: str, name: str, what: str) -> Any:
    """``outputs[output][name]``, refused in words an operator can act on."""
    entries = outputs.get(output)
    if entries == "[secret]":
        raise HandoverError(f"{output} is a secret output: read the outputs with --show-secrets")
    if not isinstance(entries, dict):
        raise HandoverError(f"the stack has no {output} output (is any {what} configured?)")
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none"
        raise HandoverError(f"no {what} named {name!r} in {output} ({what}s: {known})")
    entry = entries[name]
    files_ok = isinstance(entry, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in entry.items()
    )
    if not (isinstance(entry, str) or files_ok):
        raise HandoverError(
            f"{output}.{name} is not what the stack writes (text, or file name -> text): "
            "is this the output of `pulumi stack output --json --show-secrets`?"
        )
    return entry


def _write_private(path: Path, content: str, mode: int) -> None:
    """Write a new file with its final mode and rename it into place.

    The key is never in a file others can read, not even briefly and not when an older,
    more open file is replaced; a symbolic link at ``path`` is refused, never followed.
    """
    if path.is_symlink():
        raise HandoverError(f"{path} is a symbolic link: refusing to write a key through it")
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(content)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_bundle(files: Mapping[str, str], dest: Path, *, force: bool = False) -> list[Path]:
    """Write a proxy bundle (relative path -> content) into the folder ``dest``."""
    for relative in files:
        if Path(relative).is_absolute() or ".." in Path(relative).parts:
            raise HandoverError(f"refusing a bundle path outside the folder: {relative}")
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise HandoverError(f"{dest} exists and is not a folder (or is a symbolic link)")
    if dest.exists() and any(dest.iterdir()) and not force:
        raise HandoverError(f"{dest} is not empty; use --force to replace the bundle in it")
    dest.mkdir(parents=True, exist_ok=True)
    dest.chmod(0o700)
    written = []
    for relative, content in sorted(files.items()):
        path = dest / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.parent.resolve().is_relative_to(dest.resolve()):
            raise HandoverError(f"{path.parent} leads outside {dest} (a symbolic link?)")
        _write_private(path, content, 0o600 if relative in PRIVATE_FILES else 0o644)
        written.append(path)
    return written


def stale_files(files: Mapping[str, str], dest: Path) -> list[str]:
    """Files in ``dest`` that the bundle does not hold (an earlier bundle's, or the site's)."""
    if not dest.is_dir():
        return []
    present = {str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()}
    return sorted(present - set(files))


def write_profile(profile: str, dest: Path, *, force: bool = False) -> Path:
    """Write a Client VPN profile (it embeds the workstation's key) to the file ``dest``."""
    if dest.is_dir() and not dest.is_symlink():
        raise HandoverError(f"{dest} is a folder; name the profile file (e.g. reading-room.ovpn)")
    if (dest.exists() or dest.is_symlink()) and not force:
        raise HandoverError(f"{dest} exists; use --force to replace it")
    dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write_private(dest, profile, 0o600)
    return dest
