"""From rules to rows: each security group ingress rule read as the ways in it opens, with the
Client VPN endpoint and the VPN tunnels, sorted into the exposure table."""

from __future__ import annotations

from dataclasses import asdict
from ipaddress import IPv4Network, collapse_addresses

from orthgate.components.config import Settings
from orthgate.components.config.orthanc import HTTPS_PORT, ORTHANC_DICOM_PORT
from orthgate.exposure.declared import INGRESS, INLINE_RULES, OTHER_RULES, Declarations, Endpoint
from orthgate.exposure.paths import Paths
from orthgate.exposure.proxy_sites import proxy_site_rows
from orthgate.exposure.row import DICOM_PLAIN, DICOM_TLS, HTTPS, UNEXPLAINED, Exposure
from orthgate.exposure.senders import senders_of
from orthgate.exposure.vpn_endpoints import client_vpn_endpoint_rows, tunnel_rows
from orthgate.offline.evaluation import Declared, Evaluation

_AUTH = {
    DICOM_TLS: "mutual TLS (unrevoked DICOM CA certificate); AE title bound to its subject",
    DICOM_PLAIN: "source address only; AE title bound to the source range",
    HTTPS: "TLS; Orthanc REST API login",
}


class _Builder:
    def __init__(self, evaluation: Evaluation, settings: Settings) -> None:
        self.d = Declarations(evaluation)
        self.settings = settings
        self.senders = senders_of(evaluation)
        self.paths = Paths(self.d, settings)
        network = settings.network
        self.vpc = self.paths.vpc
        self.tls_port = settings.orthanc.dicom_tls_port
        orthanc = settings.orthanc
        private = {str(c) for c in network.private_path_cidrs}
        direct = {str(c) for c in orthanc.dicom_allowed_cidrs} | set(self.paths.proxy_site)
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
        for rule in ev.of_type(INGRESS):
            self._rule(rule)
        self._attach_carried()
        for resource in ev.resources:
            if resource.type in INLINE_RULES and resource.inputs.get("ingress"):
                self._unexplained(resource, "inline ingress rules")
            elif resource.type in OTHER_RULES and resource.inputs.get("type") == "ingress":
                self._unexplained(resource, "a security group rule resource")
        self.rows += client_vpn_endpoint_rows(self.d, self.settings)
        self.rows += tunnel_rows(self.d)
        self.rows += proxy_site_rows(self.d.evaluation, self.settings)
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

    def _service(self, endpoint: Endpoint, port: int) -> str | None:
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
        self, rule: Declared, endpoint: Endpoint, port: int, service: str, cidr: str
    ) -> None:
        orthanc = endpoint.kind in ("host", "hosts", "nlb")
        known = self.expected.get(service, set()) if orthanc else {str(self.vpc)}
        if cidr not in known:
            return self._unexplained(rule, f"{cidr} is no configured source of {service}")
        for path, part in self.paths.of(IPv4Network(cidr), endpoint, service):
            self._emit(rule, endpoint, port, service, path, [part])
        return None

    def _group_rule(
        self, rule: Declared, endpoint: Endpoint, port: int, service: str, group: str
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

    def _client_vpn_rule(self, rule: Declared, endpoint: Endpoint, port: int, service: str) -> None:
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
        endpoint: Endpoint,
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
