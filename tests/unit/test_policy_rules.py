"""Each policy of the CrossGuard pack: a seeded violation it catches, a near miss it lets
pass, and what it does with values unknown at preview."""

from __future__ import annotations

import copy
import json

import pytest
from pulumi_policy.proxy import UnknownValueError

from tests.harness.policy_calls import UNKNOWN, StackBuilder, check, check_preview

SG = "aws:ec2/securityGroup:SecurityGroup"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"


def ingress_rule(port: int, cidr: str | None = None, **extra) -> dict:
    rule = {"ipProtocol": "tcp", "fromPort": port, "toPort": port, "securityGroupId": "sg-1"}
    if cidr:
        rule["cidrIpv6" if ":" in cidr else "cidrIpv4"] = cidr
    return {**rule, **extra}


# --- DICOM ingress ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("port", "cidr"),
    [
        (4242, "10.0.0.0/8"),  # plaintext from RFC 1918: the near miss
        (104, "192.168.10.0/24"),
        (2762, "172.16.0.0/12"),
        (11112, "203.0.113.64/28"),  # the TLS port from a site's own public range
        (11112, "2001:db8:1234::/48"),
        (4242, "fd00:1::/64"),  # IPv6 unique local
        (8042, "0.0.0.0/0"),  # not a DICOM port (and not this policy's business)
    ],
)
def test_dicom_ingress_allows_private_plaintext_and_narrow_tls(port, cidr):
    assert check("dicom-ingress-restricted", INGRESS, ingress_rule(port, cidr)) == []


@pytest.mark.parametrize(
    ("port", "cidr", "says"),
    [
        (4242, "0.0.0.0/0", "the whole Internet"),
        (4242, "8.8.8.0/24", "Internet-routable"),
        (11112, "0.0.0.0/0", "the whole Internet"),
        (11112, "::/0", "the whole Internet"),
        (104, "100.64.0.0/10", "Internet-routable"),  # CGNAT is not RFC 1918
        (2762, "198.51.100.7/32", "Internet-routable"),
        (11112, "0.0.0.0/1", "wider than /8"),  # half the Internet in one rule
        (11112, "2001::/16", "wider than /32"),
    ],
)
def test_dicom_ingress_refuses_the_world_and_routable_plaintext(port, cidr, says):
    found = check("dicom-ingress-restricted", INGRESS, ingress_rule(port, cidr))
    assert len(found) == 1
    assert says in found[0]
    assert cidr in found[0]


