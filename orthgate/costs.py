"""A monthly cost estimate of what a stack declares, from the price table in the repo.

``estimate`` walks the resources an offline evaluation declared (``orthgate.offline``),
prices each with a rule keyed by its Pulumi type token, and groups the lines by the
component that declared them. Prices come from ``orthgate/data/aws-prices.json``: on-demand
list prices with the date they were read and where; a figure no source confirmed is marked
unverified there, and every line priced with it says so. Usage-based charges (GB of logs,
data processed, objects stored) take their quantity from ``CostAssumptions``.

Every resource type the program can declare is either in ``PRICING_RULES`` or in
``FREE_TYPES`` with the reason it costs nothing; a type in neither is reported as a line
with no price, never dropped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from orthgate.components.config import Settings
from orthgate.errors import OrthgateError
from orthgate.offline.evaluation import Declared, Evaluation

PRICE_TABLE = "aws-prices.json"


class UnknownRegionError(OrthgateError):
    """The price table has no prices for the stack's region."""


@dataclass(frozen=True)
class CostAssumptions:
    """Quantities a bill depends on that no declaration states; change them to your usage."""

    hours_per_month: float = 730.0  # 24 x 365 / 12, how AWS's calculator counts a month
    # Client VPN connection-hours: each workstation connected 8 h a day, 22 working days.
    vpn_hours_per_workstation: float = 8 * 22
    nat_gb_processed_per_gateway: float = 10.0
    endpoint_gb_processed_per_endpoint: float = 1.0
    nlb_average_nlcus: float = 0.1  # a handful of DICOM senders stays far below one NLCU
    log_gb_ingested_per_group: float = 1.0  # per log group and month
    s3_image_gb: float = 100.0  # images in the storage bucket
    s3_access_log_gb: float = 1.0  # server access logs kept by the log bucket
    rds_backup_gb_beyond_free: float = 0.0  # backups within the free 100 % of storage

    def stated(self) -> list[str]:
        return [
            f"{self.hours_per_month:g} hours a month",
            f"Client VPN: {self.vpn_hours_per_workstation:g} connected hours per workstation",
            f"NAT gateway: {self.nat_gb_processed_per_gateway:g} GB processed per gateway",
            f"interface endpoints: {self.endpoint_gb_processed_per_endpoint:g} GB each",
            f"NLB: {self.nlb_average_nlcus:g} NLCU on average",
            f"logs: {self.log_gb_ingested_per_group:g} GB ingested per log group, stored for "
            "its retention (at most a year)",
            f"S3: {self.s3_image_gb:g} GB of images, {self.s3_access_log_gb:g} GB of access logs",
            f"RDS backups: {self.rds_backup_gb_beyond_free:g} GB beyond the free allowance",
            "on-demand list prices, no free tier",
            "not estimated: data transfer out of AWS, KMS and Secrets Manager requests, the "
            "hosts' CloudWatch agent metric (disk_used_percent, a custom metric per host), log "
            "storage past the first year",
        ]


@dataclass(frozen=True)
class CostLine:
    component: str
    resource: str
    item: str
    quantity: float
    unit: str
    unit_price: float | None  # None: no price in the table
    monthly_usd: float | None
    verified: bool
    source: str | None  # a key of the table's sources
    usage_based: bool = False
    note: str = ""


@dataclass
class CostEstimate:
    region: str
    date: str
    sources: dict[str, dict[str, str]]  # the table's sources that priced a line
    assumptions: CostAssumptions
    lines: list[CostLine] = field(default_factory=list)

    @property
    def total_usd(self) -> float:
        return sum(line.monthly_usd or 0.0 for line in self.lines)

    @property
    def unpriced(self) -> list[CostLine]:
        return [line for line in self.lines if line.unit_price is None]

    @property
    def unverified(self) -> list[CostLine]:
        return [line for line in self.lines if line.unit_price is not None and not line.verified]

    def by_component(self) -> dict[str, list[CostLine]]:
        grouped: dict[str, list[CostLine]] = {}
        for line in self.lines:
            grouped.setdefault(line.component, []).append(line)
        return grouped

    def component_totals(self) -> dict[str, float]:
        return {
            name: sum(line.monthly_usd or 0.0 for line in lines)
            for name, lines in self.by_component().items()
        }

    def as_dict(self) -> dict[str, Any]:
        """For ``--json``: every line, the totals, the table's date and sources."""
        return {
            "region": self.region,
            "currency": "USD",
            "priceTableDate": self.date,
            "sources": self.sources,
            "assumptions": {**asdict(self.assumptions), "stated": self.assumptions.stated()},
            "totalMonthlyUsd": round(self.total_usd, 2),
            "componentTotals": {k: round(v, 2) for k, v in self.component_totals().items()},
            "unverifiedLines": len(self.unverified),
            "unpricedLines": len(self.unpriced),
            "lines": [_line_dict(line) for line in self.lines],
        }


