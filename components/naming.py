"""Physical names and tags, so every AWS object says which stack owns it.

A Pulumi stack name is 1 to 100 characters of ``[A-Za-z0-9_.-]`` (the CLI refuses others);
AWS is stricter for some of the names orthgate derives from it. Every derived name keeps
the form it always had when that form is valid for its AWS type, so no existing stack is
renamed (a new name would replace the resource). Otherwise the stack part is sanitised for
that type and ends in ``-`` plus the first 6 hex digits of the SHA-256 of the raw stack
name: two stack names that sanitise alike (``Team.A``, ``Team_A``) still get different
names, and the same stack always gets the same one.

Names that need no care: log groups (``[.-_/#A-Za-z0-9]``, 512), Secrets Manager names
(``[A-Za-z0-9/_+=.@-]``, 512), CloudWatch namespaces (255) and tag values (256) take any
stack name as it is. Every other physical name (buckets, roles, groups, load balancers,
target groups, templates, topics, alarms) is Pulumi's auto-name of a fixed logical name.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

DIGEST_LENGTH = 6

# KMS CreateAlias: "alias/" then [a-zA-Z0-9/_-], at most 256 characters (KMS API Reference).
KMS_ALIAS_MAX_LENGTH = 256
_KMS_ALIAS_PART = re.compile(r"[A-Za-z0-9_-]+")

# RDS DB instance identifiers: lowercase letters, digits and hyphens, a letter first, no
# "--", no trailing hyphen, at most 63 characters (RDS User Guide, "Naming constraints").
# With ``identifier_prefix`` the provider appends a 26-character unique suffix (timestamp
# and counter: terraform-plugin-sdk id.UniqueIDSuffixLength), so a prefix has 37.
RDS_IDENTIFIER_MAX_LENGTH = 63
UNIQUE_SUFFIX_LENGTH = 26
RDS_PREFIX_MAX_LENGTH = RDS_IDENTIFIER_MAX_LENGTH - UNIQUE_SUFFIX_LENGTH
_RDS_PART = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")

# X.509 ub-common-name (RFC 5280, appendix A.1): a common name has at most 64 characters.
COMMON_NAME_MAX_LENGTH = 64


def stack_digest(stack: str) -> str:
    """The stable suffix that tells apart stack names sanitised to the same text."""
    return hashlib.sha256(stack.encode()).hexdigest()[:DIGEST_LENGTH]


def _shortened(text: str, budget: int, digest: str, *, strip: str = "") -> str:
    """``text`` cut to leave room for ``-<digest>`` within ``budget`` characters."""
    head = text[: max(0, budget - DIGEST_LENGTH - 1)].strip(strip)
    return f"{head}-{digest}" if head else digest


@dataclass(frozen=True)
class Naming:
    stack: str
    environment: str

    @property
    def prefix(self) -> str:
        """For tags and descriptions only: physical names use the methods below."""
        return f"orthgate-{self.stack}"

    @property
    def digest(self) -> str:
        return stack_digest(self.stack)

    @property
    def metrics_namespace(self) -> str:
        """Where the hosts publish their own metrics (disk use)."""
        return f"orthgate/{self.stack}"

    def log_group_prefix(self, area: str) -> str:
        return f"/orthgate/{self.stack}/{area}/"

    def secret_name_prefix(self, area: str, role: str) -> str:
        """A Secrets Manager name prefix; the provider appends 26 characters."""
        return f"orthgate/{self.stack}/{area}/{role}-"

    def kms_alias(self, area: str) -> str:
        """``alias/orthgate-<stack>-<area>``; a ``.`` in the stack name becomes ``-``."""
        budget = KMS_ALIAS_MAX_LENGTH - len(f"alias/orthgate--{area}")
        stack = self.stack
        if not (_KMS_ALIAS_PART.fullmatch(stack) and len(stack) <= budget):
            stack = _shortened(re.sub(r"[^A-Za-z0-9_-]", "-", stack), budget, self.digest)
        return f"alias/orthgate-{stack}-{area}"

    def rds_identifier_prefix(self, label: str) -> str:
        """``orthgate-<stack>-<label>-``, within RDS's rules once the suffix is appended."""
        if not _RDS_PART.fullmatch(label):
            raise ValueError(f"{label!r} is not a valid part of an RDS identifier")
        budget = RDS_PREFIX_MAX_LENGTH - len(f"orthgate--{label}-")
        stack = self.stack
        if not (_RDS_PART.fullmatch(stack) and len(stack) <= budget):
            slug = re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", stack.lower())).strip("-")
            stack = _shortened(slug, budget, self.digest, strip="-")
        return f"orthgate-{stack}-{label}-"

    def label(self, suffix: str = "", *, max_length: int) -> str:
        """``orthgate <stack> <suffix>`` for display fields, within ``max_length``."""
        tail = f" {suffix}" if suffix else ""
        budget = max_length - len(f"orthgate {tail}")
        stack = (
            self.stack if len(self.stack) <= budget else _shortened(self.stack, budget, self.digest)
        )
        return f"orthgate {stack}{tail}"

    def common_name(self, suffix: str) -> str:
        """A certificate subject's common name naming the stack (at most 64 characters)."""
        return self.label(suffix, max_length=COMMON_NAME_MAX_LENGTH)

    def tags(self, name: str) -> dict[str, str]:
        return {
            "Name": f"{self.prefix}-{name}",
            "orthgate:stack": self.stack,
            "orthgate:environment": self.environment,
            "managed-by": "pulumi-orthgate",
        }