def test_every_rule_shape_is_read():
    inline = {
        "ingress": [
            {"protocol": "tcp", "fromPort": 4242, "toPort": 4242, "cidrBlocks": ["10.1.0.0/16"]},
            {"protocol": "6", "fromPort": 4000, "toPort": 5000, "cidrBlocks": ["8.8.8.0/24"]},
            {"protocol": "tcp", "fromPort": 104, "toPort": 104, "securityGroups": ["sg-2"]},
        ]
    }
    found = check("dicom-ingress-restricted", SG, inline)
    assert len(found) == 1
    assert found[0].startswith("ingress[1]")
    assert "4242" in found[0]
    legacy = {"type": "ingress", "protocol": "-1", "fromPort": 0, "toPort": 0}
    assert (
        check("dicom-ingress-restricted", SG_RULE, {**legacy, "cidrBlocks": ["10.0.0.0/8"]}) == []
    )
    found = check("dicom-ingress-restricted", SG_RULE, {**legacy, "ipv6CidrBlocks": ["::/0"]})
    assert len(found) == 1
    assert "104, 2762, 4242, 11112" in found[0]
    egress = {**legacy, "type": "egress", "cidrBlocks": ["0.0.0.0/0"]}
    assert check("dicom-ingress-restricted", SG_RULE, egress) == []
    default = {"ingress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "self": True}]}
    assert check("dicom-ingress-restricted", DEFAULT_SG, default) == []  # self: a group


def test_all_traffic_rules_cover_dicom_and_udp_does_not_matter_less():
    everything = {"ipProtocol": "-1", "cidrIpv4": "0.0.0.0/0", "securityGroupId": "sg-1"}
    assert "the whole Internet" in check("dicom-ingress-restricted", INGRESS, everything)[0]
    udp = ingress_rule(4242, "8.8.8.0/24", ipProtocol="udp")
    assert check("dicom-ingress-restricted", INGRESS, udp)  # ports are ports
    icmp = {"ipProtocol": "icmp", "fromPort": -1, "toPort": -1, "cidrIpv4": "0.0.0.0/0"}
    assert check("dicom-ingress-restricted", INGRESS, icmp) == []


def test_security_group_sources_pass_even_unknown_and_prefix_lists_need_vetting():
    by_group = ingress_rule(4242, referencedSecurityGroupId=UNKNOWN)
    assert check("dicom-ingress-restricted", INGRESS, by_group) == []
    by_list = ingress_rule(4242, prefixListId="pl-0123")
    assert "pl-0123" in check("dicom-ingress-restricted", INGRESS, by_list)[0]
    vetted = {"allowedPrefixListIds": ["pl-0123"]}
    assert check("dicom-ingress-restricted", INGRESS, by_list, vetted) == []


def test_an_unknown_source_range_is_not_guessed():
    with pytest.raises(UnknownValueError):
        check("dicom-ingress-restricted", INGRESS, ingress_rule(4242, UNKNOWN))


def test_the_stacks_tls_port_and_private_ranges_come_from_the_config():
    moved = {"dicomTlsPort": 2762}
    # 2762 is now the TLS port, 11112 plain (still a DICOM port by default).
    assert (
        check("dicom-ingress-restricted", INGRESS, ingress_rule(2762, "198.51.100.0/24"), moved)
        == []
    )
    found = check(
        "dicom-ingress-restricted", INGRESS, ingress_rule(11112, "198.51.100.0/24"), moved
    )
    assert "plaintext" in found[0]
    custom = {"dicomPorts": [], "dicomTlsPort": 6000}
    assert check("dicom-ingress-restricted", INGRESS, ingress_rule(6000, "0.0.0.0/0"), custom)
    assert check("dicom-ingress-restricted", INGRESS, ingress_rule(4242, "0.0.0.0/0"), custom) == []
    routed = {"privateCidrs": ["100.64.0.0/16"]}
    rule = ingress_rule(4242, "100.64.8.0/24")
    assert check("dicom-ingress-restricted", INGRESS, rule, routed) == []
    assert check("dicom-ingress-restricted", INGRESS, ingress_rule(4242, "100.65.0.0/24"), routed)


# --- remote administration, default group ---------------------------------------------------


@pytest.mark.parametrize("port", [22, 3389])
def test_admin_ports_are_refused_from_anywhere(port):
    found = check("no-remote-admin-ingress", INGRESS, ingress_rule(port, "10.0.0.0/8"))
    assert len(found) == 1
    assert str(port) in found[0]
    wide = ingress_rule(0, "10.0.0.0/8", fromPort=0, toPort=1024)
    assert check("no-remote-admin-ingress", INGRESS, wide)


def test_admin_ports_near_misses():
    assert check("no-remote-admin-ingress", INGRESS, ingress_rule(2222, "10.0.0.0/8")) == []
    assert check("no-remote-admin-ingress", INGRESS, ingress_rule(443, "0.0.0.0/0")) == []


def test_default_security_group_must_be_empty():
    assert check("default-security-group-closed", DEFAULT_SG, {"ingress": [], "egress": []}) == []
    egress = {
        "egress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}]
    }
    assert "egress" in check("default-security-group-closed", DEFAULT_SG, egress)[0]


def test_rules_added_to_the_default_group_are_caught_over_the_stack():
    stack = StackBuilder()
    stack.add("default", DEFAULT_SG, {"ingress": [], "egress": []})
    stack.add("own", SG, {})
    stack.add("to-own", INGRESS, ingress_rule(443, "10.0.0.0/8"), securityGroupId="own")
    assert stack.check("default-security-group-no-added-rules") == []
    stack.add("to-default", INGRESS, ingress_rule(443, "10.0.0.0/8"), securityGroupId="default")
    assert "to-default" in stack.check("default-security-group-no-added-rules")[0]


# --- encryption at rest ---------------------------------------------------------------------

LT = "aws:ec2/launchTemplate:LaunchTemplate"
ENCRYPTED_LT = {
    "metadataOptions": {"httpTokens": "required"},
    "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "true"}}],
}


def test_ebs_volumes_and_block_devices_must_be_encrypted():
    volume = "aws:ebs/volume:Volume"
    assert check("ebs-encrypted", volume, {"encrypted": True, "size": 10}) == []
    assert check("ebs-encrypted", volume, {"size": 10})
    assert check("ebs-encrypted", LT, ENCRYPTED_LT) == []
    clear = copy.deepcopy(ENCRYPTED_LT)
    clear["blockDeviceMappings"][0]["ebs"]["encrypted"] = "false"
    assert "/dev/xvda" in check("ebs-encrypted", LT, clear)[0]
    assert "maps no EBS device" in check("ebs-encrypted", LT, {"imageId": "ami-1"})[0]
    instance = "aws:ec2/instance:Instance"
    assert check("ebs-encrypted", instance, {"rootBlockDevice": {"encrypted": True}}) == []
    assert check("ebs-encrypted", instance, {"launchTemplate": {"id": "lt-1"}}) == []
    assert check("ebs-encrypted", instance, {"ami": "ami-1"})
    extra = {
        "rootBlockDevice": {"encrypted": True},
        "ebsBlockDevices": [{"deviceName": "/dev/sdf"}],
    }
    assert "ebsBlockDevices[0]" in check("ebs-encrypted", instance, extra)[0]


def test_rds_storage_must_be_encrypted():
    rds = "aws:rds/instance:Instance"
    assert (
        check("rds-storage-encrypted", rds, {"engine": "postgres", "storageEncrypted": True}) == []
    )
    assert check("rds-storage-encrypted", rds, {"engine": "postgres"})
    aurora = {"engine": "aurora-postgresql"}  # its cluster holds the storage
    assert check("rds-storage-encrypted", rds, aurora) == []
    assert check("rds-storage-encrypted", "aws:rds/cluster:Cluster", aurora)


def test_log_groups_need_a_kms_key_and_secrets_a_customer_key():
    group = "aws:cloudwatch/logGroup:LogGroup"
    assert (
        check("cloudwatch-logs-kms", group, {"kmsKeyId": "arn:aws:kms:eu-central-1:1:key/k"}) == []
    )
    assert check("cloudwatch-logs-kms", group, {"kmsKeyId": UNKNOWN}) == []  # a key, not yet made
    assert check("cloudwatch-logs-kms", group, {"retentionInDays": 365})
    secret = "aws:secretsmanager/secret:Secret"
    assert (
        check("secrets-customer-managed-key", secret, {"kmsKeyId": "arn:aws:kms:x:1:key/k"}) == []
    )
    assert check("secrets-customer-managed-key", secret, {})
    assert (
        "AWS managed"
        in check("secrets-customer-managed-key", secret, {"kmsKeyId": "alias/aws/secretsmanager"})[
            0
        ]
    )


# --- S3 ---------------------------------------------------------------------------------------

BUCKET = "aws:s3/bucket:Bucket"
TLS_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ],
}
ALL_BLOCKED = dict.fromkeys(
    ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"), True
)


