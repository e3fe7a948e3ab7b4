"""The exposure table of the offline plan: every port a source can reach, over which path,
protected by what, and which AE titles may store there.

Read off what the program declared (security group ingress rules, the load balancers and
their listeners, public addresses and the route tables of each endpoint's subnets, the
Client VPN endpoint, the VPN connections, and the sender maps and Orthanc configuration it
writes into the hosts' secrets), with the validated ``Settings`` only for what a source
means (which private path a range belongs to, which proxy site an address is). A rule this
module cannot explain is shown as a row with path ``unexplained``, never dropped.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Network, collapse_addresses
from typing import Any

from orthgate.components.address_ranges import NOT_INTERNET_ROUTABLE
from orthgate.components.config import Settings
from orthgate.components.config.orthanc import HTTPS_PORT, ORTHANC_DICOM_PORT
from orthgate.offline.evaluation import Declared, Evaluation

UNEXPLAINED = "unexplained"
DICOM_TLS = "DICOM TLS"
DICOM_PLAIN = "DICOM (plaintext)"
HTTPS = "HTTPS"
INTERNET = "Internet"

# What a customer gateway sends to the AWS tunnel endpoints: IKE on UDP 500, ESP (IP
# protocol 50), and UDP 4500 with NAT traversal (AWS Site-to-Site VPN User Guide, "Firewall
# rules for an AWS Site-to-Site VPN customer gateway device",
# https://docs.aws.amazon.com/vpn/latest/s2svpn/FirewallRules.html, read 2026-12-02).
_IPSEC = (
    (500, "udp", "IPsec (IKE)"),
    (4500, "udp", "IPsec (NAT traversal)"),
    (None, "esp", "IPsec (ESP)"),
)

_AUTH = {
    DICOM_TLS: "mutual TLS (unrevoked DICOM CA certificate); AE title bound to its subject",
    DICOM_PLAIN: "source address only; AE title bound to the source range",
    HTTPS: "TLS; Orthanc REST API login",
}


@dataclass(frozen=True)
class Exposure:
    """One way in: an endpoint's port, from these sources, over this path."""

    endpoint: str  # "Orthanc host", "public NLB", "Client VPN endpoint", ...
    port: int | None  # None: a protocol without ports (ESP)
    protocol: str  # tcp, udp, esp
    service: str
    path: str  # "Internet (TLS)", "site-to-site VPN <name>", "Direct Connect", ...
    sources: tuple[str, ...]  # CIDRs, or what a security group stands for
    ae_titles: tuple[str, ...] = ()  # who may store through this row; () for non-DICOM
    authentication: str = ""
    except_sources: tuple[str, ...] = ()  # parts of the sources that belong to other rows
    address: str = ""  # where senders connect, as far as the program decides it
    rules: tuple[str, ...] = ()  # the declared ingress rules this row accounts for
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in asdict(self).items()
        }

    @property
    def internet(self) -> bool:
        return self.path.startswith(INTERNET)


# --- what the program declared ------------------------------------------------------------


@dataclass
class _Endpoint:
    """Something security groups protect: a host, a load balancer, endpoints, a database."""

    kind: str  # host, hosts, nlb, vpce, rds
    label: str
    subnets: list[str]
    public: bool = False
    address: str = ""
    listeners: set[int] = field(default_factory=set)


