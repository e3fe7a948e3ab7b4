"""The CloudWatch agent's configuration: disk use of the Orthanc host, for the alarms.

EC2 reports no disk use by itself. The agent (Amazon Linux's ``amazon-cloudwatch-agent``
package) publishes ``disk_used_percent`` per mount point into the stack's own namespace,
also aggregated by path alone, so one alarm per path covers every host of a fleet.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

AGENT_PACKAGE = "amazon-cloudwatch-agent"
AGENT_CTL = "/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl"
AGENT_CONFIG = "/etc/orthgate/cloudwatch-agent.json"
# The metric the agent names disk + measurement: what the alarms watch.
DISK_METRIC = "disk_used_percent"


@dataclass(frozen=True)
class AgentSpec:
    namespace: str
    disk_paths: Sequence[str]
    interval_seconds: int = 60


def render_agent_config(spec: AgentSpec) -> dict[str, Any]:
    if not spec.disk_paths or any(not p.startswith("/") for p in spec.disk_paths):
        raise ValueError(f"disk paths must be absolute mount points: {list(spec.disk_paths)}")
    return {
        "agent": {"metrics_collection_interval": spec.interval_seconds},
        "metrics": {
            "namespace": spec.namespace,
            # The agent fills this in on the host (its own placeholder, not a shell one).
            "append_dimensions": {"InstanceId": "${aws:InstanceId}"},
            # One series per path over all hosts: the alarm's maximum is the fullest disk.
            "aggregation_dimensions": [["path"]],
            "metrics_collected": {
                "disk": {
                    "resources": list(spec.disk_paths),
                    "measurement": ["used_percent"],
                    "drop_device": True,
                }
            },
        },
    }


def agent_config_json(spec: AgentSpec) -> str:
    return json.dumps(render_agent_config(spec), indent=2, sort_keys=True) + "\n"
