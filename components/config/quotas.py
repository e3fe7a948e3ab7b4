"""``orthgate:quotas``: the AWS account's quotas where they differ from AWS's defaults.

The model refuses a stack that would exceed a quota before anything is deployed; an account
that had a quota raised says so here, and the model then counts against the raised value.
"""

from __future__ import annotations

from typing import Annotated

from components.config.base import Section
from components.config.types import Number, int_range

# Amazon VPC quotas, "Inbound or outbound rules per security group": 60 by default,
# adjustable; the product of it and "Security groups per network interface" (5) may not
# pass 1,000 (Amazon VPC User Guide, "Amazon VPC quotas").
DEFAULT_RULES_PER_SECURITY_GROUP = 60
MAX_RULES_PER_SECURITY_GROUP = 1000


class QuotaSettings(Section):
    inbound_rules_per_security_group: Annotated[
        Number,
        int_range(
            DEFAULT_RULES_PER_SECURITY_GROUP,
            MAX_RULES_PER_SECURITY_GROUP,
            "the account's quota 'Inbound or outbound rules per security group'",
        ),
    ] = DEFAULT_RULES_PER_SECURITY_GROUP
