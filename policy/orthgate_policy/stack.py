"""Rules that need more than one resource: flow logs per VPC, what every bucket has,
TLS through the parameter group, placement, and where DICOM security groups sit."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pulumi_policy import StackValidationArgs

from orthgate_policy.base import stack_policy
from orthgate_policy.encryption import (
    INSTANCE,
    INSTANCE_LIKE,
    LAUNCH_TEMPLATE,
    LOG_GROUP,
    RDS_CLUSTER,
    RDS_INSTANCE,
)
from orthgate_policy.graph import Node, Stack
from orthgate_policy.ingress import DEFAULT_SECURITY_GROUP, RULE_TYPES, SECURITY_GROUP, read_ingress
from orthgate_policy.settings import (
    DICOM_PROPERTIES,
    RDS_TLS_PROPERTIES,
    DicomSettings,
    schema,
    trusted_parameter_groups,
)
from orthgate_policy.storage import (
    ACCOUNT_PUBLIC_ACCESS_BLOCK,
    BUCKET_POLICY,
    BUCKETS,
    ENCRYPTION,
    LOGGING,
    PUBLIC_ACCESS_BLOCK,
    VERSIONING,
    denies_insecure_transport,
    missing_public_access_flags,
)
from orthgate_policy.values import (
    UnknownValueError,
    as_list,
    dig,
    is_true,
    is_unknown,
    items,
    known,
)
from orthgate_policy.vpn import CLIENT_VPN_ENDPOINT

Finding = tuple[str, str | None]

VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
SUBNET = "aws:ec2/subnet:Subnet"
ROUTE = "aws:ec2/route:Route"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ROUTE_TABLE_ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
INTERNET_GATEWAY = "aws:ec2/internetGateway:InternetGateway"
AUTOSCALING_GROUP = "aws:autoscaling/group:Group"
NETWORK_INTERFACE = "aws:ec2/networkInterface:NetworkInterface"
ECS_SERVICE = "aws:ecs/service:Service"
INTERFACE_SG_ATTACHMENT = (
    "aws:ec2/networkInterfaceSecurityGroupAttachment:NetworkInterfaceSecurityGroupAttachment"
)
CLASSIC_LOAD_BALANCER = "aws:elb/loadBalancer:LoadBalancer"
LOAD_BALANCERS = frozenset(
    {"aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer"}
)
LISTENERS = frozenset({"aws:lb/listener:Listener", "aws:alb/listener:Listener"})
PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
CLUSTER_PARAMETER_GROUP = "aws:rds/clusterParameterGroup:ClusterParameterGroup"
# What can serve DICOM behind a security group.
DICOM_ENDPOINT_TYPES = (
    LOAD_BALANCERS
    | INSTANCE_LIKE
    | {LAUNCH_TEMPLATE, NETWORK_INTERFACE, INTERFACE_SG_ATTACHMENT, ECS_SERVICE}
    | {CLASSIC_LOAD_BALANCER}
)
WORLD = {"0.0.0.0/0", "::/0"}


def _stack(args: StackValidationArgs) -> Stack:
    return Stack(args.resources)


def _each(nodes: Iterable[Any], judge: Callable[[Any], Iterable[Finding]]) -> Iterator[Finding]:
    """``judge`` on every node; a node with a value unknown at preview is judged at update
    without holding back the findings on the others."""
    postponed: UnknownValueError | None = None
    for node in nodes:
        try:
            yield from judge(node)
        except UnknownValueError as error:
            postponed = postponed or error
    if postponed is not None:
        raise postponed


def check_flow_logs(args: StackValidationArgs) -> Iterator[Finding]:
    stack = _stack(args)
    for vpc in stack.of_type(VPC):
        if not stack.referrers(vpc, FLOW_LOG, "vpcId"):
            yield (f"VPC {vpc.name} has no flow log: declare aws.ec2.FlowLog with vpcId", vpc.urn)


def check_buckets(args: StackValidationArgs) -> Iterator[Finding]:
    stack = _stack(args)
    account_blocks = [
        n
        for n in stack.of_type(ACCOUNT_PUBLIC_ACCESS_BLOCK)
        if not missing_public_access_flags(n.props)
    ]

    def judge(bucket: Node) -> Iterator[Finding]:
        name = bucket.name
        if not account_blocks and not stack.referrers(bucket, PUBLIC_ACCESS_BLOCK, "bucket"):
            yield (f"bucket {name} has no public access block (FSBP S3.8)", bucket.urn)
        policies = stack.referrers(bucket, BUCKET_POLICY, "bucket")
        inline = known(bucket.props.get("policy"), "policy") if not policies else None
        if not policies and not (inline and denies_insecure_transport(inline)):
            yield (
                f"bucket {name} has no bucket policy refusing plain HTTP (FSBP S3.5)",
                bucket.urn,
            )
        versioned = stack.referrers(bucket, VERSIONING, "bucket") or is_true(
            dig(bucket.props, "versioning.enabled")
        )
        if not versioned:
            yield (f"bucket {name} has no versioning (Security Hub S3.14)", bucket.urn)
        yield from _bucket_encryption(stack, bucket)

    yield from _each(stack.of_type(BUCKETS), judge)


def _bucket_encryption(stack: Stack, bucket: Node) -> Iterator[Finding]:
    configs = stack.referrers(bucket, ENCRYPTION, "bucket")
    rules = [r for c in configs for r in as_list(c.props.get("rules"), "rules")]
    rules += as_list(dig(bucket.props, "serverSideEncryptionConfiguration.rule"), "rule")
    algorithms = {dig(r, "applyServerSideEncryptionByDefault.sseAlgorithm") for r in rules}
    if any(is_unknown(a) for a in algorithms) or algorithms & {"aws:kms", "aws:kms:dsse"}:
        return
    # AWS delivers server access logs only to buckets whose default encryption is SSE-S3
    # (S3 User Guide, "Troubleshoot server access logging":
    # https://docs.aws.amazon.com/AmazonS3/latest/userguide/troubleshooting-server-access-logging.html).
    log_target = stack.referrers(bucket, LOGGING, "targetBucket")
    if log_target and algorithms == {"AES256"}:
        return
    shown = ", ".join(sorted(str(a) for a in algorithms if a)) or "none declared (SSE-S3)"
    yield (
        f"bucket {bucket.name}'s default encryption is {shown}: use aws:kms with a customer "
        "managed key (Security Hub S3.17); only a server access log target may keep AES256",
        bucket.urn,
    )


# From PostgreSQL 15, RDS's default parameter group has rds.force_ssl = 1 (RDS User Guide,
# "Using SSL with a PostgreSQL DB instance":
# https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/PostgreSQL.Concepts.General.SSL.html),
# and a custom group of family postgres15+ inherits it unless it sets the parameter.
FORCE_SSL_DEFAULT_FROM_POSTGRES = 15


def _tls_parameter(family: str) -> tuple[str, set[str]] | None:
    family = family.lower()
    if family.startswith(("postgres", "aurora-postgresql", "sqlserver")):
        return "rds.force_ssl", {"1"}
    # "aurora" alone is the first Aurora MySQL engine.
    if family.startswith(("mysql", "aurora-mysql", "mariadb")) or family in ("aurora", "aurora5.6"):
        return "require_secure_transport", {"1", "on"}
    return None


def _major(text: str, prefix: str) -> int:
    match = re.match(rf"{re.escape(prefix)}(\d+)", text)
    return int(match.group(1)) if match else 0


def check_rds_tls(args: StackValidationArgs) -> Iterator[Finding]:
    stack = _stack(args)
    trusted = trusted_parameter_groups(args.get_config())
    databases = [
        (n, "parameterGroupName", PARAMETER_GROUP)
        for n in stack.of_type(RDS_INSTANCE)
        if not str(n.props.get("engine") or "").startswith("aurora")
    ] + [
        (n, "dbClusterParameterGroupName", CLUSTER_PARAMETER_GROUP)
        for n in stack.of_type(RDS_CLUSTER)
    ]

    def judge(entry: tuple[Node, str, str]) -> Iterator[Finding]:
        database, prop, group_type = entry
        engine = str(known(database.props.get("engine"), "engine") or "")
        if _tls_parameter(engine) is None:
            return  # Oracle and others force TLS through option groups, not checked here
        name = database.props.get(prop)
        groups = stack.targets(database, prop, group_type)
        if groups:
            for group in groups:
                yield from _group_forces_tls(database, group)
            return
        name = known(name, prop)
        if name and name in trusted:
            return
        default = not name or str(name).startswith("default.")
        if default and _postgres_major(database) >= FORCE_SSL_DEFAULT_FROM_POSTGRES:
            return
        where = (
            f"parameter group {name!r}, which this stack does not declare"
            if not default
            else "the default parameter group"
        )
        yield (
            f"{database.name} uses {where}, so TLS cannot be shown to be forced; declare "
            "a parameter group that forces it (or list a checked one in "
            "trustedParameterGroups)",
            database.urn,
        )

    yield from _each(databases, judge)


def _postgres_major(database: Node) -> int:
    if str(database.props.get("engine")) != "postgres":
        return 0
    version = str(known(database.props.get("engineVersion"), "engineVersion") or "")
    return _major(version, "")


def _group_forces_tls(database: Node, group: Node) -> Iterator[Finding]:
    family = str(known(group.props.get("family"), "family") or "")
    wanted = _tls_parameter(family)
    if wanted is None:
        return
    parameter, values = wanted
    for item in items(group.props.get("parameters"), "parameters"):
        if dig(item, "name") == parameter:
            value = item.get("value")
            if is_unknown(value) or str(value).strip().lower() in values:
                return
            break  # set, to something else
    else:
        if _major(family.lower(), "postgres") >= FORCE_SSL_DEFAULT_FROM_POSTGRES:
            return  # not set: the family's default, 1
    yield (
        f"{database.name}'s parameter group {group.name} does not set {parameter} to "
        f"{sorted(values)[0]}: clients could connect without TLS",
        database.urn,
    )


def _routes_to_internet(stack: Stack, table: Node) -> bool:
    routes = [r for r in as_list(table.props.get("routes"), "routes") if isinstance(r, dict)]
    routes += [n.props for n in stack.referrers(table, ROUTE, "routeTableId")]
    for route in routes:
        destination = (
            route.get("destinationCidrBlock")
            or route.get("cidrBlock")
            or route.get("destinationIpv6CidrBlock")
            or route.get("ipv6CidrBlock")
        )
        gateway = route.get("gatewayId")
        if (
            destination in WORLD
            and gateway
            and (is_unknown(gateway) or str(gateway).startswith("igw-"))
        ):
            return True
    return False


def _placement(stack: Stack) -> tuple[set[str], set[str]]:
    """URNs of (public, private) subnets, from their explicit route table associations:
    public when the table sends 0.0.0.0/0 to an internet gateway. A subnet without an
    association uses its VPC's main table, which the pack may not see: neither."""
    public: set[str] = set()
    private: set[str] = set()
    for association in stack.of_type(ROUTE_TABLE_ASSOCIATION):
        tables = stack.targets(association, "routeTableId", ROUTE_TABLE)
        subnets = {s.urn for s in stack.targets(association, "subnetId", SUBNET)}
        if any(_routes_to_internet(stack, t) for t in tables):
            public |= subnets
        elif tables:
            private |= subnets
    return public, private - public