def _line_dict(line: CostLine) -> dict[str, Any]:
    return {
        "component": line.component,
        "resource": line.resource,
        "item": line.item,
        "quantity": line.quantity,
        "unit": line.unit,
        "unitPriceUsd": line.unit_price,
        "monthlyUsd": None if line.monthly_usd is None else round(line.monthly_usd, 4),
        "verified": line.verified,
        "source": line.source,
        "usageBased": line.usage_based,
        "note": line.note,
    }


# --- the price table -------------------------------------------------------------------------


@cache
def price_table() -> dict[str, Any]:
    """The table shipped as package data (``orthgate/data/aws-prices.json``)."""
    text = resources.files("orthgate").joinpath("data", PRICE_TABLE).read_text("utf-8")
    return json.loads(text)


def table_regions() -> list[str]:
    return sorted(price_table()["regions"])


@dataclass(frozen=True)
class _Prices:
    """One region's prices, and the lines they make."""

    region: str
    table: dict[str, Any]

    def line(
        self,
        ctx: _Context,
        section: str,
        key: str,
        *,
        item: str,
        quantity: float,
        unit: str,
        usage: bool = False,
        note: str = "",
        factor: float = 1.0,
    ) -> CostLine:
        entry = self.table[section].get(key) if section != "prices" else self.table[section][key]
        price = None if entry is None else entry["usd"]
        if price is None:
            missing = f"no price in the table for {key} in {self.region}"
            reason = entry.get("note", "") if entry else ""
            return CostLine(
                ctx.component, ctx.resource.name, item, quantity, unit, None, None, False,
                entry["source"] if entry else None, usage,
                "; ".join(part for part in (missing, reason, note) if part),
            )  # fmt: skip
        unit_price = price * factor
        notes = [note] if note else []
        if not entry["verified"]:
            notes.append(f"unverified: {entry.get('note', 'not confirmed by a source')}")
        return CostLine(
            ctx.component, ctx.resource.name, item, quantity, unit, unit_price,
            quantity * unit_price, bool(entry["verified"]), entry["source"], usage,
            "; ".join(notes),
        )  # fmt: skip


@dataclass(frozen=True)
class _Context:
    resource: Declared
    component: str
    prices: _Prices
    settings: Settings
    assumptions: CostAssumptions
    by_id: dict[str, Declared]
    logged_buckets: frozenset[str]  # ids of buckets that receive S3 server access logs

    @property
    def hours(self) -> float:
        return self.assumptions.hours_per_month


Rule = Callable[[_Context], Iterator[CostLine]]


# --- pricing rules, one per resource type ------------------------------------------------------


def _nat_gateway(ctx: _Context) -> Iterator[CostLine]:
    p, a = ctx.prices, ctx.assumptions
    yield p.line(ctx, "prices", "nat_gateway_hour", item="NAT gateway", quantity=ctx.hours,
                 unit="hour")  # fmt: skip
    yield p.line(ctx, "prices", "nat_gateway_gb", item="NAT gateway data processed",
                 quantity=a.nat_gb_processed_per_gateway, unit="GB", usage=True)  # fmt: skip


def _elastic_ip(ctx: _Context) -> Iterator[CostLine]:
    # Since 2024 every public IPv4 address is charged, attached or not.
    yield ctx.prices.line(ctx, "prices", "public_ipv4_hour", item="public IPv4 address (EIP)",
                          quantity=ctx.hours, unit="address-hour")  # fmt: skip


