"""Which way packets from a source range arrive at an endpoint (and come back): a private path
(a site-to-site VPN, Direct Connect), inside the VPC, the Internet, or none."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Network

from orthgate.components.address_ranges import NOT_INTERNET_ROUTABLE
from orthgate.components.config import Settings
from orthgate.exposure.declared import (
    CUSTOMER_GATEWAY,
    DX_ASSOCIATION,
    VPN_CONNECTION,
    Declarations,
    Endpoint,
)
from orthgate.exposure.row import DICOM_PLAIN, DICOM_TLS, INTERNET


class Paths:
    """The private paths the settings mean and the program declared, and the VPC."""

    def __init__(self, declared: Declarations, settings: Settings) -> None:
        self.d = declared
        network = settings.network
        self.vpc = IPv4Network(str(network.vpc_cidr))
        evaluation = declared.evaluation
        # Which private path an on-premises range arrives by (Settings: its meaning) and
        # whether the program declared that path (a VPN connection, a DX association).
        connected = {c.inputs.get("customerGatewayId") for c in evaluation.of_type(VPN_CONNECTION)}
        gateway_ids = {
            c.inputs.get("ipAddress"): c.id for c in evaluation.of_type(CUSTOMER_GATEWAY)
        }
        self.on_prem: list[tuple[IPv4Network, str, bool]] = []
        for vpn in network.site_to_site_vpns:
            ip = str(vpn.customer_gateway_ip)
            live = gateway_ids.get(ip) in connected
            for cidr in vpn.on_prem_cidrs:
                self.on_prem.append((IPv4Network(str(cidr)), f"site-to-site VPN {vpn.name}", live))
        dx_live = bool(evaluation.of_type(DX_ASSOCIATION))
        for cidr in network.direct_connect_on_prem_cidrs:
            self.on_prem.append((IPv4Network(str(cidr)), "Direct Connect", dx_live))
        self.proxy_site = {str(c): p.name for p in settings.dicom_proxies for c in p.source_cidrs}

    def of(
        self, cidr: IPv4Network, endpoint: Endpoint, service: str
    ) -> Iterator[tuple[str, IPv4Network]]:
        """Each way packets from ``cidr`` can arrive at ``endpoint`` (and come back)."""
        found = False
        for on_prem, path, live in self.on_prem:
            if not cidr.overlaps(on_prem):
                continue
            found = True
            part = cidr if cidr.subnet_of(on_prem) else on_prem
            back = self.d.routes_to(endpoint.subnets, str(on_prem), self.d.vgws)
            if live and back:
                yield path, part
            else:
                yield f"unreachable ({path}: no route back from {endpoint.label})", part
        if cidr.overlaps(self.vpc):
            found = True
            yield "inside the VPC", cidr if cidr.subnet_of(self.vpc) else self.vpc
        routable = not any(cidr.subnet_of(n) for n in NOT_INTERNET_ROUTABLE)
        if routable and not found:
            if endpoint.public:
                yield self._internet(str(cidr), service), cidr
            else:
                yield f"unreachable ({endpoint.label} has no public address)", cidr
        elif not found:
            yield "unreachable (a range the Internet does not route)", cidr

    def _internet(self, cidr: str, service: str) -> str:
        # Never reached while plaintext sources are the private paths (the ingress rules'
        # ``expected``), but a change there must not show plaintext from the Internet as TLS.
        if service == DICOM_PLAIN:
            return f"{INTERNET} (plaintext)"
        if service == DICOM_TLS and cidr in self.proxy_site:
            return f"{INTERNET} (DICOM proxy {self.proxy_site[cidr]})"
        return f"{INTERNET} (TLS)"