def check_private_placement(args: StackValidationArgs) -> Iterator[Finding]:
    stack = _stack(args)
    _, private = _placement(stack)
    for subnet in stack.of_type(SUBNET):
        if subnet.urn in private and is_true(subnet.props.get("mapPublicIpOnLaunch")):
            yield (
                f"private subnet {subnet.name} assigns public IPs on launch (FSBP EC2.15): "
                "set mapPublicIpOnLaunch=false",
                subnet.urn,
            )

    def judge_template(template: Node) -> Iterator[Finding]:
        interfaces = as_list(template.props.get("networkInterfaces"), "networkInterfaces")
        if not any(is_true(dig(i, "associatePublicIpAddress")) for i in interfaces):
            return
        users = stack.referrers(template, AUTOSCALING_GROUP, "launchTemplate")
        subnets = [s for g in users for s in stack.targets(g, "vpcZoneIdentifiers", SUBNET)]
        subnets += [
            s
            for i in stack.referrers(template, INSTANCE, "launchTemplate")
            for s in stack.targets(i, "subnetId", SUBNET)
        ]
        inside = sorted({s.name for s in subnets if s.urn in private})
        if inside:
            yield (
                f"launch template {template.name} asks for a public IP (FSBP EC2.25) but "
                f"launches into private subnet(s) {', '.join(inside)}",
                template.urn,
            )

    def judge_instance(instance: Node) -> Iterator[Finding]:
        if not is_true(instance.props.get("associatePublicIpAddress")):
            return
        inside = [s.name for s in stack.targets(instance, "subnetId", SUBNET) if s.urn in private]
        if inside:
            yield (
                f"instance {instance.name} asks for a public IP (FSBP EC2.9) in private "
                f"subnet {inside[0]}",
                instance.urn,
            )

    yield from _each(stack.of_type(LAUNCH_TEMPLATE), judge_template)
    yield from _each(stack.of_type(INSTANCE_LIKE), judge_instance)