def test_public_access_blocks_need_all_four_flags():
    block = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
    assert check("s3-public-access-block-complete", block, {"bucket": "b", **ALL_BLOCKED}) == []
    found = check(
        "s3-public-access-block-complete", block, {**ALL_BLOCKED, "blockPublicPolicy": False}
    )
    assert "blockPublicPolicy" in found[0]


def test_bucket_policies_must_deny_plain_http():
    policy = "aws:s3/bucketPolicy:BucketPolicy"
    assert check("s3-bucket-policy-tls-only", policy, {"policy": json.dumps(TLS_POLICY)}) == []
    allow = copy.deepcopy(TLS_POLICY)
    allow["Statement"][0]["Effect"] = "Allow"
    assert check("s3-bucket-policy-tls-only", policy, {"policy": json.dumps(allow)})
    narrow = copy.deepcopy(TLS_POLICY)
    narrow["Statement"][0]["Action"] = "s3:GetObject"  # PutObject over HTTP still works
    assert check("s3-bucket-policy-tls-only", policy, {"policy": json.dumps(narrow)})
    with pytest.raises(UnknownValueError):
        check("s3-bucket-policy-tls-only", policy, {"policy": UNKNOWN})


def test_versioning_must_be_enabled():
    versioning = "aws:s3/bucketVersioning:BucketVersioning"
    on = {"bucket": "b", "versioningConfiguration": {"status": "Enabled"}}
    assert check("s3-versioning-enabled", versioning, on) == []
    off = {"bucket": "b", "versioningConfiguration": {"status": "Suspended"}}
    assert "Suspended" in check("s3-versioning-enabled", versioning, off)[0]


def _bucket_stack(algorithm: str = "aws:kms", log_target: bool = False) -> StackBuilder:
    stack = StackBuilder()
    stack.add("b", BUCKET, {"bucket": "b"})
    stack.add(
        "b-pab",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        {"bucket": UNKNOWN, **ALL_BLOCKED},
        bucket="b",
    )
    stack.add(
        "b-policy",
        "aws:s3/bucketPolicy:BucketPolicy",
        {"bucket": UNKNOWN, "policy": UNKNOWN},
        bucket="b",
    )
    stack.add(
        "b-versioning",
        "aws:s3/bucketVersioning:BucketVersioning",
        {"bucket": UNKNOWN, "versioningConfiguration": {"status": "Enabled"}},
        bucket="b",
    )
    stack.add(
        "b-sse",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        {
            "bucket": UNKNOWN,
            "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": algorithm}}],
        },
        bucket="b",
    )
    if log_target:
        stack.add("source", BUCKET, {"bucket": "source"})
        stack.add(
            "logging",
            "aws:s3/bucketLogging:BucketLogging",
            {"bucket": UNKNOWN, "targetBucket": UNKNOWN},
            bucket="source",
            targetBucket="b",
        )
    return stack


def test_every_bucket_has_its_safeguards():
    assert _bucket_stack().check("s3-bucket-safeguards") == []
    bare = StackBuilder()
    bare.add("lonely", BUCKET, {"bucket": "lonely"})
    found = bare.check("s3-bucket-safeguards")
    assert len(found) == 4
    assert any("public access block" in f for f in found)
    assert any("plain HTTP" in f for f in found)
    assert any("versioning" in f for f in found)
    assert any("none declared (SSE-S3)" in f for f in found)


def test_sse_s3_only_on_server_access_log_targets():
    assert "AES256" in _bucket_stack("AES256").check("s3-bucket-safeguards")[0]
    stack = _bucket_stack("AES256", log_target=True)
    found = stack.check("s3-bucket-safeguards")
    # The log target passes; the source bucket lacks everything.
    assert found
    assert not any("bucket b " in f or "bucket b's" in f for f in found)


def test_buckets_are_linked_by_name_when_no_dependency_says_so():
    stack = StackBuilder()
    stack.add("b", BUCKET, {"bucket": "b"})
    stack.add(
        "pab",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        {"bucket": "b", **ALL_BLOCKED},
    )
    assert not any("public access block" in f for f in stack.check("s3-bucket-safeguards"))


# --- RDS --------------------------------------------------------------------------------------

RDS = "aws:rds/instance:Instance"
PRODUCTION_DB = {
    "engine": "postgres",
    "storageEncrypted": True,
    "publiclyAccessible": False,
    "backupRetentionPeriod": 7,
    "deletionProtection": True,
    "multiAz": True,
}


