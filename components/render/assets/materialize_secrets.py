#!/usr/bin/env python3
"""orthgate: write the host's secret files from Secrets Manager (see secrets.json).

TLS files and orthanc.json (the "config" secret with the passwords merged in) land on
tmpfs, owner-only. With --apply, the manifest's command runs for each group that changed
(rotation), and at each later --apply run until it succeeds: a marker in pendingDir, made
before the group's files change and removed once its command succeeded, keeps a failed
reload or restart from being forgotten. A failure exits 1; on stderr, lines starting <3>
or <4> get priority err or warning in the journal. Prints no secret.
Python 3.9, standard library only (Amazon Linux 2023).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import urllib.parse

# Pending markers are named after their group.
_GROUP = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


def fetch(secret_id: str, region: str) -> str:
    command = ["aws", "secretsmanager", "get-secret-value", "--region", region,
               "--secret-id", secret_id, "--query", "SecretString", "--output", "text"]  # fmt: skip
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.rstrip("\n")


def inside(path: str, directory: str) -> bool:
    # Real paths: a symbolic link must not lead a root-owned write (a private key, a
    # chmod, a removal) out of the runtime directory.
    path, directory = os.path.realpath(path), os.path.realpath(directory)
    return path != directory and os.path.commonpath([path, directory]) == directory


def prepare(path: str, runtime_dir: str) -> None:
    """Owner-only parent directories; a directory in place of the file goes.

    dockerd creates a missing bind source as a directory (0755, parents too). Under the
    runtime directory all is ours; elsewhere the directory may matter: stop instead. A
    symbolic link in place of the file, or among its parents, is never followed."""
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.lexists(parent) and not (
        os.path.realpath(parent) == os.path.realpath(runtime_dir) or inside(parent, runtime_dir)
    ):
        raise SystemExit(f"<3>orthgate: {parent} leads outside {runtime_dir}; not writing there")
    if os.path.islink(path):
        print(f"<4>orthgate: {path} was a symbolic link; replacing it by the file",
              file=sys.stderr, flush=True)  # fmt: skip
        os.unlink(path)
    if os.path.isdir(path):
        if not inside(path, runtime_dir):
            raise SystemExit(
                f"<3>orthgate: {path} is a directory outside {runtime_dir}; not removing it"
            )
        print(f"<4>orthgate: {path} was a directory (a bind source dockerd made?); replacing it",
              file=sys.stderr, flush=True)  # fmt: skip
        shutil.rmtree(path)
    os.makedirs(parent, mode=0o700, exist_ok=True)
    while parent == runtime_dir or inside(parent, runtime_dir):
        os.chmod(parent, 0o700)
        parent = os.path.dirname(parent)


def write(path: str, content: str, mode: int, before_change) -> bool:  # noqa: ANN001
    """Atomically replace ``path`` with ``content``; True when the content changed.

    ``before_change()`` runs first, so a crash right after the write leaves it pending."""
    try:
        with open(path, encoding="utf-8") as existing:
            if existing.read() == content:
                os.chmod(path, mode)
                return False
    except FileNotFoundError:
        pass
    before_change()
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".orthgate-")
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(content)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return True


def fill_url(template: str, field) -> str:  # noqa: ANN001 - a callable(str) -> str
    """Replace each ``{name}`` in ``template`` by the URL-encoded secret field ``name``."""
    return re.sub(r"\{(\w+)\}", lambda m: urllib.parse.quote(field(m.group(1)), safe=""), template)


def materialize(manifest: dict, before_change) -> set:  # noqa: ANN001
    """Write every file of the manifest; return the groups whose content changed.

    ``before_change(group)`` runs once per changed group, before its first file changes."""
    cache = {}
    runtime_dir = os.path.abspath(manifest["runtimeDir"])
    changed = set()

    def value(role: str, key: str) -> str:
        if role not in cache:
            cache[role] = json.loads(fetch(manifest["secrets"][role], manifest["region"]))
        field = cache[role].get(key) if isinstance(cache[role], dict) else None
        if not isinstance(field, str):
            raise SystemExit(f"orthgate: secret {role} has no text field {key!r}")
        return field

    def put(group: str, path: str, content: str, mode: int) -> None:
        prepare(path, runtime_dir)

        def first_change() -> None:
            if group not in changed:
                before_change(group)
                changed.add(group)

        write(path, content, mode, first_change)

    for item in manifest.get("files", []):
        content = value(item["secret"], item["key"]).rstrip("\n") + "\n"
        put(item["group"], item["path"], content, int(item["mode"], 8))
    spec = manifest.get("orthancConfig")
    if spec:
        config = json.loads(value(spec["secret"], "orthanc.json"))
        for item in spec["values"]:
            node = config
            for part in item["at"][:-1]:
                node = node.setdefault(part, {})
            last = item["at"][-1]
            if item.get("fill") == "url":
                node[last] = fill_url(node[last], lambda field, s=item["secret"]: value(s, field))
            else:
                node[last] = value(item["secret"], item["key"])
        text = json.dumps(config, indent=2, sort_keys=True) + "\n"
        put("orthancConfig", spec["path"], text, 0o600)
    return changed


def marker(pending_dir: str, group: str) -> str:
    if not _GROUP.match(group):
        raise SystemExit(f"orthgate: {group!r} is not a group name")
    return os.path.join(pending_dir, group)


def mark_pending(pending_dir: str, group: str) -> None:
    os.makedirs(pending_dir, mode=0o700, exist_ok=True)
    with open(marker(pending_dir, group), "w", encoding="utf-8"):
        pass


def run_pending(pending_dir: str, commands: dict, changed: set) -> int:
    """Run the command of every pending group, even when a previous one failed."""
    try:
        groups = sorted(name for name in os.listdir(pending_dir) if not name.startswith("."))
    except FileNotFoundError:
        return 0
    failed = []
    for group in groups:
        if not _GROUP.match(group) or group not in commands:
            # Not a marker of ours (or of a group this manifest no longer has): never let it
            # stop the others.
            print(f"<4>orthgate: ignoring {os.path.join(pending_dir, group)!r} in the pending "
                  "directory", file=sys.stderr, flush=True)  # fmt: skip
            continue
        path = marker(pending_dir, group)
        command = commands[group]
        if not command:
            os.unlink(path)  # nothing to run for it any more
            continue
        if group not in changed:
            print(f"orthgate: {group} still pending; running its command again", flush=True)
        # One line, whatever the command holds: journald takes the priority per line.
        shown = " ".join(shlex.quote(part) for part in command).replace("\n", "\\n")
        try:
            status = subprocess.run(command, stdin=subprocess.DEVNULL, check=False).returncode
        except OSError as error:
            outcome = f"could not start ({error.strerror})"
        else:
            if status == 0:
                os.unlink(path)
                continue
            outcome = f"exit status {status}" if status > 0 else f"killed by signal {-status}"
        failed.append(group)
        print(f"<3>orthgate: {group}: onChange failed ({outcome}), left pending for the next "
              f"--apply run: {shown}", file=sys.stderr, flush=True)  # fmt: skip
    return 1 if failed else 0


def main(argv: list) -> int:
    parser = argparse.ArgumentParser(description="orthgate: secrets to files")
    parser.add_argument("--manifest", default="/etc/orthgate/secrets.json")
    parser.add_argument("--apply", action="store_true", help="run onChange commands")
    args = parser.parse_args(argv)
    with open(args.manifest, encoding="utf-8") as handle:
        manifest = json.load(handle)
    commands = manifest.get("onChange", {})
    pending_dir = manifest["pendingDir"]

    def before_change(group: str) -> None:
        # Without --apply (at start) the containers are created afresh afterwards.
        if args.apply and commands.get(group):
            mark_pending(pending_dir, group)

    changed = materialize(manifest, before_change)
    for group in sorted(changed):
        print(f"orthgate: {group} changed", flush=True)
    return run_pending(pending_dir, commands, changed) if args.apply else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
