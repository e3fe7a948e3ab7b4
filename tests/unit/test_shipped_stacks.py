"""Every stacks/Pulumi.*.yaml evaluates end to end through __main__.py under the mocks."""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest
import yaml

from orthgate.components.config import parse_settings
from orthgate.offline.aws_mock import AwsMock
from tests.harness.pulumi_run import (
    Declared,
    RecordingMocks,
    evaluate,
    read_stack_file,
    shipped_stacks,
)
from tests.harness.user_data import cloud_config_text, written_files

STACK_FILES = shipped_stacks()


def stack_name(path) -> str:
    return path.name.removeprefix("Pulumi.").removesuffix(".yaml")


def test_the_documented_stacks_are_shipped():
    assert {stack_name(p) for p in STACK_FILES} >= {"dev", "prod"}


@pytest.fixture(scope="module", params=STACK_FILES, ids=stack_name)
def shipped(request):
    config = read_stack_file(request.param)
    return config, evaluate(config, stack=stack_name(request.param))


def test_the_stack_evaluates_to_one_secure_network(shipped):
    config, evaluation = shipped
    assert len(evaluation.of_type("orthgate:network:SecureNetwork")) == 1
    [vpc] = evaluation.of_type("aws:ec2/vpc:Vpc")
    vpc_cidr = IPv4Network(vpc.inputs["cidrBlock"])
    assert str(vpc_cidr) == config["orthgate:network"]["vpcCidr"]

    subnets = evaluation.of_type("aws:ec2/subnet:Subnet")
    assert len({s.inputs["availabilityZone"] for s in subnets}) >= 2
    networks = [IPv4Network(s.inputs["cidrBlock"]) for s in subnets]
    assert all(n.subnet_of(vpc_cidr) for n in networks)
    assert not any(a.overlaps(b) for i, a in enumerate(networks) for b in networks[i + 1 :])
    private = [s for s in subnets if s.inputs["tags"]["orthgate:tier"] == "private"]
    assert private
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in private)

    assert len(evaluation.of_type("aws:ec2/flowLog:FlowLog")) == 1
    [default_sg] = evaluation.of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert not default_sg.inputs.get("ingress")
    assert not default_sg.inputs.get("egress")
    assert evaluation.outputs["environment"] == config["orthgate:environment"]


def test_dev_is_the_cheapest_useful_network():
    config = read_stack_file(next(p for p in STACK_FILES if stack_name(p) == "dev"))
    network = parse_settings(
        {"environment": config["orthgate:environment"], "network": config["orthgate:network"]}
    ).network
    assert network.availability_zones == 2
    assert network.nat_gateways == "none"
    assert network.interface_endpoints == []


def test_prod_is_production_with_endpoints_and_a_documented_site_to_site_vpn():
    config = read_stack_file(next(p for p in STACK_FILES if stack_name(p) == "prod"))
    settings = parse_settings(
        {"environment": config["orthgate:environment"], "network": config["orthgate:network"]}
    )
    assert settings.is_production
    assert {"ssm", "ssmmessages", "ec2messages", "kms", "secretsmanager", "logs"} <= set(
        settings.network.interface_endpoints
    )
    [vpn] = settings.network.site_to_site_vpns
    documentation = [IPv4Network("203.0.113.0/24"), IPv4Network("198.51.100.0/24")]
    assert any(vpn.customer_gateway_ip in n for n in documentation)


SERVICE_PORTS = {22, 443, 4242, 5432, 8042, 11112}


def test_the_stack_hardens_every_orthanc_host(shipped):
    _, evaluation = shipped
    templates = evaluation.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert templates
    for template in templates:
        assert template.inputs["metadataOptions"]["httpTokens"] == "required"
        assert all(m["ebs"]["encrypted"] == "true" for m in template.inputs["blockDeviceMappings"])
        assert "keyName" not in template.inputs
        files = written_files(template)
        nginx = files["/etc/orthgate/nginx.conf"]
        assert "ssl_verify_client on;" in nginx
        assert "ssl_protocols TLSv1.2 TLSv1.3;" in nginx
        compose = yaml.safe_load(files["/etc/orthgate/compose.yml"])
        assert compose["services"]["orthanc"]["environment"]["TCP_NODELAY"] == "1"


def test_the_stack_opens_no_service_port_to_the_world_and_no_ssh(shipped):
    _, evaluation = shipped
    for rule in evaluation.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        ports = set(range(int(rule.inputs["fromPort"]), int(rule.inputs["toPort"]) + 1))
        assert 22 not in ports
        if ports & SERVICE_PORTS:
            assert rule.inputs.get("cidrIpv4") != "0.0.0.0/0", rule.name


def test_no_private_key_travels_outside_a_secret(shipped):
    _, evaluation = shipped
    for resource in evaluation.resources:
        for value in resource.plain_strings():
            assert "PRIVATE KEY" not in value, resource.name
    for template in evaluation.of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        assert "PRIVATE KEY" not in cloud_config_text(template)


class EchoMocks(RecordingMocks):
    """The least a harness may do: echo inputs, invent ids, answer only the zone lookup.

    The program must still evaluate: real AWS always returns the computed outputs, but a
    crash on a missing one would hide every other finding of such a harness.
    """

    def new_resource(self, args):
        self.declared.append(Declared(args.typ, args.name, dict(args.inputs), {}, None))
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args):
        self.calls.append((args.token, dict(args.args)))
        if args.token.endswith("getAvailabilityZones"):
            return {"names": ["eu-central-1a", "eu-central-1b", "eu-central-1c"]}
        return {}


def test_every_shipped_stack_evaluates_under_a_minimal_mock_with_every_option(shipped):
    config, _ = shipped
    config = {
        **config,
        "orthgate:clientVpn": {
            "enabled": True,
            "clientCidr": "192.168.0.0/22",
            "workstations": ["reading-room-1", "reading-room-2"],
        },
        "orthgate:dicomProxies": [
            {
                "name": "site-a",
                "sourceCidrs": ["198.51.100.7/32"],
                "aeTitle": "SITEA_GW",
                "listenAddress": "192.168.50.10",
                "acceptAnyModality": True,
            }
        ],
    }
    # Without aws:region too: the region then comes from a lookup the mock leaves empty.
    config.pop("aws:region", None)
    evaluation = evaluate(config, mocks=EchoMocks(AwsMock()))
    types = {r.type for r in evaluation.resources}
    assert {
        "orthgate:network:SecureNetwork",
        "orthgate:orthanc:OrthancServer",
        "orthgate:vpn:ClientVpn",
        "orthgate:dicom:DicomProxyAccess",
    } <= types
