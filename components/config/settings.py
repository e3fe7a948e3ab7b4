"""The whole stack configuration: every ``orthgate:*`` key, validated in one place.

``parse_settings`` is a pure function of the raw key values, so it is tested without Pulumi;
``load_settings`` reads them from the running Pulumi program. Either validates everything
before a single resource is declared and reports all problems at once.
"""

from __future__ import annotations

import difflib
import json
import math
import typing
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import pulumi
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from orthgate.components.config.alarms import AlarmSettings
from orthgate.components.config.base import Section
from orthgate.components.config.certificates import certificate_problems
from orthgate.components.config.client_vpn import ClientVpnSettings
from orthgate.components.config.deployment import deployment_problems
from orthgate.components.config.dicom_proxy import DicomProxySettings, proxy_problems
from orthgate.components.config.errors import NAMESPACE, ConfigError, Loc, Problem, raise_if_any
from orthgate.components.config.network import NetworkSettings
from orthgate.components.config.orthanc import OrthancSettings
from orthgate.components.config.quotas import QuotaSettings
from orthgate.components.config.rendered_sizes import rendered_size_problems
from orthgate.components.config.sender_rules import sender_problems

Environment = Literal["dev", "tst", "stg", "prd"]


class Settings(Section):
    """One stack's configuration. Each field is one top-level `orthgate:<key>` of the stack
    file's `config:` block."""

    environment: Environment
    """The kind of environment: `dev`, `tst`, `stg` or `prd`. Outside `dev` the images
    default to S3 and the index to PostgreSQL (`dev`: an EBS volume and SQLite); `prd` is
    production: `pulumi destroy` keeps its data (see
    [Day 2](#day-2-upgrades-replacements-destroy))."""
    network: NetworkSettings
    """The VPC and the private paths into it."""
    orthanc: OrthancSettings = OrthancSettings()
    """The Orthanc server."""
    client_vpn: ClientVpnSettings = ClientVpnSettings()
    """AWS Client VPN for workstations (off unless enabled)."""
    dicom_proxies: list[DicomProxySettings] = []
    """On-premises DICOM proxy sites, each forwarding over DICOM TLS; names unique, AE titles
    unique without regard to case. Refused with `orthgate:orthanc.placement: private`: a
    site reaches the cloud over the Internet."""
    alarms: AlarmSettings = AlarmSettings()
    """Who is told about alarms."""
    quotas: QuotaSettings = QuotaSettings()
    """The account's AWS quotas, where raised."""

    @property
    def is_production(self) -> bool:
        return self.environment == "prd"

    def problems(self) -> Iterator[Problem]:
        """Rules across keys; each section checks its own, then rules between sections."""
        yield from self.network.problems(("network",))
        yield from self.orthanc.problems(("orthanc",), nat_gateways=self.network.nat_gateways)
        yield from self.client_vpn.problems(
            ("clientVpn",),
            vpc_cidr=self.network.vpc_cidr,
            zone_count=self.network.availability_zones,
            on_prem=self.network.on_prem_ranges(("network",)),
            quotas=self.quotas,
        )
        yield from proxy_problems(self.dicom_proxies, self.orthanc)
        yield from self.alarms.problems(("alarms",))
        yield from certificate_problems(self)
        yield from rendered_size_problems(self)
        yield from deployment_problems(self)
        yield from sender_problems(self)


def parse_settings(raw: Mapping[str, Any]) -> Settings:
    """Validate raw values (top-level key without namespace -> decoded value).

    Raises ``ConfigError`` listing every problem. Cross-key rules run once every key is
    individually valid, since they need the parsed values.
    """
    try:
        settings = Settings.model_validate(dict(raw))
    except ValidationError as error:
        raise_if_any(_problem_from(detail) for detail in error.errors())
        raise  # pragma: no cover - pydantic never raises without errors
    settings = settings.model_copy(
        update={"orthanc": settings.orthanc.with_environment_defaults(settings.environment)}
    )
    raise_if_any(settings.problems())
    return settings


def load_settings(config: pulumi.Config | None = None) -> Settings:
    """Read every ``orthgate:*`` key of the running stack and validate it."""
    config = config or pulumi.Config(NAMESPACE)
    raw: dict[str, Any] = {}
    problems: list[Problem] = []
    for key in _stack_keys():
        try:
            value = config.get_object(key) if _is_structured(key) else config.get(key)
        except pulumi.config.ConfigTypeError as error:
            if _field_by_alias(Settings, key) is None:
                value = config.get(key)  # unknown and not JSON: refused below as unknown
            else:
                problems.append(_unreadable(key, config.get(key), error.__cause__))
                continue
        if value is not None:
            raw[key] = value
    try:
        settings = parse_settings(raw)
    except ConfigError as error:
        unreadable = {problem.loc for problem in problems}
        problems += [p for p in error.problems if p.loc not in unreadable]
        raise ConfigError(problems) from None
    raise_if_any(problems)
    return settings


def _stack_keys() -> list[str]:
    """Every ``orthgate:`` key the stack sets, plus the known ones (to report them missing)."""
    # The SDK keeps the whole configuration in this map; pulumi.Config has no way to list
    # keys, and an unknown key must be refused, not ignored.
    from pulumi.runtime import config as runtime_config

    given = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    prefix = f"{NAMESPACE}:"
    keys = {key[len(prefix) :] for key in given if key.startswith(prefix)}
    return sorted(keys | {field.alias or name for name, field in Settings.model_fields.items()})


def _is_structured(key: str) -> bool:
    model_field = _field_by_alias(Settings, key)
    if model_field is None:
        return True  # unknown key: decode it so the refusal shows the value as written
    annotation = _unwrap(model_field.annotation)
    return typing.get_origin(annotation) in (list, dict) or _is_model(annotation)


