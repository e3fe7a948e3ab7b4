"""OrthancServer as the program declares it, evaluated under the mock harness."""

from __future__ import annotations

import json
from datetime import datetime
from ipaddress import IPv4Address

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.harness.pulumi_run import evaluate
from tests.harness.user_data import (
    cloud_config,
    cloud_config_text,
    deployed_orthanc_config,
    written_files,
)

COMPONENT = "orthgate:orthanc:OrthancServer"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
INSTANCE = "aws:ec2/instance:Instance"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"


def config(environment: str = "dev", network: dict | None = None, **orthanc) -> dict:
    return {
        "aws:region": "eu-central-1",
        "orthgate:environment": environment,
        "orthgate:network": {"vpcCidr": "10.40.0.0/16", **(network or {})},
        "orthgate:orthanc": {
            "modalities": [{"name": "ct-1", "aeTitle": "CT_ONE"}],
            **orthanc,
        },
    }


SITE_VPN = {
    "siteToSiteVpns": [
        {"name": "campus", "customerGatewayIp": "203.0.113.10", "onPremCidrs": ["172.20.0.0/16"]}
    ]
}


@pytest.fixture(scope="module")
def dev():
    return evaluate(config(dicomAllowedCidrs=["198.51.100.7/32"], siteName="pacs.example.org"))


@pytest.fixture(scope="module")
def prd():
    return evaluate(
        config(
            "prd",
            network={**SITE_VPN, "natGateways": "single"},
            webAllowedCidrs=["198.51.100.64/27"],
            instanceCount=2,
        )
    )


