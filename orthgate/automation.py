"""orthgate stacks driven through the Pulumi Automation API.

``open_stack("prod")`` gives a stack of the project directory itself (a local-program
workspace): the Pulumi CLI runs ``__main__.py`` there and reads ``stacks/Pulumi.prod.yaml``
through ``stackConfigDir``, exactly as ``pulumi up`` in that directory would; nothing is
copied. Before the CLI is started, the stack file is validated offline (the refusals
``pulumi up`` would print, without its minutes of plugin start-up), and what a cloud
operation needs is checked: the CLI itself, a backend, a secrets passphrase.

Tools that run their own inline program use ``inline_program()``: the exact program and
the configuration of a stack file, as the CLI would hand it over.

Note: the SDK's ``LocalWorkspace.stack_settings()`` ignores ``stackConfigDir``; nothing here
uses it. Stack files are read with ``orthgate.stack_file`` (the CLI's own reading).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from orthgate.components.config import Settings
from orthgate.errors import SetupError
from orthgate.policy_config import policy_pack_config
from orthgate.project import Project, project_at, stack_file_for
from orthgate.stack_file import load_go_yaml
from orthgate.validation import read_config, validate_config

__all__ = [
    "DEFAULT_BACKEND_URL",
    "InlineProgram",
    "OrthgateStack",
    "check_passphrase",
    "explain",
    "inline_program",
    "open_stack",
    "pulumi_command",
]

# Where state lives when the operator has not chosen: the same default as `make up`, so the
# command, the Makefile and the API see one and the same stacks.
DEFAULT_BACKEND_URL = "file://~"
# The CrossGuard pack every preview and up runs under (pulumi preview --policy-pack).
POLICY_PACK_DIR = "policy"
PULUMI_INSTALL_HINT = (
    "install the Pulumi CLI (https://www.pulumi.com/docs/iac/download-install/, e.g. "
    "`curl -fsSL https://get.pulumi.com | sh`), then open a new shell or add "
    "~/.pulumi/bin to PATH; or give its folder with --pulumi-root (pulumi_root= from "
    "Python)"
)
PASSPHRASE_VARIABLES = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE")
# Backends whose default secrets provider is the service's own: no passphrase needed.
_SERVICE_BACKEND = re.compile(r"^https?://")

OnEvent = Callable[[auto.EngineEvent], None]
OnOutput = Callable[[str], None]


@dataclass(frozen=True)
class InlineProgram:
    """What a tool needs to run orthgate as its own inline program."""

    project_name: str
    program: Callable[[], None]
    # The stack file's config as the CLI hands it to a program (objects as JSON text), for
    # ``Stack.set_all_config``.
    config: dict[str, auto.ConfigValue]
    settings: Settings


def inline_program(stack_or_file: str, project: Project | None = None) -> InlineProgram:
    """The orthgate program and the validated configuration of a stack file.

    >>> inline = inline_program("dev")
    >>> stack = auto.create_or_select_stack("dev", project_name=inline.project_name,
    ...                                     program=inline.program)
    >>> stack.set_all_config(inline.config)
    """
    from orthgate.components.stack import program

    _, path = stack_file_for(stack_or_file, project)
    config = read_config(path)
    settings = validate_config(config)
    return InlineProgram(
        project_name="orthgate",
        program=program,
        config={key: auto.ConfigValue(_as_cli_text(value)) for key, value in config.items()},
        settings=settings,
    )


def _as_cli_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@dataclass
class OrthgateStack:
    """One stack of the project, driven through the Pulumi CLI.

    Every operation streams the engine's events to ``on_event`` and the CLI's text to
    ``on_output`` when given, and raises ``SetupError`` with what to do when the CLI stops
    for a missing passphrase, backend login or cloud credentials.
    """

    name: str
    project: Project
    stack_file: Path
    settings: Settings
    stack: auto.Stack
    env_vars: dict[str, str] = field(default_factory=dict)

    def preview(
        self,
        on_event: OnEvent | None = None,
        on_output: OnOutput | None = None,
        *,
        guardrails: bool = True,
        **options: Any,
    ) -> auto.PreviewResult:
        """`pulumi preview`; with ``guardrails``, under the project's CrossGuard pack."""
        with self._guardrails(guardrails) as packs:
            return self._run(self.stack.preview, on_event, on_output, diff=True, **packs, **options)

    def up(
        self,
        on_event: OnEvent | None = None,
        on_output: OnOutput | None = None,
        *,
        guardrails: bool = True,
        **options: Any,
    ) -> auto.UpResult:
        """`pulumi up`; with ``guardrails``, a mandatory policy violation stops it."""
        with self._guardrails(guardrails) as packs:
            return self._run(self.stack.up, on_event, on_output, **packs, **options)

    @contextmanager
    def _guardrails(self, enabled: bool) -> Iterator[dict[str, list[str]]]:
        """The `policy_packs` options: the project's pack (policy/) with this stack's
        configuration for it, written to a file the CLI reads and removed afterwards."""
        pack = self.project.root / POLICY_PACK_DIR
        if not enabled or not (pack / "PulumiPolicy.yaml").is_file():
            yield {}
            return
        with tempfile.TemporaryDirectory(prefix="orthgate-policy-") as folder:
            config = Path(folder) / f"policy-config.{self.name}.json"
            config.write_text(json.dumps(policy_pack_config(self.settings), indent=2))
            yield {"policy_packs": [str(pack)], "policy_pack_configs": [str(config)]}

    def refresh(
        self, on_event: OnEvent | None = None, on_output: OnOutput | None = None, **options: Any
    ) -> auto.RefreshResult:
        return self._run(self.stack.refresh, on_event, on_output, **options)

    def destroy(
        self, on_event: OnEvent | None = None, on_output: OnOutput | None = None, **options: Any
    ) -> auto.DestroyResult:
        return self._run(self.stack.destroy, on_event, on_output, **options)

    def outputs(self, *, show_secrets: bool = False) -> dict[str, Any]:
        """The stack outputs; secret ones as ``"[secret]"`` unless ``show_secrets``."""
        try:
            values = self.stack.outputs()
        except auto.CommandError as error:
            raise explain(error) from error
        return {
            key: (out.value if show_secrets or not out.secret else "[secret]")
            for key, out in values.items()
        }

    def _run(
        self,
        operation: Callable[..., Any],
        on_event: OnEvent | None,
        on_output: OnOutput | None,
        **options: Any,
    ) -> Any:
        try:
            return operation(on_event=on_event, on_output=on_output, color="never", **options)
        except auto.CommandError as error:
            raise explain(error) from error