def test_rds_is_never_public():
    assert check("rds-not-public", RDS, PRODUCTION_DB) == []
    assert check("rds-not-public", RDS, {**PRODUCTION_DB, "publiclyAccessible": True})


def test_production_rds_keeps_backups_and_deletion_protection():
    policy = "rds-production-backups-and-deletion-protection"
    assert check(policy, RDS, PRODUCTION_DB) == []
    short = {**PRODUCTION_DB, "backupRetentionPeriod": 6}
    assert "6 days" in check(policy, RDS, short)[0]
    unprotected = {**PRODUCTION_DB, "deletionProtection": False}
    assert "deletionProtection" in check(policy, RDS, unprotected)[0]
    cluster = {"engine": "aurora-postgresql", "storageEncrypted": True}
    assert len(check(policy, "aws:rds/cluster:Cluster", cluster)) == 2


def test_production_is_read_from_config_then_tags_then_stack_tags():
    policy = "rds-production-backups-and-deletion-protection"
    relaxed = {**PRODUCTION_DB, "backupRetentionPeriod": 1, "deletionProtection": False}
    assert len(check(policy, RDS, relaxed)) == 2  # untagged: production
    assert check(policy, RDS, {**relaxed, "tags": {"orthgate:environment": "dev"}}) == []
    assert check(policy, RDS, {**relaxed, "tags": {"environment": "staging"}}) == []
    assert len(check(policy, RDS, {**relaxed, "tags": {"environment": "PROD"}})) == 2
    assert check(policy, RDS, relaxed, stack_tags={"environment": "dev"}) == []
    assert check(policy, RDS, relaxed, config={"production": False}) == []
    tagged_dev = {**relaxed, "tags": {"environment": "dev"}}
    assert len(check(policy, RDS, tagged_dev, config={"production": True})) == 2


def test_single_az_production_rds_is_advised_against():
    assert check("rds-multi-az-in-production", RDS, PRODUCTION_DB) == []
    assert check("rds-multi-az-in-production", RDS, {**PRODUCTION_DB, "multiAz": False})
    dev = {**PRODUCTION_DB, "multiAz": False, "tags": {"environment": "dev"}}
    assert check("rds-multi-az-in-production", RDS, dev) == []


def _database_stack(parameters: list[dict] | None, engine_version: str = "14") -> StackBuilder:
    stack = StackBuilder()
    links = {}
    if parameters is not None:
        stack.add(
            "params",
            "aws:rds/parameterGroup:ParameterGroup",
            {"family": "postgres14", "parameters": parameters},
        )
        links["parameterGroupName"] = "params"
    props = {**PRODUCTION_DB, "engineVersion": engine_version}
    if parameters is not None:
        props["parameterGroupName"] = UNKNOWN
    stack.add("db", RDS, props, **links)
    return stack


def test_rds_tls_is_forced_through_the_parameter_group():
    forced = [{"name": "rds.force_ssl", "value": "1"}]
    assert _database_stack(forced).check("rds-tls-forced") == []
    off = [{"name": "rds.force_ssl", "value": "0"}]
    assert "rds.force_ssl" in _database_stack(off).check("rds-tls-forced")[0]
    assert _database_stack([]).check("rds-tls-forced")
    assert "default parameter group" in _database_stack(None, "14.9").check("rds-tls-forced")[0]
    # From PostgreSQL 15 the default group forces TLS.
    assert _database_stack(None, "16").check("rds-tls-forced") == []


def test_an_undeclared_parameter_group_must_be_vouched_for():
    stack = StackBuilder()
    stack.add("db", RDS, {**PRODUCTION_DB, "engine": "mysql", "parameterGroupName": "shared-mysql"})
    assert "does not declare" in stack.check("rds-tls-forced")[0]
    assert stack.check("rds-tls-forced", {"trustedParameterGroups": ["shared-mysql"]}) == []


# --- EC2 --------------------------------------------------------------------------------------


def test_imdsv2_is_required():
    assert check("ec2-imdsv2-required", LT, ENCRYPTED_LT) == []
    optional = {**ENCRYPTED_LT, "metadataOptions": {"httpTokens": "optional"}}
    assert "optional" in check("ec2-imdsv2-required", LT, optional)[0]
    assert "unset" in check("ec2-imdsv2-required", "aws:ec2/instance:Instance", {"ami": "a"})[0]
    from_template = {"launchTemplate": {"id": "lt-1"}}
    assert check("ec2-imdsv2-required", "aws:ec2/instance:Instance", from_template) == []


def test_no_key_pair():
    assert check("ec2-no-key-pair", LT, ENCRYPTED_LT) == []
    assert "ops-key" in check("ec2-no-key-pair", LT, {**ENCRYPTED_LT, "keyName": "ops-key"})[0]


