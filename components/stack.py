"""The composition: validated settings in, components declared, stack outputs out.

``__main__.py`` calls ``program()``; the Automation API can pass ``program`` as an inline
program and get the very same stack.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.aws_context import lookup_aws_context, lookup_zone_names
from components.config import Settings, load_settings
from components.naming import Naming
from components.network import SecureNetwork, SecureNetworkArgs


def build(settings: Settings) -> dict[str, Any]:
    """Declare every component the settings ask for; return the stack outputs."""
    context = lookup_aws_context()
    zone_names = lookup_zone_names(settings.network.availability_zones)
    naming = Naming(stack=pulumi.get_stack(), environment=settings.environment)

    network = SecureNetwork(
        "network",
        SecureNetworkArgs(
            settings=settings.network,
            zone_names=zone_names,
            context=context,
            naming=naming,
            protect=settings.is_production,
        ),
    )

    return {
        "environment": settings.environment,
        "region": context.region,
        "vpcId": network.vpc_id,
        "vpcCidr": network.vpc_cidr,
        "availabilityZones": network.availability_zones,
        "publicSubnetIds": network.public_subnet_ids,
        "privateSubnetIds": network.private_subnet_ids,
        "privateRouteTableIds": network.private_route_table_ids,
        "privatePathCidrs": network.private_path_cidrs,
        "natGatewayPublicIps": network.nat_gateway_public_ips,
        "flowLogGroupName": network.flow_log_group_name,
        "siteToSiteVpns": network.site_to_site_vpns,
        "siteToSiteVpnSecrets": network.site_to_site_vpn_secrets,
    }


def program() -> None:
    """The Pulumi program: validate the whole configuration first, then declare."""
    settings = load_settings()
    for name, value in build(settings).items():
        pulumi.export(name, value)