def open_stack(
    stack: str,
    *,
    project_dir: Path | None = None,
    create: bool = True,
    backend_url: str | None = None,
    pulumi_root: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> OrthgateStack:
    """Open (or create, the first time) the stack ``stack`` of the project directory.

    ``backend_url`` defaults to ``$PULUMI_BACKEND_URL``, else ``file://~`` (as ``make up``).
    ``env`` adds variables for the CLI (e.g. ``PULUMI_CONFIG_PASSPHRASE_FILE``).
    """
    project = project_at(project_dir)
    name, path = stack_file_for(stack, project)
    if path.parent.resolve() != project.stack_config_dir:
        raise SetupError(
            f"{path} is not one of the project's stack files ({project.stack_config_dir}); "
            "the Pulumi CLI only reads those"
        )
    settings = validate_config(read_config(path))
    environment = dict(env or {})
    environment["PULUMI_BACKEND_URL"] = (
        backend_url
        or environment.get("PULUMI_BACKEND_URL")
        or os.environ.get("PULUMI_BACKEND_URL")
        or DEFAULT_BACKEND_URL
    )
    environment.setdefault("PULUMI_SKIP_UPDATE_CHECK", "true")
    command = pulumi_command(pulumi_root)
    check_passphrase(path, environment["PULUMI_BACKEND_URL"], {**os.environ, **environment})
    options = auto.LocalWorkspaceOptions(
        work_dir=str(project.root), env_vars=environment, pulumi_command=command
    )
    opener = auto.create_or_select_stack if create else auto.select_stack
    try:
        handle = opener(stack_name=name, work_dir=str(project.root), opts=options)
    except auto.CommandError as error:
        raise explain(error) from error
    return OrthgateStack(name, project, path, settings, handle, environment)


def pulumi_command(pulumi_root: Path | None = None) -> auto.PulumiCommand:
    """The CLI the Automation API will run; ``SetupError`` saying how to install it."""
    executable = (
        str(pulumi_root / "bin" / "pulumi") if pulumi_root is not None else shutil.which("pulumi")
    )
    if executable is None or not os.access(executable, os.X_OK):
        where = f"at {executable}" if pulumi_root is not None else "on PATH"
        raise SetupError(f"the Pulumi CLI is not installed {where}: {PULUMI_INSTALL_HINT}")
    root = Path(executable).resolve().parent.parent
    try:
        return auto.PulumiCommand(root=str(root))
    except (OSError, auto.InvalidVersionError) as error:
        raise SetupError(f"the Pulumi CLI at {executable} cannot be used: {error}") from error


def check_passphrase(stack_file: Path, backend_url: str, env: Mapping[str, str]) -> None:
    """Refuse early when the stack's secrets need a passphrase nobody gave.

    A self-managed backend (file, s3, azblob, gs) encrypts secrets with a passphrase unless
    the stack file names another ``secretsprovider``; the CLI would stop half-way asking for
    it on a terminal it does not have.
    """
    if _SERVICE_BACKEND.match(backend_url):
        return
    document = load_go_yaml(stack_file.read_text(encoding="utf-8-sig")) or {}
    provider = document.get("secretsprovider") if isinstance(document, dict) else None
    if provider and provider != "passphrase":
        return
    if any(env.get(variable) for variable in PASSPHRASE_VARIABLES):
        passphrase_file = env.get("PULUMI_CONFIG_PASSPHRASE_FILE")
        given_inline = bool(env.get("PULUMI_CONFIG_PASSPHRASE"))
        if (
            passphrase_file
            and not given_inline
            and not Path(passphrase_file).expanduser().is_file()
        ):
            raise SetupError(
                f"PULUMI_CONFIG_PASSPHRASE_FILE names {passphrase_file}, which is not a file"
            )
        return
    raise SetupError(
        f"the stack's secrets (state in {backend_url}) are encrypted with a passphrase: set "
        "PULUMI_CONFIG_PASSPHRASE_FILE to a file holding it (or PULUMI_CONFIG_PASSPHRASE). "
        "The same passphrase decrypts the stack's keys and passwords later: keep it in your "
        "password manager"
    )


# What the CLI prints when a cloud operation cannot start, and what to tell the operator.
_EXPLANATIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"passphrase must be set|incorrect passphrase|PULUMI_CONFIG_PASSPHRASE", re.I),
        "the secrets passphrase is missing or wrong: set PULUMI_CONFIG_PASSPHRASE_FILE (or "
        "PULUMI_CONFIG_PASSPHRASE) to the passphrase this stack was created with",
    ),
    (
        re.compile(r"PULUMI_ACCESS_TOKEN must be set|pulumi login", re.I),
        "no Pulumi backend is logged in: set PULUMI_BACKEND_URL (orthgate's default is "
        "file://~, state on this machine) or run `pulumi login`",
    ),
    (
        re.compile(
            r"no valid credential sources|NoCredentialProviders|failed to refresh cached "
            r"credentials|unable to validate AWS credentials|ExpiredToken|InvalidClientTokenId",
            re.I,
        ),
        "AWS credentials are missing or expired: set AWS_PROFILE (after `aws sso login`) "
        "or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY for the account of this stack",
    ),
    (
        re.compile(r"no stack named|stack .* not found", re.I),
        "the stack does not exist in this backend yet: open it with create=True "
        "(`orthgate up` creates it), or check PULUMI_BACKEND_URL",
    ),
)


def explain(error: auto.CommandError) -> Exception:
    """A ``SetupError`` for the known ways a command cannot start; else the error itself."""
    text = str(error)
    for pattern, advice in _EXPLANATIONS:
        if pattern.search(text):
            return SetupError(f"{advice}\n\nThe Pulumi CLI said:\n{_stderr_of(text)}")
    return error


def _stderr_of(text: str) -> str:
    # CommandError's text is "code: ...\n stdout: ...\n stderr: ..."; stderr is the reason.
    _, _, stderr = text.partition("stderr:")
    return (stderr or text).strip()[-2000:]
