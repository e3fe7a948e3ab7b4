"""``orthgate:quotas``: the AWS account's quotas where they differ from AWS's defaults.

The model refuses a stack that would exceed a quota before anything is deployed; an account
that had a quota raised says so here, and the model then counts against the raised value.
"""

from __future__ import annotations

from typing import Annotated

from orthgate.components.config.base import Section
from orthgate.components.config.types import Number, int_range

# Amazon VPC quotas, "Inbound or outbound rules per security group": 60 by default,
# adjustable; the product of it and "Security groups per network interface" (5) may not
# pass 1,000 (Amazon VPC User Guide, "Amazon VPC quotas").
DEFAULT_RULES_PER_SECURITY_GROUP = 60
MAX_RULES_PER_SECURITY_GROUP = 1000

# AWS Client VPN quotas (Administrator Guide, "AWS Client VPN quotas"), adjustable:
# "Authorization rules per Client VPN endpoint" 200, "Routes per Client VPN target network
# association" 100. AWS publishes no ceiling for a raise; orthgate accepts ten times the
# default, far past what a handful of workstations needs.
# Amazon VPC quotas, "Routes per route table (non-propagated routes)": 50 by default,
# adjustable up to 1,000.
DEFAULT_ROUTES_PER_ROUTE_TABLE = 50
MAX_ROUTES_PER_ROUTE_TABLE = 1000
DEFAULT_CLIENT_VPN_AUTHORIZATION_RULES = 200
DEFAULT_CLIENT_VPN_ROUTES_PER_ASSOCIATION = 100


class QuotaSettings(Section):
    """The AWS account's quotas where AWS has raised them: the model refuses a stack that
    would pass a quota before anything is deployed, and counts against these. Set a key only
    once AWS has raised that quota."""

    inbound_rules_per_security_group: Annotated[
        Number,
        int_range(
            DEFAULT_RULES_PER_SECURITY_GROUP,
            MAX_RULES_PER_SECURITY_GROUP,
            "the account's quota 'Inbound or outbound rules per security group'",
        ),
    ] = DEFAULT_RULES_PER_SECURITY_GROUP
    """The account's "Inbound or outbound rules per security group" (Amazon VPC quotas), 60
    to 1000."""
    client_vpn_authorization_rules: Annotated[
        Number,
        int_range(
            DEFAULT_CLIENT_VPN_AUTHORIZATION_RULES,
            10 * DEFAULT_CLIENT_VPN_AUTHORIZATION_RULES,
            "the account's quota 'Authorization rules per Client VPN endpoint'",
        ),
    ] = DEFAULT_CLIENT_VPN_AUTHORIZATION_RULES
    """The account's "Authorization rules per Client VPN endpoint", 200 to 2000."""
    client_vpn_routes_per_association: Annotated[
        Number,
        int_range(
            DEFAULT_CLIENT_VPN_ROUTES_PER_ASSOCIATION,
            10 * DEFAULT_CLIENT_VPN_ROUTES_PER_ASSOCIATION,
            "the account's quota 'Routes per Client VPN target network association'",
        ),
    ] = DEFAULT_CLIENT_VPN_ROUTES_PER_ASSOCIATION
    """The account's "Routes per Client VPN target network association", 100 to 1000."""
    routes_per_route_table: Annotated[
        Number,
        int_range(
            DEFAULT_ROUTES_PER_ROUTE_TABLE,
            MAX_ROUTES_PER_ROUTE_TABLE,
            "the account's quota 'Routes per route table'",
        ),
    ] = DEFAULT_ROUTES_PER_ROUTE_TABLE
    """The account's "Routes per route table" (non-propagated), 50 to 1000: every
    on-premises range is a static route in each route table."""