def _placement_stack(public_ip: bool, public_subnet: bool) -> StackBuilder:
    stack = StackBuilder()
    stack.add("igw", "aws:ec2/internetGateway:InternetGateway", {})
    stack.add("rt", "aws:ec2/routeTable:RouteTable", {})
    if public_subnet:
        stack.add(
            "default-route",
            "aws:ec2/route:Route",
            {"destinationCidrBlock": "0.0.0.0/0", "gatewayId": UNKNOWN, "routeTableId": UNKNOWN},
            gatewayId="igw",
            routeTableId="rt",
        )
    stack.add("subnet", "aws:ec2/subnet:Subnet", {"cidrBlock": "10.0.0.0/24"})
    stack.add(
        "rta",
        "aws:ec2/routeTableAssociation:RouteTableAssociation",
        {"subnetId": UNKNOWN, "routeTableId": UNKNOWN},
        subnetId="subnet",
        routeTableId="rt",
    )
    template = {
        **ENCRYPTED_LT,
        "networkInterfaces": [{"associatePublicIpAddress": str(public_ip).lower()}],
    }
    stack.add("lt", LT, template)
    stack.add(
        "asg",
        "aws:autoscaling/group:Group",
        {"launchTemplate": {"id": UNKNOWN}, "vpcZoneIdentifiers": [UNKNOWN]},
        launchTemplate="lt",
        vpcZoneIdentifiers="subnet",
    )
    return stack


def test_no_public_ip_on_private_placement():
    policy = "ec2-no-public-ip-on-private-placement"
    assert "private subnet(s) subnet" in _placement_stack(True, False).check(policy)[0]
    assert _placement_stack(True, True).check(policy) == []  # public placement
    assert _placement_stack(False, False).check(policy) == []
    stack = _placement_stack(False, False)
    stack.add("auto", "aws:ec2/subnet:Subnet", {"mapPublicIpOnLaunch": True})
    # Without an association it uses the VPC's main table, which the stack may not show.
    assert stack.check(policy) == []
    stack.add(
        "auto-rta",
        "aws:ec2/routeTableAssociation:RouteTableAssociation",
        {"subnetId": UNKNOWN, "routeTableId": UNKNOWN},
        subnetId="auto",
        routeTableId="rt",
    )
    assert "EC2.15" in stack.check(policy)[0]


# --- VPN --------------------------------------------------------------------------------------

ENDPOINT = "aws:ec2clientvpn/endpoint:Endpoint"
GOOD_ENDPOINT = {
    "authenticationOptions": [
        {"type": "certificate-authentication", "rootCertificateChainArn": UNKNOWN}
    ],
    "splitTunnel": True,
    "connectionLogOptions": {"enabled": True, "cloudwatchLogGroup": UNKNOWN},
}


def test_client_vpn_endpoint_is_hardened():
    policy = "client-vpn-endpoint-hardened"
    assert check(policy, ENDPOINT, GOOD_ENDPOINT) == []
    federated = {**GOOD_ENDPOINT, "authenticationOptions": [{"type": "federated-authentication"}]}
    assert "certificate-authentication" in check(policy, ENDPOINT, federated)[0]
    both = {
        **GOOD_ENDPOINT,
        "authenticationOptions": [
            *GOOD_ENDPOINT["authenticationOptions"],
            {"type": "directory-service-authentication"},
        ],
    }
    assert check(policy, ENDPOINT, both) == []
    assert "splitTunnel" in check(policy, ENDPOINT, {**GOOD_ENDPOINT, "splitTunnel": False})[0]
    unlogged = {**GOOD_ENDPOINT, "connectionLogOptions": {"enabled": False}}
    assert "logging" in check(policy, ENDPOINT, unlogged)[0]


def test_client_vpn_authorizes_and_routes_no_world():
    rule = "aws:ec2clientvpn/authorizationRule:AuthorizationRule"
    policy = "client-vpn-no-world-authorization"
    assert check(policy, rule, {"targetNetworkCidr": "10.50.0.0/22"}) == []
    assert check(policy, rule, {"targetNetworkCidr": "0.0.0.0/0"})
    route = "aws:ec2clientvpn/route:Route"
    assert check(policy, route, {"destinationCidrBlock": "10.50.0.0/16"}) == []
    assert "routes 0.0.0.0/0" in check(policy, route, {"destinationCidrBlock": "0.0.0.0/0"})[0]


def test_client_vpn_logs_go_to_a_declared_group():
    stack = StackBuilder()
    stack.add("logs", "aws:cloudwatch/logGroup:LogGroup", {"kmsKeyId": "k"})
    stack.add("vpn", ENDPOINT, GOOD_ENDPOINT, connectionLogOptions="logs")
    assert stack.check("client-vpn-logs-declared") == []
    elsewhere = StackBuilder()
    props = {
        **GOOD_ENDPOINT,
        "connectionLogOptions": {"enabled": True, "cloudwatchLogGroup": "/shared"},
    }
    elsewhere.add("vpn", ENDPOINT, props)
    assert "/shared" in elsewhere.check("client-vpn-logs-declared")[0]


def _tunnels(**override) -> dict:
    props = {}
    for tunnel in ("tunnel1", "tunnel2"):
        props.update(
            {
                f"{tunnel}IkeVersions": ["ikev2"],
                f"{tunnel}Phase1EncryptionAlgorithms": ["AES256"],
                f"{tunnel}Phase2EncryptionAlgorithms": ["AES256-GCM-16"],
                f"{tunnel}Phase1IntegrityAlgorithms": ["SHA2-256"],
                f"{tunnel}Phase2IntegrityAlgorithms": ["SHA2-384"],
                f"{tunnel}Phase1DhGroupNumbers": [14.0, 19.0],
                f"{tunnel}Phase2DhGroupNumbers": [20.0],
                f"{tunnel}LogOptions": {
                    "cloudwatchLogOptions": {"logEnabled": True, "logGroupArn": UNKNOWN}
                },
            }
        )
    return {**props, **override}