class _Declared:
    """Indexes over one evaluation: ids, routes, endpoints by security group."""

    def __init__(self, evaluation: Evaluation) -> None:
        self.evaluation = evaluation
        res = evaluation.resources
        self.by_id = {r.id: r for r in res if r.id}
        self.subnet_cidr = {r.id: r.inputs["cidrBlock"] for r in evaluation.of_type(_SUBNET)}
        self.table_of = {
            r.inputs["subnetId"]: r.inputs["routeTableId"] for r in evaluation.of_type(_RTA)
        }
        self.routes: dict[str, dict[str, str]] = {}
        for route in evaluation.of_type(_ROUTE):
            target = route.inputs.get("gatewayId") or route.inputs.get("natGatewayId") or ""
            self.routes.setdefault(route.inputs["routeTableId"], {})[
                route.inputs.get("destinationCidrBlock", "")
            ] = target
        self.igws = {r.id for r in evaluation.of_type(_IGW)}
        self.vgws = {r.id for r in evaluation.of_type(_VGW)}
        self.endpoints = self._endpoints()
        vpn = evaluation.of_type(_CVPN_ENDPOINT)
        self.client_vpn = vpn[0] if vpn else None
        self.client_vpn_groups = (
            set(self.client_vpn.inputs.get("securityGroupIds", [])) if vpn else set()
        )
        self.client_vpn_subnets = [
            self.subnet_cidr.get(a.inputs["subnetId"], "")
            for a in evaluation.of_type(_CVPN_ASSOCIATION)
        ]
        self.client_vpn_targets = [
            IPv4Network(a.inputs["targetNetworkCidr"]) for a in evaluation.of_type(_CVPN_AUTH)
        ]

    def routes_to(self, subnets: list[str], destination: str, targets: set[str]) -> bool:
        """Every subnet's route table sends ``destination`` to one of ``targets``."""
        return bool(subnets) and all(
            self.routes.get(self.table_of.get(s, ""), {}).get(destination) in targets
            for s in subnets
        )

    def _endpoints(self) -> dict[str, list[_Endpoint]]:
        found: dict[str, list[_Endpoint]] = {}

        def add(groups: Iterable[str], endpoint: _Endpoint) -> None:
            for group in groups:
                found.setdefault(group, []).append(endpoint)

        ev = self.evaluation
        eip_instances = {a.inputs.get("instanceId") for a in ev.of_type(_EIP_ASSOCIATION)}
        for instance in ev.of_type(_INSTANCE):
            template = self._template(instance)
            public = instance.id in eip_instances or _public_interface(instance, template)
            subnets = [instance.inputs.get("subnetId", "")]
            add(
                _groups(instance) | _groups(template),
                _Endpoint(
                    "host",
                    "Orthanc host",
                    subnets,
                    public=public and self.routes_to(subnets, "0.0.0.0/0", self.igws),
                    address=", ".join(
                        (["Elastic IP"] if instance.id in eip_instances else [])
                        + [str(instance.inputs.get("privateIp", ""))]
                    ),
                ),
            )
        for group in ev.of_type(_ASG):
            template = self._template(group)
            subnets = list(group.inputs.get("vpcZoneIdentifiers", []))
            public = _public_interface(None, template)
            add(
                _groups(template),
                _Endpoint(
                    "hosts",
                    "Orthanc hosts",
                    subnets,
                    public=public and self.routes_to(subnets, "0.0.0.0/0", self.igws),
                    address="no fixed address (Auto Scaling group)",
                ),
            )
        for nlb in ev.of_type(_LB):
            mappings = nlb.inputs.get("subnetMappings", [])
            subnets = [m["subnetId"] for m in mappings]
            internal = bool(nlb.inputs.get("internal"))
            add(
                nlb.inputs.get("securityGroups", []),
                _Endpoint(
                    "nlb",
                    "internal NLB" if internal else "public NLB",
                    subnets,
                    public=not internal and self.routes_to(subnets, "0.0.0.0/0", self.igws),
                    address=", ".join(m["privateIpv4Address"] for m in mappings)
                    if internal
                    else f"{sum(1 for m in mappings if m.get('allocationId'))} Elastic IPs",
                    listeners={
                        int(listener.inputs["port"])
                        for listener in ev.of_type(_LISTENER)
                        if listener.inputs.get("loadBalancerArn") == nlb.id
                    },
                ),
            )
        interface = [e for e in ev.of_type(_VPCE) if e.inputs.get("vpcEndpointType") == "Interface"]
        by_group: dict[str, list[Declared]] = {}
        for endpoint in interface:
            for group in endpoint.inputs.get("securityGroupIds", []):
                by_group.setdefault(group, []).append(endpoint)
        for group, members in by_group.items():
            services = sorted(m.inputs["serviceName"].rsplit(".", 1)[-1] for m in members)
            add(
                [group],
                _Endpoint(
                    "vpce",
                    "interface endpoints",
                    sorted({s for m in members for s in m.inputs.get("subnetIds", [])}),
                    address=", ".join(services),
                ),
            )
        for database in ev.of_type(_RDS):
            add(
                database.inputs.get("vpcSecurityGroupIds", []),
                _Endpoint("rds", "PostgreSQL index", [], public=False),
            )
        return found

    def _template(self, resource: Declared) -> Declared | None:
        reference = resource.inputs.get("launchTemplate") or {}
        found = self.by_id.get(reference.get("id", ""))
        return found if found is not None and found.type == _TEMPLATE else None


