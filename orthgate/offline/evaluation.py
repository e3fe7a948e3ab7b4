"""Run the orthgate program in-process under Pulumi mocks and capture what it declared.

``evaluate(config)`` plays the part of ``pulumi up`` without the CLI or a cloud: it sets the
stack configuration the way the CLI passes it (objects as JSON strings), runs the program
with ``preview=False`` (so every ``apply`` runs on real values), waits for every
registration and returns the declared resources and the resolved stack outputs. The tests
and ``orthgate plan`` use this same evaluation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.sync_await import _sync_await

from orthgate.offline.aws_mock import DEFAULT_REGION, AwsMock
from orthgate.offline.random_mock import (
    RANDOM_ID,
    RANDOM_PASSWORD,
    new_random_id,
    new_random_password,
)
from orthgate.offline.tls_mock import TLS_TYPES, new_tls_resource, unwrap_secrets


@dataclass(frozen=True)
class Options:
    """The resource options the program passed, as the engine received them."""

    protect: bool = False
    delete_before_replace: bool = False
    retain_on_delete: bool = False
    ignore_changes: tuple[str, ...] = ()
    replace_on_changes: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()  # URNs
    # property -> URNs its value came from
    property_dependencies: dict[str, tuple[str, ...]] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()  # URNs
    custom_timeouts: dict[str, str] = field(default_factory=dict)
    deleted_with: str = ""

    @classmethod
    def from_request(cls, request: Any) -> Options:
        timeouts = request.customTimeouts
        return cls(
            protect=bool(request.protect),
            delete_before_replace=bool(request.deleteBeforeReplace),
            retain_on_delete=bool(request.retainOnDelete),
            ignore_changes=tuple(request.ignoreChanges),
            replace_on_changes=tuple(request.replaceOnChanges),
            dependencies=tuple(request.dependencies),
            property_dependencies={
                key: tuple(value.urns) for key, value in request.propertyDependencies.items()
            },
            aliases=tuple(request.aliasURNs) + tuple(_alias(a) for a in request.aliases),
            custom_timeouts={
                k: v
                for k, v in (
                    ("create", timeouts.create),
                    ("update", timeouts.update),
                    ("delete", timeouts.delete),
                )
                if v
            },
            deleted_with=request.deletedWith,
        )


def _alias(alias: Any) -> str:
    """An alias as a URN, or as ``type::name`` when given by spec (same parent assumed)."""
    if alias.WhichOneof("alias") == "urn":
        return alias.urn
    return f"{alias.spec.type}::{alias.spec.name}"


@dataclass
class Declared:
    """One resource the program registered: its inputs as declared, outputs as mocked."""

    type: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    id: str | None
    urn: str = ""
    # The inputs as the engine received them: secret values still wrapped.
    raw_inputs: dict[str, Any] = field(default_factory=dict)
    options: Options = field(default_factory=Options)
    parent_urn: str = ""

    def plain_strings(self) -> list[str]:
        """Every string input that is NOT marked secret, at any depth."""
        found: list[str] = []

        def walk(value: Any) -> None:
            if rpc.is_rpc_secret(value):
                return
            if isinstance(value, str):
                found.append(value)
            elif isinstance(value, dict):
                for item in value.values():
                    walk(item)
            elif isinstance(value, list | tuple):
                for item in value:
                    walk(item)

        walk(self.raw_inputs)
        return found

    @property
    def parent_types(self) -> list[str]:
        """Types of the ancestors, outermost first, read off the URN's qualified type."""
        qualified = self.urn.split("::")[2] if self.urn else ""
        return qualified.split("$")[:-1]


class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks that record what was declared and, across evaluations sharing one ``AwsMock``
    (one account), play the engine's part between two `pulumi up`s: a resource whose inputs
    did not change keeps its outputs (keys, passwords, ids), and ``ignore_changes`` keeps
    the recorded value of the ignored inputs."""

    def __init__(self, aws: AwsMock) -> None:
        self.aws = aws
        self.declared: list[Declared] = []
        self.calls: list[tuple[str, dict]] = []
        # Filled by the monitor just before each registration reaches new_resource.
        self.options: dict[tuple[str, str], Options] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        key = (args.typ, args.name)
        inputs = dict(args.inputs)
        recorded = self.aws.state.get(key)
        if recorded is not None:
            for ignored in self.options.get(key, Options()).ignore_changes:
                if ignored in recorded[0]:
                    inputs[ignored] = recorded[0][ignored]
        if recorded is not None and recorded[0] == inputs:
            resource_id, outputs = recorded[1], recorded[2]
        else:
            resource_id, outputs = self._new(args, inputs)
        self.aws.state[key] = (inputs, resource_id, outputs)
        # Tests read plain values; the runtime gets the secret markers back.
        self.declared.append(
            Declared(
                args.typ,
                args.name,
                unwrap_secrets(inputs),
                unwrap_secrets(outputs),
                resource_id,
                raw_inputs=inputs,
            )
        )
        return resource_id, outputs

    def _new(self, args: pulumi.runtime.MockResourceArgs, inputs: dict) -> tuple[str | None, dict]:
        if args.typ in TLS_TYPES:
            return new_tls_resource(args.typ, args.name, inputs)
        if args.typ == RANDOM_PASSWORD:
            return new_random_password(args.name, inputs)
        if args.typ == RANDOM_ID:
            return new_random_id(args.name, inputs)
        if self.aws.handles(args.typ):
            return self.aws.new_resource(args.typ, args.name, inputs)
        if not args.custom:
            return None, inputs  # component resources have no provider
        raise NotImplementedError(
            f"no mock for {args.typ}: add its computed outputs to tests/harness"
        )

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        self.calls.append((args.token, dict(args.args)))
        return self.aws.call(args.token, dict(args.args))


class RecordingMonitor(MockMonitor):
    """Also keeps each resource's options and what each component passed to
    ``register_outputs``."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.registered_outputs: dict[str, dict[str, Any]] = {}
        self.options: dict[str, Options] = {}
        self.parents: dict[str, str] = {}

    def RegisterResource(self, request: Any) -> Any:  # the gRPC method name
        urn = self.make_urn(request.parent, request.type, request.name)
        options = Options.from_request(request)
        self.options[urn] = options
        self.parents[urn] = request.parent
        self.mocks.options[(request.type, request.name)] = options
        return super().RegisterResource(request)

    def RegisterResourceOutputs(self, request: Any) -> Any:  # the gRPC method name
        self.registered_outputs[request.urn] = rpc.deserialize_properties(request.outputs)
        return super().RegisterResourceOutputs(request)