def cert(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def tls_secret(evaluation) -> dict:
    return json.loads(evaluation.named("orthanc-nginx-files-secret-value").inputs["secretString"])


def rules_for_port(evaluation, port: int, kind: str = INGRESS, group: str | None = None) -> list:
    found = [r for r in evaluation.of_type(kind) if r.inputs["fromPort"] == port]
    if group is not None:
        found = [r for r in found if r.inputs["securityGroupId"] == evaluation.named(group).id]
    return found


def sources(rules) -> set[str]:
    return {r.inputs.get("cidrIpv4") or r.inputs["referencedSecurityGroupId"] for r in rules}


def test_launch_template_requires_imdsv2_encrypts_the_root_volume_and_has_no_key_pair(dev, prd):
    [template] = dev.of_type(TEMPLATE)
    metadata = template.inputs["metadataOptions"]
    assert metadata["httpTokens"] == "required"
    # dev keeps its images on EBS: no container needs the instance role, none reaches IMDS.
    assert metadata["httpPutResponseHopLimit"] == 1
    # prd stores in S3: Orthanc's plugin takes the role, one hop further, in its container.
    assert prd.one(TEMPLATE).inputs["metadataOptions"]["httpPutResponseHopLimit"] == 2
    [root] = template.inputs["blockDeviceMappings"]
    assert root["ebs"]["encrypted"] == "true"
    assert root["ebs"]["volumeType"] == "gp3"
    assert root["ebs"]["kmsKeyId"] == dev.named("orthanc-key").outputs["arn"]
    assert template.inputs["monitoring"] == {"enabled": True}
    assert "keyName" not in template.inputs
    assert template.inputs["vpcSecurityGroupIds"] == [dev.named("orthanc-sg").id]
    assert (
        template.inputs["iamInstanceProfile"]["arn"] == dev.named("orthanc-profile").outputs["arn"]
    )


def test_the_ami_is_amazon_linux_2023_for_the_instance_types_architecture():
    arm = evaluate(config(instanceType="m7g.large"))
    [(_, parameter)] = [c for c in arm.calls if c[0] == "aws:ssm/getParameter:getParameter"]
    assert parameter["name"].endswith("al2023-ami-kernel-default-arm64")
    [template] = arm.of_type(TEMPLATE)
    assert template.inputs["imageId"].startswith("ami-")
    assert template.inputs["instanceType"] == "m7g.large"


def test_a_pinned_ami_skips_the_lookup():
    pinned = evaluate(config(amiId="ami-0123456789abcdef0"))
    assert not [c for c in pinned.calls if c[0] == "aws:ssm/getParameter:getParameter"]
    assert pinned.one(TEMPLATE).inputs["imageId"] == "ami-0123456789abcdef0"


def test_the_instance_uses_its_template_a_fixed_private_ip_and_an_elastic_ip(dev):
    [instance] = dev.of_type(INSTANCE)
    template = dev.one(TEMPLATE)
    assert instance.inputs["launchTemplate"]["id"] == template.id
    assert instance.inputs["launchTemplate"]["version"] == str(template.outputs["latestVersion"])
    assert instance.inputs["subnetId"] == dev.outputs["publicSubnetIds"][0]
    assert instance.inputs["privateIp"] == "10.40.255.10"
    association = dev.one("aws:ec2/eipAssociation:EipAssociation")
    assert association.inputs["instanceId"] == instance.id
    assert association.inputs["allocationId"] == dev.named("orthanc-0-eip").id


def test_private_placement_has_no_public_address_and_sits_in_a_private_subnet():
    evaluation = evaluate(config(network={"natGateways": "single"}, placement="private"))
    [instance] = evaluation.of_type(INSTANCE)
    assert instance.inputs["subnetId"] == evaluation.outputs["privateSubnetIds"][0]
    assert instance.inputs["privateIp"] == "10.40.0.10"
    assert evaluation.of_type("aws:ec2/eip:Eip") == [
        e for e in evaluation.of_type("aws:ec2/eip:Eip") if e.name.startswith("network-nat")
    ]
    assert evaluation.outputs["dicomTlsEndpoint"]["host"].startswith("ip-10-40-0-10.")


def test_no_security_group_allows_ssh_or_opens_a_service_port_to_the_world(dev, prd):
    for evaluation in (dev, prd):
        for rule in evaluation.of_type(INGRESS):
            ports = range(int(rule.inputs["fromPort"]), int(rule.inputs["toPort"]) + 1)
            assert 22 not in ports
            assert rule.inputs.get("cidrIpv4") != "0.0.0.0/0", rule.name
            assert rule.inputs.get("cidrIpv6") is None
        for group in evaluation.of_type("aws:ec2/securityGroup:SecurityGroup"):
            assert not group.inputs.get("ingress"), "inline rules would hide from review"


def test_dicom_tls_is_open_to_the_allowed_sites_and_private_paths_only(prd, dev):
    assert sources(rules_for_port(dev, 11112)) == {"198.51.100.7/32"}
    # A fleet: the private paths reach the internal load balancer, the hosts admit only
    # the load balancers.
    assert sources(rules_for_port(prd, 11112, group="orthanc-lb-internal-sg")) == {"172.20.0.0/16"}
    assert rules_for_port(prd, 11112, group="orthanc-lb-public-sg") == []
    assert sources(rules_for_port(prd, 11112, group="orthanc-sg")) == {
        prd.named("orthanc-lb-public-sg").id,
        prd.named("orthanc-lb-internal-sg").id,
    }


def test_plaintext_dicom_is_open_to_private_paths_only(dev, prd):
    assert rules_for_port(dev, 4242) == []
    assert sources(rules_for_port(prd, 4242, group="orthanc-lb-internal-sg")) == {"172.20.0.0/16"}
    assert sources(rules_for_port(prd, 4242, group="orthanc-sg")) == {
        prd.named("orthanc-lb-internal-sg").id
    }
    # The public load balancer has no plaintext listener, and no rule for one.
    assert rules_for_port(prd, 4242, group="orthanc-lb-public-sg") == []
    listeners = {(lb.name, lb.inputs["port"]) for lb in prd.of_type("aws:lb/listener:Listener")}
    assert ("orthanc-nlb-public-plain", 4242) not in listeners


def test_https_is_open_to_web_users_and_private_paths(prd):
    assert sources(rules_for_port(prd, 443, group="orthanc-lb-public-sg")) == {"198.51.100.64/27"}
    assert sources(rules_for_port(prd, 443, group="orthanc-lb-internal-sg")) == {"172.20.0.0/16"}


def test_egress_is_https_out_and_postgresql_to_the_index_only(prd, dev):
    assert [(r.inputs["fromPort"], r.inputs.get("cidrIpv4")) for r in dev.of_type(EGRESS)] == [
        (443, "0.0.0.0/0")
    ]
    hosts = prd.named("orthanc-sg").id
    database_group = prd.named("orthanc-index-sg").id
    egress = {
        r.inputs["fromPort"]: r for r in prd.of_type(EGRESS) if r.inputs["securityGroupId"] == hosts
    }
    assert set(egress) == {443, 5432}
    assert egress[5432].inputs["referencedSecurityGroupId"] == database_group
    # The load balancers' groups let traffic and health checks out to the hosts only.
    for role, ports in (("public", {11112, 443}), ("internal", {11112, 4242, 443})):
        group = prd.named(f"orthanc-lb-{role}-sg").id
        out = [r for r in prd.of_type(EGRESS) if r.inputs["securityGroupId"] == group]
        assert {r.inputs["fromPort"] for r in out} == ports
        assert {r.inputs.get("referencedSecurityGroupId") for r in out} == {hosts}


def test_the_database_admits_postgresql_from_the_orthanc_group_only(prd):
    [rule] = [r for r in prd.of_type(INGRESS) if r.inputs["fromPort"] == 5432]
    assert rule.inputs["securityGroupId"] == prd.named("orthanc-index-sg").id
    assert rule.inputs["referencedSecurityGroupId"] == prd.named("orthanc-sg").id
    assert "cidrIpv4" not in rule.inputs


def test_the_index_database_is_encrypted_private_tls_only_and_protected_in_production(prd):
    database = prd.one("aws:rds/instance:Instance")
    key = prd.named("orthanc-key").outputs["arn"]
    assert database.inputs["storageEncrypted"] is True
    assert database.inputs["kmsKeyId"] == key
    assert database.inputs["publiclyAccessible"] is False
    assert database.inputs["manageMasterUserPassword"] is True
    assert database.inputs["masterUserSecretKmsKeyId"] == key
    assert "password" not in database.inputs
    assert database.inputs["deletionProtection"] is True
    assert database.inputs["skipFinalSnapshot"] is False
    assert database.inputs["finalSnapshotIdentifier"]
    assert database.inputs["backupRetentionPeriod"] >= 1
    assert database.inputs["vpcSecurityGroupIds"] == [prd.named("orthanc-index-sg").id]
    parameters = prd.one("aws:rds/parameterGroup:ParameterGroup")
    assert {"name": "rds.force_ssl", "value": "1"} in parameters.inputs["parameters"]
    subnets = prd.one("aws:rds/subnetGroup:SubnetGroup")
    assert subnets.inputs["subnetIds"] == prd.outputs["privateSubnetIds"]


def test_outside_production_the_database_can_be_destroyed():
    staging = evaluate(config("stg")).one("aws:rds/instance:Instance")
    assert staging.inputs["deletionProtection"] is False
    assert staging.inputs["skipFinalSnapshot"] is True


def test_the_bucket_is_private_versioned_kms_encrypted_and_tls_only(prd):
    # The image bucket; its access log bucket is tests/unit/test_image_audit.py's.
    bucket = prd.named("orthanc-storage")
    key = prd.named("orthanc-key").outputs["arn"]
    assert bucket.inputs["forceDestroy"] is False
    block = prd.named("orthanc-storage-public-access").inputs
    assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy",
                                          "ignorePublicAcls", "restrictPublicBuckets"))  # fmt: skip
    versioning = prd.named("orthanc-storage-versioning")
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    [rule] = prd.named("orthanc-storage-encryption").inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": key,
    }
    policy = json.loads(prd.named("orthanc-storage-tls-only").inputs["policy"])
    [deny] = policy["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert bucket.outputs["arn"] in deny["Resource"]


def test_dev_keeps_data_on_an_encrypted_volume_in_the_instances_zone(dev):
    volume = dev.one("aws:ebs/volume:Volume")
    assert volume.inputs["encrypted"] is True
    assert volume.inputs["kmsKeyId"] == dev.named("orthanc-key").outputs["arn"]
    assert volume.inputs["availabilityZone"] == "eu-central-1a"
    attachment = dev.one("aws:ec2/volumeAttachment:VolumeAttachment")
    assert attachment.inputs["volumeId"] == volume.id
    assert attachment.inputs["instanceId"] == dev.one(INSTANCE).id
    assert dev.of_type("aws:s3/bucket:Bucket") == []
    assert dev.of_type("aws:rds/instance:Instance") == []


def test_the_host_role_reads_only_its_own_secrets_bucket_and_logs(prd):
    role = prd.named("orthanc-role")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "ec2.amazonaws.com"}
    # No managed policy: Session Manager's actions are inline (tests/unit/test_host_role.py).
    assert prd.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") == []
    statements = {
        s["Sid"]: s
        for s in json.loads(prd.named("orthanc-host-policy").inputs["policy"])["Statement"]
    }
    secrets = {
        prd.named("orthanc-nginx-files-secret").id,
        prd.named("orthanc-admin-secret").id,
        prd.named("orthanc-settings-secret").id,
        prd.one("aws:rds/instance:Instance").outputs["masterUserSecrets"][0]["secretArn"],
        # The earlier release's two, for its hosts while they are replaced (one release).
        prd.named("orthanc-tls-secret").id,
        prd.named("orthanc-config-secret").id,
    }
    assert set(statements["ReadOwnSecrets"]["Resource"]) == secrets
    bucket_arn = prd.named("orthanc-storage").outputs["arn"]
    assert statements["ReadWriteOwnObjects"]["Resource"] == f"{bucket_arn}/*"
    assert statements["ListOwnBucket"]["Resource"] == bucket_arn
    # PutMetricData takes no resource ARN: the namespace condition scopes it instead.
    metrics = statements.pop("PutOwnMetrics")
    assert metrics["Action"] == "cloudwatch:PutMetricData"
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "orthgate/test"}}
    for statement in statements.values():
        assert statement["Resource"] != "*"
        assert all(not a.endswith(":*") for a in json.dumps(statement["Action"]).split('"'))