def _groups(resource: Declared | None) -> set[str]:
    if resource is None:
        return set()
    groups = set(resource.inputs.get("vpcSecurityGroupIds", []))
    for interface in resource.inputs.get("networkInterfaces", []):
        groups.update(interface.get("securityGroups", []))
    return groups


def _public_interface(instance: Declared | None, template: Declared | None) -> bool:
    if instance is not None and instance.inputs.get("associatePublicIpAddress") in (True, "true"):
        return True
    interfaces = template.inputs.get("networkInterfaces", []) if template else []
    return any(i.get("associatePublicIpAddress") in (True, "true") for i in interfaces)


_SUBNET = "aws:ec2/subnet:Subnet"
_RTA = "aws:ec2/routeTableAssociation:RouteTableAssociation"
_ROUTE = "aws:ec2/route:Route"
_IGW = "aws:ec2/internetGateway:InternetGateway"
_VGW = "aws:ec2/vpnGateway:VpnGateway"
_INSTANCE = "aws:ec2/instance:Instance"
_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
_ASG = "aws:autoscaling/group:Group"
_EIP_ASSOCIATION = "aws:ec2/eipAssociation:EipAssociation"
_LB = "aws:lb/loadBalancer:LoadBalancer"
_LISTENER = "aws:lb/listener:Listener"
_VPCE = "aws:ec2/vpcEndpoint:VpcEndpoint"
_RDS = "aws:rds/instance:Instance"
_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
_CVPN_ENDPOINT = "aws:ec2clientvpn/endpoint:Endpoint"
_CVPN_ASSOCIATION = "aws:ec2clientvpn/networkAssociation:NetworkAssociation"
_CVPN_AUTH = "aws:ec2clientvpn/authorizationRule:AuthorizationRule"
_VPN_CONNECTION = "aws:ec2/vpnConnection:VpnConnection"
_CUSTOMER_GATEWAY = "aws:ec2/customerGateway:CustomerGateway"
_DX_ASSOCIATION = "aws:directconnect/gatewayAssociation:GatewayAssociation"
# Resources that can carry ingress rules of their own besides _INGRESS.
_INLINE_RULES = (
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
)
_OTHER_RULES = ("aws:ec2/securityGroupRule:SecurityGroupRule",)


# --- who may store: read from the hosts' own files ---------------------------------------


@dataclass(frozen=True)
class _Senders:
    """nginx's sender maps and Orthanc's registrations, as written into the secrets."""

    tls_addresses: frozenset[str]  # loopback addresses a certificate maps to
    plain: tuple[tuple[IPv4Network, str], ...]  # geo entries: range -> loopback address
    stores: dict[str, tuple[str, ...]]  # loopback address -> AE titles allowed to store
    check_host: bool
    always_store: bool

    def titles(self, addresses: Iterable[str]) -> tuple[str, ...]:
        if self.always_store:
            return ("any AE title",)
        if not self.check_host:
            return tuple(sorted({t for ts in self.stores.values() for t in ts}))
        return tuple(sorted({t for a in addresses for t in self.stores.get(a, ())}))