def test_site_to_site_vpn_is_logged_and_modern():
    policy = "site-to-site-vpn-hardened"
    vpn = "aws:ec2/vpnConnection:VpnConnection"
    assert check(policy, vpn, _tunnels()) == []
    assert "ikev1" in check(policy, vpn, _tunnels(tunnel2IkeVersions=["ikev1", "ikev2"]))[0]
    assert "SHA1" in check(policy, vpn, _tunnels(tunnel1Phase1IntegrityAlgorithms=["SHA1"]))[0]
    assert " 2" in check(policy, vpn, _tunnels(tunnel1Phase2DhGroupNumbers=[2.0, 14.0]))[0]
    unset = _tunnels()
    del unset["tunnel1Phase1DhGroupNumbers"]
    assert "unset" in check(policy, vpn, unset)[0]
    unlogged = _tunnels(tunnel2LogOptions={})
    assert check(policy, vpn, unlogged)[0].startswith("tunnel2: logging is off")


# --- flow logs, DICOM endpoints -------------------------------------------------------------


def test_every_vpc_has_a_flow_log():
    stack = StackBuilder()
    stack.add("vpc", "aws:ec2/vpc:Vpc", {"cidrBlock": "10.0.0.0/16"})
    assert "vpc" in stack.check("vpc-flow-logs")[0]
    stack.add("flow", "aws:ec2/flowLog:FlowLog", {"vpcId": UNKNOWN}, vpcId="vpc")
    assert stack.check("vpc-flow-logs") == []


def _endpoint_stack(attach_to: str) -> StackBuilder:
    stack = StackBuilder()
    stack.add("dicom-sg", SG, {})
    stack.add("tls-in", INGRESS, ingress_rule(11112, "203.0.113.0/28"), securityGroupId="dicom-sg")
    if attach_to == "lb":
        stack.add(
            "lb",
            "aws:lb/loadBalancer:LoadBalancer",
            {"internal": False, "securityGroups": [UNKNOWN]},
            securityGroups="dicom-sg",
        )
        stack.add(
            "listener",
            "aws:lb/listener:Listener",
            {"port": 11112, "loadBalancerArn": UNKNOWN},
            loadBalancerArn="lb",
        )
    elif attach_to == "database":
        stack.add(
            "db",
            RDS,
            {**PRODUCTION_DB, "vpcSecurityGroupIds": [UNKNOWN]},
            vpcSecurityGroupIds="dicom-sg",
        )
    return stack


def test_a_group_that_opens_dicom_sits_on_what_serves_dicom():
    policy = "dicom-security-groups-on-dicom-endpoints"
    assert _endpoint_stack("lb").check(policy) == []
    # Unattached here: it may serve another stack's program.
    assert _endpoint_stack("none").check(policy) == []
    assert "only on db (Instance)" in _endpoint_stack("database").check(policy)[0]


def test_no_plaintext_dicom_listener_faces_the_internet():
    policy = "dicom-security-groups-on-dicom-endpoints"
    stack = _endpoint_stack("lb")
    stack.add(
        "plain",
        "aws:lb/listener:Listener",
        {"port": 4242, "loadBalancerArn": UNKNOWN},
        loadBalancerArn="lb",
    )
    assert "plaintext DICOM port 4242" in stack.check(policy)[0]
    internal = StackBuilder()
    internal.add("lb", "aws:lb/loadBalancer:LoadBalancer", {"internal": True})
    internal.add("plain", "aws:lb/listener:Listener", {"port": 4242}, loadBalancerArn="lb")
    assert internal.check(policy) == []


# --- advisory ---------------------------------------------------------------------------------


def test_tags_are_advised():
    tags = {"orthgate:environment": "prd", "orthgate:stack": "prod"}
    assert check("tags-present", "aws:ec2/vpc:Vpc", {"tags": tags}) == []
    assert (
        check(
            "tags-present",
            "aws:ec2/vpc:Vpc",
            {"tags": {"environment": "prd", "orthgate:stack": "x"}},
        )
        == []
    )
    found = check("tags-present", "aws:ec2/vpc:Vpc", {"cidrBlock": "10.0.0.0/16"})
    assert "orthgate:environment or environment" in found[0]
    assert "orthgate:stack" in found[0]
    asg = [{"key": "environment", "value": "prd"}, {"key": "orthgate:stack", "value": "s"}]
    assert check("tags-present", "aws:autoscaling/group:Group", {"tags": asg}) == []
    assert check("tags-present", "aws:kms/alias:Alias", {"name": "alias/x"}) == []  # untaggable


def test_short_log_retention_in_production_is_advised_against():
    group = "aws:cloudwatch/logGroup:LogGroup"
    policy = "log-retention-one-year-in-production"
    assert check(policy, group, {"retentionInDays": 365}) == []
    assert check(policy, group, {}) == []  # kept forever
    assert "30 days" in check(policy, group, {"retentionInDays": 30})[0]
    assert check(policy, group, {"retentionInDays": 30}, config={"production": False}) == []


