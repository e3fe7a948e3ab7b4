"""Read back what a launch template tells its instance: the cloud-config and its files."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import yaml

from tests.harness.pulumi_run import Declared, Evaluation


def cloud_config_text(template: Declared) -> str:
    raw = base64.b64decode(template.inputs["userData"])
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw.decode()


def cloud_config(template: Declared) -> dict[str, Any]:
    text = cloud_config_text(template)
    assert text.startswith("#cloud-config\n")
    return yaml.safe_load(text)


def written_files(template: Declared) -> dict[str, str]:
    """path -> content of every ``write_files`` entry."""
    return {entry["path"]: entry["content"] for entry in cloud_config(template)["write_files"]}


def deployed_orthanc_config(evaluation: Evaluation) -> dict[str, Any]:
    """orthanc.json as the program stores it in Secrets Manager (passwords merged on the host)."""
    value = evaluation.named("orthanc-settings-secret-value").inputs["secretString"]
    return json.loads(json.loads(value)["orthanc.json"])