def _secret(evaluation: Evaluation, role: str) -> dict[str, Any]:
    for version in evaluation.of_type("aws:secretsmanager/secretVersion:SecretVersion"):
        if version.name.endswith(f"-{role}-secret-value"):
            value = json.loads(version.inputs.get("secretString") or "{}")
            return value if isinstance(value, dict) else {}
    return {}


_MAP_LINE = re.compile(r'^\s*"(?P<key>[^"]*)"\s+(?P<address>[0-9.]+);$')
_GEO_LINE = re.compile(r"^\s*(?P<key>[0-9./]+)\s+(?P<address>[0-9.]+);$")


def _senders(evaluation: Evaluation) -> _Senders:
    from orthgate.components.orthanc.configuration import SECRET_NAMES

    # The current secrets only: the retired ones of the earlier release are for older hosts.
    nginx = _secret(evaluation, SECRET_NAMES["tls"])
    maps = nginx.get("senderMaps", "")
    orthanc = json.loads(_secret(evaluation, SECRET_NAMES["config"]).get("orthanc.json", "{}"))
    tls, plain, block = set(), [], ""
    for line in maps.splitlines():
        if line.startswith(("map ", "geo ")):
            block = line.split()[0]
        elif block == "map" and (found := _MAP_LINE.match(line)):
            tls.add(found["address"])
        elif block == "geo" and (found := _GEO_LINE.match(line)):
            plain.append((IPv4Network(found["key"]), found["address"]))
    stores: dict[str, list[str]] = {}
    for entry in orthanc.get("DicomModalities", {}).values():
        if entry.get("AllowStore"):
            stores.setdefault(entry["Host"], []).append(entry["AET"])
    return _Senders(
        frozenset(tls),
        tuple(plain),
        {k: tuple(v) for k, v in stores.items()},
        check_host=bool(orthanc.get("DicomCheckModalityHost")),
        always_store=bool(orthanc.get("DicomAlwaysAllowStore")),
    )


# --- from rules to rows -------------------------------------------------------------------