def _template_of(ctx: _Context) -> Declared | None:
    template_id = (ctx.resource.inputs.get("launchTemplate") or {}).get("id")
    return ctx.by_id.get(template_id) if template_id else None


def _root_volume_gib(template: Declared) -> tuple[float, str]:
    total, kind = 0.0, "gp3"
    for mapping in template.inputs.get("blockDeviceMappings") or []:
        ebs = mapping.get("ebs") or {}
        total += float(ebs.get("volumeSize") or 0)
        kind = ebs.get("volumeType") or kind
    return total, kind


def _hosts(ctx: _Context, count: float, public_ip: bool) -> Iterator[CostLine]:
    template = _template_of(ctx)
    if template is None:
        yield _unpriced(ctx, "instance", "its launch template was not declared")
        return
    instance_type = template.inputs.get("instanceType", "?")
    label = f"{count:g} x " if count != 1 else ""
    yield ctx.prices.line(ctx, "ec2_instance_hour", instance_type,
                          item=f"EC2 {label}{instance_type}", quantity=count * ctx.hours,
                          unit="instance-hour")  # fmt: skip
    size, kind = _root_volume_gib(template)
    if size:
        yield _ebs(ctx, kind, count * size, f"root volume{'s' if count != 1 else ''}")
    if public_ip:
        yield ctx.prices.line(ctx, "prices", "public_ipv4_hour",
                              item="public IPv4 address per host", quantity=count * ctx.hours,
                              unit="address-hour")  # fmt: skip


def _ebs(ctx: _Context, kind: str, gib: float, what: str) -> CostLine:
    if kind != "gp3":
        return _unpriced(ctx, f"EBS {kind} {what}", f"no price in the table for EBS {kind}")
    return ctx.prices.line(ctx, "prices", "ebs_gp3_gb_month", item=f"EBS gp3 {what}",
                           quantity=gib, unit="GB-month")  # fmt: skip


def _instance(ctx: _Context) -> Iterator[CostLine]:
    # A single host's public address is an Elastic IP, priced with the Eip.
    yield from _hosts(ctx, 1, public_ip=False)


def _autoscaling_group(ctx: _Context) -> Iterator[CostLine]:
    desired = float(ctx.resource.inputs.get("desiredCapacity") or 0)
    template = _template_of(ctx)
    interfaces = template.inputs.get("networkInterfaces") if template else None
    public = any(str(i.get("associatePublicIpAddress")).lower() == "true" for i in interfaces or [])
    yield from _hosts(ctx, desired, public_ip=public)


def _volume(ctx: _Context) -> Iterator[CostLine]:
    inputs = ctx.resource.inputs
    yield _ebs(ctx, inputs.get("type", "gp2"), float(inputs.get("size") or 0), "data volume")


def _load_balancer(ctx: _Context) -> Iterator[CostLine]:
    kind = ctx.resource.inputs.get("loadBalancerType", "application")
    if kind != "network":
        yield _unpriced(ctx, f"{kind} load balancer", "only network load balancers are priced")
        return
    scope = "internal" if ctx.resource.inputs.get("internal") else "internet-facing"
    yield ctx.prices.line(ctx, "prices", "nlb_hour", item=f"NLB ({scope})", quantity=ctx.hours,
                          unit="hour")  # fmt: skip
    yield ctx.prices.line(ctx, "prices", "nlb_nlcu_hour", item="NLB capacity units",
                          quantity=ctx.assumptions.nlb_average_nlcus * ctx.hours,
                          unit="NLCU-hour", usage=True)  # fmt: skip


