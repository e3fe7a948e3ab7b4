"""The distribution: `pip install .` gives the `orthgate` package and command, carrying the
Pulumi components as orthgate.components and nothing else at the top level."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.harness.pulumi_run import PROJECT_ROOT

IGNORED = shutil.ignore_patterns(
    ".venv", ".git", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the checkout (the build writes into its source tree)."""
    source = tmp_path_factory.mktemp("source") / "orthgate"
    shutil.copytree(PROJECT_ROOT, source, symlinks=True, ignore=IGNORED)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "-w",
            str(out),
            str(source),
        ],
        check=True,
    )
    [built] = out.glob("orthgate-*.whl")
    return built


def test_the_wheel_holds_orthgate_only_with_the_components_inside(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/", 1)[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"orthgate"}
    for needed in (
        "orthgate/components/stack.py",
        "orthgate/components/render/assets/forwarder.py",
        "orthgate/components/render/assets/materialize_secrets.py",
        "orthgate/data/aws-prices.json",
        "orthgate/offline/evaluation.py",
        "orthgate/cli.py",
    ):
        assert needed in names
    # Every module of the checkout's components/ is in the wheel.
    shipped = {n.removeprefix("orthgate/") for n in names if n.startswith("orthgate/components/")}
    local = {
        str(p.relative_to(PROJECT_ROOT))
        for p in (PROJECT_ROOT / "components").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert local <= shipped
    metadata = (
        zipfile.ZipFile(wheel)
        .read(next(n for n in names if n.endswith(".dist-info/METADATA")))
        .decode()
    )
    requirements = [
        line.split("#")[0].strip()
        for line in (PROJECT_ROOT / "requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    for requirement in requirements:
        assert f"Requires-Dist: {requirement}" in metadata
    entry_points = (
        zipfile.ZipFile(wheel)
        .read(next(n for n in names if n.endswith(".dist-info/entry_points.txt")))
        .decode()
    )
    assert "orthgate = orthgate.cli:main" in entry_points


def test_the_installed_command_validates_and_plans_outside_the_checkout(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
    )
    stack = tmp_path / "Pulumi.dev.yaml"
    shutil.copy(PROJECT_ROOT / "stacks" / "Pulumi.dev.yaml", stack)
    # The installed copy first on the path, run from a directory that is not a checkout.
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import orthgate, orthgate.components;"
        "assert orthgate.__file__.startswith(sys.argv[1]), orthgate.__file__;"
        "from orthgate.cli import main; sys.exit(main(sys.argv[2:]))"
    )

    def orthgate(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", script, str(target), *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )

    validated = orthgate("validate", str(stack))
    assert validated.returncode == 0, validated.stderr
    assert "valid (stack dev, environment dev)" in validated.stdout
    planned = orthgate("plan", str(stack), "--summary")
    assert planned.returncode == 0, planned.stderr
    assert "orthanc (orthgate:orthanc:OrthancServer)" in planned.stdout
    assert "Total: $" in planned.stdout
    helped = orthgate("--help")
    assert "orthgate plan prod" in helped.stdout