class _Builder:
    def __init__(self, evaluation: Evaluation, settings: Settings) -> None:
        self.d = _Declared(evaluation)
        self.settings = settings
        self.senders = _senders(evaluation)
        network = settings.network
        self.vpc = IPv4Network(str(network.vpc_cidr))
        self.tls_port = settings.orthanc.dicom_tls_port
        # Which private path an on-premises range arrives by (Settings: its meaning) and
        # whether the program declared that path (a VPN connection, a DX association).
        connected = {c.inputs.get("customerGatewayId") for c in evaluation.of_type(_VPN_CONNECTION)}
        gateway_ids = {
            c.inputs.get("ipAddress"): c.id for c in evaluation.of_type(_CUSTOMER_GATEWAY)
        }
        self.on_prem: list[tuple[IPv4Network, str, bool]] = []
        for vpn in network.site_to_site_vpns:
            ip = str(vpn.customer_gateway_ip)
            live = gateway_ids.get(ip) in connected
            for cidr in vpn.on_prem_cidrs:
                self.on_prem.append((IPv4Network(str(cidr)), f"site-to-site VPN {vpn.name}", live))
        dx_live = bool(evaluation.of_type(_DX_ASSOCIATION))
        for cidr in network.direct_connect_on_prem_cidrs:
            self.on_prem.append((IPv4Network(str(cidr)), "Direct Connect", dx_live))
        orthanc = settings.orthanc
        self.proxy_site = {str(c): p.name for p in settings.dicom_proxies for c in p.source_cidrs}
        private = {str(c) for c in network.private_path_cidrs}
        direct = {str(c) for c in orthanc.dicom_allowed_cidrs} | set(self.proxy_site)
        # The sources each Orthanc port may have, by what the configuration says.
        self.expected = {
            DICOM_TLS: direct | private,
            DICOM_PLAIN: private,
            HTTPS: {str(c) for c in orthanc.web_allowed_cidrs} | private,
        }
        # Imported here: the components' modules import pulumi_aws, slow to load, which an
        # evaluation has loaded already.
        from orthgate.components.orthanc.data import DATABASE_PORT

        self.database_port = DATABASE_PORT
        self.rows: list[Exposure] = []
        # (load balancer security group, port) -> host rules that it carries on
        self.carried: dict[tuple[str, int], list[str]] = {}

    # --- the whole table --------------------------------------------------------------

    def build(self) -> list[Exposure]:
        ev = self.d.evaluation
        for rule in ev.of_type(_INGRESS):
            self._rule(rule)
        self._attach_carried()
        for resource in ev.resources:
            if resource.type in _INLINE_RULES and resource.inputs.get("ingress"):
                self._unexplained(resource, "inline ingress rules")
            elif resource.type in _OTHER_RULES and resource.inputs.get("type") == "ingress":
                self._unexplained(resource, "a security group rule resource")
        self._client_vpn_endpoint()
        self._tunnels()
        return sorted(set(self.rows), key=_sort_key)

    def _unexplained(self, rule: Declared, why: str) -> None:
        inputs = rule.inputs
        port = inputs.get("fromPort")
        self.rows.append(
            Exposure(
                endpoint=f"security group {inputs.get('securityGroupId', rule.name)}",
                port=int(port) if port is not None else None,
                protocol=str(inputs.get("ipProtocol", "?")),
                service="?",
                path=UNEXPLAINED,
                sources=(
                    str(
                        inputs.get("cidrIpv4")
                        or inputs.get("referencedSecurityGroupId")
                        or inputs.get("cidrIpv6")
                        or inputs.get("prefixListId")
                        or "?"
                    ),
                ),
                rules=(rule.name,),
                note=why,
            )
        )

    # --- security group rules ----------------------------------------------------------

    def _rule(self, rule: Declared) -> None:
        inputs = rule.inputs
        endpoints = self.d.endpoints.get(inputs.get("securityGroupId", ""), [])
        low, high = inputs.get("fromPort"), inputs.get("toPort")
        if not endpoints:
            return self._unexplained(rule, "the security group protects nothing this reads")
        if inputs.get("ipProtocol") != "tcp" or low is None or low != high:
            return self._unexplained(rule, "not a single TCP port")
        port = int(low)
        for endpoint in endpoints:
            service = self._service(endpoint, port)
            if service is None:
                self._unexplained(rule, f"no {endpoint.label} service on this port")
            elif inputs.get("cidrIpv4"):
                self._cidr_rule(rule, endpoint, port, service, inputs["cidrIpv4"])
            elif inputs.get("referencedSecurityGroupId"):
                self._group_rule(rule, endpoint, port, service, inputs["referencedSecurityGroupId"])
            else:
                self._unexplained(rule, "a source other than an IPv4 range or a security group")
        return None

    def _service(self, endpoint: _Endpoint, port: int) -> str | None:
        if endpoint.kind in ("host", "hosts", "nlb"):
            if endpoint.kind == "nlb" and port not in endpoint.listeners:
                return None
            return {
                self.tls_port: DICOM_TLS,
                ORTHANC_DICOM_PORT: DICOM_PLAIN,
                HTTPS_PORT: HTTPS,
            }.get(port)
        if endpoint.kind == "vpce" and port == HTTPS_PORT:
            return "HTTPS (AWS APIs)"
        if endpoint.kind == "rds" and port == self.database_port:
            return "PostgreSQL"
        return None

    def _cidr_rule(
        self, rule: Declared, endpoint: _Endpoint, port: int, service: str, cidr: str
    ) -> None:
        orthanc = endpoint.kind in ("host", "hosts", "nlb")
        known = self.expected.get(service, set()) if orthanc else {str(self.vpc)}
        if cidr not in known:
            return self._unexplained(rule, f"{cidr} is no configured source of {service}")
        for path, part in self._paths(IPv4Network(cidr), endpoint, service):
            self._emit(rule, endpoint, port, service, path, [part])
        return None

    def _paths(
        self, cidr: IPv4Network, endpoint: _Endpoint, service: str
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
        # Never reached while plaintext sources are the private paths (``expected``), but a
        # change there must not show plaintext from the Internet as TLS.
        if service == DICOM_PLAIN:
            return f"{INTERNET} (plaintext)"
        if service == DICOM_TLS and cidr in self.proxy_site:
            return f"{INTERNET} (DICOM proxy {self.proxy_site[cidr]})"
        return f"{INTERNET} (TLS)"

    def _group_rule(
        self, rule: Declared, endpoint: _Endpoint, port: int, service: str, group: str
    ) -> None:
        sources = self.d.endpoints.get(group, [])
        if endpoint.kind == "hosts" and any(
            s.kind == "nlb" and port in s.listeners for s in sources
        ):
            self.carried.setdefault((group, port), []).append(rule.name)
        elif endpoint.kind == "rds" and any(s.kind in ("host", "hosts") for s in sources):
            self.rows.append(
                Exposure(
                    endpoint.label,
                    port,
                    "tcp",
                    service,
                    "inside the VPC",
                    ("Orthanc hosts' security group",),
                    authentication="TLS required (rds.force_ssl); password kept by RDS in "
                    "Secrets Manager",
                    rules=(rule.name,),
                )
            )
        elif group in self.d.client_vpn_groups and endpoint.kind in ("host", "hosts", "nlb"):
            self._client_vpn_rule(rule, endpoint, port, service)
        else:
            self._unexplained(rule, f"security group {group} is no source this reads")

    def _client_vpn_rule(
        self, rule: Declared, endpoint: _Endpoint, port: int, service: str
    ) -> None:
        reached = [
            IPv4Network(self.d.subnet_cidr[s]) for s in endpoint.subnets if s in self.d.subnet_cidr
        ]
        # Workstations reach only the authorized ranges: every subnet the endpoint sits in.
        authorized = bool(reached) and all(
            any(subnet.subnet_of(target) for target in self.d.client_vpn_targets)
            for subnet in reached
        )
        path = "Client VPN" if authorized else "unreachable (Client VPN does not authorize it)"
        # Client VPN source-NATs workstations to its interfaces in the associated subnets.
        seen_as = [IPv4Network(c) for c in self.d.client_vpn_subnets if c]
        self._emit(rule, endpoint, port, service, path, seen_as, client_vpn=True)

    def _attach_carried(self) -> None:
        """A fleet's hosts admit each load balancer on its listener ports: those rules are
        the second hop of that balancer's rows (TCP pass-through to nginx)."""
        for (group, port), names in sorted(self.carried.items()):
            nlb = next(e for e in self.d.endpoints[group] if e.kind == "nlb")
            rows = [r for r in self.rows if r.endpoint == nlb.label and r.port == port]
            if not rows:
                service = self._service(nlb, port) or "?"
                self.rows.append(
                    Exposure(
                        nlb.label,
                        port,
                        "tcp",
                        service,
                        "none",
                        (),
                        address=nlb.address,
                        rules=tuple(names),
                        note="listener declared, but its security group admits no source",
                    )
                )
                continue
            for row in rows:
                self.rows.remove(row)
                self.rows.append(_with_rules(row, names))

    # --- one row per path and sender identity ------------------------------------------

    def _emit(
        self,
        rule: Declared,
        endpoint: _Endpoint,
        port: int,
        service: str,
        path: str,
        parts: list[IPv4Network],
        *,
        client_vpn: bool = False,
    ) -> None:
        base = {
            "endpoint": endpoint.label,
            "port": port,
            "protocol": "tcp",
            "service": service,
            "path": path,
            "address": endpoint.address,
            "rules": (rule.name,),
        }
        clients = f"Client VPN workstations {self.settings.client_vpn.client_cidr}"
        note = "source-NATed to " + ", ".join(map(str, parts)) if client_vpn else ""
        if endpoint.kind in ("vpce",):
            self.rows.append(
                Exposure(
                    **base,
                    sources=tuple(map(str, parts)),
                    authentication="TLS; AWS request signing (IAM)",
                    note="anything with an address in the VPC",
                )
            )
            return
        auth = _AUTH[service]
        if client_vpn:
            auth = "Client VPN certificate, then " + auth
        if service != DICOM_PLAIN:
            titles = self.senders.titles(self.senders.tls_addresses) if service == DICOM_TLS else ()
            self.rows.append(
                Exposure(
                    **base,
                    sources=(clients,) if client_vpn else tuple(map(str, parts)),
                    ae_titles=titles,
                    authentication=auth,
                    note=note,
                )
            )
            return
        claimed: list[IPv4Network] = []
        for addresses, ranges in self._claims(parts):
            claimed += ranges
            self.rows.append(
                Exposure(
                    **base,
                    sources=tuple(map(str, ranges)),
                    ae_titles=self.senders.titles(addresses),
                    authentication=auth,
                    note=note,
                )
            )
        rest = [p for p in parts if not _covered(p, claimed)]
        if rest:
            covering = {self._covering(p) for p in rest}
            self.rows.append(
                Exposure(
                    **base,
                    sources=(clients,) if client_vpn else tuple(map(str, rest)),
                    except_sources=tuple(map(str, sorted(claimed))),
                    ae_titles=self.senders.titles(a for a in covering if a),
                    authentication=auth,
                    note=note
                    or ("" if all(covering) else "nginx maps no identity here: nobody may store"),
                )
            )

    def _claims(self, parts: list[IPv4Network]) -> list[tuple[tuple[str, ...], list[IPv4Network]]]:
        """Narrower geo entries inside ``parts``, grouped by the identity they stand for."""
        by_address: dict[str, list[IPv4Network]] = {}
        for network, address in self.senders.plain:
            if any(network.subnet_of(p) and network != p for p in parts):
                by_address.setdefault(address, []).append(network)
        return sorted(((a,), sorted(n)) for a, n in by_address.items())

    def _covering(self, part: IPv4Network) -> str:
        """The identity nginx gives addresses of ``part`` no narrower entry claims."""
        covers = [(n, a) for n, a in self.senders.plain if part.subnet_of(n)]
        return max(covers, key=lambda c: c[0].prefixlen)[1] if covers else ""

    # --- what faces the Internet without a security group ------------------------------

    def _client_vpn_endpoint(self) -> None:
        endpoint = self.d.client_vpn
        if endpoint is None:
            return
        inputs = endpoint.inputs
        kinds = {o.get("type") for o in inputs.get("authenticationOptions", [])}
        auth = (
            "mutual TLS: workstation certificate of the Client VPN CA"
            if kinds == {"certificate-authentication"}
            else "authentication: " + ", ".join(sorted(str(k) for k in kinds))
        )
        self.rows.append(
            Exposure(
                "Client VPN endpoint",
                int(inputs.get("vpnPort", 443)),
                str(inputs.get("transportProtocol", "udp")),
                "OpenVPN (Client VPN)",
                INTERNET,
                ("any address",),
                authentication=auth,
                address="the endpoint's DNS name (output clientVpnDnsName)",
                note="workstations: " + ", ".join(self.settings.client_vpn.workstations),
            )
        )

    def _tunnels(self) -> None:
        gateways = {c.id: c for c in self.d.evaluation.of_type(_CUSTOMER_GATEWAY)}
        for connection in self.d.evaluation.of_type(_VPN_CONNECTION):
            gateway = gateways.get(connection.inputs.get("customerGatewayId", ""))
            if gateway is None:
                continue
            site = gateway.inputs.get("deviceName") or gateway.name
            keys = any(f"tunnel{n}PresharedKey" in connection.inputs for n in (1, 2))
            for port, protocol, service in _IPSEC:
                self.rows.append(
                    Exposure(
                        f"site-to-site VPN {site} tunnels",
                        port,
                        protocol,
                        service,
                        f"{INTERNET} (IPsec)",
                        (f"{gateway.inputs['ipAddress']}/32",),
                        authentication="IKEv2 pre-shared key per tunnel, "
                        + ("configured" if keys else "generated by AWS"),
                        address="two AWS tunnel outside addresses (output siteToSiteVpns)",
                        note="the tunnels' configured peer",
                    )
                )


def _covered(part: IPv4Network, claimed: list[IPv4Network]) -> bool:
    inside = [c for c in claimed if c.subnet_of(part)]
    return list(collapse_addresses(inside)) == [part]


def _with_rules(row: Exposure, names: list[str]) -> Exposure:
    return Exposure(**{**asdict(row), "rules": tuple(sorted({*row.rules, *names}))})


_ENDPOINT_ORDER = ("Orthanc host", "public NLB", "internal NLB", "Client VPN endpoint")


def _sort_key(row: Exposure) -> tuple:
    rank = next(
        (i for i, e in enumerate(_ENDPOINT_ORDER) if row.endpoint == e), len(_ENDPOINT_ORDER)
    )
    return (
        row.path == UNEXPLAINED,
        rank,
        row.endpoint,
        -1 if row.port is None else row.port,
        row.protocol,
        row.path,
        row.sources,
        row.except_sources,
        row.ae_titles,
        row.rules,
    )


def exposure_of(evaluation: Evaluation, settings: Settings) -> list[Exposure]:
    """Every way in to what ``evaluation`` declared, sorted; ``settings`` are the ones it was
    evaluated from (validated)."""
    return _Builder(evaluation, settings).build()


# --- text for a terminal -----------------------------------------------------------------

_COLUMNS = (
    ("ENDPOINT", 20),
    ("PORT", 10),
    ("SERVICE", 18),
    ("PATH", 26),
    ("SOURCES", 24),
    ("AE TITLES", 16),
    ("PROTECTED BY", 36),
)


def _cells(row: Exposure) -> list[list[str]]:
    port = f"{row.port}/{row.protocol}" if row.port is not None else row.protocol
    sources = list(row.sources) + [f"except {s}" for s in row.except_sources]
    titles = list(row.ae_titles) or (["(none)"] if row.service.startswith("DICOM") else ["-"])
    protected = " ".join(t for t in (row.authentication, f"({row.note})" if row.note else "") if t)
    texts = [
        [row.endpoint],
        [port],
        [row.service],
        [row.path],
        sources or ["-"],
        titles,
        [protected],
    ]
    return [
        [
            line
            for text in cell
            for line in (textwrap.wrap(text, width, break_on_hyphens=False) or [""])
        ]
        for cell, (_, width) in zip(texts, _COLUMNS, strict=True)
    ]


def render_exposure(rows: list[Exposure]) -> str:
    """A plain-text table, one block per row, and the two answers a reviewer asks first."""
    if not rows:
        table = ["Nothing is reachable: no security group admits a source; no Client VPN, no VPN."]
    else:
        widths = [w for _, w in _COLUMNS]
        header = "  ".join(name.ljust(w) for (name, _), w in zip(_COLUMNS, widths, strict=True))
        table = [header.rstrip(), "-" * len(header.rstrip())]
        for row in rows:
            cells = _cells(row)
            for i in range(max(len(c) for c in cells)):
                line = "  ".join(
                    (c[i] if i < len(c) else "").ljust(w)
                    for c, w in zip(cells, widths, strict=True)
                )
                table.append(line.rstrip())
    plain_internet = [r for r in rows if r.service == DICOM_PLAIN and r.internet]
    unexplained = [r for r in rows if r.path == UNEXPLAINED]
    table += [
        "",
        "Plaintext DICOM reachable from the Internet: "
        + ("YES, see the rows above" if plain_internet else "no"),
        "Ingress rules not explained: "
        + (", ".join(n for r in unexplained for n in r.rules) if unexplained else "none"),
    ]
    return "\n".join(table)
