"""Rules that need more than one resource: flow logs per VPC, what every bucket has,
TLS through the parameter group, placement, and where DICOM security groups sit."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pulumi_policy import StackValidationArgs

from orthgate_policy.base import stack_policy
from orthgate_policy.encryption import (
    INSTANCE,
    LAUNCH_TEMPLATE,
    LOG_GROUP,
    RDS_CLUSTER,
    RDS_INSTANCE,
)
from orthgate_policy.graph import Node, Stack
from orthgate_policy.ingress import DEFAULT_SECURITY_GROUP, RULE_TYPES, SECURITY_GROUP, ingress_of
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
from orthgate_policy.values import as_list, dig, is_true, is_unknown, known
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
LOAD_BALANCERS = frozenset(
    {"aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer"}
)
LISTENERS = frozenset({"aws:lb/listener:Listener", "aws:alb/listener:Listener"})
PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
CLUSTER_PARAMETER_GROUP = "aws:rds/clusterParameterGroup:ClusterParameterGroup"
# What can serve DICOM behind a security group.
DICOM_ENDPOINT_TYPES = LOAD_BALANCERS | {INSTANCE, LAUNCH_TEMPLATE, NETWORK_INTERFACE, ECS_SERVICE}
WORLD = {"0.0.0.0/0", "::/0"}


def _stack(args: StackValidationArgs) -> Stack:
    return Stack(args.resources)


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
    for bucket in stack.of_type(BUCKETS):
        name = bucket.name
        if not account_blocks and not stack.referrers(bucket, PUBLIC_ACCESS_BLOCK, "bucket"):
            yield (f"bucket {name} has no public access block (FSBP S3.8)", bucket.urn)
        policies = stack.referrers(bucket, BUCKET_POLICY, "bucket")
        inline = bucket.props.get("policy")
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


def _bucket_encryption(stack: Stack, bucket: Node) -> Iterator[Finding]:
    configs = stack.referrers(bucket, ENCRYPTION, "bucket")
    rules = [r for c in configs for r in as_list(c.props.get("rules"))]
    rules += as_list(dig(bucket.props, "serverSideEncryptionConfiguration.rule"))
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
# https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/PostgreSQL.Concepts.General.SSL.html).
FORCE_SSL_DEFAULT_FROM_POSTGRES = 15


def _tls_parameter(family: str) -> tuple[str, set[str]] | None:
    family = family.lower()
    if family.startswith(("postgres", "aurora-postgresql", "sqlserver")):
        return "rds.force_ssl", {"1"}
    if family.startswith(("mysql", "aurora-mysql", "mariadb")):
        return "require_secure_transport", {"1", "on"}
    return None


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
    for database, prop, group_type in databases:
        engine = str(known(database.props.get("engine"), "engine") or "")
        if _tls_parameter(engine) is None:
            continue  # Oracle and others force TLS through option groups, not checked here
        name = database.props.get(prop)
        groups = stack.targets(database, prop, group_type)
        if not groups:
            if name and not is_unknown(name) and name in trusted:
                continue
            if not name and _postgres_major(database) >= FORCE_SSL_DEFAULT_FROM_POSTGRES:
                continue
            where = (
                f"parameter group {name!r}, which this stack does not declare"
                if name
                else "the default parameter group"
            )
            yield (
                f"{database.name} uses {where}, so TLS cannot be shown to be forced; declare "
                "a parameter group that forces it (or list a checked one in "
                "trustedParameterGroups)",
                database.urn,
            )
            continue
        for group in groups:
            yield from _group_forces_tls(database, group)


def _postgres_major(database: Node) -> int:
    if str(database.props.get("engine")) != "postgres":
        return 0
    version = str(known(database.props.get("engineVersion"), "engineVersion") or "")
    match = re.match(r"(\d+)", version)
    return int(match.group(1)) if match else 0


def _group_forces_tls(database: Node, group: Node) -> Iterator[Finding]:
    family = str(known(group.props.get("family"), "family") or "")
    wanted = _tls_parameter(family)
    if wanted is None:
        return
    parameter, values = wanted
    for item in as_list(group.props.get("parameters")):
        if dig(item, "name") == parameter:
            value = item.get("value")
            if is_unknown(value) or str(value).lower() in values:
                return
    yield (
        f"{database.name}'s parameter group {group.name} does not set {parameter} to "
        f"{sorted(values)[0]}: clients could connect without TLS",
        database.urn,
    )


def _routes_to_internet(stack: Stack, table: Node) -> bool:
    routes = [r for r in as_list(table.props.get("routes")) if isinstance(r, dict)]
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


def _public_subnets(stack: Stack) -> set[str]:
    """URNs of subnets whose route table sends 0.0.0.0/0 to an internet gateway."""
    public = set()
    for association in stack.of_type(ROUTE_TABLE_ASSOCIATION):
        tables = stack.targets(association, "routeTableId", ROUTE_TABLE)
        if any(_routes_to_internet(stack, t) for t in tables):
            public |= {s.urn for s in stack.targets(association, "subnetId", SUBNET)}
    return public


def check_private_placement(args: StackValidationArgs) -> Iterator[Finding]:
    stack = _stack(args)
    public = _public_subnets(stack)
    for subnet in stack.of_type(SUBNET):
        if subnet.urn not in public and is_true(subnet.props.get("mapPublicIpOnLaunch")):
            yield (
                f"private subnet {subnet.name} assigns public IPs on launch (FSBP EC2.15): "
                "set mapPublicIpOnLaunch=false",
                subnet.urn,
            )
    for template in stack.of_type(LAUNCH_TEMPLATE):
        interfaces = as_list(template.props.get("networkInterfaces"))
        if not any(is_true(dig(i, "associatePublicIpAddress")) for i in interfaces):
            continue
        users = stack.referrers(template, AUTOSCALING_GROUP, "launchTemplate")
        subnets = [s for g in users for s in stack.targets(g, "vpcZoneIdentifiers", SUBNET)]
        subnets += [
            s
            for i in stack.referrers(template, INSTANCE, "launchTemplate")
            for s in stack.targets(i, "subnetId", SUBNET)
        ]
        private = [s.name for s in subnets if s.urn not in public]
        if private:
            yield (
                f"launch template {template.name} asks for a public IP (FSBP EC2.25) but launches "
                f"into private subnet(s) {', '.join(sorted(set(private)))}",
                template.urn,
            )
    for instance in stack.of_type(INSTANCE):
        if not is_true(instance.props.get("associatePublicIpAddress")):
            continue
        private = [
            s.name for s in stack.targets(instance, "subnetId", SUBNET) if s.urn not in public
        ]
        if private:
            yield (
                f"instance {instance.name} asks for a public IP (FSBP EC2.9) in private "
                f"subnet {private[0]}",
                instance.urn,
            )


def _opened_dicom_ports(stack: Stack, group: Node, settings: DicomSettings) -> set[int]:
    rules = list(ingress_of(group.type, group.props))
    for rule_node in stack.of_type(RULE_TYPES):
        if any(
            t.urn == group.urn for t in stack.targets(rule_node, "securityGroupId", SECURITY_GROUP)
        ):
            rules += list(ingress_of(rule_node.type, rule_node.props))
    return {p for r in rules for p in settings.ports if r.covers(p)}


def check_dicom_endpoints(args: StackValidationArgs) -> Iterator[Finding]:
    stack = _stack(args)
    settings = DicomSettings.from_config(args.get_config())
    dicom_listener_lbs = {
        lb.urn
        for listener in stack.of_type(LISTENERS)
        if listener.props.get("port") is not None
        and (
            is_unknown(listener.props.get("port")) or int(listener.props["port"]) in settings.ports
        )
        for lb in stack.targets(listener, "loadBalancerArn", LOAD_BALANCERS)
    }
    for group in stack.of_type(SECURITY_GROUP):
        ports = _opened_dicom_ports(stack, group, settings)
        if not ports:
            continue
        users = [n for n in stack.attached_to(group) if n.type not in RULE_TYPES]
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
        where = f"only on {others}" if others else "on nothing in this stack"
        yield (
            f"security group {group.name} opens DICOM port(s) {shown} but sits {where}; a group "
            "that opens DICOM belongs on the load balancer, host or task that serves it",
            group.urn,
        )
    for listener in stack.of_type(LISTENERS):
        port = listener.props.get("port")
        if port is None or is_unknown(port) or int(port) not in settings.plaintext_ports():
            continue
        for lb in stack.targets(listener, "loadBalancerArn", LOAD_BALANCERS):
            if not is_true(lb.props.get("internal")) and not is_unknown(lb.props.get("internal")):
                yield (
                    f"listener {listener.name} serves plaintext DICOM port {int(port)} on "
                    f"internet-facing load balancer {lb.name}; serve it on an internal one",
                    listener.urn,
                )


def check_default_group_rules(args: StackValidationArgs) -> Iterator[Finding]:
    stack = _stack(args)
    for rule in stack.of_type(RULE_TYPES):
        for group in stack.targets(rule, "securityGroupId", DEFAULT_SECURITY_GROUP):
            yield (
                f"rule {rule.name} adds to the VPC's default security group {group.name} "
                "(FSBP EC2.2)",
                rule.urn,
            )


def check_client_vpn_log_groups(args: StackValidationArgs) -> Iterator[Finding]:
    stack = _stack(args)
    for endpoint in stack.of_type(CLIENT_VPN_ENDPOINT):
        if not is_true(dig(endpoint.props, "connectionLogOptions.enabled")):
            continue  # client-vpn-endpoint-hardened reports it
        if not stack.targets(endpoint, "connectionLogOptions", LOG_GROUP):
            group = dig(endpoint.props, "connectionLogOptions.cloudwatchLogGroup")
            yield (
                f"Client VPN endpoint {endpoint.name} logs to {group!r}, a log group this stack "
                "does not declare: its encryption and retention cannot be shown",
                endpoint.urn,
            )


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
