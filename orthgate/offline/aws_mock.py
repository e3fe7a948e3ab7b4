"""What AWS would compute for the resources and lookups orthgate declares.

Echoing inputs back is not enough: downstream resources read computed outputs (``arn``,
``allocationId``, tunnel addresses...) and silently lose them when a mock leaves them out.
Every value here is shaped like the real one and derived from the logical name, so two
runs of the same program give the same ids.
"""

from __future__ import annotations

import hashlib
import ipaddress
import string
import uuid
from collections.abc import Callable
from typing import Any

ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "eu-central-1"


def digest(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


def aws_id(prefix: str, *parts: str) -> str:
    """An EC2-style id: prefix and 17 hex digits."""
    return f"{prefix}-{digest(prefix, *parts)[:17]}"


def _uuid(*parts: str) -> str:
    return str(uuid.UUID(digest(*parts)[:32]))


def _public_ip(*parts: str) -> str:
    # Inside an AWS-owned block (3.64.0.0/12, eu-central-1); never a documentation range,
    # so tests cannot confuse an AWS-side address with a site's configured one.
    offset = int(digest("ip", *parts)[:8], 16) % (2**20 - 2) + 1
    return str(ipaddress.IPv4Address(int(ipaddress.IPv4Address("3.64.0.0")) + offset))


def _preshared_key(*parts: str) -> str:
    # AWS's rules: 8-64 characters of letters, digits, '.' and '_', not starting with 0.
    alphabet = string.ascii_letters + string.digits + "._"
    raw = bytes.fromhex(digest("psk", *parts))
    key = "".join(alphabet[b % len(alphabet)] for b in raw)[:32]
    return "A" + key[1:] if key[0] == "0" else key


class AwsMock:
    """Computed outputs per resource type and results per data-source lookup."""

    def __init__(
        self, region: str = DEFAULT_REGION, zone_count: int = 3, deployment: str = "1"
    ) -> None:
        self.region = region
        # Physical names AWS or Pulumi generate (auto-names, name prefixes) differ from one
        # deployment of a stack to the next, as real random suffixes do; within one they
        # are stable, so two evaluations of one deployment agree.
        self.deployment = deployment
        # Bumped by a test to play AWS publishing a new Amazon Linux AMI.
        self.ami_release = 1
        # AMI id -> architecture, for pinned AMIs (unlisted: x86_64).
        self.ami_architectures: dict[str, str] = {}
        # What the engine's state holds per (type, name): inputs, id, outputs. Shared by the
        # evaluations of one deployment (see RecordingMocks).
        self.state: dict[tuple[str, str], tuple[dict, str | None, dict]] = {}
        self.zone_names = [f"{region}{letter}" for letter in "abcdef"[:zone_count]]
        self._computed: dict[str, Callable[[str, dict], tuple[str, dict]]] = {
            "aws:ec2/vpc:Vpc": self._vpc,
            "aws:ec2/subnet:Subnet": self._subnet,
            "aws:ec2/internetGateway:InternetGateway": self._simple("igw", "internet-gateway"),
            "aws:ec2/routeTable:RouteTable": self._simple("rtb", "route-table"),
            "aws:ec2/route:Route": self._route,
            "aws:ec2/routeTableAssociation:RouteTableAssociation": self._plain("rtbassoc"),
            "aws:ec2/eip:Eip": self._eip,
            "aws:ec2/natGateway:NatGateway": self._nat_gateway,
            "aws:ec2/vpcEndpoint:VpcEndpoint": self._vpc_endpoint,
            "aws:ec2/securityGroup:SecurityGroup": self._security_group,
            "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": self._default_security_group,
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": self._sg_rule,
            "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": self._sg_rule,
            "aws:ec2/flowLog:FlowLog": self._simple("fl", "vpc-flow-log"),
            "aws:ec2/customerGateway:CustomerGateway": self._simple("cgw", "customer-gateway"),
            "aws:ec2/vpnGateway:VpnGateway": self._simple("vgw", "vpn-gateway"),
            "aws:ec2/vpnConnection:VpnConnection": self._vpn_connection,
            "aws:ec2/vpnConnectionRoute:VpnConnectionRoute": self._vpn_route,
            "aws:ec2/vpnGatewayRoutePropagation:VpnGatewayRoutePropagation": self._propagation,
            "aws:directconnect/gatewayAssociation:GatewayAssociation": self._dx_association,
            "aws:kms/key:Key": self._kms_key,
            "aws:kms/alias:Alias": self._kms_alias,
            "aws:cloudwatch/logGroup:LogGroup": self._log_group,
            "aws:iam/role:Role": self._iam_role,
            "aws:iam/rolePolicy:RolePolicy": self._role_policy,
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment": self._policy_attachment,
            "aws:iam/instanceProfile:InstanceProfile": self._instance_profile,
            "aws:secretsmanager/secret:Secret": self._secret,
            "aws:secretsmanager/secretVersion:SecretVersion": self._secret_version,
            "aws:s3/bucket:Bucket": self._bucket,
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": self._bucket_part,
            "aws:s3/bucketOwnershipControls:BucketOwnershipControls": self._bucket_part,
            "aws:s3/bucketServerSideEncryptionConfiguration:"
            "BucketServerSideEncryptionConfiguration": self._bucket_part,
            "aws:s3/bucketVersioning:BucketVersioning": self._bucket_part,
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": self._bucket_part,
            "aws:s3/bucketPolicy:BucketPolicy": self._bucket_part,
            "aws:s3/bucketLogging:BucketLogging": self._bucket_part,
            "aws:rds/subnetGroup:SubnetGroup": self._db_subnet_group,
            "aws:rds/parameterGroup:ParameterGroup": self._db_parameter_group,
            "aws:rds/instance:Instance": self._db_instance,
            "aws:ebs/volume:Volume": self._volume,
            "aws:ec2/volumeAttachment:VolumeAttachment": self._volume_attachment,
            "aws:ec2/launchTemplate:LaunchTemplate": self._launch_template,
            "aws:ec2/instance:Instance": self._instance,
            "aws:ec2/eipAssociation:EipAssociation": self._plain("eipassoc"),
            "aws:acm/certificate:Certificate": self._acm_certificate,
            "aws:ec2clientvpn/endpoint:Endpoint": self._client_vpn_endpoint,
            "aws:ec2clientvpn/networkAssociation:NetworkAssociation": self._vpn_association,
            "aws:ec2clientvpn/authorizationRule:AuthorizationRule": self._vpn_authorization,
            "aws:ec2clientvpn/route:Route": self._vpn_route_entry,
            "aws:ec2/subnetCidrReservation:SubnetCidrReservation": self._cidr_reservation,
            "aws:lb/loadBalancer:LoadBalancer": self._load_balancer,
            "aws:lb/targetGroup:TargetGroup": self._target_group,
            "aws:lb/listener:Listener": self._listener,
            "aws:autoscaling/group:Group": self._autoscaling_group,
            "aws:autoscaling/policy:Policy": self._scaling_policy,
            "aws:sns/topic:Topic": self._sns_topic,
            "aws:sns/topicSubscription:TopicSubscription": self._sns_subscription,
            "aws:cloudwatch/metricAlarm:MetricAlarm": self._metric_alarm,
        }
        self._calls: dict[str, Callable[[dict], dict]] = {
            "aws:index/getAvailabilityZones:getAvailabilityZones": self._zones,
            "aws:index/getRegion:getRegion": self._get_region,
            "aws:index/getCallerIdentity:getCallerIdentity": self._caller_identity,
            "aws:index/getPartition:getPartition": self._partition,
            "aws:ec2/getInstanceType:getInstanceType": self._instance_type,
            "aws:ssm/getParameter:getParameter": self._ssm_parameter,
            "aws:ec2/getAmi:getAmi": self._ami,
        }
        self.launch_template_versions: dict[str, tuple[int, str | None]] = {}

    # --- entry points ------------------------------------------------------------------------

    def handles(self, type_token: str) -> bool:
        return type_token in self._computed

    def new_resource(self, type_token: str, name: str, inputs: dict) -> tuple[str, dict]:
        resource_id, computed = self._computed[type_token](name, inputs)
        return resource_id, {**inputs, **computed}

    def call(self, token: str, args: dict) -> dict:
        if token not in self._calls:
            # An unknown lookup must fail the test, not return an empty result the program
            # would then misread.
            raise NotImplementedError(f"the AWS mock has no lookup {token}")
        return self._calls[token](args)

    # --- helpers -----------------------------------------------------------------------------

    def arn(self, service: str, resource: str, region: bool = True) -> str:
        return f"arn:aws:{service}:{self.region if region else ''}:{ACCOUNT_ID}:{resource}"

    def _simple(self, prefix: str, arn_type: str) -> Callable[[str, dict], tuple[str, dict]]:
        def computed(name: str, inputs: dict) -> tuple[str, dict]:
            resource_id = aws_id(prefix, name)
            return resource_id, {"arn": self.arn("ec2", f"{arn_type}/{resource_id}")}

        return computed

    def _autoname(self, name: str, inputs: dict, field: str = "name") -> str:
        """The physical name: as given, from its prefix, or Pulumi's auto-name."""
        given = inputs.get(field)
        if given:
            return str(given)
        prefix = inputs.get(f"{field}Prefix")
        if prefix:
            return f"{prefix}{digest(self.deployment, 'prefix', name)[:26]}"
        return f"{name}-{digest(self.deployment, name)[:7]}"

    def _plain(self, prefix: str) -> Callable[[str, dict], tuple[str, dict]]:
        return lambda name, inputs: (aws_id(prefix, name), {})

    # --- EC2 networking ----------------------------------------------------------------------

    def _vpc(self, name: str, inputs: dict) -> tuple[str, dict]:
        vpc_id = aws_id("vpc", name)
        return vpc_id, {
            "arn": self.arn("ec2", f"vpc/{vpc_id}"),
            "defaultSecurityGroupId": aws_id("sg", name, "default"),
            "defaultNetworkAclId": aws_id("acl", name, "default"),
            "defaultRouteTableId": aws_id("rtb", name, "main"),
            "mainRouteTableId": aws_id("rtb", name, "main"),
            "dhcpOptionsId": aws_id("dopt", name),
            "ownerId": ACCOUNT_ID,
            "instanceTenancy": inputs.get("instanceTenancy", "default"),
        }

    def _subnet(self, name: str, inputs: dict) -> tuple[str, dict]:
        subnet_id = aws_id("subnet", name)
        zone = inputs.get("availabilityZone", self.zone_names[0])
        zone_index = "abcdef".index(zone[-1]) + 1 if zone[-1] in "abcdef" else 1
        return subnet_id, {
            "arn": self.arn("ec2", f"subnet/{subnet_id}"),
            "availabilityZoneId": f"euc1-az{zone_index}",
            "ownerId": ACCOUNT_ID,
            "mapPublicIpOnLaunch": inputs.get("mapPublicIpOnLaunch", False),
        }

    def _route(self, name: str, inputs: dict) -> tuple[str, dict]:
        table = inputs.get("routeTableId", "rtb-unknown")
        destination = inputs.get("destinationCidrBlock", "0.0.0.0/0")
        return f"r-{table}{digest(destination)[:10]}", {"state": "active", "origin": "CreateRoute"}

    def _eip(self, name: str, inputs: dict) -> tuple[str, dict]:
        allocation = aws_id("eipalloc", name)
        address = _public_ip(name)
        dashed = address.replace(".", "-")
        return allocation, {
            "allocationId": allocation,
            "publicIp": address,
            "publicDns": f"ec2-{dashed}.{self.region}.compute.amazonaws.com",
            "domain": inputs.get("domain", "vpc"),
            "arn": self.arn("ec2", f"elastic-ip/{allocation}"),
        }

    def _nat_gateway(self, name: str, inputs: dict) -> tuple[str, dict]:
        return aws_id("nat", name), {
            "publicIp": _public_ip(name, "nat"),
            "networkInterfaceId": aws_id("eni", name),
            "privateIp": "10.255.255.10",
        }

    def _vpc_endpoint(self, name: str, inputs: dict) -> tuple[str, dict]:
        endpoint_id = aws_id("vpce", name)
        service = inputs.get("serviceName", "")
        outputs: dict[str, Any] = {
            "arn": self.arn("ec2", f"vpc-endpoint/{endpoint_id}"),
            "state": "available",
            "ownerId": ACCOUNT_ID,
        }
        if inputs.get("vpcEndpointType") == "Gateway":
            outputs["prefixListId"] = aws_id("pl", service)[:11]
        else:
            short = service.rsplit(".", 1)[-1]
            outputs["dnsEntries"] = [
                {
                    "dnsName": f"{endpoint_id}.{short}.{self.region}.vpce.amazonaws.com",
                    "hostedZoneId": "Z273ZU8SZ5RJPC",
                }
            ]
            outputs["networkInterfaceIds"] = [
                aws_id("eni", name, str(i)) for i, _ in enumerate(inputs.get("subnetIds", []))
            ]
        return endpoint_id, outputs

    def _security_group(self, name: str, inputs: dict) -> tuple[str, dict]:
        group_id = aws_id("sg", name)
        return group_id, {
            "arn": self.arn("ec2", f"security-group/{group_id}"),
            "ownerId": ACCOUNT_ID,
            # The provider auto-names a group that has no name of its own.
            "name": self._autoname(name, inputs),
            "ingress": inputs.get("ingress", []),
            "egress": inputs.get("egress", []),
        }

    def _default_security_group(self, name: str, inputs: dict) -> tuple[str, dict]:
        group_id = aws_id("sg", name, "default")
        return group_id, {
            "arn": self.arn("ec2", f"security-group/{group_id}"),
            "ownerId": ACCOUNT_ID,
            "name": "default",
            "ingress": inputs.get("ingress", []),
            "egress": inputs.get("egress", []),
        }

    def _sg_rule(self, name: str, inputs: dict) -> tuple[str, dict]:
        rule_id = aws_id("sgr", name)
        return rule_id, {
            "arn": self.arn("ec2", f"security-group-rule/{rule_id}"),
            "securityGroupRuleId": rule_id,
        }

    # --- VPN and Direct Connect ------------------------------------------------------------

    def _vpn_connection(self, name: str, inputs: dict) -> tuple[str, dict]:
        vpn_id = aws_id("vpn", name)
        block = int(digest("inside", name)[:4], 16) % 16000 * 4
        inside = [
            ipaddress.IPv4Network((int(ipaddress.IPv4Address("169.254.0.0")) + block + 4 * t, 30))
            for t in (0, 1)
        ]
        outputs: dict[str, Any] = {
            "arn": self.arn("ec2", f"vpn-connection/{vpn_id}"),
            "customerGatewayConfiguration": (
                f'<?xml version="1.0" encoding="UTF-8"?>\n<vpn_connection id="{vpn_id}">'
                "<customer_gateway_id>"
                f"{inputs.get('customerGatewayId', '')}</customer_gateway_id>"
                "</vpn_connection>"
            ),
            "transitGatewayAttachmentId": "",
            "routes": [],
            "vgwTelemetries": [],
        }
        for t, network in enumerate(inside, start=1):
            hosts = list(network.hosts())
            outputs.update(
                {
                    f"tunnel{t}Address": _public_ip(name, f"tunnel{t}"),
                    f"tunnel{t}InsideCidr": inputs.get(f"tunnel{t}InsideCidr", str(network)),
                    f"tunnel{t}VgwInsideAddress": str(hosts[0]),
                    f"tunnel{t}CgwInsideAddress": str(hosts[1]),
                    f"tunnel{t}BgpAsn": "64512",
                    f"tunnel{t}BgpHoldtime": 30,
                    f"tunnel{t}PresharedKey": inputs.get(f"tunnel{t}PresharedKey")
                    or _preshared_key(name, str(t)),
                }
            )
        return vpn_id, outputs

    def _vpn_route(self, name: str, inputs: dict) -> tuple[str, dict]:
        return f"{inputs.get('destinationCidrBlock')}:{inputs.get('vpnConnectionId')}", {}

    def _propagation(self, name: str, inputs: dict) -> tuple[str, dict]:
        return f"{inputs.get('vpnGatewayId')}_{inputs.get('routeTableId')}", {}

    def _dx_association(self, name: str, inputs: dict) -> tuple[str, dict]:
        association = _uuid("dx", name)
        return f"ga-{inputs.get('dxGatewayId')}{inputs.get('associatedGatewayId')}", {
            "dxGatewayAssociationId": association,
            "associatedGatewayType": "virtualPrivateGateway",
            "associatedGatewayOwnerAccountId": ACCOUNT_ID,
            "dxGatewayOwnerAccountId": ACCOUNT_ID,
        }

    # --- KMS, logs, IAM ----------------------------------------------------------------------

    def _kms_key(self, name: str, inputs: dict) -> tuple[str, dict]:
        key_id = _uuid("kms", name)
        return key_id, {
            "keyId": key_id,
            "arn": self.arn("kms", f"key/{key_id}"),
            "keyUsage": inputs.get("keyUsage", "ENCRYPT_DECRYPT"),
            "customerMasterKeySpec": "SYMMETRIC_DEFAULT",
            "isEnabled": True,
        }

    def _kms_alias(self, name: str, inputs: dict) -> tuple[str, dict]:
        alias = inputs.get("name") or f"alias/{name}"
        return alias, {
            "arn": self.arn("kms", alias),
            "targetKeyArn": self.arn("kms", f"key/{inputs.get('targetKeyId', '')}"),
        }

    def _log_group(self, name: str, inputs: dict) -> tuple[str, dict]:
        log_name = self._autoname(name, inputs)
        return log_name, {"name": log_name, "arn": self.arn("logs", f"log-group:{log_name}")}

    def _iam_role(self, name: str, inputs: dict) -> tuple[str, dict]:
        role_name = self._autoname(name, inputs)
        return role_name, {
            "name": role_name,
            "arn": self.arn("iam", f"role/{role_name}", region=False),
            "uniqueId": "AROA" + digest("role", name)[:17].upper(),
            "createDate": "2026-11-28T06:00:00Z",
        }

    def _role_policy(self, name: str, inputs: dict) -> tuple[str, dict]:
        policy_name = inputs.get("name") or f"{name}-{digest(name)[:7]}"
        return f"{inputs.get('role')}:{policy_name}", {"name": policy_name}

    def _policy_attachment(self, name: str, inputs: dict) -> tuple[str, dict]:
        return f"{inputs.get('role')}-{digest(name)[:20]}", {}

    def _instance_profile(self, name: str, inputs: dict) -> tuple[str, dict]:
        profile = self._autoname(name, inputs)
        return profile, {
            "name": profile,
            "arn": self.arn("iam", f"instance-profile/{profile}", region=False),
            "uniqueId": "AIPA" + digest("profile", name)[:17].upper(),
        }

    # --- Secrets Manager, S3, RDS, EBS, EC2 ----------------------------------------------------

    def _secret(self, name: str, inputs: dict) -> tuple[str, dict]:
        secret_name = self._autoname(name, inputs)
        arn = self.arn("secretsmanager", f"secret:{secret_name}-{digest('sfx', name)[:6]}")
        return arn, {"arn": arn, "name": secret_name}

    def _secret_version(self, name: str, inputs: dict) -> tuple[str, dict]:
        version = _uuid("secret-version", name)
        return f"{inputs.get('secretId')}|{version}", {
            "versionId": version,
            "arn": inputs.get("secretId"),
            "versionStages": ["AWSCURRENT"],
        }

    def _bucket(self, name: str, inputs: dict) -> tuple[str, dict]:
        bucket = self._autoname(name, inputs, field="bucket")
        return bucket, {
            "bucket": bucket,
            "arn": f"arn:aws:s3:::{bucket}",
            "bucketDomainName": f"{bucket}.s3.amazonaws.com",
            "bucketRegionalDomainName": f"{bucket}.s3.{self.region}.amazonaws.com",
            "region": self.region,
            "hostedZoneId": "Z21DNDUVLTQW6Q",
        }

    def _bucket_part(self, name: str, inputs: dict) -> tuple[str, dict]:
        return str(inputs.get("bucket")), {}

    def _db_subnet_group(self, name: str, inputs: dict) -> tuple[str, dict]:
        group = self._autoname(name, inputs)
        return group, {"name": group, "arn": self.arn("rds", f"subgrp:{group}")}

    def _db_parameter_group(self, name: str, inputs: dict) -> tuple[str, dict]:
        group = self._autoname(name, inputs)
        return group, {"name": group, "arn": self.arn("rds", f"pg:{group}")}

    def _db_instance(self, name: str, inputs: dict) -> tuple[str, dict]:
        identifier = self._autoname(name, inputs, field="identifier")
        address = f"{identifier}.c9akciq32.{self.region}.rds.amazonaws.com"
        outputs: dict[str, Any] = {
            "identifier": identifier,
            "arn": self.arn("rds", f"db:{identifier}"),
            "address": address,
            "endpoint": f"{address}:5432",
            "port": 5432,
            "resourceId": "db-" + digest("db", name)[:26].upper(),
        }
        if inputs.get("manageMasterUserPassword"):
            outputs["masterUserSecrets"] = [
                {
                    "secretArn": self.arn(
                        "secretsmanager", f"secret:rds!db-{_uuid('rds', name)}-{digest(name)[:6]}"
                    ),
                    "kmsKeyId": inputs.get("masterUserSecretKmsKeyId", ""),
                    "secretStatus": "active",
                }
            ]
        return identifier, outputs

    def _volume(self, name: str, inputs: dict) -> tuple[str, dict]:
        volume_id = aws_id("vol", name)
        return volume_id, {"arn": self.arn("ec2", f"volume/{volume_id}")}

    def _volume_attachment(self, name: str, inputs: dict) -> tuple[str, dict]:
        return f"vai-{digest(name)[:10]}", {}

    def _launch_template(self, name: str, inputs: dict) -> tuple[str, dict]:
        template_id = aws_id("lt", name)
        # Like EC2: a template's version moves on only when its content changes (the same
        # mock evaluating a stack twice plays the same account).
        content = digest(repr(sorted(inputs.items())))
        version, last = self.launch_template_versions.get(template_id, (0, None))
        if content != last:
            version += 1
        self.launch_template_versions[template_id] = (version, content)
        return template_id, {
            "arn": self.arn("ec2", f"launch-template/{template_id}"),
            "latestVersion": version,
            "defaultVersion": version,
            "name": self._autoname(name, inputs),
        }

    def _instance(self, name: str, inputs: dict) -> tuple[str, dict]:
        instance_id = aws_id("i", name)
        private_ip = inputs.get("privateIp") or "10.0.0.10"
        return instance_id, {
            "arn": self.arn("ec2", f"instance/{instance_id}"),
            "privateIp": private_ip,
            "privateDns": f"ip-{private_ip.replace('.', '-')}.{self.region}.compute.internal",
            "primaryNetworkInterfaceId": aws_id("eni", name),
            "instanceState": "running",
            "publicIp": "",
        }

    # --- ACM and Client VPN ---------------------------------------------------------------------

    def _acm_certificate(self, name: str, inputs: dict) -> tuple[str, dict]:
        arn = self.arn("acm", f"certificate/{_uuid('acm', name)}")
        return arn, {"arn": arn, "status": "ISSUED", "type": "IMPORTED"}

    def _client_vpn_endpoint(self, name: str, inputs: dict) -> tuple[str, dict]:
        endpoint_id = aws_id("cvpn-endpoint", name)
        return endpoint_id, {
            "arn": self.arn("ec2", f"client-vpn-endpoint/{endpoint_id}"),
            "dnsName": f"*.{endpoint_id}.prod.clientvpn.{self.region}.amazonaws.com",
            "selfServicePortalUrl": "",
        }

    def _vpn_association(self, name: str, inputs: dict) -> tuple[str, dict]:
        association = aws_id("cvpn-assoc", name)
        return association, {"associationId": association, "vpcId": aws_id("vpc", "network-vpc")}

    def _vpn_authorization(self, name: str, inputs: dict) -> tuple[str, dict]:
        target = inputs.get("targetNetworkCidr")
        return f"{inputs.get('clientVpnEndpointId')},{target}", {}

    def _vpn_route_entry(self, name: str, inputs: dict) -> tuple[str, dict]:
        # The provider's id: endpoint, target subnet and destination, comma-separated.
        keys = ("clientVpnEndpointId", "targetVpcSubnetId", "destinationCidrBlock")
        route_id = ",".join(str(inputs.get(k)) for k in keys)
        return route_id, {"origin": "add-route", "type": "Nat", "status": "active"}

    # --- Load balancing, Auto Scaling, alarms ---------------------------------------------------

    def _cidr_reservation(self, name: str, inputs: dict) -> tuple[str, dict]:
        return aws_id("scr", name), {"ownerId": ACCOUNT_ID}

    def _load_balancer(self, name: str, inputs: dict) -> tuple[str, dict]:
        physical = self._autoname(name, inputs)
        kind = "net" if inputs.get("loadBalancerType") == "network" else "app"
        suffix = f"{kind}/{physical}/{digest('lb', name)[:16]}"
        arn = self.arn("elasticloadbalancing", f"loadbalancer/{suffix}")
        scheme = "internal-" if inputs.get("internal") else ""
        return arn, {
            "arn": arn,
            "arnSuffix": suffix,
            "name": physical,
            "dnsName": (
                f"{scheme}{physical}-{digest('dns', name)[:16]}.elb.{self.region}.amazonaws.com"
            ),
            "zoneId": "Z3F0SRJ5LGBH90",
            "vpcId": aws_id("vpc", "network-vpc"),
        }

    def _target_group(self, name: str, inputs: dict) -> tuple[str, dict]:
        physical = self._autoname(name, inputs)
        suffix = f"targetgroup/{physical}/{digest('tg', name)[:16]}"
        arn = self.arn("elasticloadbalancing", suffix)
        return arn, {"arn": arn, "arnSuffix": suffix, "name": physical}

    def _listener(self, name: str, inputs: dict) -> tuple[str, dict]:
        lb = str(inputs.get("loadBalancerArn", "")).replace(":loadbalancer/", ":listener/")
        arn = f"{lb}/{digest('listener', name)[:16]}"
        return arn, {"arn": arn}

    def _autoscaling_group(self, name: str, inputs: dict) -> tuple[str, dict]:
        physical = self._autoname(name, inputs)
        return physical, {
            "name": physical,
            "arn": self.arn(
                "autoscaling",
                f"autoScalingGroup:{_uuid('asg', name)}:autoScalingGroupName/{physical}",
            ),
            "availabilityZones": list(self.zone_names),
        }

    def _scaling_policy(self, name: str, inputs: dict) -> tuple[str, dict]:
        physical = self._autoname(name, inputs)
        return physical, {
            "name": physical,
            "arn": self.arn("autoscaling", f"scalingPolicy:{physical}"),
        }

    def _sns_topic(self, name: str, inputs: dict) -> tuple[str, dict]:
        physical = self._autoname(name, inputs)
        arn = self.arn("sns", physical)
        return arn, {"arn": arn, "name": physical, "owner": ACCOUNT_ID}

    def _sns_subscription(self, name: str, inputs: dict) -> tuple[str, dict]:
        arn = f"{inputs.get('topic')}:{_uuid('sub', name)}"
        # E-mail subscriptions wait for the recipient to confirm.
        return arn, {"arn": arn, "pendingConfirmation": inputs.get("protocol") == "email"}

    def _metric_alarm(self, name: str, inputs: dict) -> tuple[str, dict]:
        physical = self._autoname(name, inputs)
        return physical, {"arn": self.arn("cloudwatch", f"alarm:{physical}"), "name": physical}

    # --- lookups -----------------------------------------------------------------------------

    def _zones(self, args: dict) -> dict:
        return {
            "id": self.region,
            "names": list(self.zone_names),
            "zoneIds": [f"euc1-az{i + 1}" for i in range(len(self.zone_names))],
            "groupNames": [self.region] * len(self.zone_names),
            "state": args.get("state"),
        }

    def _get_region(self, args: dict) -> dict:
        return {
            "id": self.region,
            "name": self.region,
            "region": self.region,
            "endpoint": f"ec2.{self.region}.amazonaws.com",
            "description": self.region,
        }

    def _caller_identity(self, args: dict) -> dict:
        return {
            "id": ACCOUNT_ID,
            "accountId": ACCOUNT_ID,
            "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/orthgate-ci",
            "userId": "AIDAORTHGATEEXAMPLE",
        }

    def _instance_type(self, args: dict) -> dict:
        instance_type = args["instanceType"]
        family = instance_type.split(".")[0]
        graviton = "g" in family.lstrip("abcdefghijklmnopqrstuvwxyz")[1:] or family == "a1"
        return {
            "id": instance_type,
            "instanceType": instance_type,
            "supportedArchitectures": ["arm64"] if graviton else ["i386", "x86_64"],
            "defaultVcpus": 2,
            "memorySize": 4096,
        }

    def _ami(self, args: dict) -> dict:
        [ami_id] = next(f["values"] for f in args["filters"] if f["name"] == "image-id")
        return {"id": ami_id, "imageId": ami_id,
                "architecture": self.ami_architectures.get(ami_id, "x86_64")}  # fmt: skip

    def _ssm_parameter(self, args: dict) -> dict:
        name = args["name"]
        return {
            "id": name,
            "name": name,
            "arn": self.arn("ssm", f"parameter{name}"),
            "type": "String",
            "value": aws_id(
                "ami", name, *(["release", str(self.ami_release)] * (self.ami_release > 1))
            ),
            "version": 1,
        }

    def _partition(self, args: dict) -> dict:
        return {
            "id": "aws",
            "partition": "aws",
            "dnsSuffix": "amazonaws.com",
            "reverseDnsPrefix": "com.amazonaws",
        }
