"""Shared test set-up: the Pulumi mock harness and the project's CI rules for tests.

The mocks themselves live in tests/harness (AWS: realistic computed outputs and lookups;
pulumi-tls: real keys and certificates made with `cryptography`); the fixtures here hand
them to tests.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from typing import Any

import pytest

from tests.harness.pulumi_run import Evaluation, RecordingMocks, evaluate

# The mocks every test runs the program against (AWS outputs and real pulumi-tls crypto).
OrthgateMocks = RecordingMocks

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture
def evaluate_stack() -> Callable[..., Evaluation]:
    """``evaluate_stack(config, **options)``: run the program under mocks, get what it declared."""
    return evaluate


@pytest.fixture
def minimal_config() -> dict[str, Any]:
    return {
        "aws:region": "eu-central-1",
        "orthgate:environment": "dev",
        "orthgate:network": {"vpcCidr": "10.40.0.0/16"},
    }


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if shutil.which("pulumi"):
        return
    skip = pytest.mark.skip(reason="the Pulumi CLI is not installed on this machine")
    for item in items:
        if "requires_pulumi_cli" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    report = yield
    # Under CI a missing orthanc, dcmtk, nginx or openvpn is a failure, never a skip; the
    # only tolerated skip is a test that needs the Pulumi CLI.
    allowed = "requires_pulumi_cli" in item.keywords or hasattr(report, "wasxfail")
    if IN_CI and report.skipped and not allowed:
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which is not allowed: {report.longrepr}"
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    passed = len(reporter.stats.get("passed", [])) if reporter else 0
    if exitstatus == 0 and passed == 0:
        # A run where nothing passed proves nothing: fail it.
        session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED
