"""Reusable value types for the stack configuration.

Each type is an ``Annotated`` pydantic type whose validator raises ``ValueError`` with
a rule an operator can act on; the loader turns it into a refusal naming the key path.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import annotated_types
from pydantic import AfterValidator, BeforeValidator, Field
from pydantic.json_schema import JsonSchemaValue

from orthgate.components.address_ranges import NOT_INTERNET_ROUTABLE

_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_ASCII_DIGITS = re.compile(r"[0-9]+")
# A last label that resolvers and URL parsers read as a number (WHATWG URL standard, "ends
# in a number checker": all decimal digits, or 0x and hex digits): 0xa9.0xfe.0xa9.0xfe and
# 127.0x1 are addresses to getaddrinfo, not names.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")


def _clipped(text: str, keep: int = 20) -> str:
    """``text`` for a message, cut short when long."""
    return text if len(text) <= keep else text[:keep] + "..."


def parse_ipv4_cidr(value: Any) -> ipaddress.IPv4Network:
    """Parse ``a.b.c.d/nn`` strictly: an explicit prefix and no host bits set."""
    if not isinstance(value, str):
        raise ValueError("must be an IPv4 CIDR written as a string, like 10.20.0.0/16")
    text = value.strip()
    address, slash, prefix = text.partition("/")
    # ASCII digits only: str.isdigit() also holds for '²' or Arabic-Indic digits.
    if not slash or not _ASCII_DIGITS.fullmatch(prefix):
        raise ValueError("must be an IPv4 CIDR with an explicit prefix, like 10.20.0.0/16")
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        raise ValueError(
            f"'{_clipped(address)}' is not an IPv4 address (IPv4 CIDR expected)"
        ) from None
    if len(prefix) > 2 or int(prefix) > 32:
        raise ValueError(
            f"the prefix /{_clipped(prefix)} is out of range: an IPv4 prefix is /0 to /32"
        )
    try:
        return ipaddress.IPv4Network(text)
    except ValueError:
        network = ipaddress.IPv4Network(text, strict=False)
        raise ValueError(
            f"host bits are set: the network address for this prefix is {network}"
        ) from None


def parse_public_ipv4(value: Any) -> ipaddress.IPv4Address:
    if not isinstance(value, str):
        raise ValueError("must be an IPv4 address written as a string, like 203.0.113.10")
    try:
        address = ipaddress.IPv4Address(value.strip())
    except ValueError:
        raise ValueError("must be an IPv4 address, like 203.0.113.10") from None
    for network in NOT_INTERNET_ROUTABLE:
        if address in network:
            raise ValueError(
                f"must be a public IPv4 address reachable from the Internet; {address} is in "
                f"{network}, which is not"
            )
    return address


def check_domain_name(value: str) -> str:
    """A fully qualified, lower-case DNS name of at least two labels, and a name: not an
    IPv4 address written in dotted form."""
    labels = value.split(".")
    if len(value) > 253 or len(labels) < 2 or not all(_DNS_LABEL.fullmatch(x) for x in labels):
        raise ValueError("must be a fully qualified lower-case DNS name, e.g. pacs.example.org")
    # A top-level domain is never all-numeric (RFC 1123 section 2.1, RFC 3696 section 2):
    # 169.254.169.254 or 127.0.0.1 are addresses, and clients would treat them so.
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        raise ValueError(
            "must be a DNS name, not an IP address: its last label (the top-level domain) "
            "reads as a number (all digits, or 0x and hex digits), which resolvers take for "
            "an address (RFC 1123, RFC 3696); e.g. pacs.example.org"
        )
    return value


def check_dns_label(value: str) -> str:
    if not _DNS_LABEL.fullmatch(value):
        raise ValueError(
            "must be a DNS label: 1 to 63 lower-case letters, digits or hyphens, "
            "starting and ending with a letter or digit"
        )
    return value


class SchemaHint:
    """Annotation metadata that only adds JSON Schema keywords (``orthgate schema``): what a
    validator of the same ``Annotated`` type checks, for editors. It never validates."""

    def __init__(self, **keywords: Any) -> None:
        self.keywords = keywords
        self._rewrite: Callable[[JsonSchemaValue], JsonSchemaValue] | None = None

    @classmethod
    def rewrite(cls, function: Callable[[JsonSchemaValue], JsonSchemaValue]) -> SchemaHint:
        """A hint that replaces the generated schema with ``function(schema)``."""
        hint = cls()
        hint._rewrite = function
        return hint

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema.update(self.keywords)
        return self._rewrite(schema) if self._rewrite else schema


class _Checked(annotated_types.GroupedMetadata):
    """A validator and the schema keywords that say the same (pydantic expands both)."""

    def __init__(self, validator: AfterValidator, hint: SchemaHint) -> None:
        self.validator, self.hint = validator, hint

    def __iter__(self) -> Iterator[object]:
        yield self.validator
        yield self.hint


def int_range(low: int, high: int, what: str) -> annotated_types.GroupedMetadata:
    """An inclusive integer range with a message that names what the number is."""

    def check(value: int) -> int:
        if not low <= value <= high:
            raise ValueError(f"must be {what} from {low} to {high}")
        return value

    return _Checked(AfterValidator(check), SchemaHint(minimum=low, maximum=high))


def one_of(allowed: tuple[int, ...], what: str) -> annotated_types.GroupedMetadata:
    def check(value: int) -> int:
        if value not in allowed:
            choices = ", ".join(str(a) for a in allowed[:-1]) + f" or {allowed[-1]}"
            raise ValueError(f"must be {what}: {choices}")
        return value

    return _Checked(AfterValidator(check), SchemaHint(enum=list(allowed)))


def _no_bools(value: Any) -> Any:
    # pydantic would read true as 1: a boolean where a number belongs is a typo.
    if isinstance(value, bool):
        raise ValueError("must be a number, not true/false")
    return value


# Words YAML 1.1 reads as booleans. Pulumi reads stack files with Go's yaml.v3, to which only
# true/false (also True/TRUE, False/FALSE) are booleans: `enabled: NO` or `on` reaches the
# program as the string "NO" or "on", which pydantic would quietly turn into a boolean.
_YAML11_BOOLEAN_WORDS = frozenset(
    f(word)
    for word in ("y", "yes", "n", "no", "on", "off", "true", "false")
    for f in (str.lower, str.upper, str.capitalize)
)


def _only_true_false(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    # What `pulumi config set` stores when told --type string: the meaning is unambiguous.
    if value in ("true", "false"):
        return value == "true"
    if isinstance(value, str) and value in _YAML11_BOOLEAN_WORDS:
        raise ValueError(
            f"must be true or false; '{value}' is a string to Pulumi (its YAML reader takes "
            "only true and false as booleans, not yes/no/on/off): write true or false, "
            "unquoted"
        )
    raise ValueError("must be true or false, unquoted")


# Schema patterns are the shape only (the parsers strip surrounding space): the parsers decide.
IPV4_ADDRESS_PATTERN = r"^\s*[0-9]{1,3}(\.[0-9]{1,3}){3}\s*$"
IPV4_CIDR_PATTERN = r"^\s*[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}\s*$"
_DOMAIN_PATTERN = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"

Ipv4Cidr = Annotated[
    ipaddress.IPv4Network,
    BeforeValidator(parse_ipv4_cidr),
    SchemaHint(pattern=IPV4_CIDR_PATTERN),
]
PublicIpv4 = Annotated[
    ipaddress.IPv4Address,
    BeforeValidator(parse_public_ipv4),
    SchemaHint(pattern=IPV4_ADDRESS_PATTERN),
]
DnsLabel = Annotated[
    str,
    Field(strict=True),
    AfterValidator(check_dns_label),
    SchemaHint(pattern=_DNS_LABEL.pattern),
]
DomainName = Annotated[
    str,
    Field(strict=True),
    AfterValidator(check_domain_name),
    SchemaHint(pattern=_DOMAIN_PATTERN, maxLength=253),
]
Number = Annotated[int, BeforeValidator(_no_bools)]
# A boolean key: only true or false, never 'NO', 'yes', 'on', 1 or 0 (see above).
StrictBool = Annotated[bool, BeforeValidator(_only_true_false)]

# The retention periods CloudWatch Logs accepts (PutRetentionPolicy), in days.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
LogRetentionDays = Annotated[
    Number, one_of(LOG_RETENTION_DAYS, "a retention CloudWatch Logs accepts, in days")
]