# A rule "opens a DICOM port" when it names it: a port or a short range around it. A wide
# range (all traffic from an application group, 1024-65535 for a Lambda) covers DICOM
# ports without being about DICOM; dicom-ingress-restricted still judges its sources.
WIDEST_DICOM_RULE = 16


def _opened_dicom_ports(stack: Stack, group: Node, settings: DicomSettings) -> set[int]:
    rules, _ = read_ingress(group.type, group.props)
    for rule_node in stack.of_type(RULE_TYPES):
        if any(
            t.urn == group.urn for t in stack.targets(rule_node, "securityGroupId", SECURITY_GROUP)
        ):
            rules += read_ingress(rule_node.type, rule_node.props)[0]
    return {p for r in rules if r.span <= WIDEST_DICOM_RULE for p in settings.ports if r.covers(p)}


def _port_number(value: Any) -> int | None:
    if value is None or is_unknown(value):
        return None
    return int(float(value))


def check_dicom_endpoints(args: StackValidationArgs) -> Iterator[Finding]:
    stack = _stack(args)
    settings = DicomSettings.from_config(args.get_config())
    dicom_listener_lbs = {
        lb.urn
        for listener in stack.of_type(LISTENERS)
        if is_unknown(listener.props.get("port"))
        or _port_number(listener.props.get("port")) in settings.ports
        for lb in stack.targets(listener, "loadBalancerArn", LOAD_BALANCERS)
    }
    for group in stack.of_type(SECURITY_GROUP):
        ports = _opened_dicom_ports(stack, group, settings)
        users = [n for n in stack.attached_to(group) if n.type not in RULE_TYPES]
        if not ports or not users:
            continue  # unattached here: it may serve a program of another stack
        endpoints = [
            n
            for n in users
            if n.type in DICOM_ENDPOINT_TYPES
            and (n.type not in LOAD_BALANCERS or n.urn in dicom_listener_lbs)
        ]
        if endpoints:
            continue
        shown = ", ".join(str(p) for p in sorted(ports))
        others = ", ".join(sorted({f"{n.name} ({n.type.split(':')[-1]})" for n in users}))
        yield (
            f"security group {group.name} opens DICOM port(s) {shown} but sits only on "
            f"{others}; a group that opens DICOM belongs on the load balancer, host or task "
            "that serves it",
            group.urn,
        )
    yield from _plaintext_listeners(stack, settings)


