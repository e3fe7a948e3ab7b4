"""Reusable value types for the stack configuration.

Each type is an ``Annotated`` pydantic type whose validator raises ``ValueError`` with
a rule an operator can act on; the loader turns it into a refusal naming the key path.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")

# Ranges that can never be an address seen on the Internet (a customer gateway, a site's
# egress address).
NOT_INTERNET_ROUTABLE = tuple(
    ipaddress.IPv4Network(cidr)
    for cidr in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT: IPsec peers must be reachable directly
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
)

RFC1918 = tuple(
    ipaddress.IPv4Network(cidr) for cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)


def parse_ipv4_cidr(value: Any) -> ipaddress.IPv4Network:
    """Parse ``a.b.c.d/nn`` strictly: an explicit prefix and no host bits set."""
    if not isinstance(value, str):
        raise ValueError("must be an IPv4 CIDR written as a string, like 10.20.0.0/16")
    text = value.strip()
    address, slash, prefix = text.partition("/")
    if not slash or not prefix.isdigit():
        raise ValueError("must be an IPv4 CIDR with an explicit prefix, like 10.20.0.0/16")
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        raise ValueError(f"{address!r} is not an IPv4 address (IPv4 CIDR expected)") from None
    if not 0 <= int(prefix) <= 32:
        raise ValueError(f"the prefix /{prefix} is out of range: an IPv4 prefix is /0 to /32")
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
    """A fully qualified, lower-case DNS name of at least two labels."""
    labels = value.split(".")
    if len(value) > 253 or len(labels) < 2 or not all(_DNS_LABEL.fullmatch(x) for x in labels):
        raise ValueError("must be a fully qualified lower-case DNS name, e.g. pacs.example.org")
    return value


def check_dns_label(value: str) -> str:
    if not _DNS_LABEL.fullmatch(value):
        raise ValueError(
            "must be a DNS label: 1 to 63 lower-case letters, digits or hyphens, "
            "starting and ending with a letter or digit"
        )
    return value


def int_range(low: int, high: int, what: str) -> AfterValidator:
    """An inclusive integer range with a message that names what the number is."""

    def check(value: int) -> int:
        if not low <= value <= high:
            raise ValueError(f"must be {what} from {low} to {high}")
        return value

    return AfterValidator(check)


def one_of(allowed: tuple[int, ...], what: str) -> AfterValidator:
    def check(value: int) -> int:
        if value not in allowed:
            choices = ", ".join(str(a) for a in allowed[:-1]) + f" or {allowed[-1]}"
            raise ValueError(f"must be {what}: {choices}")
        return value

    return AfterValidator(check)


def _no_bools(value: Any) -> Any:
    # pydantic would read true as 1: a boolean where a number belongs is a typo.
    if isinstance(value, bool):
        raise ValueError("must be a number, not true/false")
    return value


Ipv4Cidr = Annotated[ipaddress.IPv4Network, BeforeValidator(parse_ipv4_cidr)]
PublicIpv4 = Annotated[ipaddress.IPv4Address, BeforeValidator(parse_public_ipv4)]
DnsLabel = Annotated[str, Field(strict=True), AfterValidator(check_dns_label)]
DomainName = Annotated[str, Field(strict=True), AfterValidator(check_domain_name)]
Number = Annotated[int, BeforeValidator(_no_bools)]

# The retention periods CloudWatch Logs accepts (PutRetentionPolicy), in days.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
LogRetentionDays = Annotated[
    Number, one_of(LOG_RETENTION_DAYS, "a retention CloudWatch Logs accepts, in days")
]
