#!/usr/bin/env python3
"""orthgate: write the host's secret files from Secrets Manager (see secrets.json).

TLS files and orthanc.json (the "config" secret with the passwords merged in) land on
tmpfs, owner-only. With --apply, the
manifest's command runs for each group that changed (rotation). Prints no secret.
Python 3.9, standard library only (Amazon Linux 2023).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.parse


def fetch(secret_id: str, region: str) -> str:
    command = ["aws", "secretsmanager", "get-secret-value", "--region", region,
               "--secret-id", secret_id, "--query", "SecretString", "--output", "text"]  # fmt: skip
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.rstrip("\n")


def write(path: str, content: str, mode: int) -> bool:
    """Atomically replace ``path`` with ``content``; True when the content changed."""
    try:
        with open(path, encoding="utf-8") as existing:
            if existing.read() == content:
                os.chmod(path, mode)
                return False
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
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


def materialize(manifest: dict) -> set:
    """Write every file of the manifest; return the groups whose content changed."""
    cache = {}

    def value(role: str, key: str) -> str:
        if role not in cache:
            cache[role] = json.loads(fetch(manifest["secrets"][role], manifest["region"]))
        field = cache[role].get(key) if isinstance(cache[role], dict) else None
        if not isinstance(field, str):
            raise SystemExit(f"orthgate: secret {role} has no text field {key!r}")
        return field

    changed = set()
    for item in manifest.get("files", []):
        content = value(item["secret"], item["key"]).rstrip("\n") + "\n"
        if write(item["path"], content, int(item["mode"], 8)):
            changed.add(item["group"])
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
        if write(spec["path"], json.dumps(config, indent=2, sort_keys=True) + "\n", 0o600):
            changed.add("orthancConfig")
    return changed


def main(argv: list) -> int:
    parser = argparse.ArgumentParser(description="orthgate: secrets to files")
    parser.add_argument("--manifest", default="/etc/orthgate/secrets.json")
    parser.add_argument("--apply", action="store_true", help="run onChange commands")
    args = parser.parse_args(argv)
    with open(args.manifest, encoding="utf-8") as handle:
        manifest = json.load(handle)
    for group in sorted(materialize(manifest)):
        print(f"orthgate: {group} changed")
        command = manifest.get("onChange", {}).get(group)
        if args.apply and command:
            subprocess.run(command, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
