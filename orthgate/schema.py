"""A JSON Schema (draft 7) for a whole ``stacks/Pulumi.<stack>.yaml``, generated from
the pydantic model so that the two cannot disagree about a key.

The schema says what a key's value looks like (types, enumerations, patterns, ranges,
unknown keys); rules between keys stay in the model (``orthgate validate``). It is meant to
accept everything the model accepts, so a few spellings the model reads are allowed too:

- ``config:`` keys are ``orthgate:<key>``; the Pulumi CLI also reads a bare ``<key>`` and
  ``orthgate:config:<key>`` as ``orthgate:<key>``, so both are accepted with the same schema
  (editors offer only the ``orthgate:`` form). Unknown ``orthgate:`` keys are refused, as the
  model refuses them; other namespaces' keys (``aws:``, ``pulumi:``, ...) may hold anything.
- Whole numbers may be quoted (``"2"``) and booleans be ``"true"``/``"false"``: what
  ``pulumi config set`` stores without ``--type``, and the model reads them as meant.
- A top-level object or list may be given as JSON text (``pulumi config set`` without
  ``--path``), which the schema does not look into; an optional one may be null (= unset).
- Secrets: no ``orthgate:`` key holds a secret, so ``{secure: ...}`` is refused there (the
  offline validation could not decrypt it either); other namespaces may use it.
"""

from __future__ import annotations

import copy
import inspect
import json
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from orthgate.components.config import Settings
from orthgate.components.config.base import DEFAULT_TEXT
from orthgate.components.config.errors import NAMESPACE

# Draft 7: the newest draft yaml-language-server (the editors' YAML support) declares it
# supports; keywords beyond it would be ignored there.
DRAFT = "http://json-schema.org/draft-07/schema#"
# Where the shipped schema lives in a project, and what the stack files' modelines name.
SCHEMA_FILE = Path("schema") / "orthgate-stack.schema.json"
MODELINE = "# yaml-language-server: $schema=../schema/orthgate-stack.schema.json"

AWS_REGION_DESCRIPTION = (
    "The AWS region to deploy into, e.g. `eu-central-1`. Unset: the region the AWS provider "
    "finds on its own (its environment variables or profile)."
)

# pydantic reads a whole number from text; this is the shape of what it reads (it decides).
_QUOTED_INTEGER = {
    "type": "string",
    "pattern": r"^\s*[+-]?[0-9][0-9_]*(\.0*)?\s*$",
    "description": "a whole number in quotes, read as the number (better written unquoted)",
}
_TEXT_BOOLEAN = {
    "enum": ["true", "false"],
    "description": "true or false in quotes, read as the boolean (better written unquoted)",
}
# Pulumi's stack file besides config: (sdk/go/common/workspace/project.go, ProjectStack, read
# 2026-12-02 from github.com/pulumi/pulumi). The CLI ignores keys it does not know.
_STACK_FILE_KEYS: dict[str, Any] = {
    "secretsprovider": {
        "type": "string",
        "description": "The stack's secrets provider (`passphrase`, `awskms://...`, ...).",
    },
    "encryptedkey": {
        "type": "string",
        "description": "The data key for secrets, encrypted by a cloud secrets provider.",
    },
    "encryptionsalt": {
        "type": "string",
        "description": "The passphrase secrets provider's salt: written by Pulumi, keep it.",
    },
    "environment": {
        "type": ["array", "object"],
        "description": "Pulumi ESC environments imported into the stack. orthgate keys set "
        "there are not seen by this schema nor by `orthgate validate`.",
    },
}


