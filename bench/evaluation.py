"""How long the offline evaluation (tests.harness.pulumi_run.evaluate) takes on big stacks.

Two scenarios, both on the dev stack file: 50 DICOM proxy sites, and 200 Client VPN
workstations. Each is evaluated a few times; min/median/max seconds are printed, and with
``--json`` a last line holding one JSON object with the medians.

    .venv/bin/python bench/evaluation.py [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.harness.pulumi_run import STACKS_DIR, evaluate, read_stack_file

PROXY_SITES = 50
WORKSTATIONS = 200


def dev_stack() -> dict[str, Any]:
    return read_stack_file(STACKS_DIR / "Pulumi.dev.yaml")


def with_proxy_sites(count: int = PROXY_SITES) -> dict[str, Any]:
    """The dev stack with ``count`` proxy sites, shaped like tests/integration/site_path.py's."""
    config = dev_stack()
    config["orthgate:dicomProxies"] = [
        {
            "name": f"site-{i:03d}",
            "sourceCidrs": [f"198.51.100.{i + 1}/32"],
            "aeTitle": f"SITE{i:03d}_GW",
            "listenAddress": f"192.168.50.{i + 10}",
            "acceptAnyModality": True,
        }
        for i in range(count)
    ]
    return config


def with_workstations(count: int = WORKSTATIONS) -> dict[str, Any]:
    """The dev stack with the Client VPN enabled for ``count`` workstations."""
    config = dev_stack()
    config["orthgate:clientVpn"] = {
        "enabled": True,
        "clientCidr": "192.168.0.0/22",
        "workstations": [f"reading-room-{i}" for i in range(1, count + 1)],
    }
    return config


SCENARIOS: dict[str, Callable[[], dict[str, Any]]] = {
    f"evaluate_{PROXY_SITES}_proxy_sites_s": with_proxy_sites,
    f"evaluate_{WORKSTATIONS}_workstations_s": with_workstations,
}


def time_scenario(build: Callable[[], dict[str, Any]], runs: int) -> list[float]:
    seconds = []
    for _ in range(runs):
        config = build()
        start = time.perf_counter()
        evaluate(config, stack="dev")
        seconds.append(time.perf_counter() - start)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="evaluations per scenario")
    parser.add_argument("--json", action="store_true", help="end with a JSON line of medians")
    args = parser.parse_args(argv)

    # Import the program (pulumi_aws takes seconds) before timing anything.
    import orthgate.components.stack  # noqa: F401

    medians: dict[str, float] = {}
    for key, build in SCENARIOS.items():
        seconds = time_scenario(build, args.runs)
        medians[key] = round(statistics.median(seconds), 3)
        print(
            f"{key}: min {min(seconds):.3f} s, median {statistics.median(seconds):.3f} s, "
            f"max {max(seconds):.3f} s ({args.runs} runs)",
            flush=True,
        )
    if args.json:
        print(json.dumps(medians))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