def _vpc_endpoint(ctx: _Context) -> Iterator[CostLine]:
    inputs = ctx.resource.inputs
    if inputs.get("vpcEndpointType") != "Interface":
        return  # gateway endpoints (S3) carry no charge (AWS PrivateLink pricing page)
    service = str(inputs.get("serviceName", "")).rsplit(".", 1)[-1]
    zones = len(inputs.get("subnetIds") or [])
    yield ctx.prices.line(ctx, "prices", "interface_endpoint_az_hour",
                          item=f"interface endpoint {service} in {zones} AZ",
                          quantity=zones * ctx.hours, unit="endpoint-AZ-hour")  # fmt: skip
    yield ctx.prices.line(ctx, "prices", "interface_endpoint_gb",
                          item=f"interface endpoint {service} data processed",
                          quantity=ctx.assumptions.endpoint_gb_processed_per_endpoint, unit="GB",
                          usage=True)  # fmt: skip


def _vpn_connection(ctx: _Context) -> Iterator[CostLine]:
    yield ctx.prices.line(ctx, "prices", "site_to_site_vpn_connection_hour",
                          item="site-to-site VPN connection", quantity=ctx.hours,
                          unit="connection-hour")  # fmt: skip


def _client_vpn_association(ctx: _Context) -> Iterator[CostLine]:
    yield ctx.prices.line(ctx, "prices", "client_vpn_association_hour",
                          item="Client VPN subnet association", quantity=ctx.hours,
                          unit="association-hour")  # fmt: skip


def _client_vpn_endpoint(ctx: _Context) -> Iterator[CostLine]:
    workstations = len(ctx.settings.client_vpn.workstations)
    yield ctx.prices.line(ctx, "prices", "client_vpn_connection_hour",
                          item=f"Client VPN connections ({workstations} workstations)",
                          quantity=workstations * ctx.assumptions.vpn_hours_per_workstation,
                          unit="connection-hour", usage=True)  # fmt: skip


# Multi-AZ bills the standby's instance hours and storage too (RDS User Guide, "On-Demand DB
# instances", read 2026-12-02: source aws-rds-multi-az in the table).
_MULTI_AZ_FACTOR = 2.0


def _database(ctx: _Context) -> Iterator[CostLine]:
    inputs, p = ctx.resource.inputs, ctx.prices
    multi_az = bool(inputs.get("multiAz"))
    factor = _MULTI_AZ_FACTOR if multi_az else 1.0
    deployment = "Multi-AZ (primary and standby)" if multi_az else "single-AZ"
    note = "x2: primary and standby (RDS User Guide)" if multi_az else ""
    klass = inputs.get("instanceClass", "?")
    yield p.line(ctx, "rds_postgres_instance_hour", klass, item=f"RDS PostgreSQL {klass}, "
                 f"{deployment}", quantity=ctx.hours, unit="instance-hour", factor=factor,
                 note=note)  # fmt: skip
    storage = inputs.get("storageType", "gp2")
    if storage in ("gp3", "gp2"):
        yield p.line(ctx, "prices", f"rds_{storage}_gb_month", item=f"RDS {storage} storage",
                     quantity=float(inputs.get("allocatedStorage") or 0), unit="GB-month",
                     factor=factor, note=note)  # fmt: skip
    else:
        yield _unpriced(ctx, f"RDS {storage} storage", f"no price in the table for RDS {storage}")
    yield p.line(ctx, "prices", "rds_backup_gb_month", item="RDS backup storage",
                 quantity=ctx.assumptions.rds_backup_gb_beyond_free, unit="GB-month",
                 usage=True)  # fmt: skip
    if inputs.get("manageMasterUserPassword"):
        yield p.line(ctx, "prices", "secrets_manager_secret_month",
                     item="master password secret (kept by RDS)", quantity=1,
                     unit="secret-month")  # fmt: skip


def _kms_key(ctx: _Context) -> Iterator[CostLine]:
    rotation = ctx.resource.inputs.get("enableKeyRotation")
    note = "each yearly rotation adds one key-month (KMS pricing page)" if rotation else ""
    yield ctx.prices.line(ctx, "prices", "kms_key_month", item="KMS customer managed key",
                          quantity=1, unit="key-month", note=note)  # fmt: skip