def test_user_data_holds_configuration_but_no_secret(dev):
    template = dev.one(TEMPLATE)
    text = cloud_config_text(template)
    assert "PRIVATE KEY" not in text
    tls = tls_secret(dev)
    assert tls["privateKey"] not in text
    admin = json.loads(dev.named("orthanc-admin-secret-value").inputs["secretString"])
    assert admin["password"] not in text
    for resource in dev.resources:
        for value in resource.plain_strings():
            assert "PRIVATE KEY" not in value, f"{resource.name} carries a key in plain"
            assert admin["password"] not in value, f"{resource.name} carries the password"


def test_the_deployed_nginx_requires_client_certificates_and_tls_1_2(dev):
    nginx = written_files(dev.one(TEMPLATE))["/etc/orthgate/nginx.conf"]
    assert "ssl_verify_client on;" in nginx
    assert "ssl_client_certificate /etc/nginx/tls/dicom-ca.crt;" in nginx
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in nginx
    assert "TLSv1.1" not in nginx.replace("TLSv1.2", "").replace("TLSv1.3", "")
    assert "listen 11112 ssl;" in nginx
    assert "ssl_crl /etc/nginx/tls/dicom-ca.crl;" in nginx
    # Orthanc's own listener, on the loopback of the namespace nginx shares with it, from
    # the address standing for the sender (TLS by certificate, plaintext by source).
    assert nginx.count("proxy_pass 127.0.0.1:4243;") == 2
    assert "proxy_bind $orthgate_tls_source;" in nginx
    assert "proxy_bind $orthgate_plain_source;" in nginx
    assert "listen 4242;" in nginx