def _problem_from(detail: ErrorDetails) -> Problem:
    kind = detail["type"]
    # A union member's tag (e.g. "function-after[...]") is pydantic's, not a key.
    loc: Loc = tuple(
        part
        for i, part in enumerate(detail["loc"])
        if isinstance(part, int)
        or "[" not in part
        or (kind == "extra_forbidden" and i == len(detail["loc"]) - 1)
    )
    if kind == "missing":
        return Problem(loc, "is required")
    if kind == "extra_forbidden":
        return Problem(loc, _unknown_key_rule(loc), _shown(detail["input"]))
    return Problem(loc, _rule(detail), _shown(detail["input"]))


# pydantic's wording for its own checks, in the words of the other refusals. Checks orthgate
# defines itself raise ValueError with their rule, which is kept as it is.
_RULES = {
    "model_type": "must be an object (key: value pairs)",
    "model_attributes_type": "must be an object (key: value pairs)",
    "dict_type": "must be an object (key: value pairs)",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "set_type": "must be a list",
    # YAML gives a number for unquoted digits (0104 is octal: 68), a boolean for true.
    "string_type": "must be text: put it in quotes (YAML reads unquoted digits as a number)",
    "string_unicode": "must be a string",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_parsing_size": "is too large a number",
    "int_from_float": "must be a whole number, not a fraction",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "none_required": "must be empty (null)",
    "recursion_loop": "is nested too deeply",
    "enum": "must be one of the documented values",
}


def _rule(detail: ErrorDetails) -> str:
    kind = detail["type"]
    ctx: dict[str, Any] = dict(detail.get("ctx") or {})
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", detail["msg"])).removeprefix("Assertion failed, ")
    if kind in _RULES:
        return _RULES[kind]
    if kind in ("too_short", "too_long"):
        count = ctx.get("min_length" if kind == "too_short" else "max_length")
        bound = "at least" if kind == "too_short" else "at most"
        return f"must have {bound} {count} entr{'y' if count == 1 else 'ies'}"
    if kind == "string_pattern_mismatch":
        return f"must match the pattern {ctx.get('pattern')}"
    if kind in ("string_too_short", "string_too_long"):
        count = ctx.get("min_length" if kind == "string_too_short" else "max_length")
        bound = "at least" if kind == "string_too_short" else "at most"
        return f"must be {bound} {count} character{'' if count == 1 else 's'} long"
    rule = str(detail["msg"])
    if rule.startswith("Input should be"):
        rule = "must be" + rule[len("Input should be") :]
    return rule


# How much of a refused value a message shows: Problem prints at most 120 characters of it,
# and a value nested thousands deep or a number of thousands of digits (which Python will
# not even turn into text) must not stop the refusal from being written.
_SHOWN_DEPTH = 8
_SHOWN_ITEMS = 20
_SHOWN_INT_BITS = 200  # about 60 digits


def _shown(value: Any, depth: int = 0) -> Any:
    """``value`` cut down to what a refusal can print."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if value.bit_length() <= _SHOWN_INT_BITS:
            return value
        digits = math.floor(math.log10(abs(value))) + 1
        return f"a number of {digits} digits"
    if isinstance(value, str):
        return value if len(value) <= 1000 else value[:1000]
    if isinstance(value, dict | list | tuple) and depth >= _SHOWN_DEPTH:
        return "..."
    if isinstance(value, dict):
        items = list(value.items())[:_SHOWN_ITEMS]
        return {str(_shown(k, depth + 1)): _shown(v, depth + 1) for k, v in items}
    if isinstance(value, list | tuple):
        return [_shown(item, depth + 1) for item in value[:_SHOWN_ITEMS]]
    return value


def _unreadable(key: str, text: str | None, cause: BaseException | None) -> Problem:
    """A structured key whose value the SDK could not decode from the JSON the CLI passed."""
    model_field = _field_by_alias(Settings, key)
    annotation = _unwrap(model_field.annotation) if model_field else None
    is_list = typing.get_origin(annotation) is list
    shape = "a list" if is_list else "an object (key: value pairs)"
    if isinstance(cause, RecursionError):
        rule = f"is nested too deeply to be read; must be {shape}"
    elif isinstance(cause, json.JSONDecodeError):
        rule = f"is not a valid {'list' if is_list else 'object'}: must be {shape}"
    else:  # e.g. a number of more than 4300 digits
        rule = f"holds a value that cannot be read (a number far too long?); must be {shape}"
    return Problem((key,), rule, _shown(text))


def _unknown_key_rule(loc: Loc) -> str:
    allowed = _allowed_keys(loc[:-1])
    rule = "is not a known key"
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    if close:
        rule += f"; did you mean {close[0]}?"
    if allowed:
        rule += f" (known here: {', '.join(allowed)})"
    return rule


def _allowed_keys(loc: Loc) -> list[str]:
    """The keys the object at ``loc`` accepts, found by walking the model's annotations."""
    current: Any = Settings
    for part in loc:
        if isinstance(part, int):
            args = typing.get_args(_unwrap(current))
            current = args[0] if args else None
        else:
            model_field = _field_by_alias(current, part) if _is_model(current) else None
            current = model_field.annotation if model_field else None
        current = _unwrap(current)
    if not _is_model(current):
        return []
    return [field.alias or name for name, field in current.model_fields.items()]


def _field_by_alias(model: type[BaseModel], alias: str):  # noqa: ANN202 - pydantic FieldInfo
    for name, model_field in model.model_fields.items():
        if (model_field.alias or name) == alias:
            return model_field
    return None


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``X | None`` down to the type that holds the structure."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, type(int | None)):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = members[0]
        else:
            return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)