def _log_group(ctx: _Context) -> Iterator[CostLine]:
    a = ctx.assumptions
    retention = float(ctx.resource.inputs.get("retentionInDays") or 365)
    stored = a.log_gb_ingested_per_group * min(retention, 365) * 12 / 365
    yield ctx.prices.line(ctx, "prices", "logs_ingestion_gb", item="CloudWatch Logs ingestion",
                          quantity=a.log_gb_ingested_per_group, unit="GB", usage=True)  # fmt: skip
    yield ctx.prices.line(ctx, "prices", "logs_storage_gb_month", item="CloudWatch Logs storage",
                          quantity=round(stored, 3), unit="GB-month", usage=True,
                          note=f"{retention:g}-day retention")  # fmt: skip


def _alarm(ctx: _Context) -> Iterator[CostLine]:
    yield ctx.prices.line(ctx, "prices", "cloudwatch_alarm_month", item="CloudWatch alarm",
                          quantity=1, unit="alarm-month")  # fmt: skip


def _secret(ctx: _Context) -> Iterator[CostLine]:
    yield ctx.prices.line(ctx, "prices", "secrets_manager_secret_month",
                          item="Secrets Manager secret", quantity=1,
                          unit="secret-month")  # fmt: skip


def _bucket(ctx: _Context) -> Iterator[CostLine]:
    logs = ctx.resource.id in ctx.logged_buckets
    gb = ctx.assumptions.s3_access_log_gb if logs else ctx.assumptions.s3_image_gb
    what = "access logs" if logs else "images"
    yield ctx.prices.line(ctx, "prices", "s3_standard_gb_month", item=f"S3 Standard ({what})",
                          quantity=gb, unit="GB-month", usage=True)  # fmt: skip


def _unpriced(ctx: _Context, item: str, reason: str) -> CostLine:
    return CostLine(ctx.component, ctx.resource.name, item, 0, "", None, None, False, None,
                    note=reason)  # fmt: skip


PRICING_RULES: dict[str, Rule] = {
    "aws:ec2/natGateway:NatGateway": _nat_gateway,
    "aws:ec2/eip:Eip": _elastic_ip,
    "aws:ec2/instance:Instance": _instance,
    "aws:autoscaling/group:Group": _autoscaling_group,
    "aws:ebs/volume:Volume": _volume,
    "aws:lb/loadBalancer:LoadBalancer": _load_balancer,
    "aws:ec2/vpcEndpoint:VpcEndpoint": _vpc_endpoint,
    "aws:ec2/vpnConnection:VpnConnection": _vpn_connection,
    "aws:ec2clientvpn/networkAssociation:NetworkAssociation": _client_vpn_association,
    "aws:ec2clientvpn/endpoint:Endpoint": _client_vpn_endpoint,
    "aws:rds/instance:Instance": _database,
    "aws:kms/key:Key": _kms_key,
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:cloudwatch/metricAlarm:MetricAlarm": _alarm,
    "aws:secretsmanager/secret:Secret": _secret,
    "aws:s3/bucket:Bucket": _bucket,
}

_NO_CHARGE = "no charge of its own"
_LOCAL = "computed locally by the provider: no cloud resource"
_SG_RULE = f"security group rule: {_NO_CHARGE}"

