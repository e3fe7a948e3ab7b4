"""Building blocks: a resource policy from a check that yields its findings."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from orthgate_policy.values import UnknownValueError, plain

# A check reads the plain properties and yields one message per violation.
Check = Callable[[str, Mapping[str, Any], ResourceValidationArgs], Iterable[str]]
StackCheck = Callable[[StackValidationArgs], Iterable[tuple[str, str | None]]]


def resource_policy(
    name: str,
    description: str,
    types: Collection[str] | None,
    check: Check,
    *,
    remediation: str,
    enforcement: EnforcementLevel = EnforcementLevel.MANDATORY,
    config_schema: PolicyConfigSchema | None = None,
) -> ResourceValidationPolicy:
    """A policy that runs ``check`` on resources of ``types`` (None: every type) and
    reports what it yields."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if types is not None and args.resource_type not in types:
            return
        findings = check(args.resource_type, plain(args.props), args)
        _report(((message, None) for message in findings), report_violation)

    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=enforcement,
        config_schema=config_schema,
        remediation_steps=remediation,
    )


def stack_policy(
    name: str,
    description: str,
    check: StackCheck,
    *,
    remediation: str,
    enforcement: EnforcementLevel = EnforcementLevel.MANDATORY,
    config_schema: PolicyConfigSchema | None = None,
) -> StackValidationPolicy:
    """A policy over the whole stack; ``check`` yields (message, urn of the resource)."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        _report(check(args), report_violation)

    return StackValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=enforcement,
        config_schema=config_schema,
        remediation_steps=remediation,
    )


def _report(findings: Iterable[tuple[str, str | None]], report_violation: ReportViolation) -> None:
    """Report each finding. A value the policy cannot read is a finding too, not a crash
    of the whole preview: a crash would hide every other policy's findings, and a pass
    would hide this one. Unknown values go to the SDK, which reports "can't run during
    preview"."""
    try:
        for message, urn in findings:
            report_violation(message, urn)
    except UnknownValueError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as error:
        report_violation(
            f"could not be checked: {type(error).__name__}: {error}. Fix the value (or the "
            "pack's configuration for this policy); until then the policy cannot vouch for it",
            None,
        )