def stack_file_schema() -> dict[str, Any]:
    """The schema of a whole stack file; the same dictionary on every call."""
    generated = Settings.model_json_schema(by_alias=True, ref_template="#/definitions/{model}")
    # pydantic files the models under "$defs" whatever the refs point at.
    defs = {name: _shape(schema) for name, schema in generated.get("$defs", {}).items()}
    defs["quotedInteger"] = _QUOTED_INTEGER
    defs["textBoolean"] = _TEXT_BOOLEAN
    properties: dict[str, Any] = {}
    patterns: dict[str, Any] = {}
    required: list[dict[str, Any]] = []
    for name, field in Settings.model_fields.items():
        alias = field.alias or name
        schema = _shape(generated["properties"][alias])
        if _is_structured(field.annotation):
            schema = _top_level(schema, optional=not field.is_required())
        defs[f"config.{alias}"] = schema
        ref = {"$ref": f"#/definitions/config.{alias}"}
        properties[f"{NAMESPACE}:{alias}"] = ref
        patterns[f"^({NAMESPACE}:config:)?{alias}$"] = ref
        if field.is_required():
            spellings = (f"{NAMESPACE}:{alias}", alias, f"{NAMESPACE}:config:{alias}")
            required.append({"anyOf": [{"required": [key]} for key in spellings]})
    # The AWS provider checks its own keys; a region may even be a secret.
    properties["aws:region"] = {
        "anyOf": [{"type": "string"}, {"$ref": "#/definitions/secureValue"}],
        "description": AWS_REGION_DESCRIPTION,
    }
    defs["secureValue"] = {
        "type": "object",
        "properties": {"secure": {"type": "string"}},
        "required": ["secure"],
        "additionalProperties": False,
        "description": "a value encrypted by `pulumi config set --secret`",
    }
    # Any other namespace's key, as `ns:key` or `ns:config:key`; its provider checks it.
    patterns[f"^(?!{NAMESPACE}:)[^:]+:(config:)?[^:]+$"] = {}
    config = {
        "type": "object",
        "description": "The stack's configuration: `orthgate:*` keys (see the configuration "
        "reference in the README) and other providers' keys such as `aws:region`.",
        "properties": properties,
        "patternProperties": patterns,
        "additionalProperties": False,
        "allOf": required,
    }
    return {
        "$schema": DRAFT,
        "title": "orthgate stack file (stacks/Pulumi.<stack>.yaml)",
        "description": "Generated from orthgate's configuration model by `orthgate schema`; "
        "rules between keys are checked by `orthgate validate`.",
        "type": "object",
        "properties": {"config": config, **copy.deepcopy(_STACK_FILE_KEYS)},
        "required": ["config"],
        "definitions": dict(sorted(defs.items())),
    }


def schema_text() -> str:
    """The schema as the committed file holds it: sorted keys, two-space indent, newline."""
    return json.dumps(stack_file_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def prose(text: str) -> str:
    """A docstring as running text: lines joined, paragraphs kept, reST ``code`` as `code`."""
    paragraphs = inspect.cleandoc(text).replace("``", "`").split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs if p.strip())


def _shape(node: Any) -> Any:
    """pydantic's schema, cleaned for editors and widened to what the model reads."""
    if isinstance(node, list):
        return [_shape(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _shape(value) for key, value in node.items() if key != "title"}
    if "$ref" in node and len(node) > 1:
        # Draft 7 ignores every keyword beside $ref: keep the description, move the $ref.
        node = {**{k: v for k, v in node.items() if k != "$ref"}, "allOf": [{"$ref": node["$ref"]}]}
    if isinstance(node.get("description"), str):
        node["description"] = prose(node["description"])
    if DEFAULT_TEXT in node:
        text = node.pop(DEFAULT_TEXT)
        node.pop("default", None)
        node["description"] = f"{node.get('description', '')} Default: {text}.".strip()
    if isinstance(node.get("default"), dict):
        node["default"] = {}  # a section's defaults are its keys' own
    if node.get("type") == "integer":
        node = _widened(node, {"$ref": "#/definitions/quotedInteger"})
    elif node.get("type") == "boolean":
        node = _widened(node, {"$ref": "#/definitions/textBoolean"})
    if "anyOf" in node:  # flatten what _widened nested into a union (X | None)
        flat: list[Any] = []
        for member in node["anyOf"]:
            if set(member) == {"anyOf"}:
                flat.extend(member["anyOf"])
            else:
                flat.append(member)
        node["anyOf"] = flat
    return node


_ANNOTATIONS = ("default", "description", DEFAULT_TEXT)


def _widened(node: dict[str, Any], alternative: dict[str, Any]) -> dict[str, Any]:
    outer = {key: node[key] for key in _ANNOTATIONS if key in node}
    inner = {key: value for key, value in node.items() if key not in _ANNOTATIONS}
    return {**outer, "anyOf": [inner, alternative]}


def _top_level(schema: dict[str, Any], *, optional: bool) -> dict[str, Any]:
    """A top-level object or list: as YAML, as JSON text, or (when optional) null."""
    outer = {key: schema.pop(key) for key in ("default", "description") if key in schema}
    text = {
        "type": "string",
        "contentMediaType": "application/json",
        "contentSchema": copy.deepcopy(schema),
        "description": "the same value as JSON text (not checked by this schema)",
    }
    members = [schema, text]
    if optional:
        members.append({"type": "null", "description": "unset: the defaults"})
    return {**outer, "anyOf": members}


def _is_structured(annotation: Any) -> bool:
    """An object or a list: what the program reads with ``get_object``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return typing.get_origin(annotation) in (list, dict)