# Types that cost nothing by themselves. Where a charge arises elsewhere, the reason says where.
FREE_TYPES: dict[str, str] = {
    "aws:ec2/vpc:Vpc": f"VPC: {_NO_CHARGE}",
    "aws:ec2/subnet:Subnet": f"subnet: {_NO_CHARGE}",
    "aws:ec2/subnetCidrReservation:SubnetCidrReservation": f"subnet CIDR reservation: {_NO_CHARGE}",
    "aws:ec2/internetGateway:InternetGateway": f"Internet gateway: {_NO_CHARGE} (transfer out "
    "of AWS is billed, not estimated here)",
    "aws:ec2/routeTable:RouteTable": f"route table: {_NO_CHARGE}",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": f"route table association: {_NO_CHARGE}",
    "aws:ec2/route:Route": f"route: {_NO_CHARGE}",
    "aws:ec2/securityGroup:SecurityGroup": f"security group: {_NO_CHARGE}",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": f"default security group: {_NO_CHARGE}",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": _SG_RULE,
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": _SG_RULE,
    "aws:ec2/flowLog:FlowLog": "flow log: billed as ingestion into its log group (priced there)",
    "aws:ec2/eipAssociation:EipAssociation": "EIP association: the address is priced at the Eip",
    "aws:ec2/launchTemplate:LaunchTemplate": "launch template: priced through the instances "
    "launched from it",
    "aws:ec2/volumeAttachment:VolumeAttachment": "volume attachment: the volume is priced",
    "aws:autoscaling/policy:Policy": f"scaling policy: {_NO_CHARGE}",
    "aws:ec2/vpnGateway:VpnGateway": "virtual private gateway: billed per VPN connection-hour, "
    "priced at each VpnConnection",
    "aws:ec2/customerGateway:CustomerGateway": f"customer gateway: {_NO_CHARGE}",
    "aws:ec2/vpnConnectionRoute:VpnConnectionRoute": f"VPN static route: {_NO_CHARGE}",
    "aws:directconnect/gatewayAssociation:GatewayAssociation": "Direct Connect: orthgate only "
    "associates the operator's existing gateway; the association has no charge, port-hours and "
    "transfer are billed on the connection, outside this stack",
    "aws:ec2clientvpn/authorizationRule:AuthorizationRule": f"Client VPN rule: {_NO_CHARGE}",
    "aws:ec2clientvpn/route:Route": f"Client VPN route: {_NO_CHARGE}",
    "aws:acm/certificate:Certificate": "ACM certificate imported for Client VPN: no charge for "
    "imported certificates",
    "aws:iam/role:Role": "IAM: no charge",
    "aws:iam/rolePolicy:RolePolicy": "IAM: no charge",
    "aws:iam/instanceProfile:InstanceProfile": "IAM: no charge",
    "aws:kms/alias:Alias": f"KMS alias: {_NO_CHARGE} (the key is priced)",
    "aws:lb/listener:Listener": "listener: priced with its load balancer",
    "aws:lb/targetGroup:TargetGroup": "target group: priced with its load balancer",
    "aws:rds/parameterGroup:ParameterGroup": f"DB parameter group: {_NO_CHARGE}",
    "aws:rds/subnetGroup:SubnetGroup": f"DB subnet group: {_NO_CHARGE}",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": "bucket setting: "
    f"{_NO_CHARGE}",
    "aws:s3/bucketLogging:BucketLogging": "bucket setting: the logs are priced at their bucket",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": f"bucket setting: {_NO_CHARGE}",
    "aws:s3/bucketPolicy:BucketPolicy": f"bucket policy: {_NO_CHARGE}",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": f"bucket setting: {_NO_CHARGE}",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        "bucket setting: KMS requests are billed per call, not estimated here"
    ),
    "aws:s3/bucketVersioning:BucketVersioning": "bucket setting: old versions count as the "
    "bucket's storage",
    "aws:secretsmanager/secretVersion:SecretVersion": "secret version: priced with its secret",
    "aws:sns/topic:Topic": "SNS topic: no charge for the topic; a few alarm e-mails a month are "
    "within SNS's free tier (unverified)",
    "aws:sns/topicSubscription:TopicSubscription": f"SNS subscription: {_NO_CHARGE}",
    "tls:index/privateKey:PrivateKey": _LOCAL,
    "tls:index/certRequest:CertRequest": _LOCAL,
    "tls:index/selfSignedCert:SelfSignedCert": _LOCAL,
    "tls:index/locallySignedCert:LocallySignedCert": _LOCAL,
    "random:index/randomPassword:RandomPassword": _LOCAL,
    "random:index/randomId:RandomId": _LOCAL,
}


def is_accounted_for(type_token: str) -> bool:
    """Priced, listed as free, or not a cloud resource at all (a component, the stack)."""
    return (
        type_token in PRICING_RULES
        or type_token in FREE_TYPES
        or type_token.startswith(("orthgate:", "pulumi:"))
    )


# --- the estimate ----------------------------------------------------------------------------


