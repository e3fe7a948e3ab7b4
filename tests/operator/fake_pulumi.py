"""A stand-in for the Pulumi CLI: records how it was called and answers as told.

Written to ``<root>/bin/pulumi`` by ``install_fake_pulumi``. It answers ``version``; any
other command appends ``{"argv", "cwd", "env"}`` to the log and then exits 0, or, when the
``FAKE_PULUMI_STDERR`` variable is set, prints it to stderr and exits 255, as the CLI
does when a command fails.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

SCRIPT = """#!{python}
import json, os, sys
if sys.argv[1:] == ["version"]:
    print("v3.272.0")
    sys.exit(0)
keep = ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE")
with open({log!r}, "a") as log:
    env = {{k: os.environ[k] for k in keep if k in os.environ}}
    log.write(json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd(), "env": env}}) + "\\n")
failure = os.environ.get("FAKE_PULUMI_STDERR")
if failure:
    sys.stderr.write(failure + "\\n")
    sys.exit(255)
"""


def install_fake_pulumi(root: Path) -> Path:
    """A fake CLI at ``root/bin/pulumi``; returns its call log."""
    log = root / "calls.jsonl"
    executable = root / "bin" / "pulumi"
    executable.parent.mkdir(parents=True)
    executable.write_text(SCRIPT.format(python=sys.executable, log=str(log)))
    executable.chmod(executable.stat().st_mode | stat.S_IXUSR)
    return log


def calls(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]
