"""The docker compose plugin is installed only when it matches the checksum pinned in code.

The boot script's ``install_compose`` runs for real in bash, with stand-ins for ``curl``
(it writes a file of known content) and ``uname``; nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from orthgate.components.render import cloud_init
from orthgate.components.render.cloud_init import (
    COMPOSE_SHA256,
    COMPOSE_VERSION,
    render_boot_script,
)

PAYLOAD = b"not really docker compose"


def _install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, machine: str, checksums: dict[str, str]
) -> subprocess.CompletedProcess:
    # A release of our own, whose checksums the test knows: the script is the real one.
    monkeypatch.setattr(cloud_init, "COMPOSE_SHA256", {**COMPOSE_SHA256, "9.9.9": checksums})
    script = render_boot_script(None, "9.9.9")
    plugin = tmp_path / "plugin" / "docker-compose"
    script = script.replace(
        'readonly COMPOSE_PLUGIN="/usr/local/lib/docker/cli-plugins/docker-compose"',
        f'readonly COMPOSE_PLUGIN="{plugin}"',
    )
    functions = script[: script.index("\nmount_data_volume() {")]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_curl = bin_dir / "curl"
    fake_curl.write_text(
        "#!/bin/bash\n"
        'while [ $# -gt 0 ]; do if [ "$1" = --output ]; then out=$2; shift; fi; shift; done\n'
        f"printf '%s' {PAYLOAD.decode()!r} > \"$out\"\n"
    )
    fake_uname = bin_dir / "uname"
    fake_uname.write_text(f"#!/bin/bash\necho {machine}\n")
    for tool in (fake_curl, fake_uname):
        tool.chmod(0o755)
    return subprocess.run(
        ["bash", "-c", functions + "\ninstall_compose\n"],
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_pinned_release_has_a_checksum_for_each_machine_type_ec2_has():
    checksums = COMPOSE_SHA256[COMPOSE_VERSION]
    assert set(checksums) == {"x86_64", "aarch64"}
    for value in checksums.values():
        assert len(value) == 64
        int(value, 16)
    script = render_boot_script(None, COMPOSE_VERSION)
    for value in checksums.values():
        assert value in script
    # Nothing fetched to compare with: the checksum never comes from where the binary does.
    assert ".sha256" not in script


def test_a_matching_binary_is_installed(tmp_path, monkeypatch):
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    result = _install(tmp_path, monkeypatch, "x86_64", {"x86_64": digest, "aarch64": "0" * 64})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "plugin" / "docker-compose").read_bytes() == PAYLOAD


@pytest.mark.parametrize("machine", ["x86_64", "aarch64", "riscv64"])
def test_anything_else_stops_the_boot_and_installs_nothing(tmp_path, monkeypatch, machine):
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    # The right digest, but for the other machine type: never accepted for this one.
    checksums = {"x86_64": "0" * 64, "aarch64": "0" * 64}
    checksums["aarch64" if machine == "x86_64" else "x86_64"] = digest
    result = _install(tmp_path, monkeypatch, machine, checksums)
    assert result.returncode != 0
    assert not (tmp_path / "plugin" / "docker-compose").exists()
    assert "checksum" in result.stdout + result.stderr


def test_a_version_without_a_pinned_checksum_is_refused():
    with pytest.raises(ValueError, match="no pinned checksum"):
        render_boot_script(None, "1.0.0")
