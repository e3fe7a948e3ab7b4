"""``orthgate:alarms``: who hears about what an operator must act on."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated

from pydantic import AfterValidator, Field

from orthgate.components.config.base import Section
from orthgate.components.config.errors import Loc, Problem, duplicates
from orthgate.components.config.types import SchemaHint

# Deliberately plain: SNS only needs an address its mail system accepts, and a typo is
# caught by the subscription confirmation mail that never arrives.
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


def _check_email(value: str) -> str:
    if len(value) > 254 or not _EMAIL.fullmatch(value):
        raise ValueError("must be an e-mail address, e.g. pacs-oncall@hospital.example")
    return value


Email = Annotated[
    str,
    Field(strict=True),
    AfterValidator(_check_email),
    SchemaHint(pattern=_EMAIL.pattern, maxLength=254),
]


class AlarmSettings(Section):
    """Who hears about what an operator must act on.

    The alarms (always declared; about $0.10 each a month): a host failing a load balancer's
    health check, fewer healthy hosts than the fleet's minimum, a single host failing its EC2
    status checks, a site-to-site VPN with one or both tunnels down, the index database short
    of storage or busy, and a host disk over 80 % full."""

    emails: list[Email] = []
    """E-mail addresses, unique; each gets a confirmation mail from AWS SNS and, once it is
    confirmed, every alarm and every return to OK."""

    def problems(self, at: Loc) -> Iterator[Problem]:
        yield from duplicates((*at, "emails"), [e.lower() for e in self.emails])