def test_an_unreadable_value_is_a_finding_not_a_crash():
    bad = ingress_rule(4242, "not-a-cidr")
    (found,) = check("dicom-ingress-restricted", INGRESS, bad)
    assert found.startswith("could not be checked: ValueError")
    assert "not-a-cidr" in found
    (found,) = check(
        "dicom-ingress-restricted",
        INGRESS,
        ingress_rule(4242, "10.0.0.0/8"),
        {"privateCidrs": ["x"]},
    )
    assert "'x'" in found
    stack = StackBuilder()
    stack.add("lb", "aws:lb/loadBalancer:LoadBalancer", {"internal": False})
    stack.add("plain", "aws:lb/listener:Listener", {"port": "eighty"}, loadBalancerArn="lb")
    (found,) = stack.check("dicom-security-groups-on-dicom-endpoints")
    assert "could not be checked" in found


# --- what a stranger's attack found ---------------------------------------------------------


@pytest.mark.parametrize("protocol", [-1.0, "-1", "ALL", 6.0, "6", "TCP"])
def test_protocols_in_every_spelling(protocol):
    legacy = {"type": "ingress", "protocol": protocol, "fromPort": 4242.0, "toPort": 4242.0}
    found = check("dicom-ingress-restricted", SG_RULE, {**legacy, "cidrBlocks": ["8.8.8.0/24"]})
    assert len(found) == 1


def test_embedded_ipv4_in_ipv6_is_judged_as_ipv4():
    for cidr in ("::ffff:0:0/96", "64:ff9b::/96"):
        assert (
            "the whole Internet"
            in check("dicom-ingress-restricted", INGRESS, ingress_rule(11112, cidr))[0]
        )
    mapped_private = ingress_rule(4242, "::ffff:10.0.0.0/104")
    assert check("dicom-ingress-restricted", INGRESS, mapped_private) == []


def test_a_known_violation_is_reported_even_when_another_rule_waits_for_update():
    inline = {
        "ingress": [
            {"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": [UNKNOWN]},
            {"protocol": "tcp", "fromPort": 4242, "toPort": 4242, "cidrBlocks": ["0.0.0.0/0"]},
        ]
    }
    found, postponed = check_preview("dicom-ingress-restricted", SG, inline)
    assert len(found) == 1
    assert postponed is None
    inline["ingress"][0]["fromPort"] = inline["ingress"][0]["toPort"] = 104
    found, postponed = check_preview("dicom-ingress-restricted", SG, inline)
    assert len(found) == 1
    assert postponed is not None
    admin = {
        "ingress": [{"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": [UNKNOWN]}]
    }
    assert check("no-remote-admin-ingress", SG, admin)  # any source is refused: no need to wait


@pytest.mark.parametrize(
    ("policy", "resource_type", "props"),
    [
        ("ec2-imdsv2-required", LT, {**ENCRYPTED_LT, "metadataOptions": UNKNOWN}),
        ("ebs-encrypted", LT, {**ENCRYPTED_LT, "blockDeviceMappings": UNKNOWN}),
        ("ebs-encrypted", LT, {**ENCRYPTED_LT, "blockDeviceMappings": [UNKNOWN]}),
        (
            "ebs-encrypted",
            LT,
            {**ENCRYPTED_LT, "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": UNKNOWN}]},
        ),
        (
            "site-to-site-vpn-hardened",
            "aws:ec2/vpnConnection:VpnConnection",
            _tunnels(tunnel1LogOptions=UNKNOWN),
        ),
        (
            "client-vpn-endpoint-hardened",
            ENDPOINT,
            {**GOOD_ENDPOINT, "connectionLogOptions": UNKNOWN},
        ),
        (
            "client-vpn-endpoint-hardened",
            ENDPOINT,
            {**GOOD_ENDPOINT, "authenticationOptions": [UNKNOWN]},
        ),
        (
            "s3-versioning-enabled",
            "aws:s3/bucketVersioning:BucketVersioning",
            {"versioningConfiguration": UNKNOWN},
        ),
        ("default-security-group-closed", DEFAULT_SG, {"ingress": UNKNOWN, "egress": []}),
    ],
)
def test_an_unknown_object_is_judged_at_update_not_taken_for_absent(policy, resource_type, props):
    found, postponed = check_preview(policy, resource_type, props)
    assert found == []
    assert postponed is not None


def test_more_host_shapes_are_checked():
    launch_configuration = "aws:ec2/launchConfiguration:LaunchConfiguration"
    weak = {"keyName": "ops", "metadataOptions": {"httpTokens": "optional"}, "rootBlockDevice": {}}
    assert check("ec2-no-key-pair", launch_configuration, weak)
    assert check("ec2-imdsv2-required", launch_configuration, weak)
    assert check("ebs-encrypted", launch_configuration, weak)
    assert check("ec2-no-key-pair", "aws:ec2/spotInstanceRequest:SpotInstanceRequest", weak)
    (found,) = check("ec2-no-key-pair", LT, {**ENCRYPTED_LT, "keyName": UNKNOWN})
    assert UNKNOWN not in found
    assert "named at update" in found


def test_aurora_instances_are_never_public():
    instance = "aws:rds/clusterInstance:ClusterInstance"
    assert check(
        "rds-not-public", instance, {"engine": "aurora-postgresql", "publiclyAccessible": True}
    )
    assert check("rds-not-public", instance, {"engine": "aurora-postgresql"}) == []


@pytest.mark.parametrize("cidr", ["0.0.0.0/1", "128.0.0.0/1", "8.0.0.0/5"])
def test_client_vpn_refuses_halves_and_wide_blocks_of_the_internet(cidr):
    rule = "aws:ec2clientvpn/authorizationRule:AuthorizationRule"
    assert check("client-vpn-no-world-authorization", rule, {"targetNetworkCidr": cidr})