def _internet_facing(lb: Node) -> bool:
    internal = lb.props.get("internal")
    return not is_unknown(internal) and not is_true(internal)


def _plaintext_listeners(stack: Stack, settings: DicomSettings) -> Iterator[Finding]:
    plaintext = settings.plaintext_ports()
    for listener in stack.of_type(LISTENERS):
        port = _port_number(listener.props.get("port"))
        protocol = str(listener.props.get("protocol") or "").upper()
        if port not in plaintext or protocol in ("TLS", "HTTPS"):
            continue  # a TLS listener terminates TLS: DICOM TLS to the Internet
        for lb in stack.targets(listener, "loadBalancerArn", LOAD_BALANCERS):
            if _internet_facing(lb):
                yield (
                    f"listener {listener.name} serves plaintext DICOM port {port} on "
                    f"internet-facing load balancer {lb.name}; serve it on an internal one",
                    listener.urn,
                )
    for lb in stack.of_type(CLASSIC_LOAD_BALANCER):
        if not _internet_facing(lb):
            continue
        for entry in as_list(lb.props.get("listeners"), "listeners"):
            port = _port_number(dig(entry, "lbPort"))
            protocol = str(dig(entry, "lbProtocol") or "").upper()
            if port in plaintext and protocol not in ("SSL", "HTTPS"):
                yield (
                    f"classic load balancer {lb.name} serves plaintext DICOM port {port} "
                    "to the Internet; serve it on an internal one",
                    lb.urn,
                )


def check_default_group_rules(args: StackValidationArgs) -> Iterator[Finding]:
    stack = _stack(args)
    groups = {SECURITY_GROUP, DEFAULT_SECURITY_GROUP}
    for rule in stack.of_type(RULE_TYPES):
        for group in stack.targets(rule, "securityGroupId", DEFAULT_SECURITY_GROUP):
            yield (
                f"rule {rule.name} adds to the VPC's default security group {group.name} "
                "(FSBP EC2.2)",
                rule.urn,
            )
        # vpc.default_security_group_id: the only security group a VPC's outputs name.
        vpcs = stack.targets(rule, "securityGroupId", VPC)
        if vpcs and not stack.targets(rule, "securityGroupId", groups):
            yield (
                f"rule {rule.name} adds to the default security group of VPC {vpcs[0].name} "
                "(FSBP EC2.2)",
                rule.urn,
            )
    for vpc in stack.of_type(VPC):
        if not stack.referrers(vpc, DEFAULT_SECURITY_GROUP, "vpcId"):
            yield (
                f"VPC {vpc.name}'s default security group is not managed, so it keeps AWS's "
                "allow-all rules; declare aws.ec2.DefaultSecurityGroup with no rules (FSBP EC2.2)",
                vpc.urn,
            )