def estimate(
    evaluation: Evaluation,
    settings: Settings,
    region: str,
    assumptions: CostAssumptions | None = None,
) -> CostEstimate:
    """Price every resource ``evaluation`` declared, at ``region``'s prices in the table."""
    assumptions = assumptions or CostAssumptions()
    table = price_table()
    if region not in table["regions"]:
        raise UnknownRegionError(
            f"the price table ({PRICE_TABLE}, dated {table['date']}) has no prices for "
            f"{region!r}; it has {', '.join(table_regions())}. Add the region's prices to the "
            "table, or price with one of these as an approximation"
        )
    prices = _Prices(region, table["regions"][region])
    by_id = {r.id: r for r in evaluation.resources if r.id}
    logged = frozenset(
        str(r.inputs.get("targetBucket"))
        for r in evaluation.of_type("aws:s3/bucketLogging:BucketLogging")
    )
    lines: list[CostLine] = []

    # The engine registers resources in no fixed order: sort, so two plans of one stack
    # print the same lines in the same order (and `orthgate diff` compares like with like).
    def component(resource: Declared) -> str:
        top = evaluation.top_component(resource)
        return top.name if top is not None else "stack"

    ordered = sorted(evaluation.resources, key=lambda r: (component(r), r.name, r.type))
    for resource in ordered:
        token = resource.type
        if token in FREE_TYPES or token.startswith(("orthgate:", "pulumi:")):
            continue
        ctx = _Context(resource, component(resource), prices, settings, assumptions, by_id,
                       logged)  # fmt: skip
        rule = PRICING_RULES.get(token)
        if rule is None:
            lines.append(_unpriced(ctx, token, f"no pricing rule for {token} in orthgate.costs"))
        else:
            lines.extend(rule(ctx))
    used = {line.source for line in lines if line.source}
    sources = {key: value for key, value in table["sources"].items() if key in used}
    return CostEstimate(region, table["date"], sources, assumptions, lines)


# --- the terminal view -----------------------------------------------------------------------


def render_costs(estimate: CostEstimate) -> str:
    """The estimate as a table per component, with its date, sources and assumptions."""
    out = [f"Monthly cost estimate, {estimate.region} (USD, on-demand list prices)"]
    width = min(max((len(line.item) for line in estimate.lines), default=20), 44)
    for component, lines in estimate.by_component().items():
        out.append("")
        out.append(f"{component}: ${estimate.component_totals()[component]:,.2f}")
        for line in lines:
            out.append("  " + _render_line(line, width))
    out.append("")
    missing = sorted({line.item for line in estimate.unpriced})
    if missing:
        out.append(
            f"Total: at least ${estimate.total_usd:,.2f} a month: {len(estimate.unpriced)} "
            f"line(s) have no price and are NOT in it ({', '.join(missing)})"
        )
    else:
        out.append(f"Total: ${estimate.total_usd:,.2f} a month")
    if estimate.unverified:
        out.append(
            f"* {len(estimate.unverified)} line(s) use a price no source confirmed for this "
            "region (`orthgate plan --json` gives each line's note); check them before "
            "relying on the total"
        )
    if estimate.unpriced:
        out.append("! no price in the table: left out of the total, never counted as zero")
    out.append("~ usage-based: the quantity is an assumption (orthgate.costs.CostAssumptions)")
    out.append("")
    out.append("Assumptions: " + "; ".join(estimate.assumptions.stated()))
    out.append(
        f"Price table dated {estimate.date}. Sources it cites for the lines above (a line "
        "without * has a figure one of them states for the region; * lines are recalled "
        "figures the table could not confirm):"
    )
    out.extend(f"  [{key}] {source['url']}" for key, source in estimate.sources.items())
    return "\n".join(out)


def _render_line(line: CostLine, width: int) -> str:
    if line.unit_price is None:
        return f"! {line.item:<{width}}  {line.note}"
    mark = ("~" if line.usage_based else " ") + (" " if line.verified else "*")
    text = (
        f"{mark} {line.item:<{width}}  {line.quantity:>10,.2f} {line.unit:<17} "
        f"x ${line.unit_price:<8g} = ${line.monthly_usd:>9,.2f}  [{line.source}]"
    )
    # Why a price is unverified is in --json (each line's note); the mark says that it is.
    shown = line.note.split("unverified", 1)[0].rstrip("; ")
    return text + (f"  {shown}" if shown else "")