def test_the_deployed_compose_sets_tcp_nodelay_and_pins_images(dev):
    compose = yaml.safe_load(written_files(dev.one(TEMPLATE))["/etc/orthgate/compose.yml"])
    orthanc = compose["services"]["orthanc"]
    assert orthanc["environment"]["TCP_NODELAY"] == "1"
    assert orthanc["image"] == "orthancteam/orthanc:25.12.3"
    assert compose["services"]["nginx"]["image"] == "nginx:1.28.0-alpine"
    assert orthanc["logging"]["options"]["awslogs-group"] == "/orthgate/test/orthanc/containers"
    mounts = {v["target"]: v for v in orthanc["volumes"]}
    assert mounts["/var/lib/orthanc/db"]["source"] == "/data/orthanc"


def test_the_deployed_orthanc_accepts_only_registered_senders(dev):
    files = written_files(dev.one(TEMPLATE))
    orthanc = deployed_orthanc_config(dev)
    assert orthanc["DicomAlwaysAllowStore"] is False
    assert orthanc["DicomCheckCalledAet"] is True
    # A re-send replaces the stored instance in place: no duplicate, a correction wins.
    assert orthanc["OverwriteInstances"] is True
    assert orthanc["AuthenticationEnabled"] is True
    assert {m["AET"] for m in orthanc["DicomModalities"].values()} == {"CT_ONE"}
    assert "RegisteredUsers" not in orthanc, "passwords are merged on the host"
    manifest = json.loads(files["/etc/orthgate/secrets.json"])
    assert manifest["secrets"] == {
        "tls": dev.named("orthanc-nginx-files-secret").id,
        "admin": dev.named("orthanc-admin-secret").id,
        "config": dev.named("orthanc-settings-secret").id,
    }