def check_client_vpn_log_groups(args: StackValidationArgs) -> Iterator[Finding]:
    stack = _stack(args)

    def judge(endpoint: Node) -> Iterator[Finding]:
        if not is_true(dig(endpoint.props, "connectionLogOptions.enabled")):
            return  # client-vpn-endpoint-hardened reports it
        if not stack.targets(endpoint, "connectionLogOptions", LOG_GROUP):
            group = known(
                dig(endpoint.props, "connectionLogOptions.cloudwatchLogGroup"),
                "connectionLogOptions.cloudwatchLogGroup",
            )
            yield (
                f"Client VPN endpoint {endpoint.name} logs to {group!r}, a log group this "
                "stack does not declare: its encryption and retention cannot be shown",
                endpoint.urn,
            )

    yield from _each(stack.of_type(CLIENT_VPN_ENDPOINT), judge)


VPC_FLOW_LOGS = stack_policy(
    "vpc-flow-logs",
    "Every VPC has a flow log. From: FSBP EC2.6.",
    check_flow_logs,
    remediation="Declare aws.ec2.FlowLog(vpc_id=..., traffic_type='ALL') to an encrypted "
    "log group.",
)
S3_BUCKETS = stack_policy(
    "s3-bucket-safeguards",
    "Every S3 bucket has a complete public access block, a TLS-only policy, versioning and "
    "KMS default encryption (SSE-S3 only for server access log targets, as AWS requires). "
    "From: FSBP S3.8, S3.5; Security Hub S3.14, S3.17 (NIST 800-53).",
    check_buckets,
    remediation="Declare BucketPublicAccessBlock, BucketPolicy, BucketVersioning and "
    "BucketServerSideEncryptionConfiguration for the bucket.",
)
RDS_TLS = stack_policy(
    "rds-tls-forced",
    "RDS databases force TLS through their parameter group (rds.force_ssl or "
    "require_secure_transport). From: HIPAA 164.312(e)(1), FSBP RDS.41/RDS.44 for SQL "
    "Server and MariaDB.",
    check_rds_tls,
    config_schema=schema(RDS_TLS_PROPERTIES),
    remediation="Declare an aws.rds.ParameterGroup with rds.force_ssl=1 (PostgreSQL) or "
    "require_secure_transport=ON (MySQL) and name it in parameterGroupName.",
)
PRIVATE_PLACEMENT = stack_policy(
    "ec2-no-public-ip-on-private-placement",
    "Nothing placed in a private subnet gets a public IP, and private subnets do not "
    "assign them. From: FSBP EC2.9, EC2.15, EC2.25.",
    check_private_placement,
    remediation="Set associatePublicIpAddress=false and mapPublicIpOnLaunch=false.",
)
DICOM_ENDPOINTS = stack_policy(
    "dicom-security-groups-on-dicom-endpoints",
    "A security group that opens a DICOM port sits on a load balancer with a DICOM "
    "listener, a host, a network interface or a task; no plaintext DICOM listener is "
    "internet-facing. From: orthgate README (security groups limit every DICOM port).",
    check_dicom_endpoints,
    config_schema=schema(DICOM_PROPERTIES),
    remediation="Move the DICOM rules to the group of what serves DICOM; put plaintext "
    "DICOM listeners on an internal load balancer.",
)
DEFAULT_GROUP_RULES = stack_policy(
    "default-security-group-no-added-rules",
    "No rule resource adds to a VPC's default security group. From: FSBP EC2.2.",
    check_default_group_rules,
    remediation="Attach the rule to a security group of its own.",
)
CLIENT_VPN_LOGS = stack_policy(
    "client-vpn-logs-declared",
    "Every Client VPN endpoint logs connections to a log group the stack declares. From: "
    "FSBP EC2.51.",
    check_client_vpn_log_groups,
    remediation="Declare the aws.cloudwatch.LogGroup (with kmsKeyId) and pass its name.",
)

POLICIES = [
    VPC_FLOW_LOGS,
    S3_BUCKETS,
    RDS_TLS,
    PRIVATE_PLACEMENT,
    DICOM_ENDPOINTS,
    DEFAULT_GROUP_RULES,
    CLIENT_VPN_LOGS,
]