def test_the_default_group_through_the_vpc_and_an_unmanaged_default_group():
    stack = StackBuilder()
    stack.add("vpc", "aws:ec2/vpc:Vpc", {"cidrBlock": "10.0.0.0/16"})
    found = stack.check("default-security-group-no-added-rules")
    assert "not managed" in found[0]
    stack.add("default", DEFAULT_SG, {"vpcId": UNKNOWN, "ingress": [], "egress": []}, vpcId="vpc")
    assert stack.check("default-security-group-no-added-rules") == []
    # vpc.default_security_group_id: the rule depends on the VPC, not on a group.
    stack.add(
        "sneaky",
        INGRESS,
        ingress_rule(443, "10.0.0.0/8", securityGroupId=UNKNOWN),
        securityGroupId="vpc",
    )
    assert "sneaky" in stack.check("default-security-group-no-added-rules")[0]


def test_tls_only_policies_must_cover_objects_and_everyone():
    policy = "aws:s3/bucketPolicy:BucketPolicy"
    bucket_only = copy.deepcopy(TLS_POLICY)
    bucket_only["Statement"][0]["Resource"] = "arn:aws:s3:::b"
    assert check("s3-bucket-policy-tls-only", policy, {"policy": json.dumps(bucket_only)})
    one_account = copy.deepcopy(TLS_POLICY)
    one_account["Statement"][0]["Condition"]["StringEquals"] = {
        "aws:PrincipalAccount": "111122223333"
    }
    assert check("s3-bucket-policy-tls-only", policy, {"policy": json.dumps(one_account)})
    spelled = copy.deepcopy(TLS_POLICY)
    spelled["Statement"][0]["Action"] = "S3:*"
    spelled["Statement"][0]["Condition"] = {"Bool": {"aws:securetransport": ["false"]}}
    spelled["Statement"][0]["Principal"] = {"AWS": "*"}
    assert check("s3-bucket-policy-tls-only", policy, {"policy": json.dumps(spelled)}) == []


def test_postgres_15_and_later_inherit_forced_tls():
    stack = StackBuilder()
    stack.add(
        "params",
        "aws:rds/parameterGroup:ParameterGroup",
        {"family": "postgres16", "parameters": []},
    )
    stack.add("db", RDS, {**PRODUCTION_DB, "engineVersion": "16.4"}, parameterGroupName="params")
    assert stack.check("rds-tls-forced") == []
    named = StackBuilder()
    named.add(
        "db",
        RDS,
        {**PRODUCTION_DB, "engineVersion": "16", "parameterGroupName": "default.postgres16"},
    )
    assert named.check("rds-tls-forced") == []
    aurora = StackBuilder()
    aurora.add("cluster", "aws:rds/cluster:Cluster", {"engine": "aurora", "storageEncrypted": True})
    assert aurora.check("rds-tls-forced")


def test_ordinary_groups_and_tls_listeners_are_not_dicom_endpoint_findings():
    policy = "dicom-security-groups-on-dicom-endpoints"
    stack = StackBuilder()
    stack.add(
        "db-sg",
        SG,
        {"ingress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "securityGroups": ["sg-app"]}]},
    )
    stack.add(
        "db", RDS, {**PRODUCTION_DB, "vpcSecurityGroupIds": [UNKNOWN]}, vpcSecurityGroupIds="db-sg"
    )
    stack.add("lb", "aws:lb/loadBalancer:LoadBalancer", {"internal": False})
    stack.add(
        "tls", "aws:lb/listener:Listener", {"port": 4242, "protocol": "TLS"}, loadBalancerArn="lb"
    )
    assert stack.check(policy) == []
    stack.add(
        "classic",
        "aws:elb/loadBalancer:LoadBalancer",
        {
            "internal": False,
            "listeners": [{"lbPort": 4242, "lbProtocol": "TCP", "instancePort": 4242}],
        },
    )
    assert "classic load balancer classic" in stack.check(policy)[0]


def test_production_from_provider_default_tags_and_untidy_values():
    policy = "rds-production-backups-and-deletion-protection"
    relaxed = {**PRODUCTION_DB, "backupRetentionPeriod": 1, "deletionProtection": False}
    dev_provider = {"defaultTags": {"tags": {"environment": "dev"}}}
    assert check(policy, RDS, relaxed, provider=dev_provider) == []
    assert len(check(policy, RDS, {**relaxed, "tags": {"environment": "prod "}})) == 2
    found, postponed = check_preview(policy, RDS, {**relaxed, "tags": {"environment": UNKNOWN}})
    assert found == []
    assert postponed is not None


def test_a_mistyped_pack_setting_is_a_finding_not_a_silent_pass():
    (found,) = check(
        "dicom-ingress-restricted", INGRESS, ingress_rule(4242, "0.0.0.0/0"), {"dicomPorts": "4242"}
    )
    assert "must be a list of ports" in found


def test_dh_groups_as_text_are_groups():
    vpn = _tunnels(tunnel1Phase1DhGroupNumbers=["14", "19"])
    assert check("site-to-site-vpn-hardened", "aws:ec2/vpnConnection:VpnConnection", vpn) == []