def test_production_points_orthanc_at_s3_and_postgresql(prd):
    files = written_files(prd.of_type(TEMPLATE)[0])
    orthanc = deployed_orthanc_config(prd)
    assert orthanc["AwsS3Storage"]["BucketName"] == prd.named("orthanc-storage").id
    address = prd.one("aws:rds/instance:Instance").outputs["address"]
    assert orthanc["PostgreSQL"]["ConnectionUri"] == (
        f"postgresql://{{username}}:{{password}}@{address}:5432/orthanc"
        "?sslmode=verify-full&sslrootcert=/etc/orthanc/rds-ca.pem"
    )
    manifest = json.loads(files["/etc/orthgate/secrets.json"])
    database_secret = prd.one("aws:rds/instance:Instance").outputs["masterUserSecrets"][0]
    assert manifest["secrets"]["database"] == database_secret["secretArn"]
    assert {tuple(v["at"]) for v in manifest["orthancConfig"]["values"]} == {
        ("RegisteredUsers", "admin"),
        ("PostgreSQL", "ConnectionUri"),
    }


def test_a_fleet_spreads_over_every_zone_under_one_certificate_naming_its_load_balancers(prd):
    group = prd.one("aws:autoscaling/group:Group")
    assert group.inputs["vpcZoneIdentifiers"] == prd.outputs["privateSubnetIds"]
    assert (group.inputs["minSize"], group.inputs["desiredCapacity"], group.inputs["maxSize"]) == (
        2,
        2,
        4,
    )
    server = cert(tls_secret(prd)["certificate"])
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    addresses = {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    # The internal load balancer's fixed addresses, one per zone, and the public one's EIPs.
    assert {"10.40.0.11", "10.40.4.11"} <= addresses
    balancers = prd.outputs["orthancLoadBalancers"]
    assert set(balancers["public"]["addresses"]) <= addresses
    dns = set(names.get_values_for_type(x509.DNSName))
    assert {balancers["public"]["dnsName"], balancers["internal"]["dnsName"]} <= dns
    assert prd.outputs["dicomTlsEndpoint"]["host"] == balancers["public"]["dnsName"]
    assert [e["host"] for e in prd.outputs["dicomPrivateEndpoints"]] == [
        "10.40.0.11",
        "10.40.4.11",
    ]


def test_the_server_certificate_chains_to_the_dicom_ca_and_names_the_host(dev):
    secret = tls_secret(dev)
    ca, server = cert(secret["caCertificate"]), cert(secret["certificate"])
    server.verify_directly_issued_by(ca)
    key = load_pem_private_key(secret["privateKey"].encode(), password=None)
    assert key.public_key().public_numbers() == server.public_key().public_numbers()
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = names.get_values_for_type(x509.DNSName)
    assert dns[0] == "pacs.example.org"
    public_dns = dev.named("orthanc-0-eip").outputs["publicDns"]
    assert public_dns in dns
    assert "ip-10-40-255-10.eu-central-1.compute.internal" in dns
    assert IPv4Address("10.40.255.10") in names.get_values_for_type(x509.IPAddress)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # The CA outlives the server certificate, with room for it to be re-issued.
    assert (ca.not_valid_after_utc - server.not_valid_after_utc).days > 365
    assert dev.outputs["dicomCaCertificate"] == secret["caCertificate"]
    expires = datetime.fromisoformat(dev.outputs["orthancServerCertificateExpiresAt"])
    assert abs((expires - server.not_valid_after_utc).total_seconds()) < 1


def test_secrets_are_kms_encrypted_and_marked_secret(dev):
    key = dev.named("orthanc-key").outputs["arn"]
    for role in ("nginx-files", "admin", "settings"):
        secret = dev.named(f"orthanc-{role}-secret")
        assert secret.inputs["kmsKeyId"] == key
        value = dev.named(f"orthanc-{role}-secret-value")
        assert value.plain_strings() == [secret.id], "only the secret id may be plain"
    assert "orthancAdminPassword" in dev.secret_outputs
    assert len(dev.outputs["orthancAdminPassword"]) == 32


def test_the_outputs_give_an_operator_what_a_site_needs(dev):
    endpoint = dev.outputs["dicomTlsEndpoint"]
    assert endpoint == {"host": "pacs.example.org", "port": 11112, "aeTitle": "ORTHANC"}
    assert dev.outputs["httpsUrl"] == "https://pacs.example.org/"
    assert dev.outputs["dicomPrivateEndpoints"] == [
        {"host": "10.40.255.10", "tlsPort": 11112, "plainPort": 4242}
    ]
    assert dev.outputs["orthancInstanceIds"] == [dev.one(INSTANCE).id]


def test_every_orthanc_resource_is_a_child_of_the_component(dev):
    mine = dev.within(COMPONENT).resources
    assert len(mine) > 20
    names = {r.name for r in mine}
    assert {"orthanc-0", "orthanc-0-template", "orthanc-sg", "orthanc-dicom-ca-cert"} <= names
    registered = dev.component_outputs(COMPONENT, "orthanc")
    assert registered["dicomTlsPort"] == 11112
    assert registered["securityGroupId"] == dev.named("orthanc-sg").id


def test_certificates_renew_early_and_the_ca_outlives_every_leaf(dev):
    ca = dev.named("orthanc-dicom-ca-cert")
    leaf = dev.named("orthanc-server-cert")
    assert ca.inputs["isCaCertificate"] is True
    assert ca.inputs["validityPeriodHours"] == 3650 * 24
    assert leaf.inputs["validityPeriodHours"] == 365 * 24
    assert leaf.inputs["earlyRenewalHours"] == 30 * 24
    # The CA renews while a full-length leaf still fits before its end.
    assert ca.inputs["earlyRenewalHours"] >= leaf.inputs["validityPeriodHours"]
    assert set(leaf.inputs["allowedUses"]) == {
        "digital_signature",
        "key_encipherment",
        "server_auth",
    }


def test_registering_a_sender_updates_orthanc_without_touching_the_instance():
    one = evaluate(config())
    two = evaluate(
        config(
            modalities=[{"name": "ct-1", "aeTitle": "CT_ONE"}, {"name": "mr-1", "aeTitle": "MR"}]
        )
    )
    assert cloud_config_text(one.one(TEMPLATE)) == cloud_config_text(two.one(TEMPLATE))
    assert one.one(INSTANCE).inputs == two.one(INSTANCE).inputs
    assert set(deployed_orthanc_config(two)["DicomModalities"]) == {"ct-1", "mr-1"}


def test_the_host_reports_disk_use_where_the_disk_alarms_look(dev, prd):
    for evaluation, disks in ((dev, ["/", "/data/orthanc"]), (prd, ["/"])):
        template = evaluation.of_type(TEMPLATE)[0]
        assert "amazon-cloudwatch-agent" in cloud_config(template)["packages"]
        agent = json.loads(written_files(template)["/etc/orthgate/cloudwatch-agent.json"])
        metrics = agent["metrics"]
        assert metrics["namespace"] == "orthgate/test"
        assert metrics["aggregation_dimensions"] == [["path"]]
        assert metrics["metrics_collected"]["disk"]["resources"] == disks
        watched = {
            a.inputs["dimensions"]["path"]
            for a in evaluation.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
            if a.inputs["metricName"] == "disk_used_percent"
        }
        assert watched == set(disks)
        assert {
            a.inputs["namespace"]
            for a in evaluation.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
            if a.inputs["metricName"] == "disk_used_percent"
        } == {metrics["namespace"]}


def test_orthanc_never_starts_on_the_root_volume_in_place_of_its_data_volume(dev, prd):
    unit = written_files(dev.one(TEMPLATE))["/etc/systemd/system/orthgate.service"]
    assert "RequiresMountsFor=/data/orthanc" in unit
    fleet_unit = written_files(prd.of_type(TEMPLATE)[0])["/etc/systemd/system/orthgate.service"]
    assert "RequiresMountsFor" not in fleet_unit


def test_docker_waits_for_the_data_volume_and_its_empty_mount_point_is_immutable(dev, prd):
    files = written_files(dev.one(TEMPLATE))
    drop_in = files["/etc/systemd/system/docker.service.d/orthgate-data-volume.conf"]
    assert "RequiresMountsFor=/data/orthanc" in drop_in
    assert 'chattr +i "$DATA_DIR"' in files["/usr/local/libexec/orthgate/boot"]
    fleet_files = written_files(prd.of_type(TEMPLATE)[0])
    assert not [p for p in fleet_files if "docker.service.d" in p]


def test_production_keeps_a_data_volume_through_destroy():
    kept = evaluate(config("prd", storage="ebs", index="sqlite"))
    assert kept.one("aws:ebs/volume:Volume").options.retain_on_delete is True
    assert kept.named("orthanc-key").options.retain_on_delete is True
    assert evaluate(config()).one("aws:ebs/volume:Volume").options.retain_on_delete is False