@dataclass
class Evaluation:
    resources: list[Declared]
    outputs: dict[str, Any]
    secret_outputs: set[str]
    calls: list[tuple[str, dict]]
    registered_outputs: dict[str, dict[str, Any]]

    def component_outputs(self, type_token: str, name: str) -> dict[str, Any]:
        """What the component of that type and name passed to ``register_outputs``."""
        for urn, outputs in self.registered_outputs.items():
            if urn.endswith(f"{type_token}::{name}"):
                return outputs
        raise AssertionError(f"{type_token} {name} registered no outputs")

    def within(self, component_type: str) -> Evaluation:
        """Only the resources declared under a component of that type (and the component)."""
        kept = [
            r
            for r in self.resources
            if r.type == component_type or component_type in r.parent_types
        ]
        return Evaluation(
            kept, self.outputs, self.secret_outputs, self.calls, self.registered_outputs
        )

    def top_component(self, declared: Declared) -> Declared | None:
        """The outermost component ``declared`` sits in (itself if it is one); None for a
        resource declared at the top of the stack."""
        by_urn = {r.urn: r for r in self.resources if r.urn}
        found, current, seen = None, declared, set()
        while current is not None and id(current) not in seen:  # a made-up cycle ends too
            seen.add(id(current))
            if current.id is None:  # components have no provider id
                found = current
            current = by_urn.get(current.parent_urn) if current.parent_urn else None
        return found

    def of_type(self, type_token: str) -> list[Declared]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str) -> Declared:
        found = self.of_type(type_token)
        return _only(found, f"expected one {type_token}, found {[r.name for r in found]}")

    def named(self, name: str) -> Declared:
        found = [r for r in self.resources if r.name == name]
        return _only(found, f"expected one resource named {name}, found {len(found)}")

    def by_id(self, resource_id: str) -> Declared:
        found = [r for r in self.resources if r.id == resource_id]
        return _only(found, f"expected one resource with id {resource_id}")


def _only(found: list[Declared], message: str) -> Declared:
    # AssertionError: the tests read these lookups as assertions about what was declared.
    if len(found) != 1:
        raise AssertionError(message)
    return found[0]


def cli_config(config: Mapping[str, Any]) -> dict[str, str]:
    """Config as the Pulumi CLI hands it to a program: strings, objects JSON-encoded."""
    return {
        key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()
    }


def evaluate(
    config: Mapping[str, Any],
    *,
    stack: str = "test",
    region: str | None = None,
    zone_count: int = 3,
    program: Callable[[], None] | None = None,
    mocks: RecordingMocks | None = None,
) -> Evaluation:
    """Run ``program`` (default: orthgate's) against mocked AWS and TLS."""
    region = region or str(config.get("aws:region", DEFAULT_REGION))
    mocks = mocks or RecordingMocks(AwsMock(region=region, zone_count=zone_count))
    monitor = RecordingMonitor(mocks)
    runtime_settings.ROOT.set(None)  # a fresh root stack, so exports do not leak between runs
    pulumi.runtime.set_mocks(mocks, project="orthgate", stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(cli_config(config))

    if program is None:
        # Imported here: pulumi_aws takes seconds to import, and only an evaluation needs it.
        from orthgate.components.stack import program

    @pulumi.runtime.test
    def run() -> None:
        program()

    run()

    root = runtime_settings.get_root_resource()
    exported: dict[str, Any] = dict(getattr(root, "outputs", {}) or {})
    outputs, secrets = {}, set()
    for key, value in exported.items():
        output = pulumi.Output.from_input(value)
        outputs[key] = _sync_await(output.future())
        if _sync_await(output.is_secret()):
            secrets.add(key)

    urns = {}
    for registration in monitor.get_registered_resources().values():
        qualified = registration.urn.split("::")
        urns[(qualified[2].split("$")[-1], qualified[3])] = registration.urn
    for declared in mocks.declared:
        declared.urn = urns.get((declared.type, declared.name), "")
        declared.options = monitor.options.get(declared.urn, Options())
        declared.parent_urn = monitor.parents.get(declared.urn, "")
    return Evaluation(mocks.declared, outputs, secrets, mocks.calls, monitor.registered_outputs)
