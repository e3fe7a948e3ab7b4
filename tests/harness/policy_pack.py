"""Feed declared resources to the CrossGuard pack the way the Pulumi engine does.

``PackProcess`` starts ``policy/__main__.py`` as the CLI would (the SDK prints the port
of its analyzer server) and talks to it over gRPC with the engine's own messages:
``Configure`` with each policy's enforcement level and properties, ``Analyze`` per
resource with its inputs, ``AnalyzeStack`` once with every resource, its parent and its
property dependencies.

Two moments of a deployment are played:
- ``preview``: a first `pulumi preview`, where every value computed from another
  resource's outputs (ids, ARNs, generated names, anything built from them) is the
  engine's unknown sentinel;
- ``update``: `pulumi up`, where inputs are known and the stack analysis sees outputs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from orthgate.offline.evaluation import Declared, Evaluation

POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"
# The engine's sentinel for a value not known before the update (pulumi_policy.proxy).
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
MOMENTS = ("preview", "update")


@dataclass(frozen=True)
class Finding:
    policy: str
    level: str  # "mandatory" or "advisory"
    message: str
    urn: str

    @property
    def blocks(self) -> bool:
        return self.level == "mandatory"

    @property
    def skipped_for_unknowns(self) -> bool:
        return "can't run policy" in self.message and "during preview" in self.message


class PackProcess:
    """The pack's analyzer server, started as the CLI starts it."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, str(POLICY_DIR / "__main__.py")],
            cwd=POLICY_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        line = self.process.stdout.readline().decode().strip()
        if not line.isdigit():
            self.process.kill()
            raise RuntimeError(
                f"the policy pack did not start: {line!r} {self.process.stderr.read().decode()}"
            )
        self.channel = grpc.insecure_channel(f"127.0.0.1:{line}")
        self.stub = analyzer_pb2_grpc.AnalyzerStub(self.channel)
        self.info = self.stub.GetAnalyzerInfo(empty_pb2.Empty())
        self.levels = {p.name: p.enforcementLevel for p in self.info.policies}

    def close(self) -> None:
        self.channel.close()
        self.process.kill()
        self.process.wait()

    def plugin_version(self) -> str:
        return self.stub.GetPluginInfo(empty_pb2.Empty()).version

    def configure(self, config: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """Every policy gets its declared level (as the CLI sends it) and its properties."""
        config = config or {}
        unknown = set(config) - set(self.levels)
        if unknown:
            raise KeyError(f"no such policies in the pack: {sorted(unknown)}")
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for name, level in self.levels.items():
            entry = request.policyConfig[name]
            entry.enforcementLevel = level
            properties = struct_pb2.Struct()
            properties.update(json.loads(json.dumps(config.get(name, {}))))
            entry.properties.CopyFrom(properties)
        self.stub.Configure(request)

    def analyze(self, resource: Declared, props: Mapping[str, Any]) -> list[Finding]:
        request = analyzer_pb2.AnalyzeRequest(
            type=resource.type,
            urn=resource.urn,
            name=resource.name,
            properties=_struct(props),
            options=_options(resource),
        )
        return _findings(self.stub.Analyze(request), resource.urn)

    def analyze_stack(self, resources: list[tuple[Declared, Mapping[str, Any]]]) -> list[Finding]:
        request = analyzer_pb2.AnalyzeStackRequest()
        for resource, props in resources:
            entry = request.resources.add(
                type=resource.type,
                urn=resource.urn,
                name=resource.name,
                properties=_struct(props),
                options=_options(resource),
                parent=resource.parent_urn,
                dependencies=list(resource.options.dependencies),
            )
            for key, urns in resource.options.property_dependencies.items():
                entry.propertyDependencies[key].urns.extend(urns)
        return _findings(self.stub.AnalyzeStack(request), "")

    def run(self, evaluation: Evaluation, moment: str) -> list[Finding]:
        """Every finding of one preview or one update of ``evaluation``'s resources."""
        assert moment in MOMENTS, moment
        resources = [r for r in evaluation.resources if r.urn]
        by_urn = {r.urn: r for r in resources}
        findings: list[Finding] = []
        stack_view = []
        for resource in resources:
            if moment == "preview":
                props = preview_inputs(resource, by_urn)
                stack_props = props
            else:
                props = resource.raw_inputs
                stack_props = (
                    {**resource.outputs, "id": resource.id} if resource.id else resource.outputs
                )
            findings += self.analyze(resource, props)
            stack_view.append((resource, stack_props))
        return findings + self.analyze_stack(stack_view)


def _struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(json.loads(json.dumps(props, default=_json_default)))
    return struct


def _json_default(value: Any) -> Any:
    raise TypeError(f"a property the engine could not send: {value!r}")


def _options(resource: Declared) -> analyzer_pb2.AnalyzerResourceOptions:
    options = resource.options
    return analyzer_pb2.AnalyzerResourceOptions(
        protect=options.protect,
        ignoreChanges=list(options.ignore_changes),
        deleteBeforeReplace=options.delete_before_replace,
        deleteBeforeReplaceDefined=True,
        aliases=list(options.aliases),
        parent=resource.parent_urn,
    )


def _findings(response: analyzer_pb2.AnalyzeResponse, default_urn: str) -> list[Finding]:
    levels = {analyzer_pb2.MANDATORY: "mandatory", analyzer_pb2.ADVISORY: "advisory"}
    return [
        Finding(
            d.policyName, levels.get(d.enforcementLevel, "other"), d.message, d.urn or default_urn
        )
        for d in response.diagnostics
    ]


def _leaves(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _leaves(item)


def _computed(resource: Declared) -> set[str]:
    """What a resource's outputs add to its inputs: unknown until it exists."""
    given = set(_leaves(resource.inputs))
    found = {v for v in _leaves(resource.outputs) if v not in given}
    if resource.id:
        found.add(resource.id)
    return {v for v in found if len(v) >= 4}  # not "true", "udp": those echo inputs


def preview_inputs(resource: Declared, by_urn: Mapping[str, Declared]) -> dict[str, Any]:
    """The inputs as a first preview sends them: values derived from other resources'
    computed outputs replaced by the unknown sentinel (secrets stay wrapped)."""
    inputs = dict(resource.raw_inputs)
    for key, urns in resource.options.property_dependencies.items():
        computed = set().union(*(_computed(by_urn[u]) for u in urns if u in by_urn))
        if key in inputs and computed:
            inputs[key] = _blank(inputs[key], computed)
    return inputs


def _blank(value: Any, computed: set[str]) -> Any:
    if isinstance(value, str):
        return UNKNOWN if any(c in value for c in computed) else value
    if isinstance(value, Mapping):
        return {k: _blank(v, computed) for k, v in value.items()}
    if isinstance(value, list):
        return [_blank(v, computed) for v in value]
    return value
